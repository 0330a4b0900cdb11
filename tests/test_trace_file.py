"""The trace file (hrpo/trace_file.py) and the shared-trace store (studio/trace_store.py): export -> load -> export
is the same bytes, every kind of bad file is one line, the store is content-addressed and bounded."""
import json

import pytest
import torch

from hrpo import cli, trace_file
from hrpo.config import RolloutConfig
from hrpo.rollout import Decoder
from studio.trace_store import TraceStore


@pytest.fixture(scope="module")
def saved(tiny):
    """(TraceFile, its text) of a real hybrid decode with every tensor kept."""
    dec = Decoder(tiny, ["What is 2 + 3?"], RolloutConfig(max_new_tokens=12, seed=1), keep_states=True)
    dec.run()
    run = trace_file.of_decode(tiny, "tiny-random", dec, "What is 2 + 3?")
    return run, trace_file.dump(run)


def test_export_load_export_is_the_same_bytes(saved):
    run, text = saved
    back = trace_file.loads(text)
    assert trace_file.dump(back) == text
    assert back.model == "tiny-random" and back.decoding == run.decoding and back.question == "What is 2 + 3?"
    assert back.trace.steps == run.trace.steps and back.trace.token_ids == run.trace.token_ids
    assert (back.trace.text, back.trace.answer, back.trace.finish) == (run.trace.text, run.trace.answer,
                                                                      run.trace.finish)
    assert back.nearest == run.nearest and any(back.nearest) and back.shown == run.shown
    for name in ("latents", "inputs", "top_probs"):                        # float16 in the file
        assert torch.allclose(getattr(back.trace, name), getattr(run.trace, name), rtol=1e-3, atol=1e-3)
    assert torch.equal(back.trace.top_ids, run.trace.top_ids)
    obj = json.loads(text)
    assert list(obj)[:3] == ["format", "version", "model"] and obj["version"] == trace_file.VERSION


def edit(text: str, change) -> str:
    obj = json.loads(text)
    change(obj)
    return json.dumps(obj, ensure_ascii=False)


BAD = {
    "not JSON": (lambda t: t[:100], "not JSON"),
    "a list": (lambda t: "[1, 2]", "not an hrpo-trace file"),
    "version 2": (lambda t: edit(t, lambda o: o.update(version=2)), "this trace file is version 2; this app reads "
                                                                     "version 1"),
    "a field missing": (lambda t: edit(t, lambda o: o.pop("steps")), "its fields must be"),
    "a step dropped": (lambda t: edit(t, lambda o: o["steps"].pop()), "one step per token id"),
    "steps reordered": (lambda t: edit(t, lambda o: o["steps"].reverse()), "step 0 does not match"),
    "a token id changed": (lambda t: edit(t, lambda o: o["token_ids"].__setitem__(0, o["token_ids"][0] + 1)),
                           "step 0 does not match"),
    "NaN gate": (lambda t: t.replace('"gate_a":', '"gate_a":NaN,"x":', 1), "NaN is not a JSON number"),
    "lone surrogate": (lambda t: edit(t, lambda o: o["steps"][0].update(token="\ud800")), "lone surrogate"),
    "text too long": (lambda t: edit(t, lambda o: o.update(question="x" * (trace_file.MAX_TEXT + 1))),
                      "question is longer than"),
    "bad decoding": (lambda t: edit(t, lambda o: o["decoding"].update(temperature=-1)), "decoding: temperature"),
    "tensor shape": (lambda t: edit(t, lambda o: o["tensors"]["latents"].update(shape=[1, 64])),
                     "one row per step"),
    "tensor data": (lambda t: edit(t, lambda o: o["tensors"]["latents"].update(b64="AAAA")), "its data is not"),
    "unknown tensor": (lambda t: edit(t, lambda o: o["tensors"].update(x={})), "tensors must be an object of"),
    "bad finish": (lambda t: edit(t, lambda o: o.update(finish="<b>x</b>")), "finish must be"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_trace_file_is_one_line(saved, case):
    change, says = BAD[case]
    with pytest.raises(trace_file.TraceFileError) as err:
        trace_file.loads(change(saved[1]))
    assert says in str(err.value) and "\n" not in str(err.value)


def test_files_are_bounded_and_checked_before_they_are_read(saved, tmp_path, monkeypatch):
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (trace_file.MAX_BYTES + 1))
    with pytest.raises(trace_file.TraceFileError, match="larger than 16 MB"):
        trace_file.read(big)
    (tmp_path / "latin1.json").write_bytes("é".encode("latin-1"))
    with pytest.raises(trace_file.TraceFileError, match="not UTF-8"):
        trace_file.read(tmp_path / "latin1.json")
    with pytest.raises(trace_file.TraceFileError, match="is not a file"):
        trace_file.read(tmp_path)
    good = tmp_path / "t.json"
    good.write_text(saved[1], encoding="utf-8")
    assert trace_file.dump(trace_file.read(good)) == saved[1]


def test_the_store_is_content_addressed_bounded_and_closed(saved, tmp_path):
    store = TraceStore(tmp_path / "store", max_kept=2)
    key = store.put(saved[1])
    assert store.put(saved[1]) == key and len(key) == 32                  # the same trace: one file, one key
    assert trace_file.dump(store.get(key)) == saved[1]
    for bad in ("../" + key, key.upper(), key[:-1], "a" * 31 + "g", "", None):
        with pytest.raises(ValueError, match="names no shared trace"):
            store.get(bad)
    others = [store.put(edit(saved[1], lambda o, i=i: o.update(question=f"q{i}"))) for i in range(2)]
    assert sorted(p.stem for p in (tmp_path / "store").glob("*.json")) == sorted(others)   # the oldest dropped
    with pytest.raises(ValueError, match="no longer kept here"):
        store.get(key)
    with pytest.raises(ValueError, match="cannot be shared"):
        store.put("x" * (trace_file.MAX_BYTES + 1))


def test_generate_save_and_json_write_the_trace_file(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert cli.main(["generate", "--model", "tiny-random", "--prompt", "What is 2 + 3?", "--max-new-tokens", "6",
                     "--seed", "1", "--save", str(out), "--json"]) == 0
    printed = capsys.readouterr().out.strip()
    run = trace_file.read(out)
    assert printed == out.read_text(encoding="utf-8") and len(run.trace.steps) == 6
    assert run.question == "What is 2 + 3?" and run.trace.latents is not None and run.trace.inputs is not None
    assert cli.main(["generate", "--model", "tiny-random", "--prompt", "hi", "--save", str(tmp_path)]) == 2
    assert "name a file in an existing directory" in capsys.readouterr().err
