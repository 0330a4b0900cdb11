"""The static-cache / CUDA-graph decode path (hrpo.static_decoder), run eagerly on CPU: StaticDecoder reproduces
rollout.Decoder step for step (tokens, thinking flags,
gate a, log-probs, effective vocabulary, kept latents), including EOS stops and marker switches, with no
capture attempted on CPU; a trainer step with static rollouts packs the same batch as with eager ones.
The static decoder keeps every row to the end (static shapes), so the eager one is compared with its finished
rows kept too (rollout.MIN_ROWS): dropping them changes the fp32 kernels' row count and so their rounding,
enough to flip near-tied greedy tokens of the tiny random model.
Run: nice -n 10 env OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python -m pytest -q -x tests/test_static_decoder.py"""
import dataclasses

import pytest
import torch

from hrpo import static_decoder
from hrpo.config import RolloutConfig
from hrpo.rollout import Decoder
from hrpo.static_decoder import StaticDecoder
from hrpo.stopping import TABLE, marker_table

PROMPTS = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "What is 12 + 7?",
           "Janet has 3 apples and buys 5 more. How many apples does she have? Answer after ####."]
PIECES = ["#", "##", "###", "####", " #", "a#", "#a", "a", " ", "", "#a#", "##b##", "x###", "###y"]


pytestmark = pytest.mark.usefixtures("one_thread", "eager_keeps_every_row")


def pieced(hm, pieces: dict[int, str]):
    """A HybridModel sharing hm's model and tokenizer whose hm.piece() reads `pieces` first."""
    return dataclasses.replace(hm, _pieces=dict(pieces))


def assert_same(eager, static, hybrid=True):
    for a, b in zip(eager, static, strict=True):
        assert b.token_ids == a.token_ids
        assert b.thinking_mask == a.thinking_mask
        assert (b.finish, b.text, b.answer, b.hybrid) == (a.finish, a.text, a.answer, a.hybrid)
        for s, t in zip(a.steps, b.steps, strict=True):
            assert (t.index, t.token, t.token_id) == (s.index, s.token, s.token_id)
            assert t.gate_a == pytest.approx(s.gate_a, abs=1e-5)
            assert t.hidden_ratio == pytest.approx(s.hidden_ratio, abs=1e-4)
            assert t.logprob == pytest.approx(s.logprob, abs=1e-4)
            assert t.entropy == pytest.approx(s.entropy, abs=1e-4)
            assert t.eff_vocab == pytest.approx(s.eff_vocab, rel=1e-4)
            if not hybrid:
                assert not t.thinking and t.gate_a == 1.0 and t.hidden_ratio == 0.0


def test_marker_table_matches_pieces(tiny):
    table = marker_table(tiny)
    assert table.shape == (tiny.embeddings.shape[0], len(TABLE))
    hash_id = tiny.tokenizer.convert_tokens_to_ids("#")
    assert table[hash_id].tolist() == [0, 1, 1, 1, 1] + [0] * 7


@pytest.mark.parametrize("hybrid", [True, False])
def test_greedy_equals_eager_decoder(tiny, hybrid):
    cfg = RolloutConfig(max_new_tokens=20, greedy=True, hybrid=hybrid)
    assert_same(Decoder(tiny, PROMPTS, cfg).run(), StaticDecoder(tiny, PROMPTS, cfg).run(), hybrid)


@pytest.mark.parametrize("top_k", [20, 0])
def test_sampling_equals_eager_decoder_on_cpu(tiny, top_k):
    # torch.multinomial(p, 1) is argmax p / Exp(1) noise on CPU, so the same seed gives the same tokens
    cfg = RolloutConfig(max_new_tokens=16, temperature=0.7, top_k=top_k, seed=5)
    assert_same(Decoder(tiny, PROMPTS, cfg).run(), StaticDecoder(tiny, PROMPTS, cfg).run())


def test_eos_and_marker_switch_equal_eager(tiny):
    cfg = RolloutConfig(max_new_tokens=24, temperature=1.0, seed=2)   # greedy tiny-random repeats one token
    first = Decoder(tiny, PROMPTS, cfg).run()
    row0, row1 = first[0].token_ids, first[1].token_ids
    # row 1 spells '####' over two tokens ("a##" + "##x") by step 4; a token of row 0 becomes EOS
    marks = {row1[3]: "a##", row1[4]: "##x"} if row1[3] != row1[4] else {row1[4]: "####"}
    eos = row0[6]
    hm = dataclasses.replace(pieced(tiny, marks), eos_ids=frozenset({eos}))
    eager, static = Decoder(hm, PROMPTS, cfg).run(), StaticDecoder(hm, PROMPTS, cfg).run()
    assert_same(eager, static)
    assert static[0].finish == "eos" and static[0].token_ids[-1] == eos and len(static[0].token_ids) <= 7
    assert_consistent(hm, static)
    think = static[1].thinking_mask
    assert not any(think[4:]) and len(think) == cfg.max_new_tokens


def test_sampled_traces_are_valid(tiny):
    cfg = RolloutConfig(max_new_tokens=40, temperature=1.0, top_k=50, seed=11)
    prompts = PROMPTS * 2
    pool = [t.token_ids for t in StaticDecoder(tiny, prompts, cfg).run()]
    # same seed again, now with a sampled token that reads '####' and two sampled tokens that are EOS
    hm = dataclasses.replace(pieced(tiny, {pool[0][3]: "####"}), eos_ids=frozenset({pool[1][10], pool[2][20]}))
    traces = StaticDecoder(hm, prompts, cfg).run()
    assert_consistent(hm, traces, cfg.max_new_tokens)
    assert traces[0].steps[3].token == "####" and not traces[0].thinking_mask[3]
    assert traces[1].finish == traces[2].finish == "eos" and len(traces[1].token_ids) <= 11


def assert_consistent(hm, traces, max_new=None):
    """Stops at the first EOS, and thinking == 'no #### in the pieces so far' (the marker token is plain)."""
    for tr in traces:
        assert 1 <= len(tr.token_ids) == len(tr.steps) <= (max_new or len(tr.steps))
        assert [s.index for s in tr.steps] == list(range(len(tr.steps)))
        ends = [i for i, x in enumerate(tr.token_ids) if x in hm.eos_ids]
        assert ends in ([], [len(tr.token_ids) - 1])
        assert tr.finish == ("eos" if ends else "length")
        text = ""
        for s in tr.steps:
            text += hm.piece(s.token_id)
            assert s.thinking == ("####" not in text)
            assert (s.gate_a < 1.0) == s.thinking and 0.0 <= s.hidden_ratio < 1.0
            assert s.logprob <= 0.0 and s.entropy >= 0.0


def test_no_capture_on_cpu(tiny, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("capture attempted on CPU")
    monkeypatch.setattr(torch.cuda, "graph", boom)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", boom)
    monkeypatch.setattr(torch.cuda, "Stream", boom)
    dec = StaticDecoder(tiny, PROMPTS[:2], RolloutConfig(max_new_tokens=10, greedy=True))
    assert not dec.capture
    traces = dec.run()
    assert not dec.captured and dec.tokens_per_s > 0 and all(len(t.token_ids) == 10 for t in traces)
    with pytest.raises(ValueError, match="CUDA"):
        StaticDecoder(tiny, PROMPTS[:1], RolloutConfig(max_new_tokens=4), capture=True)
    with pytest.raises(ValueError):
        StaticDecoder(tiny, [], RolloutConfig())


@pytest.mark.slow
def test_embedded_greedy_equals_eager(embedded):
    cfg = RolloutConfig(max_new_tokens=16, greedy=True)
    prompts = ["What is 12 + 7?", "Janet has 3 apples and buys 5 more. How many apples does she have?"]
    assert_same(Decoder(embedded, prompts, cfg).run(), StaticDecoder(embedded, prompts, cfg).run())


def ragged(hm, n: int = 4) -> list[list[int]]:
    """n prompts of different lengths (left padding differs per row), chat-templated."""
    qs = ["What is 12 + 7?", "Janet has 3 apples and buys 5 more. How many apples does she have?",
          "2 + 2?", "A train leaves at 3 pm and arrives at 7 pm. How many hours is the trip?"]
    ids = [hm.encode(q) for q in qs[:n]]
    assert len({len(i) for i in ids}) == len(ids)
    return ids


def assert_same_latents(eager, static):
    for a, b in zip(eager, static, strict=True):
        if a.latents is None:
            assert b.latents is None
            continue
        assert b.latents.dtype == torch.float32 and b.latents.shape == a.latents.shape
        assert a.latents.shape[0] == len(a.steps)
        torch.testing.assert_close(b.latents, a.latents, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("greedy", [True, False])
@pytest.mark.parametrize("hybrid", [True, False])
def test_training_rollouts_equal_eager_on_ragged_prompts(tiny, greedy, hybrid):
    cfg = RolloutConfig(max_new_tokens=24, temperature=1.0, greedy=greedy, hybrid=hybrid, seed=3)
    prompts = ragged(tiny)
    first = Decoder(tiny, prompts, cfg).run()
    hm = dataclasses.replace(tiny, eos_ids=frozenset({first[1].token_ids[5]}))      # row 1 stops early
    eager = Decoder(hm, prompts, cfg, keep_latents=True).run()
    static = StaticDecoder(hm, prompts, cfg, keep_latents=True).run()
    assert_same(eager, static, hybrid)
    assert_same_latents(eager, static)
    assert static[1].finish == "eos" and len(static[1].token_ids) <= 6
    assert (static[0].latents is not None) == hybrid
    assert StaticDecoder(hm, prompts, cfg).run()[0].latents is None                  # only when asked for


@pytest.mark.slow
def test_embedded_sampled_training_rollouts_equal_eager(embedded):
    cfg = RolloutConfig(max_new_tokens=16, temperature=0.5, top_k=50, seed=7)
    prompts = ragged(embedded, 3)
    eager = Decoder(embedded, prompts, cfg, keep_latents=True).run()
    static = StaticDecoder(embedded, prompts, cfg, keep_latents=True).run()
    assert_same(eager, static)
    assert_same_latents(eager, static)


def test_static_wanted(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv("HRPO_STATIC_DECODE", raising=False)
    assert static_decoder.static_wanted(cuda) and not static_decoder.static_wanted(cpu)
    assert not static_decoder.static_wanted(cuda, False) and static_decoder.static_wanted(cpu, True)
    for value, on_cpu, on_cuda in (("off", False, False), ("on", True, True), ("auto", False, True)):
        monkeypatch.setenv("HRPO_STATIC_DECODE", value)
        assert (static_decoder.static_wanted(cpu), static_decoder.static_wanted(cuda)) == (on_cpu, on_cuda)
    monkeypatch.setenv("HRPO_STATIC_DECODE", "sometimes")
    with pytest.raises(ValueError, match="HRPO_STATIC_DECODE"):
        static_decoder.static_wanted(cpu)


@pytest.mark.parametrize("mode,dtype", [("hrpo", "float32"), ("grpo", "float32"), ("hrpo", "bfloat16")])
def test_trainer_step_with_static_rollouts_packs_the_same_batch(tmp_path, monkeypatch, mode, dtype):
    """bf16 too: both decoders run the model under cpu_precision.low_precision, as teacher forcing does.  The static
    (CUDA-graph) path never folds the LoRA adapters, so the eager one is compared unfolded too."""
    from hrpo.config import TrainConfig
    from hrpo.trainer import Trainer, problems_for_step
    cfg = TrainConfig(model="tiny-random", mode=mode, group_size=2, batch_prompts=2, max_new_tokens=12, lora_rank=4,
                      lora_alpha=8, temperature=1.0, device="cpu", dtype=dtype, out=str(tmp_path), fold_lora=False,
                      emulated_bf16=True)
    trainer = Trainer(cfg)
    with torch.no_grad():                     # a policy away from its start: LoRA active, a ~ 0.6 (latents matter)
        g = torch.Generator().manual_seed(0)
        for name, p in trainer.hm.model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        trainer.hm.gate.Lambda.fill_(2.0)
    problems = problems_for_step(trainer.task.problems, 0, cfg.batch_prompts, cfg.seed)
    made = []
    monkeypatch.setattr(static_decoder.StaticDecoder, "run", spy(static_decoder.StaticDecoder.run, made))
    batches = {}
    for flag in ("off", "on"):
        monkeypatch.setenv("HRPO_STATIC_DECODE", flag)
        batches[flag], _ = trainer._rollouts(0, 0, problems)
    assert len(made) == 1                                                    # "on" used the static decoder
    a, b = batches["off"], batches["on"]
    for name in ("ids", "mask", "positions", "completion", "valid", "thinking"):
        assert torch.equal(getattr(a["batch"], name), getattr(b["batch"], name)), name
    assert (a["batch"].latents is None) == (b["batch"].latents is None) == (mode == "grpo")
    if mode == "hrpo":
        assert a["batch"].thinking.any()
        torch.testing.assert_close(b["batch"].latents, a["batch"].latents, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(b["batch"].logprobs, a["batch"].logprobs, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(b["ref"], a["ref"], atol=1e-5, rtol=1e-4)
    assert torch.equal(a["adv"], b["adv"])
    m = trainer.train_step(0)                                                # a whole step on static rollouts
    assert len(made) == 2 and m["logprob_drift"] <= 1e-4 and m["rollout_tokens_per_s"] > 0


def spy(fn, calls: list):
    def wrapped(self, *a, **k):
        calls.append(self)
        return fn(self, *a, **k)
    return wrapped
