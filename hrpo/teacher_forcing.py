"""Teacher forcing: rebuild a rollout's input embeddings and recompute its log-probs in batched forwards:
each distinct prompt once, then the completions on its shared KV cache, in a few groups of rows of similar
completion length, each padded only to its own longest completion (length_chunks).

The layout matches the decoder exactly: prompts left-padded to P, completions appended and
right-padded to T, position ids = cumsum(attention mask) - 1.  At thinking positions the input
is rebuilt as gate(E[x], h_stored) with whatever gate is passed (the trainer passes the trainable
one, so gradients reach W_r, W_i and Lambda); elsewhere it is E[x].  The logits at position P-1+t
score completion token t.  Tests: pytest tests/test_rollout.py -k kv_cache, tests/test_fidelity.py -k shared
"""
import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .cpu_precision import base_model, low_precision
from .rollout import Trace, distinct_rows, left_pad, prompt_pass
from .sampling import head_logprobs, input_scale, model_inputs, token_logprobs


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

    def select(self, rows: torch.Tensor, width: int) -> "Batch":
        """These rows, their completions cut to the first `width` positions."""
        end = self.prompt_len + width
        cut = lambda x, n: None if x is None else x[rows, :n]                  # noqa: E731
        return Batch(cut(self.ids, end), cut(self.mask, end), cut(self.positions, end), cut(self.completion, width),
                     cut(self.valid, width), cut(self.thinking, width), cut(self.latents, width),
                     cut(self.logprobs, width))


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

    def to(x):
        return None if x is None else x.to(device)
    return Batch(to(ids), to(mask), to(positions), to(comp), to(valid), to(thinking), to(latents), to(old))


def input_embeds(E: torch.Tensor, batch: Batch, gate=None, scale: float = 1.0) -> torch.Tensor:
    """(B, P+T, H) model inputs: s * E[ids], with s * gate(E[x], h) at thinking positions when a gate is given
    (s: sampling.input_scale of the model, 1 for most)."""
    embeds = E[batch.ids]                                                      # (B, L, H)
    if gate is None or batch.latents is None or not batch.thinking.any():
        return model_inputs(embeds, scale)
    P = batch.prompt_len
    comp = embeds[:, P:]                                                       # (B, T, H)
    mixed, _ = gate(comp, batch.latents.to(comp.dtype))
    comp = torch.where(batch.thinking.unsqueeze(-1), mixed, comp)
    return model_inputs(torch.cat([embeds[:, :P], comp], dim=1), scale)


PLAIN_HEADS = ("llama", "mistral", "qwen2")     # CausalLMs whose logits are last_hidden_state W^T, nothing more


def head_weight(model) -> torch.Tensor | None:
    """W of a plain, frozen LM head (no bias, not adapted, a PLAIN_HEADS model), whose log-probs head_logprobs
    can take from the decoder's last hidden state; None otherwise (the model's own logits are used)."""
    base = base_model(model)
    head = base.get_output_embeddings()
    if (base.config.model_type not in PLAIN_HEADS or type(head) is not torch.nn.Linear or head.bias is not None
            or head.weight.requires_grad):
        return None
    return head.weight


def completion_token_logprobs(model, embeds: torch.Tensor, batch: Batch, top_k: int, temperature: float,
                              prompt=None) -> torch.Tensor:
    """(B, T) log-probs of the completion tokens, from the logits at positions P-1 .. P+T-2.

    prompt: (last-position logits, KV cache) of these rows' prompts from rollout.prompt_pass: the completions
    run on top of that cache (the prompts were computed once per distinct prompt).  None: one forward over
    prompt + completion.  With a plain LM head (head_weight) the decoder's hidden states go to head_logprobs:
    the same logits and values, a backward through the k + 1 rows of the head each position uses.
    """
    L, T, P = embeds.shape[1] - 1, batch.completion.shape[1], batch.prompt_len
    head, ids = head_weight(model), batch.completion

    def score(n, keep, **kw):                  # log-probs of ids[:, -n:] from the states at `keep` (None: all)
        with low_precision(model):             # the same compute path as the rollout's decode steps
            if head is None:
                logits = model(**kw, **({} if keep is None else {"logits_to_keep": keep})).logits
                return token_logprobs(logits, ids[:, -n:], top_k, temperature)
            states = base_model(model).model(**kw).last_hidden_state     # the decoder stack, no head
        return head_logprobs(states if keep is None else states[:, keep], head, ids[:, -n:], top_k, temperature)

    if prompt:
        first, cache = prompt
        lp = token_logprobs(first.unsqueeze(1), ids[:, :1], top_k, temperature)
        if T == 1:
            return lp
        rest = score(T - 1, None, inputs_embeds=embeds[:, P:-1], attention_mask=batch.mask[:, :-1],
                     position_ids=batch.positions[:, P:-1], cache=cache, use_cache=True)
        return torch.cat([lp, rest], dim=1)
    # positions as an index tensor (a contiguous gather), not logits_to_keep=T: the int form slices a
    # non-contiguous view and the lm_head matmul then materialises a (B, H, V) copy of the weight
    keep = torch.arange(L - T, L, device=embeds.device)
    return score(T, keep, inputs_embeds=embeds[:, :-1], attention_mask=batch.mask[:, :-1],
                 position_ids=batch.positions[:, :-1], use_cache=False)


def length_chunks(lengths: list[int], max_chunks: int = 4, chunk_cost: int = 16) -> list[list[int]]:
    """Rows grouped by completion length so that padding each group only to its own longest completion
    computes the fewest positions: at most max_chunks groups of consecutive rows in length order, each
    group charged chunk_cost positions more (a forward and a backward of their own).

    A training batch pads every row to its longest completion: one rambling row sets the width for all of
    them, so most positions can be padding.
    """
    order = sorted(range(len(lengths)), key=lambda r: -lengths[r])
    L = [max(1, lengths[r]) for r in order]                                    # descending
    n, INF = len(L), float("inf")
    # best[c][i]: fewest positions for the first i rows in c groups; a group of rows j..i-1 costs (i - j) * L[j]
    best = [[0.0] + [INF] * n] + [[INF] * (n + 1) for _ in range(max_chunks)]
    cut = [[0] * (n + 1) for _ in range(max_chunks + 1)]
    for c in range(1, max_chunks + 1):
        for i in range(1, n + 1):
            for j in range(i):
                cost = best[c - 1][j] + (i - j) * L[j] + chunk_cost
                if cost < best[c][i]:
                    best[c][i], cut[c][i] = cost, j
    c = min(range(1, max_chunks + 1), key=lambda k: best[k][n])
    groups, i = [], n
    while i > 0:
        j = cut[c][i]
        groups.append(order[j:i])
        i, c = j, c - 1
    return groups[::-1]


def select_rows(cache, rows: torch.Tensor):
    """A cache of these rows of `cache` (index_select: differentiable), `cache` itself unchanged."""
    out = copy.copy(cache)
    out.layers = [copy.copy(layer) for layer in cache.layers]
    out.reorder_cache(rows)
    return out


def completion_logprobs(model, E: torch.Tensor, batch: Batch, top_k: int, temperature: float, gate=None,
                        share_prompts: bool = True, max_chunks: int = 4) -> torch.Tensor:
    """(B, T) log-probs of the completion tokens under softmax(top_k(logits) / tau).

    share_prompts (default), where prompts repeat: rollout.prompt_pass computes each distinct prompt once and
    indexes its KV cache out to every row that repeats it (a G-fold smaller prompt part; in arith training the
    prompt is most of each row).  Then the completions, in up to max_chunks groups of rows of similar length
    (length_chunks), each on its rows of the prompt cache and padded only to its longest completion.  The
    same values and gradients at every valid position as one pass over the whole (B, P + T) rows (beyond a
    row's length the values mean nothing either way): tests/test_fidelity.py -k "shared or chunks".
    """
    embeds = input_embeds(E, batch, gate, input_scale(model))
    P, T, dev = batch.prompt_len, batch.completion.shape[1], embeds.device
    groups = distinct_rows(batch.ids[:, :P], batch.mask[:, :P]) if share_prompts else None
    if groups:                                  # the distinct prompts once; each group of rows takes its copies
        first, inverse = groups
        prompt = prompt_pass(model, embeds[first, :P], batch.mask[first, :P], batch.positions[first, :P], None)
    lengths = batch.valid.sum(-1).tolist()
    parts, order = [], []
    for chunk in length_chunks(lengths, max_chunks):
        rows, width = torch.tensor(chunk, device=dev), max(1, max(lengths[r] for r in chunk))
        sub = batch.select(rows, width)
        sub_prompt = groups and (prompt[0][inverse[rows]], select_rows(prompt[1], inverse[rows]))
        lp = completion_token_logprobs(model, embeds[rows, :P + width], sub, top_k, temperature, sub_prompt)
        parts.append(F.pad(lp, (0, T - width)))
        order += chunk
    return torch.cat(parts)[torch.tensor(order, device=dev).argsort()]
