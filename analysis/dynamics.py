"""Training dynamics like the paper's Fig. 4: metrics.jsonl rows of several runs -> one plotly figure.

Panels (x = training step): hidden ratio (per-token mean with its p10-p90 band; the authors'
sqrt(1 - mean(a)^2) dotted), reward and accuracy (held-out accuracy from eval.jsonl as markers),
completion length, KL to the reference.  HRPO runs are drawn in warm colours, GRPO runs in cool
ones, all overlaid.  Rows lacking a metric (older runs, GRPO's zero hidden ratio) draw what exists;
a panel with nothing says so.
  hrpo.rundir.read_rows(path)      complete rows of a metrics / eval file (a line being written is skipped)
  read_metrics(path)               the plotted columns of a metrics.jsonl, read incrementally
  run_mode(dir)                    "hrpo" | "grpo" | "" from train_config.json / config.json
  discover(checkpoints, runs)      {label: run dir} of every dir holding a metrics.jsonl
  load_runs({label: dir})          {label: {"mode", "rows", "eval"}}
  dynamics_figure(runs, smooth)    the figure (pure: dicts in, figure out)
Big runs (a metrics.jsonl of 200k lines and more): read_metrics keeps
each file's columns as float arrays and on the next call parses only the lines appended since (a file
replaced or cut back, as a resume does, is read again); every curve is drawn with at most MAX_POINTS
points (min and max of each bucket, so spikes and the p10-p90 band's extent stay visible).
CLI: python -m scripts.plot_dynamics.  Test: pytest tests/test_analysis_dynamics.py
"""
import json
import math
import stat
import threading
from array import array
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hrpo.rundir import is_row, parse_row, read_rows
from hrpo.selectivity import SELECTIVITY, TOKEN_TYPES

from .plots import hint_figure

WARM = ["#e8590c", "#c2255c", "#f08c00", "#9c36b5", "#e03131"]
COOL = ["#1971c2", "#0c8599", "#2f9e44", "#5c7cfa", "#495057"]
PANELS = ["Hidden ratio √(1-a²) (thinking tokens)", "Reward / accuracy", "Completion length (tokens)",
          "KL to the reference"]
PLOTTED = ["reward_mean", "accuracy", "completion_len_mean", "kl", "hidden_ratio_mean", "hidden_ratio_official",
           "hidden_ratio_p10", "hidden_ratio_p90", *SELECTIVITY]
MAX_POINTS = 2000                                   # per drawn curve


def _number(v) -> float:
    try:
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
    except OverflowError:                            # an integer beyond float range
        return math.nan


class Metrics:
    """The plotted columns of metrics rows: "step" and PLOTTED as float arrays, NaN where a row lacks one."""

    def __init__(self, rows=()):
        self.cols = {k: array("d") for k in ["step", *PLOTTED]}
        for row in rows:
            self.append(row)

    def append(self, row: dict) -> None:
        for k, col in self.cols.items():
            col.append(_number(row.get(k)))

    def copy(self) -> "Metrics":
        out = Metrics()
        out.cols = {k: array("d", col) for k, col in self.cols.items()}
        return out

    def __len__(self) -> int:
        return len(self.cols["step"])

    def column(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) where `key` is present and finite."""
        steps, vals = np.frombuffer(self.cols["step"]), np.frombuffer(self.cols[key])
        keep = np.isfinite(vals) & np.isfinite(steps)
        return steps[keep], vals[keep]


_CACHE: dict[str, dict] = {}                        # resolved path -> {"id", "offset", "metrics"}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 64


def read_metrics(path) -> Metrics:
    """The plotted columns of a metrics.jsonl; a second call parses only the complete lines appended since.

    The cache is keyed by path and keeps the file's identity (device, inode) and the byte offset after
    its last complete line; a replaced file, or one shorter than that offset, is read again from the start.
    A last line without its newline yet is left for the next call."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return Metrics()
    if not stat.S_ISREG(st.st_mode):                     # a FIFO or device would block the read
        return Metrics()
    key, ident = str(path.resolve()), (st.st_dev, st.st_ino)
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        if entry is None or entry["id"] != ident or st.st_size < entry["offset"]:
            entry = {"id": ident, "offset": 0, "metrics": Metrics()}
        try:
            with open(path, "rb") as f:
                f.seek(entry["offset"])
                chunk = f.read()
        except OSError:
            return Metrics()
        complete = chunk.rfind(b"\n") + 1                # bytes up to the last newline
        for line in chunk[:complete].decode("utf-8", errors="replace").splitlines():
            row = parse_row(line)
            if row is not None:
                entry["metrics"].append(row)
        entry["offset"] += complete
        _CACHE.pop(key, None)
        _CACHE[key] = entry                             # most recently used last
        while len(_CACHE) > _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        return entry["metrics"].copy()


def run_mode(run_dir) -> str:
    """The training mode recorded beside a run or checkpoint ("" when unknown, unreadable or not an object)."""
    for name in ("train_config.json", "config.json", "job_config.json"):
        path = Path(run_dir) / name
        if not path.is_file():                           # missing, or a FIFO / device that would block a read
            continue
        try:
            cfg = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(cfg, dict):
            continue
        train = cfg.get("train")
        mode = cfg.get("mode") or (train.get("mode") if isinstance(train, dict) else None)
        if isinstance(mode, str) and mode:
            return mode
    return ""


def discover(checkpoints_dir=None, runs_dir=None) -> dict:
    """{label: dir} for checkpoints/<name>/metrics.jsonl and runs/<name>/metrics.jsonl, sorted by name."""
    out = {}
    for prefix, base in (("checkpoints", checkpoints_dir), ("runs", runs_dir)):
        if base is None or not Path(base).is_dir():
            continue
        for d in sorted(Path(base).iterdir()):
            if (d / "metrics.jsonl").is_file():
                out[f"{prefix}/{d.name}"] = d
    return out


def default_selection(found: dict) -> list[str]:
    """The runs pre-selected in the app: the shipped checkpoints' curves, else the latest runs."""
    return [k for k in found if k.startswith("checkpoints/")] or list(found)[-6:]


def signature(chosen: dict) -> list:
    """[[label, size of its metrics.jsonl]]: the app redraws only when this changes."""
    return [[k, (d / "metrics.jsonl").stat().st_size if (d / "metrics.jsonl").is_file() else 0]
            for k, d in chosen.items()]


def load_runs(dirs: dict) -> dict:
    """{label: {"mode", "rows" (metrics.jsonl as Metrics), "eval" (eval.jsonl)}} for {label: run dir}."""
    return {label: {"mode": run_mode(d), "rows": read_metrics(Path(d) / "metrics.jsonl"),
                    "eval": read_rows(Path(d) / "eval.jsonl")} for label, d in dirs.items()}


def smoothed(values: list, window: int) -> list:
    """Trailing moving average over the last `window` present values (None stays None)."""
    out, kept = [], []
    for v in values:
        if v is None:
            out.append(None)
            continue
        kept.append(float(v))
        recent = kept[-max(1, window):]
        out.append(sum(recent) / len(recent))
    return out


def as_metrics(rows) -> Metrics:
    """Metrics from a Metrics (as is) or a list of row dicts (the app's running job, tests)."""
    return rows if isinstance(rows, Metrics) else Metrics(r for r in rows if is_row(r))


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last `window` values (fewer at the start), like smoothed()."""
    window = max(1, int(window))
    if window == 1 or len(values) == 0:
        return values
    c = np.concatenate([[0.0], np.cumsum(values)])
    i = np.arange(1, len(values) + 1)
    lo = np.maximum(0, i - window)
    return (c[i] - c[lo]) / (i - lo)


def downsample(steps: np.ndarray, values: np.ndarray, how: str = "minmax", max_points: int = MAX_POINTS):
    """At most `max_points` points: per bucket of consecutive points its min and max in step order
    ("minmax", lines keep their spikes), or only its min / max ("min", "max": the two edges of a band)."""
    n = len(steps)
    if n <= max_points:
        return steps, values
    buckets = max_points // 2 if how == "minmax" else max_points
    bounds = np.linspace(0, n, buckets + 1).astype(int)
    keep = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        chunk = values[lo:hi]
        lo_i, hi_i = lo + int(np.argmin(chunk)), lo + int(np.argmax(chunk))
        keep += {"min": [lo_i], "max": [hi_i]}.get(how, sorted({lo_i, hi_i}))
    keep = np.asarray(keep)
    return steps[keep], values[keep]


def _plain(steps: np.ndarray, values: np.ndarray) -> tuple[list, list]:
    """Lists for plotly (not numpy, which plotly would encode as binary): integral steps as ints."""
    xs = [int(x) if float(x).is_integer() else float(x) for x in steps.tolist()]
    return xs, values.tolist()


def series(rows, key: str, window: int = 1, how: str = "minmax") -> tuple[list, list]:
    """(steps, values) of the rows that have a numeric `key`, smoothed, then at most MAX_POINTS of them."""
    steps, vals = as_metrics(rows).column(key)
    vals = moving_average(vals, window)
    return _plain(*downsample(steps, vals, how))


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _add_hidden(fig, rows, name, colour, window, first):
    steps, mean = series(rows, "hidden_ratio_mean", window)
    if not steps:
        steps, mean = series(rows, "hidden_ratio_official", window)
    drawn = bool(steps)
    s10, p10 = series(rows, "hidden_ratio_p10", window, how="min")
    s90, p90 = series(rows, "hidden_ratio_p90", window, how="max")
    if s10 and np.array_equal(rows.column("hidden_ratio_p10")[0], rows.column("hidden_ratio_p90")[0]):
        fig.add_trace(go.Scatter(x=s10 + s90[::-1], y=p10 + p90[::-1], fill="toself", fillcolor=_rgba(colour, 0.15),
                                 line=dict(width=0), hoverinfo="skip", legendgroup=name, showlegend=False,
                                 name=f"{name} p10-p90"), row=1, col=1)
    if steps:
        fig.add_trace(go.Scatter(x=steps, y=mean, name=name, legendgroup=name, showlegend=first,
                                 line=dict(color=colour)), row=1, col=1)
    so, off = series(rows, "hidden_ratio_official", window)
    if so and not math.isnan(rows.cols["hidden_ratio_mean"][-1]):
        fig.add_trace(go.Scatter(x=so, y=off, name=f"{name} √(1-mean(a)²)", legendgroup=name, showlegend=False,
                                 line=dict(color=colour, dash="dot", width=1)), row=1, col=1)
    return drawn


def dynamics_figure(runs: dict, smooth: int = 1, title: str = "Training dynamics", height: int = 560) -> go.Figure:
    """The 2 x 2 figure of PANELS for {label: {"mode", "rows", "eval"?}}; a hint figure when no run has rows."""
    runs = {k: {**v, "rows": as_metrics(v.get("rows") or [])} for k, v in runs.items()}
    runs = {k: v for k, v in runs.items() if len(v["rows"])}
    if not runs:
        return hint_figure("No training metrics yet: train a run (Train tab) or ship metrics.jsonl with a checkpoint.")
    fig = make_subplots(rows=2, cols=2, subplot_titles=PANELS, horizontal_spacing=0.08, vertical_spacing=0.14)
    drawn = [False] * 4
    warm, cool = iter(WARM * 10), iter(COOL * 10)
    for label, run in runs.items():
        rows, mode = run["rows"], run.get("mode", "")
        colour = next(cool) if mode == "grpo" else next(warm)
        name = f"{label} ({mode.upper()})" if mode else label
        first = True
        hidden = rows.column("hidden_ratio_mean")[1]
        if mode != "grpo" or bool(np.any(hidden != 0)):
            drawn[0] |= _add_hidden(fig, rows, name, colour, smooth, first)
            first = False
        for key, dash in (("reward_mean", "solid"), ("accuracy", "dot")):
            steps, vals = series(rows, key, smooth)
            if steps:
                fig.add_trace(go.Scatter(x=steps, y=vals, name=name if key == "reward_mean" else f"{name} accuracy",
                                         legendgroup=name, showlegend=first and key == "reward_mean",
                                         line=dict(color=colour, dash=dash)), row=1, col=2)
                drawn[1] = True
                first = first and key != "reward_mean"
        ev = [(r["step"], r["accuracy"]) for r in run.get("eval") or []
              if isinstance(r, dict) and isinstance(r.get("accuracy"), (int, float))][-MAX_POINTS:]
        if ev:
            fig.add_trace(go.Scatter(x=[s for s, _ in ev], y=[a for _, a in ev], mode="markers", legendgroup=name,
                                     name=f"{name} held-out accuracy", showlegend=False,
                                     marker=dict(color=colour, symbol="diamond", size=8)), row=1, col=2)
        for panel, key in ((3, "completion_len_mean"), (4, "kl")):
            steps, vals = series(rows, key, smooth)
            if steps:
                fig.add_trace(go.Scatter(x=steps, y=vals, name=name, legendgroup=name, showlegend=first,
                                         line=dict(color=colour)), row=(panel - 1) // 2 + 1, col=(panel - 1) % 2 + 1)
                drawn[panel - 1], first = True, False
    for i, ok in enumerate(drawn):
        if not ok:
            fig.add_annotation(text="not logged by these runs", showarrow=False, font=dict(color="#888"),
                               xref=f"x{i + 1 if i else ''} domain", yref=f"y{i + 1 if i else ''} domain", x=0.5, y=0.5)
    note = f" (moving average over {smooth} steps)" if smooth > 1 else ""
    fig.update_layout(title=title + note, template="plotly_white", height=height,
                      legend=dict(orientation="h", y=-0.12), margin=dict(l=40, r=20, t=70, b=40))
    fig.update_xaxes(title_text="step", row=2)
    return fig


SELECTIVE = [(f"hidden_ratio_{t}", t) for t in TOKEN_TYPES] + [("hidden_ratio_line_first", "first of a line"),
                                                              ("hidden_ratio_line_later", "later in a line")]
DASHES = ["solid", "dot", "dash", "longdash", "dashdot", "longdashdot"]


def selectivity_figure(runs: dict, smooth: int = 1, height: int = 420) -> go.Figure:
    """Does the gate pick where to think?  Left: the mean hidden ratio by token type over training, one dash per
    type, one colour per run; right: p90 / p10 of the per-token hidden ratio (1 = a uniform gate).  HRPO runs
    that log the selectivity metrics (hrpo.selectivity.SELECTIVITY); a hint figure when none does."""
    runs = {k: {**v, "rows": as_metrics(v.get("rows") or [])} for k, v in runs.items() if v.get("mode") != "grpo"}
    runs = {k: v for k, v in runs.items() if series(v["rows"], "hidden_ratio_p90_p10")[0]}
    if not runs:
        return hint_figure("No gate-selectivity metrics in the selected runs (HRPO runs log them per step).")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=[
        "Hidden ratio by token type (thinking tokens)", "Spread p90 / p10 of the per-token hidden ratio"])
    for (label, run), colour in zip(runs.items(), WARM * 10):
        for (key, name), dash in zip(SELECTIVE, DASHES):
            steps, vals = series(run["rows"], key, smooth)
            if steps:
                fig.add_trace(go.Scatter(x=steps, y=vals, name=f"{label}: {name}", legendgroup=label,
                                         line=dict(color=colour, dash=dash)), row=1, col=1)
        steps, vals = series(run["rows"], "hidden_ratio_p90_p10", smooth)
        fig.add_trace(go.Scatter(x=steps, y=vals, name=f"{label}: p90/p10", legendgroup=label,
                                 line=dict(color=colour, width=3)), row=1, col=2)
    fig.update_layout(title="Gate selectivity", template="plotly_white", height=height,
                      legend=dict(orientation="h", y=-0.2), margin=dict(l=40, r=20, t=70, b=40))
    fig.update_xaxes(title_text="step")
    return fig
