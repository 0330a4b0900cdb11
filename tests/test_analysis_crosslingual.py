"""The cross-lingual view (analysis/crosslingual.py): classes relative to the prompt's script, the runner on the
tiny model (hybrid and plain), the figure and the CLI."""
import copy

import pandas as pd
import pytest

from analysis.crosslingual import CLASSES, class_counts, prompt_scripts, relative_class, run_crosslingual, shares
from analysis.plots import crosslingual_figure
from conftest import run_cli
from hrpo.config import RolloutConfig


@pytest.mark.parametrize("script,prompt,expected", [
    ("Thai", ("Thai",), "prompt script"), ("Latin", ("Thai",), "Latin"), ("Han", ("Thai",), "other script"),
    ("Latin", ("Latin",), "prompt script"), ("Cyrillic", ("Latin",), "other script"),
    ("Kana", ("Kana", "Han"), "prompt script"), ("Han", ("Kana", "Han"), "prompt script"),
    ("digits", ("Han",), "digits"), ("punct_space", ("Han",), "neutral"), ("other", ("Latin",), "neutral")])
def test_relative_class(script, prompt, expected):
    assert relative_class(script, prompt) == expected


def test_prompt_scripts_keep_every_script_a_question_is_written_in():
    assert prompt_scripts("りんごが15個あります。4個食べました。") == ("Kana", "Han")
    assert prompt_scripts("小明有5个苹果，又买了3个。") == ("Han",)
    assert prompt_scripts("แดงมีดินสอ 7 แท่ง ซื้อมาอีก 5 แท่ง (pen)") == ("Thai",)      # a few Latin letters: not the prompt's
    assert prompt_scripts("12 + 7 = ?") == ("Latin",)


def test_class_counts_keep_sampled_tokens_and_thinking_latents():
    tokens = pd.DataFrame(
        [(0, 0, True, "sampled", 0, "สาม", "Thai"), (0, 0, True, "latent", 0, "three", "Latin"),
         (0, 0, True, "latent", 1, "三", "Han"), (0, 1, False, "sampled", 0, "3", "digits"),
         (0, 1, False, "latent", 0, "สี่", "Thai")],          # after the marker: not mixed in, not counted
        columns=["trace", "step", "thinking", "source", "rank", "token", "script"])
    c = class_counts(tokens, ("Thai",))
    got = dict(zip(zip(c["source"], c["class"]), c["count"]))
    assert got == {("sampled", "prompt script"): 1, ("sampled", "digits"): 1, ("latent", "Latin"): 1,
                   ("latent", "other script"): 1}


def test_shares_merge_a_languages_questions():
    counts = pd.DataFrame([("m", "ja", "Kana", "latent", "prompt script", 3), ("m", "ja", "Kana+Han", "latent",
                            "prompt script", 1), ("m", "ja", "Kana+Han", "latent", "digits", 4)],
                          columns=["model", "lang", "prompt_script", "source", "class", "count"])
    got = shares(counts)
    assert list(got["class"]) == ["prompt script", "digits"] and list(got["share"]) == [0.5, 0.5]
    assert set(got["prompt_script"]) == {"Kana+Han"}


def test_run_crosslingual_on_the_tiny_model(tiny, one_thread):
    plain = copy.copy(tiny)
    plain.mode = "grpo"                                  # a GRPO checkpoint: decodes plain, so no latents
    models = {"tiny-random": tiny, "tiny-grpo": plain}
    seen = []
    classes, summary = run_crosslingual(["tiny-random", "tiny-grpo"], ["en", "th"], 2,
                                        RolloutConfig(max_new_tokens=5, greedy=True), k=3,
                                        load=lambda spec, **kw: models[spec], on_model=seen.append)
    assert seen == ["tiny-random", "tiny-grpo"]
    assert set(classes["class"]) <= set(CLASSES)
    sums = classes.groupby(["model", "lang", "source"])["share"].sum()
    assert (sums - 1).abs().max() < 1e-9
    hybrid = classes[classes["model"] == "tiny-random"]
    assert set(hybrid["source"]) == {"sampled", "latent"}
    # every thinking step has k = 3 latent neighbours, every step one sampled token
    lat = hybrid[hybrid["source"] == "latent"].groupby("lang")["count"].sum()
    s = summary.set_index(["model", "lang"])
    for lang in ("en", "th"):
        assert lat[lang] == 3 * s.loc[("tiny-random", lang), "thinking_steps"] * 2
    assert set(classes[classes["model"] == "tiny-grpo"]["source"]) == {"sampled"}
    assert not s.loc[("tiny-grpo", "en"), "hybrid"] and s.loc[("tiny-random", "en"), "hybrid"]
    assert (s.loc[("tiny-grpo", "th"), "thinking_steps"] == 0 and s["problems"] == 2).all()
    assert set(classes[classes["lang"] == "th"]["prompt_script"]) == {"Thai"}
    fig = crosslingual_figure(classes)
    assert "no latents (plain decoding): tiny-grpo" in fig.layout.title.text
    assert {a.text for a in fig.layout.annotations} >= {"tiny-random", "tiny-grpo", "sampled", "latent"}


def test_crosslingual_cli(tmp_path):
    out = tmp_path / "x"
    r = run_cli("analysis", "crosslingual", "--models", "tiny-random", "--langs", "en,zh", "--limit", "2",
                "--max-new-tokens", "4", "--greedy", "--out", str(out))
    assert r.returncode == 0, r.stderr
    classes, summary = pd.read_csv(out / "crosslingual.csv"), pd.read_csv(out / "summary.csv")
    assert set(classes["lang"]) == {"en", "zh"} and list(summary["problems"]) == [2, 2]
    assert "plotly" in (out / "report.html").read_text(encoding="utf-8")
    bad = run_cli("analysis", "crosslingual", "--models", "tiny-random", "--langs", "en,xx", "--limit", "2",
                  "--out", str(tmp_path / "y"))
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "unknown MGSM language" in bad.stderr
    assert not (tmp_path / "y").exists()
