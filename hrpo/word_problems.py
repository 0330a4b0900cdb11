"""Arithmetic word problems in many question forms: the `forms` and `forms:heldout` tasks (hrpo/tasks.py).

A FORM is a kind of question (take away, how many more, equal groups, a third of, ...); each form has several
TEMPLATES (sentence frames with slots for names, objects, units and numbers).  A problem is one template
filled from a seeded random.Random: short (1-3 sentences and a question), numbers written as digits, mostly
below 100, and an answer that is a non-negative integer below 1000 (divisions are exact).  Questions are bare:
no answer-format hint (the prompt format is applied elsewhere).

Forms (FORMS): change, compare, combine, groups (equal groups and rates), times (times as many), share
(division), fraction (half, a third, a quarter, two thirds, three quarters of), twostep, money, time
(minutes and hours), ages.  Lengths (cm, km) and weights (kg) appear inside several forms; all four
operations occur.

Split (fixed and deterministic):
- held-out forms: HELDOUT_FORMS = fraction and time, used only for evaluation;
- held-out templates: HELDOUT_TEMPLATES, one per training form, used only for evaluation;
- problems of training forms written with training templates go to test when the first 8 hex digits of the
  SHA-256 of the question text are 0 mod 10, to valid when 1 mod 10, else to train: disjoint by construction;
- the held-out set is every problem from held-out forms plus problems of training forms written with
  held-out templates (any hash), drawn with a fixed seed.
Each Problem's meta: {"form", "template" ("change/2"), "expr" (a Python expression over the question's
numbers giving the answer, e.g. "(3 * 4) - 5"), "heldout"}.  Numbers in an expression appear in the question
as digits, or as one of the words in NUMBER_WORDS ("a third of 27" -> "27 / 3").

Names, objects and places of studies/reworded_arith.py (the `reworded` and `pairs` sets) are not used here, so
no question of those sets appears word for word.

Test: pytest tests/test_word_problems.py
"""
import ast
import hashlib
import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

from .problem import Problem

SIZES = {"train": 5000, "valid": 300, "test": 500, "heldout": 500}
SHARE = 10                      # 1 in SHARE question texts is test, 1 in SHARE valid (by SHA-256)
# words that stand for a number of an expression (the question says "a third of 27", the expression "27 / 3")
NUMBER_WORDS = {"half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4, "two": 2,
                "three": 3, "twice": 2, "double": 2, "dozen": 12, "week": 7, "weeks": 7, "hour": 60, "hours": 60}

NAMES = ("Ana", "Ben", "Mei", "Kenji", "Amara", "Mateo", "Fatima", "Lars", "Chloe", "Kwame", "Hana", "Ivan",
         "Zainab", "Tariq", "Lucia", "Arjun", "Noor", "Wei", "Elif", "Sven", "Aiko", "Nia", "Jamal", "Ingrid",
         "Carlos", "Sara", "Kofi", "Anya", "Tomas", "Leila", "Rosa", "Dev", "Olga", "Pedro", "Yara", "Emil")
OBJECTS = ("stickers", "marbles", "shells", "cards", "pencils", "books", "stamps", "beads", "crayons",
           "balloons", "toy cars", "comics", "feathers", "rocks", "erasers", "puzzles")
FOODS = ("cookies", "muffins", "rolls", "cupcakes", "bagels", "pies", "pancakes", "dumplings", "tacos")
FRUITS = ("apples", "oranges", "pears", "plums", "lemons", "mangoes", "strawberries", "cherries")
BOXES = ("boxes", "bags", "jars", "baskets", "packs", "trays")
PLANTS = ("tulips", "carrots", "roses", "cabbages", "sunflowers", "lettuces", "trees")
GRAINS = ("rice", "flour", "sugar", "potatoes", "beans")
ANIMALS = (("cows", "sheep"), ("hens", "ducks"), ("goats", "pigs"), ("horses", "donkeys"), ("rabbits", "geese"))
VEHICLES = ("car", "bus", "train", "truck", "van")
RIDES = ("bus", "train", "tram", "ferry", "boat")
THINGS = (("pencil", "pencils"), ("notebook", "notebooks"), ("sandwich", "sandwiches"), ("ball", "balls"),
          ("book", "books"), ("toy", "toys"), ("hat", "hats"), ("kite", "kites"), ("mug", "mugs"))
CURRENCIES = ("dollars", "euros", "pounds")
COLORS = ("red", "blue", "green", "yellow", "white")
FRACTIONS = (("half", 2, 1), ("a third", 3, 1), ("a quarter", 4, 1), ("two thirds", 3, 2),
             ("three quarters", 4, 3))


# ---------------------------------------------------------------- numbers

def _sum(r: random.Random, lo: int, hi: int) -> dict:
    """{"a", "b"}: two numbers in [lo, hi]."""
    return {"a": r.randint(lo, hi), "b": r.randint(lo, hi)}


def _less(r: random.Random, lo: int, hi: int, b_lo: int = 2) -> dict:
    """{"a", "b"}: a in [lo, hi] and b in [b_lo, a - 1], so a - b >= 1."""
    a = r.randint(lo, hi)
    return {"a": a, "b": r.randint(b_lo, a - 1)}


def _prod(r: random.Random, a_lo: int, a_hi: int, k_lo: int, k_hi: int) -> dict:
    """{"a", "k"}: a factor in [a_lo, a_hi] and a multiplier in [k_lo, k_hi]."""
    return {"a": r.randint(a_lo, a_hi), "k": r.randint(k_lo, k_hi)}


def _quot(r: random.Random, q_lo: int, q_hi: int, k_lo: int, k_hi: int) -> dict:
    """{"p", "k"}: p = q * k with q in [q_lo, q_hi] and k in [k_lo, k_hi], so p / k is exact."""
    q, k = r.randint(q_lo, q_hi), r.randint(k_lo, k_hi)
    return {"p": q * k, "k": k}


def _fraction(r: random.Random, q_lo: int, q_hi: int) -> dict:
    """{"p", "f", "F", "fx"}: a whole p, a fraction word f (F capitalised) and fx, the expression of f of p."""
    word, d, m = r.choice(FRACTIONS)
    p = d * r.randint(q_lo, q_hi)
    return {"p": p, "f": word, "F": word.capitalize(), "fx": f"{p} / {d}" if m == 1 else f"({p} / {d}) * {m}"}


def _packs_less(r: random.Random) -> dict:
    """{"a", "b", "c"}: a packs of b, c given away with c < a * b."""
    a, b = r.randint(2, 6), r.randint(3, 10)
    return {"a": a, "b": b, "c": r.randint(2, a * b - 1)}


def _earn_spend(r: random.Random) -> dict:
    """{"a", "b", "c"}: two earnings and a spending c < a + b."""
    a, b = r.randint(5, 40), r.randint(5, 40)
    return {"a": a, "b": b, "c": r.randint(2, a + b - 1)}


def _gain_lose(r: random.Random) -> dict:
    """{"a", "b", "c"}: a start, a gain b and a loss c < a + b."""
    a, b = r.randint(5, 50), r.randint(2, 30)
    return {"a": a, "b": b, "c": r.randint(2, a + b - 1)}


def _share_add(r: random.Random) -> dict:
    """{"p", "k", "c"}: p shared among k (exact), then c more each."""
    return {**_quot(r, 2, 12, 2, 6), "c": r.randint(2, 9)}


def _add_packs(r: random.Random) -> dict:
    """{"a", "k", "b"}: a start plus k packs of b."""
    return {"a": r.randint(2, 40), "k": r.randint(2, 5), "b": r.randint(3, 10)}


def _change(r: random.Random) -> dict:
    """{"p", "k", "m"}: k items at p each paid with a note m > p * k."""
    p, k = r.randint(2, 12), r.randint(2, 5)
    return {"p": p, "k": k, "m": r.choice([m for m in (10, 20, 50, 100) if m > p * k])}


def _age_ahead(r: random.Random) -> dict:
    """{"a", "d", "n"}: an age, an age gap and a number of years."""
    return {"a": r.randint(4, 15), "d": r.randint(20, 40), "n": r.randint(2, 10)}


def _age_back(r: random.Random) -> dict:
    """{"a", "n"}: an age a and n years ago, n < a."""
    a = r.randint(10, 70)
    return {"a": a, "n": r.randint(2, min(20, a - 1))}


def _speed(r: random.Random) -> dict:
    """{"v", "h"}: a speed (km each hour, a multiple of 5) and a number of hours."""
    return {"v": 5 * r.randint(6, 18), "h": r.randint(2, 5)}


# ---------------------------------------------------------------- templates

Draw = Callable[[random.Random], dict]

# form -> [(text, expr, draw)]; text slots: x, y, z (names), t (objects), food, fruit, boxes, plants, grain,
# an1/an2 (animals), vehicle, ride, thing/things, thing2, cur (currency), color, and the numbers of draw
FORM_TEMPLATES: dict[str, list[tuple[str, str, Draw]]] = {
    "change": [
        ("{x} had {a} {t} and gave {b} of them to {y}. How many {t} does {x} have left?", "{a} - {b}",
         lambda r: _less(r, 10, 99)),
        ("{x} has {a} {t}. {y} gives {x} {b} more. How many {t} does {x} have now?", "{a} + {b}",
         lambda r: _sum(r, 2, 60)),
        ("A baker made {a} {food} and sold {b}. How many {food} are left?", "{a} - {b}",
         lambda r: _less(r, 10, 99)),
        ("There are {a} people on a {ride}. At the next stop, {b} more people get on. How many people are "
         "on the {ride} now?", "{a} + {b}", lambda r: _sum(r, 2, 50)),
        ("A rope is {a} cm long. {x} cuts off {b} cm. How many cm of rope are left?", "{a} - {b}",
         lambda r: _less(r, 20, 99)),
        ("{b} of the {a} {t} in {x}'s bag fell out on the way home. How many {t} are still in the bag?",
         "{a} - {b}", lambda r: _less(r, 10, 99)),
    ],
    "compare": [
        ("{x} has {a} {t} and {y} has {b}. How many more {t} does {x} have than {y}?", "{a} - {b}",
         lambda r: _less(r, 5, 99)),
        ("{x} read {a} pages. {y} read {b} pages fewer than {x}. How many pages did {y} read?", "{a} - {b}",
         lambda r: _less(r, 10, 99)),
        ("{x} is {a} cm tall and {y} is {b} cm tall. How many cm taller is {x} than {y}?", "{a} - {b}",
         lambda r: _less(r, 110, 190, 100)),
        ("A red box holds {a} {t}. A blue box holds {b} more {t} than the red box. How many {t} does the blue "
         "box hold?", "{a} + {b}", lambda r: _sum(r, 2, 60)),
        ("How many more {t} does {x} have than {y}, if {x} has {a} and {y} has {b}?", "{a} - {b}",
         lambda r: _less(r, 5, 99)),
    ],
    "combine": [
        ("{x} has {a} {t} and {y} has {b}. How many {t} do they have altogether?", "{a} + {b}",
         lambda r: _sum(r, 2, 60)),
        ("{x} picked {a} {fruit} and {y} picked {b}. How many {fruit} did they pick in all?", "{a} + {b}",
         lambda r: _sum(r, 2, 60)),
        ("A class has {a} girls and {b} boys. How many children are in the class?", "{a} + {b}",
         lambda r: _sum(r, 5, 30)),
        ("{x} has {a} {t}, {y} has {b} and {z} has {c}. How many {t} do the three of them have?",
         "{a} + {b} + {c}", lambda r: {**_sum(r, 2, 40), "c": r.randint(2, 40)}),
        ("A farm has {a} {an1} and {b} {an2}. How many animals is that in total?", "{a} + {b}",
         lambda r: _sum(r, 2, 80)),
        ("Put {x}'s {a} {t} and {y}'s {b} {t} in one pile. How many {t} are in the pile?", "{a} + {b}",
         lambda r: _sum(r, 2, 60)),
    ],
    "groups": [
        ("There are {a} {boxes} with {k} {t} in each. How many {t} are there in all?", "{a} * {k}",
         lambda r: _prod(r, 2, 9, 2, 12)),
        ("{x} buys {a} packs of {t}. Each pack has {k} {t}. How many {t} does {x} buy?", "{a} * {k}",
         lambda r: _prod(r, 2, 9, 2, 12)),
        ("A {vehicle} goes {v} km each hour. How many km does it go in {h} hours?", "{v} * {h}", _speed),
        ("A garden has {a} rows of {plants}, with {k} {plants} in each row. How many {plants} are there?",
         "{a} * {k}", lambda r: _prod(r, 2, 10, 2, 12)),
        ("One bag of {grain} weighs {a} kg. How many kg do {k} bags weigh?", "{a} * {k}",
         lambda r: _prod(r, 2, 25, 2, 9)),
        ("Each of the {a} tables in a restaurant has {k} chairs around it. How many chairs are there altogether?",
         "{a} * {k}", lambda r: _prod(r, 2, 15, 2, 8)),
    ],
    "times": [
        ("{x} has {a} {t}. {y} has {k} times as many. How many {t} does {y} have?", "{a} * {k}",
         lambda r: _prod(r, 2, 20, 2, 6)),
        ("A pencil is {a} cm long. A table is {k} times as long. How many cm long is the table?", "{a} * {k}",
         lambda r: _prod(r, 8, 20, 3, 9)),
        ("{x} ran {a} laps. {y} ran {k} times as many laps. How many laps did {y} run?", "{a} * {k}",
         lambda r: _prod(r, 2, 15, 2, 5)),
        ("{y} has {k} times as many {t} as {x}. {x} has {a}. How many {t} does {y} have?", "{a} * {k}",
         lambda r: _prod(r, 2, 20, 2, 6)),
        ("{y} has {p} {t}. That is {k} times as many as {x} has. How many {t} does {x} have?", "{p} / {k}",
         lambda r: _quot(r, 2, 20, 2, 6)),
        ("A small jar holds {a} {t}. A big jar holds {k} times that number. How many {t} does the big jar hold?",
         "{a} * {k}", lambda r: _prod(r, 2, 20, 2, 6)),
    ],
    "share": [
        ("{p} {food} are shared equally among {k} friends. How many {food} does each friend get?", "{p} / {k}",
         lambda r: _quot(r, 2, 12, 2, 9)),
        ("{x} puts {p} {t} into groups of {k}. How many groups does {x} make?", "{p} / {k}",
         lambda r: _quot(r, 2, 12, 2, 9)),
        ("A ribbon {p} cm long is cut into {k} equal pieces. How many cm long is each piece?", "{p} / {k}",
         lambda r: _quot(r, 3, 20, 2, 6)),
        ("{p} children stand in {k} equal rows. How many children are in each row?", "{p} / {k}",
         lambda r: _quot(r, 2, 12, 2, 8)),
        ("{x} has {p} {fruit} and puts the same number in each of {k} {boxes}. How many {fruit} go in each?",
         "{p} / {k}", lambda r: _quot(r, 2, 12, 2, 8)),
        ("How many bags of {k} {t} can be filled from {p} {t}?", "{p} / {k}", lambda r: _quot(r, 2, 12, 2, 9)),
    ],
    "fraction": [
        ("{x} has {p} {t}. {F} of them are {color}. How many {color} {t} does {x} have?", "{fx}",
         lambda r: _fraction(r, 2, 12)),
        ("There are {p} children in a class. {F} of them walk to school. How many children walk to school?",
         "{fx}", lambda r: _fraction(r, 3, 9)),
        ("{x} had {p} {cur} and spent {f} of the money. How many {cur} did {x} spend?", "{fx}",
         lambda r: _fraction(r, 2, 20)),
        ("A ribbon is {p} cm long. {x} uses {f} of it. How many cm of ribbon does {x} use?", "{fx}",
         lambda r: _fraction(r, 2, 25)),
        ("{x} baked {p} {food} and gave away {f} of them. How many {food} did {x} give away?", "{fx}",
         lambda r: _fraction(r, 2, 12)),
    ],
    "twostep": [
        ("{x} buys {a} packs of {t} with {b} in each pack and gives away {c}. How many {t} does {x} have left?",
         "({a} * {b}) - {c}", _packs_less),
        ("{x} earns {a} {cur} on Monday and {b} {cur} on Tuesday, then spends {c} {cur}. How many {cur} does "
         "{x} have now?", "({a} + {b}) - {c}", _earn_spend),
        ("{p} {t} are shared equally by {k} children. Then each child is given {c} more. How many {t} does each "
         "child have now?", "({p} / {k}) + {c}", _share_add),
        ("{x} has {a} {t}. {y} gives {x} {b} more, and then {x} gives {c} to {z}. How many {t} does {x} have "
         "now?", "({a} + {b}) - {c}", _gain_lose),
        ("{x} had {a} {t} and bought {k} bags with {b} {t} in each. How many {t} does {x} have now?",
         "{a} + ({k} * {b})", _add_packs),
        ("After buying {a} bags of {b} {t} each, {x} gave {c} {t} away. How many {t} are left with {x}?",
         "({a} * {b}) - {c}", _packs_less),
    ],
    "money": [
        ("A {thing} costs {p} {cur}. {x} buys {k} of them and pays with {m} {cur}. How much change does {x} "
         "get, in {cur}?", "{m} - ({p} * {k})", _change),
        ("{x} has {a} {cur} and buys a {thing} for {b} {cur}. How many {cur} does {x} have left?", "{a} - {b}",
         lambda r: _less(r, 10, 99)),
        ("A {thing} costs {a} {cur} and a {thing2} costs {b} {cur}. How much do both cost together, in {cur}?",
         "{a} + {b}", lambda r: _sum(r, 2, 50)),
        ("{x} earns {a} {cur} a week. How many {cur} does {x} earn in {k} weeks?", "{a} * {k}",
         lambda r: _prod(r, 5, 50, 2, 8)),
        ("{k} friends share a bill of {p} {cur} equally. How many {cur} does each friend pay?", "{p} / {k}",
         lambda r: _quot(r, 3, 30, 2, 6)),
        ("How much change from {m} {cur} does {x} get after paying for {k} {things} at {p} {cur} each?",
         "{m} - ({p} * {k})", _change),
    ],
    "time": [
        ("A film lasts {a} minutes. {x} has watched {b} minutes of it. How many minutes are left?", "{a} - {b}",
         lambda r: _less(r, 60, 150, 10)),
        ("{x} practises the piano for {a} minutes every day. How many minutes is that in {k} days?", "{a} * {k}",
         lambda r: _prod(r, 10, 45, 2, 7)),
        ("A {ride} ride takes {a} minutes and the walk after it takes {b} minutes. How many minutes does the "
         "whole trip take?", "{a} + {b}", lambda r: _sum(r, 5, 60)),
        ("{x} has {p} minutes for {k} tasks and gives each task the same time. How many minutes does each task "
         "get?", "{p} / {k}", lambda r: _quot(r, 5, 20, 2, 6)),
        ("A cake must bake for {a} minutes. It has been in the oven for {b} minutes. How many more minutes does "
         "it need?", "{a} - {b}", lambda r: _less(r, 20, 75, 5)),
        ("{x} sleeps {a} hours each night. How many hours of sleep is that in {k} nights?", "{a} * {k}",
         lambda r: _prod(r, 7, 10, 2, 7)),
    ],
    "ages": [
        ("{x} is {a} years old. {x}'s mother is {d} years older. How old will {x}'s mother be in {n} years?",
         "{a} + {d} + {n}", _age_ahead),
        ("{x} is {a} years old and {y} is {b} years old. How many years older is {x} than {y}?", "{a} - {b}",
         lambda r: _less(r, 8, 80, 3)),
        ("{x} is {a} years old. How old was {x} {n} years ago?", "{a} - {n}", _age_back),
        ("{x} is {a} years old. {x}'s grandfather is {k} times as old. How old is {x}'s grandfather?",
         "{a} * {k}", lambda r: _prod(r, 6, 12, 5, 8)),
        ("{x}'s father is {d} years older than {x}, who is {a}. How old was the father {n} years ago?",
         "({a} + {d}) - {n}", _age_ahead),
    ],
}
FORMS = tuple(FORM_TEMPLATES)
HELDOUT_FORMS = ("fraction", "time")
HELDOUT_TEMPLATES = ("change/5", "compare/4", "combine/5", "groups/5", "times/5", "share/5", "twostep/5",
                     "money/5", "ages/4")


@dataclass(frozen=True)
class Template:
    id: str            # "<form>/<index>", stable
    form: str
    text: str
    expr: str
    draw: Draw
    heldout: bool      # its form is held out, or it is a held-out template of a training form


TEMPLATES = tuple(Template(f"{form}/{i}", form, text, expr, draw,
                           form in HELDOUT_FORMS or f"{form}/{i}" in HELDOUT_TEMPLATES)
                  for form, rows in FORM_TEMPLATES.items() for i, (text, expr, draw) in enumerate(rows))


def templates() -> dict[str, list[tuple[str, bool]]]:
    """{form: [(template id, held out?), ...]} for every form, in template order."""
    out: dict[str, list[tuple[str, bool]]] = {form: [] for form in FORMS}
    for tpl in TEMPLATES:
        out[tpl.form].append((tpl.id, tpl.heldout))
    return out


# ---------------------------------------------------------------- problems

def evaluate(expr: str) -> int:
    """The value of an expression of integers, + - * / and parentheses; ValueError unless a non-negative integer."""
    ops = {ast.Add: Fraction.__add__, ast.Sub: Fraction.__sub__, ast.Mult: Fraction.__mul__,
           ast.Div: Fraction.__truediv__}

    def walk(node) -> Fraction:
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return Fraction(node.value)
        raise ValueError(f"unsupported expression {expr!r}")
    value = walk(ast.parse(expr, mode="eval").body)
    if value.denominator != 1 or value < 0:
        raise ValueError(f"{expr!r} is {value}, not a non-negative integer")
    return int(value)


def _words(r: random.Random) -> dict:
    """The word slots of a template: three distinct names, objects, units and so on."""
    (thing, things), (thing2, _) = r.sample(THINGS, 2)
    an1, an2 = r.choice(ANIMALS)
    x, y, z = r.sample(NAMES, 3)
    return {"x": x, "y": y, "z": z, "t": r.choice(OBJECTS), "food": r.choice(FOODS), "fruit": r.choice(FRUITS),
            "boxes": r.choice(BOXES), "plants": r.choice(PLANTS), "grain": r.choice(GRAINS), "an1": an1,
            "an2": an2, "vehicle": r.choice(VEHICLES), "ride": r.choice(RIDES), "thing": thing, "things": things,
            "thing2": thing2, "cur": r.choice(CURRENCIES), "color": r.choice(COLORS)}


def make_problem(tpl: Template, r: random.Random) -> Problem:
    """One problem of a template: its slots filled from r, the answer the value of its expression."""
    slots = {**_words(r), **tpl.draw(r)}
    question, expr = tpl.text.format(**slots), tpl.expr.format(**slots)
    meta = {"form": tpl.form, "template": tpl.id, "expr": expr, "heldout": tpl.heldout}
    return Problem(question, str(evaluate(expr)), "math", meta)


def split_of(question: str) -> str:
    """'test', 'valid' or 'train' from the SHA-256 of the question text (1, 1 and SHARE - 2 in SHARE)."""
    bucket = int(hashlib.sha256(question.encode()).hexdigest()[:8], 16) % SHARE
    return {0: "test", 1: "valid"}.get(bucket, "train")


def word_problems(split: str, n: int, seed: int = 0) -> list[Problem]:
    """n distinct problems of a split: "train" (seeded by `seed`), "valid", "test" or "heldout" (fixed sets,
    `seed` ignored).  Templates are drawn uniformly among those the split allows; ValueError for an unknown
    split or when n distinct problems cannot be made."""
    if split not in SIZES:
        raise ValueError(f"unknown split {split!r}; use one of: {', '.join(SIZES)}")
    pool = [t for t in TEMPLATES if t.heldout == (split == "heldout")]
    r = random.Random(f"hrpo-forms/{split}/{seed if split == 'train' else 0}")
    out, seen, tries = [], set(), 0
    while len(out) < n:
        tries += 1
        if tries > 200 * n + 10_000:
            raise ValueError(f"could not make {n} distinct {split} problems (made {len(out)})")
        prob = make_problem(r.choice(pool), r)
        if prob.question not in seen and (split == "heldout" or split_of(prob.question) == split):
            seen.add(prob.question)
            out.append(prob)
    return out
