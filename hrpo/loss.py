"""Pure tensor functions for HRPO/GRPO: sampling log-probs, advantages and the policy loss.

token_logprobs: log p(x) under the sampling distribution softmax(top_k(logits) / tau) (DESIGN 1.1).
  The support is top-k plus x itself, so the value is the top-k log-prob whenever x is in the top
  k (always, for the policy that sampled it) and stays finite if an update pushes x out.
Test: pytest tests/test_loss.py
"""
import torch


def token_logprobs(logits: torch.Tensor, ids: torch.Tensor, top_k: int, temperature: float) -> torch.Tensor:
    """log p(ids) for logits (..., V) and ids (...), p = softmax(top_k(logits) / tau); float32."""
    logits = logits.float()
    lx = logits.gather(-1, ids.unsqueeze(-1)).squeeze(-1) / temperature       # (...)
    if top_k <= 0 or top_k >= logits.shape[-1]:
        return lx - torch.logsumexp(logits / temperature, dim=-1)
    vals = logits.topk(top_k, dim=-1).values / temperature                    # (..., k)
    lse = torch.logsumexp(vals, dim=-1)                                        # (...)
    outside = lx < vals[..., -1]                                               # x not in the top k
    lse = torch.where(outside, torch.logaddexp(lse, lx), lse)
    return lx - lse


def sampling_distribution(logits: torch.Tensor, top_k: int, temperature: float):
    """(probs, log-probs, token indices) of softmax(top_k(logits) / tau); indices None = whole vocab.

    logits (B, V) -> probs (B, k), logp (B, k), idx (B, k) sorted by probability (k = V without top-k).
    """
    logits = logits.float()
    if top_k <= 0 or top_k >= logits.shape[-1]:
        logp = torch.log_softmax(logits / temperature, dim=-1)                 # (B, V)
        return logp.exp(), logp, None
    vals, idx = logits.topk(top_k, dim=-1)                                     # (B, k)
    logp = torch.log_softmax(vals / temperature, dim=-1)
    return logp.exp(), logp, idx


def group_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """A = (R - mean_group) / (std_group + 1e-4) for rewards (B*G,) laid out group by group."""
    r = rewards.view(-1, group_size).float()                                   # (B, G)
    mean, std = r.mean(-1, keepdim=True), r.std(-1, keepdim=True)
    return ((r - mean) / (std + 1e-4)).view(-1)                                # (B*G,)


def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor, advantages: torch.Tensor,
                valid: torch.Tensor, beta: float, epsilon: float = 0.2) -> tuple[torch.Tensor, dict]:
    """HRPO/GRPO loss (paper Eq. 6) with TRL-style clipping; returns (loss, stats).

    logp, old_logp, ref_logp, valid: (N, T); advantages: (N,).  Per token
        -(min(rho * A, clip(rho, 1-eps, 1+eps) * A) - beta * (exp(ref - lp) - (ref - lp) - 1)),
    rho = exp(lp - old).  On the first pass old = lp.detach(), so rho == 1 and this is exactly
    -(exp(lp - lp.detach()) * A - beta * k3).  Mean over each completion's tokens, then over completions.
    """
    A = advantages.unsqueeze(-1)                                               # (N, 1)
    rho = torch.exp(logp - old_logp)                                           # (N, T)
    surrogate = torch.min(rho * A, torch.clamp(rho, 1 - epsilon, 1 + epsilon) * A)
    delta = ref_logp - logp
    kl = torch.exp(delta) - delta - 1                                          # (N, T) k3 estimator
    per_token = -(surrogate - beta * kl)
    m = valid.float()
    lengths = m.sum(-1).clamp(min=1)                                           # (N,)
    loss = ((per_token * m).sum(-1) / lengths).mean()
    kl_mean = ((kl * m).sum(-1) / lengths).mean()
    clipped = (((rho - 1).abs() > epsilon).float() * m).sum() / m.sum().clamp(min=1)
    return loss, {"kl": kl_mean.item(), "clip_fraction": clipped.item()}
