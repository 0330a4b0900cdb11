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


def test_bf16_is_the_default_exactly_on_cpus_with_native_bf16(tmp_path, monkeypatch):
    want = torch.bfloat16 if cpu_has_native_bf16() else torch.float32    # this CPU, or the run's HRPO_CPU_BF16
    assert pick_device_dtype("cpu", None)[1] == want
    assert pick_device_dtype("cpu", "float32")[1] == torch.float32
    with_bf16, without = tmp_path / "with", tmp_path / "without"
    with_bf16.write_text("processor : 0\nflags : fpu sse2 avx512f avx512_bf16\n")
    without.write_text("processor : 0\nflags : fpu sse2 avx2\n")
    monkeypatch.delenv("HRPO_CPU_BF16", raising=False)                  # the flags decide
    assert cpu_has_native_bf16(str(with_bf16))
    assert not cpu_has_native_bf16(str(without))
    assert not cpu_has_native_bf16(str(tmp_path / "missing"))
    monkeypatch.setenv("HRPO_CPU_BF16", "emulated")                    # .ci/run's AVX2 rehearsal: flags overridden
    assert not cpu_has_native_bf16(str(with_bf16))
    monkeypatch.setenv("HRPO_CPU_BF16", "native")
    assert cpu_has_native_bf16(str(without))


def test_export_carries_the_runs_metrics_up_to_the_checkpoint(tmp_path):
    from hrpo.checkpoint import export_checkpoint
    run = tmp_path / "run"
    Trainer(TrainConfig(**TINY, steps=3, save_every=2, keep_checkpoints=3, out=str(run))).train()
    dst = export_checkpoint(run / "checkpoints" / "step-000002", tmp_path / "shipped")
    steps = [json.loads(line)["step"] for line in (dst / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2] and not (dst / "trainer_state.pt").exists()


def lora_model(dtype, spec="tiny-random"):
    """spec (a fresh copy) with rank-4 LoRA adapters on every target, B random (a policy away from its start)."""
    from peft import LoraConfig, get_peft_model

    from hrpo.config import LORA_TARGETS
    from hrpo.models import load_model
    hm = load_model(spec, device="cpu", dtype=dtype)
    hm.model = get_peft_model(hm.model, LoraConfig(r=4, lora_alpha=8, target_modules=LORA_TARGETS))
    randomize_lora(hm.model)
    return hm


def randomize_lora(model) -> None:
    """B ~ N(0, 0.05): the adapters change the model (they start at zero)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


def forward_and_grads(hm, ids):
    from hrpo.cpu_precision import low_precision
    emb = hm.embeddings[ids].detach().float().requires_grad_(True)
    with low_precision(hm.model):
        logits = hm.model(inputs_embeds=emb.to(hm.embeddings.dtype)).logits.float()
    logits.logsumexp(-1).sum().backward()
    grads = {n: p.grad.clone() for n, p in hm.model.named_parameters() if p.grad is not None}
    hm.model.zero_grad(set_to_none=True)
    return logits.detach(), grads, emb.grad


def test_folded_lora_keeps_values_and_gradients_and_restores_the_model():
    from hrpo.cpu_precision import folded_lora
    hm = lora_model("float32")
    ids = torch.randint(0, 1000, (2, 12), generator=torch.Generator().manual_seed(1))
    weights = {n: p for n, p in hm.model.named_parameters()}
    before = {n: p.detach().clone() for n, p in weights.items()}
    logits, grads, dx = forward_and_grads(hm, ids)
    with folded_lora(hm.model):
        layer = hm.model.base_model.model.model.layers[0].self_attn.q_proj
        assert "forward" in layer.__dict__
        assert not torch.equal(layer.base_layer.weight, before[next(n for n in weights if "q_proj.base_layer" in n)])
        f_logits, f_grads, f_dx = forward_and_grads(hm, ids)
        with torch.no_grad():
            nograd = hm.model(inputs_embeds=hm.embeddings[ids]).logits
    assert "forward" not in layer.__dict__
    assert all(torch.equal(p, before[n]) and p is weights[n] for n, p in hm.model.named_parameters())
    torch.testing.assert_close(f_logits, logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(nograd, f_logits, atol=0, rtol=0)      # no branch without grad: same value
    assert set(f_grads) == set(grads) and all("lora_" in n for n in grads) and len(grads) == 2 * 2 * 7
    for n in grads:
        torch.testing.assert_close(f_grads[n], grads[n], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(f_dx, dx, atol=1e-5, rtol=1e-4)


def test_folded_lora_reuses_its_fold_until_an_adapter_changes():
    """A second fold with the same adapters swaps in the same folded tensors (a training step folds once for
    its rollout and its loss pass); after an optimizer step the fold is W + s B A of the new adapters."""
    from hrpo.cpu_precision import folded_lora
    hm = lora_model("bfloat16")
    layer = hm.model.base_model.model.model.layers[0].self_attn.q_proj
    folded = []
    for _ in range(2):
        with folded_lora(hm.model):
            folded.append(layer.base_layer.weight.data_ptr())
    assert folded[0] == folded[1] != layer.base_layer.weight.data_ptr()
    with folded_lora(hm.model):
        before = layer.base_layer.weight.data.clone()
    opt = torch.optim.AdamW([p for p in hm.model.parameters() if p.requires_grad], lr=0.1)   # as the trainer's
    for p in opt.param_groups[0]["params"]:
        p.grad = torch.ones_like(p)
    opt.step()
    with folded_lora(hm.model):
        refolded = layer.base_layer.weight.data.clone()
    expected = layer.base_layer.weight.float() + layer.get_delta_weight("default").float()
    assert not torch.equal(refolded, before)
    torch.testing.assert_close(refolded.float(), expected.to(torch.bfloat16).float(), atol=0, rtol=0)


def test_folded_lora_skips_models_without_adapters(tiny):
    from hrpo.cpu_precision import folded_lora
    w = tiny.model.model.layers[0].self_attn.q_proj.weight
    with folded_lora(tiny.model):
        assert tiny.model.model.layers[0].self_attn.q_proj.weight is w


def test_folded_bf16_rollouts_and_loss_pass_agree(tmp_path):
    """bf16 with trained adapters: folded (the default), the rollout and the teacher-forced pass give the same
    log-probs; a folded rollout against the adapter path would not (the real model drifted by up to 0.27)."""
    trainer = Trainer(TrainConfig(**{**TINY, "dtype": "bfloat16"}, steps=1, out=str(tmp_path), temperature=1.0,
                                  emulated_bf16=True))
    assert trainer.cfg.fold_lora
    randomize_lora(trainer.hm.model)
    m = trainer.train_step(0)
    assert m["logprob_drift"] <= 1e-4 and m["grad_norm"] > 0, m
    mb, _ = trainer._rollouts(1, 0, trainer.task.problems[:2])
    trainer.cfg.fold_lora = False
    with torch.no_grad():
        logp = trainer.ddp(mb["batch"])
    assert (logp - mb["batch"].logprobs)[mb["batch"].valid].abs().max() > 1e-3


@pytest.mark.slow
def test_low_precision_skips_autocast_where_no_adapter_runs_with_the_same_values():
    """bf16, the real model with LoRA: folded, no adapter runs its own path with grad off (a training rollout)
    or on (the loss pass), so both run without autocast, with the same logits bit for bit; unfolded adapters
    run under autocast with peft's input cast off; disabled ones (the reference pass) without, the same
    logits as under autocast.  The layer walk happens once per model."""
    from hrpo.cpu_precision import casting_layers, folded_lora, low_precision
    hm = lora_model("bfloat16", spec="default")
    layers = casting_layers(hm.model)
    assert len(layers) == 7 * hm.model.config.num_hidden_layers and casting_layers(hm.model) is layers
    ids = torch.randint(0, 40000, (2, 16), generator=torch.Generator().manual_seed(0))
    logits = {}
    with folded_lora(hm.model):
        for grad in (False, True):
            with torch.set_grad_enabled(grad), low_precision(hm.model):
                assert not torch.is_autocast_enabled("cpu")
                logits[grad] = hm.model(inputs_embeds=hm.embeddings[ids]).logits.detach()
    assert torch.equal(logits[False], logits[True])
    for grad in (False, True):
        with torch.set_grad_enabled(grad), low_precision(hm.model):
            assert torch.is_autocast_enabled("cpu") and not any(m.cast_input_dtype_enabled for m in layers)
    with torch.no_grad(), hm.model.disable_adapter():              # the reference pass: no adapter runs
        with low_precision(hm.model):
            assert not torch.is_autocast_enabled("cpu")
            plain = hm.model(inputs_embeds=hm.embeddings[ids]).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(hm.model(inputs_embeds=hm.embeddings[ids]).logits, plain)
    assert all(m.cast_input_dtype_enabled for m in layers)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_grouped_attention_equals_eager_attention(dtype):
    """The real embedded model (9 query heads on 3 KV heads), left padding: grouped_eager_attention gives
    transformers' eager logits bit for bit, and the same gradient to the inputs; bf16 on CPU loads with it."""
    from hrpo.cpu_precision import GROUPED_EAGER
    from hrpo.models import load_model
    hm = load_model("default", device="cpu", dtype=dtype)
    if dtype == "bfloat16":
        assert hm.model.config._attn_implementation == GROUPED_EAGER
    cfg = hm.model.config
    assert cfg.num_attention_heads > cfg.num_key_value_heads                  # a real grouped model
    ids = torch.randint(0, 40000, (3, 24), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, :5] = 0
    mask[2, :11] = 0
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    out = {}
    for impl in (GROUPED_EAGER, "eager"):
        hm.model.set_attn_implementation(impl)
        emb = hm.embeddings[ids].detach().clone().requires_grad_(True)
        logits = hm.model(inputs_embeds=emb, attention_mask=mask, position_ids=pos).logits
        logits.float().logsumexp(-1)[mask.bool()].sum().backward()
        out[impl] = logits.detach(), emb.grad
    hm.model.set_attn_implementation(GROUPED_EAGER if dtype == "bfloat16" else "sdpa")
    assert torch.equal(out[GROUPED_EAGER][0], out["eager"][0])
    g, want = out[GROUPED_EAGER][1].float(), out["eager"][1].float()
    # bf16 backward sums the n_rep heads' key/value gradients in another order: 1.9% apart here, where
    # eager bf16 itself is 66% away from the fp32 gradient on these random tokens
    assert ((g - want).norm() / want.norm()).item() < (1e-5 if dtype == "float32" else 5e-2)


def test_distinct_rows_groups_repeated_prompts_by_ids_and_mask():
    from hrpo.rollout import distinct_rows
    ids = torch.tensor([[0, 5, 6], [1, 2, 3], [0, 5, 6], [0, 5, 6], [1, 2, 3]])
    mask = torch.tensor([[0, 1, 1], [1, 1, 1], [0, 1, 1], [1, 1, 1], [1, 1, 1]])   # row 3: same ids, no padding
    first, inverse = distinct_rows(ids, mask)
    assert len(first) == 3
    assert torch.equal(ids[first[inverse]], ids) and torch.equal(mask[first[inverse]], mask)
    assert inverse[0] == inverse[2] != inverse[3] and inverse[1] == inverse[4]
    assert distinct_rows(ids[:2], mask[:2]) is None


@pytest.mark.slow
def test_shared_prompt_pass_and_length_chunks_give_the_one_pass_log_probs_and_gradients():
    """The real embedded model with LoRA adapters and a gate, a GRPO-like batch (2 prompts of different
    length x 3 copies, sampled, completions of 2 to 16 tokens): teacher forcing that computes each prompt once
    and shares its KV cache, and that runs the completions in groups of similar length (tests -k chunks),
    gives the log-probs and the gradients (LoRA, gate) of one pass over the whole rows, and the rollout's."""
    from hrpo.config import RolloutConfig
    from hrpo.cpu_precision import folded_lora
    from hrpo.rollout import rollout
    from hrpo.teacher_forcing import completion_logprobs, length_chunks, pack
    hm = lora_model("float32", spec="default")
    prompts = ["What is 12 + 7?", "Janet has 3 apples and buys 5 more. How many apples does she have?"]
    cfg = RolloutConfig(max_new_tokens=16, seed=2)
    with folded_lora(hm.model):
        traces = rollout(hm, [p for p in prompts for _ in range(3)], cfg, keep_latents=True)
    assert len({tuple(t.token_ids) for t in traces}) > 2                     # the copies were sampled apart
    for t, n in zip(traces, [16, 4, 9, 16, 2, 12]):                          # prefixes: ragged lengths
        t.token_ids, t.steps, t.latents = t.token_ids[:n], t.steps[:n], t.latents[:n]
    batch = pack(traces, hm.pad_id, hm.device)
    assert len(length_chunks(batch.valid.sum(-1).tolist())) > 1
    params = [p for p in [*hm.model.parameters(), *hm.gate.parameters()] if p.requires_grad]
    out = {}
    for share, chunks in ((True, 4), (False, 4), (True, 1), (False, 1)):
        with folded_lora(hm.model):
            lp = completion_logprobs(hm.model, hm.embeddings, batch, cfg.top_k, cfg.temperature, hm.gate, share, chunks)
            lp[batch.valid].sum().backward()
        out[share, chunks] = lp.detach(), [p.grad.clone() for p in params]
        for p in params:
            p.grad = None
    whole = out[False, 1]
    assert (whole[0] - batch.logprobs)[batch.valid].abs().max() < 1e-4
    assert len(params) > 30 and all(g.abs().sum() > 0 for g in whole[1][-3:])   # the gate gets gradient
    for key in ((True, 4), (False, 4), (True, 1)):
        torch.testing.assert_close(out[key][0][batch.valid], whole[0][batch.valid], atol=1e-4, rtol=0)
        for g, want in zip(out[key][1], whole[1]):                          # fp32 summation-order noise only
            assert (g - want).norm() <= 1e-4 * want.norm(), key

@pytest.mark.slow
def test_teacher_forcing_takes_log_probs_from_the_plain_head_with_the_dense_values(monkeypatch):
    """The real model with LoRA in bf16: teacher forcing goes through head_logprobs (hidden states, a backward
    through k + 1 head rows), with the log-probs of the model's own dense logits bit for bit and their gradients
    to within bf16 noise; a trainable head falls back to the dense logits."""
    import hrpo.teacher_forcing as teacher_forcing
    from hrpo.config import RolloutConfig
    from hrpo.cpu_precision import folded_lora
    from hrpo.rollout import rollout
    hm = lora_model("bfloat16", spec="default")
    cfg = RolloutConfig(max_new_tokens=8, seed=1)
    with folded_lora(hm.model):
        batch = teacher_forcing.pack(rollout(hm, ["What is 12 + 7?", "What is 3 + 5?"] * 2, cfg, keep_latents=True),
                                     hm.pad_id, hm.device)
    params = [p for p in hm.model.parameters() if p.requires_grad]
    calls, real = [], teacher_forcing.head_logprobs
    monkeypatch.setattr(teacher_forcing, "head_logprobs", lambda *a, **k: calls.append(1) or real(*a, **k))
    out = {}
    for plain in (True, False):
        if not plain:
            monkeypatch.setattr(teacher_forcing, "head_weight", lambda model: None)
        with folded_lora(hm.model):
            lp = teacher_forcing.completion_logprobs(hm.model, hm.embeddings, batch, cfg.top_k, cfg.temperature,
                                                     hm.gate)
            lp[batch.valid].sum().backward()
        out[plain] = lp.detach(), torch.cat([p.grad.flatten().float() for p in params])
        hm.model.zero_grad(set_to_none=True)
        out[plain] += (len(calls),)
    assert out[True][2] > 0 and out[False][2] == out[True][2]          # the dense path makes no call of its own
    assert torch.equal(out[True][0], out[False][0])
    assert (out[True][1] - out[False][1]).norm() <= 0.05 * out[False][1].norm()
    head = hm.model.get_output_embeddings().weight
    head.requires_grad_(True)
    monkeypatch.undo()
    assert teacher_forcing.head_weight(hm.model) is None
    head.requires_grad_(False)
    assert teacher_forcing.head_weight(hm.model) is head


@pytest.mark.slow
def test_lean_decode_step_decodes_what_the_model_does(embedded, monkeypatch):
    """bf16 on CPU the decoder's one-token steps run LeanDecodeStep: the same tokens, log-probs and gate values,
    bit for bit, as the model's own forward, with ragged (left-padded) prompts and a row leaving early; on a
    LoRA model only once folded_lora has folded the adapters (a training rollout), never in fp32."""
    import dataclasses

    from hrpo.config import RolloutConfig
    from hrpo.cpu_precision import folded_lora
    from hrpo.lean_decode import LeanDecodeStep
    from hrpo.rollout import Decoder
    assert LeanDecodeStep.build(embedded.model) is None                      # fp32: MKL rounds wider matrices apart
    hm = lora_model("bfloat16", spec="default")
    assert LeanDecodeStep.build(hm.model) is None                            # live adapters: not the model's path
    prompts = ["What is 12 + 7?", "Janet has 3 apples and buys 5 more. How many apples does she have?",
               [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]] * 2
    cfg = RolloutConfig(max_new_tokens=20, temperature=1.0, top_k=50, seed=3)
    with torch.no_grad(), folded_lora(hm.model):
        assert LeanDecodeStep.build(hm.model) is not None
        hm = dataclasses.replace(hm, eos_ids=frozenset({Decoder(hm, prompts, cfg).run()[1].token_ids[5]}))
        lean = Decoder(hm, prompts, cfg).run()
        monkeypatch.setattr(LeanDecodeStep, "build", classmethod(lambda cls, model: None))
        plain = Decoder(hm, prompts, cfg).run()
    assert lean[1].finish == "eos" and len(lean[1].token_ids) <= 6
    for a, b in zip(lean, plain, strict=True):
        assert a.token_ids == b.token_ids and a.finish == b.finish
        assert ([(s.logprob, s.gate_a, s.entropy) for s in a.steps]
                == [(s.logprob, s.gate_a, s.entropy) for s in b.steps])
