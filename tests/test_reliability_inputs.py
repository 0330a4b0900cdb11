"""Bad inputs that must end in one clear line, never a traceback (RELIABILITY.md, round 2): non-UTF-8
prompts, self-referencing or malformed checkpoint configs, malformed --config files, truncated GGUF
files, NaN gates, bad eval/device/temperature/seed values; plus the GGUF cache keyed by content,
counted jsonl skips, and a suite that keeps its state out of the checkout and the user's cache."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import ROOT, run_cli
from hrpo import checkpoint as ckpt
from hrpo import cli
from hrpo.config import ConfigError, RolloutConfig, TrainConfig
from hrpo.models import ModelSpecError, load_model
from hrpo.tasks import load_task
from hrpo.trainer import Trainer

TINY = dict(model="tiny-random", task="arith", group_size=2, batch_prompts=1, max_new_tokens=4, lora_rank=2,
            lora_alpha=4, device="cpu")


@pytest.fixture(scope="module")
def tiny_ck(tmp_path_factory):
    return Trainer(TrainConfig(**TINY, steps=1, out=str(tmp_path_factory.mktemp("ck")))).train()


def one_line_error(capsys, argv, match):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.slow
def test_non_utf8_prompt_is_one_line():
    res = run_cli("hrpo", "generate", "--model", "tiny-random", "--prompt", os.fsdecode(b"caf\xe9"))
    assert res.returncode == 2 and "not valid UTF-8" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def edit_config(path, change):
    meta = json.loads((path / "config.json").read_text())
    change(meta)
    (path / "config.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("change,match", [
    (lambda m: m.pop("mode"), "missing or invalid mode"),
    (lambda m: m.update(train=[1, 2]), "missing or invalid train"),
    (lambda m: m.update(base_model=None), "missing or invalid base_model"),
])
def test_malformed_checkpoint_config_is_one_line(tiny_ck, tmp_path, capsys, change, match):
    ck = Path(shutil.copytree(tiny_ck, tmp_path / "ck"))
    edit_config(ck, change)
    with pytest.raises(ckpt.CheckpointError, match=match):
        load_model(str(ck))
    one_line_error(capsys, ["generate", "--model", str(ck), "--prompt", "hi"], match)


@pytest.mark.slow
def test_checkpoint_naming_itself_as_base_model(tiny_ck, tmp_path, capsys):
    a = Path(shutil.copytree(tiny_ck, tmp_path / "a"))
    b = Path(shutil.copytree(tiny_ck, tmp_path / "b"))
    edit_config(a, lambda m: m.update(base_model=str(a)))
    with pytest.raises(ckpt.CheckpointError, match="cannot be its own base model"):
        load_model(str(a))
    edit_config(a, lambda m: m.update(base_model=str(b)))          # a -> b -> a
    edit_config(b, lambda m: m.update(base_model=str(a)))
    one_line_error(capsys, ["generate", "--model", str(a), "--prompt", "hi"], "cannot be its own base model")
    res = run_cli("analysis", "compare", "--models", str(a), "--task", "arith", "--limit", "1",
                  "--max-new-tokens", "2", "--out", str(tmp_path / "report"))
    assert res.returncode == 2 and "cannot be its own base model" in res.stderr and "Traceback" not in res.stderr


def test_nan_gate_is_refused(tiny_ck, tmp_path):
    ck = Path(shutil.copytree(tiny_ck, tmp_path / "ck"))
    gate = load_file(ck / "gate.safetensors")
    gate["Lambda"][3] = float("nan")
    save_file(gate, ck / "gate.safetensors")
    with pytest.raises(ckpt.CheckpointError, match="NaN or inf"):
        load_model(str(ck))


@pytest.mark.parametrize("content,match", [([1, 2], "expected a JSON object"), ({"lr": "abc"}, "lr must be a number"),
                                           ({"steps": 2.5}, "steps must be an integer"),
                                           ({"temperature": 1e999}, "temperature must be a finite number")])
def test_bad_config_file_is_one_line(tmp_path, capsys, content, match):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(content) if content != {"temperature": 1e999} else '{"temperature": 1e999}')
    one_line_error(capsys, ["train", "--config", str(path), "--out", str(tmp_path / "r")], match)


def test_truncated_gguf_is_one_line(tmp_path, capsys):
    path = tmp_path / "header-only.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00")
    with pytest.raises(ModelSpecError, match="cannot read this GGUF file"):
        load_model(str(path))
    one_line_error(capsys, ["generate", "--model", str(path), "--prompt", "hi"], "cannot read this GGUF file")


def test_gguf_cache_is_keyed_by_content(tiny, tmp_path):
    fake = tmp_path / "smollm2.gguf"
    fake.write_bytes(bytes(1 << 20))                                 # zeros named like a real model file
    from hrpo.embedded import cache_root
    stale = cache_root() / "models" / f"gguf-{fake.stem}-{fake.stat().st_size}"   # what a name+size key finds
    tiny.model.save_pretrained(stale)
    tiny.tokenizer.save_pretrained(stale)
    try:
        with pytest.raises(ModelSpecError, match="cannot read this GGUF file"):
            load_model(str(fake))
        memo = json.loads((cache_root() / "gguf-sha256.json").read_text())
        assert any(k.startswith(str(fake.resolve())) for k in memo)   # the hash is computed once, remembered
    finally:
        shutil.rmtree(stale)


def test_bad_eval_and_sampling_values_are_one_line(capsys):
    base = ["eval", "--model", "tiny-random", "--limit", "1", "--max-new-tokens", "2"]
    one_line_error(capsys, [*base, "--batch-size", "0"], "--batch-size must be >= 1")
    one_line_error(capsys, [*base, "--device", "banana"], "unknown device 'banana'")
    one_line_error(capsys, [*base, "--temperature", "inf"], "temperature must be a finite number")
    one_line_error(capsys, ["generate", "--model", "tiny-random", "--prompt", "hi", "--device", "banana"],
                   "unknown device")
    one_line_error(capsys, ["generate", "--model", "tiny-random", "--prompt", "hi", "--seed", str(2**70)],
                   "seed must be an integer in [0, 2**63)")
    one_line_error(capsys, ["train", "--device", "banana"], "unknown device 'banana'")
    if not torch.cuda.is_available():
        one_line_error(capsys, [*base, "--device", "cuda"], "is not available here")
    with pytest.raises(ConfigError, match="seed"):
        RolloutConfig(seed=2**70)


def test_jsonl_task_reports_skipped_lines(tmp_path, capsys):
    path = tmp_path / "t.jsonl"
    path.write_text('{"question": "1+1?", "answer": "2"}\nnot json\n{"question": "x"}\n'
                    '{"question": "2+2?", "answer": 4}\n')
    task = load_task(f"jsonl:{path}")
    assert len(task) == 2 and task.skipped == 2
    err = capsys.readouterr().err
    assert "skipped 2 malformed line(s); first: line 2" in err


@pytest.mark.slow
def test_the_suite_keeps_its_state_out_of_the_checkout_and_the_user_cache():
    home_cache = Path.home() / ".cache" / "hrpo"
    for var in ("HRPO_RUNS", "HRPO_CACHE"):
        path = Path(os.environ.get(var, ROOT / "runs" if var == "HRPO_RUNS" else home_cache)).resolve()
        assert ROOT not in path.parents and path != home_cache.resolve() and home_cache.resolve() not in path.parents
    from studio.jobs import JobManager
    assert JobManager().runs_dir == Path(os.environ["HRPO_RUNS"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "import os, app; from studio.common import Studio; print(Studio.create(app.ROOT, os.environ).jobs.runs_dir)"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.stdout.strip().splitlines()[-1] == os.environ["HRPO_RUNS"], res.stderr[-2000:]


def test_failed_eval_keeps_the_existing_out_file(tmp_path, capsys):
    """eval validates and evaluates first, then writes --out through a temporary file: a run that fails (here
    the context is exceeded) leaves the user's file as it was, and a bad --out fails before any work."""
    out = tmp_path / "rows.jsonl"
    out.write_text("precious\n")
    base = ["eval", "--model", "tiny-random", "--task", "arith", "--limit", "2"]
    one_line_error(capsys, [*base, "--max-new-tokens", "100000", "--out", str(out)], "exceeds the model's context")
    assert out.read_text() == "precious\n" and list(tmp_path.iterdir()) == [out]
    one_line_error(capsys, [*base, "--out", str(tmp_path / "missing" / "rows.jsonl")], "existing directory")
    one_line_error(capsys, [*base, "--out", str(tmp_path)], "not a file path")


def test_bench_sizes_below_one_are_one_line(capsys):
    for flag in ("--batch", "--new", "--repeats"):
        one_line_error(capsys, ["bench", "rollout", "--model", "tiny-random", flag, "0"], f"{flag} must be >= 1, got 0")
