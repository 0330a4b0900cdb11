"""Faults and bad inputs (RELIABILITY.md): killed runs, full or unwritable disks, NaNs, corrupted or
foreign checkpoints, hosted-mode paths.  Real processes and real models (tiny-random)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT, run_cli
from hrpo import checkpoint as ckpt
from hrpo import rundir
from hrpo import trainer as trainer_mod
from hrpo.config import TrainConfig, TrainingError
from hrpo.models import ModelSpecError, load_checkpoint, load_model
from hrpo.trainer import Trainer
from studio.hosting import Host

TINY = dict(model="tiny-random", task="arith", group_size=2, batch_prompts=1, max_new_tokens=8, lora_rank=2,
            lora_alpha=4, lr=1e-2, gate_lr=1e-2, lambda_lr=1e-2, max_grad_norm=1.0, device="cpu", seed=3)


def train_args(out, steps, save_every):
    args = ["hrpo", "train", "--out", str(out), "--steps", str(steps), "--save-every", str(save_every)]
    for k, v in TINY.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    return args


def final_params(run) -> dict:
    last = rundir.latest_checkpoint(run)
    return {**load_file(last / "adapter" / "adapter_model.safetensors"), **load_file(last / "gate.safetensors")}


@pytest.mark.slow
def test_sigkill_then_resume_loses_nothing_and_matches(tmp_path):
    straight = run_cli(*train_args(tmp_path / "a", 6, 2))
    assert straight.returncode == 0, straight.stderr[-2000:]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", *train_args(tmp_path / "b", 6, 2)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while rundir.latest_checkpoint(tmp_path / "b") is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for d in (tmp_path / "b" / "checkpoints").iterdir():      # only complete checkpoints carry a final name
        if not d.name.startswith("."):
            assert ckpt.is_checkpoint(d) and (d / "trainer_state.pt").is_file() and (d / "gate.safetensors").is_file()
    killed_at = ckpt.read_config(rundir.latest_checkpoint(tmp_path / "b"))["step"]
    assert killed_at < 6
    resumed = run_cli(*train_args(tmp_path / "b", 6, 2), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not list((tmp_path / "b" / "checkpoints").glob(".step-*"))
    a, b = final_params(tmp_path / "a"), final_params(tmp_path / "b")
    for n in a:
        torch.testing.assert_close(a[n], b[n], atol=1e-6, rtol=1e-5)


@pytest.mark.slow
def test_unwritable_output_dir_is_reported_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run_cli("hrpo", "train", "--model", "tiny-random", "--out", str(blocker / "run"))
    assert res.returncode == 2 and "cannot write to output directory" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_nan_loss_is_skipped_then_stops_with_the_last_good_checkpoint(tmp_path, monkeypatch):
    t = Trainer(TrainConfig(**TINY, steps=10, save_every=2, out=str(tmp_path)))
    t.train_step(0), t.train_step(1)
    good = t.save(2)
    before = {n: p.detach().clone() for n, p in t.policy.named_parameters() if p.requires_grad}
    real = trainer_mod.policy_loss
    monkeypatch.setattr(trainer_mod, "policy_loss",
                        lambda *a, **k: (lambda loss, s: (loss * float("nan"), s))(*real(*a, **k)))
    t.start_step = 2
    with pytest.raises(TrainingError, match="3 steps in a row.*Last good checkpoint: .*step-000002"):
        t.train()
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m["skipped_updates"] for m in lines] == [1, 1, 1]
    after = {n: p.detach() for n, p in t.policy.named_parameters() if p.requires_grad}
    assert all(torch.equal(before[n], after[n]) for n in before)            # skipped steps changed nothing
    assert rundir.latest_checkpoint(tmp_path) == good and ckpt.load_trainer_state(good)["step"] == 2


def test_a_non_finite_update_is_undone(tmp_path, monkeypatch):
    t = Trainer(TrainConfig(**TINY, steps=2, out=str(tmp_path)))
    real_step = t.optimizer.step

    def poisoned_step(*a, **k):
        real_step(*a, **k)
        with torch.no_grad():
            t.hm.gate.Lambda[0] = float("inf")
    monkeypatch.setattr(t.optimizer, "step", poisoned_step)
    lambda_before = t.hm.gate.Lambda.detach().clone()
    m = t.train_step(0)
    assert m["skipped_updates"] == 1 and torch.equal(t.hm.gate.Lambda.detach(), lambda_before)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ck")
    return Trainer(TrainConfig(**TINY, steps=1, out=str(out))).train()


@pytest.mark.parametrize("damage,msg", [
    (lambda p: (p / "gate.safetensors").write_bytes(b"\x00garbage"), "cannot load gate.safetensors"),
    (lambda p: (p / "adapter" / "adapter_config.json").unlink(), "adapter/ is missing"),
    (lambda p: (p / "config.json").write_text("{not json"), "unknown model spec|unreadable config.json"),
    (lambda p: (p / "trainer_state.pt").write_bytes(b"junk"), "corrupted trainer_state.pt"),
])
def test_damaged_checkpoints_fail_clearly(tiny_checkpoint, tmp_path, damage, msg):
    import shutil
    copy = tmp_path / "ck"
    shutil.copytree(tiny_checkpoint, copy)
    damage(copy)
    with pytest.raises((ckpt.CheckpointError, ModelSpecError), match=msg):
        load_model(str(copy))
        ckpt.load_trainer_state(copy)


def test_checkpoint_for_another_base_model(tiny_checkpoint):
    with pytest.raises(ckpt.CheckpointError, match="made for base model 'tiny-random'"):
        load_checkpoint(tiny_checkpoint, base="default")


def test_hosted_mode_loads_only_checkpoints_under_checkpoints(tiny_checkpoint, tmp_path):
    import shutil
    root = tmp_path / "app"
    (root / "checkpoints").mkdir(parents=True)
    shutil.copytree(tiny_checkpoint, root / "checkpoints" / "good")
    shutil.copytree(tiny_checkpoint, tmp_path / "outside")
    (root / "checkpoints" / "link").symlink_to(tmp_path / "outside")
    hosted, local = Host(root=root, runs_dir=root / "runs", hosted=True), Host(root=root, runs_dir=root / "runs")
    assert hosted.resolve("checkpoints/good") == str((root / "checkpoints" / "good").resolve())
    assert hosted.resolve("default") == "default"
    for bad in ["../outside", str(tmp_path / "outside"), "checkpoints/link", "checkpoints/../../outside",
                "tiny-random", "Qwen/Qwen2.5-1.5B-Instruct", "checkpoints"]:
        with pytest.raises(ModelSpecError, match="hosted mode"):
            hosted.resolve(bad)
    assert local.resolve("tiny-random") == "tiny-random"


def test_trainer_state_loads_with_weights_only(tiny_checkpoint, monkeypatch):
    seen = {}
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: seen.update(k) or real(*a, **k))
    assert ckpt.load_trainer_state(tiny_checkpoint)["step"] == 1
    assert seen.get("weights_only") is True


@pytest.mark.slow
def test_prompt_longer_than_the_context_is_one_line():
    res = run_cli("hrpo", "generate", "--model", "tiny-random", "--prompt", "word " * 3000)
    assert res.returncode == 2 and "exceeds the model's context" in res.stderr and "Traceback" not in res.stderr
