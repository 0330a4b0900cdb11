"""The device pack (gpu/gpu_pack.py) cannot miss a dependency.

Fast (metadata only, no network): the plan for the device (CPython 3.12, Linux x86_64) meets every version
pin of requirements.txt and of every packed distribution with what the pack or the device image provides,
and the checker does flag a requirement that nothing provides.
Slow (~1 min; the first run downloads this interpreter's wheels into .cache/wheels/ and fails if it cannot):
the pack built the same way for this interpreter is installed into an empty --target, and transformers,
peft, gradio, the app and hrpo import (and build llama / qwen2 models with LoRA) in a clean venv that
holds only the device image's packages, as the device runs them.
Run: .venv/bin/python -m pytest -q tests/test_gpu_pack.py
"""
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from gpu import gpu_pack

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def device_plan():
    return gpu_pack.plan("3.12")


def test_the_device_plan_meets_every_pin(device_plan):
    assert gpu_pack.pin_problems(device_plan, "3.12") == []
    assert not device_plan.missing
    assert "torch" not in device_plan.pack and device_plan.image["torch"]          # the device's CUDA build
    for name in ("transformers", "peft", "gradio", "gradio-client", "huggingface-hub"):
        assert name in device_plan.pack, name
    # the first device run's failure: transformers needs a newer hub than the image's 1.33, and that hub
    # needs packages the image lacks; each of them is packed now, found through the metadata
    hub = gpu_pack.requirements_of("huggingface-hub", gpu_pack.target_env("3.12"), set())
    for req in hub:
        name = gpu_pack.canonicalize_name(req.name)
        where, version = device_plan.provider(name)
        assert where == "pack" or name in gpu_pack.TRUST_IMAGE or gpu_pack.meets(version, [req]), req


def test_every_packed_version_is_the_one_installed_here(device_plan):
    import importlib.metadata as md
    for name, version in device_plan.pack.items():
        assert md.version(name) == version


def test_the_checker_flags_what_nothing_provides(device_plan):
    for name in ("httpx2", "pydantic-core", "tomlkit"):                           # a dependency left out
        p = gpu_pack.Plan(pack={k: v for k, v in device_plan.pack.items() if k != name}, image=device_plan.image)
        assert any(name in line for line in gpu_pack.pin_problems(p, "3.12")), name
    old_hub = gpu_pack.Plan(pack={**device_plan.pack, "huggingface-hub": "1.33.0"}, image=device_plan.image)
    assert any("huggingface-hub" in line for line in gpu_pack.pin_problems(old_hub, "3.12"))
    unknown = gpu_pack.plan("3.12", [gpu_pack.Requirement("no-such-distribution-here>=1")])
    assert unknown.missing and gpu_pack.pin_problems(unknown, "3.12")


def test_image_packages_are_packed_when_their_known_version_is_too_old(monkeypatch):
    image = {**gpu_pack.device_image(), "peft": "0.10.0"}
    monkeypatch.setattr(gpu_pack, "device_image", lambda: image)
    p = gpu_pack.plan("3.12")
    assert p.pack["peft"] and "peft" not in p.image
    image["peft"] = "0.30.0"
    assert "peft" in gpu_pack.plan("3.12").image


def local_glibc() -> str:
    name, version = platform.libc_ver()
    assert name == "glibc", f"the rehearsal needs glibc, found {name!r}"
    return version


IMPORTS = """
import torch, transformers, peft, gradio, gradio_client, app, hrpo.bench, hrpo.static_decoder, hrpo.trainer
assert "/site/" in transformers.__file__ and "/site/" in gradio.__file__, (transformers.__file__, gradio.__file__)
from transformers import AutoConfig, AutoModelForCausalLM
for kind in ("llama", "qwen2"):
    config = AutoConfig.for_model(kind, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, vocab_size=100)
    model = peft.get_peft_model(AutoModelForCausalLM.from_config(config),
                                peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    assert model(input_ids=torch.tensor([[1, 2, 3]])).logits.shape == (1, 3, 100)
print("imports ok")
"""


@pytest.mark.slow
def test_the_pack_installs_into_an_empty_target_and_everything_imports(tmp_path):
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    pack = tmp_path / "pack"
    p = gpu_pack.build(pack, version, local_glibc())                 # downloads only what the cache lacks
    wheels = sorted((pack / "whl").glob("*.whl"))
    assert len(wheels) == len(p.pack)
    python = gpu_pack.stand_in(tmp_path / "image", set(p.pack))
    site = tmp_path / "site"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--target", str(site), *map(str, wheels)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = lambda *paths, args: subprocess.run(                    # noqa: E731
        [str(python), *args], cwd=ROOT, env={**env, "PYTHONPATH": os.pathsep.join(map(str, paths))},
        capture_output=True, text=True, timeout=300)
    res = run(site, ROOT, args=["-c", IMPORTS])
    assert res.returncode == 0 and "imports ok" in res.stdout, res.stderr[-3000:]
    res = run(site, ROOT, args=["-m", "gpu.gpu_pack", "--verify", "--pack", str(pack)])
    assert res.returncode == 0 and "every requirement met" in res.stdout, res.stdout[-3000:]
    res = run(ROOT, args=["-m", "gpu.gpu_pack", "--verify"])          # the image alone: transformers etc. lack
    assert res.returncode == 1 and "transformers" in res.stdout and "gradio" in res.stdout


@pytest.mark.slow
def test_the_device_check_rehearses_on_cpu_and_tabulates_what_ran(tmp_path):
    """gpu/gpu_check.py --quick, three parts: their figures and the decode table land in the JSON."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "gpu.gpu_check", "--quick", "--parts", "decode,profile,authors",
                          "--out", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    R = json.loads((tmp_path / "gpu_check.json").read_text())
    assert all("error" not in R["parts"][p] for p in ("decode", "profile", "authors")), R["parts"]
    exact = R["parts"]["decode"]["fp32_exact"]
    assert exact["rows_identical"] == exact["rows"] == 4
    top = R["parts"]["profile"]["top"]
    assert top and all(0 < k["share"] <= 1 for k in top) and sum(k["share"] for k in top) <= 1 + 1e-9
    table = {r["contender"].split(" (")[0]: r for r in R["decode_table"]}
    assert table["authors'-style hybrid loop"]["vs_authors"] == 1.0
    assert {"eager Decoder", "StaticDecoder, graph replayed"} <= set(table)
    assert "| contender | tokens/s |" in res.stdout
