"""analysis.maps: the latent/token map (PCA for few points, UMAP otherwise), deterministic."""
import numpy as np
import pytest

from analysis.maps import COLUMNS, map_figure, pca_2d, trace_map
from hrpo.config import RolloutConfig
from hrpo.rollout import rollout


@pytest.fixture(scope="module")
def trace(tiny):
    return rollout(tiny, ["What is 2 + 3?"], RolloutConfig(max_new_tokens=6, seed=0), keep_latents=True)[0]


def test_pca_is_deterministic_and_centered():
    X = np.random.RandomState(0).randn(6, 5)
    a, b = pca_2d(X), pca_2d(X.copy())
    assert a.shape == (6, 2) and np.allclose(a, b) and np.allclose(a.mean(0), 0)
    assert np.allclose(pca_2d(np.ones((1, 3))), 0)


@pytest.mark.slow
@pytest.mark.parametrize("method, k, expect", [("pca", 1, "pca"), ("auto", 1, "pca"), ("auto", 3, "umap")])
def test_map_frame(tiny, trace, method, k, expect):
    # auto with a high min_umap takes PCA; k=3 gives 6 latents + >= 9 tokens, enough for UMAP
    kw = {"min_umap": 100} if (method, k) == ("auto", 1) else {}
    df = trace_map(tiny, trace, k=k, method=method, seed=0, **kw)
    assert list(df.columns) == COLUMNS and df.attrs["method"] == expect
    lat = df[df.kind == "latent"]
    assert lat["step"].tolist() == list(range(6)) and lat["hidden_ratio"].notna().all()
    tok = df[df.kind == "token"]
    assert {tiny.piece(i) for i in trace.token_ids} <= set(tok["label"])      # every sampled token is placed
    assert len(tok) == len(set(tok["label"])) or len(tok) >= len(set(trace.token_ids))
    assert tok["hidden_ratio"].isna().all() and np.isfinite(df[["x", "y"]].to_numpy()).all()
    again = trace_map(tiny, trace, k=k, method=method, seed=0, **kw)
    assert np.allclose(df[["x", "y"]].to_numpy(), again[["x", "y"]].to_numpy())


def test_map_needs_latents(tiny):
    tr = rollout(tiny, ["Hi"], RolloutConfig(max_new_tokens=2, hybrid=False))[0]
    with pytest.raises(ValueError, match="no latents"):
        trace_map(tiny, tr)
    with pytest.raises(ValueError, match="unknown map method"):
        trace_map(tiny, tr, method="tsne")


@pytest.mark.parametrize("color", ["step", "hidden_ratio"])
def test_map_figure(tiny, trace, color):
    fig = map_figure(trace_map(tiny, trace, k=1, method="pca"), color)
    names = [t.name for t in fig.data]
    assert names[0] == "tokens" and names[-1] == "latents" and "pca" in fig.layout.title.text
    assert names[1:-1] == ["path"] * 5                          # one segment per step, fading in
    alphas = [float(t.line.color.split(",")[-1].rstrip(")")) for t in fig.data[1:-1]]
    assert alphas == sorted(alphas) and alphas[0] < alphas[-1]
    off = map_figure(trace_map(tiny, trace, k=1, method="pca"), color, path="off")
    assert [t.name for t in off.data] == ["tokens", "latents"]


def test_clusters_are_labelled_by_nearest_token(tiny, trace):
    from analysis.maps import cluster_labels
    frame = trace_map(tiny, trace, k=1, method="pca")
    lat = frame[frame.kind == "latent"]
    assert (lat["nearest"] != "").all() and (frame[frame.kind == "token"]["nearest"] == "").all()
    groups = cluster_labels(lat)
    assert groups["n"].sum() == 6 and groups["n"].is_monotonic_decreasing
    first = groups.iloc[0]
    assert first["label"].endswith(f"×{first['n']}")
    texts = [a.text for a in map_figure(frame, "step", path="off").layout.annotations]
    assert len(texts) == len(groups)


def test_map_figure_bad_colour(tiny, trace):
    with pytest.raises(ValueError):
        map_figure(trace_map(tiny, trace, k=1, method="pca"), "token")
    with pytest.raises(ValueError, match="path"):
        map_figure(trace_map(tiny, trace, k=1, method="pca"), "step", path="arrows")
