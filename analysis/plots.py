"""Plotly figures from the analysis DataFrames (DataFrames in, figures out; nothing is written).

  gate_curve_figure(steps)        hidden ratio (or gate a) per step, one line per trace/model
  position_figure(summary)        hidden ratio over relative position in the completion, per model
  gate_histogram_figure(hist)     distribution of a over thinking steps x hidden units
  script_mix_figure(mix)          stacked bars of script shares (sampled vs latent neighbours)
  length_figure(table, kind)      completion-length distributions per model (box or violin)
  accuracy_figure(summary)        accuracy and format rate per model
  paired_figure(paired)           length difference vs the first model, per problem
  map_figure(frame)               the latent UMAP/PCA scatter (from analysis.maps)
  divergence_figure(sweep)        counterfactual replay: first differing step and length change per k
  live_step_figure(steps)         one trace's Steps: gate a and hidden ratio, entropy and effective vocabulary
  hint_figure(text)               no axes, one line of text: the empty state of every plot
Test: pytest tests/test_analysis_plots.py
"""
import html

import plotly.express as px
import plotly.graph_objects as go

from hrpo.trace_file import readable_pieces

from . import crosslingual
from .maps import map_figure  # noqa: F401  (one import point for every figure)

TEMPLATE = "plotly_white"


def hint_figure(text: str, height: int = 120) -> go.Figure:
    """A blank figure with one line of text (no axes): the empty state of every plot."""
    fig = go.Figure()
    fig.update_layout(height=height, template=TEMPLATE, margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(visible=False), yaxis=dict(visible=False),
                      annotations=[dict(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                                        font=dict(size=14, color="#666"))])
    return fig


def live_step_figure(steps, title: str = "Per step: gate, entropy, effective vocabulary") -> go.Figure:
    """Two stacked panels over the steps of one trace (hrpo.rollout.Step records): gate a and hidden ratio
    sqrt(1-a^2) (right axis) above, entropy and effective vocabulary 1/sum(p^2) (right axis) below.
    The layout is written out (what make_subplots builds, at a third of its cost: Live redraws it)."""
    if not steps:
        return hint_figure("Run a prompt to see the gate, entropy and effective vocabulary per step.")
    idx = [s.index for s in steps]
    panels = [("gate_a", "gate a (mean over H)"), ("hidden_ratio", "hidden ratio √(1-a²)"),
              ("entropy", "entropy (nats)"), ("eff_vocab", "effective vocabulary 1/Σp²")]   # y, y2 | y3, y4
    data = [dict(type="scatter", x=idx, y=[getattr(s, key, None) for s in steps], name=name, mode="lines",
                 line=dict(dash="dot" if n % 2 else "solid"), xaxis="x" if n < 2 else "x2", yaxis=f"y{n + 1}")
            for n, (key, name) in enumerate(panels)]
    data[0]["yaxis"] = "y"
    layout = dict(height=380, margin=dict(l=40, r=40, t=30, b=30), title=dict(text=title), template=TEMPLATE,
                  legend=dict(orientation="h", y=-0.15),
                  xaxis=dict(anchor="y", domain=[0, 0.94], matches="x2", showticklabels=False),
                  xaxis2=dict(anchor="y3", domain=[0, 0.94], title=dict(text="step")),
                  yaxis=dict(anchor="x", domain=[0.54, 1.0]), yaxis2=dict(anchor="x", overlaying="y", side="right"),
                  yaxis3=dict(anchor="x2", domain=[0.0, 0.46]), yaxis4=dict(anchor="x2", overlaying="y3", side="right"))
    return go.Figure(data=data, layout=layout)


def tokens_html(steps, decode=None, shown: list[str] | None = None) -> str:
    """Tokens as spans shaded by hidden ratio (orange = more latent); the answer part is underlined.
    decode (token ids -> text): join multi-byte characters split over tokens (hrpo.trace_file.readable_pieces);
    shown: those texts already made (a trace file's)."""
    top = max((s.hidden_ratio for s in steps), default=0.0) or 1.0
    spans = []
    for s, piece in zip(steps, shown if shown is not None else readable_pieces(steps, decode)):
        alpha = 0.08 + 0.8 * s.hidden_ratio / top if s.thinking else 0.0
        style = f"background: rgba(255,140,0,{alpha:.3f});" + ("" if s.thinking else "text-decoration: underline;")
        tip = (f"step {s.index}: a={s.gate_a:.4f} hidden={s.hidden_ratio:.4f} H={s.entropy:.2f} "
               f"eff. vocab={s.eff_vocab:.1f}")
        text = html.escape(piece).replace("\n", "↵<br>")
        spans.append(f"<span class='tok' title='{tip}' style='{style}'>{text}</span>")
    legend = (f"<div class='legend'>shading: hidden ratio 0 … {top:.4f} (orange = more latent); "
              f"underlined = after the answer marker</div>")
    return f"<div class='tokens'>{''.join(spans)}</div>{legend}"


def _empty(title: str, note: str = "no data") -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, template=TEMPLATE,
                      annotations=[dict(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")])
    return fig


def gate_curve_figure(steps, y: str = "hidden_ratio", title: str = "Gate over decoding steps"):
    """Lines of `y` (hidden_ratio | gate_a) against step, one per (model, trace) of a step_frame."""
    if steps.empty:
        return _empty(title)
    d = steps.assign(series=steps["model"].astype(str) + " / #" + steps["trace"].astype(str))
    fig = px.line(d, x="step", y=y, color="model", line_group="series", hover_data=["token", "thinking", "trace"],
                  title=title, template=TEMPLATE)
    fig.update_traces(opacity=0.6)
    return fig.update_layout(yaxis_title=y.replace("_", " "))


def position_figure(summary, y: str = "hidden_ratio_thinking", title: str = "Hidden ratio by relative position"):
    """`y` of a position_summary against the bin midpoint (0..1), one line per model."""
    if summary.empty:
        return _empty(title)
    by = summary.columns[0]
    fig = px.line(summary, x="bin_mid", y=y, color=by, markers=True, hover_data=["n", "thinking_share"],
                  title=title, template=TEMPLATE)
    return fig.update_layout(xaxis_title="relative position in the completion", yaxis_title=y.replace("_", " "),
                             xaxis_range=[0, 1])


def gate_histogram_figure(hist, title: str = "Gate a over thinking steps x hidden units"):
    """Bars of a gate_histogram frame (share per bin), one colour per model."""
    if hist.empty or hist["count"].sum() == 0:
        return _empty(title, "no thinking steps")
    d = hist.assign(mid=(hist["left"] + hist["right"]) / 2)
    fig = px.bar(d, x="mid", y="share", color="model", barmode="overlay", opacity=0.6, title=title,
                 template=TEMPLATE)
    return fig.update_layout(xaxis_title="a", yaxis_title="share")


def script_mix_figure(mix, x: str = "model", title: str = "Script mix: sampled tokens vs latent neighbours"):
    """Stacked share bars from a script_mix frame (columns x, source, script, count), one facet per source."""
    if mix.empty:
        return _empty(title)
    d = mix.groupby([x, "source", "script"], as_index=False)["count"].sum()
    d["share"] = d["count"] / d.groupby([x, "source"])["count"].transform("sum")
    fig = px.bar(d, x=x, y="share", color="script", facet_col="source", title=title, template=TEMPLATE,
                 hover_data=["count"])
    return fig.update_layout(barmode="stack")


CROSSLINGUAL_COLORS = dict(zip(crosslingual.CLASSES, ("#1f77b4", "#ff7f0e", "#d62728", "#2ca02c", "#c7c7c7")))


def crosslingual_figure(classes, title: str = "Where text and latents sit, by script, relative to the prompt"):
    """Stacked share bars of an analysis.crosslingual classes frame: one column per model, a row for the sampled
    tokens and one for the latents' nearest tokens (thinking steps), x = the prompt's language.  A model with no
    latent row decoded plain (a GRPO checkpoint): its lower cell stays empty and the title says so."""
    if classes.empty:
        return _empty(title)
    plain = [m for m in classes["model"].unique() if not (classes[classes["model"] == m]["source"] == "latent").any()]
    if plain:
        title += f"<br><sup>no latents (plain decoding): {', '.join(plain)}</sup>"
    fig = px.bar(classes, x="lang", y="share", color="class", facet_col="model", facet_row="source",
                 title=title, template=TEMPLATE, hover_data=["count", "prompt_script"],
                 color_discrete_map=CROSSLINGUAL_COLORS,
                 category_orders={"class": list(CROSSLINGUAL_COLORS), "source": ["sampled", "latent"],
                                  "model": list(classes["model"].unique())})
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    return fig.update_layout(barmode="stack", yaxis_range=[0, 1])


def length_figure(table, kind: str = "box", title: str = "Completion length (tokens)"):
    """Distribution of num_tokens per model of a length_table: box or violin, points shown."""
    if kind not in ("box", "violin"):
        raise ValueError(f"kind must be box or violin, not {kind!r}")
    if table.empty:
        return _empty(title)
    plot = px.box if kind == "box" else px.violin
    extra = {"box": True} if kind == "violin" else {}
    fig = plot(table, x="model", y="num_tokens", color="model", points="all", hover_data=["problem", "correct"],
               title=title, template=TEMPLATE, **extra)
    return fig.update_layout(showlegend=False, yaxis_title="tokens")


def accuracy_figure(summary, title: str = "Accuracy and format rate"):
    """Grouped bars of accuracy and format_rate per model of a length_summary."""
    if summary.empty:
        return _empty(title)
    d = summary.melt(id_vars=["model"], value_vars=["accuracy", "format_rate"], var_name="metric", value_name="rate")
    fig = px.bar(d, x="model", y="rate", color="metric", barmode="group", title=title, template=TEMPLATE,
                 text_auto=".2f")
    return fig.update_layout(yaxis_range=[0, 1.05])


def paired_figure(paired, title: str = "Length difference vs the first model (per problem)"):
    """Strip of per-problem length differences, one column per model, with a zero line."""
    if paired.empty:
        return _empty(title, "only one model")
    fig = px.strip(paired, x="model", y="diff", color="model", hover_data=["problem", "num_tokens", "base_tokens"],
                   title=title, template=TEMPLATE)
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    return fig.update_layout(showlegend=False, yaxis_title="tokens (model - first)")


def divergence_figure(sweep, title: str = "Counterfactual replay: where the text diverges"):
    """Per switch-off step k: the first differing step (markers; none = identical) and the length change."""
    if sweep.empty:
        return _empty(title)
    fig = go.Figure()
    same = sweep["first_diff"].isna()
    fig.add_trace(go.Scatter(x=sweep["k"], y=sweep["first_diff"], mode="markers+lines", name="first differing step",
                             hovertext=sweep["new_answer"].astype(str), hoverinfo="x+y+text"))
    fig.add_trace(go.Scatter(x=sweep.loc[same, "k"], y=sweep.loc[same, "orig_len"], mode="markers",
                             marker_symbol="circle-open", name="identical (at original length)"))
    fig.add_trace(go.Bar(x=sweep["k"], y=sweep["len_diff"], name="length change", opacity=0.4, yaxis="y2"))
    return fig.update_layout(title=title, template=TEMPLATE, xaxis_title="mixing forced from step k",
                             yaxis=dict(title="step"), yaxis2=dict(title="tokens", overlaying="y", side="right"))
