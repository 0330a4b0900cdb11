"""Gate selectivity (hrpo/selectivity.py) and its metrics in the trainer and config (issue 29)."""
import json
import math
import re
import sys
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from hrpo.selectivity import (
    FRAME_COLUMNS,
    SELECTIVITY,
    line_starts,
    none_for_nan,
    quantile,
    selectivity,
    selectivity_frame,
    thinking_records,
    token_type,
)


@pytest.mark.parametrize("piece, want", [
    ("12", "digit"), (" 7", "digit"), ("3.5", "digit"), ("1,000", "digit"), ("٣", "digit"),
    ("+", "operator"), (" -", "operator"), ("==", "operator"), (" ×", "operator"), ("/", "operator"),
    ("The", "word"), (" apples", "word"), ("x2", "word"), ("é", "word"), ("个", "word"),
    (".", "punct"), ("####", "punct"), (" ?", "punct"), ("),", "punct"), ("$", "punct"),
    ("", "space"), (" ", "space"), ("\n", "space"), ("\n\n ", "space"),
])
def test_token_type(piece, want):
    assert token_type(piece) == want


@pytest.mark.parametrize("pieces, want", [
    ([], []),
    (["A", " b", "\n", "C", " d"], [True, False, False, True, False]),
    ([" ", "A", " b"], [False, True, False]),                       # leading whitespace is not a first
    (["A", ".\n", "B"], [True, False, True]),                       # content then newline: next line starts
    (["A", "\nB", " c"], [True, True, False]),                      # newline then content: first of its line
    (["\n\n", " ", "x", "\n", "\n", "y"], [False, False, True, False, False, True]),
    ([".\n"], [True]),                                              # first piece, content before the newline
])
def test_line_starts(pieces, want):
    assert line_starts(pieces) == want


def step(token, thinking=True, h=0.1):
    return SimpleNamespace(token=token, thinking=thinking, hidden_ratio=h)


def test_thinking_records_keep_line_positions_of_the_whole_trace():
    steps = [step("3", h=0.1), step(" +", h=0.2), step("\n", h=0.3), step("Yes", h=0.4),
             step("####", thinking=True, h=0.5), step(" 4", thinking=False, h=0.0)]
    assert thinking_records(steps) == [("digit", True, 0.1), ("operator", False, 0.2), ("space", False, 0.3),
                                       ("word", True, 0.4), ("punct", False, 0.5)]


@pytest.mark.parametrize("values, q, want", [
    ([1.0], 0.1, 1.0), ([1.0, 2.0], 0.5, 1.5), ([3.0, 1.0, 2.0], 0.9, 2.8), (list(range(11)), 0.1, 1.0),
])
def test_quantile_matches_torch(values, q, want):
    assert quantile(values, q) == pytest.approx(want)
    assert quantile(values, q) == pytest.approx(torch.quantile(torch.tensor(values, dtype=torch.float64), q).item())


@pytest.mark.parametrize("records, want", [
    ([], {k: None for k in SELECTIVITY}),
    ([("digit", True, 0.2), ("digit", False, 0.2), ("word", False, 0.2)],          # a uniform gate: ratio 1
     {"hidden_ratio_p90_p10": 1.0, "hidden_ratio_digit": 0.2, "hidden_ratio_operator": None,
      "hidden_ratio_word": 0.2, "hidden_ratio_punct": None, "hidden_ratio_line_first": 0.2,
      "hidden_ratio_line_later": 0.2}),
    ([("digit", True, 0.1), ("operator", False, 0.3), ("space", False, 0.5), ("punct", False, 0.2),
      ("word", True, 0.4)],
     {"hidden_ratio_p90_p10": quantile([0.1, 0.3, 0.5, 0.2, 0.4], 0.9) / quantile([0.1, 0.3, 0.5, 0.2, 0.4], 0.1),
      "hidden_ratio_digit": 0.1, "hidden_ratio_operator": 0.3, "hidden_ratio_word": 0.4,
      "hidden_ratio_punct": 0.2, "hidden_ratio_line_first": 0.25, "hidden_ratio_line_later": 0.25}),
    ([("digit", True, 0.0), ("word", False, 0.0)],                                  # GRPO: a = 1, no ratio
     {"hidden_ratio_p90_p10": None, "hidden_ratio_digit": 0.0, "hidden_ratio_operator": None,
      "hidden_ratio_word": 0.0, "hidden_ratio_punct": None, "hidden_ratio_line_first": 0.0,
      "hidden_ratio_line_later": 0.0}),
])
def test_selectivity(records, want):
    got = selectivity(records)
    assert list(got) == SELECTIVITY
    for k, v in want.items():
        assert got[k] == (None if v is None else pytest.approx(v)), k


def test_none_for_nan_keeps_strict_json():
    d = none_for_nan({"a": math.nan, "b": 1.0, "c": None, "d": "x", "e": math.inf})
    assert d == {"a": None, "b": 1.0, "c": None, "d": "x", "e": None}
    json.dumps(d, allow_nan=False)


def test_selectivity_frame_one_row_per_model():
    rows = [("m1", 0, 0, "3", True, 0.9, 0.1), ("m1", 0, 1, " +", True, 0.8, 0.3), ("m1", 0, 2, " 4", False, 1.0, 0.0),
            ("m1", 1, 0, "Hi", True, 0.9, 0.2),
            ("plain", 0, 0, "3", False, 1.0, 0.0)]
    steps = pd.DataFrame(rows, columns=["model", "trace", "step", "token", "thinking", "gate_a", "hidden_ratio"])
    frame = selectivity_frame(steps)
    assert list(frame.columns) == FRAME_COLUMNS and list(frame["model"]) == ["m1", "plain"]
    m1 = frame.iloc[0]
    assert m1["thinking_tokens"] == 3 and m1["n_digit"] == 1 and m1["n_operator"] == 1 and m1["n_word"] == 1
    assert m1["hidden_ratio_digit"] == pytest.approx(0.1) and m1["hidden_ratio_word"] == pytest.approx(0.2)
    assert m1["hidden_ratio_line_first"] == pytest.approx(0.15)          # "3" and "Hi" start their lines
    assert m1["hidden_ratio_p90_p10"] == pytest.approx(quantile([0.1, 0.3, 0.2], 0.9) / quantile([0.1, 0.3, 0.2], 0.1))
    assert frame.iloc[1]["thinking_tokens"] == 0 and math.isnan(frame.iloc[1]["hidden_ratio_p90_p10"])


# ------------------------------------------------------------------ config and trainer

def test_gate_weight_decay_validation_and_groups():
    from hrpo.config import ConfigError, TrainConfig
    from hrpo.trainer import param_groups
    with pytest.raises(ConfigError, match="gate_weight_decay"):
        TrainConfig(gate_weight_decay=-0.5)
    gate = SimpleNamespace(W_r=torch.nn.Linear(2, 2), W_i=torch.nn.Linear(2, 2),
                           Lambda=torch.nn.Parameter(torch.zeros(2)))
    model = torch.nn.Linear(2, 2)
    for kw, gate_wd, lam_wd in [({}, 0.1, 0.1), ({"gate_weight_decay": 0.0}, 0.0, 0.1),
                                ({"gate_weight_decay": 0.3}, 0.3, 0.1), ({"decay_gate": False}, 0.0, 0.0),
                                ({"decay_gate": False, "gate_weight_decay": 0.2}, 0.2, 0.0)]:
        groups = {g["name"]: g for g in param_groups(model, gate, TrainConfig(weight_decay=0.1, **kw), hybrid=True)}
        assert groups["gate"]["weight_decay"] == gate_wd and groups["lambda"]["weight_decay"] == lam_wd, kw
    assert TrainConfig.from_dict(TrainConfig(gate_weight_decay=0.0).to_dict()).gate_weight_decay == 0.0


def test_trainer_logs_selectivity(tmp_path):
    from hrpo.config import TrainConfig
    from hrpo.trainer import METRICS, Trainer
    cfg = TrainConfig(model="tiny-random", task="arith", out=str(tmp_path / "r"), steps=1, group_size=2,
                      batch_prompts=1, max_new_tokens=6, lora_rank=2, lora_alpha=4, device="cpu", seed=1)
    Trainer(cfg).train()
    line = (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[0]
    m = json.loads(line)                                 # strict JSON: no NaN
    assert "NaN" not in line and set(SELECTIVITY) <= set(METRICS) <= set(m)
    for k in SELECTIVITY:
        assert m[k] is None or (isinstance(m[k], float) and m[k] >= 0), k


def test_compare_writes_selectivity(tmp_path):
    from analysis.__main__ import main
    out = tmp_path / "o"
    assert main(["compare", "--models", "tiny-random", "--task", "arith", "--limit", "2", "--max-new-tokens", "6",
                 "--device", "cpu", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "selectivity.csv")
    assert list(frame.columns) == FRAME_COLUMNS and list(frame["model"]) == ["tiny-random"]
    assert frame["thinking_tokens"].iloc[0] >= 1
    assert "Gate selectivity" in (out / "report.html").read_text(encoding="utf-8")


def test_gate_report_builds_the_table_from_finished_parts(tmp_path):
    """studies/gate_report.py: settings pooled over seeds, ablation paired, GRPO difference, unfinished runs."""
    from studies import gate_report
    (tmp_path / "eval").mkdir()
    rec = [["digit", True, 0.1], ["word", False, 0.3]]

    def write(name, rows):
        (tmp_path / "eval" / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    for run, steps in [("glr1e-2-nowd-s0", 100), ("grpo-s0", 100), ("glr3e-2-wd-s0", 7)]:
        (tmp_path / run).mkdir()
        rows = [{"step": s, "accuracy": 0.5, "hidden_ratio_mean": 0.1, "hidden_ratio_p90_p10": 2.0 if s > 2 else None,
                 "hidden_ratio_digit": 0.1} for s in range(1, steps + 1)]
        (tmp_path / run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    hyb = [{"reward": 1.0, "records": rec}, {"reward": 1.0, "records": rec}, {"reward": 0.0, "records": rec}]
    plain = [{"reward": 1.0, "records": []}, {"reward": 0.0, "records": []}, {"reward": 0.0, "records": []}]
    for s in ("arith", "reworded", "pairs"):
        write(f"glr1e-2-nowd-s0__{s}__hybrid", hyb)
        write(f"glr1e-2-nowd-s0__{s}__plain", plain)
        write(f"grpo-s0__{s}__plain", plain)
    table = gate_report.report(tmp_path)
    row = table["glr1e-2-nowd"]
    assert row["arith_acc"]["mean"] == pytest.approx(2 / 3) and row["arith_n"] == 3
    assert row["arith_ablation"]["mean"] == pytest.approx(1 / 3)
    assert row["arith_vs_grpo"]["mean"] == pytest.approx(1 / 3)
    assert row["arith_selectivity"]["hidden_ratio_digit"] == pytest.approx(0.1)
    assert row["train"]["0"]["hidden_ratio_p90_p10"] == pytest.approx(2.0)
    assert table["glr3e-2-wd"]["arith_acc"] is None and table["glr3e-2-wd"]["train"]["0"]["steps"] == 7
    assert table["grpo"]["arith_acc"]["mean"] == pytest.approx(1 / 3) and table["grpo"]["arith_vs_grpo"] is None
    md = gate_report.markdown(table)
    assert "| glr1e-2-nowd | 0 | 100 | 0.667" in md and "| glr3e-2-wd | 0 | 7 | - | - | - |" in md
    assert "| glr1e-2-nowd | +0.333" in md and row["pairs_ablation"]["mean"] == pytest.approx(1 / 3)


def test_reworded_wordings_state_the_answer_and_differ_from_the_task():
    """studies/reworded_arith.py: each wording's answer follows from its numbers; names and frames are new."""
    from hrpo.tasks import ANSWER_HINT, ITEMS, NAMES
    from studies.reworded_arith import accuracy_by_form, pairs_form, problems
    containers = problems("containers", 300)
    assert containers[0]["question"].startswith("A jar holds 18 tickets. Then 9 of the tickets are taken out.")
    assert containers == problems("containers", 300) and len({r["question"] for r in containers}) == 300
    pairs = problems("pairs", 300)
    kinds = set()
    for row in pairs:
        text = row["question"].removesuffix(ANSWER_HINT)
        a, b = map(int, re.findall(r"\d+", text))
        kind = pairs_form(text)
        kinds.add(kind)
        assert int(row["answer"]) == (a + b if kind == "sum" else a - b) >= 1
        assert 2 <= a <= 20 and b <= 20
        assert not any(n in text for names in NAMES.values() for n in names)
        assert not any(f" {item}" in text for item in ITEMS) and "holds" not in text
    assert kinds == {"sum", "fewer", "more"}
    rows = [{"question": r["question"], "reward": float(pairs_form(r["question"]) == "sum")} for r in pairs]
    acc = accuracy_by_form(rows)
    assert acc["sum"][0] == 1.0 and acc["fewer"][0] == acc["more"][0] == 0.0 and sum(n for _, n in acc.values()) == 300
    assert pairs != problems("pairs", 300, seed=1)


def test_gate_sweep_eval_only_trains_nothing_and_skips_a_locked_run(tmp_path, capsys, monkeypatch):
    """studies/gate_sweep.py run --eval-only: unfinished runs are skipped, not trained; a run locked by another
    sweep process is left to it; the three held-out sets are written once."""
    from studies import gate_sweep
    held = gate_sweep.run_lock(tmp_path, "glr1e-2-wd-s0")
    assert held is not None and gate_sweep.run_lock(tmp_path, "glr1e-2-wd-s0") is None
    monkeypatch.setattr(sys, "argv", ["gate_sweep", "run", "--out", str(tmp_path), "--eval-only",
                                      "--only", "glr1e-2-wd,grpo", "--limit", "5"])
    gate_sweep.main()
    said = capsys.readouterr().out
    assert "skip glr1e-2-wd-s0 (another sweep process is on it)" in said
    assert "skip evaluation of grpo-s0 (training did not finish)" in said
    assert not (tmp_path / "grpo-s0").exists() and not (tmp_path / "eval").exists()
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == ["pairs.jsonl", "reworded.jsonl"]
    assert sum(1 for _ in open(tmp_path / "pairs.jsonl")) == 5
    held.close()
    assert gate_sweep.run_lock(tmp_path, "glr1e-2-wd-s0") is not None
