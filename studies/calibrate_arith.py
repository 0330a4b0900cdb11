"""Calibrate the arith task: greedy base accuracy of a model per level on the held-out split.

Runs exactly what evaluation runs: rollout(hm, questions, RolloutConfig(greedy=True, max_new_tokens=N))
with hybrid decoding on and a fresh gate, scored by hrpo.rewards (correct AND exactly one '####').
    python -m studies.calibrate_arith --levels 1 2 3 --n 112 | tee /tmp/arith_calibration.txt
`--hint TEXT` replaces the instruction at the end of each question (to compare wordings).
"""
import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

from hrpo import tasks
from hrpo.config import RolloutConfig
from hrpo.models import load_model
from hrpo.rewards import score
from hrpo.rollout import rollout


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--n", type=int, default=112, help="held-out problems per level")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=200)
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hint", default=None, help="replace tasks.ANSWER_HINT")
    ap.add_argument("--show", type=int, default=2, help="completions to print per level")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.hint is not None:
        tasks.ANSWER_HINT = args.hint
    hm = load_model(args.model, device="cpu", dtype="float32")
    cfg = RolloutConfig(greedy=True, max_new_tokens=args.max_new_tokens)
    print(f"model={args.model} max_new_tokens={cfg.max_new_tokens} greedy hybrid=on fresh gate "
          f"batch={args.batch} threads={args.threads} hint={tasks.ANSWER_HINT!r}", flush=True)
    print("level      n  accuracy  correct_any  format_ok  has_marker  seconds", flush=True)
    for level in args.levels:
        task = tasks.load_task(f"arith:{level}", split="test", limit=args.n)
        start, rows = time.perf_counter(), []
        for i in range(0, len(task), args.batch):
            chunk = task.problems[i:i + args.batch]
            traces = rollout(hm, [p.question for p in chunk], cfg)
            rows += [(p, t.text, *score("math", t.text, p.answer)) for p, t in zip(chunk, traces)]
        secs = time.perf_counter() - start
        n = len(rows)
        acc = sum(c and f for _, _, c, f in rows) / n
        print(f"{level:5d} {n:6d} {acc:9.3f} {sum(c for *_, c, _ in rows) / n:12.3f} "
              f"{sum(f for *_, f in rows) / n:10.3f} {sum('####' in t for _, t, *_ in rows) / n:11.3f} "
              f"{secs:8.0f}", flush=True)
        for p, text, c, f in rows[:args.show]:
            print(f"    Q: {p.question}\n    ref={p.answer} correct={c} format={f}\n    A: {text!r}", flush=True)


if __name__ == "__main__":
    main()
