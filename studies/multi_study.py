"""The multilingual study: HRPO and GRPO on Gemma 3 270M, trained on the `multi` task, evaluated per language on
the held-out forms and on MGSM against their base, and shipped by a rule fixed in advance.

    RECIPE=gemma3-270m-multi bash studies/forms_runs.sh "0"   # train HRPO and GRPO (resumable, parked)
    python -m studies.multi_study select                      # each run's best step on multi's valid split
    python -m studies.multi_study eval [--mgsm-limit 50]      # base and the finished runs, every language
    python -m studies.multi_study report                      # per-language accuracy, paired intervals, gate
    python -m studies.multi_study decide                      # the rule: ship or not, and why

Runs: $HRPO_STUDY_RUNS (default ~/hrpo-runs/multi), named hrpo-sN / grpo-sN; evaluation rows under
<runs>/eval/rows (studies/study.py `run`: greedy, fp32, 128 new tokens, the answer-line stop, the
checkpoints' own prompt format).  Models: `base` (gemma3-270m with a fresh gate: the untrained HRPO starting
point), each finished run's selected checkpoint (studies.study.select: best greedy accuracy on `multi` valid),
and each HRPO checkpoint again with its latents off (`hrpo-plain-sN`, a = 1: the latent ablation).
Sets, per language L of the eleven MGSM languages: `multi:L:heldout` (the held-out forms and templates, 50
problems) and `mgsm:L` (the first --mgsm-limit problems of MGSM).

The rule (`decide`): ship the pair (checkpoints/gemma3-270m-multi-{hrpo,grpo}) when the HRPO model's accuracy
is above the base's on `multi:L:heldout` in most languages (at least 6 of 11, point estimates); otherwise
record what happened.  With several seeds, each method's candidate is its seed with the best validation
accuracy.
Test: pytest tests/test_multi_study.py
"""
import argparse
import os
import sys
from pathlib import Path

from hrpo.multilingual_problems import LANGS
from studies.gate_report import gate_table
from studies.study import (
    accuracies,
    best_runs,
    finished_selected,
    load_rows,
    paired,
    plain_name,
    run_models,
    select,
    set_name,
)

BASE = "gemma3-270m"
HELDOUT = [f"multi:{lang}:heldout" for lang in LANGS]
MGSM = [f"mgsm:{lang}" for lang in LANGS]
MOST = 6                 # the rule: HRPO above the base in at least this many of the 11 languages
NEW_TOKENS = 128


def runs_dir() -> Path:
    return Path(os.environ.get("HRPO_STUDY_RUNS") or Path.home() / "hrpo-runs" / "multi")


def cmd_eval(args) -> None:
    from studies.study import cmd_run
    rows, specs = runs_dir() / "eval" / "rows", [f"base={args.base}", *run_models(runs_dir())]
    for sets, limit in ((HELDOUT, args.heldout_limit), (MGSM, args.mgsm_limit)):
        cmd_run(argparse.Namespace(out=str(rows), limit=limit, sets=",".join(sets), models=specs,
                                   max_new_tokens=NEW_TOKENS, stop="answer"))


def table(rows_dir: Path, names: dict, sets: list[str]) -> str:
    """Markdown: one row per language (and all pooled) of each model's accuracy and the paired differences
    HRPO - base and HRPO - GRPO (95% intervals).  names: {"base", "hrpo", "hrpo-plain", "grpo"} -> model name."""
    present = {k: n for k, n in names.items() if all((rows_dir / f"{n}__{set_name(s)}.jsonl").is_file() for s in sets)}
    cols = [k for k in ("base", "grpo", "hrpo", "hrpo-plain") if k in present]
    head = ["language", *[{"hrpo-plain": "hrpo, a = 1"}.get(k, k) for k in cols]]
    pairs = [(a, b) for a, b in (("hrpo", "base"), ("hrpo", "grpo"), ("hrpo", "hrpo-plain")) if {a, b} <= set(present)]
    head += [f"{a} - {b} (95% CI)" for a, b in pairs]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for lang, group in [*zip(LANGS, [[set_name(s)] for s in sets]), ("all", [set_name(s) for s in sets])]:
        cells = []
        for k in cols:
            rewards = [r["reward"] for s in group for r in load_rows(rows_dir, present[k], s)]
            cells.append(f"{sum(rewards) / len(rewards):.3f}")
        for a, b in pairs:
            m, lo, hi = paired(rows_dir, [present[a]], [present[b]], group)
            cells.append(f"{m:+.3f} ({lo:+.3f} to {hi:+.3f})")
        lines.append(f"| {lang} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def named(runs: Path) -> dict:
    """The models the report and the rule compare: the base and each method's candidate run."""
    c = best_runs(finished_selected(runs))
    names = {"base": "base", **c}
    if "hrpo" in c:
        names["hrpo-plain"] = plain_name(c["hrpo"])
    return names


def cmd_report(args) -> None:
    runs = runs_dir()
    rows, names = runs / "eval" / "rows", named(runs)
    print(f"Models: {', '.join(f'{k} = {v}' for k, v in names.items())}")
    for title, sets in (("Held-out forms (multi:L:heldout)", HELDOUT), ("MGSM (mgsm:L)", MGSM)):
        print(f"\n#### {title}\n\n{table(rows, names, sets)}")
    print("\nThe gate over each run's last 10 training steps (metrics.jsonl):\n")
    print(gate_table(runs))


def decide(acc: dict, base: str, hrpo: str) -> tuple[bool, list[str]]:
    """The rule of the module doc on acc[model][set name]: (ship?, one line per language and the verdict)."""
    lines, wins = [], 0
    for lang, s in zip(LANGS, HELDOUT):
        a, b = acc[hrpo][set_name(s)], acc[base][set_name(s)]
        wins += a > b
        lines.append(f"{lang}: HRPO {a:.3f} vs base {b:.3f}: {'above' if a > b else 'not above'}")
    ok = wins >= MOST
    lines.append(f"HRPO above the base in {wins} of {len(LANGS)} languages (the rule asks {MOST}): "
                 + ("SHIP the pair" if ok else "do not ship; record the result"))
    return ok, lines


def cmd_decide(args) -> None:
    runs = runs_dir()
    names = named(runs)
    if "hrpo" not in names:
        raise SystemExit("no finished HRPO run: train and evaluate first")
    acc = accuracies(runs / "eval" / "rows", [names["base"], names["hrpo"]], [set_name(s) for s in HELDOUT])
    missing = [s for s in HELDOUT if set_name(s) not in acc[names["base"]] or set_name(s) not in acc[names["hrpo"]]]
    if missing:
        raise SystemExit(f"not evaluated yet: {', '.join(missing)}; run `python -m studies.multi_study eval`")
    print("\n".join(decide(acc, names["base"], names["hrpo"])[1]))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m studies.multi_study", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(required=True)
    sub.add_parser("select").set_defaults(func=lambda a: print(select(runs_dir())))
    e = sub.add_parser("eval")
    e.add_argument("--heldout-limit", type=int, default=50, help="held-out problems per language (the set has 50)")
    e.add_argument("--mgsm-limit", type=int, default=50, help="MGSM problems per language (of 250)")
    e.add_argument("--base", default=BASE, help="the base model's spec (tests: tiny-random)")
    e.set_defaults(func=cmd_eval)
    sub.add_parser("report").set_defaults(func=cmd_report)
    sub.add_parser("decide").set_defaults(func=cmd_decide)
    args = ap.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
