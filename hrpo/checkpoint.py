"""Checkpoints: config.json + gate.safetensors + adapter/ (peft) + trainer_state.pt, written atomically.

A checkpoint directory is assembled in a temporary sibling directory and renamed into place, so a
crash never leaves a half-written checkpoint under its final name.  Weights are read only through
safetensors; the trainer state goes through torch.load(weights_only=True).
  config.json         {"format": "hrpo-checkpoint", "step", "base_model", "mode", "hidden_size",
                       "vocab_size", "train": <every TrainConfig field>}
  gate.safetensors    W_r, W_i, Lambda (HRPO only; GRPO checkpoints have no gate)
  adapter/            LoRA adapter in peft format
  trainer_state.pt    step, optimizer, scheduler, RNG states (absent in exported checkpoints)
Test: pytest tests/test_trainer.py -k checkpoint
"""
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

FORMAT = "hrpo-checkpoint"


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete, corrupted or made for another base model."""


def is_checkpoint(path) -> bool:
    cfg = Path(path) / "config.json"
    try:
        return cfg.is_file() and json.loads(cfg.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def read_config(path) -> dict:
    try:
        cfg = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable config.json ({err})") from err
    if cfg.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an HRPO checkpoint (config.json has no format {FORMAT!r})")
    return cfg


def save_checkpoint(path, *, model, gate, train_config: dict, step: int, trainer_state: dict | None = None) -> Path:
    """Write a checkpoint directory atomically; `model` is the peft model, `gate` None for GRPO."""
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
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_gate_into(gate, path) -> None:
    file = Path(path) / "gate.safetensors"
    try:
        state = load_file(file)
        gate.load_state_dict({k: v.to(gate.Lambda.device) for k, v in state.items()})
    except Exception as err:  # safetensors raises several types for truncated or foreign files
        raise CheckpointError(f"{path}: cannot load gate.safetensors ({str(err).splitlines()[0]})") from err


def check_base(cfg: dict, hm, path) -> None:
    emb = hm.embeddings
    if (cfg.get("hidden_size"), cfg.get("vocab_size")) != (emb.shape[1], emb.shape[0]):
        raise CheckpointError(f"{path}: made for base model {cfg.get('base_model')!r} "
                              f"(hidden {cfg.get('hidden_size')}, vocab {cfg.get('vocab_size')}), "
                              f"not for {hm.spec!r} (hidden {emb.shape[1]}, vocab {emb.shape[0]})")


def attach_adapter(hm, path, trainable: bool):
    """Wrap hm.model with the checkpoint's LoRA adapter (peft)."""
    from peft import PeftModel
    adapter = Path(path) / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise CheckpointError(f"{path}: adapter/ is missing or incomplete")
    try:
        hm.model = PeftModel.from_pretrained(hm.model, adapter, is_trainable=trainable)
    except Exception as err:
        raise CheckpointError(f"{path}: cannot load the LoRA adapter ({str(err).splitlines()[0]})") from err
    return hm


def load_checkpoint(path, device=None, dtype=None, base=None):
    """A HybridModel with base + adapter (merged, for inference) + gate; `base` overrides the spec."""
    from .models import load_model
    path = Path(path)
    cfg = read_config(path)
    train = cfg.get("train", {})
    from .config import GateConfig
    gc = GateConfig(train.get("c", 8.0), train.get("r_min", 0.99), train.get("r_max", 0.999))
    hm = load_model(base or cfg["base_model"], device=device, dtype=dtype, gate_config=gc)
    check_base(cfg, hm, path)
    attach_adapter(hm, path, trainable=False)
    hm.model = hm.model.merge_and_unload().eval()
    if cfg["mode"] == "hrpo":
        load_gate_into(hm.gate, path)
    hm.spec, hm.mode = str(path), cfg["mode"]
    return hm


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


def latest_checkpoint(out) -> Path | None:
    """The newest complete checkpoint under <out>/checkpoints (temporary dirs never match)."""
    root = Path(out) / "checkpoints"
    found = sorted(p for p in root.glob("step-*") if p.is_dir() and is_checkpoint(p))
    return found[-1] if found else None


def remove_partial(out) -> int:
    """Delete temporary directories a killed run left under <out>/checkpoints; returns how many."""
    root = Path(out) / "checkpoints"
    partial = [p for p in root.glob(".step-*") if p.is_dir()]
    for p in partial:
        shutil.rmtree(p, ignore_errors=True)
    return len(partial)


def prune_checkpoints(out, keep: int) -> None:
    root = Path(out) / "checkpoints"
    for p in sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(p, ignore_errors=True)


def export_checkpoint(src, dst) -> Path:
    """Copy a checkpoint without its trainer state (gate + LoRA + config only), atomically."""
    src, dst = Path(src), Path(dst)
    read_config(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.tmp-", dir=dst.parent))
    try:
        shutil.copytree(src, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("trainer_state.pt", "README.md"))
        if dst.exists():
            shutil.rmtree(dst)
        os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst
