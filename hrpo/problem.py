"""One task problem: the question a model is asked, its reference answer and the kind of check that scores it.
Test: pytest tests/test_tasks.py
"""
from dataclasses import dataclass, field


@dataclass
class Problem:
    question: str                 # the full user message (choices included for multiple choice)
    answer: str                   # reference: a number string (math), a letter (choice), 'a|b' (qa)
    kind: str = "math"
    meta: dict = field(default_factory=dict, compare=False)   # e.g. arith: {"level", "expr", "ops"}
