#!/usr/bin/env bash
# Held-out greedy evaluation of base vs GRPO vs HRPO on the arith task the checkpoints were trained on
# (figures: docs/PERFORMANCE.md).  Usage: bash scripts/eval_shipped.sh [LIMIT] [TASK]
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=${1:-200}
TASK=${2:-arith:2}
mkdir -p runs/eval
for spec in default checkpoints/smollm2-arith-grpo checkpoints/smollm2-arith-hrpo; do
  name=$(basename "$spec")
  .venv/bin/python -m hrpo eval --model "$spec" --task "$TASK" --limit "$LIMIT" --greedy --max-new-tokens 128 \
    --batch-size 25 --json --out "runs/eval/$name.jsonl" | tee "runs/eval/$name.json"
done
.venv/bin/python -m hrpo eval --model default --task "$TASK" --limit "$LIMIT" --greedy --max-new-tokens 128 \
  --batch-size 25 --no-hybrid --json --out runs/eval/default-plain.jsonl | tee runs/eval/default-plain.json
