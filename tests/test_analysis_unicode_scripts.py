"""analysis.unicode_scripts: Unicode-script classes on real MGSM questions, token/latent script mixes."""
from collections import Counter

import pandas as pd
import pytest

from analysis.unicode_scripts import (
    CLASSES,
    compare_languages,
    dominant_script,
    latent_script_shares,
    resolved_pieces,
    script_counts,
    script_mix,
    script_shares,
    token_scripts,
)
from hrpo.tasks import load_task


@pytest.fixture(autouse=True)
def repository_data(monkeypatch):
    """MGSM from the repository's own data/ folder, whatever $HRPO_DATA says."""
    monkeypatch.delenv("HRPO_DATA", raising=False)


def mgsm_questions(lang: str, n: int = 30) -> list[str]:
    """The first n MGSM questions of `lang`, from the repository's data/mgsm (hrpo.tasks.data_root)."""
    return [p.question for p in load_task(f"mgsm:{lang}", "test", limit=n).problems]


@pytest.mark.parametrize("lang, dominant, must_contain", [
    ("zh", "Han", "Han"), ("ja", None, "Kana"), ("ru", "Cyrillic", "Cyrillic"), ("th", "Thai", "Thai"),
    ("te", "Telugu", "Telugu"), ("bn", "Bengali", "Bengali"), ("de", "Latin", "Latin"), ("es", "Latin", "Latin"),
    ("fr", "Latin", "Latin"), ("sw", "Latin", "Latin"), ("en", "Latin", "Latin"),
])
def test_mgsm_questions_by_script(lang, dominant, must_contain):
    qs = mgsm_questions(lang)
    doms = Counter(dominant_script(q) for q in qs)
    if dominant:
        assert doms[dominant] == len(qs), doms
    else:                                         # Japanese: kana and kanji, kana usually dominant
        assert set(doms) <= {"Kana", "Han"} and doms["Kana"] > len(qs) / 2, doms
    total = Counter()
    for q in qs:
        total += script_counts(q)
    assert total[must_contain] > 0
    letters = {k: v for k, v in total.items() if k not in ("digits", "punct_space", "other")}
    if lang == "ja":
        assert set(letters) <= {"Kana", "Han", "Latin"}
    else:
        assert max(letters, key=letters.get) == must_contain
        assert letters[must_contain] / sum(letters.values()) > 0.95


@pytest.mark.parametrize("text, expected", [
    ("hello", "Latin"), ("Ünïcödé", "Latin"), ("数学", "Han"), ("ひらがな", "Kana"), ("カタカナ", "Kana"),
    ("한국어", "Hangul"), ("привет", "Cyrillic"), ("مرحبا", "Arabic"), ("नमस्ते", "Devanagari"),
    ("বাংলা", "Bengali"), ("తెలుగు", "Telugu"), ("ภาษาไทย", "Thai"), ("123", "digits"), ("٣٤", "digits"),
    ("১২", "digits"), (" ", "punct_space"), (",.!?", "punct_space"), ("$+", "punct_space"), ("\n", "punct_space"),
    ("", "other"), ("\ufffd", "other"), ("ab数学数学", "Han"), ("12abc", "Latin"), ("Ωμέγα", "other"),
])
def test_dominant_script_table(text, expected):
    assert dominant_script(text) == expected


def test_script_shares_sum_to_one():
    shares = script_shares("abc 数 12")
    assert set(shares) == set(CLASSES) and abs(sum(shares.values()) - 1) < 1e-9
    assert shares["Latin"] == 3 / 8 and shares["Han"] == 1 / 8 and shares["digits"] == 2 / 8
    assert sum(script_shares("").values()) == 0


def _frame(rows):
    return pd.DataFrame(rows, columns=["trace", "step", "thinking", "source", "rank", "token", "script"])


@pytest.mark.parametrize("latents, prompt_script, any_share, maj_share", [
    # per thinking step: the scripts of its top-k neighbours
    ([["Han", "Han"], ["Latin", "Han"]], "Han", 0.5, 0.0),
    ([["Latin", "Latin"], ["Latin", "Han"]], "Han", 1.0, 0.5),
    ([["digits", "punct_space"], ["Han", "other"]], "Han", 0.0, 0.0),
    ([["Latin", "Cyrillic", "Han"]], "Han", 1.0, 0.0),              # a tie with the prompt script: not foreign
    ([["Latin", "Latin", "Han"]], "Latin", 1.0, 0.0),
])
def test_latent_script_shares(latents, prompt_script, any_share, maj_share):
    rows = [(0, st, True, "latent", rk, "x", s) for st, scripts in enumerate(latents) for rk, s in enumerate(scripts)]
    rows += [(0, 99, False, "latent", 0, "x", "Latin"), (0, 0, True, "sampled", 0, "x", "Latin")]  # ignored
    out = latent_script_shares(_frame(rows), prompt_script)
    assert out.loc[0, "thinking_steps"] == len(latents)
    assert out.loc[0, "foreign_any"] == pytest.approx(any_share)
    assert out.loc[0, "foreign_majority"] == pytest.approx(maj_share)


def test_script_mix_per_completion_and_step():
    toks = _frame([(0, 0, True, "sampled", 0, "a", "Latin"), (0, 1, True, "sampled", 0, "b", "Latin"),
                   (0, 1, True, "sampled", 0, "数", "Han"), (1, 0, True, "sampled", 0, "c", "Latin")])
    mix = script_mix(toks)
    assert mix.groupby(["trace", "source"])["share"].sum().round(9).eq(1).all()
    assert mix[(mix.trace == 0) & (mix.script == "Latin")]["share"].item() == pytest.approx(2 / 3)
    per_step = script_mix(toks, by=("trace", "source", "step"))
    assert len(per_step[(per_step.trace == 0) & (per_step.step == 1)]) == 2
    assert script_mix(toks.iloc[:0]).empty


def test_token_scripts_from_a_trace(tiny):
    from analysis.projections import trace_projections
    from hrpo.config import RolloutConfig
    from hrpo.rollout import rollout
    tr = rollout(tiny, ["数学"], RolloutConfig(max_new_tokens=5, seed=1), keep_latents=True)[0]
    proj = trace_projections(tiny, tr, k=3, sources=("latent",))
    toks = token_scripts(tr, proj, trace_id=7)
    assert (toks["trace"] == 7).all()
    assert (toks["source"] == "sampled").sum() == 5 and (toks["source"] == "latent").sum() == 15
    assert toks["script"].isin(CLASSES).all()


def test_compare_languages(tiny):
    from hrpo.config import RolloutConfig
    df = compare_languages(tiny, 0, ["en", "zh", "ru"], RolloutConfig(max_new_tokens=4, greedy=True), k=3)
    assert list(df["lang"]) == ["en", "zh", "ru"]
    assert list(df["question_script"]) == ["Latin", "Han", "Cyrillic"]
    assert (df["reference"] == "18").all() and (df["num_tokens"] == 4).all()
    assert df["latent_foreign_any"].between(0, 1).all() and df["sampled_in_question_script"].between(0, 1).all()
    with pytest.raises(ValueError, match="out of range"):
        compare_languages(tiny, 10_000, ["en"], RolloutConfig(max_new_tokens=2))


@pytest.mark.parametrize("text", ["数学很难", "ภาษาไทย", "తెలుగు", "hello 世界", "日本語のテキスト"])
def test_resolved_pieces_recover_split_characters(tiny, text):
    ids = tiny.tokenizer(text, add_special_tokens=False)["input_ids"]
    decode = tiny.tokenizer.decode
    pieces = resolved_pieces(ids, decode)
    assert len(pieces) == len(ids) and not any(p.endswith("\ufffd") for p in pieces)
    # each run of equal pieces spells the text once, in order
    runs = [p for i, p in enumerate(pieces) if i == 0 or p != pieces[i - 1] or decode([ids[i]]) == p]
    assert "".join(runs) == text
    assert dominant_script(text) in {dominant_script(p) for p in pieces}
