"""Tasks: arith is deterministic, correct, disjoint and graded by level; GSM8K and all MGSM languages load
from the repository's data/ (gzipped, matching data/README.md); JSONL (math, QA, multiple choice, gzipped)
skips and counts bad lines; bad specs fail.  Loading from a clone: tests/test_standalone.py."""
import ast
import gzip
import hashlib
import json
import operator
import random
import re
import sys
from pathlib import Path

import pytest

import hrpo.tasks
from hrpo.tasks import ARITH_LEVELS, ARITH_SIZES, DEFAULT_ARITH_LEVEL, MGSM_LANGS, Problem, Task, data_root, load_task

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def repository_data(monkeypatch):
    """Every test reads the repository's own data/ unless it sets $HRPO_DATA or data_dir itself."""
    monkeypatch.delenv("HRPO_DATA", raising=False)

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


def test_data_root_is_the_repositorys_own_data_folder(monkeypatch, tmp_path):
    assert data_root() == hrpo.tasks.REPO_DATA == REPO / "data"
    for name in ("gsm8k/train.jsonl.gz", "gsm8k/test.jsonl.gz", "gsm8k/LICENSE", "mgsm/LICENSE", "README.md"):
        assert (data_root() / name).is_file(), f"{name} missing under {data_root()}"
    assert str(data_root("/x")) == "/x"
    monkeypatch.setenv("HRPO_DATA", str(tmp_path))
    assert data_root() == tmp_path and str(data_root("/x")) == "/x"


def readme_rows() -> dict[str, tuple[int, str]]:
    """{file: (lines, sha256 of the uncompressed content)} from data/README.md's table."""
    rows = re.findall(r"^\| `([^`]+\.gz)` \| (\d+) \|[^|]*\|[^|]*\| `([0-9a-f]{64})` \|$",
                      (REPO / "data" / "README.md").read_text(encoding="utf-8"), re.M)
    return {name: (int(lines), sha) for name, lines, sha in rows}


def test_shipped_data_matches_its_readme():
    rows = readme_rows()
    shipped = {str(p.relative_to(REPO / "data")) for p in (REPO / "data").glob("*/*.gz")}
    assert set(rows) == shipped == {"gsm8k/train.jsonl.gz", "gsm8k/test.jsonl.gz"} | {
        f"mgsm/mgsm_{lang}.tsv.gz" for lang in MGSM_LANGS}
    for name, (lines, sha) in rows.items():
        raw = gzip.decompress((REPO / "data" / name).read_bytes())
        assert (raw.count(b"\n"), hashlib.sha256(raw).hexdigest()) == (lines, sha), name
    licences = {d: (REPO / "data" / d / "LICENSE").read_text(encoding="utf-8") for d in ("gsm8k", "mgsm")}
    assert licences["gsm8k"].startswith("MIT License") and "OpenAI" in licences["gsm8k"]
    assert "Creative Commons Attribution 4.0" in licences["mgsm"]


def test_plain_files_win_over_gz_and_gz_reads_like_plain(tmp_path):
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "mgsm").mkdir()
    line = json.dumps({"question": "q", "answer": "x #### 1,234"}) + "\n"
    (tmp_path / "gsm8k" / "test.jsonl.gz").write_bytes(gzip.compress(line.encode()))
    assert load_task("gsm8k", "test", data_dir=str(tmp_path)).problems == [Problem("q", "1234")]
    (tmp_path / "gsm8k" / "test.jsonl").write_text(line.replace("1,234", "5"))
    assert load_task("gsm8k", "test", data_dir=str(tmp_path)).problems == [Problem("q", "5")]
    (tmp_path / "mgsm" / "mgsm_de.tsv.gz").write_bytes(gzip.compress(b"Frage eins\t7\nkaputt\nFrage zwei\t1,000\n"))
    task = load_task("mgsm:de", data_dir=str(tmp_path))
    assert ([p.answer for p in task.problems], task.skipped) == (["7", "1000"], 1)
    with pytest.raises(ValueError, match=r"MGSM data not found: no .*mgsm_fr\.tsv \(or \.gz\)"):
        load_task("mgsm:fr", data_dir=str(tmp_path))


def test_gzipped_jsonl_path_and_damaged_gz(tmp_path):
    good = tmp_path / "t.jsonl.gz"
    good.write_bytes(gzip.compress(b'{"question": "a", "answer": "1"}\n{bad\n{"question": "b", "answer": "2"}\n'))
    task = load_task(f"jsonl:{good}")
    assert ([p.answer for p in task.problems], task.skipped, task.name) == (["1", "2"], 1, "jsonl:t.jsonl.gz")
    damaged = tmp_path / "d.jsonl.gz"
    lines = "".join(json.dumps({"question": f"q{i}", "answer": str(i)}) + "\n" for i in range(500))
    blob = gzip.compress(lines.encode())
    damaged.write_bytes(blob[:len(blob) // 2])                          # cut short, as by an interrupted copy
    with pytest.raises(ValueError, match="damaged gzip file"):
        load_task(f"jsonl:{damaged}")
    (tmp_path / "plain.jsonl.gz").write_text('{"question": "a", "answer": "1"}\n')   # not gzip at all
    with pytest.raises(ValueError, match="damaged gzip file"):
        load_task(f"jsonl:{tmp_path / 'plain.jsonl.gz'}")
