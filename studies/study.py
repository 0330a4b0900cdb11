"""Issue-10 study: held-out evaluation of base / GRPO / HRPO models and its bootstrap report.

`run` evaluates each NAME=SPEC model (greedy, fp32, the checkpoints' own sampling settings) on each held-out
set and keeps every row (one JSONL per model and set, written whole; a set whose rows are there for the same
spec is skipped, so it resumes set by set);
for hybrid models it also records the hidden ratio of thinking tokens by token type.  `report` prints
accuracy with a 95% bootstrap interval over problems and seeds (models named MODE-...-sSEED are pooled per
MODE prefix given with --group), the paired HRPO - GRPO difference, lengths and hidden ratios, as Markdown.

    python -m studies.reworded_arith --n 300 --out runs/eval/reworded.jsonl
    python -m studies.study run --out runs/eval/study --limit 300 \
        --sets arith:2,jsonl:runs/eval/reworded.jsonl \
        base=default grpo-s0=runs/study-grpo-s0/checkpoints/step-000100 ...
    python -m studies.study report --out runs/eval/study --group base,grpo,hrpo-r0.95
"""
import argparse
import json
import random
import re
import unicodedata
from pathlib import Path

from hrpo.rundir import best_eval, finished


def set_name(spec: str) -> str:
    return Path(spec.split(":", 1)[1]).stem if spec.startswith("jsonl:") else spec.replace(":", "")


def token_type(piece: str) -> str:
    s = piece.strip()
    if not s:
        return "space/newline"
    if s.isdigit():
        return "digit"
    if all(unicodedata.category(ch).startswith(("P", "S")) for ch in s):
        return "symbol (#, =, +, -, ...)"
    return "word"


def gate_by_token_type(hm, problems, cfg) -> dict:
    """Mean hidden ratio sqrt(1 - a^2) of thinking tokens, by token type, over greedy traces."""
    from hrpo.rollout import Decoder
    sums: dict = {}
    for start in range(0, len(problems), 20):
        for tr in Decoder(hm, [p.question for p in problems[start:start + 20]], cfg).run():
            for s in tr.steps:
                if s.thinking:
                    n, tot = sums.get(token_type(s.token), (0, 0.0))
                    sums[token_type(s.token)] = (n + 1, tot + s.hidden_ratio)
    return {k: {"n": n, "hidden_ratio": tot / n} for k, (n, tot) in sorted(sums.items())}


def cmd_run(args) -> None:
    import torch

    from hrpo.checkpoint import is_checkpoint, read_config
    from hrpo.config import GateConfig, RolloutConfig
    from hrpo.evaluate import evaluate
    from hrpo.models import load_model
    from hrpo.tasks import load_task
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sets = {set_name(s): load_task(s, "test", limit=args.limit).problems for s in args.sets.split(",")}
    for item in args.models:
        name, given = item.split("=", 1)
        spec, _, r_min = given.partition("@r")           # default@r0.95: the base with a fresh gate at r_min 0.95
        hybrid = "-plain" not in name              # a GRPO checkpoint decodes plain anyway (decoding_config)
        same = evaluated_spec(out, name) == given       # rows of another spec are redone, the same spec's kept
        todo = {s: ps for s, ps in sets.items() if not (same and (out / f"{name}__{s}.jsonl").exists())}
        types_file = out / f"{name}__tokentypes.json"
        if not todo and (not hybrid or (same and types_file.exists())):
            continue
        if not same:                                     # no row of an earlier spec may pass for this one's
            for f in out.glob(f"{name}__*"):
                f.unlink()
        (out / f"{name}.spec").write_text(given, encoding="utf-8")
        torch.manual_seed(0)
        hm = load_model(spec, device="cpu", dtype="float32",
                        gate_config=GateConfig(r_min=float(r_min)) if r_min else None)
        train = read_config(spec).get("train", {}) if is_checkpoint(Path(spec)) else {}
        cfg = RolloutConfig(max_new_tokens=args.max_new_tokens, temperature=train.get("temperature", 0.5),
                            top_k=train.get("top_k", 50), greedy=True, hybrid=hybrid, stop=args.stop)
        for s, problems in todo.items():
            summary, rows = evaluate(hm, problems, cfg, batch_size=25)
            part = out / f"{name}__{s}.jsonl.part"        # renamed when whole: a killed run leaves no short file
            part.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
            part.replace(out / f"{name}__{s}.jsonl")
            with open(out / "summary.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps({"name": name, "spec": spec, "set": s, **summary}) + "\n")
            print(name, s, json.dumps(summary), flush=True)
        if hybrid and not (same and types_file.exists()):
            types = gate_by_token_type(hm, next(iter(sets.values()))[:60], cfg)
            types_file.write_text(json.dumps(types, indent=1), encoding="utf-8")


def evaluated_spec(out: Path, name: str) -> str | None:
    """The spec whose rows `out` holds for `name` (None before any): a name evaluated again on another
    checkpoint (a run selected anew after more training) is evaluated anew, never read from stale rows."""
    f = out / f"{name}.spec"
    return f.read_text(encoding="utf-8") if f.is_file() else None


def load_rows(out: Path, name: str, s: str) -> list[dict]:
    return [json.loads(line) for line in (out / f"{name}__{s}.jsonl").read_text().splitlines()]


def bootstrap(acc: list[list[float]], n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95% interval of acc[seed][problem], resampling problems and seeds."""
    rng = random.Random(seed)
    S, P = len(acc), len(acc[0])
    mean = sum(map(sum, acc)) / (S * P)
    stats = []
    for _ in range(n_boot):
        seeds = [rng.randrange(S) for _ in range(S)]
        probs = [rng.randrange(P) for _ in range(P)]
        stats.append(sum(acc[s][p] for s in seeds for p in probs) / (S * P))
    stats.sort()
    return mean, stats[int(0.025 * n_boot)], stats[int(0.975 * n_boot)]


def select(runs: Path) -> dict:
    """{run name: {"step", "valid_accuracy", "checkpoint"}} for every run with an eval.jsonl whose best step's
    checkpoint exists (rundir.best_eval; ties: the later step)."""
    out = {}
    for run in sorted(p for p in runs.iterdir() if p.is_dir() and (p / "eval.jsonl").is_file()):
        best = best_eval(run)
        if best:
            out[run.name] = {"step": best["step"], "valid_accuracy": best["accuracy"],
                             "checkpoint": str(run / "checkpoints" / f"step-{best['step']:06d}")}
    return out


def finished_selected(runs: Path) -> dict:
    """select(runs) restricted to the runs that have trained to their last step (their choice is final)."""
    return {n: c for n, c in select(runs).items() if finished(runs / n)}


def plain_name(run: str) -> str:
    """The name an HRPO run's checkpoint is evaluated under with its latents off: hrpo-s1 -> hrpo-plain-s1."""
    return run.replace("-s", "-plain-s")


def run_models(runs: Path) -> list[str]:
    """NAME=SPEC (studies.study run) for each finished run's selected checkpoint, each HRPO one also as
    MODE-plain-sSEED (latents off at inference: the ablation); says which runs are still training."""
    out = []
    for name, sel in select(runs).items():
        if not finished(runs / name):
            print(f"{name}: still training (its selection may change), not evaluated yet", flush=True)
            continue
        out.append(f"{name}={sel['checkpoint']}")
        if name.startswith("hrpo"):
            out.append(f"{plain_name(name)}={sel['checkpoint']}")
    return out


def best_runs(chosen: dict) -> dict:
    """{"hrpo": name, "grpo": name}: each method's run (named MODE-sSEED) with the best validation accuracy among
    `chosen` (select's output), for the methods that have one."""
    return {m: max(names, key=lambda n: chosen[n]["valid_accuracy"])
            for m in ("hrpo", "grpo") if (names := [n for n in chosen if n.startswith(m + "-s")])}


def accuracies(rows_dir: Path, names: list[str], sets: list[str]) -> dict:
    """{model: {set: accuracy}} from the evaluation rows."""
    mean = lambda rows: sum(r["reward"] for r in rows) / len(rows)  # noqa: E731
    return {n: {s: mean(load_rows(rows_dir, n, s)) for s in sets if (rows_dir / f"{n}__{s}.jsonl").is_file()}
            for n in names}


def paired(rows_dir: Path, a: list[str], b: list[str], sets: list[str]) -> tuple[float, float, float]:
    """Mean and 95% interval of model a[k] - model b[k] (k: a seed), paired problem by problem over `sets`
    pooled, resampling problems and seeds (bootstrap)."""
    diff = [[x["reward"] - y["reward"] for s in sets
             for x, y in zip(load_rows(rows_dir, ak, s), load_rows(rows_dir, bk, s))] for ak, bk in zip(a, b)]
    return bootstrap(diff)


def cmd_report(args) -> None:
    out = Path(args.out)
    files = sorted(out.glob("*__*.jsonl"))
    sets = sorted({f.stem.split("__")[1] for f in files})
    names = sorted({f.stem.split("__")[0] for f in files})
    groups = {g: [n for n in names if n == g or re.fullmatch(re.escape(g) + r"-s\d+", n)]
              for g in args.group.split(",")}
    for s in sets:
        print(f"\n#### {s}\n\n| model | seeds | accuracy (95% CI) | correct, any format | format | mean length "
              "| hidden ratio |")
        print("|---|---|---|---|---|---|---|")
        per = {}
        for g, members in groups.items():
            present = [n for n in members if (out / f"{n}__{s}.jsonl").exists()]
            rows = [load_rows(out, n, s) for n in present]
            if not rows:
                continue
            per[g] = {n.rpartition("-")[2]: [r["reward"] for r in rs]                     # seed -> rewards
                      for n, rs in zip(present, rows)}
            m, lo, hi = bootstrap(list(per[g].values()))
            flat = [r for rs in rows for r in rs]
            avg = lambda k: sum(float(r[k]) for r in flat) / len(flat)  # noqa: E731
            print(f"| {g} | {len(rows)} | {m:.3f} ({lo:.3f}-{hi:.3f}) | {avg('correct'):.3f} | {avg('formatted'):.3f} "
                  f"| {avg('num_tokens'):.1f} | {avg('hidden_ratio'):.4f} |")
        gs = list(per)
        # HRPO vs GRPO, and a model with its latents vs the same model decoded plain (group name + "-plain")
        pairs = [(x, y) for x in gs for y in gs if (x.startswith("hrpo") and y.startswith("grpo")) or y == x + "-plain"]
        for a, b in pairs:
            seeds = sorted(set(per[a]) & set(per[b]))                  # paired over problems within each seed
            matched = [(per[a][k], per[b][k]) for k in seeds]
            if not seeds and len(per[a]) == len(per[b]) == 1:          # two single models, e.g. base vs a run
                seeds, matched = ["-"], [(*per[a].values(), *per[b].values())]
            if not seeds:
                print(f"\n{a} - {b}: no seed in common")
                continue
            diff = [[x - y for x, y in zip(ra, rb)] for ra, rb in matched]
            m, lo, hi = bootstrap(diff)
            print(f"\n{a} - {b}: {m:+.3f} (95% CI {lo:+.3f} to {hi:+.3f}), paired over problems, "
                  f"seeds {', '.join(seeds)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(required=True)
    r = sub.add_parser("run")
    r.add_argument("models", nargs="+", help="NAME=SPEC (NAME ending -plain: no mixing; SPEC@rX: fresh gate r_min X)")
    r.add_argument("--sets", default="arith:2")
    r.add_argument("--limit", type=int, default=300)
    r.add_argument("--max-new-tokens", type=int, default=128)
    r.add_argument("--out", default="runs/eval/study")
    r.add_argument("--stop", default="answer", choices=["answer", "eos"], help="the stop rule (RolloutConfig.stop)")
    r.set_defaults(func=cmd_run)
    p = sub.add_parser("report")
    p.add_argument("--out", default="runs/eval/study")
    p.add_argument("--group", required=True, help="comma-separated model names or MODE prefixes pooled over -sN")
    p.set_defaults(func=cmd_report)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
