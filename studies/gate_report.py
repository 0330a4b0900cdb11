"""Issue-29 sweep table from whatever studies/gate_sweep.py has finished (Markdown on stdout, JSON with --json).

Per setting (runs NAME-sSEED pooled over seeds): training progress; held-out greedy accuracy (hybrid
decoding) on the three held-out sets with 95% bootstrap intervals over problems and seeds (studies/study.py's
bootstrap); the latent ablation hybrid - plain (gate forced to a = 1) paired over problems; the difference to GRPO where
the grpo run is evaluated; and gate selectivity (hrpo.selectivity): p90/p10 of the per-token hidden
ratio and its mean by token type and line position, on the held-out arith set's hybrid traces and, from
metrics.jsonl, over the last 10 training steps.  Targets of the issue: p90/p10 >= 1.5 with a per-type
pattern that repeats across seeds, ablation > 0 with its interval above 0, accuracy not below GRPO's.

    .venv/bin/python -m studies.gate_report [--out runs/gate-sweep] [--json runs/gate-sweep/report.json]
"""
import argparse
import json
import math
import re
from pathlib import Path

from hrpo.selectivity import SELECTIVITY, selectivity
from studies.study import bootstrap

SETS = ("arith", "reworded", "pairs")                    # studies/gate_sweep.py's held-out sets
TYPES = ("digit", "operator", "word", "punct", "line_first", "line_later")


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def runs_by_setting(out: Path) -> dict:
    """setting -> {seed: run dir} for every run directory NAME-sSEED."""
    found: dict = {}
    for d in sorted(p for p in out.iterdir() if p.is_dir() and (p / "metrics.jsonl").exists()):
        m = re.fullmatch(r"(.+)-s(\d+)", d.name)
        if m:
            found.setdefault(m.group(1), {})[m.group(2)] = d
    return found


def ci(per_seed: list[list[float]]) -> dict | None:
    if not per_seed:
        return None
    m, lo, hi = bootstrap(per_seed)
    return {"mean": m, "lo": lo, "hi": hi}


def fmt(c: dict | None, signed: bool = False) -> str:
    if c is None:
        return "-"
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(c['mean'])} ({f.format(c['lo'])} to {f.format(c['hi'])})"


def num(v, digits: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def train_tail(run: Path, last: int = 10) -> dict:
    rows = load(run / "metrics.jsonl")
    tail = rows[-last:]
    out = {"steps": rows[-1]["step"] if rows else 0}
    for k in ["hidden_ratio_mean", "accuracy", *SELECTIVITY]:
        vals = [r[k] for r in tail if isinstance(r.get(k), (int, float))]
        out[k] = sum(vals) / len(vals) if vals else None
    return out


def report(out: Path) -> dict:
    ev = out / "eval"
    table = {}
    grpo = {}
    for setting, seeds in runs_by_setting(out).items():
        row = {"seeds": sorted(seeds), "train": {s: train_tail(d) for s, d in seeds.items()}}
        for s in SETS:
            files = {seed: {m: ev / f"{setting}-s{seed}__{s}__{m}.jsonl" for m in ("hybrid", "plain")}
                     for seed in seeds}
            main_mode = "plain" if setting == "grpo" else "hybrid"
            have = {seed: load(f[main_mode]) for seed, f in files.items() if f[main_mode].exists()}
            row[f"{s}_n"] = sum(len(v) for v in have.values())
            row[f"{s}_seeds"] = sorted(have)
            row[f"{s}_acc"] = ci([[r["reward"] for r in rs] for rs in have.values()])
            row[f"{s}_rewards"] = {seed: [r["reward"] for r in rs] for seed, rs in have.items()}
            if setting != "grpo":
                both = {seed: (have[seed], load(f["plain"])) for seed, f in files.items()
                        if seed in have and f["plain"].exists()}
                row[f"{s}_ablation"] = ci([[a["reward"] - b["reward"] for a, b in zip(h, p)] for h, p in both.values()])
                row[f"{s}_plain_acc"] = ci([[r["reward"] for r in p] for _, p in both.values()])
                records = [tuple(x) for rs in have.values() for r in rs for x in r["records"]]
                row[f"{s}_selectivity"] = selectivity(records) if records else None
        if setting == "grpo":
            grpo = row
        table[setting] = row
    for setting, row in table.items():                   # hybrid - GRPO, paired over problems within a seed
        for s in SETS:
            g = grpo.get(f"{s}_rewards", {})
            pairs = [(row[f"{s}_rewards"][k], g[k]) for k in row.get(f"{s}_rewards", {}) if k in g]
            if not pairs and len(g) == 1 and len(row.get(f"{s}_rewards", {})) == 1:
                pairs = [(*row[f"{s}_rewards"].values(), *g.values())]
            row[f"{s}_vs_grpo"] = (ci([[a - b for a, b in zip(x, y)] for x, y in pairs])
                                   if pairs and setting != "grpo" else None)
    return table


def markdown(table: dict) -> str:
    lines = ["| setting | seeds | steps | " + " | ".join(f"{s} acc (95% CI)" for s in SETS) + " |",
             "|---|---|---|" + "---|" * len(SETS)]
    for name, r in table.items():
        steps = "/".join(str(t["steps"]) for t in r["train"].values())
        lines.append(f"| {name} | {','.join(r['seeds'])} | {steps} | "
                     + " | ".join(fmt(r[f'{s}_acc']) for s in SETS) + " |")
    lines += ["", "Latent ablation (hybrid - a=1) and difference to GRPO, paired over problems:", "",
              "| setting | " + " | ".join(f"ablation {s}" for s in SETS) + " | "
              + " | ".join(f"vs GRPO {s}" for s in SETS) + " |", "|---|" + "---|" * 2 * len(SETS)]
    for name, r in table.items():
        if name != "grpo":
            lines.append(f"| {name} | " + " | ".join(fmt(r.get(f'{s}_ablation'), True) for s in SETS) + " | "
                         + " | ".join(fmt(r.get(f'{s}_vs_grpo'), True) for s in SETS) + " |")
    lines += ["", "Gate selectivity, held-out arith, hybrid greedy traces (mean hidden ratio by token type):", "",
              "| setting | p90/p10 | digit | operator | word | punct | line first | line later |",
              "|---|---|---|---|---|---|---|---|"]
    for name, r in table.items():
        sel = r.get("arith_selectivity")
        if sel:
            lines.append(f"| {name} | {num(sel['hidden_ratio_p90_p10'])} | "
                         + " | ".join(num(sel[f'hidden_ratio_{t}'], 4) for t in TYPES) + " |")
    lines += ["", "Training, mean over each run's last 10 steps (metrics.jsonl):", "",
              "| run | steps | accuracy | hidden ratio | p90/p10 | digit | operator | word | punct "
              "| line first | line later |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in table.items():
        for seed, t in r["train"].items():
            lines.append(f"| {name}-s{seed} | {t['steps']} | {num(t['accuracy'])} | {num(t['hidden_ratio_mean'], 4)} "
                         f"| {num(t['hidden_ratio_p90_p10'])} | "
                         + " | ".join(num(t[f'hidden_ratio_{k}'], 4) for k in TYPES) + " |")
    return "\n".join(lines)


def gate_table(runs: Path) -> str:
    """Markdown: each run's gate over its last 10 training steps (metrics.jsonl; studies.gate_report.train_tail):
    accuracy, hidden ratio, p90/p10 and the mean hidden ratio by token type."""
    lines = ["| run | steps | accuracy | hidden ratio | p90/p10 | " + " | ".join(TYPES) + " |",
             "|---" * (5 + len(TYPES)) + "|"]
    for run in sorted(p for p in runs.iterdir() if p.is_dir() and (p / "metrics.jsonl").is_file()):
        t = train_tail(run)
        lines.append(f"| {run.name} | {t['steps']} | {num(t['accuracy'])} | {num(t['hidden_ratio_mean'], 4)} | "
                     f"{num(t['hidden_ratio_p90_p10'])} | " + " | ".join(num(t[f'hidden_ratio_{k}'], 4) for k in TYPES)
                     + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/gate-sweep")
    ap.add_argument("--json", default=None, help="also write the table as JSON here")
    args = ap.parse_args()
    table = report(Path(args.out))
    print(markdown(table))
    if args.json:
        slim = {k: {f: v for f, v in r.items() if not f.endswith("_rewards")} for k, r in table.items()}
        Path(args.json).write_text(json.dumps(slim, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
