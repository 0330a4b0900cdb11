"""`python -m analysis compare` as a user runs it (a real subprocess), plus its one-line errors (in-process)."""
import os
import subprocess
import sys

import pandas as pd
import pytest

from analysis.__main__ import main
from analysis.report import render_html
from conftest import ROOT

CSV_COLUMNS = {"lengths.csv": {"model", "problem", "num_tokens", "correct", "reward"},
               "summary.csv": {"model", "n", "mean_len", "median_len", "accuracy", "format_rate", "mean_diff"},
               "paired.csv": {"model", "problem", "diff", "base_tokens"},
               "steps.csv": {"model", "trace", "step", "gate_a", "hidden_ratio", "rel_pos", "thinking"},
               "positions.csv": {"model", "bin", "bin_mid", "hidden_ratio", "gate_a"},
               "scripts.csv": {"model", "source", "script", "count", "share"},
               "latent_scripts.csv": {"model", "trace", "foreign_any", "foreign_majority"},
               "gate_histogram.csv": {"model", "left", "right", "count"},
               "map.csv": {"x", "y", "kind", "label", "step", "hidden_ratio", "model"},
               "traces.csv": {"model", "trace", "index", "token", "token_id", "gate_a"}}
FIGURES = ["Completion length", "Accuracy", "Paired length differences", "Gate curves",
           "Hidden ratio by relative position", "Gate distribution", "Script mix", "Latent map: tiny-random",
           "Latent map: tiny-random#2"]


@pytest.mark.slow
def test_compare_cli_on_tiny_random(tmp_path):
    out = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "analysis", "compare", "--models", "tiny-random,tiny-random",
                          "--task", "mgsm:en", "--limit", "2",
                  "--max-new-tokens", "8", "--map", "pca", "--out", str(out)],   # PCA: skip UMAP's JIT (~15 s)
                         capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert res.returncode == 0, res.stderr
    assert "report.html" in res.stdout
    for name, cols in CSV_COLUMNS.items():
        df = pd.read_csv(out / name)
        assert cols <= set(df.columns), (name, set(df.columns))
        assert len(df) > 0, name
    lengths = pd.read_csv(out / "lengths.csv")
    assert lengths["model"].tolist() == ["tiny-random"] * 2 + ["tiny-random#2"] * 2
    assert (lengths["num_tokens"] == 8).all()
    assert set(pd.read_csv(out / "map.csv")["kind"]) == {"latent", "token"}
    page = (out / "report.html").read_text(encoding="utf-8")
    for title in FIGURES:
        assert f"<h2>{title}</h2>" in page, title
    assert page.count("Plotly.newPlot") == len(FIGURES)
    assert 'src="https://cdn.plot.ly' not in page and len(page) > 1_000_000      # plotly.js inlined: opens offline
    assert page.count("plotly.js v") >= 1


@pytest.mark.parametrize("argv, message", [
    (["--models", "tiny-random", "--task", "nope"], "unknown task"),
    (["--models", "tiny-random", "--task", "mgsm:xx"], "unknown MGSM language"),
    (["--models", "tiny-random", "--limit", "0"], "limit must be >= 1"),
    (["--models", " , ", "--task", "arith"], "--models is empty"),
    (["--models", "tiny-random", "--task", "arith", "--max-new-tokens", "0"], "max_new_tokens"),
    (["--models", "/no/such/dir/model.gguf", "--task", "arith", "--limit", "1"], "no such GGUF file"),
    (["--models", "tiny-random,./no-such-model-dir", "--task", "arith", "--limit", "1", "--max-new-tokens", "2"],
     "unknown model spec './no-such-model-dir'"),
])
def test_compare_errors_in_one_line(tmp_path, capsys, argv, message):
    assert main(["compare", *argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and err[-1] == errors[0] and message in errors[0], err
    assert not any("Traceback" in line for line in err)
    assert not (tmp_path / "o").exists()


def test_render_html_is_pure():
    import plotly.graph_objects as go
    page = render_html("T <1>", {"A": go.Figure(), "B": go.Figure()}, {"S": pd.DataFrame({"x": [1.23456]})},
                       {"task": "t"})
    assert page.startswith("<!DOCTYPE html>") and "T &lt;1&gt;" in page and "1.235" in page
    assert page.count("<h2>") == 3


@pytest.mark.slow
def test_latent_ablation_columns(tmp_path):
    """--ablation: each hybrid model decoded again with a = 1 from step 0; summary gains the three columns."""
    out = tmp_path / "abl"
    assert main(["compare", "--models", "tiny-random", "--task", "mgsm:en", "--limit", "2", "--max-new-tokens", "6",
                 "--map", "pca", "--ablation", "--no-hybrid", "--out", str(out)]) == 0
    s = pd.read_csv(out / "summary.csv")
    assert {"accuracy_a1", "mean_len_a1", "accuracy_drop"} <= set(s.columns) and s["accuracy_a1"].isna().all()
    from analysis.report import run_compare
    from hrpo.config import RolloutConfig
    tables, meta = run_compare(["tiny-random"], "mgsm:en", 2, RolloutConfig(max_new_tokens=6, greedy=True),
                               map_method="pca", ablation=True)
    row = tables["summary"].iloc[0]
    assert row["mean_len_a1"] == 6 and row["accuracy_drop"] == row["accuracy"] - row["accuracy_a1"]
    assert meta["latent ablation"] is True


@pytest.mark.parametrize("rewards, ablated, drop",
                         [([1, 1], [1, 0], 0.5), ([0, 0], [1, 1], -1.0), ([1, 0], None, None)])
def test_ablation_row(rewards, ablated, drop):
    from types import SimpleNamespace as NS

    from analysis.report import ablation_row
    probs = [NS(kind="math", answer="1", question="q")] * len(rewards)
    tr = lambda ok: NS(text="#### 1" if ok else "#### 2", answer="1" if ok else "2", token_ids=[0] * 3,  # noqa: E731
                       steps=[])
    row = ablation_row(probs, [tr(r) for r in rewards], None if ablated is None else [tr(r) for r in ablated])
    if drop is None:
        assert all(v != v for v in row.values())           # NaN: not a hybrid decode
    else:
        assert row["accuracy_drop"] == pytest.approx(drop) and row["mean_len_a1"] == 3
