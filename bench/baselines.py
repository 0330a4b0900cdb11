"""The slower paper-code-style hybrid loop of the first benchmarks (reference_loop), kept only so that their
figures (docs/PERFORMANCE.md, docs/LOG.md) stay comparable; ratios against the authors' design are quoted
against hrpo.bench.authors_loop, which `python -m hrpo bench rollout` runs.  The device check runs this one
as its `reference` part (gpu/gpu_check.py).
Test: pytest tests/test_bench.py
"""
import torch

from hrpo.bench import prefill, until_eos
from hrpo.config import RolloutConfig
from hrpo.rewards import MARKER
from hrpo.sampling import input_scale, latent_embedding, model_inputs


@torch.no_grad()
def reference_loop(hm, prompts: list[list[int]], cfg: RolloutConfig) -> list[list[int]]:
    """The slower paper-code-style loop of the first benchmarks, kept so their figures stay comparable;
    returns the completions (cut after EOS).  Unlike authors_loop it re-decodes each row's completion
    separately (B tokenizer calls per step), filters top-k by boolean indexing and computes the
    latent on rows that have already finished, so it is slower than authors_loop.  Ratios against the
    authors' design should be quoted against authors_loop.
    Greedy in fp32 it writes the same tokens as rollout.Decoder (tests/test_bench.py).
    """
    E, dev, tok = hm.embeddings, hm.device, hm.tokenizer
    logits, cache, mask, nxt = prefill(hm, prompts)
    done = torch.zeros(len(prompts), dtype=torch.bool, device=dev)
    completions = [[] for _ in prompts]
    for _ in range(cfg.max_new_tokens):
        filtered = logits.clone()
        if 0 < cfg.top_k < logits.shape[-1]:
            kth = logits.topk(cfg.top_k, dim=-1).values[:, -1:]
            filtered[logits < kth] = float("-inf")
        p = torch.softmax(filtered / cfg.temperature, dim=-1)                 # (B, V)
        x = p.argmax(-1) if cfg.greedy else torch.multinomial(p, 1).squeeze(-1)
        h = latent_embedding(p, None, E)                                        # dense (B, V) x (V, H)
        think = []
        for r, t in enumerate(x.tolist()):
            completions[r].append(t)
            think.append(cfg.hybrid and MARKER not in tok.decode(completions[r]))  # whole re-decode per row
        done |= torch.isin(x, torch.tensor(sorted(hm.eos_ids), device=dev))
        if done.all():
            break
        e = E[x]
        mixed, _ = hm.gate(e, h)
        e = torch.where(torch.tensor(think, device=dev).unsqueeze(-1), mixed, e)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
        out = hm.model(inputs_embeds=model_inputs(e, input_scale(hm.model)).unsqueeze(1), attention_mask=mask,
                       position_ids=nxt, cache=cache, use_cache=True)
        cache, logits, nxt = out.cache, out.logits[:, -1].float(), nxt + 1
    return until_eos(completions, hm.eos_ids)
