"""The thinking residual gate that mixes token and latent embeddings (docs/DESIGN.md section 1).

For a sampled token embedding e and a latent h = E^T p / ||p||_2:
    r = sigmoid(W_r e + b_r),  i = sigmoid(W_i e + b_i)
    a = exp(-c * softplus(-Lambda) * r)                      (element-wise, Lambda in R^H)
    mixed = a * e + sqrt(1 - a^2 + 1e-8) * (i * h)
Lambda starts at -log(u^(-1/c) - 1), u ~ U(r_min, r_max), so that a = u when r = 1.
W_r, W_i start as in the authors' code: weights ~ N(0, 0.02), biases 0 (so r, i start near 0.5).
Where a is exactly 1 (only reachable by forcing it) the hidden term is dropped, so a forced
a = 1 gives the plain token embedding bit for bit.

The gate always computes in float32 (a ~ 0.999 rounds to 1.0 in bf16) and returns `mixed` in
the dtype of the token embeddings.  Test: pytest tests/test_gate.py
"""

import torch
import torch.nn.functional as F
from torch import nn


def init_lambda(hidden_size: int, c: float, r_min: float, r_max: float) -> torch.Tensor:
    """Lambda = -log(u^(-1/c) - 1) with u ~ U(r_min, r_max): the gate's a equals u at r = 1."""
    u = torch.empty(hidden_size).uniform_(r_min, r_max)
    return -torch.log(u.pow(-1.0 / c) - 1.0)


def mix(e: torch.Tensor, h: torch.Tensor, a: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """a * e + sqrt(1 - a^2 + 1e-8) * (i * h); the hidden term is exactly 0 where a == 1."""
    hidden = torch.where(a < 1.0, torch.sqrt(1.0 - a * a + 1e-8), torch.zeros_like(a))
    return a * e + hidden * (i * h)


class ThinkingResidualGate(nn.Module):
    """W_r, W_i (Linear with bias) and Lambda (H-vector); works on any leading shape (..., H)."""

    def __init__(self, hidden_size: int, c: float = 8.0, r_min: float = 0.99, r_max: float = 0.999):
        super().__init__()
        self.hidden_size, self.c = hidden_size, float(c)
        self.W_r = nn.Linear(hidden_size, hidden_size)
        self.W_i = nn.Linear(hidden_size, hidden_size)
        self.Lambda = nn.Parameter(torch.empty(hidden_size))
        self.reset_linears()
        self.reset_lambda(r_min, r_max)

    @torch.no_grad()
    def reset_linears(self, std: float = 0.02) -> None:
        """The authors' init: W ~ N(0, std), b = 0."""
        for lin in (self.W_r, self.W_i):
            lin.weight.normal_(0.0, std)
            lin.bias.zero_()

    @torch.no_grad()
    def reset_lambda(self, r_min: float = 0.99, r_max: float = 0.999) -> None:
        if not 0.0 < r_min < r_max < 1.0:
            raise ValueError(f"need 0 < r_min < r_max < 1, got r_min={r_min}, r_max={r_max}")
        self.Lambda.copy_(init_lambda(self.hidden_size, self.c, r_min, r_max))

    def gates(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, i) for token embeddings e (..., H), in float32."""
        e = e.float()
        r = torch.sigmoid(self.W_r(e))                                  # (..., H)
        i = torch.sigmoid(self.W_i(e))                                  # (..., H)
        a = torch.exp(-self.c * F.softplus(-self.Lambda) * r)          # (..., H)
        return a, i

    def forward(self, token_embeds: torch.Tensor, latent_embeds: torch.Tensor,
                force_a: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix (..., H) token and latent embeddings; returns (mixed, a).

        force_a replaces the learned a by a constant (counterfactual replays; 1.0 = no latent).
        """
        a, i = self.gates(token_embeds)
        if force_a is not None:
            a = torch.full_like(a, float(force_a))
        mixed = mix(token_embeds.float(), latent_embeds.float(), a, i)
        return mixed.to(token_embeds.dtype), a

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, c={self.c}"


def hidden_ratio(a: torch.Tensor) -> torch.Tensor:
    """sqrt(1 - a^2), the weight on the latent that the paper plots (element-wise)."""
    return torch.sqrt(torch.clamp(1.0 - a * a, min=0.0))

