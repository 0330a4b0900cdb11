"""analysis.dynamics: metrics.jsonl of several runs -> the training-dynamics figure (paper Fig. 4)."""
import json

import pytest

from analysis import dynamics


def write_run(d, mode, rows, config="train_config.json", tail=""):
    d.mkdir(parents=True)
    (d / config).write_text(json.dumps({"mode": mode} if config != "config.json" else {"train": {"mode": mode}}))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)
    return d


def full_row(step, hr):
    return {"step": step, "reward_mean": 0.1 * step, "accuracy": 0.1 * step, "completion_len_mean": 40 - step,
            "kl": 0.001 * step, "hidden_ratio_mean": hr, "hidden_ratio_official": hr * 0.9,
            "hidden_ratio_p10": hr * 0.5, "hidden_ratio_p50": hr, "hidden_ratio_p90": hr * 1.5, "gate_a_mean": 0.99}


def names(fig):
    return [t.name for t in fig.data]


def test_read_jsonl_skips_partial_lines(tmp_path):
    d = write_run(tmp_path / "r", "hrpo", [full_row(1, 0.1), full_row(2, 0.2)], tail='{"step": 3, "rew')
    assert [r["step"] for r in dynamics.read_jsonl(d / "metrics.jsonl")] == [1, 2]
    assert dynamics.read_jsonl(tmp_path / "missing.jsonl") == []


def test_discover_and_modes(tmp_path):
    write_run(tmp_path / "ck" / "hrpo-ck", "hrpo", [full_row(1, 0.1)], config="config.json")
    (tmp_path / "ck" / "no-metrics").mkdir()
    write_run(tmp_path / "runs" / "g", "grpo", [full_row(1, 0.0)])
    found = dynamics.discover(tmp_path / "ck", tmp_path / "runs")
    assert list(found) == ["checkpoints/hrpo-ck", "runs/g"]
    runs = dynamics.load_runs(found)
    assert runs["checkpoints/hrpo-ck"]["mode"] == "hrpo" and runs["runs/g"]["mode"] == "grpo"
    assert dynamics.discover(tmp_path / "nothing", None) == {}


def test_figure_overlays_hrpo_and_grpo_with_band():
    runs = {"h": {"mode": "hrpo", "rows": [full_row(s, 0.01 * s) for s in range(1, 6)],
                  "eval": [{"step": 5, "accuracy": 0.5}]},
            "g": {"mode": "grpo", "rows": [full_row(s, 0.0) for s in range(1, 6)]}}
    fig = dynamics.dynamics_figure(runs)
    n = names(fig)
    assert "h (HRPO)" in n and "g (GRPO)" in n and "h (HRPO) p10-p90" in n and "h (HRPO) held-out accuracy" in n
    assert "g (GRPO) p10-p90" not in n                        # GRPO's all-zero hidden ratio is not drawn
    band = next(t for t in fig.data if t.name == "h (HRPO) p10-p90")
    assert band.fill == "toself" and len(band.x) == 10
    colours = {t.line.color for t in fig.data if t.name in ("h (HRPO)", "g (GRPO)")}
    assert len(colours) == 2
    assert [a.text for a in fig.layout.annotations if a.text.startswith("not logged")] == []


def test_old_metrics_draw_what_exists_and_empty_is_a_hint():
    old = {"r": {"mode": "hrpo", "rows": [{"step": s, "reward_mean": 0.5, "kl": 0.01} for s in (1, 2, 3)]}}
    fig = dynamics.dynamics_figure(old, smooth=2)
    assert sum(a.text == "not logged by these runs" for a in fig.layout.annotations) == 2   # hidden, length
    assert "moving average over 2 steps" in fig.layout.title.text
    empty = dynamics.dynamics_figure({"x": {"mode": "hrpo", "rows": []}})
    assert "No training metrics yet" in empty.layout.annotations[0].text and not empty.data
    assert empty.layout.xaxis.visible is False


@pytest.mark.parametrize("values, window, expected", [([1, 2, 3], 1, [1, 2, 3]), ([1, 3, None, 5], 2, [1, 2, None, 4]),
                                                      ([], 3, [])])
def test_smoothed(values, window, expected):
    assert dynamics.smoothed(values, window) == expected
