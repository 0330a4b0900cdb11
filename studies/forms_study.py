"""The shipped-models study (docs/forms_study.md): select each run's checkpoint on the validation split, evaluate
the selected HRPO and GRPO models (and the old shipped pair) on every held-out set, and decide by the rule fixed
in advance whether the new pair replaces the shipped one.

    bash studies/forms_runs.sh "0 1 2"                      # train: HRPO and GRPO, seeds 0-2 (resumable)
    python -m studies.forms_study select                     # each run's best step on forms' valid split
    python -m studies.forms_study eval                       # 300 problems per set, greedy, fp32 (resumable)
    python -m studies.forms_study report                     # accuracy with 95% intervals, each run's gate
    python -m studies.forms_study decide                     # the rule: ship or keep, and why

Runs: $HRPO_STUDY_RUNS (default ~/hrpo-runs/forms), named hrpo-sN / grpo-sN; evaluation rows under
<runs>/eval.  Only finished runs are evaluated.  Selection reads each run's eval.jsonl (greedy accuracy on
`forms` valid, 300 problems, logged every 100 updates by the trainer); the checkpoint of the best step is
evaluated (ties: the later step).

The rule (`decide`; issue "the shipped models as a visitor meets them", item 5): replace the shipped pair when
  1. the new HRPO model is at least the old one on the arith test split, and
  2. the new HRPO model is at least the new GRPO model on every set (point estimates), and
  3. the three-seed HRPO - GRPO interval (paired over problems, 95%) has its lower end above -2 points on
     every set;
otherwise keep the old pair.  The new pair is each method's seed with the best validation accuracy.
Test: pytest tests/test_forms_study.py
"""
import argparse
import json
import os
import sys
from pathlib import Path

from studies.gate_report import gate_table
from studies.study import accuracies, best_runs, finished_selected, paired, run_models, select, set_name

SETS = ["arith:2", "forms", "forms:heldout", "jsonl:{eval}/reworded.jsonl", "jsonl:{eval}/pairs.jsonl", "everyday"]
OLD = {"hrpo-old": "checkpoints/smollm2-arith-hrpo", "grpo-old": "checkpoints/smollm2-arith-grpo"}
MARGIN = -0.02          # rule 3: the interval's lower end must be above this (-2 points)


def runs_dir() -> Path:
    return Path(os.environ.get("HRPO_STUDY_RUNS") or Path.home() / "hrpo-runs" / "forms")


def decide(acc: dict, pooled_diff: dict, shipped: dict) -> tuple[bool, list[str]]:
    """The rule of the module doc.  acc[model][set]: point accuracy of "hrpo-new", "grpo-new", "hrpo-old";
    pooled_diff[set]: (mean, low, high) of the three-seed paired HRPO - GRPO difference; shipped: the sets.
    Returns (replace?, one line per check)."""
    lines, ok = [], True
    old, new = acc["hrpo-old"]["arith2"], acc["hrpo-new"]["arith2"]
    ok &= new >= old
    lines.append(f"new HRPO {new:.3f} vs old HRPO {old:.3f} on arith:2: {'ok' if new >= old else 'FAILS'}")
    for s in shipped:
        h, g = acc["hrpo-new"][s], acc["grpo-new"][s]
        m, lo, hi = pooled_diff[s]
        good = h >= g and lo > MARGIN
        ok &= good
        lines.append(f"{s}: new HRPO {h:.3f} vs new GRPO {g:.3f}; three seeds {m:+.3f} ({lo:+.3f} to {hi:+.3f}): "
                     f"{'ok' if good else 'FAILS'}")
    return ok, lines


def cmd_select(args) -> None:
    print(json.dumps(select(runs_dir()), indent=1))


def cmd_eval(args) -> None:
    from studies import reworded_arith
    from studies.study import main as study_main
    runs = runs_dir()
    ev = runs / "eval"
    for wording, name in (("containers", "reworded"), ("pairs", "pairs")):
        if not (ev / f"{name}.jsonl").is_file():
            ev.mkdir(parents=True, exist_ok=True)
            rows = reworded_arith.problems(wording, 300, 2505)
            (ev / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    models = [f"{name}={spec}" for name, spec in OLD.items()] + run_models(runs)
    sets = ",".join(s.format(eval=ev) for s in SETS)
    sys.argv = ["study", "run", "--out", str(ev / "rows"), "--limit", str(args.limit), "--sets", sets, *models]
    study_main()


def cmd_decide(args) -> None:
    runs = runs_dir()
    rows_dir, chosen = runs / "eval" / "rows", finished_selected(runs)
    sets = [set_name(s.format(eval=runs / "eval")) for s in SETS]
    seeds = sorted({n.rsplit("-s", 1)[1] for n in chosen if n.startswith("hrpo")} &
                   {n.rsplit("-s", 1)[1] for n in chosen if n.startswith("grpo")})
    if len(seeds) < 3:
        raise SystemExit(f"need HRPO and GRPO runs of three seeds, have seeds {seeds}: train and evaluate first")
    best = best_runs(chosen)
    acc = accuracies(rows_dir, [*OLD, best["hrpo"], best["grpo"]], sets)
    acc["hrpo-new"], acc["grpo-new"] = acc.pop(best["hrpo"]), acc.pop(best["grpo"])
    ok, lines = decide(acc, {s: paired(rows_dir, [f"hrpo-s{k}" for k in seeds], [f"grpo-s{k}" for k in seeds], [s])
                             for s in sets}, sets)
    print(f"candidates: {best['hrpo']} and {best['grpo']} (best validation accuracy)")
    print("\n".join(lines))
    print("decision: " + ("REPLACE the shipped pair" if ok else "KEEP the shipped pair"))


def cmd_report(args) -> None:
    from studies.study import cmd_report as study_report
    study_report(argparse.Namespace(out=str(runs_dir() / "eval" / "rows"),
                                    group="hrpo-old,grpo-old,hrpo,hrpo-plain,grpo"))
    print("\nThe gate over each run's last 10 training steps (metrics.jsonl):\n")
    print(gate_table(runs_dir()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(required=True)
    sub.add_parser("select").set_defaults(func=cmd_select)
    e = sub.add_parser("eval")
    e.add_argument("--limit", type=int, default=300)
    e.set_defaults(func=cmd_eval)
    sub.add_parser("decide").set_defaults(func=cmd_decide)
    sub.add_parser("report").set_defaults(func=cmd_report)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
