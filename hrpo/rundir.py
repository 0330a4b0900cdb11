"""A training run's directory (`--out`): its lock, its checkpoints, its metrics logs.

  RUN/.lock                   one trainer per run directory (an OS lock, dropped when its process ends)
  RUN/train_config.json       the run's TrainConfig (written by the trainer)
  RUN/metrics.jsonl           one JSON line per step; eval.jsonl with --eval-every
  RUN/checkpoints/step-NNNNNN checkpoint directories (their format: hrpo/checkpoint.py), oldest pruned
  RUN/checkpoints/.step-*     temporary directories of a checkpoint being written (removed on resume)
  RUN/checkpoints/damaged-*   checkpoints a resume skipped, kept for inspection
Resuming starts from the newest checkpoint that loads (damaged newer ones are skipped, saying so, and set
aside) and cuts metrics.jsonl and eval.jsonl back to its step, so each step is logged exactly once.
Failures are CheckpointError (one line).  `read_rows` is the one reader of metrics.jsonl and eval.jsonl (the
app's job status and the Training dynamics tab read them through it).
Test: pytest tests/test_reliability.py tests/test_reliability_run.py tests/test_analysis_dynamics.py
"""
import json
import math
import os
import shutil
import time
from pathlib import Path

from .checkpoint import CheckpointError, check_resumable, is_checkpoint


def check_output_dir(out: Path) -> None:
    """Fail before any work when the output directory cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"     # per process: torchrun's ranks probe at once
        probe.write_bytes(b"0" * 1024)
        probe.unlink()
    except OSError as err:
        raise CheckpointError(f"cannot write to output directory {out}: {err.strerror or err}") from err


_LOCKS: dict[str, int] = {}


def lock_run_dir(out) -> None:
    """Hold an exclusive lock on <out>/.lock for the rest of this process (the OS drops it on exit or death).

    A second process raises CheckpointError naming the holder's pid; the same process may lock again."""
    import fcntl
    key = str(Path(out).resolve())
    if key in _LOCKS:
        return
    fd = os.open(Path(out) / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise CheckpointError(f"{out} is in use by another trainer (pid {holder}); wait for it, stop it, "
                              "or choose another --out") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _LOCKS[key] = fd


def has_run(out) -> bool:
    """True when <out> already holds a run: a checkpoint or a logged step."""
    out = Path(out)
    metrics = out / "metrics.jsonl"
    return bool(list((out / "checkpoints").glob("step-*"))) or (metrics.is_file() and metrics.stat().st_size > 0)


def checkpoints(out) -> list[Path]:
    """Every checkpoint under <out>/checkpoints, oldest first."""
    root = Path(out) / "checkpoints"
    return sorted(p for p in root.glob("step-*") if p.is_dir() and is_checkpoint(p))


def latest_checkpoint(out) -> Path | None:
    """The newest complete checkpoint under <out>/checkpoints (temporary dirs never match)."""
    found = checkpoints(out)
    return found[-1] if found else None


def resumable_checkpoint(out, hybrid: bool, say=print) -> Path | None:
    """The newest checkpoint that loads; damaged newer ones are skipped, saying so through `say`."""
    found = checkpoints(out)
    for i, path in enumerate(reversed(found)):
        try:
            check_resumable(path, hybrid)
            return path
        except CheckpointError as err:
            older = found[-i - 2] if i + 1 < len(found) else None
            say(f"warning: {err}; " + (f"trying the previous checkpoint {older.name}" if older
                                       else "no older checkpoint"))
    if found:
        raise CheckpointError(f"{out}: no checkpoint can be resumed (all {len(found)} are damaged)")
    return None


def set_aside_newer(out, path: Path) -> list[Path]:
    """Rename the checkpoints of <out> newer than `path` to damaged-step-N-<time> (kept for inspection, never
    resumed from or pruned); returns their new paths."""
    moved = []
    for newer in sorted(p for p in (Path(out) / "checkpoints").glob("step-*") if p.name > path.name):
        target = newer.with_name(f"damaged-{newer.name}-{int(time.time())}")
        os.replace(newer, target)
        moved.append(target)
    return moved


def remove_partial(out) -> int:
    """Delete temporary directories a killed run left under <out>/checkpoints; returns how many."""
    root = Path(out) / "checkpoints"
    partial = [p for p in root.glob(".step-*") if p.is_dir()]
    for p in partial:
        shutil.rmtree(p, ignore_errors=True)
    return len(partial)


def prune_checkpoints(out, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints of <out>."""
    root = Path(out) / "checkpoints"
    for p in sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(p, ignore_errors=True)


def cut_jsonl(path, step: int) -> int:
    """Drop lines of a metrics/eval jsonl past `step` (atomically: temp file, then rename); returns how many."""
    path = Path(path)
    if not path.is_file():
        return 0
    keep, dropped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
            past = not isinstance(row, dict) or not isinstance(row.get("step"), int) or row["step"] > step
        except ValueError:
            past = True                                  # a half-written last line
        if past:
            dropped += 1
        else:
            keep.append(line + "\n")
    if dropped:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(keep), encoding="utf-8")
        os.replace(tmp, path)
    return dropped


MAX_STEP = 10**9


def is_row(row) -> bool:
    """A metrics or eval row: a dict whose step is a whole number in [0, MAX_STEP] (a step of 1e20 or NaN is
    junk: it would break the plots' axes)."""
    step = row.get("step") if isinstance(row, dict) else None
    return (isinstance(step, (int, float)) and not isinstance(step, bool) and math.isfinite(step)
            and step == int(step) and 0 <= step <= MAX_STEP)


def parse_row(line) -> dict | None:
    """One metrics.jsonl / eval.jsonl line as a row (is_row), else None (a line being written, a stray value,
    junk)."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if is_row(row) else None


def read_rows(path) -> list[dict]:
    """Every complete row (parse_row) of a metrics.jsonl or eval.jsonl; [] when missing.  Bytes that are not
    UTF-8 are replaced, so a damaged file never fails its reader."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [row for row in map(parse_row, lines) if row is not None]


def step_of(checkpoint) -> int:
    """A checkpoint directory's step (step-000050 -> 50)."""
    return int(Path(checkpoint).name.split("-")[1])


def finished(out) -> bool:
    """The run holds the checkpoint of its last step (train_config.json's steps): it will train no further."""
    try:
        steps = int(json.loads((Path(out) / "train_config.json").read_text(encoding="utf-8"))["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return any(step_of(c) == steps for c in checkpoints(out))


def best_eval(out) -> dict | None:
    """The eval.jsonl row with the best greedy accuracy among the steps whose checkpoint still exists (ties: the
    later step): the checkpoint a study selects on its validation split.  None when there is none."""
    kept = {step_of(c) for c in checkpoints(out)}
    rows = [r for r in read_rows(Path(out) / "eval.jsonl") if r.get("step") in kept and "accuracy" in r]
    return max(rows, key=lambda r: (r["accuracy"], r["step"])) if rows else None
