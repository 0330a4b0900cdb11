"""Issue-29 sweep: does the gate learn where to think?  Short HRPO runs, one after another, each evaluated.

Every setting is the shipped recipe (docs/DESIGN.md section 2) cut to 100 updates (4 prompts x G = 8, bf16,
--save-every 10) with other gate knobs: the gate learning rate (W_r, W_i) in {1e-3, 1e-2, 3e-2}, with or
without weight decay on W_r / W_i (`--gate-weight-decay 0`; Lambda keeps its decay 0.1), the paper's Lambda
learning rate 1e-3 beside the shipped 3e-2 at the best gate setting (`--best NAME`), and the GRPO baseline.
Runs go one after another (2 shared cores), each right after training evaluated greedily in fp32 on three
held-out sets (300 arith:2 test problems, and 300 in each wording of studies/reworded_arith.py: `reworded`
and `pairs`) twice: hybrid, and with the gate forced to a = 1 (plain decoding, the latent ablation).  Per
evaluated problem it keeps the reward and, for hybrid decoding, the selectivity records of its thinking
tokens (hrpo.selectivity).

Everything is resumable: a finished run (checkpoints/step-000100) is not trained again, an unfinished one
continues with `--resume` from its newest checkpoint (every 10 steps), an evaluation file already written
is not redone.  So after an interruption, run the same command again.  A lock per run lets two sweep
processes share a directory (each skips the run the other is on); `--eval-only` evaluates finished runs on
the sets they miss (a new wording) and trains nothing.  Processes that share the 2 cores need
`OMP_NUM_THREADS=1` (training subprocesses get it by default): a two-thread evaluation beside three other
processes took 1,387 s where it takes 100 s alone.  `studies/gate_report.py` builds the table from
whatever has finished.

    nohup nice -n 19 .venv/bin/python -m studies.gate_sweep run > runs/gate-sweep/sweep.log 2>&1 &
    .venv/bin/python -m studies.gate_sweep run --only glr3e-2-nowd --seeds 1      # a second seed
    .venv/bin/python -m studies.gate_sweep run --only lam1e-3 --best glr3e-2-nowd  # paper's Lambda lr
    .venv/bin/python -m studies.gate_sweep list
"""
import argparse
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STEPS = 100
RECIPE = ["--model", "default", "--task", "arith", "--steps", str(STEPS), "--group-size", "8", "--batch-prompts", "4",
          "--max-new-tokens", "64", "--lr", "1e-4", "--gate-lr", "1e-3", "--lambda-lr", "3e-2", "--weight-decay", "0.1",
          "--lora-rank", "8", "--lora-alpha", "16", "--r-min", "0.99", "--save-every", "10", "--keep-checkpoints", "2",
          "--dtype", "bfloat16"]
# name -> flags after RECIPE (later flags win); in the order they run (most informative first)
SETTINGS = {
    "glr3e-2-nowd": ["--gate-lr", "3e-2", "--gate-weight-decay", "0"],
    "glr1e-2-nowd": ["--gate-lr", "1e-2", "--gate-weight-decay", "0"],
    "glr3e-2-wd":   ["--gate-lr", "3e-2"],
    "glr1e-2-wd":   ["--gate-lr", "1e-2"],
    "glr1e-3-nowd": ["--gate-weight-decay", "0"],
    "glr1e-3-wd":   [],                                   # the shipped recipe at 100 updates
    "grpo":         ["--mode", "grpo"],
    "lam1e-3":      ["--lambda-lr", "1e-3"],              # added to the --best setting's flags
}
SETS = {"arith": "arith:2", "reworded": "containers", "pairs": "pairs"}   # wordings: jsonl written under --out


def run_name(setting: str, seed: int, best: str | None) -> str:
    return f"lam1e-3-{best}-s{seed}" if setting == "lam1e-3" else f"{setting}-s{seed}"


def flags(setting: str, best: str | None) -> list[str]:
    if setting == "lam1e-3":
        if not best or best not in SETTINGS or best in ("grpo", "lam1e-3"):
            raise SystemExit("lam1e-3 needs --best NAME, the best gate setting (e.g. glr3e-2-nowd)")
        return SETTINGS[best] + SETTINGS["lam1e-3"]
    return SETTINGS[setting]


def final_checkpoint(run: Path) -> Path:
    return run / "checkpoints" / f"step-{STEPS:06d}"


def train(out: Path, name: str, extra: list[str], seed: int) -> bool:
    run = out / name
    if final_checkpoint(run).is_dir():
        return True
    cmd = [sys.executable, "-m", "hrpo", "train", *RECIPE, *extra, "--seed", str(seed), "--out", str(run), "--resume"]
    print(time.strftime("%F %T"), "train", name, " ".join(cmd[3:]), flush=True)
    with open(out / f"{name}.log", "a", encoding="utf-8") as log:
        rc = subprocess.call(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                             env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    print(time.strftime("%F %T"), "train", name, "exit", rc, flush=True)
    return rc == 0 and final_checkpoint(run).is_dir()


def held_out(out: Path, limit: int) -> dict:
    """set name -> problems: arith:2's test split, and the wordings of studies/reworded_arith.py as jsonl."""
    from hrpo.tasks import load_task
    specs = {}
    for name, spec in SETS.items():
        if not spec.startswith("arith"):
            path = out / f"{name}.jsonl"
            if not path.exists():
                subprocess.check_call([sys.executable, "-m", "studies.reworded_arith", "--wording", spec,
                                       "--n", str(limit), "--out", str(path)], cwd=ROOT)
            spec = f"jsonl:{path}"
        specs[name] = spec
    return {s: load_task(spec, "test", limit=limit).problems for s, spec in specs.items()}


def evaluate_run(out: Path, name: str, sets: dict, hybrid_model: bool, max_new_tokens: int, batch: int) -> None:
    """eval/<name>__<set>__<hybrid|plain>.jsonl: one line per problem (reward, length, selectivity records)."""
    todo = [(s, m) for s in sets for m in (("hybrid", "plain") if hybrid_model else ("plain",))
            if not (out / "eval" / f"{name}__{s}__{m}.jsonl").exists()]
    if not todo:
        return
    import torch

    from hrpo.checkpoint import read_config
    from hrpo.config import RolloutConfig
    from hrpo.models import load_model
    from hrpo.rewards import score
    from hrpo.selectivity import thinking_records
    from hrpo.static_decoder import make_decoder
    spec = final_checkpoint(out / name)
    torch.manual_seed(0)
    hm = load_model(str(spec), device="cpu", dtype="float32")
    train_cfg = read_config(spec).get("train", {})
    (out / "eval").mkdir(exist_ok=True)
    for s, mode in todo:
        cfg = RolloutConfig(max_new_tokens=max_new_tokens, temperature=train_cfg.get("temperature", 0.5),
                            top_k=train_cfg.get("top_k", 50), greedy=True, hybrid=mode == "hybrid")
        t0, rows = time.perf_counter(), []
        problems = sets[s]
        for start in range(0, len(problems), batch):
            chunk = problems[start:start + batch]
            with torch.no_grad():
                traces = make_decoder(hm, [p.question for p in chunk], cfg).run()
            for p, tr in zip(chunk, traces):
                correct, formatted = score(p.kind, tr.text, p.answer)
                rows.append({"reward": float(correct and formatted), "correct": bool(correct),
                             "formatted": bool(formatted), "num_tokens": len(tr.token_ids),
                             "records": thinking_records(tr.steps) if mode == "hybrid" else []})
        path = out / "eval" / f"{name}__{s}__{mode}.jsonl"
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        os.replace(tmp, path)
        acc = sum(r["reward"] for r in rows) / len(rows)
        print(time.strftime("%F %T"), "eval", name, s, mode, f"accuracy {acc:.3f}",
              f"({time.perf_counter() - t0:.0f} s)", flush=True)


def run_lock(out: Path, name: str):
    """An exclusive lock on one run (train + evaluate), or None when another sweep process holds it."""
    lock = open(out / f".{name}.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        return None
    return lock


def cmd_run(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = args.only.split(",") if args.only else [s for s in SETTINGS if s != "lam1e-3" or args.best]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise SystemExit(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    sets = held_out(out, args.limit)
    for seed in map(int, args.seeds.split(",")):
        for setting in settings:
            name = run_name(setting, seed, args.best)
            lock = run_lock(out, name)
            if lock is None:
                print(time.strftime("%F %T"), "skip", name, "(another sweep process is on it)", flush=True)
                continue
            with lock:
                done = final_checkpoint(out / name).is_dir() if args.eval_only else train(
                    out, name, flags(setting, args.best), seed)
                if not done:
                    print(time.strftime("%F %T"), "skip evaluation of", name, "(training did not finish)", flush=True)
                elif not args.no_eval:
                    evaluate_run(out, name, sets, setting != "grpo", args.max_new_tokens, args.batch_size)
    print(time.strftime("%F %T"), "sweep done", flush=True)


def cmd_list(args) -> None:
    for s, f in SETTINGS.items():
        print(f"{s:14s} {' '.join(f) or '(the shipped recipe)'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(required=True)
    r = sub.add_parser("run", help="train and evaluate the settings one after another (resumable)")
    r.add_argument("--out", default="runs/gate-sweep")
    r.add_argument("--only", default="", help="comma-separated settings (default: all, lam1e-3 only with --best)")
    r.add_argument("--seeds", default="0", help="comma-separated seeds")
    r.add_argument("--best", default=None, help="the gate setting lam1e-3 builds on")
    r.add_argument("--limit", type=int, default=300, help="problems per held-out set")
    r.add_argument("--max-new-tokens", type=int, default=128)
    r.add_argument("--batch-size", type=int, default=25)
    r.add_argument("--no-eval", action="store_true", help="train only")
    r.add_argument("--eval-only", action="store_true", help="evaluate finished runs on the sets they miss; train none")
    r.set_defaults(func=cmd_run)
    sub.add_parser("list", help="the settings and their flags").set_defaults(func=cmd_list)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
