"""The shipped-models study's selection and decision rule (studies/forms_study.py), on made-up runs and figures."""
import json

from studies.forms_study import decide, select

SETS = ["arith2", "heldout", "pairs"]


def test_select_takes_the_best_validation_step_whose_checkpoint_exists(tmp_path):
    run = tmp_path / "hrpo-s0"
    for step in (100, 200):
        (run / "checkpoints" / f"step-{step:06d}").mkdir(parents=True)
        (run / "checkpoints" / f"step-{step:06d}" / "config.json").write_text("{}")
    lines = [{"step": 100, "accuracy": 0.5}, {"step": 200, "accuracy": 0.5}, {"step": 300, "accuracy": 0.9}]
    (run / "eval.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (tmp_path / "grpo-s0").mkdir()                                  # no eval.jsonl yet: not selected
    chosen = select(tmp_path)
    assert list(chosen) == ["hrpo-s0"]                              # step 300 has no checkpoint; tie -> later
    assert chosen["hrpo-s0"]["step"] == 200 and chosen["hrpo-s0"]["checkpoint"].endswith("step-000200")


def test_decision_rule():
    acc = {"hrpo-old": {"arith2": 0.80}, "hrpo-new": {"arith2": 0.81, "heldout": 0.5, "pairs": 0.4},
           "grpo-new": {"arith2": 0.80, "heldout": 0.5, "pairs": 0.39}}
    diffs = {s: (0.01, -0.019, 0.04) for s in SETS}
    ok, lines = decide(acc, diffs, SETS)
    assert ok and len(lines) == 4 and all(line.endswith("ok") for line in lines)
    worse = {**acc, "hrpo-new": {**acc["hrpo-new"], "arith2": 0.79}}
    assert decide(worse, diffs, SETS)[0] is False                  # below the old HRPO on arith
    behind = {**acc, "grpo-new": {**acc["grpo-new"], "pairs": 0.41}}
    assert decide(behind, diffs, SETS)[0] is False                 # behind GRPO on one set
    wide = {**diffs, "heldout": (0.0, -0.021, 0.03)}
    ok, lines = decide(acc, wide, SETS)
    assert not ok and "FAILS" in lines[2]                          # the interval reaches below -2 points
