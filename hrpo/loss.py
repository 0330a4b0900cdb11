"""Pure tensor functions for HRPO/GRPO: advantages and the policy loss (the log-probs: hrpo/sampling.py).

tis_weights: truncated importance sampling against the rollout's own log-probs, min(exp(lp_old - lp_rollout), C),
  applied (detached) to the policy-gradient term of policy_loss; it corrects what KV-cache decoding and
  teacher forcing still disagree on (bf16).
Test: pytest tests/test_loss.py
"""
import torch


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
