"""Counterfactual replay: decode a prompt again with the same seed and settings, but from step k on
either with the mixing switched off (a forced to 1: the plain token embedding, exactly), with the
gate clamped to a chosen a in [0, 1] (0 = latent only), or with the latent h scaled by a factor, and
report where the text, the answer and the length diverge.

  force_from(k, a=None)      the Decoder's force_a callable: a (default 1.0) from step k, learned before
  divergence(orig, new)      pure: first differing step, both texts, answers and lengths (a dict)
  divergence_html(orig, new) the two completions side by side, the shared prefix plain, the rest marked
  replay(hm, trace, cfg, k, a=None, scale=None)  re-decode trace.prompt_ids -> (new trace, divergence dict)
  replay_sweep(hm, trace, cfg, ks, a)  one divergence row per k (DataFrame)
With k beyond the trace length the replay is identical; with k = 0 and a = 1 the tokens equal plain
decoding with hybrid off (greedy, or the same seed).  Test: pytest tests/test_analysis_replay.py
"""
import html

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


def replay(hm, trace, cfg, k: int, a: float | None = None, scale: float | None = None, **decoder_kw):
    """Re-decode the trace's prompt (its token ids, so the same chat template) with `cfg` and, from step
    k on, the gate forced to a (1.0 when neither a nor scale is given) and/or the latent h times scale;
    returns (new trace, divergence dict with k, a (None: the learned gate) and scale)."""
    from hrpo.static_decoder import make_decoder
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if scale is not None and not 0.0 <= scale <= 10.0:
        raise ValueError(f"the latent scale must be in [0, 10], got {scale}")
    if scale is None:
        force, scale_h, a_used = force_from(k, a), None, 1.0 if a is None else float(a)
    else:
        force = force_from(k, a) if a is not None else None
        scale_h, a_used = (lambda t: float(scale) if t >= k else None), None if a is None else float(a)
    new = make_decoder(hm, [list(trace.prompt_ids)], cfg, force_a=force, scale_h=scale_h, **decoder_kw).run()[0]
    return new, {"k": k, "a": a_used, "scale": 1.0 if scale is None else float(scale), **divergence(trace, new)}


def divergence_html(orig, new, first_diff: int | None) -> str:
    """Both completions token by token: the shared prefix plain, the original's tail struck through in
    red and the replay's tail in green, each with its extracted answer."""
    def side(tr, colour, label):
        cut = len(tr.steps) if first_diff is None else first_diff
        head = html.escape("".join(s.token for s in tr.steps[:cut]))
        tail = html.escape("".join(s.token for s in tr.steps[cut:]))
        style = "text-decoration: line-through;" if colour == "red" else ""
        body = head + (f"<span class='diff-{colour}' style='background: {'#ffe3e3' if colour == 'red' else '#d3f9d8'};"
                       f"{style}'>{tail}</span>" if tail else "")
        return (f"<div class='diff-side'><b>{label}</b> · answer <code>{html.escape(repr(tr.answer))}</code>"
                f"<div class='tokens'>{body}</div></div>")
    where = "identical" if first_diff is None else f"diverges at step {first_diff}"
    return (f"<div class='diff'><div class='legend'>{where}</div><div style='display:flex; gap:16px'>"
            f"{side(orig, 'red', 'original')}{side(new, 'green', 'replay')}</div></div>")


def replay_sweep(hm, trace, cfg, ks, a: float | None = None) -> pd.DataFrame:
    """One divergence row (COLUMNS) per k in ks."""
    rows = [replay(hm, trace, cfg, k, a)[1] for k in ks]
    return pd.DataFrame(rows, columns=COLUMNS)


def decode_and_sweep(hm, prompt, cfg, ks, a: float | None = None, raw: bool = False):
    """Decode `prompt` once (the original), then replay it for each k: (original trace, sweep frame)."""
    from hrpo.static_decoder import make_decoder
    orig = make_decoder(hm, [prompt], cfg, raw=raw).run()[0]
    return orig, replay_sweep(hm, orig, cfg, ks, a)
