"""Speed benchmarks: `python -m hrpo bench rollout` (tokens/s and peak memory, side by side).

In one process, on the same model and the same prompts:
  generate   transformers generate() with sampling (top-k, temperature), no mixing
  authors    a hybrid loop written the way the authors' code decodes (authors_loop): one batch_decode
             of every completion per step to look for '####', the dense (B, V) x (V, H) latent; the
             fair baseline for the method
  plain      our Decoder with mixing off
  hybrid     our Decoder (gathered top-k latent, incremental marker tail)
The slower loop of the first benchmarks, kept only for their figures, is bench/baselines.py (reference_loop).
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
from .rewards import MARKER
from .rollout import Decoder, left_pad
from .sampling import input_scale, latent_embedding, model_inputs

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


def until_eos(rows: list[list[int]], eos_ids) -> list[list[int]]:
    """Each completion cut after its first EOS (kept), as the decoders report them."""
    out = []
    for row in rows:
        end = next((i + 1 for i, t in enumerate(row) if t in eos_ids), len(row))
        out.append(row[:end])
    return out


def prefill(hm, prompts):
    """Left-padded prompts through the model: (last logits (B, V) fp32, cache, mask (B, P), next pos (B, 1))."""
    ids, mask = left_pad(prompts, hm.pad_id)
    ids, mask = ids.to(hm.device), mask.to(hm.device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    out = hm.model(inputs_embeds=model_inputs(hm.embeddings[ids], input_scale(hm.model)), attention_mask=mask,
                   position_ids=pos, use_cache=True, logits_to_keep=1)
    return out.logits[:, -1].float(), out.cache, mask, pos[:, -1:] + 1


@torch.no_grad()
def authors_loop(hm, prompts: list[list[int]], cfg: RolloutConfig) -> list[list[int]]:
    """An independent hybrid loop written the way the authors' code decodes (a patched transformers
    `generate` sampling loop), as fast as that design allows; returns the completions (cut after EOS).

    Per step, for the whole batch (B rows; finished rows keep decoding padding, as in generate()):
      temperature, then top-k as a masked fill (generate's logits warpers), softmax over the full V,
      multinomial draw (argmax when cfg.greedy), one batch_decode of every completion so far to see
      which rows have written '####', the dense latent h = p @ E / ||p|| ((B, V) x (V, H)), the gate
      mixing E[x] with h on rows still thinking, one model step with a DynamicCache and a growing mask.
    Greedy in fp32 it writes the same tokens as rollout.Decoder (tests/test_bench.py).
    """
    E, tok, scale = hm.embeddings, hm.tokenizer, input_scale(hm.model)
    logits, cache, mask, nxt = prefill(hm, prompts)
    eos = torch.tensor(sorted(hm.eos_ids), device=hm.device)
    unfinished = torch.ones(len(prompts), dtype=torch.bool, device=hm.device)
    seq = torch.empty((len(prompts), 0), dtype=torch.long, device=hm.device)
    for _ in range(cfg.max_new_tokens):
        scores = logits / cfg.temperature
        if 0 < cfg.top_k < scores.shape[-1]:
            kth = scores.topk(cfg.top_k, dim=-1).values[:, -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        p = torch.softmax(scores, dim=-1)                                       # (B, V)
        x = p.argmax(-1) if cfg.greedy else torch.multinomial(p, 1).squeeze(1)  # (B,)
        x = torch.where(unfinished, x, torch.full_like(x, hm.pad_id))
        seq = torch.cat([seq, x[:, None]], dim=-1)
        unfinished &= ~torch.isin(x, eos)
        if not unfinished.any():
            break
        think = [cfg.hybrid and MARKER not in text for text in tok.batch_decode(seq)]  # whole re-decode
        e = E[x]                                                                # (B, H)
        if any(think):
            mixed, _ = hm.gate(e, latent_embedding(p, None, E))                 # dense (B, V) x (V, H)
            e = torch.where(torch.tensor(think, device=hm.device)[:, None], mixed, e)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
        out = hm.model(inputs_embeds=model_inputs(e, scale)[:, None], attention_mask=mask, position_ids=nxt,
                       cache=cache, use_cache=True, logits_to_keep=1)
        cache, logits, nxt = out.cache, out.logits[:, -1].float(), nxt + 1
    return until_eos(seq.tolist(), hm.eos_ids)


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
                  which=("generate", "authors", "plain", "hybrid")) -> list[dict]:
    """Tokens/s of each contender on the same prompts; one warm-up run each, then the best of `repeats`
    rounds, each round timing every contender once in turn."""
    prompts = synth_prompts(hm, batch, prompt_len)
    cfg = RolloutConfig(max_new_tokens=new, temperature=0.5, top_k=50)
    # no contender stops at eos, so each writes exactly batch * new tokens
    endless = dataclasses.replace(hm, eos_ids=frozenset())
    plain = RolloutConfig(**{**cfg.to_dict(), "hybrid": False})
    runners = {
        "generate": lambda: generate_baseline(hm, prompts, cfg),
        "authors": lambda: sum(map(len, authors_loop(endless, prompts, cfg))),
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
            if "authors" in base:
                r["vs_authors"] = r["tokens_per_s"] / base["authors"]
        rows += part
        del hm
    return add_ratios(rows, "tokens_per_s")


def bench_train(model: str = "default", steps: int = 2, group_size: int = 4, batch_prompts: int = 2,
                new: int = 64, device: str | None = None, out: str = "/tmp/hrpo-bench-train",
                dtypes=(None,), lora_rank: int = 32, unfolded: bool = False, task: str = "arith",
                stops=("answer",)) -> list[dict]:
    """Seconds per GRPO and HRPO step on the same prompts and seed, in each dtype and stop rule; rollout vs
    loss share.  bf16 runs on any CPU here (emulated_bf16): its cost is what is measured.

    Every trainer is built and warmed up first (one step each), then their timed steps run round-robin.

    Rows: name (grpo | hrpo; with unfolded=True also grpo-unfolded | hrpo-unfolded: fold_lora off, the
    adapters applied as separate matmuls; "-<stop>" appended for every stop rule after the first), dtype,
    step_seconds, rollout_seconds, shares, logprob_drift (max over the timed steps), completion_len_mean,
    ms_per_token (step time per sampled completion token), peak_mb; vs_float32 = fp32 seconds / these
    seconds.  Each dtype samples its own completions, whose lengths differ: vs_float32_per_token compares
    ms_per_token, the same at equal work.
    """
    import shutil

    from .config import TrainConfig
    from .models import pick_device_dtype
    from .trainer import Trainer
    trainers = {}
    folds = (True, False) if unfolded else (True,)
    variants = [(m, f, stop) for stop in stops for m in ("grpo", "hrpo") for f in folds]
    for dt in dtypes:
        for mode, fold, stop in variants:
            name = (mode if fold else f"{mode}-unfolded") + ("" if stop == stops[0] else f"-{stop}")
            run = f"{out}/{dt or 'default'}-{name}"                              # one run directory each
            shutil.rmtree(run, ignore_errors=True)
            cfg = TrainConfig(model=model, task=task, mode=mode, steps=steps + 1, group_size=group_size,
                              batch_prompts=batch_prompts, max_new_tokens=new, out=run, device=device, lr=1e-5,
                              seed=0, dtype=dt, lora_rank=lora_rank, lora_alpha=2.0 * lora_rank, fold_lora=fold,
                              stop=stop, emulated_bf16=True)
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
