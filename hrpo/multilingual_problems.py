"""Arithmetic word problems in the eleven MGSM languages: the `multi` and `multi:<lang>` tasks (hrpo/tasks.py).

The question forms of hrpo/word_problems.py (change, compare, combine, groups, times, share, fraction, twostep,
money, time, ages), written per language (TEXTS, hrpo/multilingual_texts.py: language -> form -> two
templates), with numbers as digits and the answer marker left to the prompt.  Each language has its own names
and currency; Russian nouns after a number agree with it (`[a:1|2-4|5+]` in a template: the form for a's last
digits, `ru_form`).  A template's expression is over the numbers its question writes as digits, except the
fraction's denominator and multiplier, which its words say (meta "implicit").

Split, as in the English `forms` task: the fraction and time forms and the second template of every other form
are held out (evaluation only); the rest go to train, valid or test by the SHA-256 of the question text (1 in
10 test, 1 in 10 valid).  `multilingual_problems(split, n, langs)` draws languages in turn, templates uniformly.
MGSM itself (real, human-written) stays the held-out benchmark: `mgsm:<lang>`.
Test: pytest tests/test_multilingual_problems.py
"""
import random
import re

from .multilingual_texts import TEXTS
from .problem import Problem
from .word_problems import (
    _age_back,
    _change,
    _earn_spend,
    _less,
    _packs_less,
    _prod,
    _quot,
    _speed,
    _sum,
    evaluate,
    split_of,
)

LANGS = ("en", "de", "fr", "es", "ru", "zh", "ja", "th", "sw", "bn", "te")
SIZES = {"train": 5000, "valid": 300, "test": 500, "heldout": 550}
HELDOUT_FORMS = ("fraction", "time")

NAMES = {
    "en": ("Ana", "Ben", "Mia", "Leo", "Sara", "Omar", "Lily", "Jack"),
    "de": ("Anna", "Lukas", "Mia", "Felix", "Lena", "Jonas", "Emma", "Paul"),
    "fr": ("Léa", "Hugo", "Chloé", "Louis", "Manon", "Jules", "Camille", "Noé"),
    "es": ("Lucía", "Mateo", "Sofía", "Pablo", "Carmen", "Diego", "Elena", "Hugo"),
    "ru": ("Аня", "Ваня", "Маша", "Петя", "Оля", "Саша", "Катя", "Дима"),
    "zh": ("小明", "小红", "小丽", "小刚", "小芳", "小军", "小燕", "小伟"),
    "ja": ("さくら", "けんた", "ゆい", "はると", "あおい", "そうた", "ひな", "れん"),
    "th": ("สมชาย", "สมหญิง", "มานี", "มานะ", "ปิติ", "ชูใจ", "วีระ", "สุดา"),
    "sw": ("Amani", "Baraka", "Neema", "Juma", "Zawadi", "Hamisi", "Rehema", "Salim"),
    "bn": ("রিয়া", "রাহুল", "মিতা", "অমিত", "সুমি", "রবি", "তানিয়া", "জয়"),
    "te": ("రాము", "సీత", "లక్ష్మి", "రవి", "గీత", "కిరణ్", "అను", "వేణు"),
}
# (word for the fraction, denominator, multiplier); the form the templates need (Russian: accusative)
FRACTIONS = {
    "en": (("half", 2, 1), ("a third", 3, 1), ("a quarter", 4, 1)),
    "de": (("die Hälfte", 2, 1), ("ein Drittel", 3, 1), ("ein Viertel", 4, 1)),
    "fr": (("la moitié", 2, 1), ("un tiers", 3, 1), ("un quart", 4, 1)),
    "es": (("la mitad", 2, 1), ("un tercio", 3, 1), ("la cuarta parte", 4, 1)),
    "ru": (("половину", 2, 1), ("треть", 3, 1), ("четверть", 4, 1)),
    "zh": (("一半", 2, 1), ("三分之一", 3, 1), ("四分之一", 4, 1)),
    "ja": (("半分", 2, 1), ("3分の1", 3, 1), ("4分の1", 4, 1)),
    "th": (("ครึ่งหนึ่ง", 2, 1), ("หนึ่งในสาม", 3, 1), ("หนึ่งในสี่", 4, 1)),
    "sw": (("nusu", 2, 1), ("theluthi moja", 3, 1), ("robo", 4, 1)),
    "bn": (("অর্ধেক", 2, 1), ("এক-তৃতীয়াংশ", 3, 1), ("এক-চতুর্থাংশ", 4, 1)),
    "te": (("సగం", 2, 1), ("మూడో వంతు", 3, 1), ("నాలుగో వంతు", 4, 1)),
}


def _fraction(r: random.Random) -> dict:
    """{"p", "fi"}: a whole p that the fraction fi (an index into FRACTIONS[lang]) divides exactly."""
    fi = r.randrange(3)
    return {"p": (fi + 2) * r.randint(2, 12), "fi": fi}


# form -> (expression, draw) of template 0 and template 1; the same in every language
EXPRS = {
    "change": (("{a} + {b}", lambda r: _sum(r, 2, 60)), ("{a} - {b}", lambda r: _less(r, 10, 99))),
    "compare": (("{a} - {b}", lambda r: _less(r, 5, 99)), ("{a} + {b}", lambda r: _sum(r, 2, 60))),
    "combine": (("{a} + {b}", lambda r: _sum(r, 2, 60)), ("{a} + {b}", lambda r: _sum(r, 5, 30))),
    "groups": (("{a} * {k}", lambda r: _prod(r, 2, 9, 2, 12)), ("{v} * {h}", _speed)),
    "times": (("{a} * {k}", lambda r: _prod(r, 2, 20, 2, 6)), ("{p} / {k}", lambda r: _quot(r, 2, 20, 2, 6))),
    "share": (("{p} / {k}", lambda r: _quot(r, 2, 12, 2, 9)), ("{p} / {k}", lambda r: _quot(r, 2, 12, 2, 9))),
    "fraction": (("{fx}", _fraction), ("{fx}", _fraction)),
    "twostep": (("({a} * {b}) - {c}", _packs_less), ("({a} + {b}) - {c}", _earn_spend)),
    "money": (("{m} - ({p} * {k})", _change), ("{a} - {b}", lambda r: _less(r, 10, 99))),
    "time": (("{a} - {b}", lambda r: _less(r, 60, 150, 10)), ("{a} * {k}", lambda r: _prod(r, 10, 45, 2, 7))),
    "ages": (("{a} - {n}", _age_back), ("{a} * {k}", lambda r: _prod(r, 6, 12, 5, 8))),
}
FORMS = tuple(EXPRS)

# Russian names in the genitive and dative (У Ани ..., Ане 9 лет)
RU_CASES = {"Аня": ("Ани", "Ане"), "Ваня": ("Вани", "Ване"), "Маша": ("Маши", "Маше"), "Петя": ("Пети", "Пете"),
            "Оля": ("Оли", "Оле"), "Саша": ("Саши", "Саше"), "Катя": ("Кати", "Кате"), "Дима": ("Димы", "Диме")}
# the fraction as the subject of a sentence, where it differs from FRACTIONS (Russian nominative)
FRACTION_SUBJECT = {"ru": ("половина", "треть", "четверть")}
AGREE = re.compile(r"\[(\w+):([^|\]]+)\|([^|\]]+)\|([^|\]]+)\]")


def ru_form(n: int, one: str, few: str, many: str) -> str:
    """The Russian noun form after the number n: 1, 21, 31 -> one; 2-4, 22-24 -> few; else (5-20, 25-30) many."""
    n = abs(n) % 100
    if 11 <= n <= 14:
        return many
    return one if n % 10 == 1 else few if 2 <= n % 10 <= 4 else many


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def make_problem(lang: str, form: str, index: int, r: random.Random) -> Problem:
    """One problem of template `index` of a form in a language, its numbers drawn from r."""
    expr_tpl, draw = EXPRS[form][index]
    numbers = draw(r)
    x, y = r.sample(NAMES[lang], 2)
    slots = {"x": x, "y": y, **numbers}
    if lang == "ru":
        slots.update(x_gen=RU_CASES[x][0], x_dat=RU_CASES[x][1], y_gen=RU_CASES[y][0], y_dat=RU_CASES[y][1])
    implicit = []
    if "fi" in numbers:
        word, d, m = FRACTIONS[lang][numbers["fi"]]
        subject = FRACTION_SUBJECT.get(lang, [w for w, _, _ in FRACTIONS[lang]])[numbers["fi"]]
        slots.update(f=word, F=_upper_first(subject), fx=f"{numbers['p']} / {d}" if m == 1 else
                     f"({numbers['p']} / {d}) * {m}")
        implicit = [d] + ([m] if m != 1 else [])
    text = AGREE.sub(lambda g: ru_form(numbers[g[1]], g[2], g[3], g[4]), TEXTS[lang][form][index])
    question, expr = text.format(**slots), expr_tpl.format(**slots)
    heldout = form in HELDOUT_FORMS or index == 1
    meta = {"lang": lang, "form": form, "template": f"{lang}/{form}/{index}", "expr": expr, "heldout": heldout,
            "implicit": implicit}
    return Problem(question, str(evaluate(expr)), "math", meta)


def multilingual_problems(split: str, n: int, langs=LANGS, seed: int = 0) -> list[Problem]:
    """n distinct problems of a split ("train" seeded by `seed`; "valid", "test", "heldout" fixed), the languages
    in turn, templates drawn uniformly among those the split allows; ValueError for an unknown split or language."""
    if split not in SIZES:
        raise ValueError(f"unknown split {split!r}; use one of: {', '.join(SIZES)}")
    unknown = [lang for lang in langs if lang not in LANGS]
    if unknown or not langs:
        raise ValueError(f"unknown language(s) {unknown or langs}; use {', '.join(LANGS)}")
    pool = [(form, i) for form in FORMS for i in (0, 1) if (form in HELDOUT_FORMS or i == 1) == (split == "heldout")]
    r = random.Random(f"hrpo-multi/{split}/{seed if split == 'train' else 0}/{','.join(langs)}")
    out, seen, tries = [], set(), 0
    while len(out) < n:
        tries += 1
        if tries > 200 * n + 10_000:
            raise ValueError(f"could not make {n} distinct {split} problems (made {len(out)})")
        prob = make_problem(langs[len(out) % len(langs)], *r.choice(pool), r)
        if prob.question not in seen and (split == "heldout" or split_of(prob.question) == split):
            seen.add(prob.question)
            out.append(prob)
    return out
