"""Built-in tasks and dataset loaders: `load_task(spec)` -> Task of Problems (user text + reference).

Specs:
  arith, arith:<1-5>  seeded, procedurally generated arithmetic word problems (levels: more steps and
                      larger numbers).  A problem's split is decided by a SHA-256 of its text (sans hint),
                      so train and test are disjoint by construction; train has 5000 problems (seeded
                      by `seed`), test 500 (fixed, `seed` is ignored); `limit` asks for more or fewer.
  forms               arithmetic word problems in many question forms (hrpo/word_problems.py), training forms
                      and templates: train 5000 (seeded), valid 300 and test 500 (fixed), split by SHA-256
  forms:heldout       the held-out forms and templates of `forms`: 500 fixed problems, served for any split
  multi, multi:<lang> the question forms in the eleven MGSM languages (hrpo/multilingual_problems.py), all
                      languages in turn or one: train 5000 (seeded), valid 300, test 500 (fixed), by SHA-256;
                      multi:heldout, multi:<lang>:heldout: the held-out forms and templates (550 / 50 fixed)
  everyday            data/everyday/everyday.jsonl: hand-written everyday problems (evaluation only; any split)
  gsm8k               <data>/gsm8k/{train,test}.jsonl[.gz], else HF `datasets` openai/gsm8k
  mgsm:<lang>         <data>/mgsm/mgsm_<lang>.tsv[.gz] (question TAB answer; test data, served for any split)
  jsonl:PATH          lines {"question", "answer"} (math; "kind": "qa" for QA, answer str or list), or
                      {"question", "choices": [...], "answer": "B"} (multiple choice, lettered A-J);
                      PATH may be gzipped (*.gz)
Splits: train, valid, test.  Only `forms` and `multi` have a valid split; arith and gsm8k have train and test; mgsm and
jsonl serve their one file for train and test; forms:heldout and everyday serve their one set for any split.
Malformed file lines are skipped, counted in Task.skipped and reported on stderr.
<data> is `data_dir`, else $HRPO_DATA, else the repository's own data/ (GSM8K and MGSM, gzipped, with
their licences: data/README.md).  A file is read plain when present, else from its `.gz`.
Prompts: tasks give only the user text; HybridModel.encode adds the chat template and system prompt.
Test: pytest tests/test_tasks.py
"""
import gzip
import hashlib
import json
import os
import random
import string
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .problem import Problem
from .prompts import ANSWER_HINT

MGSM_LANGS = ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh")
SPECS = ("arith", "arith:<level 1-5>", "forms", "forms:heldout", "multi[:<lang>][:heldout]", "everyday", "gsm8k",
         "mgsm:<" + "|".join(MGSM_LANGS) + ">", "jsonl:PATH")
LETTERS = string.ascii_uppercase[:10]                   # A-J
ARITH_SIZES = {"train": 5000, "test": 500}
SPLITS = ("train", "valid", "test")
TEST_SHARE = 10                                          # 1 in 10 question texts belongs to the test split
# level -> (steps, largest starting number, largest operand, operations)
ARITH_LEVELS = {1: (1, 9, 9, "+"), 2: (1, 20, 10, "+-"), 3: (2, 50, 20, "+-"),
                4: (3, 100, 50, "+-*"), 5: (4, 500, 100, "+-*/")}
DEFAULT_ARITH_LEVEL = 2                                  # calibrated (studies/calibrate_arith.py); the shipped level


@dataclass
class Task:
    name: str
    kind: str
    problems: list[Problem]
    skipped: int = 0              # malformed input lines left out
    message: str = ""             # what was skipped, with the first bad line number
    _order: list[int] = field(default_factory=list, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.problems)

    def sample(self, n: int, rng: random.Random) -> list[Problem]:
        """n problems, without replacement within an epoch (a fresh rng-shuffled pass when one ends)."""
        if not self.problems:
            raise ValueError(f"task {self.name} has no problems")
        out = []
        for _ in range(n):
            if not self._order:
                self._order = list(range(len(self.problems)))
                rng.shuffle(self._order)
            out.append(self.problems[self._order.pop()])
        return out

    def batches(self, batch_size: int, seed: int = 0) -> Iterator[list[Problem]]:
        """Endless batches drawn with `sample` from random.Random(seed)."""
        rng = random.Random(seed)
        while True:
            yield self.sample(batch_size, rng)


# ---------------------------------------------------------------- arith

NAMES = {"She": ("Mia", "Ava", "Zoe", "Ivy", "Lily", "Emma", "Ella", "Ruby", "Nina", "Sofia"),
         "He": ("Tom", "Leo", "Sam", "Max", "Ben", "Noah", "Jack", "Omar", "Ravi", "Kai")}
ITEMS = ("apples", "marbles", "stickers", "books", "coins", "pencils", "cookies", "stamps", "shells",
         "cards", "balloons", "oranges", "toy cars", "beads", "eggs", "crayons")
STEP_TEXT = {"+": ("{p} buys {b} more.", "{p} finds {b} more.", "A friend gives {o} {b} more."),
             "-": ("{p} gives away {b}.", "{p} loses {b}.", "{p} sells {b}."),
             "*": ("Then the number of {item} becomes {b} times as large.",),
             "/": ("{p} splits them into {b} equal groups and keeps one group.",)}


def split_of(story: str) -> str:
    """'test' for 1 in TEST_SHARE problem texts (by SHA-256, stable across machines), else 'train'."""
    return "test" if int(hashlib.sha256(story.encode()).hexdigest()[:8], 16) % TEST_SHARE == 0 else "train"


def _arith_step(value: int, ops: str, top: int, rng: random.Random) -> tuple[str, int]:
    """One operation on `value` with an operand in range; results stay non-negative integers."""
    choices = [op for op in ops if op not in "-/" or value > 1]
    op = rng.choice(choices)
    if op == "+":
        return op, rng.randint(1, top)
    if op == "-":
        return op, rng.randint(1, min(top, value - 1))
    if op == "*":
        return op, rng.randint(2, min(5, top))
    divisors = [d for d in range(2, min(top, value) + 1) if value % d == 0]
    return ("/", rng.choice(divisors)) if divisors else ("+", rng.randint(1, top))


def arith_problem(level: int, rng: random.Random) -> Problem:
    """A word problem: a starting amount, then `steps` operations applied left to right."""
    steps, start_top, top, ops = ARITH_LEVELS[level]
    p = rng.choice(("She", "He"))
    name, item, o = rng.choice(NAMES[p]), rng.choice(ITEMS), {"She": "her", "He": "him"}[p]
    value = rng.randint(2, start_top)
    expr, text, used = str(value), [f"{name} has {value} {item}."], []
    for _ in range(steps):
        op, b = _arith_step(value, ops, top, rng)
        value = {"+": value + b, "-": value - b, "*": value * b, "/": value // b}[op]
        expr = f"({expr}) {op} {b}" if used else f"{expr} {op} {b}"
        text.append(rng.choice(STEP_TEXT[op]).format(p=p, o=o, b=b, item=item))
        used.append(op)
    text.append(f"How many {item} does {name} have now?")
    return Problem(" ".join(text) + ANSWER_HINT, str(value), "math", {"level": level, "expr": expr, "ops": used})


def arith_problems(level: int, split: str, n: int, seed: int = 0) -> list[Problem]:
    """n distinct problems of one split; the test split ignores `seed` (a fixed held-out set)."""
    rng = random.Random(f"hrpo-arith/{level}/{split}/{0 if split == 'test' else seed}")
    out, seen, tries = [], set(), 0
    while len(out) < n:
        tries += 1
        if tries > 200 * n + 10_000:
            raise ValueError(f"arith:{level} has fewer than {n} distinct {split} problems")
        prob = arith_problem(level, rng)
        story = prob.question.removesuffix(ANSWER_HINT)             # the split ignores the wording hint
        if story not in seen and split_of(story) == split:
            seen.add(story)
            out.append(prob)
    return out


def _arith(spec: str, split: str, limit: int | None, seed: int) -> Task:
    level = DEFAULT_ARITH_LEVEL
    if ":" in spec:
        arg = spec.split(":", 1)[1]
        if arg not in {str(k) for k in ARITH_LEVELS}:
            raise ValueError(f"unknown arith level {arg!r}; use one of {', '.join(map(str, ARITH_LEVELS))}")
        level = int(arg)
    n = limit if limit is not None else ARITH_SIZES[split]
    return Task(f"arith:{level}", "math", arith_problems(level, split, n, seed))


# ---------------------------------------------------------------- files

REPO_DATA = Path(__file__).resolve().parents[1] / "data"     # shipped with the repository


def data_root(data_dir: str | None = None) -> Path:
    """`data_dir`, else $HRPO_DATA, else the repository's own data/ folder."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get("HRPO_DATA"):
        return Path(os.environ["HRPO_DATA"]).expanduser()
    return REPO_DATA


def data_file(path: Path) -> Path:
    """`path` when it is a file, else its gzipped `path.gz` when that is one, else `path` (missing)."""
    gz = path.with_name(path.name + ".gz")
    return gz if not path.is_file() and gz.is_file() else path


def number_answer(text) -> str:
    """Reference number of a math answer: after '####' when present, commas removed."""
    text = str(text)
    return (text.rsplit("####", 1)[1] if "####" in text else text).strip().replace(",", "")


def read_lines(path: Path) -> Iterator[tuple[int, str | None]]:
    """(line number, text) per non-blank line; text is None when the line is not valid UTF-8.
    A `.gz` file is decompressed on the fly; a damaged one raises ValueError."""
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
        lines = enumerate(f, 1)
        while True:
            try:
                number, raw = next(lines)
            except StopIteration:
                return
            except (OSError, EOFError, zlib.error) as err:      # gzip.BadGzipFile is an OSError
                raise ValueError(f"{path}: damaged gzip file ({type(err).__name__}: {err})") from None
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield number, None
                continue
            if text.strip():
                yield number, text.rstrip("\r\n")


def parse_record(rec) -> Problem:
    """A Problem from one JSONL record; raises ValueError saying what is wrong."""
    if not isinstance(rec, dict):
        raise ValueError("not a JSON object")
    question, answer = rec.get("question"), rec.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("missing 'question'")
    if "choices" in rec:
        choices = rec["choices"]
        if not isinstance(choices, list) or not 2 <= len(choices) <= len(LETTERS) \
                or not all(isinstance(c, str) for c in choices):
            raise ValueError(f"'choices' must be a list of 2-{len(LETTERS)} strings")
        letter = str(answer).strip().strip("()").strip(".").upper()
        if letter not in LETTERS[:len(choices)]:
            raise ValueError(f"'answer' must be a letter A-{LETTERS[len(choices) - 1]}")
        lines = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))
        return Problem(f"{question.strip()}\n{lines}", letter, "choice")
    if rec.get("kind") == "qa":
        alts = answer if isinstance(answer, list) else [answer]
        if not alts or not all(isinstance(a, str) and a.strip() for a in alts):
            raise ValueError("'answer' must be a string or a list of strings")
        return Problem(question.strip(), "|".join(a.strip() for a in alts), "qa")
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)) or not number_answer(answer):
        raise ValueError("missing 'answer'")
    return Problem(question.strip(), number_answer(answer), "math")


def load_jsonl(path: Path, name: str) -> Task:
    """A Task from a JSONL file; bad lines (JSON, fields, UTF-8, another kind) are skipped and counted."""
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    problems, bad = [], []
    for number, text in read_lines(path):
        try:
            if text is None:
                raise ValueError("not valid UTF-8")
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f"bad JSON ({err.msg})") from None
            prob = parse_record(rec)
            if problems and prob.kind != problems[0].kind:
                raise ValueError(f"kind {prob.kind} in a {problems[0].kind} file")
            problems.append(prob)
        except ValueError as err:
            bad.append((number, str(err)))
    if not problems:
        where = f"; first bad line {bad[0][0]}: {bad[0][1]}" if bad else " (the file is empty)"
        raise ValueError(f"{path}: no valid problem lines{where}")
    message = f"skipped {len(bad)} malformed line(s); first: line {bad[0][0]} ({bad[0][1]})" if bad else ""
    return Task(name, problems[0].kind, problems, len(bad), message)


def _gsm8k(split: str, data_dir: str | None) -> Task:
    path = data_file(data_root(data_dir) / "gsm8k" / f"{split}.jsonl")
    if path.is_file():
        task = load_jsonl(path, "gsm8k")
        task.kind = "math"
        return task
    try:
        from datasets import load_dataset
        rows = load_dataset("openai/gsm8k", "main", split=split)
    except Exception as err:
        raise ValueError(f"GSM8K data not found: no {path}, and HF datasets could not load openai/gsm8k "
                         f"({type(err).__name__}: {err}). Put {split}.jsonl or {split}.jsonl.gz under "
                         "<data>/gsm8k (pass data_dir or set HRPO_DATA), or `pip install datasets` with hub "
                         "access.") from None
    return Task("gsm8k", "math", [Problem(r["question"], number_answer(r["answer"])) for r in rows])


def _mgsm(lang: str, data_dir: str | None) -> Task:
    if lang not in MGSM_LANGS:
        raise ValueError(f"unknown MGSM language {lang!r}; known: {', '.join(MGSM_LANGS)}")
    path = data_file(data_root(data_dir) / "mgsm" / f"mgsm_{lang}.tsv")
    if not path.is_file():
        raise ValueError(f"MGSM data not found: no {path} (or .gz). Get mgsm_<lang>.tsv from HF "
                         "juletxara/mgsm into <data>/mgsm (pass data_dir or set HRPO_DATA).")
    problems, bad = [], []
    for number, text in read_lines(path):
        if text is None or "\t" not in text or not number_answer(text.rsplit("\t", 1)[1]):
            bad.append(number)
            continue
        question, answer = text.rsplit("\t", 1)
        problems.append(Problem(question.strip(), number_answer(answer)))
    if not problems:
        raise ValueError(f"{path}: no valid lines")
    message = f"skipped {len(bad)} malformed line(s); first: line {bad[0]}" if bad else ""
    return Task(f"mgsm:{lang}", "math", problems, len(bad), message)


def _forms(spec: str, split: str, limit: int | None, seed: int) -> Task:
    """`forms` (train / valid / test) or `forms:heldout` (the held-out set whatever the split)."""
    from . import word_problems
    which = "heldout" if spec == "forms:heldout" else split
    n = limit if limit is not None else word_problems.SIZES[which]
    return Task(spec, "math", word_problems.word_problems(which, n, seed))


def _multi(spec: str, split: str, limit: int | None, seed: int) -> Task:
    """`multi[:<lang>]` (train / valid / test) or `multi[:<lang>]:heldout` (the held-out set whatever the split)."""
    from . import multilingual_problems as mp
    parts = spec.split(":")[1:]
    heldout = bool(parts) and parts[-1] == "heldout"
    langs = parts[:-1] if heldout else parts
    if len(langs) > 1 or (langs and langs[0] not in mp.LANGS):
        raise ValueError(f"unknown task {spec!r}; use multi, multi:<{'|'.join(mp.LANGS)}>, with :heldout or not")
    which = "heldout" if heldout else split
    n = limit if limit is not None else mp.SIZES[which] // (len(mp.LANGS) if langs else 1)
    return Task(spec, "math", mp.multilingual_problems(which, n, tuple(langs) or mp.LANGS, seed))


def _no_valid_split(spec: str) -> None:
    """Raise ValueError for split 'valid' of a task without one, saying which splits the task has."""
    if spec in ("arith", "gsm8k") or spec.startswith("arith:"):
        has = "train and test"
    elif spec.startswith("mgsm:") or (spec.startswith("jsonl:") and len(spec) > len("jsonl:")):
        has = "one file, served for train and test"
    else:
        raise ValueError(f"unknown task {spec!r}; use one of: {', '.join(SPECS)}")
    raise ValueError(f"task {spec!r} has no valid split: it has {has}")


def held_out_split(spec: str) -> str:
    """The split that picks checkpoints during training (TrainConfig.eval_every): valid where the task has
    one (forms, multi), else test."""
    spec = str(spec).strip()
    return "valid" if spec == "forms" or (spec.startswith("multi") and not spec.endswith(":heldout")) else "test"


def load_task(spec: str, split: str = "train", limit: int | None = None, seed: int = 0,
              data_dir: str | None = None) -> Task:
    """The task named by `spec` (see the module doc); `limit` keeps the first `limit` problems."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use train, valid or test")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    spec = str(spec).strip()
    if spec in ("forms", "forms:heldout"):
        return _forms(spec, split, limit, seed)
    if spec == "multi" or spec.startswith("multi:"):
        return _multi(spec, split, limit, seed)
    if split == "valid" and spec != "everyday":
        _no_valid_split(spec)
    if spec == "arith" or spec.startswith("arith:"):
        return _arith(spec, split, limit, seed)
    if spec == "everyday":
        task = load_jsonl(REPO_DATA / "everyday" / "everyday.jsonl", "everyday")
    elif spec == "gsm8k":
        task = _gsm8k(split, data_dir)
    elif spec.startswith("mgsm:"):
        task = _mgsm(spec.split(":", 1)[1], data_dir)
    elif spec.startswith("jsonl:") and len(spec) > len("jsonl:"):
        path = Path(spec.split(":", 1)[1]).expanduser()
        task = load_jsonl(path, f"jsonl:{path.name}")
    else:
        raise ValueError(f"unknown task {spec!r}; use one of: {', '.join(SPECS)}")
    task.problems = task.problems[:limit] if limit is not None else task.problems
    if task.skipped:                       # never silently: say how many lines were left out
        print(f"warning: {task.name}: {task.message}", file=sys.stderr)
    return task
