"""Word problems in many forms (hrpo/word_problems.py, the `forms` and `forms:heldout` tasks) and the hand-written
`everyday` set: answers equal their expressions, expressions use the question's numbers, the held-out forms and
templates never reach train/valid/test, the splits are disjoint and deterministic, and load_task serves them."""
import ast
import hashlib
import json
import re
from fractions import Fraction
from pathlib import Path

import pytest

import hrpo.word_problems as wp
from hrpo.tasks import ANSWER_HINT, load_task
from studies.reworded_arith import OBJECTS as PAIRS_OBJECTS
from studies.reworded_arith import PEOPLE as PAIRS_PEOPLE
from studies.reworded_arith import THINGS as CONTAINER_THINGS

EVERYDAY = Path(__file__).resolve().parents[1] / "data" / "everyday" / "everyday.jsonl"
OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
       ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b}
SEEDS = (0, 1, 7)


def exact(expr: str) -> int:
    """Independent evaluator: integers, + - * / // and parentheses only; the result must be an exact integer."""
    def walk(node) -> Fraction:
        if isinstance(node, ast.BinOp) and type(node.op) in OPS:
            return OPS[type(node.op)](walk(node.left), walk(node.right))
        assert isinstance(node, ast.Constant) and type(node.value) is int, f"{expr!r}: {ast.dump(node)}"
        return Fraction(node.value)
    value = walk(ast.parse(expr, mode="eval").body)
    assert value.denominator == 1, f"{expr!r} = {value} is not an integer"
    return int(value)


def numbers_in_question(question: str) -> set[int]:
    """Whole-number tokens of the text, plus the numbers its number words stand for ('a third' -> 3)."""
    digits = {int(n) for n in re.findall(r"\b\d+\b", question)}
    words = {wp.NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", question.lower()) if w in wp.NUMBER_WORDS}
    return digits | words


def check_problem(question: str, answer: str, expr: str) -> None:
    """Answer = exact value of expr, a non-negative integer; every number of expr is one of the question's."""
    assert re.fullmatch(r"\d+", answer), answer
    assert int(answer) == exact(expr), (question, expr, answer)
    missing = {int(n) for n in re.findall(r"\d+", expr)} - numbers_in_question(question)
    assert not missing, f"{expr!r} uses {missing}, not in {question!r}"
    assert "####" not in question and ANSWER_HINT.strip() not in question and "Format" not in question


@pytest.fixture(scope="module")
def sets() -> dict[str, list]:
    """The fixed sets and the train set of each seed: {"valid", "test", "heldout", "train/<seed>"}."""
    out = {split: wp.word_problems(split, wp.SIZES[split]) for split in ("valid", "test", "heldout")}
    out.update({f"train/{s}": wp.word_problems("train", wp.SIZES["train"], seed=s) for s in SEEDS})
    return out


def heldout_templates() -> set[str]:
    return {tid for rows in wp.templates().values() for tid, held in rows if held}


def test_forms_and_templates_are_laid_out_as_documented():
    listing = wp.templates()
    assert len(wp.FORMS) >= 10 and tuple(listing) == wp.FORMS
    assert len(wp.HELDOUT_FORMS) >= 2 and set(wp.HELDOUT_FORMS) < set(wp.FORMS)
    for form, rows in listing.items():
        assert [tid for tid, _ in rows] == [f"{form}/{i}" for i in range(len(rows))]
        flags = [held for _, held in rows]
        if form in wp.HELDOUT_FORMS:
            assert all(flags), form
        else:
            assert any(flags) and not all(flags), f"{form}: needs held-out and training templates"
    assert set(wp.SIZES) == {"train", "valid", "test", "heldout"}


def test_every_answer_is_its_expression_over_the_questions_numbers(sets):
    for name, problems in sets.items():
        assert problems, name
        for p in problems:
            assert p.kind == "math" and set(p.meta) == {"form", "template", "expr", "heldout"}
            check_problem(p.question, p.answer, p.meta["expr"])
            assert int(p.answer) < 1000 and p.meta["template"].split("/")[0] == p.meta["form"]


def test_sizes_and_distinct_questions(sets):
    for name, problems in sets.items():
        assert len(problems) == wp.SIZES[name.split("/")[0]], name
        assert len({p.question for p in problems}) == len(problems), name


def test_heldout_forms_and_templates_never_reach_train_valid_or_test(sets):
    held = heldout_templates()
    for name, problems in sets.items():
        if name == "heldout":
            continue
        for p in problems:
            assert p.meta["form"] not in wp.HELDOUT_FORMS and p.meta["template"] not in held, (name, p.meta)
            assert p.meta["heldout"] is False
    heldout = sets["heldout"]
    assert all(p.meta["heldout"] is True and p.meta["template"] in held for p in heldout)
    forms = {p.meta["form"] for p in heldout}
    assert set(wp.HELDOUT_FORMS) <= forms and forms - set(wp.HELDOUT_FORMS), "both kinds of held-out problems"


def test_every_training_form_appears_in_train_with_all_four_operations(sets):
    training = set(wp.FORMS) - set(wp.HELDOUT_FORMS)
    for s in SEEDS:
        train = sets[f"train/{s}"]
        assert {p.meta["form"] for p in train} == training
        ops = {op for p in train for op in "+-*/" if f" {op} " in p.meta["expr"]}
        assert ops == set("+-*/"), ops
    assert {"+", "-", "*", "/"} <= {op for p in sets["heldout"] for op in "+-*/" if f" {op} " in p.meta["expr"]}


def test_splits_are_disjoint_and_decided_by_sha256(sets):
    texts = {name: {p.question for p in problems} for name, problems in sets.items()}
    fixed = ("valid", "test", "heldout")
    for i, a in enumerate(fixed):
        for b in fixed[i + 1:]:
            assert not texts[a] & texts[b], (a, b)
        for s in SEEDS:
            assert not texts[a] & texts[f"train/{s}"], (a, s)
    for name in ("valid", "test", *(f"train/{s}" for s in SEEDS)):
        for q in texts[name]:
            bucket = int(hashlib.sha256(q.encode()).hexdigest()[:8], 16) % 10
            assert {0: "test", 1: "valid"}.get(bucket, "train") == name.split("/")[0]


def test_deterministic_and_seeded_only_for_train(sets):
    for split in ("valid", "test", "heldout"):
        assert wp.word_problems(split, 50, seed=3) == sets[split][:50]
    again = wp.word_problems("train", 200, seed=1)
    assert again == sets["train/1"][:200]
    assert [p.meta for p in again] == [p.meta for p in sets["train/1"][:200]]
    assert {p.question for p in sets["train/0"]} != {p.question for p in sets["train/1"]}


def test_no_names_or_objects_of_the_reworded_and_pairs_sets(sets):
    words = re.compile(r"\b(" + "|".join(map(re.escape, (*PAIRS_PEOPLE, *PAIRS_OBJECTS, *CONTAINER_THINGS))) + r")\b")
    for problems in sets.values():
        for p in problems:
            assert not words.search(p.question), p.question


def test_bad_requests_fail_clearly(monkeypatch):
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        wp.word_problems("dev", 5)
    one = wp.Template("x/0", "x", "What is 2 + 2?", "2 + 2", lambda r: {}, True)
    monkeypatch.setattr(wp, "TEMPLATES", (one,))
    assert len(wp.word_problems("heldout", 1)) == 1
    with pytest.raises(ValueError, match="could not make 2 distinct heldout problems"):
        wp.word_problems("heldout", 2)


def test_load_task_serves_forms_heldout_and_everyday(sets):
    for split in ("train", "valid", "test"):
        task = load_task("forms", split, limit=40)
        assert (task.name, task.kind, len(task)) == ("forms", "math", 40)
        assert task.problems == (sets["train/0"] if split == "train" else sets[split])[:40]
    assert len(load_task("forms", "valid")) == 300 and len(load_task("forms", "test")) == 500
    assert load_task("forms", "train", limit=30, seed=7).problems == sets["train/7"][:30]
    for split in ("train", "valid", "test"):
        task = load_task("forms:heldout", split)
        assert (task.name, task.kind) == ("forms:heldout", "math") and task.problems == sets["heldout"]
    rows = [json.loads(line) for line in EVERYDAY.read_text(encoding="utf-8").splitlines()]
    for split in ("train", "valid", "test"):
        task = load_task("everyday", split)
        assert (task.name, task.kind, task.skipped) == ("everyday", "math", 0)
        assert [(p.question, p.answer) for p in task.problems] == [(r["question"], r["answer"]) for r in rows]
    assert len(load_task("everyday", "test", limit=5)) == 5


@pytest.mark.parametrize("spec, match", [
    ("arith", "'arith' has no valid split: it has train and test"),
    ("arith:3", "no valid split: it has train and test"),
    ("gsm8k", "'gsm8k' has no valid split: it has train and test"),
    ("mgsm:en", "no valid split: it has one file, served for train and test"),
    (f"jsonl:{EVERYDAY}", "no valid split: it has one file"),
    ("nope", "unknown task 'nope'"),
])
def test_valid_split_only_where_a_task_has_one(spec, match):
    with pytest.raises(ValueError, match=match):
        load_task(spec, "valid")
    with pytest.raises(ValueError, match="unknown split 'dev'; use train, valid or test"):
        load_task(spec, "dev")


def test_everyday_file_is_well_formed():
    lines = EVERYDAY.read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 40
    rows = [json.loads(line) for line in lines]
    for r in rows:
        assert set(r) == {"question", "answer", "expr", "form"}, r
        check_problem(r["question"], r["answer"], r["expr"])
    assert len({r["question"] for r in rows}) == len(rows)
    assert len({r["form"] for r in rows}) >= 10
