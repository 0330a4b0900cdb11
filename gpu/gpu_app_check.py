"""The app parts of the device check (issue 25, item 5); gpu/gpu_check.py runs them as `app` and `single`.

  app     `python app.py` on the GPU (HRPO_MODEL=tiny-random: it needs only the carried tokenizer), then three
          sequential Live requests through gradio_client's /generate (streamed), each timed from submit to
          result: tokens, wall tokens/s, the app's own tokens/s from its status line, streamed updates;
          `first` is the first request (model load, warm-up, capture), `warm` the mean of the other two.
  single  single-row decode, the Live tab's case: eager Decoder vs StaticDecoder (first call with capture,
          then replayed), bf16, EOS off, at the SmolLM2-135M and Qwen2.5-1.5B shapes.
Run through gpu_check.py: `--parts app,single` (add --quick on CPU).
"""
import re
import sys
import time
from pathlib import Path

from bench.app_process import start_app, stop_app
from gpu import gpu_check
from hrpo.config import RolloutConfig
from hrpo.rollout import Decoder
from hrpo.static_decoder import StaticDecoder

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Tom has 12 marbles. He buys 7 more. How many marbles does Tom have now?"


def generate_kwargs(client, values: dict) -> dict:
    """/generate's arguments by name from `values`; parameters not named there keep their defaults."""
    params = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/generate"]["parameters"]
    kwargs, lacking = {}, []
    for p in params:
        name = p["parameter_name"]
        if name in values:
            kwargs[name] = values[name]
        elif not p.get("parameter_has_default"):
            lacking.append(name)
    if lacking:
        raise ValueError(f"/generate needs {lacking}, which this check does not know how to fill")
    return kwargs


def live_request(client, kwargs: dict) -> dict:
    """One streamed /generate: wall time, tokens and tokens/s as the app's status line reports them."""
    t0 = time.perf_counter()
    job = client.submit(**kwargs, api_name="/generate")
    outputs = job.result()                 # waits without polling (iterating a Job polls every 1 ms)
    wall = time.perf_counter() - t0
    updates = len(job.outputs())
    status = next((x for x in reversed(outputs) if isinstance(x, str) and "tokens" in x), "")
    tokens = re.search(r"(\d+) tokens", status)
    rate = re.search(r"([\d.]+) tokens/s", status)
    n = int(tokens.group(1)) if tokens else 0
    return {"wall_s": wall, "tokens": n, "wall_tokens_per_s": n / wall, "streamed_updates": updates,
            "app_tokens_per_s": float(rate.group(1)) if rate else None, "status": status}


def app_part(args, dev, work: Path) -> dict:
    import gradio_client
    boot = ("import runpy, sys; from gpu import gpu_check; sys.argv = ['app.py', *sys.argv[1:]]; "
            f"runpy.run_path({str(ROOT / 'app.py')!r}, run_name='__main__')")   # with gpu_check's tokenizer patch
    proc, url, serving_s = start_app(env={"HRPO_MODEL": "tiny-random", "HRPO_RUNS": str(work / "runs")},
                                     log=work / "app.log", cmd=[sys.executable, "-c", boot], limit_s=120)
    try:
        R = {"serving_s": serving_s, "model": "tiny-random",
             "new_tokens": args.app_new, "cuda_in_parent": dev.type == "cuda"}
        client = gradio_client.Client(url, verbose=False)
        kwargs = generate_kwargs(client, {"model": "tiny-random", "prompt": PROMPT, "max_new": args.app_new,
                                          "temperature": 0.5, "top_k": 50, "seed": 0, "greedy": False,
                                          "hybrid": True})
        R["requests"] = []
        for i in range(3):
            R["requests"].append(live_request(client, kwargs))
            print(f"[app] request {i + 1}: {R['requests'][-1]}", flush=True)
    finally:
        stop_app(proc)
    reqs = R["requests"]
    R["first_tokens_per_s"] = reqs[0]["wall_tokens_per_s"]
    R["warm_tokens_per_s"] = sum(r["wall_tokens_per_s"] for r in reqs[1:]) / 2
    R["ok"] = all(r["tokens"] == args.app_new for r in reqs)
    print(f"[app] serving after {R['serving_s']:.1f} s; first {R['first_tokens_per_s']:.1f} tok/s, "
          f"warm {R['warm_tokens_per_s']:.1f} tok/s; ok={R['ok']}", flush=True)
    return R


def single_row_part(args, dev) -> dict:
    """tokens/s of one row: eager, graph first call, graph replayed; per shape."""
    R = {}
    for shape in args.single_shapes:
        hm = gpu_check.build(shape, dev, args.dtype)
        endless = gpu_check.dataclasses.replace(hm, eos_ids=frozenset())
        prompt = [PROMPT]
        cfg = RolloutConfig(max_new_tokens=args.single_new, seed=0)
        Decoder(endless, prompt, RolloutConfig(max_new_tokens=4)).run()          # warm the kernels
        row = {"new": args.single_new}
        for name, make in (("eager", lambda: Decoder(endless, prompt, cfg)),
                           ("graph_first_call", lambda: StaticDecoder(endless, prompt, cfg)),
                           ("graph_replayed", lambda: StaticDecoder(endless, prompt, cfg))):
            d = make()
            row[name] = gpu_check.speed(dev, d.run, args.single_new)
            row[name]["captured"] = getattr(d, "captured", None)
        row["graph_vs_eager"] = row["graph_replayed"]["tokens_per_s"] / row["eager"]["tokens_per_s"]
        R[shape] = row
        print(f"[single {shape}] eager {row['eager']['tokens_per_s']:.0f}, graph first "
              f"{row['graph_first_call']['tokens_per_s']:.0f}, replayed {row['graph_replayed']['tokens_per_s']:.0f} "
              f"tok/s (x{row['graph_vs_eager']:.2f})", flush=True)
        hm = endless = None
        gpu_check.free(dev)
    return R
