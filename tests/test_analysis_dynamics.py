"""analysis.dynamics: metrics.jsonl of several runs -> the training-dynamics figure (paper Fig. 4)."""
import json
import os

import pytest

from analysis import dynamics
from hrpo.rundir import read_rows


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
    assert [r["step"] for r in read_rows(d / "metrics.jsonl")] == [1, 2]
    assert read_rows(tmp_path / "missing.jsonl") == []


def test_junk_steps_are_skipped_and_the_figure_serialises(tmp_path):
    """A step of 1e20, NaN, -1 or 2.5 is junk (hrpo.rundir.is_row): plotly's serialiser never sees it."""
    d = write_run(tmp_path / "r", "hrpo", [full_row(1, 0.1), {**full_row(2, 0.2), "step": 1e20},
                                           {**full_row(3, 0.2), "step": float("nan")}, {**full_row(4, 0.2), "step": -1},
                                           {**full_row(5, 0.2), "step": 2.5}, full_row(6, 0.3)])
    assert [r["step"] for r in read_rows(d / "metrics.jsonl")] == [1, 6]
    fig = dynamics.dynamics_figure(dynamics.load_runs({"r": d}))
    assert json.loads(fig.to_json())["data"]


def test_fifos_never_block_the_reader(tmp_path):
    """A FIFO (or device) as train_config.json or metrics.jsonl reads as missing instead of hanging."""
    import threading
    d = write_run(tmp_path / "r", "hrpo", [full_row(1, 0.1)])
    (d / "train_config.json").unlink()
    os.mkfifo(d / "train_config.json")
    fifo_run = tmp_path / "f"
    fifo_run.mkdir()
    os.mkfifo(fifo_run / "metrics.jsonl")
    got = {}
    reader = threading.Thread(target=lambda: got.update(mode=dynamics.run_mode(d),
                                                        metrics=dynamics.read_metrics(fifo_run / "metrics.jsonl"),
                                                        runs=dynamics.load_runs({"r": d, "f": fifo_run})),
                              daemon=True)
    reader.start()
    reader.join(timeout=20)
    assert not reader.is_alive(), "a FIFO blocked the dynamics reader"
    assert got["mode"] == "" and len(got["metrics"]) == 0
    assert list(dynamics.discover(None, tmp_path)) == ["runs/r"]


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


@pytest.mark.parametrize("config", ['[1, 2]', 'null', '"hrpo"', '{"train": "x"}', '{"mode": 5}', '{"mode": "hrpo"'])
def test_a_config_that_is_not_an_object_is_an_unknown_mode(tmp_path, config):
    d = write_run(tmp_path / "r", "hrpo", [full_row(1, 0.1), full_row(2, 0.2)])
    (d / "train_config.json").write_text(config)
    assert dynamics.run_mode(d) == ""
    fig = dynamics.dynamics_figure(dynamics.load_runs({"runs/r": d}))
    assert "runs/r" in names(fig) and "runs/r p10-p90" in names(fig)


@pytest.mark.slow
def test_a_big_metrics_file_is_read_incrementally_and_drawn_downsampled(tmp_path, monkeypatch):
    """200k lines: at most MAX_POINTS per curve, the band's extent kept, and
    a second read parses only the appended lines (counted, not timed); a replaced file is read again."""
    n, cap = 200_000, dynamics.MAX_POINTS
    d = tmp_path / "big"
    d.mkdir()
    (d / "train_config.json").write_text('{"mode": "hrpo"}')
    with open(d / "metrics.jsonl", "w") as f:
        for s in range(1, n + 1):
            hr = (s % 997) / 997 * 0.1
            f.write(json.dumps({"step": s, "reward_mean": (s % 13) / 13, "kl": 1e-3, "hidden_ratio_mean": hr,
                                "hidden_ratio_p10": hr / 2, "hidden_ratio_p90": hr * 2 if s != 123_457 else 9.0})
                    + "\n")
    parsed = []
    real = dynamics.parse_row
    monkeypatch.setattr(dynamics, "parse_row", lambda line: parsed.append(1) or real(line))
    runs = dynamics.load_runs({"big": d})
    assert len(runs["big"]["rows"]) == n and len(parsed) == n
    fig = dynamics.dynamics_figure(runs, smooth=1)
    for t in fig.data:
        assert len(t.x) <= (2 * cap if t.name.endswith("p10-p90") else cap), t.name
    band = next(t for t in fig.data if t.name == "big (HRPO) p10-p90")
    assert min(band.y) == 0.0 and max(band.y) == 9.0                   # the band's extent, spike included
    line = next(t for t in fig.data if t.name == "big (HRPO)")
    assert line.x[0] == 1 and line.x[-1] == n and isinstance(line.x[0], int)
    with open(d / "metrics.jsonl", "a") as f:                           # the run goes on: 10 lines and a half
        f.write("".join(json.dumps({"step": s, "reward_mean": 1.0}) + "\n" for s in range(n + 1, n + 11)))
        f.write('{"step": 200011, "rew')
    parsed.clear()
    assert len(dynamics.load_runs({"big": d})["big"]["rows"]) == n + 10 and len(parsed) == 10
    with open(d / "metrics.jsonl", "a") as f:
        f.write('ard_mean": 1.0}\n')
    parsed.clear()
    assert len(dynamics.read_metrics(d / "metrics.jsonl")) == n + 11 and len(parsed) == 1
    cut = d / "cut.jsonl"                                               # a resume cuts the file back (rename)
    cut.write_text("".join(json.dumps({"step": s, "reward_mean": 0.5}) + "\n" for s in range(1, 6)))
    os.replace(cut, d / "metrics.jsonl")
    parsed.clear()
    rows = dynamics.read_metrics(d / "metrics.jsonl")
    assert len(rows) == 5 and len(parsed) == 5


def test_downsample_keeps_spikes_and_order():
    import numpy as np
    steps = np.arange(10_000, dtype=float)
    vals = np.zeros(10_000)
    vals[4321], vals[777] = 5.0, -3.0
    xs, ys = dynamics.downsample(steps, vals, "minmax", max_points=100)
    assert len(xs) <= 100 and list(xs) == sorted(xs) and 5.0 in ys and -3.0 in ys
    assert dynamics.downsample(steps[:50], vals[:50], "minmax", 100)[0].tolist() == list(range(50))
    assert dynamics.moving_average(np.array([1.0, 3.0, 5.0]), 2).tolist() == [1.0, 2.0, 4.0]


def test_selectivity_figure_draws_token_types_and_spread_of_hrpo_runs():
    from analysis.dynamics import selectivity_figure
    rows = [{"step": s, "hidden_ratio_p90_p10": 1.0 + s / 10, "hidden_ratio_digit": 0.1 * s, "hidden_ratio_word": 0.2,
             "hidden_ratio_operator": None, "hidden_ratio_line_first": 0.3} for s in range(1, 6)]
    fig = selectivity_figure({"h": {"mode": "hrpo", "rows": rows}, "g": {"mode": "grpo", "rows": rows}})
    names = [t.name for t in fig.data]
    assert names == ["h: digit", "h: word", "h: first of a line", "h: p90/p10"]     # GRPO and unlogged types left out
    spread = fig.data[-1]
    assert list(spread.x) == [1, 2, 3, 4, 5] and list(spread.y) == [1.1, 1.2, 1.3, 1.4, 1.5]
    empty = selectivity_figure({"old": {"mode": "hrpo", "rows": [{"step": 1, "hidden_ratio_mean": 0.1}]}})
    assert "No gate-selectivity metrics" in empty.to_json()
