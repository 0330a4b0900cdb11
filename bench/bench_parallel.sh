#!/usr/bin/env bash
# Issue 10: on a 2-core CPU, which is faster for the study's runs: torchrun with 2 processes (one prompt x G each,
# one update over both), two independent runs side by side (one thread each), or one process with 2 prompts
# (2 threads)?  Every contender trains STEPS updates on 2 prompts x G = 8 per update in all (the side-by-side
# pair: 1 prompt each); prints seconds per update (mean over steps 2..STEPS; step 1 warms up) and wall time.
#   bash bench/bench_parallel.sh [STEPS]        (fp32 like the study; DTYPE=bfloat16 to change)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-4}
OUT=$(mktemp -d /tmp/hrpo-bench-parallel.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
common=(--model "${MODEL:-default}" --task arith --steps "$STEPS" --group-size 8 --max-new-tokens 64 --lr 1e-4 --lora-rank 8
        --lora-alpha 16 --dtype "${DTYPE:-float32}" --save-every 1000 --seed 0 --eval-every 0)
per_update() {  # mean step_seconds over steps 2.. of the given metrics files (the max of parallel runs per step)
  .venv/bin/python - "$@" <<'EOF'
import json, sys
runs = [[json.loads(l)["step_seconds"] for l in open(f)] for f in sys.argv[1:]]
steps = [max(s) for s in zip(*runs)][1:]
print(f"{sum(steps) / len(steps):.1f}")
EOF
}
t0=$(date +%s)
OMP_NUM_THREADS=1 .venv/bin/python -m torch.distributed.run --nproc_per_node 2 --master_port 29611 -m hrpo train \
  "${common[@]}" --batch-prompts 1 --out "$OUT/torchrun" > "$OUT/torchrun.log" 2>&1
t1=$(date +%s)
for s in 0 1; do
  OMP_NUM_THREADS=1 .venv/bin/python -m hrpo train "${common[@]}" --batch-prompts 1 --seed $s --out "$OUT/side$s" \
    > "$OUT/side$s.log" 2>&1 &
done
wait
t2=$(date +%s)
OMP_NUM_THREADS=2 .venv/bin/python -m hrpo train "${common[@]}" --batch-prompts 2 --out "$OUT/one" > "$OUT/one.log" 2>&1
t3=$(date +%s)
echo "contender | seconds per update (2 prompts x 8) | wall for $STEPS updates incl. start-up (s)"
echo "torchrun, 2 processes x 1 prompt | $(per_update "$OUT/torchrun/metrics.jsonl") | $((t1 - t0))"
echo "two runs side by side, 1 prompt each | $(per_update "$OUT/side0/metrics.jsonl" "$OUT/side1/metrics.jsonl") | $((t2 - t1))"
echo "one process, 2 threads, 2 prompts | $(per_update "$OUT/one/metrics.jsonl") | $((t3 - t2))"
