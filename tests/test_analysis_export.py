"""analysis.export: traces to JSON / long CSV and back."""
import json

import pytest
import torch

from analysis.export import traces_frame, traces_from_csv, traces_from_json, traces_to_csv, traces_to_json
from hrpo.config import RolloutConfig
from hrpo.rollout import Step, Trace, rollout


def handmade() -> list[Trace]:
    odd = ["a,b", 'say "hi"', "line\nbreak", "", " ", "数学", "NaN", "None", "\t"]
    steps = [Step(i, tok, 100 + i, i % 2 == 0, 0.1 + i / 7, 1 / 3, -i / 9, 0.123456789012345678)
             for i, tok in enumerate(odd)]
    return [Trace(prompt="p, \"q\"\nr", prompt_ids=[1, 2, 3], token_ids=[s.token_id for s in steps], steps=steps,
                  text="".join(odd), answer="", finish="eos", hybrid=True),
            Trace(prompt="empty", prompt_ids=[4], answer=None, finish="length", hybrid=False)]


def test_csv_round_trip_is_exact():
    traces = handmade()
    back = traces_from_csv(traces_to_csv(traces))
    assert len(back) == 2
    for a, b in zip(traces, back):
        assert b.steps == a.steps and b.token_ids == a.token_ids and b.prompt_ids == a.prompt_ids
        assert (b.prompt, b.text, b.answer, b.finish, b.hybrid) == (a.prompt, a.text, a.answer, a.finish, a.hybrid)
    assert back[0].answer == "" and back[1].answer is None and back[1].steps == []


def test_a_lone_carriage_return_stays_in_its_row():
    """A token that is a lone CR (or holds one) is quoted, so any CSV reader sees one row per step."""
    import csv
    import io
    steps = [Step(i, tok, 7 + i, True, 0.5, 0.1, -0.2, 1.0) for i, tok in enumerate(["\r", "a\rb", "\r\n", "x"])]
    trace = Trace(prompt="p\rq", prompt_ids=[1], token_ids=[s.token_id for s in steps], steps=steps,
                  text="\ra\rb\r\nx", answer=None, finish="eos", hybrid=True)
    text = traces_to_csv([trace])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 1 + 4 and {len(r) for r in rows} == {len(rows[0])}
    back = traces_from_csv(text)[0]
    assert back.steps == steps and back.prompt == trace.prompt and back.text == trace.text


def test_csv_is_one_row_per_step():
    df = traces_frame(handmade())
    assert len(df) == 9 + 1 and {"trace", "index", "token", "gate_a", "hidden_ratio", "thinking"} <= set(df.columns)


@pytest.mark.slow
@pytest.mark.parametrize("keep", [{}, {"keep_latents": True}, {"keep_states": True}])
def test_json_round_trip_real_traces(tiny, keep):
    traces = rollout(tiny, ["What is 2 + 3?", "Hi"], RolloutConfig(max_new_tokens=5, seed=2), **keep)
    s = traces_to_json(traces)
    assert isinstance(json.loads(s), list)
    back = traces_from_json(s)
    for a, b in zip(traces, back):
        assert b.steps == a.steps and b.token_ids == a.token_ids and b.text == a.text and b.answer == a.answer
        for name in ("latents", "inputs", "top_ids", "top_probs"):
            ta, tb = getattr(a, name), getattr(b, name)
            assert (ta is None) == (tb is None)
            if ta is not None:
                assert tb.dtype == ta.dtype and torch.allclose(ta, tb)
        csv_back = traces_from_csv(traces_to_csv([a]))[0]
        assert csv_back.steps == a.steps and csv_back.latents is None


@pytest.mark.parametrize("bad, exc", [('{"a": 1}', ValueError), ("a,b\n1,2\n", ValueError)])
def test_bad_inputs(bad, exc):
    with pytest.raises(exc):
        (traces_from_json if bad.startswith("{") else traces_from_csv)(bad)


def test_effective_vocabulary_in_steps_csv_json_and_generate_json(tiny):
    """eff_vocab = 1 / sum(p^2): between 1 and k, exact against the kept top-k probabilities."""
    from hrpo import trace_file
    from hrpo.rollout import Decoder
    dec = Decoder(tiny, ["What is 2 + 3?"], RolloutConfig(max_new_tokens=6, top_k=5, seed=1), keep_states=True)
    tr = dec.run()[0]
    for s, p in zip(tr.steps, tr.top_probs):
        assert 1.0 <= s.eff_vocab <= 5.0 + 1e-4
        assert s.eff_vocab == pytest.approx(1.0 / float((p.double() ** 2).sum()), rel=1e-4)
    assert "eff_vocab" in traces_frame([tr]).columns
    assert json.loads(traces_to_json([tr]))[0]["steps"][0]["eff_vocab"] == tr.steps[0].eff_vocab
    saved = json.loads(trace_file.dump(trace_file.of_decode(tiny, "tiny-random", dec, "q")))
    assert [st["eff_vocab"] for st in saved["steps"]] == [s.eff_vocab for s in tr.steps]


def test_csv_without_eff_vocab_still_reads():
    old = traces_frame(handmade()).drop(columns=["eff_vocab"]).to_csv(index=False)
    back = traces_from_csv(old)
    assert [s.eff_vocab for s in back[0].steps] == [0.0] * 9
