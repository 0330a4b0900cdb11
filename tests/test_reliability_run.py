"""Run-directory integrity (RELIABILITY.md, round 2): one trainer per run directory, no silent rerun
over an old run, metrics cut back on resume, resume refuses shape changes, a damaged latest checkpoint
falls back to the previous one, export never writes onto the run.  tiny-random, real processes where
the fault is about processes."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, run_cli
from hrpo import checkpoint as ckpt
from hrpo import cli
from hrpo.config import TrainConfig, TrainingError
from hrpo.trainer import Trainer

TINY = dict(model="tiny-random", task="arith", group_size=2, batch_prompts=1, max_new_tokens=6, lora_rank=2,
            lora_alpha=4, lr=1e-2, device="cpu", seed=5)


def steps_logged(run) -> list[int]:
    return [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 4-step run with checkpoints step-2 and step-4 (keep 2)."""
    out = tmp_path_factory.mktemp("run") / "r"
    Trainer(TrainConfig(**TINY, steps=4, save_every=2, out=str(out))).train()
    assert sorted(p.name for p in (out / "checkpoints").glob("step-*")) == ["step-000002", "step-000004"]
    return out


def copy_run(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))
    return dst


@pytest.mark.slow
def test_metrics_have_each_step_once_after_kill_and_resume(tmp_path):
    out = tmp_path / "r"
    t = Trainer(TrainConfig(**TINY, steps=4, save_every=2, out=str(out)))
    for step in range(3):                 # steps 1-3 logged, checkpoint at 2, then "killed" before step 4
        t.log(t.train_step(step))
        if step == 1:
            t.save(2)
    assert steps_logged(out) == [1, 2, 3]
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"step": 4, "rew')                                       # and a half-written line
    Trainer(TrainConfig(**TINY, steps=4, save_every=2, out=str(out)), resume=True).train()
    assert steps_logged(out) == [1, 2, 3, 4]


def trainer_cmd(out, *extra):
    args = ["hrpo", "train", "--out", str(out), "--steps", "500", "--save-every", "1000"]
    for k, v in TINY.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    return [*args, *extra]


@pytest.mark.slow
def test_second_trainer_on_one_run_dir_is_refused(tmp_path):
    out = tmp_path / "r"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    first = subprocess.Popen([sys.executable, "-m", *trainer_cmd(out)], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (out / "metrics.jsonl").is_file() and time.time() < deadline and first.poll() is None:
            time.sleep(0.2)
        assert (out / "metrics.jsonl").is_file(), first.stderr.read() if first.poll() is not None else "no step"
        for extra in ([], ["--resume"]):
            second = run_cli(*trainer_cmd(out, *extra))
            assert second.returncode == 2, second.stderr[-2000:]
            assert f"in use by another trainer (pid {first.pid})" in second.stderr
            assert len(second.stderr.strip().splitlines()) == 1 and "Traceback" not in second.stderr
        assert first.poll() is None                                    # the first one goes on
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the lock dies with its holder: a resume afterwards takes the directory
    res = run_cli("hrpo", "train", "--out", str(out), "--resume", "--steps", "1", "--model", "tiny-random",
                  "--device", "cpu", "--group-size", "2", "--batch-prompts", "1", "--max-new-tokens", "4")
    assert res.returncode == 0 and "in use" not in res.stderr, res.stderr[-2000:]


def test_rerun_into_an_existing_run_is_refused_and_changes_nothing(finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path / "r")
    before = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
    with pytest.raises(TrainingError, match="already holds a run; pass --resume .* or choose a new --out"):
        Trainer(TrainConfig(**TINY, steps=4, save_every=2, out=str(run)))
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.name != ".lock") == before
    assert steps_logged(run) == [1, 2, 3, 4]


def test_resume_on_an_empty_directory_says_it_starts_fresh(tmp_path, capsys):
    t = Trainer(TrainConfig(**TINY, steps=1, out=str(tmp_path / "new")), resume=True)
    assert t.start_step == 0
    assert f"no checkpoint in {tmp_path / 'new'}, starting fresh" in capsys.readouterr().out


@pytest.mark.parametrize("change,field", [(dict(lora_rank=4), "lora_rank=4 (the run has 2)"),
                                          (dict(mode="grpo"), "mode='grpo' (the run has 'hrpo')"),
                                          (dict(lora_targets=["q_proj"]), "lora_targets=")])
def test_resume_refuses_a_field_that_changes_shapes(finished_run, tmp_path, change, field):
    run = copy_run(finished_run, tmp_path / "r")
    with pytest.raises(TrainingError, match="cannot resume") as err:
        Trainer(TrainConfig(**{**TINY, **change}, steps=6, save_every=2, out=str(run)), resume=True)
    assert field in str(err.value)


@pytest.mark.parametrize("damage", [
    lambda p: (p / "gate.safetensors").write_bytes(b"\x00garbage"),
    lambda p: (p / "trainer_state.pt").write_bytes(b"junk"),
    lambda p: (p / "adapter" / "adapter_model.safetensors").unlink(),
])
def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(finished_run, tmp_path, capsys, damage):
    run = copy_run(finished_run, tmp_path / "r")
    damage(run / "checkpoints" / "step-000004")
    t = Trainer(TrainConfig(**TINY, steps=4, save_every=2, out=str(run)), resume=True)
    said = capsys.readouterr().out
    assert t.start_step == 2 and "step-000004" in said and "trying the previous checkpoint step-000002" in said
    assert len(list((run / "checkpoints").glob("damaged-step-000004-*"))) == 1     # moved aside, kept
    t.train()
    assert steps_logged(run) == [1, 2, 3, 4]
    ckpt.check_resumable(run / "checkpoints" / "step-000004", hybrid=True)        # written again, whole


def test_export_onto_the_run_itself_is_refused(finished_run, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path / "r")
    last = run / "checkpoints" / "step-000004"
    for dst in (last, run / "checkpoints" / "step-000009", last / "inside", run / "checkpoints"):
        assert cli.main(["export", str(run), str(dst)]) == 2
        err = capsys.readouterr().err
        assert "cannot export" in err and len(err.strip().splitlines()) == 1
    assert (last / "trainer_state.pt").is_file() and ckpt.load_trainer_state(last)["step"] == 4
    assert cli.main(["export", str(run), str(tmp_path / "shipped")]) == 0      # elsewhere it still works
    assert not (tmp_path / "shipped" / "trainer_state.pt").exists() and ckpt.is_checkpoint(tmp_path / "shipped")


def test_export_into_another_run_is_refused_force_or_not(finished_run, tmp_path, capsys):
    """Exporting run X onto run Y's checkpoint would drop Y's trainer_state.pt (Y could no longer resume):
    any destination inside a run directory is refused, --force or not."""
    x, y = copy_run(finished_run, tmp_path / "x"), copy_run(finished_run, tmp_path / "y")
    target = y / "checkpoints" / "step-000002"
    for dst, force in ((target, ["--force"]), (target, []), (y / "checkpoints" / "new", []), (y / "elsewhere", [])):
        assert cli.main(["export", str(x), str(dst), *force]) == 2
        err = capsys.readouterr().err
        assert "inside the run directory" in err and len(err.strip().splitlines()) == 1
    assert ckpt.load_trainer_state(target)["step"] == 2 and not (y / "checkpoints" / "new").exists()


def test_export_of_a_damaged_checkpoint_is_refused(finished_run, tmp_path, capsys):
    """A checkpoint without its gate (HRPO) or adapter would export with exit 0 and a copy that cannot load."""
    run = copy_run(finished_run, tmp_path / "r")
    last = run / "checkpoints" / "step-000004"
    (last / "gate.safetensors").unlink()
    assert cli.main(["export", str(last), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "gate.safetensors missing: a damaged checkpoint is not exported" in err and not (tmp_path / "out").exists()
