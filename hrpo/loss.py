"""Pure tensor functions for HRPO/GRPO: sampling log-probs, advantages and the policy loss.

token_logprobs: log p(x) under the sampling distribution softmax(top_k(logits) / tau) (docs/DESIGN.md 1.1).
  The support is top-k plus x itself, so the value is the top-k log-prob whenever x is in the top
  k (always, for the policy that sampled it) and stays finite if an update pushes x out.
head_logprobs: the same from the last hidden state and the LM head, its backward through the k + 1 rows used.
tis_weights: truncated importance sampling against the rollout's own log-probs, min(exp(lp_old - lp_rollout), C),
  applied (detached) to the policy-gradient term of policy_loss; it corrects what KV-cache decoding and
  teacher forcing still disagree on (bf16).
Test: pytest tests/test_loss.py
"""
import torch
import torch.nn.functional as F


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


def group_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """A = (R - mean_group) / (std_group + 1e-4) for rewards (B*G,) laid out group by group."""
    r = rewards.view(-1, group_size).float()                                   # (B, G)
    mean, std = r.mean(-1, keepdim=True), r.std(-1, keepdim=True)
    return ((r - mean) / (std + 1e-4)).view(-1)                                # (B*G,)


def tis_weights(old_logp: torch.Tensor, rollout_logp: torch.Tensor, cap: float) -> torch.Tensor:
    """Truncated importance-sampling weights min(exp(old - rollout), cap), detached; (N, T) -> (N, T).

    The completions were sampled with the rollout's log-probs (KV-cache decoding, perhaps in bf16) but the
    loss scores them with the teacher-forced `old` ones; where the two differ this reweights each token's
    policy-gradient term towards the policy being trained, truncated at `cap` so that one token cannot
    dominate.  cap <= 0 switches the correction off (all ones).
    """
    if cap <= 0:
        return torch.ones_like(old_logp)
    return torch.exp(old_logp.detach().float() - rollout_logp.detach().float()).clamp(max=cap)


def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor, advantages: torch.Tensor,
                valid: torch.Tensor, beta: float, epsilon: float = 0.2,
                is_weight: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """HRPO/GRPO loss (paper Eq. 6) with TRL-style clipping; returns (loss, stats).

    logp, old_logp, ref_logp, valid, is_weight: (N, T); advantages: (N,).  Per token
        -(w * min(rho * A, clip(rho, 1-eps, 1+eps) * A) - beta * (exp(ref - lp) - (ref - lp) - 1)),
    rho = exp(lp - old), w = is_weight (tis_weights; 1 when None) on the policy-gradient term only.
    On the first pass old = lp.detach(), so rho == 1 and with w = 1 this is exactly
    -(exp(lp - lp.detach()) * A - beta * k3).  Mean over each completion's tokens, then over completions.
    """
    A = advantages.unsqueeze(-1)                                               # (N, 1)
    rho = torch.exp(logp - old_logp)                                           # (N, T)
    surrogate = torch.min(rho * A, torch.clamp(rho, 1 - epsilon, 1 + epsilon) * A)
    if is_weight is not None:
        surrogate = is_weight.detach() * surrogate
    delta = ref_logp - logp
    kl = torch.exp(delta) - delta - 1                                          # (N, T) k3 estimator
    per_token = -(surrogate - beta * kl)
    m = valid.float()
    lengths = m.sum(-1).clamp(min=1)                                           # (N,)
    loss = ((per_token * m).sum(-1) / lengths).mean()
    kl_mean = ((kl * m).sum(-1) / lengths).mean()
    clipped = (((rho - 1).abs() > epsilon).float() * m).sum() / m.sum().clamp(min=1)
    return loss, {"kl": kl_mean.item(), "clip_fraction": clipped.item()}
