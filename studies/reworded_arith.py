"""Held-out sets of arith level-2 problems in wordings the arith task never uses (issues 10 and 29).

Same arithmetic as `arith:2` (one addition or subtraction, numbers <= 20, the same answer-format hint), but
other sentence frames, so accuracy here says whether training generalised beyond the task's templates:

- `containers` (the "reworded" set): a container's count changes, in the passive voice ("A jar holds 18
  tickets. Then 9 of the tickets are taken out. How many tickets does it hold in the end?").
- `pairs` (the third wording): two people compared or combined, no change over time ("Priya has 12 acorns
  and Hugo has 5 acorns. How many acorns do they have together?", "... 4 fewer acorns than Priya ...").
  Names and objects appear in neither the arith task nor `containers`.

Deterministic (seeded); writes `{"question", "answer"}` lines for `jsonl:PATH`.  Tests:
`pytest tests/test_selectivity.py -k reworded`.

    python -m studies.reworded_arith --n 300 --out runs/eval/reworded.jsonl
    python -m studies.reworded_arith --wording pairs --n 300 --out runs/eval/pairs.jsonl
    python -m hrpo eval --model SPEC --task jsonl:runs/eval/reworded.jsonl --greedy
    python -m studies.reworded_arith --by-form runs/eval/wordings/hrpo__pairs.jsonl   # accuracy per question form
"""
import argparse
import json
import random
from pathlib import Path

from hrpo.tasks import ANSWER_HINT

PLACES = ("A shelf", "A basket", "A drawer", "A box", "A jar", "A bag", "A tray", "A crate")
THINGS = ("plates", "socks", "candles", "buttons", "forks", "nails", "bottles", "tickets", "keys", "leaves")
ADD = ("Someone puts {b} more {t} in it.", "Later, {b} extra {t} are added.", "{b} more {t} arrive.")
SUB = ("Then {b} of the {t} are taken out.", "Afterwards {b} {t} are removed.", "{b} {t} get used up.")
ASK = ("How many {t} are there now?", "What is the number of {t} at the end?", "How many {t} does it hold in the end?")


PEOPLE = ("Priya", "Hugo", "Lena", "Theo", "Aisha", "Felix", "Mara", "Jonas", "Yuki", "Diego")
OBJECTS = ("pebbles", "postcards", "ribbons", "acorns", "badges", "magnets", "seashells", "paper cranes")
TOGETHER = ("{x} has {a} {t} and {y} has {b} {t}. How many {t} do they have together?",
            "{x} collected {a} {t}. {y} collected {b} {t}. How many {t} did the two of them collect in total?")
FEWER = ("{x} has {a} {t}. {y} has {b} fewer {t} than {x}. How many {t} does {y} have?",
         "{x} has {a} {t} and {y} has {b} {t}. How many more {t} does {x} have than {y}?")


def reworded_problem(rng: random.Random) -> dict:
    place, t = rng.choice(PLACES), rng.choice(THINGS)
    a = rng.randint(2, 20)
    if rng.random() < 0.5:
        b, step = rng.randint(1, 10), ADD
        answer = a + b
    else:
        b, step = rng.randint(1, min(10, a - 1)), SUB
        answer = a - b
    text = f"{place} holds {a} {t}. {rng.choice(step).format(b=b, t=t)} {rng.choice(ASK).format(t=t)}"
    return {"question": text + ANSWER_HINT, "answer": str(answer)}


def pairs_problem(rng: random.Random) -> dict:
    """Two people, one addition (together) or subtraction (fewer / how many more), the same number ranges."""
    x, y = rng.sample(PEOPLE, 2)
    t, a = rng.choice(OBJECTS), rng.randint(2, 20)
    if rng.random() < 0.5:
        b = rng.randint(1, 10)
        text, answer = rng.choice(TOGETHER).format(x=x, y=y, a=a, b=b, t=t), a + b
    else:
        b = rng.randint(1, min(10, a - 1))
        text, answer = rng.choice(FEWER).format(x=x, y=y, a=a, b=b, t=t), a - b
    return {"question": text + ANSWER_HINT, "answer": str(answer)}


WORDINGS = {"containers": reworded_problem, "pairs": pairs_problem}


def pairs_form(question: str) -> str:
    """A pairs question's form: 'sum' (together / in total), 'fewer' (a - b, stated), 'more' (how many more)."""
    if "together" in question or "in total" in question:
        return "sum"
    return "fewer" if " fewer " in question else "more"


def accuracy_by_form(rows: list[dict]) -> dict:
    """form -> (accuracy, count) over evaluated pairs rows ({"question", "reward"}, studies/study.py's files)."""
    by: dict = {}
    for r in rows:
        by.setdefault(pairs_form(r["question"]), []).append(float(r["reward"]))
    return {f: (sum(v) / len(v), len(v)) for f, v in sorted(by.items())}


def problems(wording: str, n: int, seed: int = 2505) -> list[dict]:
    """n distinct problems of one wording, the same for the same (wording, n, seed)."""
    make, rng, seen, rows = WORDINGS[wording], random.Random(seed), set(), []
    while len(rows) < n:
        row = make(rng)
        if row["question"] not in seen:
            seen.add(row["question"])
            rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=2505)
    ap.add_argument("--wording", choices=WORDINGS, default="containers")
    ap.add_argument("--out", default="runs/eval/reworded.jsonl")
    ap.add_argument("--by-form", metavar="EVAL_JSONL", help="print a pairs evaluation's accuracy per question form")
    args = ap.parse_args()
    if args.by_form:
        rows = [json.loads(line) for line in Path(args.by_form).read_text(encoding="utf-8").splitlines() if line]
        print(", ".join(f"{f} {acc:.3f} (n={n})" for f, (acc, n) in accuracy_by_form(rows).items()))
        return
    rows = problems(args.wording, args.n, args.seed)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} problems -> {args.out}")


if __name__ == "__main__":
    main()
