"""Unicode-script analysis of sampled tokens and of the tokens nearest to the latents.

Characters are classified with real Unicode data through the `regex` module's script properties
(\\p{Script=Han}, \\p{Script=Cyrillic}, ...), never hand-written code-point ranges. Classes, checked
in this order: digits (\\p{Nd}, any script's decimal digits), the scripts in SCRIPTS, punct_space
(punctuation, symbols, separators, controls), else other (also U+FFFD, the mark of a token
that is a partial UTF-8 sequence). A string's dominant script is the most
frequent letter script; digits or punct_space only when it has no letters.

Pure functions: script_counts, dominant_script, resolved_pieces, token_scripts (trace + projection frame -> long
frame), script_mix, latent_script_shares.  One runner, compare_languages, decodes the same MGSM
problem in several languages.  Test: pytest tests/test_analysis_unicode_scripts.py
"""
from collections import Counter

import pandas as pd
import regex

SCRIPTS = (("Latin", r"\p{Script=Latin}"), ("Han", r"\p{Script=Han}"),
           ("Kana", r"[\p{Script=Hiragana}\p{Script=Katakana}]"), ("Hangul", r"\p{Script=Hangul}"),
           ("Cyrillic", r"\p{Script=Cyrillic}"), ("Arabic", r"\p{Script=Arabic}"),
           ("Devanagari", r"\p{Script=Devanagari}"), ("Bengali", r"\p{Script=Bengali}"),
           ("Telugu", r"\p{Script=Telugu}"), ("Thai", r"\p{Script=Thai}"))
DIGITS, PUNCT, OTHER = "digits", "punct_space", "other"
CLASSES = (DIGITS,) + tuple(name for name, _ in SCRIPTS) + (PUNCT, OTHER)
NEUTRAL = frozenset({DIGITS, PUNCT, OTHER})          # carry no language: ignored by "foreign" checks
CHAR_CLASS = regex.compile("|".join([rf"(?P<{DIGITS}>\p{{Nd}})"] + [f"(?P<{n}>{p})" for n, p in SCRIPTS]
                                    + [rf"(?P<{PUNCT}>(?!\ufffd)[\p{{P}}\p{{S}}\p{{Z}}\p{{Cc}}\s])",
                                       rf"(?P<{OTHER}>.)"]),
                           regex.DOTALL)


def script_counts(text: str) -> Counter:
    """Number of characters of `text` in each class of CLASSES."""
    return Counter(m.lastgroup for m in CHAR_CLASS.finditer(text or ""))


def dominant_script(text: str) -> str:
    """The most frequent letter script of `text`; digits / punct_space / other when it has no letters."""
    counts = script_counts(text)
    letters = {k: v for k, v in counts.items() if k not in NEUTRAL}
    if letters:
        return max(letters, key=lambda k: (letters[k], -CLASSES.index(k)))
    for name in (DIGITS, PUNCT):
        if counts.get(name):
            return name
    return OTHER


def script_shares(text: str) -> dict:
    """Share of the characters of `text` in each class (zeros for an empty text)."""
    counts = script_counts(text)
    total = sum(counts.values())
    return {c: counts.get(c, 0) / total if total else 0.0 for c in CLASSES}


def resolved_pieces(token_ids: list[int], decode, max_group: int = 8) -> list[str]:
    """Per token, the text of the smallest run of consecutive tokens that decodes to whole characters.

    Byte-level tokenizers split one CJK / Indic / Thai character over several tokens, each of which
    decodes alone to U+FFFD; here every token of such a run gets the run's text, so its script is
    the script of the character it helps spell.  decode(list of ids) -> str.
    """
    out, group = [], []
    for tid in token_ids:
        group.append(tid)
        text = decode(group)
        if text.endswith("\ufffd") and len(group) < max_group:
            continue
        out += [text] * len(group)
        group = []
    if group:
        out += [decode(group)] * len(group)
    return out


def token_scripts(trace, proj: pd.DataFrame | None = None, trace_id=0, decode=None) -> pd.DataFrame:
    """Long frame (trace, step, thinking, source in {sampled, latent}, rank, token, script).

    Sampled rows come from the trace's steps (scripts from resolved_pieces when `decode` is given,
    else from each token's own text); latent rows from the `latent` rows of a projection frame
    (analysis.projections.trace_projections), i.e. the latents' nearest tokens, each a single token
    (a byte fragment of a character is `other`).
    """
    thinking = {s.index: s.thinking for s in trace.steps}
    texts = resolved_pieces([s.token_id for s in trace.steps], decode) if decode else [s.token for s in trace.steps]
    rows = [(trace_id, s.index, s.thinking, "sampled", 0, s.token, dominant_script(t))
            for s, t in zip(trace.steps, texts)]
    if proj is not None and len(proj):
        lat = proj[proj["source"] == "latent"]
        rows += [(trace_id, st, thinking.get(st, False), "latent", rk, tok, dominant_script(tok))
                 for st, rk, tok in zip(lat["step"], lat["rank"], lat["token"])]
    return pd.DataFrame(rows, columns=["trace", "step", "thinking", "source", "rank", "token", "script"])


def script_mix(tokens: pd.DataFrame, by: tuple = ("trace", "source")) -> pd.DataFrame:
    """Counts and shares of scripts within each group of a token_scripts frame (per completion by default;
    by=("trace", "source", "step") gives the mix per step)."""
    by = list(by)
    if tokens.empty:
        return pd.DataFrame(columns=by + ["script", "count", "share"])
    counts = tokens.groupby(by + ["script"], sort=True).size().rename("count").reset_index()
    counts["share"] = counts["count"] / counts.groupby(by)["count"].transform("sum")
    return counts


def latent_script_shares(tokens: pd.DataFrame, prompt_script: str) -> pd.DataFrame:
    """Per trace: share of thinking steps whose latent top-k neighbours are in another script than the
    prompt's dominant one: `foreign_any` (at least one neighbour), `foreign_majority` (the neighbours'
    dominant letter script differs). Neutral classes (digits, punctuation, other) never count."""
    lat = tokens[(tokens["source"] == "latent") & tokens["thinking"]]
    out = []
    for trace_id, group in lat.groupby("trace", sort=True):
        anyf = majf = 0
        steps = group.groupby("step")["script"]
        for _, scripts in steps:
            letters = [s for s in scripts if s not in NEUTRAL]
            anyf += any(s != prompt_script for s in letters)
            counts = Counter(letters)
            top = {s for s, c in counts.items() if c == max(counts.values())}
            majf += bool(top) and prompt_script not in top
        n = steps.ngroups
        out.append({"trace": trace_id, "prompt_script": prompt_script, "thinking_steps": n,
                    "foreign_any": anyf / n if n else 0.0, "foreign_majority": majf / n if n else 0.0})
    return pd.DataFrame(out, columns=["trace", "prompt_script", "thinking_steps", "foreign_any", "foreign_majority"])


def language_row(lang: str, problem, trace, proj: pd.DataFrame, correct: bool, decode=None) -> dict:
    """One row of compare_languages from a decoded trace (pure)."""
    q_script = dominant_script(problem.question)
    toks = token_scripts(trace, proj, decode=decode)
    sampled = toks[toks["source"] == "sampled"]
    letters = sampled[~sampled["script"].isin(NEUTRAL)]
    shares = latent_script_shares(toks, q_script)
    thinking = [s.hidden_ratio for s in trace.steps if s.thinking]
    return {"lang": lang, "question_script": q_script, "question": problem.question, "reference": problem.answer,
            "answer": trace.answer, "correct": bool(correct), "num_tokens": len(trace.steps),
            "thinking_steps": len(thinking), "hidden_ratio": sum(thinking) / len(thinking) if thinking else 0.0,
            "completion_script": dominant_script(trace.text),
            "sampled_in_question_script": float((letters["script"] == q_script).mean()) if len(letters) else 0.0,
            "latent_foreign_any": float(shares["foreign_any"].iloc[0]) if len(shares) else 0.0,
            "latent_foreign_majority": float(shares["foreign_majority"].iloc[0]) if len(shares) else 0.0,
            "completion": trace.text}


def compare_languages(hm, index: int, langs, cfg, k: int = 5, data_dir: str | None = None) -> pd.DataFrame:
    """Decode MGSM problem `index` in each language of `langs` (one batch) and compare scripts,
    answers, lengths and latent neighbours; one row per language."""
    from hrpo.rewards import score
    from hrpo.rollout import Decoder
    from hrpo.tasks import load_task

    from .projections import trace_projections
    problems = []
    for lang in langs:
        task = load_task(f"mgsm:{lang}", "test", data_dir=data_dir)
        if not 0 <= index < len(task.problems):
            raise ValueError(f"MGSM index {index} out of range (0..{len(task.problems) - 1}) for {lang}")
        problems.append(task.problems[index])
    traces = Decoder(hm, [p.question for p in problems], cfg, keep_latents=True).run()
    rows = []
    for lang, p, tr in zip(langs, problems, traces):
        proj = trace_projections(hm, tr, k=k, sources=("latent",))
        rows.append(language_row(lang, p, tr, proj, score(p.kind, tr.text, p.answer)[0],
                                 decode=lambda ids: hm.tokenizer.decode(ids, skip_special_tokens=True)))
    return pd.DataFrame(rows)
