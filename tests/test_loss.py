"""hrpo.loss as pure functions: top-k log-probs, truncated importance sampling, the policy loss (table-driven)."""
import math

import pytest
import torch

from hrpo.loss import policy_loss, tis_weights
from hrpo.sampling import head_logprobs, token_logprobs


def dense_topk_logprobs(logits: torch.Tensor, ids: torch.Tensor, k: int, tau: float) -> torch.Tensor:
    """The definition, spelled out: log-softmax over exactly k top logits plus x's own, all in fp32."""
    z = logits.float() / tau
    top = torch.zeros_like(z, dtype=torch.bool).scatter(-1, z.topk(k, dim=-1).indices, True)
    keep = top | torch.nn.functional.one_hot(ids, z.shape[-1]).bool()
    return torch.log_softmax(z.masked_fill(~keep, float("-inf")), dim=-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("k,tau", [(5, 0.5), (1, 1.0), (50, 0.7)])
def test_token_logprobs_matches_the_definition_and_its_gradient(dtype, k, tau):
    g = torch.Generator().manual_seed(k)
    logits = (4 * torch.randn(3, 7, 200, generator=g)).to(dtype)
    logits[0, 0, :10] = logits[0, 0, 0]                          # ties at the top (bf16 makes them common)
    ids = torch.randint(0, 200, (3, 7), generator=g)              # many outside the top k
    ids[1] = logits[1].float().argmax(-1)                         # and some inside
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    got, want = token_logprobs(a, ids, k, tau), dense_topk_logprobs(b, ids, k, tau)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    got.sum().backward()
    want.sum().backward()
    torch.testing.assert_close(a.grad.float(), b.grad.float(), atol=1e-2 if dtype == torch.bfloat16 else 1e-6,
                               rtol=1e-2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("k", [5, 0])
def test_head_logprobs_equal_the_dense_head_in_value_and_gradient(dtype, k):
    """From hidden states and a frozen head: the values of token_logprobs on the dense logits bit for bit, the
    same gradient to the hidden states (k + 1 rows of the head in the sparse backward; k = 0: the dense path)."""
    g = torch.Generator().manual_seed(1)
    W = torch.randn(300, 16, generator=g).to(dtype)
    hidden = torch.randn(3, 7, 16, generator=g).to(dtype)
    ids = torch.randint(0, 300, (3, 7), generator=g)
    ids[1] = torch.nn.functional.linear(hidden[1], W).float().argmax(-1)   # some inside the top k, most outside
    a, b = hidden.clone().requires_grad_(True), hidden.clone().requires_grad_(True)
    got, want = head_logprobs(a, W, ids, k, 0.7), token_logprobs(torch.nn.functional.linear(b, W), ids, k, 0.7)
    assert torch.equal(got, want)
    (got * torch.arange(7)).sum().backward()
    (want * torch.arange(7)).sum().backward()
    torch.testing.assert_close(a.grad.float(), b.grad.float(), atol=2e-2 if dtype == torch.bfloat16 else 1e-6,
                               rtol=1e-2)
    with torch.no_grad():
        assert torch.equal(head_logprobs(hidden, W, ids, k, 0.7), want)


def test_token_logprobs_without_top_k_is_the_full_log_softmax():
    logits = torch.randn(2, 3, 11)
    ids = torch.randint(0, 11, (2, 3))
    want = torch.log_softmax(logits / 0.5, -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(token_logprobs(logits, ids, 0, 0.5), want)
    torch.testing.assert_close(token_logprobs(logits, ids, 11, 0.5), want)


# (old - rollout, cap, expected weight): min(exp(old - rollout), cap); cap 0 = off
TIS_CASES = [
    (0.0, 2.0, 1.0),                   # no drift: weight 1
    (math.log(1.5), 2.0, 1.5),         # teacher-forced policy likes the token more than the sampler did
    (math.log(0.25), 2.0, 0.25),       # ... less: down-weighted, never truncated from below
    (math.log(3.0), 2.0, 2.0),         # truncated at the cap
    (5.0, 1.0, 1.0),                   # cap 1: only ever down-weights
    (math.log(3.0), 0.0, 1.0),         # off
    (-0.7, 0.0, 1.0),                  # off
]


@pytest.mark.parametrize("gap,cap,want", TIS_CASES)
def test_tis_weights_table(gap, cap, want):
    rollout = torch.tensor([[-1.3]])
    old = (rollout + gap).requires_grad_(True)
    w = tis_weights(old, rollout, cap)
    assert w.shape == (1, 1) and not w.requires_grad
    assert w.item() == pytest.approx(want, rel=1e-6)


def test_policy_loss_weights_only_the_policy_gradient_term():
    logp = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, -0.5, -0.5]], requires_grad=True)
    rollout = torch.tensor([[-1.0, -2.5, 0.0], [-0.2, -0.5, -0.5]])
    ref = torch.tensor([[-1.5, -2.0, 0.0], [-0.5, -1.0, -0.5]])
    valid = torch.tensor([[True, True, False], [True, True, True]])
    A, beta = torch.tensor([1.0, -2.0]), 0.1
    w = tis_weights(logp.detach(), rollout, 2.0)
    torch.testing.assert_close(w, torch.tensor([[1.0, 1.6487213, 1.0], [0.7408182, 1.0, 1.0]]))
    loss, _ = policy_loss(logp, logp.detach(), ref, A, valid, beta, is_weight=w)
    loss.backward()
    d = ref - logp.detach()
    lengths = valid.sum(-1, keepdim=True)
    want_grad = (-w * A[:, None] + beta * (1 - torch.exp(d))) / lengths / 2 * valid
    torch.testing.assert_close(logp.grad, want_grad)
    # weights of one reproduce the plain loss exactly
    plain, _ = policy_loss(logp, logp.detach(), ref, A, valid, beta)
    ones, _ = policy_loss(logp, logp.detach(), ref, A, valid, beta, is_weight=torch.ones_like(w))
    assert torch.equal(plain, ones)
