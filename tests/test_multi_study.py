"""The multilingual study (studies/multi_study.py): its rule on made-up figures, and select -> eval -> report ->
decide end to end on real tiny-random runs trained on the `multi` task (the base: tiny-random too)."""
import pytest

from hrpo.config import TrainConfig
from hrpo.multilingual_problems import LANGS
from hrpo.trainer import Trainer
from studies import multi_study
from studies.study import set_name

TINY = dict(model="tiny-random", task="multi", group_size=2, batch_prompts=1, max_new_tokens=6, lora_rank=2,
            lora_alpha=4, lr=1e-2, device="cpu", seed=0, steps=2, save_every=1, eval_every=2, eval_limit=2)


def heldout(acc_hrpo: list[float], acc_base: list[float]) -> dict:
    return {m: {set_name(s): a for s, a in zip(multi_study.HELDOUT, accs)}
            for m, accs in (("hrpo-s0", acc_hrpo), ("base", acc_base))}


def test_rule_ships_when_hrpo_is_above_the_base_in_six_of_eleven_languages():
    base = [0.1] * 11
    ok, lines = multi_study.decide(heldout([0.2] * 6 + [0.1] * 5, base), "base", "hrpo-s0")
    assert ok and lines[-1].startswith("HRPO above the base in 6 of 11 languages") and "SHIP" in lines[-1]
    assert lines[0] == "en: HRPO 0.200 vs base 0.100: above" and lines[10].endswith("not above")
    ok, lines = multi_study.decide(heldout([0.2] * 5 + [0.1] * 6, base), "base", "hrpo-s0")   # a tie is not above
    assert not ok and "5 of 11" in lines[-1] and "do not ship" in lines[-1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    runs = tmp_path_factory.mktemp("multi")
    for mode in ("hrpo", "grpo"):
        Trainer(TrainConfig(**TINY, mode=mode, out=str(runs / f"{mode}-s0"))).train()
    calls = []
    Trainer(TrainConfig(**{**TINY, "steps": 4}, mode="grpo", out=str(runs / "grpo-s1")),
            should_stop=lambda: calls.append(1) or len(calls) == 2).train()   # stopped at 2 of 4: not evaluated
    return runs


def test_eval_report_and_decide_end_to_end(runs, monkeypatch, capsys):
    monkeypatch.setenv("HRPO_STUDY_RUNS", str(runs))
    monkeypatch.setattr(multi_study, "NEW_TOKENS", 8)                  # tiny-random never writes its answer
    multi_study.main(["eval", "--base", "tiny-random", "--heldout-limit", "2", "--mgsm-limit", "2"])
    assert "grpo-s1: still training" in capsys.readouterr().out
    rows = runs / "eval" / "rows"
    for name in ("base", "hrpo-s0", "hrpo-plain-s0", "grpo-s0"):
        for s in multi_study.HELDOUT + multi_study.MGSM:
            assert len((rows / f"{name}__{set_name(s)}.jsonl").read_text().splitlines()) == 2, (name, s)
    assert not list(rows.glob("grpo-s1__*"))

    multi_study.main(["report"])
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ("Models: base = base, hrpo = hrpo-s0, grpo = grpo-s0, "
                                   "hrpo-plain = hrpo-plain-s0")
    held = out.split("#### Held-out forms (multi:L:heldout)")[1].split("####")[0].strip().splitlines()
    assert held[0] == ("| language | base | grpo | hrpo | hrpo, a = 1 | hrpo - base (95% CI) | hrpo - grpo (95% CI) "
                       "| hrpo - hrpo-plain (95% CI) |")
    assert [line.split(" | ")[0] for line in held[2:]] == [f"| {lang}" for lang in [*LANGS, "all"]]
    assert all(len(line.split(" | ")) == 8 for line in held[2:])
    assert "#### MGSM (mgsm:L)" in out and "| hrpo-s0 | 2 |" in out          # the gate table: steps trained

    multi_study.main(["decide"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12 and lines[0].startswith("en: HRPO ") and "of 11 languages (the rule asks 6)" in lines[-1]


def test_decide_before_eval_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("HRPO_STUDY_RUNS", str(tmp_path))
    with pytest.raises(SystemExit, match="no finished HRPO run: train and evaluate first"):
        multi_study.main(["decide"])
