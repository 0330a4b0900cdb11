"""Training dynamics like the paper's Fig. 4: metrics.jsonl rows of several runs -> one plotly figure.

Panels (x = training step): hidden ratio (per-token mean with its p10-p90 band; the authors'
sqrt(1 - mean(a)^2) dotted), reward and accuracy (held-out accuracy from eval.jsonl as markers),
completion length, KL to the reference.  HRPO runs are drawn in warm colours, GRPO runs in cool
ones, all overlaid.  Rows lacking a metric (older runs, GRPO's zero hidden ratio) draw what exists;
a panel with nothing says so.
  read_jsonl(path)                 complete JSON lines of a file (a line being written is skipped)
  run_mode(dir)                    "hrpo" | "grpo" | "" from train_config.json / config.json
  discover(checkpoints, runs)      {label: run dir} of every dir holding a metrics.jsonl
  load_runs({label: dir})          {label: {"mode", "rows", "eval"}}
  dynamics_figure(runs, smooth)    the figure (pure: dicts in, figure out)
CLI: python scripts/plot_dynamics.py.  Test: pytest tests/test_analysis_dynamics.py
"""
import json
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .plots import hint_figure

WARM = ["#e8590c", "#c2255c", "#f08c00", "#9c36b5", "#e03131"]
COOL = ["#1971c2", "#0c8599", "#2f9e44", "#5c7cfa", "#495057"]
PANELS = ["Hidden ratio √(1-a²) (thinking tokens)", "Reward / accuracy", "Completion length (tokens)",
          "KL to the reference"]


def read_jsonl(path) -> list[dict]:
    """Every complete JSON object line of `path` ([] when missing)."""
    rows = []
    path = Path(path)
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), (int, float)):
                rows.append(row)
    return rows


def run_mode(run_dir) -> str:
    """The training mode recorded beside a run or checkpoint ("" when unknown)."""
    for name in ("train_config.json", "config.json", "job_config.json"):
        try:
            cfg = json.loads((Path(run_dir) / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        mode = cfg.get("mode") or (cfg.get("train") or {}).get("mode")
        if mode:
            return str(mode)
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


def selection_note(found: dict, chosen: dict, hosted: bool = False) -> str:
    """The line under the app's dynamics figure: what is shown, or how to get curves."""
    shipped = [k for k in found if k.startswith("checkpoints/")]
    note = "" if shipped else ("The shipped checkpoints carry no metrics.jsonl yet, so there are no curves for them. ")
    if not found:
        return note + ("No run has metrics yet: train one on the Train tab (`runs/<name>/metrics.jsonl` appears here)."
                       if not hosted else "")
    return note + f"{len(chosen)} of {len(found)} runs shown; the curves follow runs as they write metrics.jsonl."


def signature(chosen: dict) -> list:
    """[[label, size of its metrics.jsonl]]: the app redraws only when this changes."""
    return [[k, (d / "metrics.jsonl").stat().st_size if (d / "metrics.jsonl").is_file() else 0]
            for k, d in chosen.items()]


def load_runs(dirs: dict) -> dict:
    """{label: {"mode", "rows" (metrics.jsonl), "eval" (eval.jsonl)}} for {label: run dir}."""
    return {label: {"mode": run_mode(d), "rows": read_jsonl(Path(d) / "metrics.jsonl"),
                    "eval": read_jsonl(Path(d) / "eval.jsonl")} for label, d in dirs.items()}


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


def series(rows: list[dict], key: str, window: int = 1) -> tuple[list, list]:
    """(steps, values) of the rows that have a numeric `key`, smoothed."""
    pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
    return [s for s, _ in pts], smoothed([v for _, v in pts], window)


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _add_hidden(fig, rows, name, colour, window, first):
    steps, mean = series(rows, "hidden_ratio_mean", window)
    if not steps:
        steps, mean = series(rows, "hidden_ratio_official", window)
    drawn = bool(steps)
    s10, p10 = series(rows, "hidden_ratio_p10", window)
    s90, p90 = series(rows, "hidden_ratio_p90", window)
    if s10 and s10 == s90:
        fig.add_trace(go.Scatter(x=s10 + s90[::-1], y=p10 + p90[::-1], fill="toself", fillcolor=_rgba(colour, 0.15),
                                 line=dict(width=0), hoverinfo="skip", legendgroup=name, showlegend=False,
                                 name=f"{name} p10-p90"), row=1, col=1)
    if steps:
        fig.add_trace(go.Scatter(x=steps, y=mean, name=name, legendgroup=name, showlegend=first,
                                 line=dict(color=colour)), row=1, col=1)
    so, off = series(rows, "hidden_ratio_official", window)
    if so and "hidden_ratio_mean" in rows[-1]:
        fig.add_trace(go.Scatter(x=so, y=off, name=f"{name} √(1-mean(a)²)", legendgroup=name, showlegend=False,
                                 line=dict(color=colour, dash="dot", width=1)), row=1, col=1)
    return drawn


def dynamics_figure(runs: dict, smooth: int = 1, title: str = "Training dynamics", height: int = 560) -> go.Figure:
    """The 2 x 2 figure of PANELS for {label: {"mode", "rows", "eval"?}}; a hint figure when no run has rows."""
    runs = {k: v for k, v in runs.items() if v.get("rows")}
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
        if mode != "grpo" or any(r.get("hidden_ratio_mean") for r in rows):
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
        ev = [(r["step"], r["accuracy"]) for r in run.get("eval") or [] if isinstance(r.get("accuracy"), (int, float))]
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
