"""Tasks: arith is deterministic, correct, disjoint and graded by level; GSM8K and all MGSM languages load
from the shared data dir; JSONL (math, QA, multiple choice) skips and counts bad lines; bad specs fail."""
import ast
import json
import operator
import random
import re
import sys

import pytest

from hrpo.tasks import (ARITH_LEVELS, ARITH_SIZES, DEFAULT_ARITH_LEVEL, MGSM_LANGS, Problem, Task, data_root,
                        load_task)

OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def evaluate(expr: str) -> float:
    """Independent evaluator of the + - * / expressions arith records in meta['expr']."""
    def walk(node):
        if isinstance(node, ast.BinOp):
            return OPS[type(node.op)](walk(node.left), walk(node.right))
        assert isinstance(node, ast.Constant) and isinstance(node.value, int), ast.dump(node)
        return node.value
    return walk(ast.parse(expr, mode="eval").body)


@pytest.fixture(scope="module")
def arith_splits():
    return {level: {split: load_task(f"arith:{level}", split) for split in ARITH_SIZES} for level in ARITH_LEVELS}


def test_arith_is_deterministic():
    a, b = load_task("arith:3", limit=50, seed=7), load_task("arith:3", limit=50, seed=7)
    assert [p.question for p in a.problems] == [p.question for p in b.problems]
    assert a.problems == b.problems
    assert load_task("arith:3", limit=50, seed=8).problems != a.problems
    # the held-out split is fixed whatever the seed
    assert load_task("arith:3", "test", limit=20, seed=1).problems == load_task("arith:3", "test", limit=20).problems


@pytest.mark.parametrize("level", list(ARITH_LEVELS))
def test_arith_splits_are_disjoint_full_and_correct(arith_splits, level):
    train, test = arith_splits[level]["train"], arith_splits[level]["test"]
    assert (len(train), len(test)) == (ARITH_SIZES["train"], ARITH_SIZES["test"])
    train_q, test_q = {p.question for p in train.problems}, {p.question for p in test.problems}
    assert len(train_q) == len(train) and len(test_q) == len(test)
    assert not train_q & test_q
    for p in train.problems[:300] + test.problems:
        value = evaluate(p.meta["expr"])
        assert value == int(value) >= 0 and p.answer == str(int(value)), p
        assert re.findall(r"\d+", p.meta["expr"]) == re.findall(r"\d+", p.question), p
        assert p.kind == "math" and "####" in p.question


def test_arith_levels_grow_in_difficulty(arith_splits):
    def stats(level):
        probs = arith_splits[level]["test"].problems
        steps = sum(len(p.meta["ops"]) for p in probs) / len(probs)
        biggest = sum(max(map(int, re.findall(r"\d+", p.meta["expr"]))) for p in probs) / len(probs)
        return steps, biggest
    rows = [stats(level) for level in sorted(ARITH_LEVELS)]
    for (steps_a, big_a), (steps_b, big_b) in zip(rows, rows[1:]):
        assert steps_b >= steps_a and big_b > 1.5 * big_a
    assert load_task("arith").name == f"arith:{DEFAULT_ARITH_LEVEL}"
    assert {p.meta["level"] for p in load_task("arith:5", limit=10).problems} == {5}


def test_sample_without_replacement_within_an_epoch():
    task = Task("t", "math", [Problem(str(i), str(i)) for i in range(10)])
    first = task.sample(10, random.Random(0))
    assert sorted(p.question for p in first) == [str(i) for i in range(10)]
    assert sorted(p.question for p in task.sample(10, random.Random(1))) == [str(i) for i in range(10)]
    r1, r2 = Task("t", "math", list(task.problems)), Task("t", "math", list(task.problems))
    rng1, rng2 = random.Random(3), random.Random(3)
    assert [r1.sample(3, rng1) for _ in range(5)] == [r2.sample(3, rng2) for _ in range(5)]
    batches = Task("t", "math", list(task.problems)).batches(5, seed=1)
    epoch = next(batches) + next(batches)
    assert len({p.question for p in epoch}) == 10


@pytest.mark.parametrize("split, count", [("train", 7473), ("test", 1319)])
def test_gsm8k_loads_with_numeric_answers(split, count):
    task = load_task("gsm8k", split)
    assert (task.name, task.kind, len(task), task.skipped) == ("gsm8k", "math", count, 0)
    assert all(re.fullmatch(r"-?\d+", p.answer) for p in task.problems)
    if split == "test":
        assert task.problems[0].answer == "18" and task.problems[0].question.startswith("Janet")
    assert len(load_task("gsm8k", split, limit=5)) == 5


def test_gsm8k_data_dir_override_and_missing(tmp_path, monkeypatch):
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text(json.dumps({"question": "q", "answer": "x #### 1,234"}) + "\n")
    assert load_task("gsm8k", "test", data_dir=str(tmp_path)).problems == [Problem("q", "1234")]
    monkeypatch.setenv("HRPO_DATA", str(tmp_path))
    assert load_task("gsm8k", "test").problems == [Problem("q", "1234")]
    monkeypatch.setitem(sys.modules, "datasets", None)          # `import datasets` fails: no fallback
    with pytest.raises(ValueError, match="GSM8K data not found"):
        load_task("gsm8k", "train")


@pytest.mark.parametrize("lang", MGSM_LANGS)
def test_mgsm_languages_load(lang):
    task = load_task("mgsm:" + lang, "test")
    assert (task.name, task.kind, len(task), task.skipped) == (f"mgsm:{lang}", "math", 250, 0)
    assert all(re.fullmatch(r"-?\d+", p.answer) for p in task.problems)
    assert task.problems[0].answer == "18"
    assert [p.answer for p in load_task("mgsm:" + lang, "train").problems] == [p.answer for p in task.problems]


def test_mgsm_answers_match_english_and_drop_commas():
    en, zh = load_task("mgsm:en"), load_task("mgsm:zh")
    assert [p.answer for p in en.problems] == [p.answer for p in zh.problems]
    assert "114200" in {p.answer for p in en.problems}


def write_lines(path, lines: list) -> str:
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode() for x in lines) + b"\n")
    return f"jsonl:{path}"


def test_jsonl_skips_and_counts_bad_lines(tmp_path):
    spec = write_lines(tmp_path / "m.jsonl", [
        json.dumps({"question": "1+1?", "answer": "2"}),
        b'{"question": "bad \xff byte", "answer": "3"}',
        "{not json",
        json.dumps({"question": "no answer"}),
        "",
        json.dumps({"question": "sum?", "answer": 7}),
        json.dumps({"question": "gsm style", "answer": "work #### 1,000"}),
        json.dumps(["a", "list"]),
    ])
    task = load_task(spec)
    assert (task.kind, len(task), task.skipped) == ("math", 3, 4)
    assert [p.answer for p in task.problems] == ["2", "7", "1000"]
    assert "line 2" in task.message and "UTF-8" in task.message
    assert len(load_task(spec, limit=2)) == 2


def test_jsonl_with_no_valid_line_names_the_line(tmp_path):
    with pytest.raises(ValueError, match="first bad line 1"):
        load_task(write_lines(tmp_path / "bad.jsonl", ["{oops", b"\xfe\xff"]))
    with pytest.raises(ValueError, match="empty"):
        load_task(write_lines(tmp_path / "empty.jsonl", [""]))
    with pytest.raises(ValueError, match="no such file"):
        load_task(f"jsonl:{tmp_path / 'missing.jsonl'}")


def test_jsonl_multiple_choice_and_qa(tmp_path):
    spec = write_lines(tmp_path / "mc.jsonl", [
        json.dumps({"question": "Sky colour?", "choices": ["red", "blue", "green"], "answer": "b"}),
        json.dumps({"question": "Bad letter", "choices": ["x", "y"], "answer": "C"}),
        json.dumps({"question": "One choice", "choices": ["x"], "answer": "A"}),
    ])
    task = load_task(spec)
    assert (task.kind, len(task), task.skipped) == ("choice", 1, 2)
    assert task.problems[0] == Problem("Sky colour?\nA. red\nB. blue\nC. green", "B", "choice")
    qa = load_task(write_lines(tmp_path / "qa.jsonl", [
        json.dumps({"question": "Capital of France?", "answer": ["Paris", "paris, France"], "kind": "qa"}),
        json.dumps({"question": "Longest river?", "answer": "Nile", "kind": "qa"}),
        json.dumps({"question": "2+2?", "answer": "4"}),
    ]))
    assert (qa.kind, [p.answer for p in qa.problems], qa.skipped) == ("qa", ["Paris|paris, France", "Nile"], 1)


@pytest.mark.parametrize("spec, kw, match", [
    ("nope", {}, "unknown task 'nope'.*arith.*gsm8k.*mgsm.*jsonl:PATH"),
    ("jsonl:", {}, "unknown task"),
    ("arith:9", {}, "unknown arith level '9'; use one of 1, 2, 3, 4, 5"),
    ("mgsm:xx", {}, "unknown MGSM language 'xx'; known: bn, de, en"),
    ("arith", {"split": "dev"}, "unknown split 'dev'"),
    ("arith", {"limit": 0}, "limit must be >= 1"),
])
def test_unknown_specs_fail_clearly(spec, kw, match):
    with pytest.raises(ValueError, match=match):
        load_task(spec, **kw)


def test_data_root_points_beside_the_repo(monkeypatch):
    monkeypatch.delenv("HRPO_DATA", raising=False)
    assert (data_root() / "gsm8k" / "test.jsonl").is_file(), f"shared data missing under {data_root()}"
    assert str(data_root("/x")) == "/x"
