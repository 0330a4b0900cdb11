"""The shipped-models study's selection and decision rule (studies/forms_study.py), on made-up runs and figures."""
import json

from hrpo.checkpoint import FORMAT
from studies.forms_study import decide
from studies.study import select

SETS = ["arith2", "heldout", "pairs"]
CHECKPOINT = json.dumps({"format": FORMAT})                        # what makes a directory a checkpoint


def test_select_takes_the_best_validation_step_whose_checkpoint_exists(tmp_path):
    run = tmp_path / "hrpo-s0"
    for step in (100, 200):
        (run / "checkpoints" / f"step-{step:06d}").mkdir(parents=True)
        (run / "checkpoints" / f"step-{step:06d}" / "config.json").write_text(CHECKPOINT)
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


def test_only_a_finished_run_is_evaluated(tmp_path):
    from hrpo.rundir import finished
    run = tmp_path / "hrpo-s0"
    (run / "checkpoints" / "step-000200").mkdir(parents=True)
    (run / "checkpoints" / "step-000200" / "config.json").write_text(CHECKPOINT)
    assert not finished(run)                                        # no train_config.json
    (run / "train_config.json").write_text(json.dumps({"steps": 300}))
    assert not finished(run)                                        # still training: step 300 missing
    (run / "checkpoints" / "step-000300").mkdir()
    (run / "checkpoints" / "step-000300" / "config.json").write_text(CHECKPOINT)
    assert finished(run)
    (run / "train_config.json").write_text('{"steps": "many"}')
    assert not finished(run)


def test_a_name_evaluated_on_another_spec_is_evaluated_anew(tmp_path, monkeypatch):
    """Rows are reused only for the spec that made them: a run selected anew is never read from stale rows."""
    import sys

    from studies.study import evaluated_spec
    from studies.study import main as study_main
    out = tmp_path / "rows"

    def run(spec):
        monkeypatch.setattr(sys, "argv", ["study", "run", "--out", str(out), "--limit", "2", "--sets", "arith:2",
                                          "--max-new-tokens", "4", f"m-plain={spec}"])
        study_main()
    run("tiny-random")
    rows = out / "m-plain__arith2.jsonl"
    assert evaluated_spec(out, "m-plain") == "tiny-random" and len(rows.read_text().splitlines()) == 2
    rows.write_text("stale\n")
    run("tiny-random")
    assert rows.read_text() == "stale\n"                            # same spec: resumed, not redone
    run("tiny-random@r0.9")
    assert evaluated_spec(out, "m-plain") == "tiny-random@r0.9" and len(rows.read_text().splitlines()) == 2


def test_evaluation_resumes_set_by_set_and_never_keeps_another_specs_rows(tmp_path, monkeypatch):
    """A set whose rows are there for the same spec is skipped (an evaluation stopped between sets resumes);
    a new spec removes every row of the old one, so no set of it can pass for the new spec later."""
    import sys

    from studies.study import main as study_main
    out = tmp_path / "rows"

    def run(spec, sets):
        monkeypatch.setattr(sys, "argv", ["study", "run", "--out", str(out), "--limit", "2", "--sets", sets,
                                          "--max-new-tokens", "4", f"m-plain={spec}"])
        study_main()
    run("tiny-random", "arith:2")
    (out / "m-plain__arith2.jsonl").write_text("kept\n")
    run("tiny-random", "arith:2,arith:1")
    assert (out / "m-plain__arith2.jsonl").read_text() == "kept\n"       # done before: skipped
    assert len((out / "m-plain__arith1.jsonl").read_text().splitlines()) == 2
    run("tiny-random@r0.9", "arith:1")
    assert not (out / "m-plain__arith2.jsonl").exists()                  # the old spec's rows are gone
    assert len((out / "m-plain__arith1.jsonl").read_text().splitlines()) == 2
    assert not list(out.glob("*.part"))


def test_gate_table_averages_each_runs_last_ten_steps(tmp_path):
    from studies.gate_report import gate_table
    for name, hidden in (("hrpo-s0", 0.2), ("grpo-s0", 0.0)):
        run = tmp_path / name
        run.mkdir()
        rows = [{"step": i, "accuracy": i / 20, "hidden_ratio_mean": hidden + (i > 10) * 0.1,
                 "hidden_ratio_p90_p10": 1.5 if hidden else None, "hidden_ratio_digit": hidden or None}
                for i in range(1, 21)]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    lines = gate_table(tmp_path).splitlines()
    assert lines[2].startswith("| grpo-s0 | 20 | 0.775 | 0.1000 | - | -")     # steps 11-20: mean accuracy 15.5/20
    assert lines[3].startswith("| hrpo-s0 | 20 | 0.775 | 0.3000 | 1.500 | 0.2000 |")
