"""The stop rule and the decoding policy: hrpo/stopping.py's automaton equals a search of the concatenated text,
both decoders stop a row once its answer line is complete (stop="answer") and decode to EOS or the limit under
stop="eos", with the same records; a GRPO checkpoint decodes plain through every decoder.
Run: nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/test_stopping.py"""
import dataclasses
import random

import pytest
import torch

from hrpo.config import ConfigError, RolloutConfig
from hrpo.rollout import Decoder, decoding_config, rollout
from hrpo.static_decoder import StaticDecoder, make_decoder
from hrpo.stopping import MARKER, TABLE, AnswerState, advance, piece_row, text_then_newline

PIECES = ["#", "##", "###", "####", " #", "a#", "#a", "a", " ", "", "#a#", "##b##", "x###", "###y", "\n", " 19",
          "7\n", " \n", "\n\n", "## 5", "#### 3\n", ".", "12", "#a####", "#\n", "\n#", "# #", "#5\n"]

pytestmark = pytest.mark.usefixtures("one_thread", "eager_keeps_every_row")


def reference(text: str) -> tuple[bool, bool]:
    """(marker seen, answer line complete) by searching the text: the rule the automaton implements."""
    if MARKER not in text:
        return False, False
    return True, text_then_newline(text.split(MARKER, 1)[1])


def test_automaton_equals_a_search_of_the_text():
    rng = random.Random(0)
    table = torch.tensor([piece_row(p) for p in PIECES], dtype=torch.long)
    assert table.shape == (len(PIECES), len(TABLE))
    rows, length = 256, 24
    seqs = [[rng.randrange(len(PIECES)) for _ in range(length)] for _ in range(rows)]
    st, alive = AnswerState.zeros(rows, "cpu"), torch.ones(rows, dtype=torch.bool)
    texts = [""] * rows
    lines = 0
    for t in range(length):
        x = torch.tensor([seq[t] for seq in seqs])
        st = advance(table, x, st, alive)
        texts = [text + PIECES[seq[t]] for text, seq in zip(texts, seqs)]
        want = [reference(text) for text in texts]
        assert st.seen.tolist() == [w[0] for w in want]
        assert st.line.tolist() == [w[1] for w in want], t
        lines += sum(w[1] for w in want)
    assert lines > 100                  # answer lines completed many ways


def test_rows_not_alive_keep_their_state():
    table = torch.tensor([piece_row(p) for p in ["####", " 4\n"]], dtype=torch.long)
    st = AnswerState.zeros(2, "cpu")
    st = advance(table, torch.tensor([0, 0]), st, torch.tensor([True, False]))
    assert st.seen.tolist() == [True, False]
    st = advance(table, torch.tensor([1, 1]), st, torch.tensor([True, True]))
    assert st.line.tolist() == [True, False]


def test_stop_rule_is_validated():
    with pytest.raises(ConfigError, match="stop"):
        RolloutConfig(stop="never")
    assert RolloutConfig().stop == "answer"


# plain decoding over the whole vocabulary: the sampled tokens do not depend on their pieces' text (no mixing)
SCRIPT_CFG = RolloutConfig(max_new_tokens=12, temperature=1.0, top_k=0, hybrid=False, seed=5)


def scripted(tiny, script: list[str]):
    """The tiny model with its sampled tokens' pieces replaced so that its completion reads `script` (one piece
    per step), then 'x' pieces: returns (model, prompt)."""
    prompt = "What is 12 + 7?"
    ids = Decoder(tiny, [prompt], dataclasses.replace(SCRIPT_CFG, stop="eos")).run()[0].token_ids
    assert len(set(ids)) == len(ids) == SCRIPT_CFG.max_new_tokens        # 12 draws from 49k tokens
    pieces = {tok: script[i] if i < len(script) else "x" for i, tok in enumerate(ids)}
    return dataclasses.replace(tiny, _pieces=pieces), prompt


@pytest.mark.parametrize("decoder", [Decoder, StaticDecoder])
def test_decoders_stop_at_the_answer_line(tiny, decoder):
    script = ["12", " +", " 7", "\n", "####", " 19", "\n", "13", "####"]
    hm, prompt = scripted(tiny, script)
    answer = decoder(hm, [prompt], SCRIPT_CFG).run()[0]
    assert [s.token for s in answer.steps] == script[:7]
    assert answer.finish == "answer"      # (text and answer decode the real tokens, not the scripted pieces)
    full = decoder(hm, [prompt], dataclasses.replace(SCRIPT_CFG, stop="eos")).run()[0]
    assert len(full.steps) == 12 and full.finish == "length"
    assert [s.token for s in full.steps[:7]] == script[:7]
    assert [(s.token_id, s.logprob) for s in full.steps[:7]] == [(s.token_id, s.logprob) for s in answer.steps]


def test_thinking_ends_with_the_marker(tiny):
    hm, prompt = scripted(tiny, ["a", "b", "##", "##", " 4", "\n"])
    tr = rollout(hm, [prompt], dataclasses.replace(SCRIPT_CFG, hybrid=False))[0]
    assert tr.finish == "answer" and not any(s.thinking for s in tr.steps)
    # hybrid: the same first token (its input is the prompt's), thinking until the token that completes '####'
    first = rollout(hm, [prompt], dataclasses.replace(SCRIPT_CFG, hybrid=True, max_new_tokens=1))[0]
    assert first.token_ids == tr.token_ids[:1] and first.steps[0].thinking


def test_decoders_agree_with_rows_stopping_at_different_steps(tiny):
    prompts = ["What is 12 + 7?", "Count to five.", "Say hello.", "2 + 2 = ?"]
    cfg = RolloutConfig(max_new_tokens=16, temperature=1.0, top_k=0, seed=3)
    base = Decoder(tiny, prompts, dataclasses.replace(cfg, stop="eos")).run()
    rng = random.Random(1)
    pieces = {}
    for tr in base:
        for tok in tr.token_ids:
            pieces.setdefault(tok, rng.choice(["####", " 5", "\n", "a", "b", "#", "##"]))
    hm = dataclasses.replace(tiny, _pieces=pieces)
    eager, static = Decoder(hm, prompts, cfg).run(), StaticDecoder(hm, prompts, cfg).run()
    assert {t.finish for t in eager} >= {"answer"}
    for a, b in zip(eager, static, strict=True):
        assert (a.token_ids, a.finish, a.thinking_mask) == (b.token_ids, b.finish, b.thinking_mask)
        if a.finish == "answer":
            assert reference("".join(s.token for s in a.steps)) == (True, True)
            assert reference("".join(s.token for s in a.steps[:-1]))[1] is False
        assert [s.logprob for s in a.steps] == pytest.approx([s.logprob for s in b.steps], abs=1e-4)


def test_a_grpo_model_decodes_plain_through_every_decoder(tiny):
    grpo = dataclasses.replace(tiny, mode="grpo")
    cfg = RolloutConfig(max_new_tokens=6, greedy=True)
    assert decoding_config(grpo, cfg).hybrid is False and decoding_config(tiny, cfg).hybrid is True
    for traces in (rollout(grpo, ["hi"], cfg), make_decoder(grpo, ["hi"], cfg).run(),
                   StaticDecoder(grpo, ["hi"], cfg).run()):
        assert traces[0].hybrid is False
        assert all(s.hidden_ratio == 0.0 and not s.thinking for s in traces[0].steps)
    assert any(s.thinking for s in rollout(tiny, ["hi"], cfg)[0].steps)
