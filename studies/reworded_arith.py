"""A second held-out set for the issue-10 study: arith level-2 problems in wordings the arith task never uses.

Same arithmetic as `arith:2` (one addition or subtraction, numbers <= 20, the same answer-format hint), but
different sentence frames, objects and question forms, so accuracy here says whether training generalised
beyond the task's templates.  Deterministic (seeded); writes `{"question", "answer"}` lines for `jsonl:PATH`.

    python -m studies.reworded_arith --n 300 --out runs/eval/reworded.jsonl
    python -m hrpo eval --model SPEC --task jsonl:runs/eval/reworded.jsonl --greedy
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=2505)
    ap.add_argument("--out", default="runs/eval/reworded.jsonl")
    args = ap.parse_args()
    rng, seen, rows = random.Random(args.seed), set(), []
    while len(rows) < args.n:
        row = reworded_problem(rng)
        if row["question"] not in seen:
            seen.add(row["question"])
            rows.append(row)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} problems -> {args.out}")


if __name__ == "__main__":
    main()
