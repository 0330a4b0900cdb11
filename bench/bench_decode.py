"""The decode step of a training rollout, by dtype and by way of running it (docs/PERFORMANCE.md).

One batched forward per generated token dominates a CPU training rollout; this times it alone, without
sampling or mixing, on the embedded model with random prompts, each dtype and variant side by side:
  eager     transformers' DynamicCache (grows by concatenation), as rollout.Decoder runs it
  prealloc  the cache written in place into a buffer sized prompt + new, attention on its views
  compile   torch.compile (inductor) of the model over a StaticCache, static shapes (the compile is
            timed on its own: it is paid once per process and shape)
  lean      hrpo.cpu_precision.LeanDecodeStep over the same DynamicCache (what rollout.Decoder runs in bf16):
            q/k/v and gate/up each one matmul over concatenated weights, no module calls; timed in fp32
            too (the decoder does not use it there: its fp32 logits differ by ~4e-5)
Each row: dtype, variant, prefill seconds (eager), milliseconds per decode step, and whether the greedy
tokens equal the eager ones.
    python -m bench.bench_decode --variants eager,prealloc,compile --prompt-len 125
"""
import argparse
import json
import time
import types

import torch
from transformers import DynamicCache, StaticCache
from transformers.cache_utils import DynamicLayer

from hrpo.cpu_precision import low_precision
from hrpo.lean_decode import LeanDecodeStep
from hrpo.models import load_model


class InPlaceLayer(DynamicLayer):
    """A DynamicLayer whose keys and values live in a preallocated buffer: views instead of torch.cat."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, capacity: int):
        super().__init__()
        B, KV, P, D = keys.shape
        self.buffers = [t.new_empty(B, KV, capacity, D) for t in (keys, values)]
        for buf, t in zip(self.buffers, (keys, values)):
            buf[:, :, :P] = t
        self.n, self.is_initialized, self.device = P, True, keys.device
        self.keys, self.values = (buf[:, :, :P] for buf in self.buffers)

    def update(self, key_states, value_states, *args, **kwargs):
        n = self.n + key_states.shape[-2]
        for buf, t in zip(self.buffers, (key_states, value_states)):
            buf[:, :, self.n:n] = t
        self.n = n
        self.keys, self.values = (buf[:, :, :n] for buf in self.buffers)
        return self.keys, self.values


@torch.no_grad()
def decode(hm, ids, new: int, variant: str, forward=None):
    """(prefill s, ms per decode step, greedy tokens (B, new - 1))."""
    model, E = hm.model, hm.embeddings
    B, P = ids.shape
    mask = torch.ones(B, P + new, dtype=torch.long)
    static = variant == "compile"
    cache = StaticCache(config=model.config, max_cache_len=P + new) if static else DynamicCache(config=model.config)
    with low_precision(model):
        t0 = time.perf_counter()
        out = model(inputs_embeds=E[ids], attention_mask=mask if static else mask[:, :P],
                    position_ids=torch.arange(P).expand(B, P), cache=cache, use_cache=True, logits_to_keep=1)
        prefill = time.perf_counter() - t0
        if variant == "prealloc":
            cache.layers = [InPlaceLayer(layer.keys, layer.values, P + new) for layer in cache.layers]
        step = model if forward is None else forward
        if variant == "lean":
            lean = LeanDecodeStep(model)
            step = lambda inputs_embeds, attention_mask, position_ids, cache, **_: types.SimpleNamespace(  # noqa: E731
                logits=lean(inputs_embeds, attention_mask, position_ids, cache).unsqueeze(1))
        x, tokens = out.logits[:, -1].float().argmax(-1), []
        t0 = time.perf_counter()
        for t in range(new - 1):
            out = step(inputs_embeds=E[x].unsqueeze(1), attention_mask=mask if static else mask[:, :P + t + 1],
                       position_ids=torch.full((B, 1), P + t), cache=cache, use_cache=True,
                       cache_position=torch.tensor([P + t]))
            x = out.logits[:, -1].float().argmax(-1)
            tokens.append(x)
    return prefill, 1000 * (time.perf_counter() - t0) / (new - 1), torch.stack(tokens, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--variants", default="eager,prealloc")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--prompt-len", type=int, default=125)
    ap.add_argument("--new", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    ids = torch.randint(100, 20000, (args.batch, args.prompt_len), generator=torch.Generator().manual_seed(0))
    rows = []
    for dt in args.dtypes.split(","):
        hm = load_model("default", device="cpu", dtype=dt)
        forward = None
        if "compile" in args.variants:
            forward = torch.compile(hm.model, dynamic=False)
            t0 = time.perf_counter()
            decode(hm, ids, args.new, "compile", forward)
            rows.append({"dtype": dt, "variant": "compile (first call)", "seconds": time.perf_counter() - t0})
        best = {}
        for _ in range(args.rounds):                   # each variant once per round; the best round counts
            for v in args.variants.split(","):
                pre, ms, tokens = decode(hm, ids, args.new, v, forward if v == "compile" else None)
                if v not in best or ms < best[v][1]:
                    best[v] = (pre, ms, tokens)
        for v, (pre, ms, tokens) in best.items():
            rows.append({"dtype": dt, "variant": v, "prefill_s": pre, "decode_ms_per_step": ms,
                         "same_tokens_as_eager": (bool(torch.equal(tokens, best["eager"][2]))
                                                  if "eager" in best else None)})
        del hm, forward
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
