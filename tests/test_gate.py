"""The gate against an independent computation of docs/DESIGN.md section 1."""
import math

import pytest
import torch

from hrpo.config import ConfigError, GateConfig
from hrpo.gate import ThinkingResidualGate, hidden_ratio


def reference(gate, e, h):
    """docs/DESIGN.md 1.2, written out element by element from the raw parameters."""
    Wr, br = gate.W_r.weight.detach().double(), gate.W_r.bias.detach().double()
    Wi, bi = gate.W_i.weight.detach().double(), gate.W_i.bias.detach().double()
    lam = gate.Lambda.detach().double()
    e, h = e.double(), h.double()
    r = 1 / (1 + torch.exp(-(e @ Wr.T + br)))
    i = 1 / (1 + torch.exp(-(e @ Wi.T + bi)))
    softplus = torch.log1p(torch.exp(-lam))
    a = torch.exp(-gate.c * softplus * r)
    return a * e + torch.sqrt(1 - a ** 2 + 1e-8) * (i * h), a


@pytest.mark.parametrize("shape", [(16,), (3, 16), (2, 5, 16)])
def test_gate_matches_formula_for_any_leading_shape(shape):
    torch.manual_seed(0)
    gate = ThinkingResidualGate(16)
    with torch.no_grad():                      # move a away from 1 so both terms matter
        gate.Lambda.normal_(0, 1)
    e, h = torch.randn(shape), torch.randn(shape)
    mixed, a = gate(e, h)
    want_mixed, want_a = reference(gate, e, h)
    assert mixed.shape == shape and a.shape == shape
    torch.testing.assert_close(a.double(), want_a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(mixed.double(), want_mixed, rtol=1e-5, atol=1e-5)
    assert (a > 0).all() and (a < 1).all()


def test_initial_a_lies_in_r_range_when_r_is_one():
    gate = ThinkingResidualGate(64, r_min=0.99, r_max=0.999)
    with torch.no_grad():                      # r = sigmoid(0 * e + 60) == 1 exactly in fp32
        gate.W_r.weight.zero_()
        gate.W_r.bias.fill_(60.0)
    _, a = gate(torch.randn(8, 64), torch.randn(8, 64))
    assert a.min() >= 0.99 - 1e-6 and a.max() <= 0.999 + 1e-6
    assert a.std() > 0                         # Lambda really is drawn per dimension


def test_reset_lambda_is_the_inverse_of_the_gate():
    gate = ThinkingResidualGate(4, c=8.0)
    gate.reset_lambda(0.995, 0.9950001)
    a_at_r1 = torch.exp(-8.0 * torch.nn.functional.softplus(-gate.Lambda))
    assert torch.allclose(a_at_r1, torch.full((4,), 0.995), atol=1e-5)
    with pytest.raises(ValueError):
        gate.reset_lambda(0.999, 0.99)


def test_forcing_a_to_one_returns_the_token_embedding_exactly():
    gate = ThinkingResidualGate(32)
    e, h = torch.randn(4, 32), torch.randn(4, 32) * 100
    mixed, a = gate(e, h, force_a=1.0)
    assert torch.equal(mixed, e) and torch.equal(a, torch.ones_like(a))
    mixed_half, _ = gate(e, h, force_a=0.5)
    assert not torch.allclose(mixed_half, e)


def test_gate_computes_in_float32_and_returns_input_dtype():
    gate = ThinkingResidualGate(32)
    e, h = torch.randn(2, 32, dtype=torch.bfloat16), torch.randn(2, 32, dtype=torch.bfloat16)
    mixed, a = gate(e, h)
    assert mixed.dtype == torch.bfloat16 and a.dtype == torch.float32
    assert (a < 1).all()                       # a ~ 0.997 would round to 1.0 in bf16


def test_gradients_reach_every_gate_parameter():
    gate = ThinkingResidualGate(8)
    mixed, _ = gate(torch.randn(3, 8), torch.randn(3, 8))
    mixed.sum().backward()
    for name, p in gate.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_hidden_ratio():
    a = torch.tensor([1.0, 0.6, 0.0])
    assert torch.allclose(hidden_ratio(a), torch.tensor([0.0, 0.8, 1.0]))
    assert math.isclose(float(hidden_ratio(torch.tensor(0.999))), math.sqrt(1 - 0.999 ** 2), rel_tol=1e-4)


@pytest.mark.parametrize("kw", [{"c": 0}, {"r_min": 0.999, "r_max": 0.99}, {"r_max": 1.0}])
def test_gate_config_rejects_bad_values(kw):
    with pytest.raises(ConfigError):
        GateConfig(**kw)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=8, max_size=8), st.lists(finite, min_size=8, max_size=8),
       st.lists(st.floats(-10, 30, allow_nan=False, width=32), min_size=8, max_size=8))
def test_gate_property_a_in_unit_interval_and_finite_output(e, h, lam):
    """For any finite inputs and any Lambda: a lies in (0, 1] and the mixture is finite."""
    torch.manual_seed(0)
    gate = ThinkingResidualGate(8)
    with torch.no_grad():
        gate.Lambda.copy_(torch.tensor(lam))
    mixed, a = gate(torch.tensor(e).unsqueeze(0), torch.tensor(h).unsqueeze(0))
    assert torch.isfinite(mixed).all() and torch.isfinite(a).all()
    assert (a > 0).all() and (a <= 1).all()
