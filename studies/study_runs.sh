#!/usr/bin/env bash
# Issue 10 study: HRPO (an r_min sweep, paper Table 3) beside the GRPO baseline, runs side by side on the
# 2-core dev CPU (one thread each). Rounds 1-2: 1 prompt x G = 8 per update, fp32 (exact: logprob_drift
# ~1e-5). Round 3: PROMPTS=4 DTYPE=bfloat16 (names get -b4-bf16). STEPS=300 (names get -n300) for the
# long runs. RESUME=--resume carries runs on.
#   bash studies/study_runs.sh [SEED]        (R_MINS="0.99" for one HRPO run beside GRPO)
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${1:-0}; PROMPTS=${PROMPTS:-1}; DTYPE=${DTYPE:-float32}; STEPS=${STEPS:-100}
TAG=""; [ "$PROMPTS$DTYPE" = 1float32 ] || TAG=-b$PROMPTS-${DTYPE/bfloat16/bf16}
[ "$STEPS" = 100 ] || TAG=$TAG-n$STEPS                  # e.g. STEPS=300: study-hrpo-r0.99-b4-bf16-n300-s0
common=(--model default --task arith --steps "$STEPS" --group-size 8 --batch-prompts "$PROMPTS" --max-new-tokens 64
        --lr 1e-4 --gate-lr 1e-3 --lambda-lr 3e-2 --weight-decay 0.1 --lora-rank 8 --lora-alpha 16
        --save-every 10 --keep-checkpoints 2 --dtype "$DTYPE" --seed "$SEED" ${RESUME:-})
run() { OMP_NUM_THREADS=1 nohup .venv/bin/python -m hrpo train "${common[@]}" "$@" > "$OUTLOG" 2>&1 & }
for r in ${R_MINS:-0.99 0.98 0.95}; do
  OUTLOG=runs/study-hrpo-r$r$TAG-s$SEED.log run --mode hrpo --r-min "$r" --out runs/study-hrpo-r$r$TAG-s$SEED
done
OUTLOG=runs/study-grpo$TAG-s$SEED.log run --mode grpo --out runs/study-grpo$TAG-s$SEED
wait
