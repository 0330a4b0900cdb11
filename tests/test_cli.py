"""`python -m hrpo generate` as a user runs it: real subprocesses, real models."""
import json

import pytest

from conftest import run_cli


@pytest.mark.slow
def test_generate_json_schema():
    """--json prints the trace file (hrpo/trace_file.py): a real subprocess, its output read back."""
    from hrpo import trace_file
    res = run_cli("hrpo", "generate", "--model", "tiny-random", "--prompt", "What is 2+2?",
                  "--max-new-tokens", "8", "--seed", "1", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert list(out) == ["format", "version", "model", "model_mode", "decoding", "question", "prompt", "prompt_ids",
                         "token_ids", "text", "answer", "finish", "hybrid", "tokens_per_s", "steps", "tensors"]
    assert out["model"] == "tiny-random" and out["question"] == "What is 2+2?" and out["hybrid"] is True
    assert out["decoding"]["max_new_tokens"] == 8 and out["decoding"]["seed"] == 1
    assert len(out["token_ids"]) == len(out["steps"]) == 8 and set(out["tensors"]) == set(trace_file.TENSORS)
    assert out["answer"] is None or isinstance(out["answer"], str)
    for i, s in enumerate(out["steps"]):
        assert set(s) == {"index", "token", "token_id", "thinking", "gate_a", "hidden_ratio", "logprob",
                          "entropy", "eff_vocab", "nearest", "shown"}
        assert s["index"] == i and s["token_id"] == out["token_ids"][i]
        assert 0 < s["gate_a"] <= 1 and 0 <= s["hidden_ratio"] < 1 and s["logprob"] <= 0
        if s["thinking"]:
            assert len(s["nearest"]) == 5
            assert all(isinstance(t, str) and -1 <= c <= 1 for t, c in s["nearest"])
        else:
            assert s["nearest"] == []
    assert trace_file.dump(trace_file.loads(res.stdout.strip())) == res.stdout.strip()


@pytest.mark.slow
def test_generate_json_without_hybrid_and_raw():
    res = run_cli("hrpo", "generate", "--model", "tiny-random", "--prompt", "2+2=", "--raw", "--no-hybrid",
                  "--greedy", "--max-new-tokens", "4", "--dtype", "bfloat16", "--json")
    out = json.loads(res.stdout)
    assert out["hybrid"] is False and out["decoding"]["hybrid"] is False and "latents" not in out["tensors"]
    assert all(not s["thinking"] and s["gate_a"] == 1.0 and s["nearest"] == [] for s in out["steps"])


@pytest.mark.slow
def test_generate_text_on_the_embedded_model():
    res = run_cli("hrpo", "generate", "--prompt", "What is 3 + 4?", "--greedy", "--max-new-tokens", "24")
    assert res.returncode == 0, res.stderr
    assert "-- answer:" in res.stdout and "tokens/s" in res.stdout
    assert len(res.stdout.split("-- answer:")[0].strip()) > 10


@pytest.mark.slow
def test_generate_errors_are_one_line():
    for args, msg in [(["--prompt", "  "], "prompt is empty"),
                      (["--prompt", "x", "--model", "nope"], "unknown model spec"),
                      (["--prompt", "x", "--model", "tiny-random", "--temperature", "0"], "temperature")]:
        res = run_cli("hrpo", "generate", *args)
        assert res.returncode == 2
        assert msg in res.stderr and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
