"""Rewards: answer extraction, format check, number normalisation and the three checks, table-driven;
real GSM8K references round-trip; normalize_number never raises and is idempotent (hypothesis)."""
import json
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hrpo.rewards import (
    REWARDS,
    apply_reward,
    choice_correct,
    choice_reward,
    extract_answer,
    format_ok,
    get_reward,
    math_correct,
    math_reward,
    normalize_number,
    qa_correct,
    qa_reward,
    score,
    task_reward,
)
from hrpo.tasks import data_file, data_root, read_lines


def gsm8k_references(n: int = 50) -> list[str]:
    path = data_file(data_root() / "gsm8k" / "test.jsonl")      # data/gsm8k/test.jsonl.gz in the repository
    assert path.is_file(), f"GSM8K test data missing at {path} (set HRPO_DATA); these tests need it"
    return [json.loads(line)["answer"].rsplit("####", 1)[1].strip() for _, (_, line) in zip(range(n), read_lines(path))]


@pytest.mark.parametrize("text, want", [
    ("a #### 18", "18"), ("#### 1 #### 2 ", "2"), ("no marker", None), ("####", ""), ("x####  7\n", "7"),
])
def test_extract_answer(text, want):
    assert extract_answer(text) == want


@pytest.mark.parametrize("text, want", [
    ("r #### 5", True), ("#### 5", True), ("r #### 5 #### 5", False), ("r 5", False), ("########", False),
    ("### 5", False),
])
def test_format_ok(text, want):
    assert format_ok(text) == want


@pytest.mark.parametrize("raw, want", [
    ("18", "18"), ("$1,000.00", "1000"), ("1,000", "1000"), ("18 dollars", "18"), ("18.0", "18"),
    ("18.00", "18"), ("0.5", "0.5"), ("1/2", "0.5"), ("3/4 cup", "0.75"), ("1/3", "1/3"), ("-1/3", "-1/3"),
    ("-3", "-3"), ("+5", "5"), ("\u22127", "-7"), ("-$5", "-5"), ("50%", "50"), ("25\\%", "25"),
    ("The answer is 42.", "42"), ("x = -7.50", "-7.5"), (".5", "0.5"), ("5.", "5"), ("1,234,567", "1234567"),
    ("\uff11\uff18", "18"), ("\\frac{1}{2}", "0.5"), ("\\dfrac{3}{4}", "0.75"), ("-\\frac{7}{2}", "-3.5"),
    ("\\boxed{18}", "18"), ("\\boxed{1,000}", "1000"), ("\\$18", "18"), ("18 \\text{ dollars}", "18"),
    ("12 apples and 3 pears", "12"), ("-0", "0"), ("0" * 100 + "7", "7"), ("7." + "0" * 100, "7"),
    ("\\boxed{0.5}", "0.5"), ("1/1024", "0.0009765625"),
    ("", None), ("abc", None), ("1/0", None), ("\\frac{1}{0}", None), ("\\sqrt{2}", None),
    ("\\frac{a}{b}", None), ("9" * 61, None), (None, None),
])
def test_normalize_number(raw, want):
    assert normalize_number(raw) == want


@pytest.mark.parametrize("text", [
    "." + "1" * 60, "0." + "0" * 59 + "1", "1/" + "2" * 60, "-1/" + "3" * 59, "2" * 60, "1/" + "2" * 59 + "4",
])
def test_normalize_number_is_idempotent_at_the_digit_limit(text):
    once = normalize_number(text)
    assert once is not None and normalize_number(once) == once


@pytest.mark.parametrize("text", [
    " " * 5000 + "x", "answer" + " " * 5000 + "x", "answer:" + " :" * 3000 + "B", "1" + " " * 5000 + "/x",
    "-" * 5000 + "1", "$" * 5000, "9" * 5000, "," * 5000 + "1", "\\frac{" * 1000,
])
def test_pathological_answers_are_fast(text):
    start = time.perf_counter()
    completion = "#### " + text
    math_correct(completion, "1"), choice_correct(completion, "B"), qa_correct(completion, "x")
    assert time.perf_counter() - start < 5.0


def test_normalize_number_works_off_the_main_thread():
    out = []
    worker = threading.Thread(target=lambda: out.append(normalize_number("\\frac{3}{8}")))
    worker.start()
    worker.join()
    assert out == ["0.375"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789-+.,/$% \\{}fracboxedt^#ab\u2212")) | st.characters(),
               max_size=40))
def test_normalize_number_never_raises_and_is_idempotent(text):
    once = normalize_number(text)
    assert once is None or normalize_number(once) == once


@pytest.mark.parametrize("completion, answer, want", [
    ("so #### 18", "18", True), ("#### $1,000.00", "1000", True), ("#### 18 dollars", "18", True),
    ("#### 0.5", "1/2", True), ("#### 1/2", "0.5", True), ("#### \\frac{1}{2}", "0.5", True),
    ("#### 18", "18.0", True), ("#### -4", "-4", True), ("#### 17", "18", False), ("#### 180", "18", False),
    ("18", "18", False), ("#### ", "18", False), ("#### 18", "", False), ("#### 1 #### 18", "18", True),
])
def test_math_correct(completion, answer, want):
    assert math_correct(completion, answer) is want


@pytest.mark.parametrize("completion, letter, want", [
    ("#### B", "B", True), ("#### (B)", "B", True), ("#### B.", "B", True), ("#### B) blue", "B", True),
    ("#### the answer is B", "B", True), ("#### Answer: (d)", "D", True), ("#### b", "B", True),
    ("#### **C**", "C", True), ("#### J", "J", True), ("#### B", "b", True), ("#### C", "B", False),
    ("#### Because", "B", False), ("#### a cat", "A", False), ("#### K", "K", False), ("B", "B", False),
])
def test_choice_correct(completion, letter, want):
    assert choice_correct(completion, letter) is want


@pytest.mark.parametrize("completion, answer, want", [
    ("#### The Eiffel Tower!", "eiffel tower", True), ("#### Paris", "London|paris", True),
    ("#### paris", ["Paris, France", "Paris"], True), ("#### an  apple.", "Apple", True),
    ("#### Rome", "London|Paris", False), ("#### the", "the", False), ("Paris", "Paris", False),
])
def test_qa_correct(completion, answer, want):
    assert qa_correct(completion, answer) is want


def test_gsm8k_references_score_one():
    refs = gsm8k_references(50)
    assert len(refs) == 50
    assert math_reward([f"reasoning... #### {r}" for r in refs], refs) == [1.0] * 50
    assert math_reward([f"reasoning... #### {int(r) + 1}" for r in refs], refs) == [0.0] * 50
    assert math_reward([f"reasoning #### {r} #### {r}" for r in refs], refs) == [0.0] * 50
    assert math_reward([f"reasoning... {r}" for r in refs], refs) == [0.0] * 50


@pytest.mark.parametrize("fn, completions, answers, want", [
    (math_reward, ["a #### 18", "#### 18 #### 18", "18", "#### 19"], ["18"] * 4, [1.0, 0.0, 0.0, 0.0]),
    (choice_reward, ["#### B", "#### B #### B", "#### A"], ["B"] * 3, [1.0, 0.0, 0.0]),
    (qa_reward, ["#### the Nile", "Nile"], ["Nile", "Nile"], [1.0, 0.0]),
    (math_reward, [], [], []),
])
def test_rewards(fn, completions, answers, want):
    assert fn(completions, answers) == want


@pytest.mark.parametrize("kind, completion, answer, want", [
    ("math", "#### 18", "18", (True, True)), ("math", "#### 18 #### 18", "18", (True, False)),
    ("math", "#### 17", "18", (False, True)), ("choice", "#### (B)", "B", (True, True)),
    ("qa", "no marker", "x", (False, False)),
])
def test_score(kind, completion, answer, want):
    assert score(kind, completion, answer) == want


def test_task_reward_checks_each_completion_by_its_kind():
    completions = ["#### 18", "#### (B)", "#### the Nile", "#### 18 #### 18", "#### B"]
    answers = ["18", "B", "Nile", "18", "B"]
    kinds = ["math", "choice", "qa", "math", "math"]
    want = [float(all(score(k, c, a))) for k, c, a in zip(kinds, completions, answers)]
    assert want == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert task_reward(completions, answers, kinds=kinds, questions=["q"] * 5) == want
    assert task_reward(["#### 18"], ["18"]) == math_reward(["#### 18"], ["18"], kinds=["qa"]) == [1.0]


def test_apply_reward_checks_what_a_reward_function_returns():
    assert apply_reward(lambda c, a, **kw: [1, True, 0.5], ["x"] * 3, [""] * 3, kinds=["math"] * 3) == [1.0, 1.0, 0.5]
    assert apply_reward(task_reward, ["#### 2", "#### 3"], ["2", "2"], kinds=["math"] * 2) == [1.0, 0.0]
    for fn, msg in [(lambda c, a, **kw: [1.0], "returned 1 rewards for 2 completions"),
                    (lambda c, a, **kw: [1.0, float("inf")], "non-finite reward"),
                    (lambda c, a, **kw: [1.0, "high"], "must return a list of numbers"),
                    (lambda c, a, **kw: None, "must return a list of numbers")]:
        with pytest.raises(ValueError, match=msg):
            apply_reward(fn, ["x", "y"], ["1", "2"])


def test_registry_and_errors():
    assert set(REWARDS) == {"task", "math", "choice", "qa"} and get_reward("math") is math_reward
    assert get_reward("task") is task_reward
    with pytest.raises(ValueError, match="task, math, choice, qa"):
        get_reward("nope")
    with pytest.raises(ValueError, match="unknown task kind"):
        score("nope", "#### 1", "1")
    with pytest.raises(ValueError, match="2 completions but 1 answers"):
        math_reward(["#### 1", "#### 2"], ["1"])
