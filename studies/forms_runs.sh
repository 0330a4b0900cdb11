#!/usr/bin/env bash
# The shipped-models study (docs/forms_study.md): HRPO (gate lr 3e-2, no decay on W_r/W_i) and GRPO on the
# `forms` task, configs/smollm2-forms-{hrpo,grpo}.json, 300 updates, seeds 0 1 2.  Resumable: run it again
# and every unfinished run continues from its newest checkpoint; finished runs are skipped.  Two runs at a
# time (HRPO and GRPO of one seed), one thread each, at the lowest priority, so foreground work keeps the cores.
#   bash studies/forms_runs.sh [SEEDS]          e.g. bash studies/forms_runs.sh "0 1 2"
# Runs go to $HRPO_STUDY_RUNS (default ~/hrpo-runs/forms, outside the checkout); each run's log is <run>.log
# beside it.  A new machine's home is empty, so the script first restores the runs parked in the repository
# (studies/parked/forms, or the commit studies/parked/forms.commit names; studies/park.py) and parks them there
# again when it ends; `python -m studies.park stow --to studies/parked/forms` then commits them and takes them
# out of the working tree, which carries the runs over to the next machine.  MAX_MINUTES=N checkpoints and stops the runs N minutes after the command starts (a session's
# end; later seeds are not started), to be resumed by the same command.
# Then: python -m studies.forms_study eval (see its docstring).
# RECIPE=gemma3-270m-multi runs the multilingual pair (configs/gemma3-270m-multi-*.json; runs default to
# ~/hrpo-runs/multi, parked in studies/parked/multi) the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
RECIPE=${RECIPE:-smollm2-forms}
STUDY=$([ "$RECIPE" = smollm2-forms ] && echo forms || echo multi)
RUNS=${HRPO_STUDY_RUNS:-$HOME/hrpo-runs/$STUDY}
PARKED=${HRPO_STUDY_PARKED:-studies/parked/$STUDY}
mkdir -p "$RUNS"
.venv/bin/python -m studies.park restore --runs "$RUNS" --to "$PARKED"
deadline=$(( $(date +%s) + 60 * ${MAX_MINUTES:-0} ))
left() {  # minutes until the deadline (0: no deadline), or "none" once it has passed
  [ "${MAX_MINUTES:-0}" = 0 ] && { echo 0; return; }
  local m=$(( (deadline - $(date +%s)) / 60 ))
  [ "$m" -gt 0 ] && echo "$m" || echo none
}
one() {   # mode seed minutes: train unless finished (hrpo.rundir.finished: the last step's checkpoint exists)
  local out="$RUNS/$1-s$2"
  .venv/bin/python -c "import sys; from hrpo.rundir import finished; sys.exit(not finished(sys.argv[1]))" "$out" \
    && { echo "$out: finished"; return; }
  OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python -m hrpo train --config "configs/$RECIPE-$1.json" \
    --seed "$2" --out "$out" --resume --max-minutes "$3" >> "$out.log" 2>&1
}
park() { .venv/bin/python -m studies.park save --runs "$RUNS" --to "$PARKED"; }
trap park EXIT
for seed in ${1:-0 1 2}; do
  m=$(left)
  [ "$m" = none ] && { echo "MAX_MINUTES reached: seed $seed and later not started"; break; }
  one hrpo "$seed" "$m" & one grpo "$seed" "$m" & wait
done
