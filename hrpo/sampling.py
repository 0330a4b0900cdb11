"""The sampling distribution of a decode step and its log-probs, shared by both decoders and teacher forcing
(docs/DESIGN.md 1.1): the one owner of "softmax(top_k(logits) / tau)".

step_distribution: p = softmax(top_k(logits) / tau) for one decode step, its log-probs, the kept token ids and
  the scaled kept logits; sample draws from it as torch.multinomial does, row by row independent of the batch.
latent_embedding: h = E^T p / ||p||_2 over the kept tokens.
input_scale, model_inputs: the factor s a model's embedding module applies to a lookup (Gemma: sqrt(H); 1 for
  Llama, Qwen2, ...) and the model's input s * v for a vector v of E's space (the gate's mix of E[x] and h).
token_logprob: log p(x) of a decode step's picks, computed as token_logprobs computes it in teacher forcing,
  so equal logits give bit-equal log-probs in the rollout and in the loss pass.
token_logprobs: log p(x) under the sampling distribution for whole completions (teacher forcing).  The
  support is top-k plus x itself, so the value is the top-k log-prob whenever x is in the top k (always, for
  the policy that sampled it) and stays finite if an update pushes x out.
head_logprobs: the same from the last hidden state and the LM head, its backward through the k + 1 rows used.
Test: pytest tests/test_loss.py tests/test_rollout.py
"""
import torch
import torch.nn.functional as F

from .cpu_precision import base_model


def step_distribution(logits: torch.Tensor, top_k: int, temperature: float):
    """softmax(top_k(logits) / tau) for logits (b, V) in the model's dtype: (probs, logp, idx, scaled).

    probs, logp (b, k) float32 sorted by probability; idx (b, k) their token ids (None: the whole vocabulary,
    k = V); scaled (b, k) the kept logits / tau in float32.  The top k are found on the logits as they are
    (bf16 -> fp32 is exact, so the kept values are those of an fp32 top-k, and teacher forcing's
    token_logprobs takes its top k the same way) and only those k are upcast: no (b, V) float32 copy.
    """
    if 0 < top_k < logits.shape[-1]:
        vals, idx = logits.topk(top_k, dim=-1)                                 # (b, k), sorted
        scaled = vals.float() / temperature
    else:
        idx, scaled = None, logits.float() / temperature                       # (b, V)
    logp = torch.log_softmax(scaled, dim=-1)
    return logp.exp(), logp, idx, scaled


def token_logprob(scaled: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
    """(b,) log p of the picked positions pick (b, 1) of scaled (b, k) (step_distribution), computed as
    teacher forcing computes it (token_logprobs: x's logit / tau minus the logsumexp of the kept ones),
    so equal logits give bit-equal log-probs in the rollout and in the loss pass."""
    return scaled.gather(-1, pick).squeeze(-1) - torch.logsumexp(scaled, dim=-1)


def latent_embedding(probs: torch.Tensor, idx: torch.Tensor | None, E: torch.Tensor) -> torch.Tensor:
    """h = E^T p / ||p||_2 for probs (B, k) over token ids idx (B, k), or (B, V) when idx is None."""
    rows = E[idx] if idx is not None else E                                    # (B, k, H) or (V, H)
    h = torch.einsum("bk,bkh->bh", probs.to(E.dtype), rows) if idx is not None else probs.to(E.dtype) @ rows
    return h / probs.norm(dim=-1, keepdim=True).to(E.dtype)                   # (B, H)


def input_scale(model) -> float:
    """The factor s by which the model's embedding module scales a lookup E[x]: Gemma's is sqrt(H) (25.3 at
    H = 640), rounded to the weights' dtype as Gemma's module rounds it; 1.0 for a plain lookup (Llama, Qwen2).

    The decoders feed `inputs_embeds`, which skip that module, so they hand the model s * v, v the gate's mix
    of E[x] and h: the gate, h = E^T p / ||p|| and the nearest-token projections stay in the space of E, as the
    paper writes them, and the model gets what its own lookup gives (docs/DESIGN.md 1.1).
    Test: pytest tests/test_gemma.py"""
    emb = base_model(model).get_input_embeddings()
    scale = getattr(emb, "embed_scale", None)
    return 1.0 if scale is None else float(torch.as_tensor(scale).to(emb.weight.dtype))


def model_inputs(v: torch.Tensor, scale: float) -> torch.Tensor:
    """s * v in v's dtype (input_scale), v itself when s = 1."""
    return v if scale == 1.0 else v * scale


def sample(probs: torch.Tensor, rows: torch.Tensor, total: int, gen: torch.Generator) -> torch.Tensor:
    """(b, 1) draws from probs (b, k), rows `rows` of a `total`-row batch: the draws torch.multinomial(p, 1)
    makes for those rows of the whole batch.  multinomial is argmax p / q with q ~ Exp(1) filled over the
    (total, k) tensor, so q is drawn for every row: the tokens of a row do not depend on which others
    have finished and left the batch (tests/test_rollout.py -k finished)."""
    q = torch.empty((total, probs.shape[-1]), dtype=probs.dtype, device=probs.device).exponential_(1, generator=gen)
    return (probs / q[rows]).argmax(-1, keepdim=True)


def token_logprobs(logits: torch.Tensor, ids: torch.Tensor, top_k: int, temperature: float) -> torch.Tensor:
    """log p(ids) for logits (..., V) and ids (...), p = softmax(top_k(logits) / tau); float32.

    Only the k + 1 logits that matter are upcast: the top-k positions are found on the logits as they
    are (bf16 -> fp32 is exact, so the kept values are those of an fp32 top-k), then the k kept logits
    and the token's own are gathered in one op and the log-softmax runs in fp32.  No (..., V) fp32 copy,
    and the backward is one dense scatter instead of a top-k and a gather over the whole vocabulary.
    """
    if top_k <= 0 or top_k >= logits.shape[-1]:
        logits = logits.float()
        lx = logits.gather(-1, ids.unsqueeze(-1)).squeeze(-1) / temperature    # (...)
        return lx - torch.logsumexp(logits / temperature, dim=-1)
    with torch.no_grad():
        idx = logits.topk(top_k, dim=-1).indices                               # (..., k), sorted
    sel = logits.gather(-1, torch.cat([idx, ids.unsqueeze(-1)], -1))           # (..., k+1)
    return _selected_logprob(sel.float() / temperature, top_k)


def _selected_logprob(sel: torch.Tensor, top_k: int) -> torch.Tensor:
    """log p(x) from sel (..., k+1) fp32: the top-k logits / tau (sorted), then x's own."""
    vals, lx = sel[..., :top_k], sel[..., top_k]                               # (..., k), (...)
    lse = torch.logsumexp(vals, dim=-1)                                        # (...)
    outside = lx < vals[..., -1]                                               # x not in the top k
    lse = torch.where(outside, torch.logaddexp(lse, lx), lse)
    return lx - lse


class _HeadRows(torch.autograd.Function):
    """The given logits (..., k+1), computed as hidden W^T[cols]; backward to hidden through those k + 1 rows of
    W only: d/dhidden = sum_j g_j W[cols_j] (the dense product's gradient has zeros everywhere else)."""

    @staticmethod
    def forward(ctx, hidden, weight, values, cols):
        ctx.save_for_backward(weight, cols)
        return values.clone()

    @staticmethod
    def backward(ctx, g):
        weight, cols = ctx.saved_tensors
        grad = (g.unsqueeze(-2).to(weight.dtype) @ weight[cols]).squeeze(-2)     # (..., 1, k+1) @ (..., k+1, H)
        return grad, None, None, None


def head_logprobs(hidden: torch.Tensor, weight: torch.Tensor, ids: torch.Tensor, top_k: int,
                  temperature: float) -> torch.Tensor:
    """token_logprobs of logits = hidden W^T (hidden (..., H), W (V, H) frozen), with the same values; the
    backward reads only the k + 1 rows of W that the log-prob depends on, where the dense product's backward
    is a (..., V) gradient and a (..., V) x (V, H) product (SmolLM2: 49,152 rows, ~1,000x the work).
    Full vocabulary (top_k <= 0), a trainable W or grad off: the dense path."""
    if top_k <= 0 or top_k >= weight.shape[0] or weight.requires_grad or not torch.is_grad_enabled():
        return token_logprobs(F.linear(hidden, weight), ids, top_k, temperature)
    with torch.no_grad():
        logits = F.linear(hidden, weight)                                      # the values of the dense path
        cols = torch.cat([logits.topk(top_k, dim=-1).indices, ids.unsqueeze(-1)], -1)   # (..., k+1)
        values = logits.gather(-1, cols)
        del logits
    sel = _HeadRows.apply(hidden, weight, values, cols)
    return _selected_logprob(sel.float() / temperature, top_k)
