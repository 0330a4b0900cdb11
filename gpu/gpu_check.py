"""The prepared device check (issues 26 and 25): decode speed, the replayed step's kernels, training with graph
rollouts, and the app on a GPU.  Every figure goes to <out>/gpu_check.json, rewritten after each part.

Parts, in this order (most wanted first; --parts picks some):
  decode      Qwen2.5-1.5B shape, random weights, bf16, batch 32, 128-token prompts, 512 new tokens, EOS off:
              eager Decoder and StaticDecoder (1st call = warm-up + capture, 2nd = graph replayed), greedy and
              sampled; first call vs replay and eager vs graph equality; an exact fp32 check at the
              SmolLM2-135M shape on ragged prompts
  profile     torch.profiler over 32 replayed graph steps at the same static-cache width: top kernels per
              step and their share of the step's kernel time, kernel-busy share of the wall time
  authors     hrpo.bench.authors_loop (written like the authors' code) at the decode shape
  train       HRPO steps (bf16, 4 prompts x G = 8, 256 new tokens) at the 1.5B and 135M shapes, eager rollouts
              then graph rollouts on the same steps' prompts: s/step (one warm-up, then --timed), drift, memory
  app         `python app.py` on the GPU (tiny-random): three sequential Live requests through gradio_client's
              /generate, first and warm tokens/s (gpu/gpu_app_check.py)
  single      single-row decode (the Live tab's case), eager vs graph, at the 135M and 1.5B shapes (same file)
  generate    transformers generate() (sampling, no latents) at the decode shape
  reference   bench.baselines.reference_loop (the first benchmarks' slower loop) at the decode shape
  train_grpo  the GRPO steps of `train`
With the default --deadline-s 300 the parts up to `single` fit an H200's ~5 minutes; the last three run when
the earlier ones were quicker than estimated, or alone: --parts generate,reference,train_grpo (~2.5 min).
Then the decode table (every contender that ran, against the authors'-style loop and the weight-bandwidth
limit) is printed and stored.  Nothing asserts midway: a failing part is recorded ("error") and the next
one runs; a part whose estimated GPU time no longer fits before --deadline-s is skipped and recorded.
On the device:  bash gpu/gpu_run.sh                         (about 5-6 minutes on an H200)
CPU rehearsal:  .venv/bin/python -m gpu.gpu_check --quick        (tiny shapes, 1-2 minutes)
"""
import argparse
import dataclasses
import gc
import gzip
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.modules.setdefault("gpu.gpu_check", sys.modules[__name__])  # gpu_app_check imports this module, not a copy

import torch  # noqa: E402

from bench.baselines import reference_loop  # noqa: E402
from gpu.gpu_table import decode_table, print_table  # noqa: E402
from hrpo import bench, static_decoder  # noqa: E402
from hrpo.config import RolloutConfig, TrainConfig  # noqa: E402
from hrpo.models import load_model  # noqa: E402
from hrpo.rollout import Decoder  # noqa: E402
from hrpo.static_decoder import StaticDecoder  # noqa: E402

# seconds each part took on an H200 (2026-12-04, or estimated from its parts): skipped when it no longer fits
ESTIMATE_S = {"decode": 60, "profile": 15, "authors": 20, "train": 55, "app": 45, "single": 30, "generate": 40,
              "reference": 48, "train_grpo": 45}
PARTS = list(ESTIMATE_S)


def tokenizer_path(where: str) -> Path:
    """The carried tokenizer dir; a gzipped tokenizer.json (gpu_pack.py) is unpacked once into a temp copy."""
    src = Path(where)
    if (src / "tokenizer.json").is_file() or not (src / "tokenizer.json.gz").is_file():
        return src
    dst = Path(tempfile.gettempdir()) / f"hrpo-tokenizer-{os.getpid()}"
    if not (dst / "tokenizer.json").is_file():
        shutil.copytree(src, dst, dirs_exist_ok=True)
        with gzip.open(src / "tokenizer.json.gz", "rb") as fin, open(dst / "tokenizer.json", "wb") as fout:
            shutil.copyfileobj(fin, fout)
    return dst


def patch_tokenizer() -> None:
    """HRPO_GPU_TOKENIZER (set by gpu_run.sh): the embedded model's tokenizer dir, carried without weights;
    tiny-random and the random-weight shapes need only the tokenizer, so embedded_dir() returns it."""
    where = os.environ.get("HRPO_GPU_TOKENIZER")
    if where:
        import hrpo.embedded
        import hrpo.models
        path = tokenizer_path(where)
        hrpo.models.embedded_dir = hrpo.embedded.embedded_dir = lambda: path


patch_tokenizer()
CAPTURES = [0]                                  # CUDA graphs captured (counted through _Engine.capture)
_capture = static_decoder._Engine.capture


def _counted_capture(self):
    CAPTURES[0] += 1
    return _capture(self)


static_decoder._Engine.capture = _counted_capture


def build(shape: str, device: torch.device, dtype: str):
    """tiny-random through load_model, else random weights of a real shape (hrpo.bench.SHAPES)."""
    if shape == "tiny-random":
        return load_model("tiny-random", device=str(device), dtype=dtype)
    return bench.shape_model(shape, device=str(device), dtype=dtype)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def reset_peak(dev):
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_gib(dev) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None


def free(dev):
    static_decoder._ENGINES.clear()
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def timed(dev, fn):
    """(result, seconds, peak GiB) of fn()."""
    sync(dev)
    reset_peak(dev)
    t0 = time.perf_counter()
    out = fn()
    sync(dev)
    return out, time.perf_counter() - t0, peak_gib(dev)


def compare(a, b) -> dict:
    """Token equality of two lists of traces, first divergence, max |d logprob| / |d latent| on common prefixes."""
    same, firsts, lp, lat, think = 0, [], 0.0, 0.0, True
    for x, y in zip(a, b, strict=True):
        n = next((i for i, (u, v) in enumerate(zip(x.token_ids, y.token_ids)) if u != v), None)
        same += n is None and len(x.token_ids) == len(y.token_ids)
        if n is not None:
            firsts.append(n)
        m = n if n is not None else min(len(x.steps), len(y.steps))
        lp = max([lp] + [abs(s.logprob - t.logprob) for s, t in zip(x.steps[:m], y.steps[:m])])
        think &= x.thinking_mask[:m] == y.thinking_mask[:m]
        if x.latents is not None and y.latents is not None and m:
            lat = max(lat, (x.latents[:m] - y.latents[:m]).abs().max().item())
    return {"rows_identical": same, "rows": len(a), "first_divergence": min(firsts) if firsts else None,
            "max_logprob_diff": lp, "max_latent_diff": lat, "thinking_equal": think}


def decode_setup(args, dev):
    """(model with EOS off, prompts) at the decode shape."""
    hm = build(args.shape, dev, args.dtype)
    endless = dataclasses.replace(hm, eos_ids=frozenset())              # every row writes `new` tokens
    return endless, bench.synth_prompts(hm, args.batch, args.prompt)


def speed(dev, fn, tokens: int) -> dict:
    _, s, mem = timed(dev, fn)
    return {"tokens_per_s": tokens / s, "seconds": s, "peak_gib": mem}


def decode_part(args, dev) -> dict:
    endless, prompts = decode_setup(args, dev)
    R = {"shape": args.shape, "dtype": str(endless.dtype), "batch": args.batch, "prompt": args.prompt,
         "new": args.new, "param_bytes": sum(p.numel() * p.element_size() for p in endless.model.parameters())}
    print(f"[decode] {args.shape} {endless.dtype}, batch {args.batch}, prompt {args.prompt}, new {args.new}",
          flush=True)
    Decoder(endless, prompts[:2], RolloutConfig(max_new_tokens=4)).run()  # CUDA context, cuBLAS, allocator
    for greedy in (True, False):
        R["greedy" if greedy else "sampled"] = decode_mode(args, dev, endless, prompts, greedy)
    endless = None
    free(dev)
    small = build(args.exact_shape, dev, "float32")                      # exact check: fp32, ragged prompts
    ps = [p[: args.prompt - 3 * i] for i, p in enumerate(bench.synth_prompts(small, 4, args.prompt))]
    cfg = RolloutConfig(max_new_tokens=min(64, args.new), greedy=True)
    eager = Decoder(small, ps, cfg, keep_latents=True).run()
    static = StaticDecoder(small, ps, cfg, keep_latents=True).run()
    R["fp32_exact"] = {"shape": args.exact_shape, **compare(eager, static)}
    print(f"[decode fp32 {args.exact_shape}] eager vs graph: {R['fp32_exact']}", flush=True)
    return R


def decode_mode(args, dev, endless, prompts, greedy: bool) -> dict:
    """Eager, graph first call, graph replayed at one sampling mode, and their equality."""
    mode, tokens = "greedy" if greedy else "sampled", args.batch * args.new
    cfg = RolloutConfig(max_new_tokens=args.new, greedy=greedy, seed=0)
    eager, s_e, m_e = timed(dev, lambda: Decoder(endless, prompts, cfg).run())
    d1 = StaticDecoder(endless, prompts, cfg)
    first, s_1, m_1 = timed(dev, d1.run)
    d2 = StaticDecoder(endless, prompts, cfg)
    again, s_2, m_2 = timed(dev, d2.run)
    row = {"eager": {"tokens_per_s": tokens / s_e, "peak_gib": m_e},
           "graph_first_call": {"tokens_per_s": tokens / s_1, "peak_gib": m_1, "captured": d1.captured,
                                "capture_error": d1.capture_error},
           "graph_replayed": {"tokens_per_s": tokens / s_2, "peak_gib": m_2, "captured": d2.captured},
           "speedup_vs_eager": s_e / s_2, "first_call_vs_replay": compare(first, again),
           "eager_vs_graph": compare(eager, first)}
    for name in ("eager", "graph_first_call", "graph_replayed"):
        print(f"[decode {mode}] {name:17s} {row[name]['tokens_per_s']:9.0f} tok/s  peak {row[name]['peak_gib']}"
              + (f"  captured={row[name]['captured']}" if "captured" in row[name] else ""), flush=True)
    print(f"[decode {mode}] graph x{row['speedup_vs_eager']:.2f} vs eager; first call vs replay "
          f"{row['first_call_vs_replay']}; eager vs graph {row['eager_vs_graph']}", flush=True)
    return row


def kernel_table(prof, steps: int, top: int = 12) -> dict:
    """Top kernels per replayed step from a profile whose window holds `steps` graph replays after a prefill.

    On CUDA: the device kernels launched by cudaGraphLaunch (matched by correlation id; failing that, those
    starting after the first launch); us per step, share of the step's kernel time, and the kernel-busy
    share of their wall-time span.  On CPU (rehearsal): operators by self CPU time over the whole run."""
    from torch.autograd import DeviceType
    events = prof.events()
    launches = [e for e in events if "GraphLaunch" in e.name]
    cuda = [e for e in events if e.device_type == DeviceType.CUDA]
    first = min((e.time_range.start for e in launches), default=None)
    kernels, source = [e for e in cuda if e.id in {x.id for x in launches}], "kernels of the graph launches"
    if not kernels and first is not None:
        kernels, source = [e for e in cuda if e.time_range.start >= first], "kernels after the first graph launch"
    if not kernels:
        kernels, source = cuda, "all kernels (no graph launch seen)"
    if kernels:
        totals, count = {}, {}
        for e in kernels:
            totals[e.name] = totals.get(e.name, 0.0) + e.time_range.elapsed_us()
            count[e.name] = count.get(e.name, 0) + 1
        wall = max(e.time_range.end for e in kernels) - min(e.time_range.start for e in kernels)
    else:
        rows = [k for k in prof.key_averages() if k.self_cpu_time_total > 0]
        totals = {k.key: k.self_cpu_time_total for k in rows}
        count = {k.key: k.count for k in rows}
        wall, source = None, "cpu operators, whole run (no device kernels)"
    busy = sum(totals.values())
    ranked = sorted(totals, key=totals.get, reverse=True)[:top]
    return {"source": source, "steps": steps, "graph_launches": len(launches),
            "kernel_us_per_step": busy / steps, "wall_us_per_step": wall / steps if wall else None,
            "kernel_busy_share": busy / wall if wall else None,
            "top": [{"name": n[:120], "us_per_step": totals[n] / steps, "share": totals[n] / busy,
                     "calls_per_step": count[n] / steps} for n in ranked]}


def profile_part(args, dev) -> dict:
    """Profile `--profile-steps` replayed steps of the sampled decode at the decode run's static-cache width."""
    from torch.profiler import ProfilerActivity, profile
    steps = min(args.profile_steps, args.new)
    endless, _ = decode_setup(args, dev)
    prompts = bench.synth_prompts(endless, args.batch, args.prompt + args.new - steps)      # same width, fewer steps
    cfg = RolloutConfig(max_new_tokens=steps, seed=0)
    StaticDecoder(endless, prompts, cfg).run()                                         # warm-up and capture
    sync(dev)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        d = StaticDecoder(endless, prompts, cfg)
        d.run()
        sync(dev)
    R = {"captured": d.captured, "width": args.prompt + args.new, **kernel_table(prof, steps)}
    print(f"[profile] {R['source']}: {R['kernel_us_per_step']:.0f} us per step"
          + (f", wall {R['wall_us_per_step']:.0f} us/step, busy {R['kernel_busy_share']:.0%}"
             if R["wall_us_per_step"] else ""), flush=True)
    for k in R["top"]:
        print(f"[profile] {k['share']:6.1%} {k['us_per_step']:8.1f} us/step  x{k['calls_per_step']:.0f}  {k['name']}",
              flush=True)
    return R


def loop_part(args, dev, names) -> dict:
    """tokens/s of the baseline loops `names` (authors, reference, generate) at the decode shape, sampled."""
    endless, prompts = decode_setup(args, dev)
    cfg = RolloutConfig(max_new_tokens=args.new, seed=0)
    runs = {"authors": lambda: bench.authors_loop(endless, prompts, cfg),
            "reference": lambda: reference_loop(endless, prompts, cfg),
            "generate": lambda: bench.generate_baseline(endless, prompts, cfg)}
    Decoder(endless, prompts[:2], RolloutConfig(max_new_tokens=4)).run()  # CUDA context, cuBLAS, allocator
    R = {}
    for name in names:
        R[name] = speed(dev, runs[name], args.batch * args.new)
        print(f"[{name}] {R[name]['tokens_per_s']:9.0f} tok/s  peak {R[name]['peak_gib']}", flush=True)
    return R


def train_part(args, dev, work: Path, deadline: float, modes, save) -> dict:
    import hrpo.trainer as trainer_mod
    real = trainer_mod.load_model

    def load(spec, device=None, dtype=None, gate_config=None, **kw):   # "shape:NAME": random weights
        if spec.startswith("shape:"):
            return bench.shape_model(spec[len("shape:"):], device=device, dtype=dtype)
        return real(spec, device=device, dtype=dtype, gate_config=gate_config, **kw)

    trainer_mod.load_model = load
    R = {}
    try:
        for mode in modes:
            for shape in args.train_shapes:
                key = f"{shape}/{mode}"
                if time.perf_counter() + (0 if args.quick else ESTIMATE_S["train"]) > deadline:
                    R[key] = {"skipped": "would end past --deadline-s"}
                    print(f"[train {key}] skipped (deadline)", flush=True)
                    continue
                try:
                    R[key] = train_one(args, dev, work, shape, mode, trainer_mod.Trainer)
                except Exception as err:                               # noqa: BLE001 - record, go on
                    R[key] = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-3000:]}
                    print(f"[train {key}] ERROR {R[key]['error']}", flush=True)
                free(dev)
                save(R)
    finally:
        trainer_mod.load_model = real
    return R


def train_one(args, dev, work, shape, mode, Trainer) -> dict:
    spec = shape if shape == "tiny-random" else f"shape:{shape}"
    out = work / f"train-{shape}-{mode}"
    shutil.rmtree(out, ignore_errors=True)
    cfg = TrainConfig(model=spec, mode=mode, steps=100, group_size=args.group, batch_prompts=args.prompts,
                      max_new_tokens=args.train_new, device=dev.type, dtype=args.dtype, out=str(out), seed=0)
    trainer = Trainer(cfg)
    R = {"group_size": args.group, "prompts": args.prompts, "new": args.train_new, "dtype": args.dtype}
    for flag, name in (("off", "eager"), ("on", "graph")):
        os.environ["HRPO_STATIC_DECODE"] = flag
        reset_peak(dev)
        captures = CAPTURES[0]
        ms = [trainer.train_step(step) for step in range(1 + args.timed)]   # the same prompts for both
        timed_ms = ms[1:]
        mean = lambda k: sum(m[k] for m in timed_ms) / len(timed_ms)       # noqa: E731
        R[name] = {"warmup_step_seconds": ms[0]["step_seconds"], "step_seconds": mean("step_seconds"),
                   "rollout_seconds": mean("rollout_seconds"), "rollout_tokens_per_s": mean("rollout_tokens_per_s"),
                   "completion_len_mean": mean("completion_len_mean"),
                   "logprob_drift": max(m["logprob_drift"] for m in ms), "peak_gib": peak_gib(dev),
                   "graphs_captured": CAPTURES[0] - captures}
        print(f"[train {shape}/{mode}] {name:5s} {R[name]}", flush=True)
    os.environ.pop("HRPO_STATIC_DECODE", None)
    R["speedup_step"] = R["eager"]["step_seconds"] / R["graph"]["step_seconds"]
    R["speedup_rollout"] = R["eager"]["rollout_seconds"] / R["graph"]["rollout_seconds"]
    print(f"[train {shape}/{mode}] graph rollouts: step x{R['speedup_step']:.2f}, rollout x{R['speedup_rollout']:.2f}",
          flush=True)
    shutil.rmtree(out, ignore_errors=True)
    return R


def run_part(part, args, dev, work, deadline, save) -> dict:
    from gpu.gpu_app_check import app_part, single_row_part
    if part == "decode":
        return decode_part(args, dev)
    if part == "profile":
        return profile_part(args, dev)
    if part in ("authors", "reference", "generate"):
        return loop_part(args, dev, [part])
    if part in ("train", "train_grpo"):
        return train_part(args, dev, work, deadline, ["hrpo" if part == "train" else "grpo"], save)
    if part == "app":
        return app_part(args, dev, work)
    if part == "single":
        return single_row_part(args, dev)
    raise ValueError(f"unknown part {part!r}; known: {', '.join(PARTS)}")


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", "--cpu", action="store_true", help="tiny sizes; runs on CPU when no GPU (rehearsal)")
    ap.add_argument("--device", default=None, help="cuda (default) | cpu")
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "reports" / "gpu_check"))
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--deadline-s", type=float, default=None,
                    help="skip parts that would end later than this many seconds after the start "
                         "(default 300; --quick: 1800)")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--shape", default="qwen2.5-1.5b")
    ap.add_argument("--exact-shape", default="smollm2-135m")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=512)
    ap.add_argument("--profile-steps", type=int, default=32)
    ap.add_argument("--train-shapes", default="qwen2.5-1.5b,smollm2-135m")
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--train-new", type=int, default=256)
    ap.add_argument("--timed", type=int, default=1, help="timed training steps after the warm-up step")
    ap.add_argument("--single-shapes", default="smollm2-135m,qwen2.5-1.5b")
    ap.add_argument("--single-new", type=int, default=128, help="single-row decode: new tokens")
    ap.add_argument("--app-new", type=int, default=64, help="app: new tokens per Live request")
    args = ap.parse_args(argv)
    if args.quick:                              # same code paths, sizes a 2-core CPU runs in a minute or two
        args.shape, args.exact_shape, args.batch, args.prompt, args.new = "tiny-random", "tiny-random", 4, 24, 16
        args.train_shapes, args.group, args.prompts, args.train_new = "tiny-random", 2, 2, 8
        args.single_shapes, args.single_new, args.app_new, args.profile_steps = "tiny-random", 16, 12, 8
    args.train_shapes = [s for s in args.train_shapes.split(",") if s]
    args.single_shapes = [s for s in args.single_shapes.split(",") if s]
    args.parts = [p for p in args.parts.split(",") if p]
    for shape in {args.shape, args.exact_shape, *args.train_shapes, *args.single_shapes} - {"tiny-random"}:
        if shape not in bench.SHAPES:
            ap.error(f"unknown shape {shape!r}; known: tiny-random, {', '.join(bench.SHAPES)}")
    if args.deadline_s is None:
        args.deadline_s = 1800.0 if args.quick else 300.0
    return args


def main(argv=None):
    args = parse(argv)
    start = time.perf_counter()
    deadline = start + args.deadline_s
    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() or not args.quick else "cpu"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --quick (CPU rehearsal) or on a GPU")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import transformers
    R = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu", "torch": torch.__version__,
         "transformers": transformers.__version__, "quick": args.quick, "argv": sys.argv[1:], "parts": {}}
    print(f"device: {R['device']}, torch {R['torch']}, transformers {R['transformers']}", flush=True)

    def save(partial=None, part=None):
        if part is not None:
            R["parts"][part] = partial
        R["total_seconds"] = time.perf_counter() - start
        (out / "gpu_check.json").write_text(json.dumps(R, indent=2, default=str))

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        for part in args.parts:
            t0 = time.perf_counter()
            if t0 + (0 if args.quick else ESTIMATE_S.get(part, 0)) > deadline:
                R["parts"][part] = {"skipped": "would end past --deadline-s"}
                print(f"[{part}] skipped (deadline)", flush=True)
                continue
            try:
                R["parts"][part] = run_part(part, args, dev, Path(tmp), deadline,
                                            lambda partial, p=part: save(partial, p))
            except Exception as err:                                   # noqa: BLE001 - record, go on
                R["parts"][part] = {"error": f"{type(err).__name__}: {err}",
                                    "traceback": traceback.format_exc()[-3000:]}
                print(f"[{part}] ERROR {R['parts'][part]['error']}", flush=True)
            free(dev)
            R["parts"][part]["part_seconds"] = time.perf_counter() - t0
            save()
            print(f"[{part}] {R['parts'][part]['part_seconds']:.1f} s; total {time.perf_counter() - start:.1f} s",
                  flush=True)
    R["decode_table"] = decode_table(R)
    save()
    print_table(R["decode_table"])
    print(f"wrote {out / 'gpu_check.json'}", flush=True)
    return R


if __name__ == "__main__":
    main()
