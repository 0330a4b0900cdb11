"""Training-job control and bounded hosted work (RELIABILITY.md, round 2): hosted mode refuses every job
control call, stop never signals a process that is not the job, concurrent starts make one trainer,
hosted /compare is capped, hosted seeds are checked, trace exports reuse one temp directory."""
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from conftest import LIVE, start_app
from hrpo.config import TrainConfig
from hrpo.rundir import read_rows
from studio.jobs import JobManager

pytestmark = [pytest.mark.app, pytest.mark.slow]      # the app in a real process: minutes

gradio_client = pytest.importorskip("gradio_client")


def tiny_cfg(out) -> TrainConfig:
    return TrainConfig(model="tiny-random", steps=500, group_size=2, batch_prompts=1, max_new_tokens=4, lora_rank=2,
                       lora_alpha=4, save_every=1000, out=str(out), device="cpu")


def stale_record(runs, pid, **extra) -> dict:
    """job.json of an earlier job whose pid now belongs to another process (reboot, pid reuse)."""
    out = runs / "old"
    out.mkdir(parents=True, exist_ok=True)
    cfg = tiny_cfg(out)
    (out / "job_config.json").write_text(json.dumps(cfg.to_dict()))
    state = {"pid": pid, "out": str(out), "steps": cfg.steps, "mode": cfg.mode, "model": cfg.model,
             "task": cfg.task, "started": time.time() - 3600,
             "cmd": [sys.executable, "-m", "hrpo", "train", "--config", str(out / "job_config.json")], **extra}
    (runs / "job.json").write_text(json.dumps(state))
    return state


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("extra", [{}, {"created": 1.0}])
def test_stop_never_signals_a_process_that_is_not_the_job(tmp_path, sleeper, extra):
    jobs = JobManager(tmp_path / "runs")
    stale_record(jobs.runs_dir, sleeper.pid, **extra)
    assert not jobs.running() and jobs.status()["state"] != "running"
    assert jobs.stop() is False
    time.sleep(0.3)
    assert sleeper.poll() is None                         # the unrelated process lives on


def test_the_job_is_still_the_job_after_the_clock_moves(tmp_path, sleeper):
    """Epoch start times move with the system clock (NTP): a record a few seconds off is still this process."""
    jobs = JobManager(tmp_path / "runs")
    record = stale_record(jobs.runs_dir, sleeper.pid, created=psutil.Process(sleeper.pid).create_time() + 5.0)
    record["cmd"] = psutil.Process(sleeper.pid).cmdline()
    (jobs.runs_dir / "job.json").write_text(json.dumps(record))
    assert jobs.running() and jobs.status()["state"] == "running"
    assert jobs.stop() and sleeper.wait(timeout=10) == -15          # the job itself is signalled (SIGTERM)


@pytest.mark.parametrize("content", ['{"error": null}', "[1, 2]", '"text"', "null", "{not json",
                                     '{"pid": "12", "created": 1, "out": "x", "steps": 2, "mode": "hrpo", '
                                     '"model": "m", "task": "arith", "started": 1, "cmd": []}'])
def test_a_job_json_of_another_shape_reads_as_no_job(tmp_path, content):
    """job.json that is not our record (hand-edited, another tool's) never locks the Train tab: no job, one-line
    answers, and the next start replaces it."""
    (tmp_path / "job.json").write_text(content)
    jobs = JobManager(tmp_path)
    assert jobs.status()["state"] == "idle" and not jobs.running() and jobs.stop() is False
    with pytest.raises(RuntimeError, match="no earlier training job to resume"):
        jobs.resume()


def test_concurrent_starts_make_exactly_one_trainer(tmp_path):
    jobs = JobManager(tmp_path / "runs")
    barrier, started, refused = threading.Barrier(4), [], []

    def go(i):
        barrier.wait()
        try:
            started.append(jobs.start(tiny_cfg(tmp_path / "runs" / f"j{i}")))
        except RuntimeError as err:
            refused.append(str(err))
    threads = [threading.Thread(target=go, args=(i,)) for i in range(4)]
    try:
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert len(started) == 1 and len(refused) == 3, (started, refused)
        assert all("already running" in r for r in refused) and jobs.running()
        deadline = time.time() + 180
        while not read_rows(Path(started[0]["out"]) / "metrics.jsonl") and time.time() < deadline:
            time.sleep(0.3)
        assert jobs.stop()
        while jobs.running() and time.time() < deadline:
            time.sleep(0.3)
        with pytest.raises(RuntimeError, match="already holds a run"):    # the same run name again, later
            jobs.start(tiny_cfg(started[0]["out"]))
    finally:
        for st in started:
            try:
                psutil.Process(st["pid"]).kill()
            except psutil.Error:
                pass


@pytest.fixture(scope="module")
def hosted(tmp_path_factory):
    """A hosted app with an earlier job on record whose pid belongs to an unrelated process."""
    tmp = tmp_path_factory.mktemp("hosted")
    (tmp / "tmp").mkdir()
    sleeper = subprocess.Popen(["sleep", "600"])
    record = stale_record(tmp / "runs", sleeper.pid, created=psutil.Process(sleeper.pid).create_time())
    record["cmd"] = psutil.Process(sleeper.pid).cmdline()        # even a record that matches the process exactly
    (tmp / "runs" / "job.json").write_text(json.dumps(record))
    proc, url = start_app(tmp / "app.log", HRPO_HOSTED="1", HRPO_MODEL="tiny-random", HRPO_RUNS=str(tmp / "runs"),
                          TMPDIR=str(tmp / "tmp"))
    yield gradio_client.Client(url, verbose=False), tmp, sleeper
    proc.terminate()
    proc.wait(timeout=30)
    sleeper.kill()
    sleeper.wait()


def test_hosted_mode_refuses_resume_and_stop(hosted):
    client, tmp, sleeper = hosted
    before = (tmp / "runs" / "job.json").read_text()
    for api in ("/train_resume", "/train_stop"):
        with pytest.raises(Exception, match="training is switched off"):
            client.predict(api_name=api)
    assert (tmp / "runs" / "job.json").read_text() == before and sleeper.poll() is None
    assert not [p for p in psutil.process_iter(["cmdline"]) if "train" in (p.info["cmdline"] or [])
                and str(tmp) in " ".join(p.info["cmdline"] or [])]


def compare_args(client, *args) -> list:
    """(models, task, problems, max new tokens, greedy), then False for any later option (e.g. an ablation)."""
    n = len(client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/compare"]["parameters"])
    return [*args, *[False] * (n - len(args))]


def test_hosted_compare_is_bounded(hosted):
    client = hosted[0]
    choices = ["tiny-random", "checkpoints/smollm2-arith-grpo", "checkpoints/smollm2-arith-hrpo"]
    job = client.submit(*compare_args(client, choices * 10, "arith", 20, 256, True), api_name="/compare")
    with pytest.raises(Exception, match="this asks for 3 x 20 x 256"):         # refused before any work
        job.result(timeout=60)
    args = compare_args(client, ["tiny-random"] * 3, "arith", 2, 16, True)
    lens, acc, scripts, summary, texts = client.predict(*args, api_name="/compare")
    assert len(summary["data"]) == 1                       # duplicates are compared once


def test_hosted_seed_out_of_range_is_one_line(hosted):
    with pytest.raises(Exception, match=r"seed must be an integer in \[0, 2\*\*63\)"):
        hosted[0].predict("tiny-random", "hi", 8, 0.5, 50, 2**70, True, True, api_name="/generate")


def test_trace_exports_reuse_one_temp_directory(hosted):
    client, tmp, _ = hosted
    client.predict(*LIVE, api_name="/generate")
    paths = [client.predict(api_name="/export")[0] for _ in range(3)]
    assert all(p.endswith("trace.json") for p in paths)
    assert len(list((tmp / "tmp").glob("hrpo-trace-*"))) == 1


def test_sigterm_of_stop_reaches_a_real_job(tmp_path):
    """The identity check still lets stop reach the job it started."""
    jobs = JobManager(tmp_path / "runs")
    st = jobs.start(tiny_cfg(tmp_path / "runs" / "real"))
    try:
        proc = psutil.Process(st["pid"])
        assert jobs.running(), (st, proc.status(), proc.create_time(), proc.cmdline())
        assert jobs.stop()
        psutil.Process(st["pid"]).wait(timeout=180)
        assert not jobs.running()
    finally:
        try:
            psutil.Process(st["pid"]).send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
