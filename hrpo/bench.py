"""Speed benchmarks: `python -m hrpo bench rollout` (tokens/s and peak memory, side by side).

In one process, on the same model and the same prompts:
  generate   transformers generate() with sampling (top-k, temperature), no mixing
  reference  a reference-style hybrid loop kept here on purpose: the whole completion is re-decoded
             at every step to look for '####', and the latent is a dense (B, V) x (V, H) product
  plain      our Decoder with mixing off
  hybrid     our Decoder (gathered top-k latent, incremental marker tail)
With several dtypes (`--dtypes float32,bfloat16`) every contender runs in each dtype, one dtype after the
other in the same process; each row carries `name`, `dtype` and its figure, plus `vs_float32` (same
contender, this dtype over float32).  `bench train` does the same for the GRPO and HRPO training steps.
Peak memory is the process RSS high-water mark after a dtype's rounds on CPU (it never goes down, so a
later dtype reports at least an earlier one's), torch.cuda.max_memory_allocated on GPU.
Test: pytest tests/test_bench.py (tiny-random, no timing assertions).
"""
import dataclasses
import resource
import time

import torch

from .config import RolloutConfig
from .rollout import Decoder, latent_embedding, left_pad


SHAPES = {  # real architectures with random weights, for speed runs when weights are not at hand
    "smollm2-135m": dict(model_type="llama", hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, vocab_size=49152),
    "qwen2.5-0.5b": dict(model_type="qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, vocab_size=151936),
    "qwen2.5-1.5b": dict(model_type="qwen2", hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2, vocab_size=151936),
    "qwen2.5-3b": dict(model_type="qwen2", hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                       num_attention_heads=16, num_key_value_heads=2, vocab_size=151936),
}


def shape_model(shape: str, device=None, dtype=None):
    """A HybridModel with random weights of a real shape and SmolLM2's tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from .embedded import embedded_dir
    from .models import assemble, pick_device_dtype
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    kw = dict(SHAPES[shape])
    tok = AutoTokenizer.from_pretrained(embedded_dir())
    config = AutoConfig.for_model(kw.pop("model_type"), **kw, tie_word_embeddings=True, max_position_embeddings=4096,
                                  eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    dev, dt = pick_device_dtype(device, dtype)
    torch.manual_seed(0)
    with torch.device(dev):
        model = AutoModelForCausalLM.from_config(config, dtype=dt)
    return assemble(model, tok, f"shape:{shape}", dev, dt, None)


def synth_prompts(hm, batch: int, prompt_len: int, seed: int = 0) -> list[list[int]]:
    """`batch` prompts of exactly `prompt_len` token ids drawn from ordinary text tokens."""
    g = torch.Generator().manual_seed(seed)
    base = hm.tokenizer("Question: a farmer sells eggs and apples at the market every week. ")["input_ids"]
    vocab = min(len(hm.tokenizer), hm.embeddings.shape[0])
    return [(base + torch.randint(100, vocab, (prompt_len,), generator=g).tolist())[:prompt_len] for _ in range(batch)]


@torch.no_grad()
def reference_loop(hm, prompts: list[list[int]], cfg: RolloutConfig) -> int:
    """The paper-code-style hybrid loop; returns the number of generated tokens."""
    E, dev, tok = hm.embeddings, hm.device, hm.tokenizer
    ids, mask = left_pad(prompts, hm.pad_id)
    ids, mask = ids.to(dev), mask.to(dev)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    out = hm.model(inputs_embeds=E[ids], attention_mask=mask, position_ids=pos, use_cache=True)
    cache, logits, nxt = out.cache, out.logits[:, -1].float(), pos[:, -1:] + 1
    done = torch.zeros(len(prompts), dtype=torch.bool, device=dev)
    completions = [[] for _ in prompts]
    generated = 0
    for _ in range(cfg.max_new_tokens):
        filtered = logits.clone()
        kth = logits.topk(cfg.top_k, dim=-1).values[:, -1:]
        filtered[logits < kth] = float("-inf")
        p = torch.softmax(filtered / cfg.temperature, dim=-1)                 # (B, V)
        x = torch.multinomial(p, 1).squeeze(-1)
        h = latent_embedding(p, None, E)                                        # dense (B, V) x (V, H)
        think = []
        for r, t in enumerate(x.tolist()):
            completions[r].append(t)
            think.append("####" not in tok.decode(completions[r]))              # whole re-decode
        generated += int((~done).sum())
        done |= torch.isin(x, torch.tensor(sorted(hm.eos_ids), device=dev))
        if done.all():
            break
        e = E[x]
        mixed, _ = hm.gate(e, h)
        e = torch.where(torch.tensor(think, device=dev).unsqueeze(-1), mixed, e)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
        out = hm.model(inputs_embeds=e.unsqueeze(1), attention_mask=mask, position_ids=nxt,
                       cache=cache, use_cache=True)
        cache, logits, nxt = out.cache, out.logits[:, -1].float(), nxt + 1
    return generated


@torch.no_grad()
def generate_baseline(hm, prompts, cfg: RolloutConfig) -> int:
    ids, mask = left_pad(prompts, hm.pad_id)
    out = hm.model.generate(ids.to(hm.device), attention_mask=mask.to(hm.device), do_sample=True,
                            top_k=cfg.top_k, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens,
                            min_new_tokens=cfg.max_new_tokens, pad_token_id=hm.pad_id)
    return out[:, ids.shape[1]:].numel()


def peak_memory_mb(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_rollout(hm, batch: int = 8, prompt_len: int = 64, new: int = 128, repeats: int = 1,
                  which=("generate", "reference", "plain", "hybrid")) -> list[dict]:
    """Tokens/s of each contender on the same prompts; one warm-up run each, then the best of `repeats`
    rounds, each round timing every contender once in turn."""
    prompts = synth_prompts(hm, batch, prompt_len)
    cfg = RolloutConfig(max_new_tokens=new, temperature=0.5, top_k=50)
    # no contender stops at eos, so each writes exactly batch * new tokens
    endless = dataclasses.replace(hm, eos_ids=frozenset())
    plain = RolloutConfig(**{**cfg.to_dict(), "hybrid": False})
    runners = {
        "generate": lambda: generate_baseline(hm, prompts, cfg),
        "reference": lambda: reference_loop(endless, prompts, cfg),
        "plain": lambda: Decoder(endless, prompts, plain).run() and batch * new,
        "hybrid": lambda: Decoder(endless, prompts, cfg).run() and batch * new,
    }
    for name in which:                                                          # warm-up, each contender
        runners[name]()
    best = dict.fromkeys(which, 0.0)
    for _ in range(repeats):                  # round-robin: a slow spell of the machine hits every contender
        for name in which:
            t0 = time.perf_counter()
            n = runners[name]()
            best[name] = max(best[name], n / (time.perf_counter() - t0))
    return [{"name": name, "dtype": dtype_name(hm.dtype), "tokens_per_s": best[name],
             "peak_mb": peak_memory_mb(hm.device)} for name in which]


def dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def add_ratios(rows: list[dict], figure: str, faster: bool = True, key: str = "vs_float32") -> list[dict]:
    """`key` (vs_float32) on every row whose contender also ran in float32: speed-up of this dtype over fp32.

    faster=True: figure is a rate (tokens/s, this / fp32); False: a duration (seconds, fp32 / this)."""
    fp32 = {r["name"]: r[figure] for r in rows if r["dtype"] == "float32"}
    for r in rows:
        if r["name"] in fp32 and r[figure] and fp32[r["name"]]:
            r[key] = r[figure] / fp32[r["name"]] if faster else fp32[r["name"]] / r[figure]
    return rows


def bench_rollout_dtypes(load, dtypes, **kw) -> list[dict]:
    """bench_rollout for each dtype in turn; load(dtype) -> HybridModel (dtype None = the default)."""
    rows = []
    for dt in dtypes:
        hm = load(dt)
        part = bench_rollout(hm, **kw)
        base = {r["name"]: r["tokens_per_s"] for r in part}
        for r in part:                                  # ratios within the dtype
            if "generate" in base:
                r["vs_generate"] = r["tokens_per_s"] / base["generate"]
            if "reference" in base:
                r["vs_reference"] = r["tokens_per_s"] / base["reference"]
        rows += part
        del hm
    return add_ratios(rows, "tokens_per_s")


def bench_train(model: str = "default", steps: int = 2, group_size: int = 4, batch_prompts: int = 2,
                new: int = 64, device: str | None = None, out: str = "/tmp/hrpo-bench-train",
                dtypes=(None,), lora_rank: int = 32, unfolded: bool = False) -> list[dict]:
    """Seconds per GRPO and HRPO step on the same prompts and seed, in each dtype; rollout vs loss share.

    Every trainer is built and warmed up first (one step each), then their timed steps run round-robin.

    Rows: name (grpo | hrpo; with unfolded=True also grpo-unfolded | hrpo-unfolded: fold_lora off, the
    adapters applied as separate matmuls), dtype, step_seconds, rollout_seconds, shares, logprob_drift
    (max over the timed steps), completion_len_mean, ms_per_token (step time per sampled completion token),
    peak_mb; vs_float32 = fp32 seconds / these seconds.  Each dtype samples its own completions, whose
    lengths differ (by 10-15% at 5 steps): vs_float32_per_token compares ms_per_token, the same at equal work.
    """
    import shutil
    from .config import TrainConfig
    from .models import pick_device_dtype
    from .trainer import Trainer
    trainers = {}
    for dt in dtypes:
        for mode, fold in [(m, f) for m in ("grpo", "hrpo") for f in ((True, False) if unfolded else (True,))]:
            name = mode if fold else f"{mode}-unfolded"
            run = f"{out}/{dt or 'default'}-{name}"                              # one run directory each
            shutil.rmtree(run, ignore_errors=True)
            cfg = TrainConfig(model=model, mode=mode, steps=steps + 1, group_size=group_size,
                              batch_prompts=batch_prompts, max_new_tokens=new, out=run, device=device, lr=1e-5,
                              seed=0, dtype=dt, lora_rank=lora_rank, lora_alpha=2.0 * lora_rank, fold_lora=fold)
            trainer = Trainer(cfg)
            trainer.train_step(0)                                               # warm-up
            trainers[name, dtype_name(pick_device_dtype(device, dt)[1])] = trainer
    ms = {key: [] for key in trainers}
    for s in range(1, steps + 1):             # round-robin: a slow spell of the machine hits every contender
        for key, trainer in trainers.items():
            ms[key].append(trainer.train_step(s))
    rows = []
    for (name, dtype), m in ms.items():
        step_s = sum(x["step_seconds"] for x in m) / steps
        roll_s = sum(x["rollout_seconds"] for x in m) / steps
        length = sum(x["completion_len_mean"] for x in m) / steps
        rows.append({"name": name, "dtype": dtype, "step_seconds": step_s, "rollout_seconds": roll_s,
                     "rollout_share": roll_s / step_s, "loss_share": 1 - roll_s / step_s,
                     "logprob_drift": max(x["logprob_drift"] for x in m),
                     "completion_len_mean": length,
                     "ms_per_token": 1e3 * step_s / (length * batch_prompts * group_size) if length else 0.0,
                     "peak_mb": peak_memory_mb(trainers[name, dtype].hm.device)})
    del trainers
    shutil.rmtree(out, ignore_errors=True)
    add_ratios(rows, "ms_per_token", faster=False, key="vs_float32_per_token")
    return add_ratios(rows, "step_seconds", faster=False)
