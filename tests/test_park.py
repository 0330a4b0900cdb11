"""studies/park.py: a study's runs parked in the repository and restored on a machine whose home is empty.
Real tiny-random runs: the restored run resumes where the parked one stopped and ends as an uninterrupted run
does."""
import json
import shutil

import pytest

from hrpo import rundir
from hrpo.config import TrainConfig
from hrpo.trainer import Trainer
from studies import park

TINY = dict(model="tiny-random", task="arith", group_size=2, batch_prompts=1, max_new_tokens=6, lora_rank=2,
            lora_alpha=4, lr=1e-2, device="cpu", seed=3, steps=5, save_every=1, keep_checkpoints=10,
            eval_every=2, eval_limit=2)


def train(out, stop_after=None, resume=False):
    done = []
    stop = (lambda: done.append(1) or len(done) >= stop_after) if stop_after else None
    Trainer(TrainConfig(**TINY, out=str(out)), resume=resume, should_stop=stop).train()


def rewards(run) -> list:
    return [(r["step"], r["reward_mean"], r["loss"]) for r in rundir.read_rows(run / "metrics.jsonl")]


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """runs/hrpo-s0 stopped after 3 of 5 steps (checkpoints 1-3, eval at step 2), with rows and a log."""
    runs = tmp_path_factory.mktemp("home") / "runs"
    train(runs / "hrpo-s0", stop_after=3)
    (runs / "hrpo-s0.log").write_text("trainer log\n")
    (runs / "eval" / "rows").mkdir(parents=True)
    (runs / "eval" / "rows" / "hrpo-old__everyday.jsonl").write_text('{"reward": 1.0}\n')
    (runs / "eval" / "rows" / "hrpo-old.spec").write_text("checkpoints/smollm2-arith-hrpo")
    return runs


def test_save_keeps_the_newest_checkpoint_with_state_and_the_best_eval_step(stopped, tmp_path):
    assert park.save(stopped, tmp_path / "parked") == {"hrpo-s0": [2, 3]}
    run = tmp_path / "parked" / "hrpo-s0"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000002", "step-000003"]
    assert (run / "checkpoints" / "step-000003" / "trainer_state.pt").is_file()
    assert not (run / "checkpoints" / "step-000002" / "trainer_state.pt").exists()     # weights only
    assert (run / "checkpoints" / "step-000002" / "adapter").is_dir()
    assert [r["step"] for r in rundir.read_rows(run / "eval.jsonl")] == [2]
    assert (tmp_path / "parked" / "hrpo-s0.log").read_text() == "trainer log\n"
    assert (tmp_path / "parked" / "eval" / "rows" / "hrpo-old__everyday.jsonl").is_file()
    (stopped / "eval" / "rows" / "hrpo-old__everyday.jsonl").rename(stopped / "eval" / "rows" / "x.jsonl")
    try:                                                             # a second save replaces the first whole
        park.save(stopped, tmp_path / "parked")
        assert sorted(p.name for p in (tmp_path / "parked" / "eval" / "rows").iterdir()) == ["hrpo-old.spec",
                                                                                         "x.jsonl"]
        assert not list(tmp_path.glob("parked.*"))                  # no .new / .old left behind
    finally:
        (stopped / "eval" / "rows" / "x.jsonl").rename(stopped / "eval" / "rows" / "hrpo-old__everyday.jsonl")


def test_restored_run_resumes_and_ends_as_an_uninterrupted_run(stopped, tmp_path):
    park.save(stopped, tmp_path / "parked")
    home = tmp_path / "new-machine"                                  # an empty home: nothing but the repository
    assert park.restore(home, tmp_path / "parked") == ["hrpo-s0 (step 3)", "rows hrpo-old.spec",
                                                                "rows hrpo-old__everyday.jsonl"]
    assert (home / "eval" / "rows" / "hrpo-old.spec").read_text() == "checkpoints/smollm2-arith-hrpo"  # rows kept
    train(home / "hrpo-s0", resume=True)
    train(tmp_path / "straight" / "hrpo-s0")
    assert rewards(home / "hrpo-s0") == rewards(tmp_path / "straight" / "hrpo-s0")
    assert [r["step"] for r in rundir.read_rows(home / "hrpo-s0" / "eval.jsonl")] == [2, 4]
    assert rundir.finished(home / "hrpo-s0")


def test_restore_never_rewinds_a_run_and_keeps_one_that_is_behind(stopped, tmp_path):
    park.save(stopped, tmp_path / "parked")
    home = tmp_path / "home"
    shutil.copytree(stopped / "hrpo-s0", home / "hrpo-s0")
    (home / "eval" / "rows").mkdir(parents=True)
    (home / "eval" / "rows" / "hrpo-old__everyday.jsonl").write_text('{"reward": 0.0}\n')
    (home / "eval" / "rows" / "hrpo-old.spec").write_text("checkpoints/smollm2-arith-hrpo")
    assert park.restore(home, tmp_path / "parked") == []              # as far as the parked run: left alone
    assert json.loads((home / "eval" / "rows" / "hrpo-old__everyday.jsonl").read_text())["reward"] == 0.0
    shutil.rmtree(home / "hrpo-s0" / "checkpoints" / "step-000003")  # now behind: moved aside, then restored
    assert park.restore(home, tmp_path / "parked") == ["hrpo-s0 (step 3)"]
    assert rundir.step_of(rundir.latest_checkpoint(home / "hrpo-s0")) == 3
    assert rundir.step_of(rundir.latest_checkpoint(home / ".behind" / "hrpo-s0-step-2")) == 2


def test_finished_run_is_parked_without_trainer_state(tmp_path):
    runs = tmp_path / "runs"
    train(runs / "grpo-s0")
    assert park.save(runs, tmp_path / "parked") == {"grpo-s0": [4, 5]}   # eval at 2 and 4: ties keep the later
    assert not list((tmp_path / "parked").rglob("trainer_state.pt"))
    assert rundir.finished(tmp_path / "parked" / "grpo-s0")


def test_cli(stopped, tmp_path, capsys):
    assert park.main(["save", "--runs", str(stopped), "--to", str(tmp_path / "p")]) == 0
    assert "parked hrpo-s0: checkpoints at steps 2, 3" in capsys.readouterr().out
    assert park.main(["restore", "--runs", str(tmp_path / "h"), "--to", str(tmp_path / "p")]) == 0
    assert "restored hrpo-s0 (step 3)" in capsys.readouterr().out
    assert park.main(["save", "--runs", str(tmp_path / "missing"), "--to", str(tmp_path / "q")]) == 2
    assert capsys.readouterr().err.strip() == f"error: no runs directory {tmp_path / 'missing'}"


def test_forms_runs_script_restores_first_and_parks_last(tmp_path):
    """studies/forms_runs.sh on a new machine: the parked runs come back, finished ones are not trained again, and
    what the runs directory holds is parked when it ends.  (Every run here is finished: nothing trains.)"""
    import subprocess

    from conftest import ROOT
    parked, home = tmp_path / "parked", tmp_path / "home"
    runs = tmp_path / "runs"
    train(runs / "hrpo-s0")
    shutil.copytree(runs / "hrpo-s0", runs / "grpo-s0")
    cfg = json.loads((runs / "hrpo-s0" / "train_config.json").read_text())
    for run in ("hrpo-s0", "grpo-s0"):                     # as if at the recipe's last step (300)
        (runs / run / "train_config.json").write_text(json.dumps({**cfg, "steps": 300}))
        (runs / run / "checkpoints" / "step-000005").rename(runs / run / "checkpoints" / "step-000300")
    park.save(runs, parked)
    env = {"PATH": "/usr/bin:/bin", "HRPO_STUDY_RUNS": str(home), "HRPO_STUDY_PARKED": str(parked)}
    res = subprocess.run(["bash", "studies/forms_runs.sh", "0"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert "restored hrpo-s0 (step 300)" in res.stdout and "restored grpo-s0 (step 300)" in res.stdout
    assert f"{home}/hrpo-s0: finished" in res.stdout and f"{home}/grpo-s0: finished" in res.stdout
    assert "parked grpo-s0: checkpoints at steps 4, 300" in res.stdout
    assert sorted(p.name for p in (parked / "hrpo-s0" / "checkpoints").iterdir()) == ["step-000004", "step-000300"]
    res = subprocess.run(["bash", "studies/forms_runs.sh", "1"], cwd=ROOT, capture_output=True, text=True,
                         env={**env, "MAX_MINUTES": "-1"}, timeout=300)   # the deadline passed: seed 1 never starts
    assert res.returncode == 0 and "MAX_MINUTES reached: seed 1 and later not started" in res.stdout
    assert not (home / "hrpo-s1").exists()


def test_stow_keeps_the_parked_runs_in_the_history_only_and_restore_finds_them(stopped, tmp_path):
    """The parked copy is committed, then taken out of the working tree (a checkout that travels stays small);
    restore reads it back from the commit that `<to>.commit` names, and the run resumes from it."""
    import subprocess
    repo = tmp_path / "repo"
    (repo / "parked").mkdir(parents=True)
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True, text=True).stdout  # noqa: E731
    git("init", "-q")
    git("config", "user.name", "t")
    git("config", "user.email", "t@t")
    git("commit", "-q", "--allow-empty", "-m", "start")
    (repo / "unrelated.txt").write_text("not committed by stow\n")
    git("add", "unrelated.txt")
    park.save(stopped, repo / "parked" / "forms")
    commit = park.stow(repo / "parked" / "forms")
    assert not (repo / "parked" / "forms").exists()
    assert (repo / "parked" / "forms.commit").read_text().strip() == commit
    assert "hrpo-s0/checkpoints/step-000003/trainer_state.pt" in git("show", "--name-only", "--format=", commit)
    assert git("ls-tree", "-r", "--name-only", "HEAD").split() == ["parked/forms.commit"]   # nothing parked in the tree
    assert git("diff", "--cached", "--name-only").split() == ["unrelated.txt"]   # staged work left alone
    home = tmp_path / "new-machine"
    assert park.restore(home, repo / "parked" / "forms") == ["hrpo-s0 (step 3)", "rows hrpo-old.spec",
                                                                "rows hrpo-old__everyday.jsonl"]
    assert (home / "hrpo-s0" / "checkpoints" / "step-000003" / "trainer_state.pt").is_file()
    train(home / "hrpo-s0", resume=True)
    assert rundir.finished(home / "hrpo-s0")
    (repo / "parked" / "forms.commit").write_text("0" * 40 + "\n")    # a clone without that commit
    with pytest.raises(park.ParkError, match="which this clone lacks"):
        park.restore(tmp_path / "other", repo / "parked" / "forms")
