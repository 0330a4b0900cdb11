"""Answer extraction, the format check and the reward functions (docs/DESIGN.md section 1, "Reward").

A completion's answer is the text after its LAST '####'.  Reward = 1.0 when that answer matches the
reference AND '####' occurs exactly once (`format_ok`), else 0.0.  Checks by task kind:
  math    numbers compared by value after `normalize_number` ("$1,000.00" == "1000", "0.5" == "1/2")
  choice  one letter A-J ("B", "(B)", "b.", "B) text", "the answer is B")
  qa      SQuAD-style exact match (lowercase, no articles/punctuation/extra spaces); the reference is
          a list of acceptable strings or one string whose alternatives are separated by '|'
Everything here is pure and never raises on any input string.  Reward functions are TRL-style callables
`fn(completions, answers, **columns) -> list[float]` (see "rewards and registry" below); `REWARDS` /
`get_reward(name)` give them by name (`TrainConfig.reward`, the trainer's default), `Trainer(cfg,
reward_fn=...)` takes any; `score()` returns (correct, formatted) separately for the metrics.
Test: pytest tests/test_rewards.py
"""
import math
import re
import string
import threading
import unicodedata
from fractions import Fraction

MARKER = "####"
MAX_DIGITS = 60          # longer numbers are not answers: normalize_number gives None
LATEX_MAX_CHARS = 200    # math_verify only sees short LaTeX answers (no powers), so it cannot hang


def extract_answer(text: str) -> str | None:
    """Text after the last '####', stripped; None when there is no marker."""
    return text.rsplit(MARKER, 1)[1].strip() if MARKER in text else None


def format_ok(text: str) -> bool:
    """'####' occurs exactly once."""
    return text.count(MARKER) == 1


# ---------------------------------------------------------------- numbers

_DASHES = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2014": "-", "\uff0d": "-", "\uff0b": "+"})
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-+]?)\s*\$?\s*"
    r"(?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)?(?:\.(?P<frac>\d+))?"
    r"(?:\s*/\s*(?P<den>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?![\d.]))?", re.ASCII)
# LaTeX that math_verify may see: fractions, boxes, text and plain numbers (no powers, roots, symbols)
_LATEX_OPS = re.compile(r"\\(?:[dt]?frac|sqrt|cdot|times|div)")   # no first-number fallback past these
_LATEX_OK = re.compile(r"(?:\\(?:[dt]?frac|boxed|text|mathrm|left|right|[$%,!; ])|[{}\d\s.,+\-/$%()a-zA-Z])*")


def _decimal(value: Fraction) -> str | None:
    """'3.25' for values with a finite decimal expansion (denominator 2^a 5^b), else None."""
    den, twos, fives = value.denominator, 0, 0
    while den % 2 == 0:
        den, twos = den // 2, twos + 1
    while den % 5 == 0:
        den, fives = den // 5, fives + 1
    if den != 1:
        return None
    places = max(twos, fives)
    digits = str(abs(value.numerator) * 10 ** places // value.denominator).rjust(places + 1, "0")
    text = (digits[:-places] + "." + digits[-places:]).rstrip("0").rstrip(".") if places else digits
    return ("-" if value < 0 else "") + text


def _digit_count(whole: str, frac: str) -> int:
    """Significant length of a decimal: integer digits without leading zeros plus fraction digits."""
    return len(whole.lstrip("0")) + len(frac)


def canonical(value: Fraction) -> str:
    """One string per value: '18', '-2.5', '1/3' (a fraction when the decimal would be too long)."""
    text = _decimal(value)
    if text is None or _digit_count(*(text.lstrip("-") + ".").split(".")[:2]) > MAX_DIGITS:
        text = f"{value.numerator}/{value.denominator}"
    return text


def _first_number(text: str) -> Fraction | None:
    """Value of the first number in plain text: '-$1,000.50 dollars' -> -1000.5, '3/4 cup' -> 3/4."""
    for m in _NUMBER.finditer(text):
        whole, frac, den = m["int"], m["frac"], m["den"]
        if whole is None and frac is None:
            continue
        digits, frac = (whole or "").replace(",", "").lstrip("0"), (frac or "").rstrip("0")
        bottom = (den or "").replace(",", "").lstrip("0")
        if _digit_count(digits, frac) > MAX_DIGITS or len(bottom) > MAX_DIGITS:
            return None
        value = Fraction(int(digits or "0")) + (Fraction(int(frac), 10 ** len(frac)) if frac else 0)
        if den is not None and m["frac"] is None:
            bottom = int(bottom or "0")
            if bottom == 0:
                return None
            value /= bottom
        return -value if m["sign"] == "-" else value
    return None


def _math_verify_value(text: str) -> Fraction | None:
    """Value of a short LaTeX answer ('\\frac{3}{4}', '\\boxed{18}') via HF math_verify, or None."""
    if len(text) > LATEX_MAX_CHARS or not _LATEX_OK.fullmatch(text):
        return None
    try:
        from math_verify import LatexExtractionConfig, parse
        # math_verify's timeout uses signal.alarm, which only works in the main thread
        main = threading.current_thread() is threading.main_thread()
        text = text.replace("\\%", "").replace("%", "")        # '25\\%' is 25, as plain '25%' is
        found = parse(f"${text}$", extraction_config=[LatexExtractionConfig()], parsing_timeout=5 if main else None)
        expr = found[0] if found else None
        if getattr(expr, "is_Float", False) and expr.is_finite:
            value = Fraction(str(expr))                             # '\\boxed{0.5}': a sympy Float
        elif getattr(expr, "is_number", False) and expr.is_rational:
            value = Fraction(*(int(x) for x in expr.as_numer_denom()))
        else:
            return None
        return value if max(len(str(abs(value.numerator))), len(str(value.denominator))) <= MAX_DIGITS else None
    except Exception:            # a parser failure is simply "no number here"
        return None


def normalize_number(s: str) -> str | None:
    """Canonical value string of the first number in an answer, or None when there is none.

    Handles commas, '$', '%', units/trailing words, '.0'/'.00', '+'/unicode minus, fractions
    ('3/4' == '0.75'), and short LaTeX answers through math_verify.  Idempotent on its output.
    """
    try:
        if not isinstance(s, str):
            return None
        text = unicodedata.normalize("NFKC", s).translate(_DASHES).strip()
        value = _math_verify_value(text) if "\\" in text else None
        if value is None and _LATEX_OPS.search(text):
            return None                  # '\\frac{1}{0}' or '\\sqrt{2}' is not the number 1 or 2
        if value is None:
            value = _first_number(text.replace("\\$", "$").replace("\\!", "").replace("{,}", ","))
        return None if value is None else canonical(value)
    except Exception:
        return None


def math_correct(completion: str, answer: str) -> bool:
    """The number after the completion's last '####' equals the reference by value."""
    got = extract_answer(completion)
    ref = normalize_number(answer)
    return got is not None and ref is not None and normalize_number(got) == ref


# ---------------------------------------------------------------- multiple choice

_LETTER_PATTERNS = [
    re.compile(r"^\(?([A-J])\)?(?=$|[\s.,:;)\]!?])"),                        # B  (B)  B.  B) text
    re.compile(r"^\(?([a-j])\)?(?=$|[.,:;)\]!?])"),                          # b  b.  (b)
    re.compile(r"\b(?:answer|option|choice)(?:\s+is)?[\s:]*\(?([A-Ja-j])\)?(?![A-Za-z])", re.I),
]


def choice_letter(text: str | None) -> str | None:
    """The chosen letter A-J in an answer text, upper-case, or None."""
    if not isinstance(text, str):
        return None
    text = text.strip().strip("*_`'\"").strip()
    for pattern in _LETTER_PATTERNS:
        m = pattern.search(text)
        if m:
            return m.group(1).upper()
    return None


def choice_correct(completion: str, answer_letter: str) -> bool:
    """The letter after the completion's last '####' is the reference letter (case-insensitive)."""
    got = choice_letter(extract_answer(completion))
    return got is not None and got == choice_letter(answer_letter)


# ---------------------------------------------------------------- extractive QA

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_text(s: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and articles, collapse whitespace."""
    return " ".join(_ARTICLES.sub(" ", s.lower().translate(_PUNCT)).split())


def qa_alternatives(answer: str | list[str]) -> list[str]:
    """Acceptable answers: a list as given, or a string split on '|'."""
    return list(answer) if isinstance(answer, (list, tuple)) else str(answer).split("|")


def qa_correct(completion: str, answer: str | list[str]) -> bool:
    """Exact match after SQuAD normalisation against any alternative; an empty answer never matches."""
    got = extract_answer(completion)
    if got is None or not normalize_text(got):
        return False
    return normalize_text(got) in {normalize_text(a) for a in qa_alternatives(answer)}


# ---------------------------------------------------------------- rewards and registry

CHECKS = {"math": math_correct, "choice": choice_correct, "qa": qa_correct}


def score(kind: str, completion: str, answer) -> tuple[bool, bool]:
    """(correct, formatted) for one completion; the reward is `correct and formatted`."""
    if kind not in CHECKS:
        raise ValueError(f"unknown task kind {kind!r}; known: {', '.join(CHECKS)}")
    return CHECKS[kind](completion, answer), format_ok(completion)


# A reward function, as in TRL: a plain callable
#     reward_fn(completions: list[str], answers: list, **columns) -> list[float]
# one float per completion, `answers[i]` the reference of completion i.  The trainer passes the columns
# `kinds` (each completion's task kind: math, choice or qa) and `questions` (its problem text) by keyword;
# a function takes what it needs and ignores the rest through **columns.  `Trainer(cfg, reward_fn=...)`
# takes any such callable; `TrainConfig.reward` names one of REWARDS.  The trainer logs `reward_mean`
# from it and `accuracy` / `format_rate` from `score` whatever the reward.


def _rewards(kinds: list[str], completions: list[str], answers: list) -> list[float]:
    if len(completions) != len(answers) or len(kinds) != len(answers):
        raise ValueError(f"{len(completions)} completions but {len(answers)} answers"
                         + (f" and {len(kinds)} kinds" if len(kinds) != len(answers) else ""))
    return [float(all(score(k, c, a))) for k, c, a in zip(kinds, completions, answers)]


def task_reward(completions: list[str], answers: list, kinds: list[str] | None = None, **columns) -> list[float]:
    """1.0 where the check of each completion's task kind (`kinds`, default math) passes and '####' occurs
    once: the trainer's default, so a jsonl task of choice or qa problems is scored as such."""
    return _rewards(list(kinds) if kinds is not None else ["math"] * len(answers), completions, answers)


def math_reward(completions: list[str], answers: list[str], **columns) -> list[float]:
    """1.0 where the number after '####' equals the reference and '####' occurs once."""
    return _rewards(["math"] * len(answers), completions, answers)


def choice_reward(completions: list[str], answers: list[str], **columns) -> list[float]:
    """1.0 where the letter after '####' is the reference letter and '####' occurs once."""
    return _rewards(["choice"] * len(answers), completions, answers)


def qa_reward(completions: list[str], answers: list, **columns) -> list[float]:
    """1.0 where the text after '####' matches a reference alternative and '####' occurs once."""
    return _rewards(["qa"] * len(answers), completions, answers)


REWARDS = {"task": task_reward, "math": math_reward, "choice": choice_reward, "qa": qa_reward}


def get_reward(name: str):
    """The reward function registered under `name` in REWARDS."""
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; known: {', '.join(REWARDS)}")
    return REWARDS[name]


def apply_reward(reward_fn, completions: list[str], answers: list, **columns) -> list[float]:
    """`reward_fn(completions, answers, **columns)`, checked: one finite number per completion, as floats.

    A function that returns anything else raises ValueError naming it (the trainer's rewards must be
    finite: a NaN advantage would poison the update)."""
    name = getattr(reward_fn, "__name__", type(reward_fn).__name__)
    values = reward_fn(completions, answers, **columns)
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError) as err:
        raise ValueError(f"reward function {name} must return a list of numbers: {err}") from None
    if len(values) != len(completions):
        raise ValueError(f"reward function {name} returned {len(values)} rewards for {len(completions)} completions")
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        raise ValueError(f"reward function {name} returned a non-finite reward ({bad[0]})")
    return values
