"""Park a study's training runs inside the repository, so that they outlive the machine they ran on.

A study's runs take more CPU hours than one session has, and a session may start on a new machine whose
home directory is empty: only the repository carries over.  `save` copies what resuming and selecting need
from the runs directory into the repository; `stow` commits that copy and takes it out of the working tree
again (a second commit), leaving `<to>.commit`, the commit that holds it: the parked state lives in the
history, so the working tree stays small (a checkout that travels, such as the GPU machine's, has a size
limit); `restore` puts it back where the runs expect it, from the folder or else from that commit.

    python -m studies.park save    --runs ~/hrpo-runs/forms --to studies/parked/forms
    python -m studies.park stow    --to studies/parked/forms          # two commits on the current branch
    python -m studies.park restore --runs ~/hrpo-runs/forms --to studies/parked/forms

What a parked run keeps (RUN = one run directory, e.g. hrpo-s1):
  RUN/train_config.json, metrics.jsonl, eval.jsonl     as written by the trainer
  RUN/checkpoints/step-N     the newest checkpoint, with trainer_state.pt (optimizer, scheduler, RNG) unless
                             the run is finished: resuming from it continues the same run
  RUN/checkpoints/step-E     the checkpoint of the best eval.jsonl step so far (ties: the later), weights only:
                             the one `forms_study select` would evaluate (when it is not step-N already)
  RUN.log                    the trainer's log beside the run
  eval/rows/*                evaluation rows (`forms_study eval`) with each model's .spec (the checkpoint that
                             made them: rows without it are redone), so finished evaluations are not redone
Everything else (older checkpoints, tensorboard, locks) stays behind.  `save` replaces the parked copy as a
whole (written beside it, then swapped in); `restore` copies a parked run only where the runs directory has
no checkpoint at or past its newest step (a run that is behind moves to RUNS/.behind/), and rows only where
none exist, so it never rewinds a run.
Test: pytest tests/test_park.py
"""
import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from hrpo import rundir

RUN_FILES = ("train_config.json", "metrics.jsonl", "eval.jsonl")


def park_run(run: Path, dst: Path) -> list[int]:
    """Copy what `run` needs into `dst` (a new directory); returns the parked checkpoints' steps."""
    kept = rundir.checkpoints(run)
    if not kept:
        return []
    dst.mkdir(parents=True)
    for name in RUN_FILES:
        if (run / name).is_file():
            shutil.copy2(run / name, dst / name)
    newest, by_step = rundir.step_of(kept[-1]), {rundir.step_of(c): c for c in kept}
    best = (rundir.best_eval(run) or {}).get("step")
    steps, done = sorted({newest, best} - {None}), rundir.finished(run)
    for step in steps:
        with_state = step == newest and not done
        shutil.copytree(by_step[step], dst / "checkpoints" / by_step[step].name,
                        ignore=None if with_state else shutil.ignore_patterns("trainer_state.pt"))
    log = run.parent / f"{run.name}.log"
    if log.is_file():
        shutil.copy2(log, dst.parent / log.name)
    return steps


def save(runs: Path, to: Path) -> dict:
    """Park every run under `runs` and its evaluation rows in `to`, replacing what was parked there.
    Returns {run name: parked steps}."""
    new, old = to.with_name(to.name + ".new"), to.with_name(to.name + ".old")
    for d in (new, old):
        shutil.rmtree(d, ignore_errors=True)
    new.mkdir(parents=True)
    parked = {}
    for run in sorted(p for p in runs.iterdir() if p.is_dir() and (p / "checkpoints").is_dir()):
        steps = park_run(run, new / run.name)
        if steps:
            parked[run.name] = steps
    rows = runs / "eval" / "rows"
    if rows.is_dir():
        shutil.copytree(rows, new / "eval" / "rows", ignore=shutil.ignore_patterns("*.tmp", "*.part", ".*"))
    if to.exists():
        to.rename(old)
    new.rename(to)
    shutil.rmtree(old, ignore_errors=True)
    return parked


class ParkError(RuntimeError):
    """One line: why parked runs could not be stowed or restored."""


def git(cwd: Path, *args: str) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if res.returncode:
        raise ParkError(f"git {' '.join(args)}: {(res.stderr or res.stdout).strip().splitlines()[-1]}")
    return res.stdout.strip()


def pointer(to: Path) -> Path:
    return to.with_name(to.name + ".commit")


def stow(to: Path) -> str:
    """Commit the parked folder `to` (nothing else), then remove it from the working tree in a second commit that
    adds `<to>.commit` naming the first; returns the first commit's id."""
    if not to.is_dir():
        raise ParkError(f"nothing parked in {to}: run save first")
    repo = Path(git(to, "rev-parse", "--show-toplevel"))
    rel = str(to.resolve().relative_to(repo.resolve()))
    runs = ", ".join(sorted(p.name for p in to.iterdir() if p.is_dir() and p.name != "eval")) or "rows only"
    git(repo, "add", "-A", "--", rel)
    git(repo, "commit", "-q", "-m", f"Parked study runs {rel}: {runs}", "--", rel)
    commit = git(repo, "rev-parse", "HEAD")
    git(repo, "rm", "-r", "-q", "--", rel)
    pointer(to).parent.mkdir(parents=True, exist_ok=True)          # git rm takes an emptied parent with it
    pointer(to).write_text(commit + "\n", encoding="utf-8")
    git(repo, "add", "--", str(pointer(to).resolve().relative_to(repo.resolve())))
    git(repo, "commit", "-q", "-m", f"{rel} out of the working tree: parked in {commit[:12]} ({rel}.commit)",
        "--", rel, str(pointer(to).resolve().relative_to(repo.resolve())))
    return commit


def restore(runs: Path, to: Path) -> list[str]:
    """Put parked runs and rows back under `runs` where the runs directory is behind; returns what it restored.
    The parked copy is the folder `to`, else the one in the commit `<to>.commit` names."""
    if not to.is_dir() and pointer(to).is_file():
        commit = pointer(to).read_text(encoding="utf-8").strip()
        repo = Path(git(to.parent, "rev-parse", "--show-toplevel"))
        rel = str(to.resolve().relative_to(repo.resolve()))
        with tempfile.TemporaryDirectory() as tmp:
            archive = subprocess.run(["git", "archive", commit, rel], cwd=repo, capture_output=True)
            if archive.returncode:
                raise ParkError(f"the parked runs are in commit {commit[:12]}, which this clone lacks "
                                "(a shallow clone?): fetch the full history, or the runs start again")
            subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
            return restore(runs, Path(tmp) / rel)
    done = []
    if not to.is_dir():
        return done
    runs.mkdir(parents=True, exist_ok=True)
    for src in sorted(p for p in to.iterdir() if p.is_dir() and (p / "checkpoints").is_dir()):
        newest = rundir.step_of(rundir.checkpoints(src)[-1])
        run = runs / src.name
        local = rundir.checkpoints(run) if run.is_dir() else []
        if local and rundir.step_of(local[-1]) >= newest:
            continue
        if run.exists():                             # kept aside, out of the studies' sight
            aside = runs / ".behind" / f"{src.name}-step-{rundir.step_of(local[-1]) if local else 0}"
            aside.parent.mkdir(exist_ok=True)
            shutil.rmtree(aside, ignore_errors=True)
            run.rename(aside)
        shutil.copytree(src, run)
        log = to / f"{src.name}.log"
        if log.is_file() and not (runs / log.name).exists():
            shutil.copy2(log, runs / log.name)
        done.append(f"{src.name} (step {newest})")
    rows = to / "eval" / "rows"
    if rows.is_dir():
        (runs / "eval" / "rows").mkdir(parents=True, exist_ok=True)
        for f in sorted(p for p in rows.iterdir() if p.is_file()):   # the rows and each model's .spec with them
            if not (runs / "eval" / "rows" / f.name).exists():
                shutil.copy2(f, runs / "eval" / "rows" / f.name)
                done.append(f"rows {f.name}")
    return done


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m studies.park", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["save", "stow", "restore"])
    ap.add_argument("--runs", help="the study's runs directory (e.g. ~/hrpo-runs/forms); save and restore")
    ap.add_argument("--to", required=True, help="the parked copy inside the repository (e.g. studies/parked/forms)")
    args = ap.parse_args(argv)
    to = Path(args.to)
    if args.action != "stow" and not args.runs:
        ap.error(f"{args.action} needs --runs")
    runs = Path(args.runs).expanduser() if args.runs else None
    try:
        if args.action == "stow":
            print(f"parked runs committed in {stow(to)}; {pointer(to)} names it")
        elif args.action == "save":
            if not runs.is_dir():
                raise ParkError(f"no runs directory {runs}")
            for name, steps in save(runs, to).items():
                print(f"parked {name}: checkpoints at steps {', '.join(map(str, steps))}")
        else:
            for line in restore(runs, to) or ["nothing to restore"]:
                print(f"restored {line}" if line != "nothing to restore" else line)
    except ParkError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
