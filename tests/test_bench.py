"""The benchmark harness runs end to end (tiny-random; no timing assertions), and its baseline loops write
the tokens our decoder writes where they should (greedy, fp32)."""
import copy
import dataclasses
import json

import pytest

from bench.baselines import reference_loop
from conftest import run_cli
from hrpo import bench
from hrpo.config import RolloutConfig
from hrpo.rollout import Decoder


@pytest.mark.slow
def test_bench_rollout_cli_reports_every_contender_with_ratios():
    res = run_cli("hrpo", "bench", "rollout", "--model", "tiny-random", "--batch", "2", "--prompt-len", "8",
                  "--new", "6", "--dtype", "float32", "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    assert [r["name"] for r in out["rows"]] == ["generate", "authors", "plain", "hybrid"]
    for r in out["rows"]:
        assert r["tokens_per_s"] > 0 and r["peak_mb"] > 0 and r["vs_generate"] > 0
        assert r["vs_authors"] > 0
        assert r["dtype"] == "float32" and r["vs_float32"] == 1.0
    assert out["batch"] == 2 and out["new"] == 6


@pytest.mark.slow
def test_bench_rollout_runs_every_contender_in_each_dtype():
    res = run_cli("hrpo", "bench", "rollout", "--model", "tiny-random", "--batch", "2", "--prompt-len", "8",
                  "--new", "4", "--dtypes", "float32,bfloat16", "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    rows = json.loads(res.stdout)["rows"]
    names = ["generate", "authors", "plain", "hybrid"]
    assert [(r["name"], r["dtype"]) for r in rows] == [(n, d) for d in ("float32", "bfloat16") for n in names]
    for r in rows:
        assert r["tokens_per_s"] > 0 and r["vs_generate"] > 0 and r["vs_float32"] > 0
    bad = run_cli("hrpo", "bench", "rollout", "--model", "tiny-random", "--dtypes", "float32,fp8")
    assert bad.returncode == 2 and "fp8" in bad.stderr and "Traceback" not in bad.stderr


def test_baseline_loops_and_generate_write_every_requested_token(tiny):
    prompts = bench.synth_prompts(tiny, 3, 5)
    assert [len(p) for p in prompts] == [5, 5, 5]
    cfg = RolloutConfig(max_new_tokens=4)
    endless = dataclasses.replace(tiny, eos_ids=frozenset())
    for loop in (bench.authors_loop, reference_loop):
        assert [len(c) for c in loop(endless, prompts, cfg)] == [4, 4, 4]
    assert bench.generate_baseline(tiny, prompts, cfg) == 12


@pytest.fixture(scope="module")
def mixing(tiny):
    """tiny-random with a gate that mixes strongly (a ~ 0.3-0.5), so the latent changes the greedy tokens."""
    gate = copy.deepcopy(tiny.gate)
    gate.reset_lambda(0.3, 0.5)
    return dataclasses.replace(tiny, gate=gate)


def ragged_prompts(hm):
    return [p[: 9 - i] for i, p in enumerate(bench.synth_prompts(hm, 4, 9))]


@pytest.mark.parametrize("loop", [bench.authors_loop, reference_loop])
def test_baseline_loops_write_the_decoders_tokens_greedy_fp32(mixing, loop):
    prompts, cfg = ragged_prompts(mixing), RolloutConfig(max_new_tokens=24, greedy=True)
    ours = [t.token_ids for t in Decoder(mixing, prompts, cfg).run()]
    plain = [t.token_ids for t in Decoder(mixing, prompts, dataclasses.replace(cfg, hybrid=False)).run()]
    assert ours != plain                                  # the latent matters here, so equality means something
    assert loop(mixing, prompts, cfg) == ours
    assert loop(mixing, prompts, dataclasses.replace(cfg, hybrid=False)) == plain


@pytest.mark.parametrize("loop", [bench.authors_loop, reference_loop])
def test_baseline_loops_stop_rows_at_eos_like_the_decoder(mixing, loop):
    prompts, cfg = ragged_prompts(mixing), RolloutConfig(max_new_tokens=16, greedy=True)
    first = [t.token_ids for t in Decoder(mixing, prompts, cfg).run()]
    stop = dataclasses.replace(mixing, eos_ids=frozenset({first[0][3], first[2][5]}))   # two rows end early
    ours = [t.token_ids for t in Decoder(stop, prompts, cfg).run()]
    assert len(ours[0]) <= 4 and len(ours[2]) <= 6 and max(map(len, ours)) == 16
    assert loop(stop, prompts, cfg) == ours


@pytest.mark.slow
def test_bench_train_compares_modes_folded_and_unfolded_in_each_dtype():
    res = run_cli("hrpo", "bench", "train", "--model", "tiny-random", "--steps", "1", "--group-size", "2",
                  "--prompts", "1", "--new", "4", "--dtypes", "float32,bfloat16", "--lora-rank", "2", "--unfolded",
                  "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    rows = json.loads(res.stdout)["rows"]
    names = ["grpo", "grpo-unfolded", "hrpo", "hrpo-unfolded"]
    assert [(r["name"], r["dtype"]) for r in rows] == [(n, d) for d in ("float32", "bfloat16") for n in names]
    assert all(r["step_seconds"] > 0 and 0 < r["rollout_share"] < 1 and r["vs_float32"] > 0 for r in rows)
    assert all(r["logprob_drift"] <= 1e-3 for r in rows if r["dtype"] == "float32")
    by = {(r["name"], r["dtype"]): r for r in rows}
    for (name, dt), r in by.items():          # ms per sampled token, and its ratio at equal work
        tokens = r["completion_len_mean"] * 2 * 1
        assert abs(r["ms_per_token"] - 1e3 * r["step_seconds"] / tokens) < 1e-6
        fp32 = by[name, "float32"]["ms_per_token"]
        assert abs(r["vs_float32_per_token"] - fp32 / r["ms_per_token"]) < 1e-9
    by = {(r["name"], r["dtype"]): r for r in rows}
    for (name, dt), r in by.items():          # each row against GRPO with the same folding, in its dtype
        grpo = by[name.replace("hrpo", "grpo"), dt]
        assert abs(r["vs_grpo"] - r["step_seconds"] / grpo["step_seconds"]) < 1e-9


def test_shape_models_have_the_real_shapes():
    hm = bench.shape_model("smollm2-135m", device="cpu")
    assert hm.embeddings.shape == (49152, 576) and hm.model.config.num_hidden_layers == 30
    assert bench.SHAPES["qwen2.5-1.5b"]["hidden_size"] == 1536
