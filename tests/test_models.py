"""load_model on every kind of spec, with the decoder running on each."""
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from hrpo.config import RolloutConfig
from hrpo.embedded import embedded_gguf
from hrpo.models import ModelSpecError, load_model, pick_device_dtype
from hrpo.rollout import rollout


def test_embedded_default_is_smollm2_with_its_chat_template(embedded):
    cfg = embedded.model.config
    assert (cfg.model_type, cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size) == ("llama", 576, 30, 49152)
    assert embedded.embeddings.shape == (49152, 576) and embedded.dtype == torch.float32
    prompt = embedded.chat_prompt("What is 2 + 2?")
    assert prompt.startswith("<|im_start|>system\n") and "####" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    assert embedded.eos_ids == {2}


def test_tiny_random_is_small_and_seeded(tiny):
    again = load_model("tiny-random", dtype="float32")
    assert sum(p.numel() for p in tiny.model.parameters()) < 5_000_000
    assert torch.equal(tiny.embeddings, again.embeddings)
    assert len(tiny.tokenizer) == 49152


@pytest.mark.parametrize("arch", ["qwen2", "mistral"])
def test_local_hf_directory_tied_or_untied(tiny, tmp_path, arch):
    from transformers import AutoConfig, AutoModelForCausalLM
    config = AutoConfig.for_model(arch, vocab_size=len(tiny.tokenizer), hidden_size=32, intermediate_size=64,
                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                  tie_word_embeddings=(arch == "qwen2"), eos_token_id=2, pad_token_id=2)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    hm = load_model(str(tmp_path))
    assert hm.model.config.model_type == arch and hm.gate.hidden_size == 32
    trace = rollout(hm, ["hello"], RolloutConfig(max_new_tokens=6, greedy=True), keep_latents=True)[0]
    assert len(trace.token_ids) == 6 and trace.latents.shape == (6, 32)
    assert all(0 < s.gate_a < 1 for s in trace.steps if s.thinking)


def test_gguf_path_gives_the_embedded_weights(embedded):
    hm = load_model(str(embedded_gguf()), dtype="float32")
    assert torch.equal(hm.embeddings, embedded.embeddings)


@pytest.mark.parametrize("spec,match", [
    ("no-such-model", "unknown model spec"),
    ("/nonexistent/file.gguf", "no such GGUF"),
    (__file__, "not a model directory"),
])
def test_bad_specs_fail_with_a_clear_message(spec, match):
    with pytest.raises(ModelSpecError, match=match):
        load_model(spec)


def test_device_and_dtype_choice():
    from hrpo.models import cpu_has_native_bf16
    want = torch.bfloat16 if cpu_has_native_bf16() else torch.float32      # tests/test_fidelity.py fakes both
    assert pick_device_dtype("cpu", None) == (torch.device("cpu"), want)
    assert pick_device_dtype("cpu", "bf16")[1] == torch.bfloat16
    with pytest.raises(ModelSpecError, match="dtype"):
        pick_device_dtype("cpu", "float8")


THREADED_LOADS = """
import threading
barrier, errors = threading.Barrier(4), []
def load():
    barrier.wait()
    try:
        from hrpo.models import load_model
        load_model("tiny-random", device="cpu")
    except Exception as err:
        errors.append(repr(err))
threads = [threading.Thread(target=load) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(errors)
"""


def test_first_loads_in_threads_at_once():
    """A fresh process whose first four loads start together (the app's preload and first requests): transformers'
    lazy names are resolved one thread at a time (hrpo.models.import_transformers); without that lock this
    failed every time here with "cannot import name 'AutoModelForCausalLM'"."""
    for _ in range(2):
        r = subprocess.run([sys.executable, "-c", THREADED_LOADS], capture_output=True, text=True, timeout=300,
                           cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == "[]", r.stdout + r.stderr
