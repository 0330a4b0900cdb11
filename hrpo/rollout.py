"""Batched hybrid decoding with a KV cache (docs/DESIGN.md section 1, "Hybrid rollout").

Per generated position, while a row's completion does not yet contain '####':
    p = softmax(top_k(logits) / tau);  x ~ p (argmax when greedy)
    h = E^T p / ||p||_2      -- gathered over the k kept rows of E, never a dense V x H product
    next input = gate(E[x], h)  -- a * e + sqrt(1 - a^2 + 1e-8) * (i * h)
From the token that completes '####' on, inputs are plain E[x]; prompts are never mixed.
The marker, and under the stop rule "answer" the end of the answer line, are tracked per row by the automaton
of hrpo/stopping.py (token tables on device), so a '####' split over several tokens is caught without
re-decoding the completion.
A row that writes EOS (or completes its answer line, under stop="answer") leaves the batch (its KV-cache rows
are dropped), so later steps compute only the rows still writing; sampling draws as if every row were still
there, so no row's tokens depend on when the others finish (tests/test_rollout.py -k finished).

Each Step also records the effective vocabulary 1 / sum(p^2) = 1 / ||p||_2^2 (the inverse square of the
norm that normalises h): about 1 for a peaked p, k for a uniform top-k.
`Decoder(...).steps()` yields the per-step records as they are produced (the live UI streams them);
`rollout()` runs it to the end and returns one Trace per prompt.  Test: pytest tests/test_rollout.py
"""
import dataclasses
import functools
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

from .config import RolloutConfig
from .cpu_precision import low_precision
from .gate import hidden_ratio
from .lean_decode import LeanDecodeStep
from .models import HybridModel
from .rewards import extract_answer
from .sampling import input_scale, latent_embedding, model_inputs, sample, step_distribution, token_logprob
from .stopping import AnswerState, advance, marker_table, stops


@dataclass
class Step:
    index: int
    token: str
    token_id: int
    thinking: bool
    gate_a: float
    hidden_ratio: float
    logprob: float
    entropy: float
    eff_vocab: float = 0.0     # effective vocabulary 1 / sum(p^2) of the sampling distribution (0: not recorded)


@dataclass
class Trace:
    prompt: str
    prompt_ids: list[int]
    token_ids: list[int] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    text: str = ""
    answer: str | None = None
    finish: str = "length"                 # "eos", "answer" (the stop rule: answer line complete) or "length"
    hybrid: bool = True
    latents: torch.Tensor | None = None    # (T, H) float32 on CPU: h per step (keep_latents, hybrid)
    inputs: torch.Tensor | None = None     # (T, H) the embedding fed after each step (keep_states)
    top_ids: torch.Tensor | None = None    # (T, 10) most likely next tokens per step (keep_states)
    top_probs: torch.Tensor | None = None  # (T, 10) their probabilities under the sampling distribution

    @property
    def thinking_mask(self) -> list[bool]:
        return [s.thinking for s in self.steps]


def decoding_config(hm, cfg: RolloutConfig) -> RolloutConfig:
    """The config a decode of `hm` runs with: plain tokens for a model trained without latents (a GRPO checkpoint,
    HybridModel.plain_only: its gate was never trained), else `cfg` as given.  Both decoders apply it, so every
    path (training rollouts, eval, generate, Live, Compare, replays, studies) decodes a GRPO model as it was
    trained.  Test: pytest tests/test_stopping.py -k policy"""
    return dataclasses.replace(cfg, hybrid=False) if cfg.hybrid and getattr(hm, "plain_only", False) else cfg


def finish_trace(hm, trace: Trace, answered: bool) -> None:
    """Set a decoded trace's finish ("eos", "answer": its answer line completed under the stop rule, or "length"),
    text and answer (after the last '####'); both decoders end with it."""
    if trace.token_ids and trace.token_ids[-1] in hm.eos_ids:
        trace.finish = "eos"
    else:
        trace.finish = "answer" if answered else "length"
    trace.text = hm.tokenizer.decode(trace.token_ids, skip_special_tokens=True)
    trace.answer = extract_answer(trace.text)


def on_all_rows(fn, inputs: tuple, rows: torch.Tensor, total: int) -> list:
    """fn's outputs at `rows` when its inputs (b, ...) are these rows of a `total`-row batch, fn run on all
    `total` rows (zeros at the others).  For the gate once finished rows have left the batch: MKL's fp32
    GEMM rounds differently for some small row counts (1-3, 5-7, 9-11), and in a bf16 rollout that flipped
    bf16 roundings of the mixed input and moved a log-prob by 0.4 against the teacher-forced pass."""
    full = [x.new_zeros((total, *x.shape[1:])).index_copy_(0, rows, x) for x in inputs]
    return [y[rows] for y in fn(*full)]


def distinct_rows(ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Rows of a (B, P) prompt batch that repeat (a GRPO group decodes each prompt G times).

    Returns (first, inverse): first (U,) the index of one row per distinct (ids, mask) row, inverse (B,)
    each row's index into first, so rows == first[inverse] hold the same prompt; None if no row repeats.
    """
    _, inverse = torch.unique(torch.cat([ids, mask], 1), dim=0, return_inverse=True)
    rows = torch.arange(len(ids), device=ids.device)
    first = torch.full((int(inverse.max()) + 1,), len(ids), device=ids.device).scatter_reduce(0, inverse, rows, "amin")
    return None if len(first) == len(ids) else (first, inverse)


def prompt_pass(model, embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, groups):
    """Run the (B, P) prompts with use_cache, each distinct prompt once: (last-position logits (B, V), cache).
    groups: distinct_rows(ids, mask) of these prompts (None: every row is run).

    The cache of the distinct prompts is then indexed out to all B rows (index_select: differentiable, so a
    teacher-forced loss pass gets the gradient of every copy).  With 4 prompts x G = 8 this computes 4 rows
    instead of 32 (the prompt is ~125 of a row's ~160 tokens in arith training).  The rollout's prefill and the
    teacher-forced pass both go through here, so they compute the prompt with the same kernels and shapes.
    """
    first, inverse = groups if groups else (slice(None), None)
    last = torch.tensor([embeds.shape[1] - 1], device=embeds.device)   # index tensor: see Decoder._forward
    with low_precision(model):                                         # fp32 LoRA adapters run in bf16
        out = model(inputs_embeds=embeds[first], attention_mask=mask[first], position_ids=positions[first],
                    use_cache=True, logits_to_keep=last)
    logits, cache = out.logits[:, -1], out.cache
    if inverse is not None:
        cache.reorder_cache(inverse)
        logits = logits[inverse]
    return logits, cache


def left_pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask), both (B, L), left-padded."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        if s:
            ids[row, width - len(s):] = torch.tensor(s)
            mask[row, width - len(s):] = 1
    return ids, mask


ForceA = Callable[[int], float | None]   # step index -> forced gate value (None: the learned gate)
ScaleH = Callable[[int], float | None]   # step index -> factor on the latent h as the gate mixes it (None: 1)
# Finished rows leave the decode batch, but it keeps at least 2 rows: with a single row this CPU's kernels
# compute some attention steps differently (bf16 logits apart at some lengths; 2-8 rows agree with the
# teacher-forced pass bit for bit), and the rollout must reproduce the teacher-forced log-probs.
MIN_ROWS = 2


class Decoder:
    """One batched hybrid decode.  Iterate `steps()` for per-step records, then read `traces`."""

    def __init__(self, hm: HybridModel, prompts: list[str] | list[list[int]], cfg: RolloutConfig | None = None,
                 raw: bool = False, keep_latents: bool = False, keep_states: bool = False,
                 force_a: ForceA | None = None, scale_h: ScaleH | None = None):
        if not prompts:
            raise ValueError("no prompts to decode")
        self.hm, self.cfg, self.scale_h = hm, decoding_config(hm, cfg or RolloutConfig()), scale_h
        self.keep_latents, self.keep_states, self.force_a = keep_latents or keep_states, keep_states, force_a
        ids = [p if isinstance(p, list) else hm.encode(p, raw=raw) for p in prompts]
        check_prompt_ids(hm, ids, self.cfg.max_new_tokens)
        texts = [hm.tokenizer.decode(i) for i in ids]
        self.traces = [Trace(prompt=t, prompt_ids=i, hybrid=self.cfg.hybrid) for t, i in zip(texts, ids)]
        self.generated, self.seconds = 0, 0.0
        self.scale = input_scale(hm.model)          # the model's input is s * (E[x] or the gate's mix)

    def _forward(self, embeds, mask, positions, cache, lean: LeanDecodeStep | None):
        embeds = model_inputs(embeds, self.scale)
        if lean is not None:                        # bf16 Llama on CPU: the same logits, fewer calls
            return lean(embeds, mask, positions, cache), cache
        # the last position as an index tensor, not logits_to_keep=1: an int slices the hidden states to a
        # non-contiguous view, and the lm_head matmul on it then copies the whole (V, H) weight once per row
        last = torch.tensor([embeds.shape[1] - 1], device=embeds.device)
        with low_precision(self.hm.model):                                     # fp32 LoRA adapters run in bf16
            out = self.hm.model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                                cache=cache, use_cache=True, logits_to_keep=last)
        return out.logits[:, -1], out.cache               # (b, V) in the model's dtype

    def _pick(self, probs, idx, active, rows, gen) -> tuple[torch.Tensor, torch.Tensor]:
        """(pick (b, 1) positions in the kept k, x (b,) token ids): argmax when greedy, else a draw."""
        pick = probs.argmax(-1, keepdim=True) if self.cfg.greedy else sample(probs, active, rows, gen)
        return pick, (idx.gather(-1, pick) if idx is not None else pick).squeeze(-1)

    def _mix(self, t, e, probs, idx, think, active, rows):
        """The next inputs (b, H), gate values a (b, H) and latents h (b, H) (None: plain decoding): the gate mixes
        h into E[x] at thinking rows; other rows keep E[x] and a = 1."""
        a = torch.ones_like(e, dtype=torch.float32)
        if not self.cfg.hybrid:
            return e, a, None
        h = latent_embedding(probs, idx, self.hm.embeddings)                      # (b, H)
        gate = functools.partial(self.hm.gate, force_a=self.force_a(t) if self.force_a else None)
        scale = self.scale_h(t) if self.scale_h else None
        h_in = h if scale is None else h.float() * scale                         # the trace keeps h itself
        mixed, a_mix = gate(e, h_in) if len(active) == rows else on_all_rows(gate, (e, h_in), active, rows)
        think = think.unsqueeze(-1)
        return torch.where(think, mixed, e), torch.where(think, a_mix, a), h

    def _record(self, t, x, think, stats, live, active, e, h, probs, idx, kept) -> list[tuple[int, Step]]:
        """Append this position's Step (and kept tensors) to the traces of the live rows; returns the events."""
        x_list, thinking = x.tolist(), think.tolist()
        if self.keep_states:
            top_probs, j = probs.topk(min(10, probs.shape[-1]), dim=-1)         # (b, 10)
            top_ids = idx.gather(-1, j) if idx is not None else j
        events = []
        for j, (r, on) in enumerate(zip(active.tolist(), live.tolist())):
            if not on:
                continue
            st = Step(t, self.hm.piece(x_list[j]), x_list[j], thinking[j], *stats[j])
            self.traces[r].steps.append(st)
            self.traces[r].token_ids.append(x_list[j])
            if self.keep_latents and h is not None:
                kept["latents"][r].append(h[j].float().cpu())
            if self.keep_states:
                kept["inputs"][r].append(e[j].float().cpu())
                kept["top_ids"][r].append(top_ids[j].cpu())
                kept["top_probs"][r].append(top_probs[j].cpu())
            events.append((r, st))
        return events

    @torch.no_grad()
    def steps(self) -> Iterator[list[tuple[int, Step]]]:
        """Decode; after each position yield [(row, Step)] for the rows still running."""
        hm, cfg, dev = self.hm, self.cfg, self.hm.device
        E = hm.embeddings                                                       # (V, H)
        start = time.perf_counter()
        ids, mask = left_pad([t.prompt_ids for t in self.traces], hm.pad_id)
        ids, mask = ids.to(dev), mask.to(dev)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)                          # (B, P)
        inputs = model_inputs(E[ids], self.scale)                                # (B, P, H)
        logits, cache = prompt_pass(hm.model, inputs, mask, positions, distinct_rows(ids, mask))
        lean = LeanDecodeStep.build(hm.model)                                   # after any folding: reads weights
        next_pos = positions[:, -1:] + 1                                        # (B, 1)
        rows = len(self.traces)
        active = torch.arange(rows, device=dev)     # (b,) the trace of each batch row: finished rows leave
        live = torch.ones(rows, dtype=torch.bool, device=dev)   # (b,) False: a finished row kept as filler
        state, table, answered = AnswerState.zeros(rows, dev), marker_table(hm), [False] * rows
        gen = torch.Generator(device=dev).manual_seed(cfg.seed)
        eos = torch.tensor(sorted(hm.eos_ids), device=dev)
        kept = {name: [[] for _ in range(rows)] for name in ("latents", "inputs", "top_ids", "top_probs")}
        for t in range(cfg.max_new_tokens):
            probs, logp, idx, scaled = step_distribution(logits, cfg.top_k, cfg.temperature)   # (b, k)
            pick, x = self._pick(probs, idx, active, rows, gen)
            x = torch.where(live, x, torch.full_like(x, hm.pad_id))
            state = advance(table, x, state, live)
            think = live & ~state.seen & cfg.hybrid                             # (b,) mixed after this token
            e, a, h = self._mix(t, E[x], probs, idx, think, active, rows)
            stats = torch.stack([a.mean(-1), hidden_ratio(a).mean(-1), token_logprob(scaled, pick),
                                 -(probs * logp).sum(-1), 1.0 / probs.pow(2).sum(-1)], -1).tolist()
            events = self._record(t, x, think, stats, live, active, e, h, probs, idx, kept)
            self.generated += len(events)
            yield events
            ended = live & state.line if stops(cfg) else torch.zeros_like(live)
            for r in active[ended].tolist():
                answered[r] = True
            live &= ~(torch.isin(x, eos) | ended)
            if not live.any() or t == cfg.max_new_tokens - 1:
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
            keep = live.nonzero().squeeze(-1)
            if len(keep) < MIN_ROWS:        # and a finished row or so, decoding padding, as filler
                keep = torch.cat([keep, (~live).nonzero().squeeze(-1)])[:min(MIN_ROWS, len(live))].sort().values
            if len(keep) < len(live):       # finished rows leave the batch: later steps compute only the others
                active, live, e, mask, next_pos = active[keep], live[keep], e[keep], mask[keep], next_pos[keep]
                state = state.select(keep)
                cache.reorder_cache(keep)
            logits, cache = self._forward(e.unsqueeze(1), mask, next_pos, cache, lean)
            next_pos = next_pos + 1
        self.seconds = time.perf_counter() - start
        for r, tr in enumerate(self.traces):
            finish_trace(hm, tr, answered[r])
            for name, per_row in kept.items():
                if per_row[r]:
                    setattr(tr, name, torch.stack(per_row[r]))

    def run(self) -> list[Trace]:
        for _ in self.steps():
            pass
        return self.traces

    @property
    def tokens_per_s(self) -> float:
        return self.generated / self.seconds if self.seconds else 0.0


def check_prompt_ids(hm, ids: list[list[int]], max_new_tokens: int, width: int | None = None) -> None:
    """ValueError unless every prompt has tokens and the longest (or `width`, the static decoder's padded one)
    plus max_new_tokens fits the model's context; both decoders check with it."""
    if any(len(i) == 0 for i in ids):
        raise ValueError("empty prompt")
    limit = getattr(hm.model.config, "max_position_embeddings", None)
    longest = max(map(len, ids))
    if limit and (width or longest) + max_new_tokens > limit:
        raise ValueError(f"prompt ({longest} tokens) + max_new_tokens ({max_new_tokens}) exceeds the model's "
                         f"context of {limit} tokens")


def rollout(hm: HybridModel, prompts, cfg: RolloutConfig | None = None, **kw) -> list[Trace]:
    """Decode every prompt (question strings, or token-id lists) with the eager Decoder; one Trace each."""
    return Decoder(hm, prompts, cfg, **kw).run()

