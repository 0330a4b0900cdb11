"""analysis.replay: counterfactual replays with the mixing switched off or the gate clamped."""
import dataclasses

import pytest
import torch

from analysis.plots import divergence_figure
from analysis.replay import COLUMNS, decode_and_sweep, divergence, divergence_html, first_difference, force_from, replay
from hrpo.config import RolloutConfig
from hrpo.rollout import Trace, rollout


@pytest.mark.parametrize("a, b, expected", [([1, 2, 3], [1, 2, 3], None), ([1, 2, 3], [1, 5, 3], 1),
                                            ([1, 2], [1, 2, 3], 2), ([], [], None), ([], [4], 0),
                                            ([9], [8], 0)])
def test_first_difference(a, b, expected):
    assert first_difference(a, b) == expected


@pytest.mark.parametrize("k, a, t, expected", [(3, None, 2, None), (3, None, 3, 1.0), (0, 0.5, 0, 0.5),
                                               (2, 0.9, 10, 0.9)])
def test_force_from(k, a, t, expected):
    assert force_from(k, a)(t) == expected


@pytest.mark.parametrize("k, a", [(-1, None), (0, 1.5), (0, -0.1)])
def test_force_from_rejects(k, a):
    with pytest.raises(ValueError):
        force_from(k, a)


def test_divergence_dict():
    x = Trace("p", [1], token_ids=[1, 2, 3], text="abc", answer=None)
    y = Trace("p", [1], token_ids=[1, 2, 4, 5], text="abde #### 5", answer="5")
    d = divergence(x, y)
    assert d["first_diff"] == 2 and d["len_diff"] == 1 and not d["same_text"] and not d["same_answer"]
    assert (d["orig_answer"], d["new_answer"], d["orig_len"], d["new_len"]) == (None, "5", 3, 4)


def test_replay_beyond_the_end_is_identical(tiny):
    cfg = RolloutConfig(max_new_tokens=8, seed=5)               # sampled, not greedy: the seed must be reused
    orig = rollout(tiny, ["What is 2 + 3?"], cfg)[0]
    new, d = replay(tiny, orig, cfg, k=len(orig.steps) + 1)
    assert new.token_ids == orig.token_ids and new.steps == orig.steps
    assert d["first_diff"] is None and d["same_text"] and d["same_answer"] and d["len_diff"] == 0


def test_clamped_gate_is_recorded(tiny):
    cfg = RolloutConfig(max_new_tokens=6, seed=0)
    orig = rollout(tiny, ["Hello there"], cfg)[0]
    new, d = replay(tiny, orig, cfg, k=2, a=0.5)
    assert d["a"] == 0.5 and d["k"] == 2
    assert [s.gate_a for s in new.steps[:2]] == [s.gate_a for s in orig.steps[:2]]
    assert all(s.gate_a == pytest.approx(0.5) for s in new.steps[2:] if s.thinking)
    assert d["first_diff"] is None or d["first_diff"] >= 2


def test_sweep_and_figure(tiny):
    orig, sweep = decode_and_sweep(tiny, "What is 1 + 1?", RolloutConfig(max_new_tokens=5, seed=1), [0, 2, 99])
    assert list(sweep.columns) == COLUMNS and sweep["k"].tolist() == [0, 2, 99]
    assert sweep.iloc[-1]["same_text"] and sweep["orig_len"].eq(len(orig.steps)).all()
    assert len(divergence_figure(sweep).data) == 3


@pytest.mark.slow
def test_mixing_off_from_zero_equals_plain_decoding(embedded):
    cfg = RolloutConfig(max_new_tokens=8, greedy=True)
    q = "Tom has 3 apples and buys 5 more. How many apples does he have?"
    hybrid = rollout(embedded, [q], cfg)[0]
    plain = rollout(embedded, [q], dataclasses.replace(cfg, hybrid=False))[0]
    new, d = replay(embedded, hybrid, cfg, k=0)
    assert new.token_ids == plain.token_ids and new.text == plain.text
    assert all(s.gate_a == 1.0 and s.hidden_ratio == 0.0 for s in new.steps)
    assert [s.logprob for s in new.steps] == pytest.approx([s.logprob for s in plain.steps], abs=1e-5)


def test_latent_scale_zero_equals_latent_dropped(tiny):
    """scale 0 from step k: the gate keeps its learned a but mixes a zero latent (a * e); scale 1 is identical."""
    cfg = RolloutConfig(max_new_tokens=8, greedy=True)
    orig = rollout(tiny, ["What is 2 + 3?"], cfg, keep_states=True)[0]
    same, d1 = replay(tiny, orig, cfg, k=0, scale=1.0)
    assert same.token_ids == orig.token_ids and d1["first_diff"] is None and d1["a"] is None and d1["scale"] == 1.0
    zero, d0 = replay(tiny, orig, cfg, k=3, scale=0.0, keep_states=True)
    assert d0["scale"] == 0.0 and (d0["first_diff"] is None or d0["first_diff"] >= 3)
    assert [s.gate_a for s in zero.steps[:3]] == [s.gate_a for s in orig.steps[:3]]
    th = [i for i, s in enumerate(zero.steps) if s.thinking and i >= 3]
    if th:                                        # the mixed input is exactly a * e where the latent is scaled away
        i = th[0]
        e = tiny.embeddings[zero.token_ids[i]].float()
        a, _ = tiny.gate.gates(e)
        assert torch.allclose(zero.inputs[i], (a * e).to(tiny.embeddings.dtype).float(), atol=1e-5)


def test_latent_only_gate_and_divergence_html(tiny):
    cfg = RolloutConfig(max_new_tokens=8, greedy=True)
    orig = rollout(tiny, ["What is 2 + 3?"], cfg)[0]
    new, d = replay(tiny, orig, cfg, k=1, a=0.0)
    assert d["a"] == 0.0 and all(s.gate_a == 0.0 for s in new.steps[1:] if s.thinking)
    page = divergence_html(orig, new, d["first_diff"])
    assert "original" in page and "replay" in page
    assert ("identical" in page) == (d["first_diff"] is None)
    if d["first_diff"] is not None:
        assert f"diverges at step {d['first_diff']}" in page and "diff-green" in page
    with pytest.raises(ValueError, match="scale"):
        replay(tiny, orig, cfg, k=0, scale=-1.0)

