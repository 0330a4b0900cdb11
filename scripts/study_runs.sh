#!/usr/bin/env bash
# Issue 10 study, first round: an r_min sweep of HRPO (paper Table 3) beside the GRPO baseline, seed 0,
# four runs side by side on the 2-core dev CPU (one thread each), fp32 (exact: logprob_drift ~1e-5).
# Rerun with RESUME=--resume to carry the runs on after an interruption.
#   bash scripts/study_runs.sh [SEED]        (R_MINS="0.99" for one HRPO run beside GRPO)
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${1:-0}
common=(--model default --task arith --steps 100 --group-size 8 --batch-prompts 1 --max-new-tokens 64
        --lr 1e-4 --gate-lr 1e-3 --lambda-lr 3e-2 --weight-decay 0.1 --lora-rank 8 --lora-alpha 16
        --save-every 10 --keep-checkpoints 2 --dtype float32 --seed "$SEED" ${RESUME:-})
run() { OMP_NUM_THREADS=1 nohup .venv/bin/python -m hrpo train "${common[@]}" "$@" > "$OUTLOG" 2>&1 & }
for r in ${R_MINS:-0.99 0.98 0.95}; do
  OUTLOG=runs/study-hrpo-r$r-s$SEED.log run --mode hrpo --r-min "$r" --out runs/study-hrpo-r$r-s$SEED
done
OUTLOG=runs/study-grpo-s$SEED.log run --mode grpo --out runs/study-grpo-s$SEED
wait
