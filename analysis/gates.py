"""Gate statistics of hybrid traces (docs/DESIGN.md section 1: a = exp(-c softplus(-Lambda) r), hidden
ratio sqrt(1 - a^2)).

  step_frame         one row per step of many traces: gate_a (mean of a over H), hidden_ratio,
                     relative position (index + 0.5) / T in (0, 1)
  gate_distribution  per thinking step, the distribution of a over the hidden dimension, recomputed
                     from the gate on E[token] (hm.gate.gates(e) -> (a, i)): quantiles and std
  gate_histogram     histogram of a over all thinking steps x hidden units
  position_summary   means over many traces by relative position in the completion, binned 0..1
Non-thinking steps have a = 1 exactly (plain token embeddings).  Traces decoded with force_a have a
forced a that recomputation cannot see; compare gate_a with a_mean to spot them.
Test: pytest tests/test_analysis_gates.py
"""
import numpy as np
import pandas as pd
import torch

STEP_COLUMNS = ["model", "trace", "step", "token", "thinking", "gate_a", "hidden_ratio", "rel_pos", "length"]
QUANTILES = (0.0, 0.1, 0.5, 0.9, 1.0)


def step_frame(traces, model: str = "", trace_ids=None) -> pd.DataFrame:
    """One row per step of every trace (columns STEP_COLUMNS)."""
    ids = list(trace_ids) if trace_ids is not None else list(range(len(traces)))
    rows = []
    for tid, tr in zip(ids, traces):
        T = len(tr.steps)
        rows += [(model, tid, s.index, s.token, s.thinking, s.gate_a, s.hidden_ratio, (s.index + 0.5) / T, T)
                 for s in tr.steps]
    return pd.DataFrame(rows, columns=STEP_COLUMNS)


@torch.no_grad()
def gate_values(gate, E: torch.Tensor, token_ids: list[int]) -> torch.Tensor:
    """a (N, H) recomputed by the gate from the token embeddings E[token_ids]."""
    if not token_ids:
        return torch.zeros((0, E.shape[-1]))
    dev = next(gate.parameters()).device
    e = E[torch.tensor(token_ids, device=E.device)].to(dev)                # (N, H)
    a, _ = gate.gates(e)                                                     # (N, H) float32
    return a.cpu()


def gate_distribution(trace, gate, E: torch.Tensor) -> pd.DataFrame:
    """Per step: a's mean, std, quantiles over the hidden dimension and the mean hidden ratio,
    recomputed for thinking steps (a = 1 at the other steps)."""
    think = [s for s in trace.steps if s.thinking]
    a = gate_values(gate, E, [s.token_id for s in think])                  # (N, H)
    q = torch.quantile(a, torch.tensor(QUANTILES), dim=-1).T if len(a) else torch.zeros((0, len(QUANTILES)))
    rec = {s.index: i for i, s in enumerate(think)}
    qnames = [f"a_q{int(x * 100):02d}" for x in QUANTILES]
    rows = []
    for s in trace.steps:
        if s.index in rec:
            i = rec[s.index]
            ai = a[i]
            vals = [ai.mean().item(), ai.std().item() if ai.numel() > 1 else 0.0] + q[i].tolist() \
                + [torch.sqrt(torch.clamp(1 - ai * ai, min=0)).mean().item()]
        else:
            vals = [1.0, 0.0] + [1.0] * len(QUANTILES) + [0.0]
        rows.append([s.index, s.thinking, s.gate_a, s.hidden_ratio] + vals)
    return pd.DataFrame(rows, columns=["step", "thinking", "gate_a", "hidden_ratio", "a_mean", "a_std", *qnames,
                                       "hidden_ratio_recomputed"])


def gate_histogram(traces, gate, E: torch.Tensor, bins: int = 20, model: str = "") -> pd.DataFrame:
    """Histogram of a over every (thinking step, hidden unit) of the traces: (model, left, right, count, share)."""
    ids = [s.token_id for tr in traces for s in tr.steps if s.thinking]
    a = gate_values(gate, E, ids).reshape(-1).numpy()
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1e-6
    counts, edges = np.histogram(a, bins=bins, range=(lo, hi))
    total = max(1, int(counts.sum()))
    return pd.DataFrame({"model": model, "left": edges[:-1], "right": edges[1:], "count": counts,
                         "share": counts / total})


def position_summary(steps: pd.DataFrame, bins: int = 10, by: str = "model") -> pd.DataFrame:
    """Means over relative position bins (0..1) of a step_frame: gate_a, hidden_ratio, thinking share,
    and hidden ratio over thinking steps only; one row per (by, bin)."""
    cols = [by, "bin", "bin_mid", "gate_a", "hidden_ratio", "thinking_share", "hidden_ratio_thinking", "n"]
    if steps.empty:
        return pd.DataFrame(columns=cols)
    d = steps.assign(bin=np.minimum((steps["rel_pos"] * bins).astype(int), bins - 1),
                     hr_think=steps["hidden_ratio"].where(steps["thinking"]))
    g = d.groupby([by, "bin"], sort=True)
    out = g.agg(gate_a=("gate_a", "mean"), hidden_ratio=("hidden_ratio", "mean"),
                thinking_share=("thinking", "mean"), hidden_ratio_thinking=("hr_think", "mean"),
                n=("step", "size")).reset_index()
    out["bin_mid"] = (out["bin"] + 0.5) / bins
    out["hidden_ratio_thinking"] = out["hidden_ratio_thinking"].fillna(0.0)
    return out[cols]


def trace_summary(steps: pd.DataFrame, by: str = "model") -> pd.DataFrame:
    """Per (by, trace): length, thinking steps, mean gate a and hidden ratio over thinking steps."""
    if steps.empty:
        return pd.DataFrame(columns=[by, "trace", "length", "thinking_steps", "gate_a", "hidden_ratio"])
    think = steps[steps["thinking"]]
    base = steps.groupby([by, "trace"]).agg(length=("step", "size")).reset_index()
    t = think.groupby([by, "trace"]).agg(thinking_steps=("step", "size"), gate_a=("gate_a", "mean"),
                                         hidden_ratio=("hidden_ratio", "mean")).reset_index()
    out = base.merge(t, on=[by, "trace"], how="left")
    return out.fillna({"thinking_steps": 0, "gate_a": 1.0, "hidden_ratio": 0.0}).astype({"thinking_steps": int})
