#!/usr/bin/env bash
# Issue 13, part 2 on a device machine: install what .cache/gpu carries (built here beforehand by
# `PYTHONPATH=. .venv/bin/python scripts/gpu_pack.py`), then run every part of scripts/gpu_check.py.
# Figures: $OUT/gpu_check.json, log: $OUT/gpu_check.log.  About 4-5 minutes on an H100; the device call:
#   run(command="bash scripts/gpu_run.sh", carry=[".cache/gpu"], timeout_s=560)
# Extra arguments go to gpu_check.py (e.g. --parts decode).  PY, SITE, PACK override python3, /tmp/site,
# .cache/gpu; NO_INSTALL=1 skips the install (CPU rehearsal: see BENCHMARKS.md).
set -o pipefail
PY=${PY:-python3}
SITE=${SITE:-/tmp/site}
PACK=${PACK:-.cache/gpu}
case "$PACK" in /*) ;; *) PACK="$PWD/$PACK" ;; esac
OUT=${OUT:-reports/gpu_check}
mkdir -p "$OUT"
[ -d "$PACK/tokenizer" ] || { echo "no $PACK: run scripts/gpu_pack.py here first and carry $PACK"; exit 2; }
if [ -d "$PACK/whl" ] && [ -z "$NO_INSTALL" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$PACK"/whl/*.whl \
    || exit 3
fi
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}" HRPO_GPU_TOKENIZER="$PACK/tokenizer"
export HRPO_CACHE="${HRPO_CACHE:-/tmp/hrpo-cache}" HRPO_FETCH_EMBEDDED=0 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
export TOKENIZERS_PARALLELISM=false
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia-smi.txt"
timeout "${LIMIT_S:-480}" $PY scripts/gpu_check.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
