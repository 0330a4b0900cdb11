"""Speed benchmarks: `python -m hrpo bench rollout` (tokens/s and peak memory, side by side).

In one process, on the same model and the same prompts:
  generate   transformers generate() with sampling (top-k, temperature), no mixing
  reference  a reference-style hybrid loop kept here on purpose: the whole completion is re-decoded
             at every step to look for '####', and the latent is a dense (B, V) x (V, H) product
  plain      our Decoder with mixing off
  hybrid     our Decoder (gathered top-k latent, incremental marker tail)
Peak memory is the process RSS high-water mark on CPU (torch.cuda.max_memory_allocated on GPU).
Test: pytest tests/test_bench.py (tiny-random, no timing assertions).
"""
import dataclasses
import resource
import time

import torch

from .config import RolloutConfig
from .loss import sampling_distribution
from .rollout import Decoder, latent_embedding, left_pad


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
    cache, logits, nxt = out.past_key_values, out.logits[:, -1].float(), pos[:, -1:] + 1
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
        cache, logits, nxt = out.past_key_values, out.logits[:, -1].float(), nxt + 1
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
    """Tokens/s of each contender on the same prompts; one warm-up run each, then the best of `repeats`."""
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
    rows = []
    for name in which:
        runners[name]()                                                         # warm-up
        best = None
        for _ in range(repeats):
            t0 = time.perf_counter()
            n = runners[name]()
            dt = time.perf_counter() - t0
            best = max(best or 0.0, n / dt)
        rows.append({"name": name, "tokens_per_s": best, "peak_mb": peak_memory_mb(hm.device)})
    return rows
