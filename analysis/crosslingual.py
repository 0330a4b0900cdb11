"""The cross-lingual view: do the latents of a prompt sit near tokens of the prompt's own script, English
(Latin) ones, or a mix?  Several models, several MGSM languages, one table and one figure.

For every model (hrpo.models.load_model spec) and MGSM language, `limit` test problems are decoded through
make_decoder with the model's decoding policy (a GRPO checkpoint decodes plain, so it has no latents); each
thinking step's latent h = E^T p / ||p|| gets its k nearest tokens by cosine over E (analysis.projections).
Every sampled token and every latent neighbour is put into a class *relative to the prompt*:

  prompt script   a letter script of the question (Thai for a Thai question; Han and Kana for a Japanese one:
                  every script with at least PROMPT_SHARE of its letters)
  Latin           Latin letters when the prompt is not in Latin script (English and the other Latin languages)
  other script    any other letter script (Han in a Thai completion)
  digits          decimal digits of any script
  neutral         punctuation, spaces, symbols and byte fragments (analysis.unicode_scripts)

so one bar per (model, language, source) says where the text and the latents sit, whatever the language.

    python -m analysis crosslingual --models gemma3-270m,checkpoints/gemma3-270m-multi-grpo,\\
        checkpoints/gemma3-270m-multi-hrpo --langs th,zh,ru,en --limit 10 --greedy --out reports/crosslingual

Test: pytest tests/test_analysis_crosslingual.py
"""
import functools

import pandas as pd

from .unicode_scripts import DIGITS, NEUTRAL, dominant_script, script_counts, token_scripts

CLASSES = ("prompt script", "Latin", "other script", "digits", "neutral")
PROMPT_SHARE = 0.2          # a script with at least this share of the question's letters is the prompt's
COLUMNS = ["model", "lang", "prompt_script", "source", "class", "count", "share"]


def prompt_scripts(text: str) -> tuple[str, ...]:
    """The letter scripts of a question, most frequent first: each with at least PROMPT_SHARE of its letters
    (the dominant one always); ('Latin',) for a question without letters."""
    letters = {k: v for k, v in script_counts(text).items() if k not in NEUTRAL}
    if not letters:
        return ("Latin",)
    top = dominant_script(text)
    return (top,) + tuple(sorted((k for k, v in letters.items() if k != top and v >= PROMPT_SHARE * sum(
        letters.values())), key=lambda k: -letters[k]))


def relative_class(script: str, prompt: tuple[str, ...]) -> str:
    """The class of a token's script relative to the prompt's scripts (CLASSES)."""
    if script == DIGITS:
        return "digits"
    if script in NEUTRAL:
        return "neutral"
    if script in prompt:
        return "prompt script"
    return "Latin" if script == "Latin" else "other script"


def class_counts(tokens: pd.DataFrame, prompt: tuple[str, ...]) -> pd.DataFrame:
    """(source, class, count) from a token_scripts frame: every sampled token, and the latent neighbours of
    thinking steps (the latents that are mixed in).  Classes with no token are left out."""
    kept = tokens[(tokens["source"] == "sampled") | tokens["thinking"]]
    classes = kept["script"].map(lambda s: relative_class(s, prompt))
    return (kept.assign(**{"class": classes}).groupby(["source", "class"], sort=True).size()
            .rename("count").reset_index())


def shares(counts: pd.DataFrame) -> pd.DataFrame:
    """COLUMNS from per-problem counts (model, lang, prompt_script, source, class, count): summed per (model,
    lang, source, class), prompt_script the scripts of all the language's questions ('Kana+Han'), share within
    each (model, lang, source)."""
    if counts.empty:
        return pd.DataFrame(columns=COLUMNS)
    merged = counts.groupby(["model", "lang"], sort=False)["prompt_script"].agg(
        lambda v: "+".join(dict.fromkeys(s for x in v for s in x.split("+"))))
    d = counts.groupby(["model", "lang", "source", "class"], as_index=False, sort=False)["count"].sum()
    d["prompt_script"] = [merged[(m, lang)] for m, lang in zip(d["model"], d["lang"])]
    d["share"] = d["count"] / d.groupby(["model", "lang", "source"])["count"].transform("sum")
    order = {"source": ["sampled", "latent"], "class": list(CLASSES)}   # models and languages as given
    keys = {c: pd.Categorical(d[c], categories=order.get(c, list(dict.fromkeys(d[c])))) for c in
            ("model", "lang", "source", "class")}
    return d.assign(**keys).sort_values(list(keys)).astype({c: object for c in keys})[COLUMNS].reset_index(drop=True)


def run_crosslingual(specs, langs, limit: int, cfg, k: int = 5, batch_size: int = 16, load=None,
                     on_model=None, **load_kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decode `limit` MGSM test problems per language with every model; returns (classes, summary):
    classes has COLUMNS; summary one row per (model, lang): problems, accuracy (right and formatted),
    format_rate, hybrid, thinking_steps (per problem), completion_in_prompt_script (share of completions whose
    dominant script is one of the question's).  Bad specs or languages raise ModelSpecError / ValueError before
    anything decodes."""
    from hrpo.models import check_spec
    from hrpo.rewards import score
    from hrpo.rollout import decoding_config
    from hrpo.static_decoder import make_decoder
    from hrpo.tasks import load_task

    from .lengths import unique_labels
    from .projections import trace_projections
    if not specs or not langs:
        raise ValueError("give at least one model and one language")
    if load is None:                                 # load given: the caller's own models
        from hrpo.models import load_model as load
        for spec in specs:
            check_spec(spec)
    problems = [(lang, p) for lang in langs for p in load_task(f"mgsm:{lang}", "test", limit=limit).problems]
    counts, summary = [], []
    for label, spec in zip(unique_labels(specs), specs):
        if on_model:
            on_model(label)
        hm = load(spec, **load_kw)
        mcfg = decoding_config(hm, cfg)
        questions = [p.question for _, p in problems]
        traces = [tr for i in range(0, len(questions), batch_size)
                  for tr in make_decoder(hm, questions[i:i + batch_size], mcfg, keep_latents=True).run()]
        decode = functools.partial(hm.tokenizer.decode, skip_special_tokens=True)
        per_lang: dict = {}
        for i, ((lang, p), tr) in enumerate(zip(problems, traces)):
            q_scripts = prompt_scripts(p.question)
            thinking = [s.index for s in tr.steps if s.thinking]
            proj = trace_projections(hm, tr, k=k, sources=("latent",), steps=thinking) if thinking else None
            c = class_counts(token_scripts(tr, proj, trace_id=i, decode=decode), q_scripts)
            counts.append(c.assign(model=label, lang=lang, prompt_script="+".join(q_scripts)))
            ok, fmt = score(p.kind, tr.text, p.answer)
            own = dominant_script(tr.text) in q_scripts
            per_lang.setdefault(lang, []).append((ok and fmt, fmt, len(thinking), own))
        for lang, rows in per_lang.items():
            n = len(rows)
            summary.append({"model": label, "lang": lang, "problems": n, "hybrid": mcfg.hybrid,
                            "accuracy": sum(r[0] for r in rows) / n, "format_rate": sum(r[1] for r in rows) / n,
                            "thinking_steps": sum(r[2] for r in rows) / n,
                            "completion_in_prompt_script": sum(r[3] for r in rows) / n})
        del hm
    return shares(pd.concat(counts, ignore_index=True) if counts else pd.DataFrame()), pd.DataFrame(summary)
