"""The pluggable reward (docs/DESIGN.md section 1.4): `Trainer(cfg, reward_fn=...)` and `TrainConfig.reward`.

On the tiny random llama: a custom reward function sets the rewards and the group advantages the trainer
optimises, gets each completion's answer, kind and question, and `accuracy` / `format_rate` still come from
the task's own check; the default is the task check by name; a reward that returns too few or non-finite
values stops the step with one line naming it.
Test: pytest tests/test_reward_fn.py
"""
import json

import pytest
import torch

from hrpo.config import ConfigError, TrainConfig, TrainingError
from hrpo.loss import group_advantages
from hrpo.rewards import REWARDS, math_reward, score, task_reward
from hrpo.trainer import Trainer, problems_for_step

TINY = dict(model="tiny-random", task="arith", group_size=2, batch_prompts=2, max_new_tokens=8, lora_rank=4,
            lora_alpha=8, lr=1e-2, gate_lr=1e-2, lambda_lr=1e-2, max_grad_norm=1.0, device="cpu", steps=1)


def first_batch(trainer):
    cfg = trainer.cfg
    return problems_for_step(trainer.task.problems, 0, cfg.batch_prompts, cfg.seed)


def test_custom_reward_fn_sets_rewards_and_advantages(tmp_path):
    calls = []

    def alternating(completions, answers, **columns):
        """1.0 for the second completion of each group of two: advantages of -1/+1 whatever the text."""
        calls.append((list(completions), list(answers), columns))
        return [float(i % 2) for i in range(len(completions))]

    cfg = TrainConfig(**TINY, out=str(tmp_path / "custom"))
    trainer = Trainer(cfg, reward_fn=alternating)
    problems = first_batch(trainer)
    mb, stats = trainer._rollouts(0, 0, problems)
    completions, answers, columns = calls[0]
    rows = [p for p in problems for _ in range(cfg.group_size)]
    assert answers == [p.answer for p in rows] and len(completions) == len(rows)
    assert columns == {"kinds": [p.kind for p in rows], "questions": [p.question for p in rows]}
    want = torch.tensor([float(i % 2) for i in range(len(rows))])
    assert stats["reward_mean"] == pytest.approx(0.5)
    assert torch.allclose(mb["adv"].cpu(), group_advantages(want, cfg.group_size))
    assert (mb["adv"].abs() > 0.5).all()                 # the default reward gives 0 for every random completion
    scores = [score(p.kind, c, p.answer) for p, c in zip(rows, completions)]
    assert stats["accuracy"] == sum(c for c, _ in scores) / len(rows)
    assert stats["format_rate"] == sum(f for _, f in scores) / len(rows)

    seen = []
    trainer.callback = seen.append
    trainer.train()                                      # a whole step: logged with the custom reward
    line = json.loads((tmp_path / "custom" / "metrics.jsonl").read_text().splitlines()[0])
    assert line == seen[0] and line["reward_mean"] == pytest.approx(0.5)
    assert {"accuracy", "format_rate"} <= set(line) and 0 <= line["accuracy"] <= 1
    assert line["grad_norm"] > 0 and line["skipped_updates"] == 0


def test_default_reward_is_the_task_check_by_name(tmp_path):
    default = Trainer(TrainConfig(**TINY, out=str(tmp_path / "a")))
    assert default.reward_fn is task_reward is REWARDS["task"]
    problems = first_batch(default)
    mb, stats = default._rollouts(0, 0, problems)
    rows = [p for p in problems for _ in range(default.cfg.group_size)]
    assert 0 <= stats["reward_mean"] <= min(stats["accuracy"], stats["format_rate"]) + 1e-9   # correct AND formatted
    assert mb["adv"].numel() == len(rows)
    assert Trainer(TrainConfig(**TINY, reward="math", out=str(tmp_path / "b"))).reward_fn is math_reward


def test_bad_reward_functions_stop_the_step_with_one_line(tmp_path):
    trainer = Trainer(TrainConfig(**TINY, out=str(tmp_path / "bad")))
    problems = first_batch(trainer)

    def too_few(completions, answers, **columns):
        return [1.0]

    def not_finite(completions, answers, **columns):
        return [float("nan")] * len(completions)

    for fn, msg in [(too_few, "too_few returned 1 rewards for 4 completions"),
                    (not_finite, "not_finite returned a non-finite reward")]:
        trainer.reward_fn = fn
        with pytest.raises(TrainingError, match=msg):
            trainer._rollouts(0, 0, problems)
    with pytest.raises(ConfigError, match="unknown reward 'nope'; known: task, math, choice, qa"):
        TrainConfig(**{**TINY, "reward": "nope"})
