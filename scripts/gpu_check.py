"""One prepared device check (issue 13, part 2): the CUDA-graph decode path and its use in training.

Parts, in this order; each prints its figures and <out>/gpu_check.json is rewritten after every part:
  decode  Qwen2.5-1.5B shape, random weights, bf16, batch 32, 128-token prompts, 512 new tokens (EOS off so
          every contender writes batch x new tokens): tokens/s of the authors'-style loop
          (hrpo.bench.reference_loop), the eager Decoder and the StaticDecoder (1st call = warm-up + capture,
          2nd call = graph replayed), capture success, greedy equality eager vs graph (bf16), then an exact
          fp32 check at the SmolLM2 shape on ragged prompts (tokens, thinking, log-probs, latents)
  app     `python app.py` on tiny-random, one streamed generation through gradio_client
  train   HRPO and GRPO steps (Trainer, bf16, G = 8, 4 prompts, 256 new tokens) at the Qwen2.5-1.5B and
          SmolLM2-135M shapes, eager rollouts (HRPO_STATIC_DECODE=off) then graph rollouts (on) on the same
          steps' prompts: seconds/step (one warm-up step each, then --timed steps), logprob_drift, peak memory
Nothing asserts midway: failures are recorded ("error") and the next part runs; training configurations
that would start past --deadline-s are skipped.  On the device (see scripts/gpu_pack.py for the packages it lacks, carried as .cache/gpu):
    bash scripts/gpu_run.sh                                  # about 4-5 minutes on an H100
CPU rehearsal (tiny sizes, a minute or two):
    PYTHONPATH=. .venv/bin/python scripts/gpu_check.py --quick
"""
import argparse
import dataclasses
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from hrpo import fastpath  # noqa: E402
from hrpo.bench import reference_loop, shape_model, synth_prompts  # noqa: E402
from hrpo.config import RolloutConfig, TrainConfig  # noqa: E402
from hrpo.fastpath import StaticDecoder  # noqa: E402
from hrpo.models import load_model  # noqa: E402
from hrpo.rollout import Decoder  # noqa: E402


def patch_tokenizer() -> None:
    """HRPO_GPU_TOKENIZER (set by gpu_run.sh): the embedded model's tokenizer dir, carried without weights or
    GGUF; tiny-random and the random-weight shapes need only the tokenizer, so embedded_dir() returns it."""
    where = os.environ.get("HRPO_GPU_TOKENIZER")
    if where:
        import hrpo.embedded
        import hrpo.models
        hrpo.models.embedded_dir = hrpo.embedded.embedded_dir = lambda: Path(where)


patch_tokenizer()
CAPTURES = [0]                                  # CUDA graphs captured (counted through _Engine.capture)
_capture = fastpath._Engine.capture


def _counted_capture(self):
    CAPTURES[0] += 1
    return _capture(self)


fastpath._Engine.capture = _counted_capture


def build(shape: str, device: torch.device, dtype: str):
    """tiny-random through load_model, else random weights of a real shape (hrpo.bench.SHAPES)."""
    if shape == "tiny-random":
        return load_model("tiny-random", device=str(device), dtype=dtype)
    return shape_model(shape, device=str(device), dtype=dtype)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def reset_peak(dev):
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_gib(dev) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None


def free(dev):
    fastpath._ENGINES.clear()
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


def decode_part(args, dev) -> dict:
    hm = build(args.shape, dev, args.dtype)
    endless = dataclasses.replace(hm, eos_ids=frozenset())               # every row writes `new` tokens
    prompts = synth_prompts(hm, args.batch, args.prompt)
    R = {"shape": args.shape, "dtype": str(hm.dtype), "batch": args.batch, "prompt": args.prompt, "new": args.new}
    print(f"[decode] {args.shape} {hm.dtype}, batch {args.batch}, prompt {args.prompt}, new {args.new}", flush=True)
    Decoder(endless, prompts[:2], RolloutConfig(max_new_tokens=4)).run()  # CUDA context, cuBLAS, allocator
    tokens = args.batch * args.new
    n, s, mem = timed(dev, lambda: reference_loop(endless, prompts, RolloutConfig(max_new_tokens=args.new)))
    R["reference_loop"] = {"tokens_per_s": n / s, "seconds": s, "peak_gib": mem}
    print(f"[decode] authors'-style loop  {n / s:9.0f} tok/s", flush=True)
    for greedy in (True, False):
        mode = "greedy" if greedy else "sampled"
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
               "speedup_vs_eager": s_e / s_2, "speedup_vs_reference_loop": R["reference_loop"]["seconds"] / s_2,
               "first_call_vs_replay": compare(first, again)}
        if greedy:
            row["eager_vs_graph"] = compare(eager, first)
        R[mode] = row
        for name in ("eager", "graph_first_call", "graph_replayed"):
            print(f"[decode {mode}] {name:17s} {row[name]['tokens_per_s']:9.0f} tok/s  peak {row[name]['peak_gib']}"
                  + (f"  captured={row[name]['captured']}" if "captured" in row[name] else ""), flush=True)
        print(f"[decode {mode}] graph x{row['speedup_vs_eager']:.2f} vs eager, "
              f"x{row['speedup_vs_reference_loop']:.2f} vs authors'-style loop", flush=True)
        for k in ("eager_vs_graph", "first_call_vs_replay"):
            if k in row:
                print(f"[decode {mode}] {k}: {row[k]}", flush=True)
    hm = endless = None
    free(dev)
    small = build(args.exact_shape, dev, "float32")                      # exact check: fp32, ragged prompts
    ps = [p[: args.prompt - 3 * i] for i, p in enumerate(synth_prompts(small, 4, args.prompt))]
    cfg = RolloutConfig(max_new_tokens=min(64, args.new), greedy=True)
    eager = Decoder(small, ps, cfg, keep_latents=True).run()
    static = StaticDecoder(small, ps, cfg, keep_latents=True).run()
    R["fp32_exact"] = {"shape": args.exact_shape, **compare(eager, static)}
    print(f"[decode fp32 {args.exact_shape}] eager vs graph: {R['fp32_exact']}", flush=True)
    return R


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_part(args, dev, work: Path) -> dict:
    import gradio_client
    port, t0 = free_port(), time.perf_counter()
    env = {**os.environ, "HRPO_MODEL": "tiny-random", "HRPO_RUNS": str(work / "runs"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    log = open(work / "app.log", "w")
    boot = (f"import runpy, sys; sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'scripts')!r}]; import gpu_check; "
            f"sys.argv = ['app.py', '--port', '{port}', '--host', '127.0.0.1']; "
            f"runpy.run_path({str(ROOT / 'app.py')!r}, run_name='__main__')")          # app.py, tokenizer patched
    proc = subprocess.Popen([sys.executable, "-c", boot], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        while time.perf_counter() - t0 < 120:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None:
                    tail = (work / "app.log").read_text()[-2000:]
                    raise RuntimeError(f"app.py exited with {proc.returncode}: {tail}")
                time.sleep(0.5)
        up = time.perf_counter() - t0
        client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
        t1 = time.perf_counter()
        job = client.submit("tiny-random", "What is 2 + 3?", 12, 0.5, 50, 0, True, True, api_name="/generate")
        updates = list(job)
        tokens_html, _, table, status = job.result()
        R = {"serving_s": up, "generation_s": time.perf_counter() - t1, "streamed_updates": len(updates),
             "tokens": tokens_html.count("class='tok'"), "table_rows": len(table["data"]), "status": status,
             "ok": len(updates) >= 3 and "done: 12 tokens" in status, "cuda_in_parent": dev.type == "cuda"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    print(f"[app] {R}", flush=True)
    return R


def train_part(args, dev, work: Path, deadline: float) -> dict:
    import hrpo.trainer as trainer_mod
    real = trainer_mod.load_model

    def load(spec, device=None, dtype=None, gate_config=None, **kw):   # "shape:NAME": random weights
        if spec.startswith("shape:"):
            return shape_model(spec[len("shape:"):], device=device, dtype=dtype)
        return real(spec, device=device, dtype=dtype, gate_config=gate_config, **kw)

    trainer_mod.load_model = load
    R = {}
    for shape in args.train_shapes:
        for mode in ("hrpo", "grpo"):
            key = f"{shape}/{mode}"
            if time.perf_counter() > deadline:
                R[key] = {"skipped": "past --deadline-s"}
                print(f"[train {key}] skipped (deadline)", flush=True)
                continue
            try:
                R[key] = train_one(args, dev, work, shape, mode, trainer_mod.Trainer)
            except Exception as err:                                   # noqa: BLE001 - record, go on
                R[key] = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-3000:]}
                print(f"[train {key}] ERROR {R[key]['error']}", flush=True)
            free(dev)
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
        R[name] = {"warmup_step_seconds": ms[0]["step_seconds"],
                   "step_seconds": sum(m["step_seconds"] for m in timed_ms) / len(timed_ms),
                   "rollout_seconds": sum(m["rollout_seconds"] for m in timed_ms) / len(timed_ms),
                   "rollout_tokens_per_s": sum(m["rollout_tokens_per_s"] for m in timed_ms) / len(timed_ms),
                   "completion_len_mean": sum(m["completion_len_mean"] for m in timed_ms) / len(timed_ms),
                   "logprob_drift": max(m["logprob_drift"] for m in ms), "peak_gib": peak_gib(dev),
                   "graphs_captured": CAPTURES[0] - captures}
        print(f"[train {shape}/{mode}] {name:5s} {R[name]}", flush=True)
    os.environ.pop("HRPO_STATIC_DECODE", None)
    R["speedup_step"] = R["eager"]["step_seconds"] / R["graph"]["step_seconds"]
    R["speedup_rollout"] = R["eager"]["rollout_seconds"] / R["graph"]["rollout_seconds"]
    print(f"[train {shape}/{mode}] graph rollouts: step x{R['speedup_step']:.2f}, rollout x{R['speedup_rollout']:.2f}",
          flush=True)
    trainer = None
    shutil.rmtree(out, ignore_errors=True)
    return R


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", "--cpu", action="store_true", help="tiny sizes; runs on CPU when no GPU (rehearsal)")
    ap.add_argument("--device", default=None, help="cuda (default) | cpu")
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "reports" / "gpu_check"))
    ap.add_argument("--parts", default="decode,app,train")
    ap.add_argument("--deadline-s", type=float, default=None,
                    help="skip training configs that would start later (default 330 s; --quick: 1800 s)")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--shape", default="qwen2.5-1.5b")
    ap.add_argument("--exact-shape", default="smollm2-135m")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=512)
    ap.add_argument("--train-shapes", default="qwen2.5-1.5b,smollm2-135m")
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--train-new", type=int, default=256)
    ap.add_argument("--timed", type=int, default=1, help="timed training steps after the warm-up step")
    args = ap.parse_args(argv)
    if args.quick:                              # same code paths, sizes a 2-core CPU runs in a minute or two
        args.shape, args.exact_shape, args.batch, args.prompt, args.new = "tiny-random", "smollm2-135m", 4, 24, 16
        args.train_shapes, args.group, args.prompts, args.train_new = "tiny-random", 2, 2, 8
    args.train_shapes = [s for s in args.train_shapes.split(",") if s]
    if args.deadline_s is None:
        args.deadline_s = 1800.0 if args.quick else 330.0
    return args


def main(argv=None):
    args = parse(argv)
    start = time.perf_counter()
    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() or not args.quick else "cpu"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --quick (CPU rehearsal) or on a GPU")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import transformers
    R = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu", "torch": torch.__version__,
         "transformers": transformers.__version__, "quick": args.quick, "argv": sys.argv[1:], "parts": {}}
    print(f"device: {R['device']}, torch {R['torch']}, transformers {R['transformers']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        for part in args.parts.split(","):
            t0 = time.perf_counter()
            try:
                if part == "decode":
                    R["parts"][part] = decode_part(args, dev)
                elif part == "app":
                    R["parts"][part] = app_part(args, dev, Path(tmp))
                elif part == "train":
                    R["parts"][part] = train_part(args, dev, Path(tmp), start + args.deadline_s)
                else:
                    raise ValueError(f"unknown part {part!r}")
            except Exception as err:                                   # noqa: BLE001 - record, go on
                R["parts"][part] = {"error": f"{type(err).__name__}: {err}",
                                    "traceback": traceback.format_exc()[-3000:]}
                print(f"[{part}] ERROR {R['parts'][part]['error']}", flush=True)
            free(dev)
            R["parts"][part]["part_seconds"] = time.perf_counter() - t0
            R["total_seconds"] = time.perf_counter() - start
            (out / "gpu_check.json").write_text(json.dumps(R, indent=2, default=str))
            print(f"[{part}] {R['parts'][part]['part_seconds']:.1f} s; total {R['total_seconds']:.1f} s", flush=True)
    print(f"wrote {out / 'gpu_check.json'}", flush=True)
    return R


if __name__ == "__main__":
    main()
