"""Gate selectivity: does the gate mix in more latent on some tokens than on others? (docs/gate_selectivity.md)

The per-token gate a = exp(-c * softplus(-Lambda) * sigmoid(W_r e)) (docs/DESIGN.md section 1.2) can only
differ between tokens through W_r; these pure functions measure how much it does, over the thinking tokens
of traces, from each step's hidden ratio sqrt(1 - a^2) (a averaged over H, `Step.hidden_ratio`):

  token_type          a token piece's type: digit, operator, word, punct (symbols other than operators,
                      the #### marker among them) or space (whitespace only)
  line_starts         per token of a completion: is it the first token with content on its line?
  thinking_records    (type, first_of_line, hidden_ratio) of the thinking steps of one trace
  selectivity         SELECTIVITY metrics of many records (the trainer logs them per step, metrics.jsonl)
  selectivity_frame   one row per model with the same figures, from analysis.gates.step_frame's columns
                      (`python -m analysis compare` writes it as selectivity.csv)

SELECTIVITY (keys of metrics.jsonl; None / NaN where the step had no token of that kind):
  hidden_ratio_p90_p10      p90 / p10 of the per-token hidden ratio over thinking tokens (1 = uniform gate;
                            None when there are no thinking tokens or p10 is 0, as in GRPO runs)
  hidden_ratio_digit, _operator, _word, _punct     mean hidden ratio of thinking tokens of that type
  hidden_ratio_line_first, _line_later             mean over the first token with content of each line,
                                                   and over the later tokens with content of the line
Quantiles interpolate linearly (as torch.quantile and numpy's default), so p10/p90 here equal the
trainer's hidden_ratio_p10/p90.  Test: pytest tests/test_selectivity.py
"""
import math
import unicodedata

TOKEN_TYPES = ("digit", "operator", "word", "punct")
OPERATORS = frozenset("+-*/=<>^%×÷−·")
SELECTIVITY = ["hidden_ratio_p90_p10", *(f"hidden_ratio_{t}" for t in TOKEN_TYPES),
               "hidden_ratio_line_first", "hidden_ratio_line_later"]
FRAME_COLUMNS = ["model", "thinking_tokens", "hidden_ratio_p10", "hidden_ratio_p50", "hidden_ratio_p90",
                 *SELECTIVITY, *(f"n_{t}" for t in TOKEN_TYPES)]


def token_type(piece: str) -> str:
    """digit | operator | word | punct | space, from the piece's characters (surrounding spaces ignored).

    Any letter makes a word ("x2", "th"); else any digit a digit ("12", "3.5", "1,000"); else a piece made of
    operator characters only is an operator ("+", "==", "*"); else punctuation/symbols ("####", ".", "?").
    """
    s = piece.strip()
    if not s:
        return "space"
    if any(unicodedata.category(ch).startswith("L") for ch in s):
        return "word"
    if any(ch.isdigit() for ch in s):
        return "digit"
    if all(ch in OPERATORS for ch in s):
        return "operator"
    return "punct"


def line_starts(pieces) -> list[bool]:
    """For each piece: True when it is the first piece with content (non-whitespace) on its line.

    Lines start at the beginning and after each "\\n"; a piece holding a newline belongs to the line its
    content after the last newline starts ("\\nThe": first of the new line).  Whitespace-only pieces are
    never first.
    """
    out, at_start = [], True
    for p in pieces:
        if "\n" in p:
            tail = p.rsplit("\n", 1)[1]
            before_has_content = bool(p.rsplit("\n", 1)[0].strip())
            out.append(bool(tail.strip()) or (at_start and before_has_content))
            at_start = not tail.strip()
        else:
            out.append(at_start and bool(p.strip()))
            at_start = at_start and not p.strip()
    return out


def thinking_records(steps) -> list[tuple[str, bool, float]]:
    """(token type, first of its line, hidden ratio) of each thinking step; steps have .token, .thinking,
    .hidden_ratio (hrpo.rollout.Step).  Line positions count every step of the trace."""
    steps = list(steps)
    firsts = line_starts([s.token for s in steps])
    return [(token_type(s.token), f, float(s.hidden_ratio)) for s, f in zip(steps, firsts) if s.thinking]


def quantile(values, q: float) -> float:
    """Linear-interpolation quantile (torch.quantile / numpy's default) of a non-empty sequence."""
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def _mean(values) -> float | None:
    return sum(values) / len(values) if values else None


def selectivity(records) -> dict:
    """SELECTIVITY from (type, first_of_line, hidden_ratio) records; None where no record qualifies."""
    records = list(records)
    hidden = [h for _, _, h in records]
    out = {"hidden_ratio_p90_p10": None}
    if hidden:
        p10, p90 = quantile(hidden, 0.1), quantile(hidden, 0.9)
        out["hidden_ratio_p90_p10"] = p90 / p10 if p10 > 0 else None
    for t in TOKEN_TYPES:
        out[f"hidden_ratio_{t}"] = _mean([h for k, _, h in records if k == t])
    out["hidden_ratio_line_first"] = _mean([h for k, f, h in records if k != "space" and f])
    out["hidden_ratio_line_later"] = _mean([h for k, f, h in records if k != "space" and not f])
    return out


def nan_for_none(d: dict) -> dict:
    """The same dict with None as NaN (for averaging over processes)."""
    return {k: math.nan if v is None else v for k, v in d.items()}


def none_for_nan(d: dict) -> dict:
    """The same dict with NaN as None (JSON null: metrics.jsonl stays strict JSON)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in d.items()}


def selectivity_frame(steps):
    """One row per model (FRAME_COLUMNS) from a DataFrame with model, trace, step, token, thinking and
    hidden_ratio columns (analysis.gates.step_frame); models without thinking steps get NaN figures."""
    import pandas as pd
    rows = []
    for model, df in steps.groupby("model", sort=False):
        records = []
        for _, tr in df.sort_values(["trace", "step"]).groupby("trace", sort=False):
            records += thinking_records(_Row(t, th, h) for t, th, h in
                                        zip(tr["token"], tr["thinking"], tr["hidden_ratio"]))
        hidden = [h for _, _, h in records]
        q = {f"hidden_ratio_p{int(p * 100)}": quantile(hidden, p) if hidden else None for p in (0.1, 0.5, 0.9)}
        counts = {f"n_{t}": sum(k == t for k, _, _ in records) for t in TOKEN_TYPES}
        rows.append({"model": model, "thinking_tokens": len(records), **q, **selectivity(records), **counts})
    frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    return frame.astype({c: float for c in FRAME_COLUMNS if c.startswith("hidden_ratio")})


class _Row:
    __slots__ = ("token", "thinking", "hidden_ratio")

    def __init__(self, token, thinking, hidden_ratio):
        self.token, self.thinking, self.hidden_ratio = str(token), bool(thinking), hidden_ratio
