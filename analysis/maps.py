"""2-D map of a trace's latent states among token embeddings (UMAP, or PCA for few points).

Points: every step's latent h (Trace.latents), plus a sample of token embeddings: the sampled
tokens and the latents' top-k nearest tokens by cosine (analysis.projections.topk_cosine), each
token once.  All vectors are L2-normalised first (cosine geometry).  UMAP (umap-learn, cosine
metric, fixed random_state) when there are at least `min_umap` points, else PCA by numpy SVD with
signs fixed; both deterministic for a given seed.
  latent_map(trace, E, piece)  -> DataFrame (x, y, kind in {latent, token}, label, step, hidden_ratio, nearest)
  map_figure(frame, color, path) -> plotly figure: latents coloured by step or hidden ratio; the path between
                                  consecutive steps fading in with the step (or "off"), every group of latents
                                  sharing a nearest token (cosine) labelled once at its centre
Test: pytest tests/test_analysis_maps.py
"""
import warnings

import numpy as np
import pandas as pd
import torch

from .projections import topk_cosine

COLUMNS = ["x", "y", "kind", "label", "step", "hidden_ratio", "nearest"]


def pca_2d(X: np.ndarray) -> np.ndarray:
    """First two principal components of X (N, D) via SVD, each sign fixed so its largest |loading|
    is positive; (N, 2), zero-padded when N or D < 2."""
    Xc = X - X.mean(0, keepdims=True)
    out = np.zeros((len(X), 2))
    if len(X) < 2:
        return out
    u, s, vt = np.linalg.svd(Xc, full_matrices=False)
    n = min(2, len(s))
    for j in range(n):
        sign = np.sign(vt[j][np.argmax(np.abs(vt[j]))]) or 1.0
        out[:, j] = u[:, j] * s[j] * sign
    return out


def umap_2d(X: np.ndarray, seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    """UMAP (cosine metric, spectral init, fixed random_state) of X (N, D) to (N, 2)."""
    import umap
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                 # "n_jobs overridden by random_state" etc.
        reducer = umap.UMAP(n_components=2, n_neighbors=max(2, min(n_neighbors, len(X) - 1)), metric="cosine",
                            random_state=seed, min_dist=0.1, init="spectral" if len(X) > 3 else "random")
        return np.asarray(reducer.fit_transform(X), dtype=np.float64)


def map_points(trace, E: torch.Tensor, k: int = 3) -> tuple[np.ndarray, list[dict]]:
    """Normalised vectors (N, H) and point records: latents first, then the token sample."""
    if trace.latents is None or len(trace.latents) == 0:
        raise ValueError("the trace has no latents: decode with hybrid on and keep_latents=True")
    lat = trace.latents.float()                                             # (T, H)
    _, near = topk_cosine(lat, E, k)                                        # (T, k)
    recs = [{"kind": "latent", "step": s.index, "hidden_ratio": s.hidden_ratio, "token_id": s.token_id,
             "nearest": int(near[j, 0])} for j, s in enumerate(trace.steps[:len(lat)])]
    first_step = {}
    for s in trace.steps[:len(lat)]:
        first_step.setdefault(s.token_id, s.index)
    for t, row in enumerate(near.tolist()):
        for i in row:
            first_step.setdefault(i, t)
    ids = list(first_step)
    tok = E[torch.tensor(ids, device=E.device)].detach().float().cpu()     # (M, H)
    recs += [{"kind": "token", "step": first_step[i], "hidden_ratio": np.nan, "token_id": i, "nearest": None}
             for i in ids]
    X = torch.nn.functional.normalize(torch.cat([lat.cpu(), tok]), dim=-1).numpy().astype(np.float64)
    return X, recs


def latent_map(trace, E: torch.Tensor, piece, k: int = 3, method: str = "auto", seed: int = 0,
               min_umap: int = 15) -> pd.DataFrame:
    """2-D coordinates of the trace's latents and token sample (COLUMNS).  method: auto | umap | pca;
    auto uses UMAP from `min_umap` points on.  Latent labels are 'step t: <sampled token>'."""
    if method not in ("auto", "umap", "pca"):
        raise ValueError(f"unknown map method {method!r}; use auto, umap or pca")
    X, recs = map_points(trace, E.detach(), k)
    use_umap = method == "umap" or (method == "auto" and len(X) >= min_umap)
    xy = umap_2d(X, seed) if use_umap and len(X) >= 4 else pca_2d(X)
    labels = [f"step {r['step']}: {piece(r['token_id'])!r}" if r["kind"] == "latent" else piece(r["token_id"])
              for r in recs]
    df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "kind": [r["kind"] for r in recs], "label": labels,
                       "step": [r["step"] for r in recs], "hidden_ratio": [r["hidden_ratio"] for r in recs],
                       "nearest": [piece(r["nearest"]) if r["nearest"] is not None else "" for r in recs]},
                      columns=COLUMNS)
    df.attrs["method"] = "umap" if use_umap and len(X) >= 4 else "pca"
    return df


def trace_map(hm, trace, **kw) -> pd.DataFrame:
    """latent_map with a HybridModel's embeddings and token texts."""
    return latent_map(trace, hm.embeddings, hm.piece, **kw)


def cluster_labels(lat: pd.DataFrame, top: int = 12) -> pd.DataFrame:
    """Groups of latents sharing a nearest token: (label, x, y, n) at each group's centre, biggest first."""
    if lat.empty or "nearest" not in lat:
        return pd.DataFrame(columns=["label", "x", "y", "n"])
    g = lat.groupby("nearest", sort=False).agg(x=("x", "mean"), y=("y", "mean"), n=("step", "size")).reset_index()
    g["label"] = [f"{t!r} ×{n}" for t, n in zip(g["nearest"], g["n"])]
    return g.sort_values("n", ascending=False, kind="stable").head(top)[["label", "x", "y", "n"]]


def map_figure(frame: pd.DataFrame, color: str = "step", title: str = "Latent map", path: str = "fading"):
    """Scatter: tokens as grey labelled points, latents as markers coloured by `color` (step | hidden_ratio),
    the step-to-step path drawn fading in with the step (path="fading") or not at all ("off"), and each
    nearest-token group of latents labelled once."""
    import plotly.graph_objects as go
    if color not in ("step", "hidden_ratio"):
        raise ValueError(f"colour by step or hidden_ratio, not {color!r}")
    if path not in ("fading", "off"):
        raise ValueError(f"path must be fading or off, not {path!r}")
    fig = go.Figure()
    tok = frame[frame["kind"] == "token"]
    fig.add_trace(go.Scatter(x=tok["x"], y=tok["y"], mode="markers+text", text=tok["label"], name="tokens",
                             textposition="top center", marker=dict(color="lightgrey", size=7),
                             textfont=dict(size=9, color="grey"), hovertext=tok["label"], hoverinfo="text"))
    lat = frame[frame["kind"] == "latent"].sort_values("step")
    xs, ys = lat["x"].tolist(), lat["y"].tolist()
    if path == "fading" and len(xs) > 1:
        n = len(xs) - 1
        for j in range(n):           # one short segment per step, older ones fainter; an arrow head on the last
            fig.add_trace(go.Scatter(x=xs[j:j + 2], y=ys[j:j + 2], mode="lines", hoverinfo="skip", showlegend=False,
                                     name="path", line=dict(color=f"rgba(60,60,60,{0.04 + 0.5 * (j + 1) / n:.3f})",
                                                            width=1 + 1.5 * (j + 1) / n)))
        fig.add_annotation(x=xs[-1], y=ys[-1], ax=xs[-2], ay=ys[-2], xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=2, arrowcolor="rgba(60,60,60,0.8)", text="")
    fig.add_trace(go.Scatter(x=lat["x"], y=lat["y"], mode="markers", name="latents", hovertext=lat["label"],
                             hoverinfo="text", marker=dict(color=lat[color], colorscale="Viridis", size=9,
                                                           showscale=True, colorbar=dict(title=color))))
    for r in cluster_labels(lat).itertuples():
        fig.add_annotation(x=r.x, y=r.y, text=html_escape(r.label), showarrow=False, yshift=14,
                           font=dict(size=12, color="#c2255c"), bgcolor="rgba(255,255,255,0.7)")
    method = frame.attrs.get("method", "")
    fig.update_layout(title=f"{title} ({method})" if method else title, xaxis_title="dim 1", yaxis_title="dim 2",
                      template="plotly_white")
    return fig


def html_escape(text: str) -> str:
    """Plotly annotations render a subset of HTML: escape what would be read as tags."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
