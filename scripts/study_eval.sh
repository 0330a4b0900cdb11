#!/usr/bin/env bash
# Issue-10 study evaluation: every model of the seed-SEED runs on 300 held-out arith:2 problems and 300
# reworded ones (scripts/reworded_arith.py), greedy, fp32; two processes side by side, one thread each.
#   bash scripts/study_eval.sh [SEED] [STEP]      then: python scripts/study.py report --group ...
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${1:-0}; STEP=${2:-000100}
OUT=runs/eval/study
.venv/bin/python scripts/reworded_arith.py --n 300 --out runs/eval/reworded.jsonl
ev() { OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python scripts/study.py run --out $OUT --limit 300 \
         --sets arith:2,jsonl:runs/eval/reworded.jsonl "$@"; }
ck() { echo "runs/$1/checkpoints/step-$STEP"; }
ev hrpo-r0.99-s$SEED=$(ck study-hrpo-r0.99-s$SEED) base=default hrpo-r0.99-plain-s$SEED=$(ck study-hrpo-r0.99-s$SEED) &
ev grpo-s$SEED=$(ck study-grpo-s$SEED) hrpo-r0.95-s$SEED=$(ck study-hrpo-r0.95-s$SEED) base-r0.95=default@r0.95 &
wait
