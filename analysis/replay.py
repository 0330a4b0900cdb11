"""Counterfactual replay: decode a prompt again with the same seed and settings, but from step k on
either with the mixing switched off (a forced to 1: the plain token embedding, exactly) or with the
gate clamped to a chosen a, and report where the text, the answer and the length diverge.

  force_from(k, a=None)      the Decoder's force_a callable: a (default 1.0) from step k, learned before
  divergence(orig, new)      pure: first differing step, both texts, answers and lengths (a dict)
  replay(hm, trace, cfg, k)  re-decode trace.prompt_ids -> (new trace, divergence dict)
  replay_sweep(hm, trace, cfg, ks, a)  one divergence row per k (DataFrame)
With k beyond the trace length the replay is identical; with k = 0 and a = 1 the tokens equal plain
decoding with hybrid off (greedy, or the same seed).  Test: pytest tests/test_analysis_replay.py
"""
import pandas as pd

COLUMNS = ["k", "a", "first_diff", "same_text", "same_answer", "orig_len", "new_len", "len_diff",
           "orig_answer", "new_answer", "orig_text", "new_text"]


def force_from(k: int, a: float | None = None):
    """step t -> forced gate value: `a` (1.0 = mixing off) for t >= k, None (the learned gate) before."""
    value = 1.0 if a is None else float(a)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"the gate value a must be in [0, 1], got {value}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return lambda t: value if t >= k else None


def first_difference(a: list[int], b: list[int]) -> int | None:
    """Index of the first position where two token sequences differ (the shorter one's length when
    one is a prefix of the other); None when they are equal."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def divergence(orig, new) -> dict:
    """Where `new` departs from `orig` (two Traces): first differing step, texts, answers, lengths."""
    first = first_difference(list(orig.token_ids), list(new.token_ids))
    return {"first_diff": first, "same_text": orig.text == new.text, "same_answer": orig.answer == new.answer,
            "orig_len": len(orig.token_ids), "new_len": len(new.token_ids),
            "len_diff": len(new.token_ids) - len(orig.token_ids), "orig_answer": orig.answer,
            "new_answer": new.answer, "orig_text": orig.text, "new_text": new.text}


def replay(hm, trace, cfg, k: int, a: float | None = None, **decoder_kw):
    """Re-decode the trace's prompt (its token ids, so the same chat template) with `cfg` and the gate
    forced from step k on; returns (new trace, divergence dict with k and a)."""
    from hrpo.rollout import Decoder
    new = Decoder(hm, [list(trace.prompt_ids)], cfg, force_a=force_from(k, a), **decoder_kw).run()[0]
    return new, {"k": k, "a": 1.0 if a is None else float(a), **divergence(trace, new)}


def replay_sweep(hm, trace, cfg, ks, a: float | None = None) -> pd.DataFrame:
    """One divergence row (COLUMNS) per k in ks."""
    rows = [replay(hm, trace, cfg, k, a)[1] for k in ks]
    return pd.DataFrame(rows, columns=COLUMNS)


def decode_and_sweep(hm, prompt, cfg, ks, a: float | None = None, raw: bool = False):
    """Decode `prompt` once (the original), then replay it for each k: (original trace, sweep frame)."""
    from hrpo.rollout import Decoder
    orig = Decoder(hm, [prompt], cfg, raw=raw).run()[0]
    return orig, replay_sweep(hm, orig, cfg, ks, a)
