#!/usr/bin/env bash
# Issue-10 study evaluation: every model of the seed-SEED runs on 300 held-out arith:2 problems and 300
# reworded ones (studies/reworded_arith.py), greedy, fp32; two processes side by side, one thread each.
# Seed 0 also evaluates the base model, HRPO r_min 0.95 and the latent ablation; SEEDS="1 2" evaluates the
# headline pair (HRPO r_min 0.99 and GRPO) of each of those seeds instead; TAG=-b4-bf16 picks round 3's runs
# (PROMPTS=4 DTYPE=bfloat16 in study_runs.sh).
#   bash studies/study_eval.sh [SEED] [STEP]      then: python -m studies.study report --group ...
#   SEEDS="1 2" bash studies/study_eval.sh;  TAG=-b4-bf16 SEEDS=1 bash studies/study_eval.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${1:-0}; STEP=${2:-000100}
OUT=runs/eval/study
.venv/bin/python -m studies.reworded_arith --n 300 --out runs/eval/reworded.jsonl
ev() { OMP_NUM_THREADS=1 .venv/bin/python -m studies.study run --out $OUT --limit 300 \
         --sets arith:2,jsonl:runs/eval/reworded.jsonl "$@"; }
ck() { echo "runs/$1/checkpoints/step-$STEP"; }
if [ -n "${SEEDS:-}" ]; then                      # the pair of every seed, spread over the two processes
  set -- $SEEDS; a=(); b=()
  T=${TAG:-}
  for s in "$@"; do a+=(hrpo-r0.99$T-s$s=$(ck study-hrpo-r0.99$T-s$s)); b+=(grpo$T-s$s=$(ck study-grpo$T-s$s)); done
  ev "${a[@]}" & ev "${b[@]}" &
  wait; exit 0
fi
ev hrpo-r0.99-s$SEED=$(ck study-hrpo-r0.99-s$SEED) base=default hrpo-r0.99-plain-s$SEED=$(ck study-hrpo-r0.99-s$SEED) &
ev grpo-s$SEED=$(ck study-grpo-s$SEED) hrpo-r0.95-s$SEED=$(ck study-hrpo-r0.95-s$SEED) base-r0.95=default@r0.95 &
wait
