"""analysis.lengths: length tables, summaries, paired differences and the evaluate() runner."""
import pytest

from analysis.lengths import (
    TABLE_COLUMNS,
    length_summary,
    length_table,
    paired_differences,
    paired_summary,
    rows_from_traces,
    run_lengths,
    unique_labels,
)


def rows(lengths, rewards):
    return [{"num_tokens": n, "reward": r, "correct": bool(r), "formatted": True, "hidden_ratio": 0.1,
             "answer": "1", "reference": "1"} for n, r in zip(lengths, rewards)]


@pytest.mark.parametrize("specs, labels", [(["a", "b"], ["a", "b"]), (["a", "a", "a"], ["a", "a#2", "a#3"]),
                                           ([], [])])
def test_unique_labels(specs, labels):
    assert unique_labels(specs) == labels


@pytest.mark.parametrize("base, other, mean_diff, shorter, longer", [
    ([10, 20, 30], [5, 20, 40], 5 / 3, 1 / 3, 1 / 3),
    ([10, 10], [10, 10], 0.0, 0.0, 0.0),
    ([100, 100], [50, 60], -45.0, 1.0, 0.0),
])
def test_paired(base, other, mean_diff, shorter, longer):
    t = length_table({"base": rows(base, [1] * len(base)), "hrpo": rows(other, [0] * len(other))})
    assert list(t.columns) == TABLE_COLUMNS
    p = paired_differences(t)
    assert p["diff"].tolist() == [o - b for o, b in zip(other, base)] and set(p["model"]) == {"hrpo"}
    s = paired_summary(p)
    assert s.loc[0, "mean_diff"] == pytest.approx(mean_diff)
    assert s.loc[0, "share_shorter"] == pytest.approx(shorter) and s.loc[0, "share_longer"] == pytest.approx(longer)
    assert s.loc[0, "accuracy_diff"] == -1.0


def test_length_summary_keeps_model_order():
    t = length_table({"z": rows([1, 3], [1, 0]), "a": rows([10, 20, 30, 40], [1, 1, 1, 0])})
    s = length_summary(t)
    assert s["model"].tolist() == ["z", "a"]
    assert s["mean_len"].tolist() == [2.0, 25.0] and s["median_len"].tolist() == [2.0, 25.0]
    assert s["accuracy"].tolist() == [0.5, 0.75] and s["n"].tolist() == [2, 4]
    assert s.loc[1, "min_len"] == 10 and s.loc[1, "max_len"] == 40


def test_empty_tables():
    t = length_table({})
    assert t.empty and length_summary(t).empty and paired_differences(t).empty and paired_summary(
        paired_differences(t)).empty


def test_run_lengths_with_evaluate(tiny):
    from hrpo.config import RolloutConfig
    from hrpo.tasks import Problem
    problems = [Problem("What is 1 + 1?", "2"), Problem("What is 2 + 2?", "4")]
    loaded = []
    table, summaries = run_lengths(["x", "x"], problems, RolloutConfig(max_new_tokens=4, greedy=True),
                                   load=lambda spec: loaded.append(spec) or tiny)
    assert loaded == ["x", "x"] and list(summaries) == ["x", "x#2"]
    assert len(table) == 4 and (table["num_tokens"] == 4).all()
    assert summaries["x"]["n"] == 2
    p = paired_differences(table)
    assert (p["diff"] == 0).all()          # same greedy model twice: same lengths


def test_rows_from_traces_matches_evaluate(tiny):
    from hrpo.config import RolloutConfig
    from hrpo.evaluate import evaluate
    from hrpo.rollout import rollout
    from hrpo.tasks import Problem
    problems = [Problem("What is 1 + 1?", "2")]
    cfg = RolloutConfig(max_new_tokens=3, greedy=True)
    _, ev = evaluate(tiny, problems, cfg)
    mine = rows_from_traces(problems, rollout(tiny, [p.question for p in problems], cfg))
    assert mine == ev
