"""The '####' automaton and the answer-line stop rule, on device, shared by both decoders.

A completion reasons until it writes the marker '####' (docs/DESIGN.md section 1): from then on its inputs are
plain tokens.  Under the stop rule "answer" (RolloutConfig.stop, the default) a row also stops once its answer
line is complete: after the marker, some non-space text (the answer), then a newline; EOS stops every row.
Under "eos" (the paper's) a row decodes to EOS or max_new_tokens and the answer is read after the last marker.

Answer text is any character other than whitespace and '#'.  Everything is tracked without strings: per
vocabulary id, `marker_table` precomputes (columns of TABLE)
    c4        the piece contains '####'            all_hash  the piece is only '#' (the empty piece counts)
    length    its length                           lead, trail  its leading and trailing '#' counts
    lead_line, lead_text  of the piece after its leading '#' run (where a marker begun before it completes):
                          answer text then a newline / answer text
    c4_line, c4_text      the same of the piece after its first '####'
    line, text, newline   the same of the whole piece, and: it holds a newline
and each row keeps s (its trailing '#' run, 0..3), seen ('####' written), text (answer text begun) and line
(answer line complete).  For token x (see `advance`):
    all_hash: hit = s + L >= 4, s = min(s + L, 3);  else: hit = c4 or s + lead >= 4, s = min(trail, 3)
    seen' = seen or hit
    if hit and not seen:  (line', text') = lead_* if s + lead >= 4 else c4_*  (an all-'#' piece: no text)
    if seen:              line' = line or piece line or (text and newline), text' = text or piece text
which equals searching the concatenated pieces (tests/test_stopping.py checks it against a string reference).
Test: pytest tests/test_stopping.py
"""
from dataclasses import dataclass

import torch

MARKER = "####"
STOP_RULES = ("answer", "eos")
TABLE = ("c4", "all_hash", "length", "lead", "trail", "lead_line", "lead_text", "c4_line", "c4_text", "line", "text",
         "newline")
_TABLES: dict = {}       # id(hm) -> (hm, {device: (V, len(TABLE)) table}); pieces are per HybridModel


def answer_text(text: str) -> bool:
    """Does `text` hold answer text (a character other than whitespace and '#')?"""
    return any(not ch.isspace() and ch != "#" for ch in text)


def text_then_newline(text: str) -> bool:
    """Does `text` hold answer text followed (later) by a newline?"""
    first = next((i for i, ch in enumerate(text) if not ch.isspace() and ch != "#"), None)
    return first is not None and "\n" in text[first:]


def piece_row(piece: str) -> tuple:
    """The TABLE columns of one token's text."""
    lead, trail = len(piece) - len(piece.lstrip("#")), len(piece) - len(piece.rstrip("#"))
    after_lead, after_c4 = piece[lead:], piece.split(MARKER, 1)[1] if MARKER in piece else ""
    return (MARKER in piece, lead == len(piece), len(piece), lead, trail,
            text_then_newline(after_lead), answer_text(after_lead), text_then_newline(after_c4),
            answer_text(after_c4), text_then_newline(piece), answer_text(piece), "\n" in piece)


def marker_table(hm) -> torch.Tensor:
    """(V, len(TABLE)) long on hm.device: the TABLE columns per token id (cached per model and device)."""
    entry = _TABLES.get(id(hm))
    if entry is None or entry[0] is not hm:
        entry = _TABLES[id(hm)] = (hm, {})
    if hm.device not in entry[1]:
        rows = [piece_row(piece) for piece in hm.pieces()]
        entry[1][hm.device] = torch.tensor(rows, dtype=torch.long, device=hm.device)
    return entry[1][hm.device]


@dataclass
class AnswerState:
    """Per row (B,): s trailing '#' run (long), seen / text / line (bool).  Tensors, so no host sync."""
    s: torch.Tensor
    seen: torch.Tensor
    text: torch.Tensor
    line: torch.Tensor

    @classmethod
    def zeros(cls, rows: int, device) -> "AnswerState":
        z = lambda dtype: torch.zeros(rows, dtype=dtype, device=device)  # noqa: E731
        return cls(z(torch.long), z(torch.bool), z(torch.bool), z(torch.bool))

    def select(self, rows: torch.Tensor) -> "AnswerState":
        """The state of these batch rows (finished rows leave the eager decoder's batch)."""
        return AnswerState(self.s[rows], self.seen[rows], self.text[rows], self.line[rows])

    def copy_(self, other: "AnswerState") -> None:
        """In place (the static engine's buffers stay where a CUDA graph captured them)."""
        for name in ("s", "seen", "text", "line"):
            getattr(self, name).copy_(getattr(other, name))


def advance(table: torch.Tensor, x: torch.Tensor, st: AnswerState, alive: torch.Tensor) -> AnswerState:
    """The state after tokens x (B,) (see the module doc); rows not alive keep theirs."""
    rows = table[x]                                                               # (B, len(TABLE)), one gather
    length, lead, trail = rows[:, 2], rows[:, 3], rows[:, 4]
    c4, all_hash, _, _, _, lead_line, lead_text, c4_line, c4_text, line, text, newline = rows.bool().unbind(-1)
    run, via_lead = st.s + length, st.s + lead >= 4
    hit = torch.where(all_hash, run >= 4, c4 | via_lead)
    s = torch.where(st.seen, st.s, torch.where(all_hash, run.clamp(max=3), trail.clamp(max=3)))
    new = hit & ~st.seen
    rest_line, rest_text = torch.where(via_lead, lead_line, c4_line), torch.where(via_lead, lead_text, c4_text)
    line_after = torch.where(new, rest_line, st.line | line | (st.text & newline))
    text_after = torch.where(new, rest_text, st.text | text)
    seen = st.seen | hit
    line_after, text_after = line_after & seen, text_after & seen
    keep = lambda now, before: torch.where(alive, now, before)  # noqa: E731
    return AnswerState(keep(s, st.s), keep(seen, st.seen), keep(text_after, st.text), keep(line_after, st.line))


def stops(cfg) -> bool:
    """Does this rollout config stop rows at a complete answer line?"""
    return cfg.stop == "answer"
