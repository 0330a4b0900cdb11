"""analysis.projections: chunked cosine top-k and the per-step latent / input / logit-lens views."""
import pytest
import torch
import torch.nn.functional as F

from analysis.projections import COLUMNS, project_trace, projection_table, topk_cosine, trace_projections
from hrpo.config import RolloutConfig
from hrpo.rollout import rollout


@pytest.fixture(scope="module")
def states_trace(tiny):
    return rollout(tiny, ["What is 2 + 3?"], RolloutConfig(max_new_tokens=6, seed=3), keep_states=True)[0]


@pytest.mark.parametrize("n, v, h, k, chunk", [(5, 100, 8, 3, 7), (4, 100, 8, 5, 100), (3, 50, 4, 4, 10_000),
                                                (2, 9, 4, 20, 4), (1, 1000, 16, 1, 33)])
def test_topk_cosine_matches_dense(n, v, h, k, chunk):
    g = torch.Generator().manual_seed(n * v)
    vec, E = torch.randn(n, h, generator=g), torch.randn(v, h, generator=g)
    scores, ids = topk_cosine(vec, E, k, chunk)
    ref_s, ref_i = (F.normalize(vec, dim=-1) @ F.normalize(E, dim=-1).T).topk(min(k, v), dim=-1)
    assert ids.shape == (n, min(k, v))
    assert torch.allclose(scores, ref_s, atol=1e-6) and torch.equal(ids, ref_i)


def test_topk_cosine_rejects_bad_shapes():
    with pytest.raises(ValueError, match="vectors must be"):
        topk_cosine(torch.zeros(3, 5), torch.zeros(10, 4))


def test_all_sources(tiny, states_trace):
    tr = states_trace
    proj = trace_projections(tiny, tr, k=4)
    assert list(proj.columns) == COLUMNS
    assert set(proj["source"]) == {"latent", "input", "logit_lens"}
    for source, g in proj.groupby("source"):
        assert len(g) == 6 * 4 and sorted(g["step"].unique()) == list(range(6))
        assert (g.groupby("step")["score"].apply(lambda s: s.is_monotonic_decreasing)).all()
    # latent view agrees with HybridModel.nearest
    lat0 = proj[(proj.source == "latent") & (proj.step == 0)]
    near = tiny.nearest(tr.latents[:1], k=4)[0]
    assert list(lat0["token"]) == [t for t, _ in near]
    assert lat0["score"].round(4).tolist() == pytest.approx([c for _, c in near], abs=1e-4)
    # logit lens = the kept top ids / probs
    ll = proj[(proj.source == "logit_lens") & (proj.step == 2)]
    assert ll["token_id"].tolist() == tr.top_ids[2, :4].tolist()
    assert ll["score"].tolist() == pytest.approx(tr.top_probs[2, :4].tolist())


def test_input_view_is_the_token_itself_without_mixing(tiny):
    tr = rollout(tiny, ["Hi"], RolloutConfig(max_new_tokens=4, hybrid=False, seed=0), keep_states=True)[0]
    proj = trace_projections(tiny, tr, k=2, sources=("input", "latent"))
    assert set(proj["source"]) == {"input"}                 # hybrid off: no latents, the source is skipped
    top = proj[proj["rank"] == 0]
    assert top["token_id"].tolist() == tr.token_ids
    assert top["score"].tolist() == pytest.approx([1.0] * 4, abs=1e-5)


@pytest.mark.parametrize("kw, rows", [({"steps": [1, 3]}, 2 * 3), ({"steps": []}, 0), ({"steps": [99]}, 0),
                                      ({"sources": ("logit_lens",)}, 6 * 3)])
def test_step_and_source_selection(tiny, states_trace, kw, rows):
    proj = project_trace(states_trace, tiny.embeddings, tiny.piece, k=3, **{"sources": ("latent",), **kw})
    assert len(proj) == rows and list(proj.columns) == COLUMNS


def test_unknown_source(tiny, states_trace):
    with pytest.raises(ValueError, match="unknown projection source"):
        trace_projections(tiny, states_trace, sources=("latent", "nope"))


def test_projection_table(tiny, states_trace):
    wide = projection_table(trace_projections(tiny, states_trace, k=2))
    assert list(wide.columns) == ["step", "input", "latent", "logit_lens"] and len(wide) == 6


def test_bf16_screen_is_exact_on_the_embedded_model(embedded):
    """The screen's error bound holds on the real embedding matrix, and the top-k equals dense fp32 for its
    latents' directions and for random ones (many rows near the screen's edge)."""
    from analysis import projections
    unit, unit16 = projections.unit_rows(embedded.embeddings)
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(40, unit.shape[0], generator=g) * 4, -1)
    vec = torch.cat([probs @ embedded.embeddings.float(), torch.randn(40, unit.shape[1], generator=g)])
    v = F.normalize(vec, dim=-1)
    dense = v @ unit.T
    assert ((v.bfloat16() @ unit16.T).float() - dense).abs().max() < projections.EPS
    scores, ids = topk_cosine(vec, embedded.embeddings, 5)
    assert_same_topk(scores, ids, dense, 5)


def test_rows_the_screen_cannot_decide_are_scored_in_full(monkeypatch):
    """Near-ties past the screen's M candidates: those rows fall back to fp32 and still get the exact top-k."""
    from analysis import projections
    monkeypatch.setattr(projections, "SCREEN", 4)
    full = []
    running = projections._running_topk

    def spy(v, unit, *a):
        if unit.dtype == torch.float32:
            full.append(len(v))
        return running(v, unit, *a)
    monkeypatch.setattr(projections, "_running_topk", spy)
    g = torch.Generator().manual_seed(1)
    base = torch.randn(1, 16, generator=g)
    E = torch.cat([base + 0.05 * torch.randn(50, 16, generator=g), torch.randn(200, 16, generator=g)])
    vec = torch.cat([base, torch.randn(3, 16, generator=g)])
    scores, ids = topk_cosine(vec, E, 3)
    assert_same_topk(scores, ids, F.normalize(vec, dim=-1) @ F.normalize(E, dim=-1).T, 3)
    assert len(full) == 1 and 1 <= full[0] < len(vec)      # the undecided rows only, in one full pass


def assert_same_topk(scores, ids, dense, k):
    """scores/ids are dense's fp32 top-k: the same scores, and ids that score them (ids may differ only
    between tokens tied to fp32 rounding, as a different summation order can reorder those)."""
    ref_s, ref_i = dense.topk(k, dim=-1)
    assert torch.allclose(scores, ref_s, atol=1e-5)
    assert torch.allclose(dense.gather(-1, ids), ref_s, atol=1e-5)
    around = dense.topk(k + 1, dim=-1).values
    ties = (around[:, :-1] - around[:, 1:]).min(-1).values < 1e-5
    assert ties.float().mean() < 0.2 and torch.equal(ids[~ties], ref_i[~ties])


def test_cached_unit_rows_of_a_parameter_carry_no_graph():
    """unit_rows caches E normalised; E is the model's Parameter (requires grad), the cache must not keep an
    autograd graph alive."""
    from analysis import projections
    E = torch.nn.Parameter(torch.randn(100, 8))
    unit, unit16 = projections.unit_rows(E)
    assert not unit.requires_grad and not unit16.requires_grad and unit.grad_fn is None
