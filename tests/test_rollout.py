"""The hybrid decoder on the real embedded model: plain decoding equals generate(), the KV cache
equals teacher forcing, batching equals single rows, and the answer marker is found exactly."""
import pytest
import torch

from hrpo.config import RolloutConfig
from hrpo.rollout import Decoder, extract_answer, rollout
from hrpo.sampling import latent_embedding
from hrpo.teacher_forcing import completion_logprobs, pack

PROMPTS = ["What is 12 + 7?",
           "Janet has 3 apples and buys 5 more. How many apples does she have?",
           "¿Cuánto es 4 por 6?",
           "小明有5个苹果，又买了3个。他现在有几个苹果？",
           "Сколько будет 9 минус 4?"]


@pytest.mark.slow
@pytest.mark.parametrize("prompt", PROMPTS)
def test_plain_greedy_equals_transformers_generate(embedded, prompt):
    ids = embedded.encode(prompt)
    trace = rollout(embedded, [ids], RolloutConfig(max_new_tokens=32, greedy=True, hybrid=False, stop="eos"))[0]
    out = embedded.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                  max_new_tokens=32, do_sample=False)
    assert trace.token_ids == out[0, len(ids):].tolist()
    assert all(s.gate_a == 1.0 and s.hidden_ratio == 0.0 and not s.thinking for s in trace.steps)


@pytest.mark.slow
def test_kv_cache_decoding_equals_teacher_forcing(embedded):
    cfg = RolloutConfig(max_new_tokens=40, temperature=0.5, top_k=50, seed=3)
    traces = rollout(embedded, PROMPTS[:3], cfg, keep_latents=True)
    assert all(t.latents is not None and t.latents.shape == (len(t.token_ids), 576) for t in traces)
    batch = pack(traces, embedded.pad_id, embedded.device)
    E = embedded.embeddings
    with torch.no_grad():
        lp = completion_logprobs(embedded.model, E, batch, cfg.top_k, cfg.temperature, gate=embedded.gate)
        plain = completion_logprobs(embedded.model, E, batch, cfg.top_k, cfg.temperature, gate=None)
    drift = (lp - batch.logprobs)[batch.valid].abs().max().item()
    assert drift < 1e-4, drift
    assert batch.thinking.any()
    # the rebuilt mixed inputs matter: plain token embeddings give other log-probs
    assert (plain - batch.logprobs)[batch.valid].abs().max().item() > 10 * max(drift, 1e-5)


@pytest.mark.slow
def test_batched_rows_equal_rows_decoded_alone(embedded):
    cfg = RolloutConfig(max_new_tokens=24, greedy=True)
    together = rollout(embedded, PROMPTS, cfg)
    for prompt, t in zip(PROMPTS, together):
        alone = rollout(embedded, [prompt], cfg)[0]
        assert alone.token_ids == t.token_ids
        assert [s.thinking for s in alone.steps] == [s.thinking for s in t.steps]
        assert max(abs(x.gate_a - y.gate_a) for x, y in zip(alone.steps, t.steps)) < 1e-5


@pytest.mark.slow
def test_repeated_prompts_decode_like_distinct_ones(embedded):
    """The prefill computes a repeated prompt once and shares its cache: each copy still decodes as alone."""
    cfg = RolloutConfig(max_new_tokens=24, greedy=True)
    rows = [PROMPTS[0], PROMPTS[1], PROMPTS[0], PROMPTS[1], PROMPTS[0]]
    together = rollout(embedded, rows, cfg)
    assert together[0].token_ids == together[2].token_ids == together[4].token_ids
    for r, t in enumerate(together[:2]):
        alone = rollout(embedded, [rows[r]], cfg)[0]
        assert t.token_ids == alone.token_ids
        assert [s.logprob for s in t.steps] == pytest.approx([s.logprob for s in alone.steps], abs=1e-4)


@pytest.mark.slow
def test_finished_rows_leave_the_batch_without_changing_the_others(embedded, monkeypatch):
    """Sampled, hybrid: once a row writes EOS later steps compute only the rows still running, and those
    sample the same tokens (the same draws) as when nothing finishes early."""
    import dataclasses
    cfg = RolloutConfig(max_new_tokens=24, temperature=1.0, top_k=50, seed=4)
    endless = dataclasses.replace(embedded, eos_ids=frozenset())
    free = rollout(endless, PROMPTS[:4], cfg)
    stop = dataclasses.replace(embedded, eos_ids=frozenset({free[1].token_ids[3], free[2].token_ids[9]}))
    widths = []
    forward = Decoder._forward
    monkeypatch.setattr(Decoder, "_forward", lambda self, e, *a: widths.append(len(e)) or forward(self, e, *a))
    ended = Decoder(stop, PROMPTS[:4], cfg).run()
    n1, n2 = len(ended[1].token_ids), len(ended[2].token_ids)
    assert n1 <= 4 and n2 <= 10 and ended[1].finish == ended[2].finish == "eos"
    assert widths[0] == 4 and widths[-1] == 2 and widths == sorted(widths, reverse=True)
    assert sum(widths) == sum(len(t.token_ids) for t in ended) - 4          # a row's last token is never fed
    for a, b in zip(ended, free):
        n = len(a.token_ids)
        assert a.token_ids == b.token_ids[:n] and a.thinking_mask == b.thinking_mask[:n]
        assert [s.logprob for s in a.steps] == pytest.approx([s.logprob for s in b.steps[:n]], abs=1e-4)


def test_the_gate_sees_the_whole_batch_after_rows_leave(embedded):
    """on_all_rows: the gate's values for a few rows are those it gives them within the whole batch (MKL's
    fp32 GEMM rounds some small row counts differently, and a bf16 rollout turned that into log-prob drift)."""
    from hrpo.rollout import on_all_rows
    g = torch.Generator().manual_seed(0)
    e, h = torch.randn(32, 576, generator=g), torch.randn(32, 576, generator=g)
    full = embedded.gate(e, h)
    for rows in ([5], [3, 17, 30], list(range(0, 32, 3))):
        rows = torch.tensor(rows)
        got = on_all_rows(embedded.gate, (e[rows], h[rows]), rows, 32)
        assert all(torch.equal(x, y[rows]) for x, y in zip(got, full))


def test_streaming_yields_the_steps_of_the_final_traces(embedded):
    dec = Decoder(embedded, PROMPTS[:2], RolloutConfig(max_new_tokens=12, seed=1))
    seen = {0: [], 1: []}
    for events in dec.steps():
        for row, step in events:
            seen[row].append(step)
    assert [s for s in seen[0]] == dec.traces[0].steps and seen[1] == dec.traces[1].steps
    assert dec.tokens_per_s > 0


def test_topk_latent_gathers_rows_like_the_dense_product():
    torch.manual_seed(0)
    E, logits = torch.randn(100, 8), torch.randn(2, 100)
    vals, idx = logits.topk(5, dim=-1)
    probs = torch.softmax(vals / 0.5, dim=-1)
    dense_p = torch.zeros(2, 100).scatter(1, idx, probs)
    want = dense_p @ E / dense_p.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(latent_embedding(probs, idx, E), want)
    torch.testing.assert_close(latent_embedding(dense_p, None, E), want)


@pytest.mark.slow
def test_forcing_a_to_one_reproduces_plain_decoding(embedded):
    cfg = RolloutConfig(max_new_tokens=20, greedy=True)
    forced = rollout(embedded, PROMPTS[:2], cfg, force_a=lambda t: 1.0)
    plain = rollout(embedded, PROMPTS[:2], RolloutConfig(max_new_tokens=20, greedy=True, hybrid=False))
    for f, p in zip(forced, plain):
        assert f.token_ids == p.token_ids
        assert [s.logprob for s in f.steps] == pytest.approx([s.logprob for s in p.steps], abs=1e-5)


# --- the answer marker -------------------------------------------------------------------------

def script_logits(hm, tokens: list[int]):
    """Steer the real model's logits so that it writes `tokens` (a hook on the LM head)."""
    calls = {"n": 0}

    def hook(_module, _inputs, logits):
        logits = logits.clone()
        logits[:, -1, tokens[min(calls["n"], len(tokens) - 1)]] += 1e4
        calls["n"] += 1
        return logits
    return hm.model.lm_head.register_forward_hook(hook)


def ids_of(hm, *pieces):
    return [hm.tokenizer.convert_tokens_to_ids(hm.tokenizer.tokenize(p))[0] for p in pieces]


@pytest.mark.parametrize("pieces,marker_at", [
    (["The", " answer", " #", "##", "#", "5", "."], 4),      # ' #' '##' '#'
    (["So", "5", "#", "#", "##", "5"], 4),                  # '#' '#' '##'
    (["x", "###", "#", "5"], 2),                             # '###' '#'
    (["x", "####", "5"], 1),                                 # whole marker
])
def test_marker_split_over_tokens(tiny, pieces, marker_at):
    script = ids_of(tiny, *pieces)
    handle = script_logits(tiny, script)
    try:
        trace = rollout(tiny, ["hi"], RolloutConfig(max_new_tokens=len(script), greedy=True))[0]
    finally:
        handle.remove()
    assert trace.token_ids == script
    assert [s.thinking for s in trace.steps] == [i < marker_at for i in range(len(script))]
    assert trace.answer == extract_answer(trace.text) and trace.answer.startswith("5")


def test_marker_in_the_prompt_only_does_not_stop_thinking(tiny):
    script = ids_of(tiny, "The", " answer", " is")
    handle = script_logits(tiny, script)
    try:
        trace = rollout(tiny, ["Reply like: reasoning #### 42"], RolloutConfig(max_new_tokens=3, greedy=True))[0]
    finally:
        handle.remove()
    assert "####" in trace.prompt
    assert all(s.thinking for s in trace.steps) and trace.answer is None


def test_marker_at_the_last_step(tiny):
    script = ids_of(tiny, "Seven", " ##", "##")
    handle = script_logits(tiny, script)
    try:
        trace = rollout(tiny, ["q"], RolloutConfig(max_new_tokens=3, greedy=True))[0]
    finally:
        handle.remove()
    assert [s.thinking for s in trace.steps] == [True, True, False]
    assert trace.finish == "length" and trace.answer == ""


def test_decoder_rejects_bad_prompts(tiny):
    with pytest.raises(ValueError, match="empty"):
        Decoder(tiny, [[]])
    with pytest.raises(ValueError, match="context"):
        Decoder(tiny, ["word " * 3000], RolloutConfig(max_new_tokens=8))
