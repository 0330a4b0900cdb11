"""Live streaming vs the decoder alone: does the app's Live tab stream at the decoder's speed?

Side by side in one run, alternating, on the same model, prompt and settings (greedy, keep_states as Live):
  decoder   make_decoder(hm, [prompt], cfg, keep_states=True).steps() run to the end in this process:
            tokens / wall time from the call to the last step (prompt encoding and prefill included)
  api       `python app.py` on a loopback port, one `/generate` job through gradio_client: tokens / wall
            time from submit to the final result (queueing, every streamed update and the final table included)
Prints both medians, their ratio api / decoder, and the median of the per-pair ratios (each api run over the
decoder run just before it: steadier when the machine's speed drifts); --json writes the rows.  A warm-up
request of the same length goes first on both paths.  Nothing else may use the CPU meanwhile.
Run: python -m bench.bench_live [--model checkpoints/smollm2-arith-hrpo] [--tokens 128] [--repeats 3]
Test: pytest tests/test_bench_live.py
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from bench.app_process import start_app, stop_app

ROOT = Path(__file__).resolve().parents[1]
PAUSE_S = 1.0
PROMPT = ("Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
          "friends every day with four. She sells the remainder for $2 per egg. How much does she make every day?")


def decoder_run(hm, prompt: str, tokens: int) -> dict:
    from hrpo.config import RolloutConfig
    from hrpo.static_decoder import make_decoder
    cfg = RolloutConfig(max_new_tokens=tokens, greedy=True)
    t0 = time.perf_counter()
    dec = make_decoder(hm, [prompt], cfg, keep_states=True)
    for _ in dec.steps():
        pass
    seconds = time.perf_counter() - t0
    n = len(dec.traces[0].token_ids)
    return {"how": "decoder", "tokens": n, "seconds": seconds, "tokens_per_s": n / seconds}


def api_run(client, model: str, prompt: str, tokens: int) -> dict:
    t0 = time.perf_counter()
    job = client.submit(model, prompt, tokens, 0.5, 50, 0, True, True, api_name="/generate")
    status = job.result()[3]           # waits without polling: iterating a Job polls every 1 ms, which on a
    seconds = time.perf_counter() - t0  # 2-core machine takes CPU from the app's decoder (a browser does not)
    updates = len(job.outputs())
    n = int(status.split("done: ")[1].split(" tokens")[0])
    return {"how": "api", "tokens": n, "seconds": seconds, "tokens_per_s": n / seconds, "updates": updates}


def bench(model: str, tokens: int, repeats: int, log: Path) -> dict:
    import gradio_client

    from hrpo.models import load_model
    proc, url, _ = start_app(env={"HRPO_MODEL": model}, log=log, limit_s=300)
    try:
        client = gradio_client.Client(url, verbose=False)
        hm = load_model(str(ROOT / model) if (ROOT / model).exists() else model)
        api_run(client, model, PROMPT, tokens)               # warm-up at full length: the app loads its model,
        decoder_run(hm, PROMPT, tokens)                      # both paths' caches and allocator grow to size
        rows = []
        for _ in range(repeats):           # a pause before each run: neither process's threads still busy
            for run in (lambda: decoder_run(hm, PROMPT, tokens), lambda: api_run(client, model, PROMPT, tokens)):
                time.sleep(PAUSE_S)
                rows.append(run())
    finally:
        stop_app(proc)
    med = {how: statistics.median(r["tokens_per_s"] for r in rows if r["how"] == how) for how in ("decoder", "api")}
    pairs = [api["tokens_per_s"] / dec["tokens_per_s"] for dec, api in zip(rows[::2], rows[1::2])]
    return {"model": model, "tokens": tokens, "repeats": repeats, "dtype": str(hm.dtype), "rows": rows,
            "decoder_tokens_per_s": med["decoder"], "api_tokens_per_s": med["api"],
            "ratio": med["api"] / med["decoder"], "pair_ratios": pairs, "pair_ratio": statistics.median(pairs)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="checkpoints/smollm2-arith-hrpo")
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", help="write the result here")
    p.add_argument("--log", default="/tmp/hrpo-bench-live-app.log", help="the app's output")
    args = p.parse_args(argv)
    out = bench(args.model, args.tokens, args.repeats, Path(args.log))
    for r in out["rows"]:
        print(f"{r['how']:8s} {r['tokens']:4d} tokens {r['seconds']:7.2f} s {r['tokens_per_s']:7.2f} tokens/s"
              + (f" ({r['updates']} streamed updates)" if "updates" in r else ""))
    print(f"median: decoder {out['decoder_tokens_per_s']:.2f} tokens/s, Live through the API "
          f"{out['api_tokens_per_s']:.2f} tokens/s, ratio {out['ratio']:.3f}; median of per-pair ratios "
          f"{out['pair_ratio']:.3f} ({out['model']}, {out['dtype']}, {out['tokens']} new tokens)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
