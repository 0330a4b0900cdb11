"""Teacher forcing: rebuild a rollout's input embeddings and recompute its log-probs in one batched forward
(two when prompts repeat: each distinct prompt once, then the completions on its shared KV cache).

The layout matches the decoder exactly: prompts left-padded to P, completions appended and
right-padded to T, position ids = cumsum(attention mask) - 1.  At thinking positions the input
is rebuilt as gate(E[x], h_stored) with whatever gate is passed (the trainer passes the trainable
one, so gradients reach W_r, W_i and Lambda); elsewhere it is E[x].  The logits at position P-1+t
score completion token t.  Tests: pytest tests/test_rollout.py -k kv_cache, tests/test_fidelity.py -k shared
"""
from dataclasses import dataclass

import torch

from .loss import token_logprobs
from .models import low_precision
from .rollout import Trace, distinct_rows, left_pad, prompt_pass


@dataclass
class Batch:
    ids: torch.Tensor         # (B, P+T) prompt (left-padded) then completion (right-padded)
    mask: torch.Tensor        # (B, P+T) attention mask
    positions: torch.Tensor   # (B, P+T)
    completion: torch.Tensor  # (B, T) token ids (pad beyond each row's length)
    valid: torch.Tensor       # (B, T) bool: a real completion token
    thinking: torch.Tensor    # (B, T) bool: input was mixed with the latent
    latents: torch.Tensor | None  # (B, T, H) stored latents, or None without hybrid
    logprobs: torch.Tensor    # (B, T) log-probs seen while sampling (0 where not valid)

    @property
    def prompt_len(self) -> int:
        return self.ids.shape[1] - self.completion.shape[1]


def pack(traces: list[Trace], pad_id: int, device) -> Batch:
    """Stack traces into one right-aligned-prompt / left-aligned-completion batch."""
    prompt, pmask = left_pad([t.prompt_ids for t in traces], pad_id)           # (B, P)
    T = max(1, max(len(t.token_ids) for t in traces))
    B = len(traces)
    comp = torch.full((B, T), pad_id, dtype=torch.long)
    valid = torch.zeros((B, T), dtype=torch.bool)
    thinking = torch.zeros((B, T), dtype=torch.bool)
    old = torch.zeros((B, T))
    latents = None
    if all(t.latents is not None for t in traces):
        latents = torch.zeros((B, T, traces[0].latents.shape[-1]))
    for r, t in enumerate(traces):
        n = len(t.token_ids)
        comp[r, :n] = torch.tensor(t.token_ids, dtype=torch.long)
        valid[r, :n] = True
        thinking[r, :n] = torch.tensor(t.thinking_mask, dtype=torch.bool)
        old[r, :n] = torch.tensor([s.logprob for s in t.steps])
        if latents is not None:
            latents[r, :n] = t.latents
    mask = torch.cat([pmask, valid.long()], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    ids = torch.cat([prompt, comp], dim=1)
    to = lambda x: None if x is None else x.to(device)
    return Batch(to(ids), to(mask), to(positions), to(comp), to(valid), to(thinking), to(latents), to(old))


def input_embeds(E: torch.Tensor, batch: Batch, gate=None) -> torch.Tensor:
    """(B, P+T, H) inputs: E[ids], with gate(E[x], h) at thinking positions when a gate is given."""
    embeds = E[batch.ids]                                                      # (B, L, H)
    if gate is None or batch.latents is None or not batch.thinking.any():
        return embeds
    P = batch.prompt_len
    comp = embeds[:, P:]                                                       # (B, T, H)
    mixed, _ = gate(comp, batch.latents.to(comp.dtype))
    comp = torch.where(batch.thinking.unsqueeze(-1), mixed, comp)
    return torch.cat([embeds[:, :P], comp], dim=1)


def completion_logits(model, embeds: torch.Tensor, batch: Batch, share_prompts: bool = True) -> torch.Tensor:
    """(B, T, V) logits scoring each completion token.

    share_prompts (default): two passes, rollout.prompt_pass (each distinct prompt once, its KV cache indexed
    out to every row that repeats it) and the completions on top of that cache; the same values and
    gradients as one pass over the whole rows (tests/test_fidelity.py -k shared), with a G-fold smaller prompt part
    (in arith training the prompt is ~3/4 of each row).  Without repeated prompts, or share_prompts=False:
    one forward over prompt + completion.
    """
    L, T, P = embeds.shape[1] - 1, batch.completion.shape[1], batch.prompt_len
    groups = distinct_rows(batch.ids[:, :P], batch.mask[:, :P]) if share_prompts else None
    if groups is not None:
        first, cache = prompt_pass(model, embeds[:, :P], batch.mask[:, :P], batch.positions[:, :P], groups)
        if T == 1:
            return first.unsqueeze(1)
        with low_precision(model):
            out = model(inputs_embeds=embeds[:, P:-1], attention_mask=batch.mask[:, :-1],
                        position_ids=batch.positions[:, P:-1], cache=cache, use_cache=True)
        return torch.cat([first.unsqueeze(1), out.logits], dim=1)
    # positions as an index tensor (a contiguous gather), not logits_to_keep=T: the int form slices a
    # non-contiguous view and the lm_head matmul then materialises a (B, H, V) copy of the weight
    keep = torch.arange(L - T, L, device=embeds.device)
    with low_precision(model):                   # the same compute path as the rollout's decode steps
        out = model(inputs_embeds=embeds[:, :-1], attention_mask=batch.mask[:, :-1],
                    position_ids=batch.positions[:, :-1], use_cache=False, logits_to_keep=keep)
    return out.logits


def completion_logprobs(model, E: torch.Tensor, batch: Batch, top_k: int, temperature: float, gate=None,
                        share_prompts: bool = True) -> torch.Tensor:
    """(B, T) log-probs of the completion tokens under softmax(top_k(logits) / tau)."""
    logits = completion_logits(model, input_embeds(E, batch, gate), batch, share_prompts)
    return token_logprobs(logits, batch.completion, top_k, temperature)
