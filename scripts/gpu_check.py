"""GPU check of hrpo.fastpath: the CUDA-graph static decode against the eager hrpo.rollout.Decoder.

On one CUDA device, random weights of a real shape (hrpo.bench.shape_model), synthetic prompts:
  1. greedy and sampled hybrid decodes: tokens/s of Decoder, StaticDecoder's first call (warm-up +
     capture included) and its second call (the cached graph replayed), peak memory;
  2. greedy equality in bf16 (rows identical, first divergence, max |logprob diff| on the common prefix)
     and the replayed graph equal to the first call (greedy and sampled: the generator reseeds);
  3. an exact check in fp32 on a small shape: greedy tokens equal, logprobs within 1e-4.
A capture that succeeds proves the step has no host sync (CUDA forbids syncs while capturing).
    python scripts/gpu_check.py                      # qwen2.5-1.5b, batch 32, 128-token prompts, 512 new
    python scripts/gpu_check.py --shape smollm2-135m --batch 8 --new 128
Prints figures only; no assertion stops it midway.
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from hrpo.bench import shape_model, synth_prompts  # noqa: E402
from hrpo.config import RolloutConfig  # noqa: E402
from hrpo.fastpath import StaticDecoder  # noqa: E402
from hrpo.rollout import Decoder  # noqa: E402


def timed(make):
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    dec = make()
    traces = dec.run()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens = sum(len(t.token_ids) for t in traces)
    return traces, tokens / seconds, torch.cuda.max_memory_allocated() / 2**30, dec


def compare(a, b) -> str:
    same = sum(x.token_ids == y.token_ids for x, y in zip(a, b))
    firsts, lp = [], 0.0
    for row, (x, y) in enumerate(zip(a, b)):
        n = next((i for i, (u, v) in enumerate(zip(x.token_ids, y.token_ids)) if u != v), None)
        if n is not None:
            firsts.append(n)
        m = n if n is not None else min(len(x.steps), len(y.steps))
        lp = max([lp] + [abs(s.logprob - t.logprob) for s, t in zip(x.steps[:m], y.steps[:m])])
        if x.thinking_mask[:m] != y.thinking_mask[:m]:
            return f"THINKING FLAGS DIFFER (row {row})"
    return (f"rows identical {same}/{len(a)}, first divergence step {min(firsts) if firsts else '-'}, "
            f"max |dlogprob| on common prefix {lp:.2e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="qwen2.5-1.5b")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=512)
    args = ap.parse_args()
    assert torch.cuda.is_available(), "needs a CUDA device"
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    hm = shape_model(args.shape, device="cuda")
    prompts = synth_prompts(hm, args.batch, args.prompt)
    print(f"{args.shape} {hm.dtype}, batch {args.batch}, prompt {args.prompt}, new {args.new}", flush=True)
    for greedy in (True, False):
        cfg = RolloutConfig(max_new_tokens=args.new, greedy=greedy, hybrid=True, seed=0)
        eager, tps_e, mem_e, _ = timed(lambda: Decoder(hm, prompts, cfg))
        first, tps_1, mem_1, d1 = timed(lambda: StaticDecoder(hm, prompts, cfg))
        again, tps_2, mem_2, d2 = timed(lambda: StaticDecoder(hm, prompts, cfg))
        mode = "greedy " if greedy else "sampled"
        print(f"[{mode}] eager Decoder      {tps_e:9.0f} tok/s  peak {mem_e:.2f} GiB", flush=True)
        print(f"[{mode}] static, 1st call   {tps_1:9.0f} tok/s  peak {mem_1:.2f} GiB  captured={d1.captured}")
        print(f"[{mode}] static, replayed   {tps_2:9.0f} tok/s  peak {mem_2:.2f} GiB  captured={d2.captured}"
              f"  speed-up vs eager x{tps_2 / tps_e:.2f}")
        if greedy:
            print(f"[{mode}] eager vs static (bf16): {compare(eager, first)}")
        print(f"[{mode}] 1st call vs replay: {compare(first, again)}", flush=True)
        bad = [i for i, t in enumerate(again) if any(x in hm.eos_ids for x in t.token_ids[:-1])]
        print(f"[{mode}] rows with tokens after EOS: {bad or 'none'}; finishes "
              f"{sum(t.finish == 'eos' for t in again)} eos / {len(again)}")
    hm = None  # free the big model before the fp32 check
    torch.cuda.empty_cache()
    small = shape_model("smollm2-135m", device="cuda", dtype="float32")
    cfg = RolloutConfig(max_new_tokens=64, greedy=True, hybrid=True)
    ps = synth_prompts(small, 4, 24)
    ps = [p[: 24 - 5 * i] for i, p in enumerate(ps)]                      # ragged: left padding exercised
    eager, static = Decoder(small, ps, cfg).run(), StaticDecoder(small, ps, cfg).run()
    print(f"[fp32 smollm2-135m greedy] eager vs static: {compare(eager, static)}")


if __name__ == "__main__":
    main()
