"""analysis.plots: every figure builds from its DataFrame (and from an empty one)."""
import pandas as pd
import plotly.graph_objects as go
import pytest

from analysis import plots
from analysis.gates import position_summary, step_frame
from analysis.lengths import length_summary, length_table, paired_differences
from hrpo.rollout import Step, Trace
from hrpo.trace_file import readable_pieces


def tr(n, think):
    steps = [Step(i, f"t{i}", i, i < think, 0.9 if i < think else 1.0, 0.4 if i < think else 0.0, -0.1, 0.2)
             for i in range(n)]
    return Trace("p", [1], token_ids=list(range(n)), steps=steps)


STEPS = step_frame([tr(5, 3), tr(4, 1)], model="m")
TABLE = length_table({"a": [{"num_tokens": 5, "reward": 1.0}, {"num_tokens": 7, "reward": 0.0}],
                      "b": [{"num_tokens": 3, "reward": 1.0}, {"num_tokens": 9, "reward": 1.0}]})
MIX = pd.DataFrame({"model": ["a", "a", "a"], "source": ["sampled", "sampled", "latent"],
                    "script": ["Latin", "Han", "Latin"], "count": [3, 1, 5]})
HIST = pd.DataFrame({"model": "a", "left": [0.9, 0.95], "right": [0.95, 1.0], "count": [3, 1], "share": [0.75, 0.25]})
SWEEP = pd.DataFrame({"k": [0, 5], "a": 1.0, "first_diff": [2, None], "same_text": [False, True],
                      "same_answer": [False, True], "orig_len": [8, 8], "new_len": [10, 8], "len_diff": [2, 0],
                      "orig_answer": ["1", "1"], "new_answer": ["2", "1"], "orig_text": "x", "new_text": "y"})

CASES = [
    (plots.gate_curve_figure, STEPS, 2),
    (plots.position_figure, position_summary(STEPS, bins=4), 1),
    (plots.gate_histogram_figure, HIST, 1),
    (plots.script_mix_figure, MIX, 3),
    (lambda d: plots.length_figure(d, "box"), TABLE, 2),
    (lambda d: plots.length_figure(d, "violin"), TABLE, 2),
    (plots.accuracy_figure, length_summary(TABLE), 2),
    (plots.paired_figure, paired_differences(TABLE), 1),
    (plots.divergence_figure, SWEEP, 3),
]


@pytest.mark.parametrize("fn, frame, min_traces", CASES)
def test_figures(fn, frame, min_traces):
    fig = fn(frame)
    assert isinstance(fig, go.Figure) and len(fig.data) >= min_traces and fig.layout.title.text


@pytest.mark.parametrize("fn, frame, _", CASES)
def test_figures_from_empty_frames(fn, frame, _):
    fig = fn(frame.iloc[:0])
    assert isinstance(fig, go.Figure) and fig.layout.annotations


def test_length_figure_kind():
    with pytest.raises(ValueError, match="box or violin"):
        plots.length_figure(TABLE, "bars")


def test_live_step_figure_has_four_series_and_an_empty_hint():
    steps = [Step(i, f"t{i}", i, True, 0.9, 0.43, -0.1, 0.2, 3.0 + i) for i in range(4)]
    fig = plots.live_step_figure(steps)
    assert [t.name for t in fig.data] == ["gate a (mean over H)", "hidden ratio √(1-a²)", "entropy (nats)",
                                          "effective vocabulary 1/Σp²"]
    assert list(fig.data[3].y) == [3.0, 4.0, 5.0, 6.0] and list(fig.data[0].x) == [0, 1, 2, 3]
    # the written-out layout places the series as plotly's make_subplots does (2 rows, right axes, shared x)
    from plotly.subplots import make_subplots
    ref = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        specs=[[{"secondary_y": True}], [{"secondary_y": True}]])
    for row, right in [(1, False), (1, True), (2, False), (2, True)]:
        ref.add_scatter(x=[0], y=[0], row=row, col=1, secondary_y=right)
    assert [(t.xaxis, t.yaxis) for t in fig.data] == [(t.xaxis, t.yaxis) for t in ref.data]
    for axis in ("xaxis", "xaxis2", "yaxis", "yaxis2", "yaxis3", "yaxis4"):
        for key in ("anchor", "domain", "overlaying", "side", "matches"):
            got, want = fig.layout[axis][key], ref.layout[axis][key]
            assert got == want or (key == "domain" and all(abs(a - b) < 1e-9 for a, b in zip(got, want))), axis
    empty = plots.live_step_figure([])
    assert not empty.data and "Run a prompt" in empty.layout.annotations[0].text
    assert empty.layout.xaxis.visible is False and empty.layout.yaxis.visible is False


def test_tokens_html_joins_characters_split_over_byte_tokens(tiny):
    """SmolLM2's byte-level tokenizer splits '苹果' over tokens that each decode to U+FFFD alone: the Live
    view shows the characters, one span per step still, and ASCII tokens unchanged."""
    tok = tiny.tokenizer
    ids = tok("小明有5个苹果 #### 8", add_special_tokens=False)["input_ids"]
    steps = [Step(i, tiny.piece(t), t, "####" not in tok.decode(ids[:i]), 0.99, 0.1, -0.1, 0.2)
             for i, t in enumerate(ids)]
    assert any("\ufffd" in s.token for s in steps)                     # the case this is about
    pieces = readable_pieces(steps, tok.decode)
    assert "".join(pieces) == "小明有5个苹果 #### 8" and "\ufffd" not in "".join(pieces)
    assert readable_pieces(steps) == [s.token for s in steps]
    page = plots.tokens_html(steps, tok.decode)
    assert page.count("class='tok'") == len(steps) and all(c in page for c in "小明苹果") and "\ufffd" not in page
