"""analysis.gates: per-step gate stats, the recomputed distribution over H, position summaries."""
import pandas as pd
import pytest

from analysis.gates import STEP_COLUMNS, gate_distribution, gate_histogram, position_summary, step_frame, trace_summary
from hrpo.config import RolloutConfig
from hrpo.rollout import Step, Trace, rollout


def fake_trace(values):
    """Trace whose steps have (thinking, gate_a, hidden_ratio) from `values`."""
    steps = [Step(i, f"t{i}", i, th, a, hr, -0.1, 0.5) for i, (th, a, hr) in enumerate(values)]
    return Trace(prompt="p", prompt_ids=[1], token_ids=[s.token_id for s in steps], steps=steps)


def test_step_frame_columns_and_positions():
    df = step_frame([fake_trace([(True, 0.9, 0.4)] * 4), fake_trace([(False, 1.0, 0.0)] * 2)], model="m")
    assert list(df.columns) == STEP_COLUMNS and len(df) == 6
    assert df[df.trace == 0]["rel_pos"].tolist() == [0.125, 0.375, 0.625, 0.875]
    assert df[df.trace == 1]["length"].eq(2).all() and (df["model"] == "m").all()


@pytest.mark.parametrize("bins, expected_bins", [(2, [0, 1]), (4, [0, 1, 2, 3]), (1, [0])])
def test_position_summary(bins, expected_bins):
    tr = fake_trace([(True, 0.9, 0.4), (True, 0.8, 0.6), (False, 1.0, 0.0), (False, 1.0, 0.0)])
    out = position_summary(step_frame([tr, tr], model="m"), bins=bins)
    assert out["bin"].tolist() == expected_bins and out["n"].sum() == 8
    assert out["bin_mid"].between(0, 1).all()
    if bins == 2:
        assert out["hidden_ratio"].tolist() == pytest.approx([0.5, 0.0])
        assert out["thinking_share"].tolist() == [1.0, 0.0]
        assert out["hidden_ratio_thinking"].tolist() == pytest.approx([0.5, 0.0])


def test_position_summary_empty():
    assert position_summary(step_frame([])).empty


def test_trace_summary():
    df = step_frame([fake_trace([(True, 0.9, 0.4), (False, 1.0, 0.0)]), fake_trace([(False, 1.0, 0.0)])], model="m")
    out = trace_summary(df)
    assert out["thinking_steps"].tolist() == [1, 0] and out["gate_a"].tolist() == pytest.approx([0.9, 1.0])
    assert out["length"].tolist() == [2, 1]


def test_gate_distribution_recomputes_the_decoders_a(tiny):
    tr = rollout(tiny, ["What is 2 + 3?"], RolloutConfig(max_new_tokens=6, seed=0))[0]
    d = gate_distribution(tr, tiny.gate, tiny.embeddings)
    assert len(d) == 6 and d["thinking"].tolist() == tr.thinking_mask
    think = d[d.thinking]
    assert len(think) > 0
    assert think["a_mean"].tolist() == pytest.approx(think["gate_a"].tolist(), abs=1e-6)
    assert think["hidden_ratio_recomputed"].tolist() == pytest.approx(think["hidden_ratio"].tolist(), abs=1e-6)
    assert (think["a_q00"] <= think["a_q50"]).all() and (think["a_q50"] <= think["a_q100"]).all()
    assert (d[~d.thinking]["a_mean"] == 1.0).all()


def test_gate_histogram(tiny):
    tr = rollout(tiny, ["Hello"], RolloutConfig(max_new_tokens=3, seed=0))[0]
    hist = gate_histogram([tr], tiny.gate, tiny.embeddings, bins=10, model="m")
    assert len(hist) == 10 and hist["count"].sum() == sum(tr.thinking_mask) * tiny.embeddings.shape[1]
    assert hist["share"].sum() == pytest.approx(1.0) and (hist["left"] < hist["right"]).all()
    empty = gate_histogram([fake_trace([(False, 1.0, 0.0)])], tiny.gate, tiny.embeddings, bins=5)
    assert empty["count"].sum() == 0 and isinstance(empty, pd.DataFrame)
