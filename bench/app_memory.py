"""The app's resident memory under bursts of concurrent generations: RSS after each burst.

Starts `python app.py` on a free loopback port (HRPO_MODEL=<model>), waits for it, sends one warm-up
generation, then `--bursts` bursts of `--concurrency` concurrent /generate requests through
gradio_client and prints the app's RSS before, at the peak of (sampled every 0.1 s with psutil), 2 s
after and --settle s after each burst.  Variants, to find what grows and what bounds it:
  plain     the app as it ships
  arena2    MALLOC_ARENA_MAX=2 in the app's environment (glibc: at most 2 malloc arenas)
  bound     the app started through studio.memory.bound_memory() (2 arenas + malloc_trim once the process is quiet),
            what the app would do by calling it at start-up
  python -m bench.app_memory [--variant plain,arena2,bound] [--model default] [--bursts 4]
                               [--concurrency 8] [--new 64] [--settle 12] [--json]
The figure depends on the machine and on what else runs on it; say so when quoting it.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from bench.app_process import start_app

ROOT = Path(__file__).resolve().parents[1]

def start(variant: str, model: str, log) -> tuple[subprocess.Popen, str]:
    """The app as shipped (`bound`: app.py calls studio.memory.bound_memory()), without the bound (`plain`,
    HRPO_BOUND_MEMORY=0), or without it but with MALLOC_ARENA_MAX=2 (`arena2`)."""
    env = {"HRPO_MODEL": model, "GRADIO_ANALYTICS_ENABLED": "False"}
    if variant in ("plain", "arena2"):
        env["HRPO_BOUND_MEMORY"] = "0"
    if variant == "arena2":
        env["MALLOC_ARENA_MAX"] = "2"
    proc, url, _ = start_app(env=env, log=log.name, limit_s=300)
    return proc, url


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def burst(client, model: str, n: int, new: int, seed0: int) -> None:
    def one(i):
        return client.predict(model, "What is 17 + 25? Think step by step.", new, 0.7, 50, seed0 + i, False, True,
                              api_name="/generate")
    with ThreadPoolExecutor(n) as pool:
        list(pool.map(one, range(n)))


def measure(variant: str, model: str, bursts: int, n: int, new: int, settle: float) -> dict:
    from gradio_client import Client
    with tempfile.NamedTemporaryFile("w", prefix=f"app-memory-{variant}-", suffix=".log", delete=False) as log:
        proc, url = start(variant, model, log)
    try:
        client = Client(url, verbose=False)
        burst(client, model, 1, new, 0)                      # warm-up: the model is loaded, first allocations made
        time.sleep(2)
        row = {"variant": variant, "model": model, "concurrency": n, "new_tokens": new, "idle_mb": rss_mb(proc.pid),
               "bursts": []}
        for b in range(bursts):
            peak, done = [0.0], threading.Event()

            def sample():
                while not done.wait(0.1):
                    peak[0] = max(peak[0], rss_mb(proc.pid))
            t = threading.Thread(target=sample, daemon=True)
            t.start()
            t0 = time.time()
            burst(client, model, n, new, 1000 * (b + 1))
            done.set()
            t.join()
            seconds = time.time() - t0
            time.sleep(2)
            after = rss_mb(proc.pid)
            time.sleep(max(0.0, settle - 2))
            row["bursts"].append({"peak_mb": round(peak[0]), "after_mb": round(after),
                                  "settled_mb": round(rss_mb(proc.pid)), "seconds": round(seconds, 1)})
            print(f"{variant}: burst {b + 1}/{bursts} ({n} x {new} tokens, {seconds:.0f} s): peak {peak[0]:.0f} MB, "
                  f"2 s after {after:.0f} MB, {settle:.0f} s after {rss_mb(proc.pid):.0f} MB", file=sys.stderr,
                  flush=True)
        return row
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="plain,arena2,bound", help="comma-separated: plain, arena2, bound")
    ap.add_argument("--model", default="default", help="HRPO_MODEL of the app (default, or checkpoints/<name>)")
    ap.add_argument("--bursts", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--new", type=int, default=64, help="new tokens per request")
    ap.add_argument("--settle", type=float, default=12.0,
                    help="seconds after each burst for the settled reading (bound trims within 10 s of going quiet)")
    ap.add_argument("--json", action="store_true", help="one JSON line per variant")
    args = ap.parse_args()
    for variant in [v.strip() for v in args.variant.split(",") if v.strip()]:
        if variant not in ("plain", "arena2", "bound"):
            raise SystemExit(f"unknown variant {variant!r}; use plain, arena2 or bound")
        row = measure(variant, args.model, args.bursts, args.concurrency, args.new, args.settle)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            after = " -> ".join(f"{b['after_mb']}" for b in row["bursts"])
            settled = " -> ".join(f"{b['settled_mb']}" for b in row["bursts"])
            peaks = " / ".join(f"{b['peak_mb']}" for b in row["bursts"])
            print(f"{variant:7s} {args.model}: idle {row['idle_mb']:.0f} MB; 2 s after each burst {after} MB; "
                  f"{args.settle:.0f} s after {settled} MB; peaks {peaks} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
