#!/usr/bin/env bash
# The shipped-models study (docs/forms_study.md): HRPO (gate lr 3e-2, no decay on W_r/W_i) and GRPO on the
# `forms` task, configs/smollm2-forms-{hrpo,grpo}.json, 300 updates, seeds 0 1 2.  Resumable: run it again
# and every unfinished run continues from its newest checkpoint; finished runs are skipped.  Two runs at a
# time (HRPO and GRPO of one seed), one thread each, at the lowest priority, so foreground work keeps the cores.
#   bash studies/forms_runs.sh [SEEDS]          e.g. bash studies/forms_runs.sh "0 1 2"
# Runs go to $HRPO_STUDY_RUNS (default ~/hrpo-runs/forms: outside the checkout, which a new session lays anew);
# each run's log is <run>.log beside it.  MAX_MINUTES=N checkpoints and stops each run after N minutes (a
# session's end), to be resumed by the same command.  Then: python -m studies.forms_study eval (see its docstring).
# RECIPE=gemma3-270m-multi runs the multilingual pair (configs/gemma3-270m-multi-*.json; runs default to
# ~/hrpo-runs/multi) the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
RECIPE=${RECIPE:-smollm2-forms}
RUNS=${HRPO_STUDY_RUNS:-$HOME/hrpo-runs/$([ "$RECIPE" = smollm2-forms ] && echo forms || echo multi)}
mkdir -p "$RUNS"
one() {   # mode seed: train unless finished (the step-300 checkpoint exists)
  local out="$RUNS/$1-s$2"
  [ -f "$out/checkpoints/step-000300/config.json" ] && { echo "$out: finished"; return; }
  OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python -m hrpo train --config "configs/$RECIPE-$1.json" \
    --seed "$2" --out "$out" --resume --max-minutes "${MAX_MINUTES:-0}" >> "$out.log" 2>&1
}
for seed in ${1:-0 1 2}; do
  one hrpo "$seed" & one grpo "$seed" & wait
done
