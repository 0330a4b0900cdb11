"""The checkpoint format: write, read, validate and export one checkpoint directory.

  config.json         {"format": "hrpo-checkpoint", "step", "base_model", "mode", "hidden_size",
                       "vocab_size", "train": <every TrainConfig field>}
  gate.safetensors    W_r, W_i, Lambda (HRPO only; GRPO checkpoints have no gate)
  adapter/            LoRA adapter in peft format
  trainer_state.pt    step, optimizer, scheduler, RNG states (absent in exported checkpoints)
  NOTICE, GEMMA_TERMS.html   for a Gemma base model: the terms that go with every Model Derivative
A checkpoint directory is assembled in a temporary sibling directory and renamed into place, so a
crash never leaves a half-written checkpoint under its final name.  Weights are read only through
safetensors; the trainer state goes through torch.load(weights_only=True).  Exports never overwrite
anything but a checkpoint (and that only when forced); a full disk is one line naming the last complete
checkpoint.  Loading one as a model: hrpo.models.load_checkpoint; the run directory around checkpoints
(lock, resume point, pruning, metrics logs): hrpo/rundir.py.
Test: pytest tests/test_trainer.py -k checkpoint; tests/test_reliability_run.py tests/test_reliability_files.py
"""
import errno
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .config import unsafe_dir
from .errors import CheckpointError, DiskFullError

FORMAT = "hrpo-checkpoint"
TERMS = Path(__file__).resolve().parent / "terms"


def licence_files(model) -> list[Path]:
    """The licence files a checkpoint built on `model` carries: the Gemma Terms of Use and a NOTICE for any Gemma
    model (its terms ask that they go with every Model Derivative); none for Apache-2.0 models."""
    model_type = str(getattr(getattr(model, "config", None), "model_type", ""))
    return sorted((TERMS / "gemma").iterdir()) if model_type.startswith("gemma") else []


def is_checkpoint(path) -> bool:
    cfg = Path(path) / "config.json"
    try:
        meta = json.loads(cfg.read_text(encoding="utf-8")) if cfg.is_file() else None
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def read_config(path) -> dict:
    """config.json of a checkpoint, checked field by field (CheckpointError naming what is wrong)."""
    try:
        cfg = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable config.json ({err})") from err
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an HRPO checkpoint (config.json has no format {FORMAT!r})")
    cfg.setdefault("train", {})
    problems = [name for name, ok in [
        ("mode", cfg.get("mode") in ("hrpo", "grpo")),
        ("base_model", isinstance(cfg.get("base_model"), str) and cfg["base_model"].strip() != ""),
        ("step", isinstance(cfg.get("step"), int) and not isinstance(cfg.get("step"), bool)),
        ("train", isinstance(cfg["train"], dict))] if not ok]
    if problems:
        raise CheckpointError(f"{path}: config.json has a missing or invalid {', '.join(problems)}")
    return cfg


def base_chain(path, cfg: dict, depth: int = 8) -> None:
    """Refuse a checkpoint whose base_model leads back to itself (or chains deeper than `depth`)."""
    seen = [Path(path).resolve()]
    base = cfg["base_model"]
    while is_checkpoint(Path(base).expanduser()):
        target = Path(base).expanduser().resolve()
        if target in seen:
            raise CheckpointError(f"{path}: base_model {cfg['base_model']!r} leads back to {target} "
                                  "(a checkpoint cannot be its own base model)")
        if len(seen) >= depth:
            raise CheckpointError(f"{path}: base_model chains through more than {depth} checkpoints")
        seen.append(target)
        base = read_config(target)["base_model"]


def save_checkpoint(path, *, model, gate, train_config: dict, step: int, trainer_state: dict | None = None) -> Path:
    """Write a checkpoint directory atomically; `model` is the peft model, `gate` None for GRPO.

    A full disk (or any failed write) removes the temporary directory and raises DiskFullError naming
    the last complete checkpoint beside it, in one line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        emb = model.get_input_embeddings().weight
        meta = {"format": FORMAT, "step": step, "base_model": train_config["model"], "mode": train_config["mode"],
                "hidden_size": emb.shape[1], "vocab_size": emb.shape[0], "train": train_config}
        (tmp / "config.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        model.save_pretrained(tmp / "adapter")
        if gate is not None:
            save_file({k: v.detach().float().cpu().contiguous() for k, v in gate.state_dict().items()},
                      tmp / "gate.safetensors")
        if trainer_state is not None:
            torch.save(trainer_state, tmp / "trainer_state.pt")
        for terms in licence_files(model):
            shutil.copyfile(terms, tmp / terms.name)
        swap_into_place(tmp, path)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        why = write_failure(err)
        if why is None:
            raise
        others = sorted(p.name for p in path.parent.glob("step-*") if p.is_dir() and is_checkpoint(p))
        raise DiskFullError(f"{why} writing checkpoint {path.name} in {path.parent}; the last complete checkpoint "
                            f"is {others[-1] if others else 'none (no checkpoint was written yet)'}") from None
    return path


def write_failure(err: BaseException) -> str | None:
    """"no space left" for a full disk or quota, "a failed write (...)" for torch's writer giving up
    (its message does not say why: `enforce fail at inline_container.cc ... file write failed`), else None."""
    text = str(err)
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in text \
            or "StorageFull" in text:
        return "no space left"
    if isinstance(err, RuntimeError) and "inline_container" in text:
        return "a failed write (is the disk full?)"
    return None


def swap_into_place(tmp: Path, path: Path) -> None:
    """Put the finished directory `tmp` at `path`: rename over nothing, or move the old one aside first
    (rename), rename `tmp` in, then delete the old; the old one is put back if the second rename fails."""
    if not path.exists():
        os.replace(tmp, path)
        return
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def load_gate_into(gate, path) -> None:
    file = Path(path) / "gate.safetensors"
    try:
        state = load_file(file)
        gate.load_state_dict({k: v.to(gate.Lambda.device) for k, v in state.items()})
    except Exception as err:  # safetensors raises several types for truncated or foreign files
        raise CheckpointError(f"{path}: cannot load gate.safetensors ({str(err).splitlines()[0]})") from err
    if not all(torch.isfinite(v).all() for v in state.values()):
        raise CheckpointError(f"{path}: gate.safetensors holds NaN or inf values")


def check_base(cfg: dict, hm, path) -> None:
    emb = hm.embeddings
    if (cfg.get("hidden_size"), cfg.get("vocab_size")) != (emb.shape[1], emb.shape[0]):
        raise CheckpointError(f"{path}: made for base model {cfg.get('base_model')!r} "
                              f"(hidden {cfg.get('hidden_size')}, vocab {cfg.get('vocab_size')}), "
                              f"not for {hm.spec!r} (hidden {emb.shape[1]}, vocab {emb.shape[0]})")


def load_trainer_state(path) -> dict | None:
    file = Path(path) / "trainer_state.pt"
    if not file.is_file():
        return None
    try:
        return torch.load(file, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: corrupted trainer_state.pt ({str(err).splitlines()[0]})") from err


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])


def check_resumable(path, hybrid: bool) -> None:
    """Raise CheckpointError unless every file a resume reads is present and loads (without a model)."""
    from safetensors import safe_open
    read_config(path)
    if load_trainer_state(path) is None:
        raise CheckpointError(f"{path}: no trainer_state.pt, cannot resume from it")
    files = [Path(path) / "adapter" / "adapter_model.safetensors"]
    files += [Path(path) / "gate.safetensors"] if hybrid else []
    for file in files:
        try:
            with safe_open(file, "pt") as f:
                for k in f.keys():
                    if not torch.isfinite(f.get_tensor(k)).all():
                        raise CheckpointError(f"{path}: {file.name} holds NaN or inf values")
        except CheckpointError:
            raise
        except Exception as err:
            raise CheckpointError(f"{path}: cannot load {file.name} ({str(err).splitlines()[0]})") from err


def within(line: str, step: int) -> bool:
    """A complete metrics line of a step <= `step` (a line being written, or anything else, is not)."""
    try:
        row = json.loads(line)
    except ValueError:
        return False
    return isinstance(row, dict) and isinstance(row.get("step", 0), int) and row.get("step", 0) <= step


def copy_run_metrics(src: Path, dst: Path) -> None:
    """RUN/metrics.jsonl (and eval.jsonl) up to the checkpoint's step -> dst/, so the app can draw the curves."""
    if src.parent.name != "checkpoints":
        return
    step = read_config(src).get("step", 0)
    for name in ("metrics.jsonl", "eval.jsonl"):
        file = src.parent.parent / name
        if file.is_file():
            lines = [line for line in file.read_text(encoding="utf-8", errors="replace").splitlines()
                     if within(line, step)]
            (dst / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def check_export_destination(src: Path, dst, force: bool) -> Path:
    """The destination of an export, or CheckpointError saying why it is refused.

    Never overwritten: an empty name, the current directory or its parents, the home directory, a file,
    a symbolic link, a non-empty directory that is not a checkpoint; a checkpoint only with `force`.
    The run's own checkpoint, its inside and its run's checkpoints/ are refused (that would break the run), and
    so is anything inside any run directory (one holding train_config.json), force or not."""
    bad = unsafe_dir(dst)
    if bad:
        raise CheckpointError(f"refusing to export into {str(dst)!r}: it {bad}; name a new directory, "
                              "e.g. checkpoints/my-model")
    dst = Path(dst)
    s, d = src.resolve(), dst.resolve()
    if s == d or s in d.parents or d in s.parents or (s.parent.name == "checkpoints" and d.parent == s.parent):
        raise CheckpointError(f"cannot export {src} onto {dst}: the destination is the checkpoint itself, inside "
                              "it, or in its run's checkpoints/ (that would break the run); pick another directory")
    run = next((p for p in (d, *d.parents) if (p / "train_config.json").is_file()), None)
    if run is not None:
        raise CheckpointError(f"refusing to export into {dst}: it is inside the run directory {run} (its resume "
                              "reads the checkpoints there), --force or not; pick a directory outside any run")
    if dst.is_symlink():
        raise CheckpointError(f"refusing to export onto {dst}: it is a symbolic link; name a real directory")
    if dst.exists() and not dst.is_dir():
        raise CheckpointError(f"refusing to export onto {dst}: it is a file, not a directory")
    if dst.is_dir() and any(dst.iterdir()):
        if not is_checkpoint(dst):
            raise CheckpointError(f"refusing to export into {dst}: it exists and is not a checkpoint (its files "
                                  "would be deleted); name a new directory")
        if not force:
            raise CheckpointError(f"{dst} already holds a checkpoint; pass --force to replace it")
    return dst


def export_checkpoint(src, dst, force: bool = False) -> Path:
    """Copy a checkpoint without its trainer state (gate + LoRA + config), atomically, with its run's metrics.

    Assembled in a hidden directory beside `dst`, then swapped in by rename (swap_into_place); an existing
    checkpoint at `dst` is replaced only with `force`, anything else there is refused (check_export_destination).
    Test: pytest tests/test_reliability_files.py -k export"""
    src = Path(src)
    cfg = read_config(src)
    needed = ["adapter/adapter_config.json"] + (["gate.safetensors"] if cfg["mode"] == "hrpo" else [])
    missing = [name for name in needed if not (src / name).is_file()]
    if missing:
        raise CheckpointError(f"{src}: {', '.join(missing)} missing: a damaged checkpoint is not exported")
    dst = check_export_destination(src, dst, force)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.tmp-", dir=dst.parent))
    try:
        tmp.chmod(0o755)                              # mkdtemp makes it private; an export is for sharing
        shutil.copytree(src, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("trainer_state.pt", "README.md"))
        copy_run_metrics(src, tmp)
        swap_into_place(tmp, dst)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        why = write_failure(err)
        if why is not None:
            raise DiskFullError(f"{why} exporting {src} to {dst}; nothing was changed at {dst}") from None
        if isinstance(err, shutil.Error):             # copytree's list of (source, destination, reason)
            first = err.args[0][0] if err.args and err.args[0] else ("?", "?", str(err))
            raise CheckpointError(f"cannot copy {src} ({len(err.args[0])} files failed; first {first[0]}: "
                                  f"{str(first[2]).splitlines()[0][:200]}); nothing was changed at {dst}") from None
        raise
    return dst
