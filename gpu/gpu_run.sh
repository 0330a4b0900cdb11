#!/usr/bin/env bash
# The device check in one command (issues 26 and 25): install the carried pack into an empty --target, check
# every requirement against what is then visible, and run gpu/gpu_check.py (decode table, profile of a
# replayed step, training eager vs graph rollouts, the app on the GPU, single-row decode).
# Build the pack here first (.venv/bin/python -m gpu.gpu_pack), then on the device:
#   run(command="bash gpu/gpu_run.sh", carry=[".cache/gpu"], timeout_s=420)      # ~5-6 min on an H200
# Writes $OUT/gpu_check.json (every figure, rewritten after each part), gpu_check.log, pack_check.txt and
# nvidia-smi.txt ($OUT defaults to reports/gpu_check).
# Options: --quick (tiny shapes, CPU when there is no GPU), --deadline-s N (parts that would end later than
# N s after gpu_check.py starts are skipped; default 300, --quick 1800; the run is stopped at N + 30 s
# and keeps what it wrote), and any other gpu_check.py option (--parts decode,profile ...).
# Environment: PY (python3; with --quick and no pack, .venv/bin/python), SITE (/tmp/site), PACK (.cache/gpu),
# NO_INSTALL=1 (use only what PY sees).
# CPU rehearsals:
#   bash gpu/gpu_run.sh --quick                                         # the dev venv, no pack
#   .venv/bin/python -m gpu.gpu_pack --python-version 3.11 --glibc 2.36 --out /tmp/pack311
#   PY=$(.venv/bin/python -m gpu.gpu_pack --python-version 3.11 --stand-in /tmp/image) PACK=/tmp/pack311 \
#     bash gpu/gpu_run.sh --quick          # a clean venv holding only the image's packages, plus the pack
set -o pipefail
cd "$(dirname "$0")/.."
quick=""
deadline=""
prev=""
for a in "$@"; do
  case "$a" in
    --quick|--cpu) quick=1 ;;
    --deadline-s=*) deadline="${a#*=}" ;;
  esac
  [ "$prev" = "--deadline-s" ] && deadline="$a"
  prev="$a"
done
[ -n "$deadline" ] || deadline=$([ -n "$quick" ] && echo 1800 || echo 300)
LIMIT_S=${LIMIT_S:-$(( ${deadline%.*} + 30 ))}
PACK=${PACK:-.cache/gpu}
case "$PACK" in /*) ;; *) PACK="$PWD/$PACK" ;; esac
if [ -z "$PY" ]; then
  PY=python3
  [ -n "$quick" ] && [ -x .venv/bin/python ] && PY=.venv/bin/python
fi
SITE=${SITE:-/tmp/site}
OUT=${OUT:-reports/gpu_check}
mkdir -p "$OUT"
use_pack=""
if [ -d "$PACK/whl" ] && [ -z "$NO_INSTALL" ]; then
  want=$(sed -n 's/.*"python_version": "\([0-9.]*\)".*/\1/p' "$PACK/plan.json")
  have=$($PY -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [ "$want" = "$have" ]; then
    use_pack=1
  elif [ -z "$quick" ]; then
    echo "the pack is for Python $want, $PY is $have"; exit 3
  else
    echo "the pack is for Python $want, $PY is $have: rehearsing with what $PY has"
  fi
fi
if [ -n "$use_pack" ]; then
  rm -rf "$SITE"
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$PACK"/whl/*.whl || exit 3
  export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  $PY -m gpu.gpu_pack --verify --pack "$PACK" 2>&1 | tee "$OUT/pack_check.txt"   # goes on either way
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ -d "$PACK/tokenizer" ] && { [ -n "$use_pack" ] || [ -z "$quick" ]; }; then
  export HRPO_GPU_TOKENIZER="$PACK/tokenizer" HRPO_CACHE="${HRPO_CACHE:-/tmp/hrpo-cache}" HRPO_FETCH_EMBEDDED=0
elif [ -z "$quick" ]; then
  echo "no $PACK/tokenizer: run gpu/gpu_pack.py here first and carry $PACK"; exit 2
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia-smi.txt"
timeout -k 10 "$LIMIT_S" $PY -m gpu.gpu_check --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
