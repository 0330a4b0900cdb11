"""What each step of a trace "says" in token space: three projections onto the vocabulary.

  latent      top-k tokens of the latent h = E^T p / ||p||_2 by cosine against E (Trace.latents)
  input       top-k tokens of the embedding actually fed after the step (Trace.inputs; mixed at
              thinking steps, E[x] otherwise) by cosine against E
  logit_lens  the most likely next tokens under the sampling distribution (Trace.top_ids/top_probs,
              the logit lens on the last hidden state); score = probability

topk_cosine is vectorised over all steps at once and chunked over the vocabulary: per chunk one
(N, H) x (H, C) matmul and a running top-k merge, so a 150k x 1.5k vocabulary never materialises a
V x T x H (or even a T x V) tensor.  The matmul runs in bf16 as a screen (faster than fp32 on a CPU)
that keeps M = SCREEN candidates per row, scored again in fp32, so the result is the fp32 one: for unit rows
|bf16 score - fp32 score| <= EPS (inputs and output rounded to bf16, relative error 2^-8 each: 3 * 2^-8 =
0.0117), so a token outside the candidates scores at most the M-th screened score + EPS and cannot beat
the k-th exact score when that is larger; rows where it might are scored in full fp32.
Decode with keep_states=True to get all three sources.
Test: pytest tests/test_analysis_projections.py
"""
import weakref

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

COLUMNS = ["step", "source", "rank", "token", "token_id", "score"]
SOURCES = ("latent", "input", "logit_lens")


_UNIT: list = []           # [(weakref to E, its version, (unit fp32, unit bf16))] for the last 2 E seen
SCREEN = 64                # candidates per row kept by the bf16 screen
EPS = 0.0125               # bound on |bf16 - fp32| cosine of unit rows: 3 * 2^-8 (+ fp32 sums); tested


@torch.no_grad()
def unit_rows(E: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """E's rows normalised to unit length, (V, H) in fp32 and the same in bf16; kept for the last 2 matrices
    (the same E is projected on every step selection and Live run), recomputed when E changes in place."""
    for ref, version, units in _UNIT:
        if ref() is E and version == E._version:
            return units
    unit = F.normalize(E.float(), dim=-1)
    units = (unit, unit.to(torch.bfloat16))
    _UNIT.insert(0, (weakref.ref(E), E._version, units))
    del _UNIT[2:]
    return units


def _running_topk(v: torch.Tensor, unit: torch.Tensor, k: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores, ids), (N, k): the top-k of v @ unit.T, one vocabulary chunk at a time with a running merge."""
    best_s = torch.full((len(v), k), -float("inf"), device=v.device)       # (N, k)
    best_i = torch.zeros((len(v), k), dtype=torch.long, device=v.device)   # (N, k)
    for start in range(0, unit.shape[0], chunk):
        block = unit[start:start + chunk]                                    # (C, H)
        s, i = (v @ block.T).topk(min(k, len(block)), dim=-1)               # (N, k')
        best_s, j = torch.cat([best_s, s.float()], -1).topk(k, dim=-1)
        best_i = torch.cat([best_i, i + start], -1).gather(-1, j)
    return best_s, best_i


@torch.no_grad()
def topk_cosine(vectors: torch.Tensor, E: torch.Tensor, k: int = 5,
                chunk: int = 16384) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores, ids), both (N, k): the k rows of E (V, H) most cosine-similar to each row of vectors (N, H),
    scored in fp32 (a bf16 screen picks SCREEN candidates first; see the module docstring)."""
    if vectors.ndim != 2 or vectors.shape[-1] != E.shape[-1]:
        raise ValueError(f"vectors must be (N, {E.shape[-1]}), got {tuple(vectors.shape)}")
    k = min(k, E.shape[0])
    v = F.normalize(vectors.to(E.device).float(), dim=-1)                   # (N, H)
    unit, unit16 = unit_rows(E)
    m = min(max(SCREEN, k), E.shape[0])
    if m == E.shape[0]:                                                      # a small vocabulary: no screen
        best_s, best_i = _running_topk(v, unit, k, chunk)
        return best_s.cpu(), best_i.cpu()
    screen_s, cand = _running_topk(v.to(torch.bfloat16), unit16, m, chunk)  # (N, M)
    exact = torch.cat([torch.einsum("nh,nmh->nm", v[r:r + 64], unit[cand[r:r + 64]])   # (N, M) fp32
                       for r in range(0, len(v), 64)])
    best_s, j = exact.topk(k, dim=-1)
    best_i = cand.gather(-1, j)
    unsure = screen_s[:, -1] + EPS >= best_s[:, -1]         # an unscreened token might beat the k-th
    if unsure.any():
        best_s[unsure], best_i[unsure] = _running_topk(v[unsure], unit, k, chunk)
    return best_s.cpu(), best_i.cpu()


def _long_frame(steps: list[int], source: str, scores: torch.Tensor, ids: torch.Tensor, piece) -> pd.DataFrame:
    """Rows (step, source, rank, token, token_id, score) from (N, k) scores and ids."""
    n, k = ids.shape
    flat = ids.reshape(-1).tolist()
    texts = {i: piece(i) for i in set(flat)}
    return pd.DataFrame({"step": np.repeat(np.asarray(steps, dtype=np.int64), k),
                         "source": source, "rank": np.tile(np.arange(k), n),
                         "token": [texts[i] for i in flat], "token_id": np.asarray(flat, dtype=np.int64),
                         "score": scores.reshape(-1).float().numpy().astype(np.float64)}, columns=COLUMNS)


def project_trace(trace, E: torch.Tensor, piece, k: int = 5, sources=SOURCES, steps=None,
                  chunk: int = 16384) -> pd.DataFrame:
    """Long DataFrame (step, source, rank, token, token_id, score) for the requested sources.

    E is the embedding matrix (V, H), piece(id) -> token text; `steps` limits the rows (e.g. the
    thinking steps); a source whose tensors the trace lacks (not kept while decoding) is skipped.
    """
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown projection source(s) {sorted(unknown)}; use {', '.join(SOURCES)}")
    T = len(trace.steps)
    rows = list(range(T)) if steps is None else [s for s in steps if 0 <= s < T]
    frames = []
    for source in sources:
        if not rows:
            break
        if source == "logit_lens":
            if trace.top_ids is None or trace.top_probs is None:
                continue
            idx = torch.tensor(rows)
            kk = min(k, trace.top_ids.shape[-1])
            frames.append(_long_frame(rows, source, trace.top_probs[idx, :kk], trace.top_ids[idx, :kk], piece))
            continue
        states = trace.latents if source == "latent" else trace.inputs
        if states is None or len(states) < T:
            continue
        scores, ids = topk_cosine(states[torch.tensor(rows)], E, k, chunk)
        frames.append(_long_frame(rows, source, scores, ids, piece))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                             zip(COLUMNS, ["int64", "object", "int64", "object", "int64", "float64"])})
    return pd.concat(frames, ignore_index=True)


def trace_projections(hm, trace, k: int = 5, sources=SOURCES, steps=None, chunk: int = 16384) -> pd.DataFrame:
    """project_trace with a HybridModel's embedding matrix and token texts."""
    # the Parameter itself: unit_rows caches by it
    return project_trace(trace, hm.embeddings, hm.piece, k, sources, steps, chunk)


def projection_table(proj: pd.DataFrame) -> pd.DataFrame:
    """Wide view for display: one row per step, one column per source holding 'tok (score), ...'."""
    if proj.empty:
        return pd.DataFrame(columns=["step"])
    cells = proj.sort_values(["step", "source", "rank"]).assign(
        cell=lambda d: d["token"].map(repr) + " (" + d["score"].map("{:.3f}".format) + ")")
    wide = cells.groupby(["step", "source"])["cell"].agg(", ".join).unstack("source")
    return wide.reset_index().rename_axis(columns=None)


def step_markdown(hm, trace, k: int) -> str:
    """One step of a trace in Markdown: its gate statistics and the nearest tokens of its latent, its mixed
    input embedding and the logit lens."""
    s = trace.steps[k]
    proj = trace_projections(hm, trace, k=8, steps=[k])
    lines = [f"### Step {k}: {s.token!r}", f"thinking: {s.thinking} · gate a {s.gate_a:.5f} · hidden ratio "
             f"{s.hidden_ratio:.5f} · entropy {s.entropy:.3f} · effective vocabulary {s.eff_vocab:.2f} · "
             f"log-prob {s.logprob:.3f}"]
    names = {"latent": "Latent h nearest tokens (cosine)", "input": "Mixed input embedding nearest tokens (cosine)",
             "logit_lens": "Logit lens: most likely next tokens (probability)"}
    for source, title in names.items():
        rows = proj[proj["source"] == source]
        if not rows.empty:
            lines.append(f"**{title}**: " + ", ".join(f"`{t!r}` {v:.3f}" for t, v in zip(rows["token"], rows["score"])))
    return "\n\n".join(lines)
