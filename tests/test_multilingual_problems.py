"""The multilingual arithmetic task (hrpo/multilingual_problems.py): every answer checked against the numbers of
its question, every language in its own script, the splits disjoint, Russian nouns agreeing with their numbers."""
import random
import re

import pytest

from hrpo import multilingual_problems as mp
from hrpo.tasks import held_out_split, load_task
from hrpo.word_problems import evaluate

SCRIPT = {"ru": "\u0400-\u04ff", "zh": "\u4e00-\u9fff", "ja": "\u3040-\u309f", "th": "\u0e00-\u0e7f",
          "bn": "\u0980-\u09ff", "te": "\u0c00-\u0c7f"}
ACCENTED = {"de": "äöüß", "fr": "éèçàœ", "es": "¿¡áéíóúñ"}


def every_template(n: int = 30):
    r = random.Random(7)
    for lang in mp.LANGS:
        for form in mp.FORMS:
            for index in (0, 1):
                for _ in range(n):
                    yield mp.make_problem(lang, form, index, r)


def test_every_language_has_two_templates_of_every_form():
    assert set(mp.TEXTS) == set(mp.LANGS) and len(mp.LANGS) == 11
    for lang in mp.LANGS:
        assert set(mp.TEXTS[lang]) == set(mp.FORMS), lang
        assert all(len(pair) == 2 and pair[0] != pair[1] for pair in mp.TEXTS[lang].values())


def test_every_answer_is_its_expression_over_the_numbers_of_its_question():
    for prob in every_template():
        expr = prob.meta["expr"]
        assert prob.answer == str(evaluate(expr)) and int(prob.answer) >= 0, prob
        written = [int(x) for x in re.findall(r"\d+", prob.question)]
        used = [int(x) for x in re.findall(r"\d+", expr)]
        for implicit in prob.meta["implicit"]:                # the fraction's denominator, said in words
            used.remove(implicit)
        assert all(x in written for x in used), (prob.question, expr)
        assert not re.search(r"[{}\[\]]", prob.question), prob.question       # every slot and marker filled


def test_every_question_is_in_its_languages_script():
    for prob in every_template(3):
        lang, q = prob.meta["lang"], prob.question
        if lang in SCRIPT:
            assert re.search(f"[{SCRIPT[lang]}]", q), q
        if lang in ("en", "de", "fr", "es", "sw"):
            assert q.isascii() or lang in ACCENTED, q
    for lang, chars in ACCENTED.items():                                      # real spelling, not ASCII-folded
        assert any(ch in "".join(t for pair in mp.TEXTS[lang].values() for t in pair) for ch in chars), lang


@pytest.mark.parametrize("n, form", [(1, "one"), (2, "few"), (4, "few"), (5, "many"), (11, "many"),
                                     (12, "many"), (14, "many"), (20, "many"), (21, "one"), (22, "few"),
                                     (25, "many"), (101, "one"), (111, "many"), (112, "many")])
def test_russian_nouns_agree_with_their_number(n, form):
    assert mp.ru_form(n, "one", "few", "many") == form


def test_russian_questions_agree():
    r = random.Random(3)
    for _ in range(200):
        prob = mp.make_problem("ru", "change", 0, r)
        a = int(re.findall(r"\d+", prob.question)[0])
        assert f"{a} {mp.ru_form(a, 'наклейка', 'наклейки', 'наклеек')}." in prob.question


def test_splits_are_disjoint_and_held_out_templates_stay_out_of_training():
    sets = {s: {p.question for p in mp.multilingual_problems(s, mp.SIZES[s])} for s in mp.SIZES}
    assert len(sets["train"]) == 5000 and len(sets["valid"]) == 300 and len(sets["test"]) == 500
    assert not (sets["train"] & sets["valid"] or sets["train"] & sets["test"] or sets["valid"] & sets["test"])
    train = mp.multilingual_problems("train", 5000)
    assert not any(p.meta["heldout"] for p in train)
    assert {p.meta["form"] for p in train} == set(mp.FORMS) - set(mp.HELDOUT_FORMS)
    held = mp.multilingual_problems("heldout", 550)
    assert all(p.meta["heldout"] for p in held) and {p.meta["lang"] for p in held} == set(mp.LANGS)
    assert [p.meta["lang"] for p in held[:11]] == list(mp.LANGS)             # languages in turn


def test_the_task_specs():
    assert len(load_task("multi", "valid").problems) == 300
    ru = load_task("multi:ru", "train", limit=20).problems
    assert len(ru) == 20 and {p.meta["lang"] for p in ru} == {"ru"}
    assert len(load_task("multi:te:heldout", "test").problems) == 50
    assert held_out_split("multi") == "valid" and held_out_split("multi:zh") == "valid"
    assert held_out_split("multi:heldout") == "test"
    with pytest.raises(ValueError, match="unknown task 'multi:xx'"):
        load_task("multi:xx")
    assert load_task("multi", "train", seed=1).problems != load_task("multi", "train", seed=2).problems
