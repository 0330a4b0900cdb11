"""The model-comparison report behind `python -m analysis compare`.

run_compare (the runner) loads each model spec in turn, decodes the task's problems with all states
kept (hybrid unless the model is a GRPO checkpoint or hybrid is off), scores them and reduces
everything the report needs to DataFrames while the model is loaded: lengths and accuracy
(analysis.lengths), per-step gates, positions and a gate histogram (analysis.gates), script mix
and latent-neighbour scripts (analysis.unicode_scripts) and a UMAP of the first trace (analysis.maps).
With ablation=True each hybrid model is decoded a second time with the gate forced to a = 1 from the
first step (latent ablation: tokens only), and the summary gains accuracy_a1, mean_len_a1 and
accuracy_drop (trained gate minus a = 1; NaN for models decoded without mixing): does the
checkpoint actually use its latents?
report_figures (DataFrames -> figures) and render_html (figures + tables -> one self-contained
HTML string with plotly.js inlined once) are pure; the CLI writes the files.
Test: pytest tests/test_analysis_report.py
"""
import dataclasses
import html

import pandas as pd

from . import gates, lengths, maps, plots, unicode_scripts
from .export import traces_frame
from .projections import trace_projections


def decode_all(hm, problems, cfg, batch_size: int = 16, keep_states: bool = True, force_a=None):
    """Traces of every problem, decoded in batches with latents, inputs and top tokens kept."""
    from hrpo.static_decoder import make_decoder
    out = []
    for start in range(0, len(problems), batch_size):
        chunk = problems[start:start + batch_size]
        out += make_decoder(hm, [p.question for p in chunk], cfg, keep_states=keep_states, force_a=force_a).run()
    return out


ABLATION = ["accuracy_a1", "mean_len_a1", "accuracy_drop"]


def ablation_row(problems, traces, ablated) -> dict:
    """Accuracy and mean length with the trained gate vs a forced to 1 from the first step (pure)."""
    if ablated is None:
        return {k: float("nan") for k in ABLATION}
    rows, off = lengths.rows_from_traces(problems, traces), lengths.rows_from_traces(problems, ablated)
    acc = sum(r["reward"] for r in rows) / max(1, len(rows))
    acc_a1 = sum(r["reward"] for r in off) / max(1, len(off))
    return {"accuracy_a1": acc_a1, "mean_len_a1": sum(r["num_tokens"] for r in off) / max(1, len(off)),
            "accuracy_drop": acc - acc_a1}


def model_frames(hm, label: str, problems, traces, k: int = 5, seed: int = 0, map_method: str = "auto") -> dict:
    """Every per-model DataFrame of the report, from one loaded model and its traces."""
    steps = gates.step_frame(traces, model=label)
    decode = lambda ids: hm.tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
    toks, shares = [], []
    for i, (p, tr) in enumerate(zip(problems, traces)):
        thinking = [s.index for s in tr.steps if s.thinking]
        proj = trace_projections(hm, tr, k=k, sources=("latent",), steps=thinking)
        t = unicode_scripts.token_scripts(tr, proj, trace_id=i, decode=decode)
        toks.append(t)
        shares.append(unicode_scripts.latent_script_shares(t, unicode_scripts.dominant_script(p.question)))
    tok = pd.concat(toks, ignore_index=True).assign(model=label)
    share = pd.concat(shares, ignore_index=True).assign(model=label) if shares else pd.DataFrame()
    first = next((tr for tr in traces if tr.latents is not None and any(s.thinking for s in tr.steps)), None)
    umap = pd.DataFrame()
    if first is not None:
        m = maps.trace_map(hm, first, seed=seed, method=map_method)
        umap = m.assign(model=label)
        umap.attrs["method"] = m.attrs.get("method", "")
    return {"rows": lengths.rows_from_traces(problems, traces), "steps": steps, "tokens": tok,
            "latent_scripts": share, "histogram": gates.gate_histogram(traces, hm.gate, hm.embeddings, model=label),
            "map": umap, "traces": traces_frame(traces).assign(model=label)}


def _concat(per_model: dict, key: str) -> pd.DataFrame:
    frames = [f[key] for f in per_model.values() if not f[key].empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def combine(per_model: dict) -> dict:
    """Merge {label: model_frames(...)} into the report's tables (all DataFrames)."""
    table = lengths.length_table({m: f["rows"] for m, f in per_model.items()})
    paired = lengths.paired_differences(table)
    steps = pd.concat([f["steps"] for f in per_model.values()], ignore_index=True)
    tokens = pd.concat([f["tokens"] for f in per_model.values()], ignore_index=True)
    summary = lengths.length_summary(table)
    ts = gates.trace_summary(steps)
    gate_cols = ts.groupby("model", sort=False).agg(thinking_steps=("thinking_steps", "mean"),
                                                    gate_a_thinking=("gate_a", "mean")).reset_index()
    summary = summary.merge(gate_cols, on="model", how="left").merge(
        lengths.paired_summary(paired), on="model", how="left", suffixes=("", "_pairs"))
    abl = [{"model": m, **f["ablation"]} for m, f in per_model.items() if "ablation" in f]
    if abl:
        summary = summary.merge(pd.DataFrame(abl), on="model", how="left")
    maps_ = {m: f["map"] for m, f in per_model.items() if not f["map"].empty}
    return {"lengths": table, "summary": summary, "paired": paired, "steps": steps,
            "positions": gates.position_summary(steps),
            "scripts": unicode_scripts.script_mix(tokens, by=("model", "source")),
            "latent_scripts": _concat(per_model, "latent_scripts"), "histogram": _concat(per_model, "histogram"),
            "map": _concat(per_model, "map"), "maps": maps_, "traces": _concat(per_model, "traces")}


def report_figures(t: dict) -> dict:
    """{title: figure} for the report, from combine()'s tables (pure)."""
    figs = {"Completion length": plots.length_figure(t["lengths"], "box"),
            "Accuracy": plots.accuracy_figure(t["summary"]),
            "Paired length differences": plots.paired_figure(t["paired"]),
            "Gate curves": plots.gate_curve_figure(t["steps"]),
            "Hidden ratio by relative position": plots.position_figure(t["positions"]),
            "Gate distribution": plots.gate_histogram_figure(t["histogram"]),
            "Script mix": plots.script_mix_figure(t["scripts"])}
    for model, frame in t["maps"].items():
        figs[f"Latent map: {model}"] = plots.map_figure(frame, "step", title=f"Latent map of problem 0: {model}")
    return figs


def render_html(title: str, figures: dict, tables: dict | None = None, meta: dict | None = None) -> str:
    """One self-contained HTML page: plotly.js inlined once (opens offline), then every figure and table."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:1200px} table{border-collapse:collapse;"
             "font-size:13px} td,th{border:1px solid #ccc;padding:3px 6px} h2{margin-top:2em}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    if meta:
        parts.append("<ul>" + "".join(f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>"
                                      for k, v in meta.items()) + "</ul>")
    for name, df in (tables or {}).items():
        parts.append(f"<h2>{html.escape(name)}</h2>" + df.to_html(index=False, float_format=lambda x: f"{x:.4g}",
                                                                 border=0))
    for i, (name, fig) in enumerate(figures.items()):
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"fig-{i}"))
    parts.append("</body></html>")
    return "\n".join(parts)


def run_compare(specs, task_spec: str, limit: int, cfg, split: str = "test", batch_size: int = 16, k: int = 5,
                map_method: str = "auto", load=None, on_model=None, ablation: bool = False,
                **load_kw) -> tuple[dict, dict]:
    """Load, decode and analyse every model spec on the same problems; returns (tables, meta).
    Raises ValueError / ModelSpecError for a bad task or spec before or while loading it."""
    from hrpo.rollout import decoding_config
    from hrpo.tasks import load_task
    if load is None:
        from hrpo.models import load_model as load
    if not specs:
        raise ValueError("no model specs given")
    if map_method not in ("auto", "umap", "pca"):
        raise ValueError(f"unknown map method {map_method!r}; use auto, umap or pca")
    task = load_task(task_spec, split, limit=limit)
    per_model = {}
    for label, spec in zip(lengths.unique_labels(specs), specs):
        if on_model:
            on_model(label)
        hm = load(spec, **load_kw)
        mcfg = decoding_config(hm, cfg)                  # a GRPO checkpoint decodes plain, as the decoders do
        traces = decode_all(hm, task.problems, mcfg, batch_size)
        per_model[label] = model_frames(hm, label, task.problems, traces, k=k, seed=cfg.seed,
                                        map_method=map_method)
        if ablation:
            off = decode_all(hm, task.problems, mcfg, batch_size, keep_states=False,
                             force_a=lambda t: 1.0) if mcfg.hybrid else None
            per_model[label]["ablation"] = ablation_row(task.problems, traces, off)
        del hm
    meta = {"task": task_spec, "map": map_method, "latent ablation": ablation, "split": split,
            "problems": len(task.problems), "models": ", ".join(specs),
            **{f"rollout.{k_}": v for k_, v in dataclasses.asdict(cfg).items()}}
    return combine(per_model), meta
