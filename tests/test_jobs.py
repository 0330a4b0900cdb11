"""Background training jobs: a real `python -m hrpo train` process started, stopped, resumed."""
import time
from pathlib import Path

import pytest

from hrpo.config import TrainConfig
from hrpo.rundir import latest_checkpoint, read_rows
from studio.jobs import JobManager

pytestmark = [pytest.mark.app, pytest.mark.slow]      # the app in a real process: minutes


def wait_for(cond, timeout=240):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.5)
    return False


def test_start_stop_resume(tmp_path):
    jobs = JobManager(tmp_path / "runs")
    assert jobs.status()["state"] == "idle"
    cfg = TrainConfig(model="tiny-random", steps=25, group_size=2, batch_prompts=1, max_new_tokens=6, lora_rank=2,
                      lora_alpha=4, save_every=100, out=str(tmp_path / "runs" / "job1"), device="cpu")
    jobs.start(cfg)
    assert jobs.running()
    with pytest.raises(RuntimeError, match="already running"):
        jobs.start(cfg)
    assert wait_for(lambda: len(read_rows(Path(cfg.out) / "metrics.jsonl")) >= 2), jobs.status()["log_tail"]
    st = jobs.status()
    assert st["state"] == "running" and st["eta_s"] is not None and st["steps"] == 25
    assert jobs.stop()
    assert wait_for(lambda: not jobs.running())
    st = jobs.status()
    assert st["state"] == "stopped", st["log_tail"]
    stopped_at = latest_checkpoint(cfg.out)
    assert stopped_at is not None and int(stopped_at.name.split("-")[1]) == st["step"] < 25
    jobs.resume()
    assert wait_for(lambda: jobs.status()["state"] == "finished", timeout=400), jobs.status()["log_tail"]
    steps = [m["step"] for m in read_rows(Path(cfg.out) / "metrics.jsonl")]
    assert steps == list(range(1, 26))                  # no step lost or repeated across stop/resume
    assert latest_checkpoint(cfg.out).name == "step-000025"


def test_status_skips_junk_in_metrics(tmp_path):
    """A stray value, a line without step or step_seconds, or bytes that are not UTF-8 never break status()."""
    import json
    runs, out = tmp_path / "runs", tmp_path / "runs" / "j"
    out.mkdir(parents=True)
    (out / "metrics.jsonl").write_bytes(b'{"step": 1, "step_seconds": 2.0}\n[1, 2]\n7\n{"loss": 1}\n\xff\xfe\n'
                                        b'{"step": true}\n{"step": 2}\n{"step": 3, "rew')
    (runs / "job.json").write_text(json.dumps({"pid": 0, "out": str(out), "steps": 5, "mode": "hrpo",
                                               "model": "tiny-random", "task": "arith", "cmd": []}))
    assert [m["step"] for m in read_rows(Path(out) / "metrics.jsonl")] == [1, 2]
    st = JobManager(runs).status()
    assert st["state"] == "stopped" and st["step"] == 2 and st["eta_s"] is None


@pytest.mark.parametrize("tail, state", [
    ("step 1/5 reward 0.5\n", "stopped"),
    ("Traceback (most recent call last):\n  File x\nValueError: bad\n", "failed"),
    ('  File "x.py", line 1, in f\n' * 200 + "RuntimeError: out of memory\n", "failed"),   # header out of the tail
    ("error: --steps must be >= 1, got 0\n", "failed"),
    ("step 1/5 reward 0.5\nKilled\n", "failed"),
    ("step 1/5 reward 0.5 (no error: none)\n", "stopped"),
])
def test_an_ended_job_reads_failed_only_on_a_failure_in_its_log(tmp_path, tail, state):
    import json
    runs, out = tmp_path / "runs", tmp_path / "runs" / "j"
    out.mkdir(parents=True)
    (out / "metrics.jsonl").write_text('{"step": 1, "step_seconds": 2.0}\n')
    (out / "train.log").write_text(tail)
    (runs / "job.json").write_text(json.dumps({"pid": 0, "out": str(out), "steps": 5, "mode": "hrpo",
                                               "model": "tiny-random", "task": "arith", "cmd": []}))
    assert JobManager(runs).status()["state"] == state
