"""The authors' optimisation details (issue 10): gate init, weight decay on the gate and Lambda,
hidden-ratio metrics, held-out eval with the run's sampling settings, bf16 default on capable CPUs."""
import json
import math

import pytest
import torch

from hrpo.config import TrainConfig
from hrpo.gate import ThinkingResidualGate
from hrpo.models import cpu_has_native_bf16, pick_device_dtype
from hrpo.trainer import GATE_STATS, METRICS, Trainer, gate_stats

TINY = dict(model="tiny-random", task="arith", group_size=2, batch_prompts=2, max_new_tokens=10, lora_rank=4,
            lora_alpha=8, lr=1e-2, gate_lr=1e-2, lambda_lr=1e-2, max_grad_norm=1.0, device="cpu", dtype="float32")


def test_gate_linears_start_as_in_the_authors_code():
    torch.manual_seed(0)
    gate = ThinkingResidualGate(576)
    for lin in (gate.W_r, gate.W_i):
        w = lin.weight.detach()
        assert abs(w.mean().item()) < 2e-4 and abs(w.std().item() - 0.02) < 2e-4
        assert torch.equal(lin.bias.detach(), torch.zeros(576))
    e = torch.randn(1000, 576) * 0.05                       # SmolLM2-like embedding scale
    a, i = gate.gates(e)
    assert abs(i.mean().item() - 0.5) < 0.01                 # r, i start near 0.5


@pytest.mark.parametrize("decay_gate", [True, False])
def test_zero_gradient_update_decays_gate_and_lambda_towards_zero(tmp_path, decay_gate):
    t = Trainer(TrainConfig(**TINY, steps=10, out=str(tmp_path), weight_decay=0.1, decay_gate=decay_gate))
    groups = {g["name"]: g for g in t.optimizer.param_groups}
    lam0, wr0 = t.hm.gate.Lambda.detach().clone(), t.hm.gate.W_r.weight.detach().clone()
    for p in t.params:
        p.grad = torch.zeros_like(p)
    t.optimizer.step()                                       # Adam's step is 0 for a zero gradient
    lam1, wr1 = t.hm.gate.Lambda.detach(), t.hm.gate.W_r.weight.detach()
    if decay_gate:
        want = lam0 * (1 - groups["lambda"]["lr"] * 0.1)
        torch.testing.assert_close(lam1, want, rtol=0, atol=1e-6)
        assert (lam1.abs() < lam0.abs()).all()               # towards 0: more latent
        torch.testing.assert_close(wr1, wr0 * (1 - groups["gate"]["lr"] * 0.1), rtol=0, atol=1e-7)
    else:
        assert torch.equal(lam1, lam0) and torch.equal(wr1, wr0)


@pytest.mark.parametrize("a, hidden, want", [
    ([], [], {"gate_a_mean": 1.0, "hidden_ratio_mean": 0.0, "hidden_ratio_official": 0.0, "hidden_ratio_p50": 0.0}),
    ([0.6], [0.8], {"gate_a_mean": 0.6, "hidden_ratio_mean": 0.8, "hidden_ratio_official": 0.8,
                    "hidden_ratio_p10": 0.8, "hidden_ratio_p90": 0.8}),
    ([1.0, 0.6], [0.0, 0.8], {"gate_a_mean": 0.8, "hidden_ratio_mean": 0.4, "hidden_ratio_official": 0.6,
                              "hidden_ratio_p10": 0.08, "hidden_ratio_p50": 0.4, "hidden_ratio_p90": 0.72}),
])
def test_gate_stats_table(a, hidden, want):
    got = gate_stats(a, hidden)
    assert set(got) == set(GATE_STATS)
    for k, v in want.items():
        assert got[k] == pytest.approx(v), k


def test_metrics_hold_both_hidden_ratios_and_the_spread(tmp_path):
    Trainer(TrainConfig(**TINY, steps=1, out=str(tmp_path))).train()
    m = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert set(METRICS) <= set(m)
    assert m["hidden_ratio_official"] == pytest.approx(math.sqrt(1 - m["gate_a_mean"] ** 2))
    assert 0 < m["hidden_ratio_p10"] <= m["hidden_ratio_p50"] <= m["hidden_ratio_p90"] < 1


def test_held_out_eval_uses_the_runs_temperature_and_top_k(tmp_path, monkeypatch):
    import hrpo.evaluate
    seen = []
    monkeypatch.setattr(hrpo.evaluate, "evaluate", lambda hm, problems, cfg: (seen.append(cfg), ({"n": 0},))[1])
    t = Trainer(TrainConfig(**TINY, steps=1, out=str(tmp_path), temperature=0.7, top_k=7, eval_limit=2))
    t.held_out_eval(1)
    assert seen[0].temperature == 0.7 and seen[0].top_k == 7 and seen[0].greedy and seen[0].hybrid


def test_bf16_is_the_default_exactly_on_cpus_with_native_bf16(tmp_path):
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor : 0\nflags : fpu sse2 avx512f avx512_bf16\n")
    assert cpu_has_native_bf16(str(fake))
    fake.write_text("processor : 0\nflags : fpu sse2 avx2\n")
    assert not cpu_has_native_bf16(str(fake))
    assert not cpu_has_native_bf16(str(tmp_path / "missing"))
    want = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert pick_device_dtype("cpu", None)[1] == want
    assert pick_device_dtype("cpu", "float32")[1] == torch.float32


def test_export_carries_the_runs_metrics_up_to_the_checkpoint(tmp_path):
    from hrpo.checkpoint import export_checkpoint
    run = tmp_path / "run"
    Trainer(TrainConfig(**TINY, steps=3, save_every=2, keep_checkpoints=3, out=str(run))).train()
    dst = export_checkpoint(run / "checkpoints" / "step-000002", tmp_path / "shipped")
    steps = [json.loads(line)["step"] for line in (dst / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2] and not (dst / "trainer_state.pt").exists()
