"""Static-cache hybrid decoding whose whole step can be captured in one CUDA graph (issue 6, item 4).

Same method and output as hrpo.rollout.Decoder (DESIGN.md section 1, "Hybrid rollout"), per step:
    p = softmax(top_k(logits) / tau);  x = argmax p (greedy) or Gumbel/exponential-max sample of p
    h = E^T p / ||p||_2                  -- gathered over the k kept rows of E
    next input = gate(E[x], h) while the row has not yet produced '####', else E[x]
Everything the step needs lives in preallocated device buffers (transformers StaticCache sized
prompt + max_new, a (B, L_max) attention mask whose current column is set in place, position ids
and cache position advanced in place, the logits, per-row alive / marker state, and (B, max_new)
output buffers written at a device-side step counter), so `_Engine.step` has no host syncs, no
data-dependent Python branches and no shape changes.  On CUDA it is run eagerly for a few warm-up
steps on a side stream, captured once with torch.cuda.graph and replayed; anywhere else it simply
runs eagerly (the very same function).  The host looks at `alive.any()` only every CHECK_EVERY steps.

'####' is tracked without strings: per vocabulary id we precompute contains4, all_hash (only '#';
the empty piece counts, it changes nothing), length L, leading and trailing '#' counts; each row
keeps s = trailing '#' run (0..3) and seen.  Transition for token x (see marker_step):
    all_hash: seen |= s + L >= 4, s = min(s + L, 3);  else: seen |= contains4 or s + lead >= 4, s = min(trail, 3)
which equals searching '####' in the concatenated pieces (rollout.MarkerWatch).

For training rollouts (issue 13) `keep_latents=True` also records h per step in a (B, max_new, H)
buffer, so the traces carry everything teacher forcing needs (tokens, thinking mask, sampling
log-probs, latents, finish), like rollout.Decoder(keep_latents=True).  `static_wanted` is how the
trainer chooses: this decoder on CUDA, the eager one elsewhere; HRPO_STATIC_DECODE=off|on|auto overrides it.
Test: pytest tests/test_fastpath.py (CPU, eager path); scripts/gpu_check.py checks the graph on a GPU.
"""
import math
import os
import time
import warnings

import torch

from .config import RolloutConfig
from .gate import hidden_ratio
from .loss import sampling_distribution
from .kernels import low_precision
from .models import HybridModel
from .rewards import MARKER, extract_answer
from .rollout import Step, Trace, latent_embedding, left_pad

CHECK_EVERY = 8          # steps between host checks of "every row finished"
WARMUP = 3               # eager steps on a side stream before capture
BUCKET = 32              # captured graphs are reused across prompt lengths rounded up to this
_TABLES: dict = {}       # id(hm) -> (hm, {device: (V, 5) table}); pieces are per HybridModel
_ENGINES: dict = {}      # shape key -> captured _Engine (CUDA only)


def marker_table(hm: HybridModel) -> torch.Tensor:
    """(V, 5) long on hm.device: contains4, all_hash, length, leading '#', trailing '#' per token id."""
    V = hm.embeddings.shape[0]
    entry = _TABLES.get(id(hm))
    if entry is None or entry[0] is not hm:
        entry = _TABLES[id(hm)] = (hm, {})
    if hm.device not in entry[1]:
        rows = []
        for i in range(V):
            p = hm.piece(i)
            lead, trail = len(p) - len(p.lstrip("#")), len(p) - len(p.rstrip("#"))
            rows.append((MARKER in p, lead == len(p), len(p), lead, trail))
        entry[1][hm.device] = torch.tensor(rows, dtype=torch.long, device=hm.device)
    return entry[1][hm.device]


def marker_step(table: torch.Tensor, x: torch.Tensor, s: torch.Tensor, seen: torch.Tensor):
    """One automaton step for tokens x (B,): returns (s, seen) after x; both tensors, no host sync."""
    c4, all_hash, length, lead, trail = table[x].unbind(-1)                      # (B,) each
    run = s + length
    hit = torch.where(all_hash.bool(), run >= 4, c4.bool() | (s + lead >= 4))
    s_new = torch.where(all_hash.bool(), run.clamp(max=3), trail.clamp(max=3))
    return torch.where(seen, s, s_new), seen | hit


class _Engine:
    """Static buffers + StaticCache for one (batch, prompt width, max_new, config) shape."""

    def __init__(self, hm: HybridModel, rows: int, width: int, cfg: RolloutConfig, keep_latents: bool = False):
        from transformers import StaticCache
        dev, self.hm, self.cfg, self.width = hm.device, hm, cfg, width
        self.max_new, total = cfg.max_new_tokens, width + cfg.max_new_tokens
        self.cache = StaticCache(config=hm.model.config, max_cache_len=total)
        self.table = marker_table(hm)
        self.is_eos = torch.zeros(hm.embeddings.shape[0], dtype=torch.bool, device=dev)
        self.is_eos[[i for i in hm.eos_ids if i is not None and i < len(self.is_eos)]] = True
        z = lambda *shape, dtype=torch.long: torch.zeros(shape, dtype=dtype, device=dev)  # noqa: E731
        self.mask, self.pos, self.cpos, self.t = z(rows, total), z(rows, 1), z(1), z(1)
        self.logits = z(rows, hm.embeddings.shape[0], dtype=torch.float32)
        self.alive, self.seen, self.s = z(rows, dtype=torch.bool), z(rows, dtype=torch.bool), z(rows)
        self.out = {"token": z(rows, self.max_new), "thinking": z(rows, self.max_new, dtype=torch.bool),
                    "alive": z(rows, self.max_new, dtype=torch.bool)}
        for name in ("gate_a", "hidden_ratio", "logprob", "entropy", "eff_vocab"):
            self.out[name] = z(rows, self.max_new, dtype=torch.float32)
        if keep_latents and cfg.hybrid:                                          # h per step, E's dtype
            self.out["latents"] = z(rows, self.max_new, hm.embeddings.shape[1], dtype=hm.embeddings.dtype)
        self.gen = torch.Generator(device=dev)
        self.graph, self.capture_error = None, None

    @torch.no_grad()
    def load(self, ids: torch.Tensor, mask: torch.Tensor) -> None:
        """Reset every buffer in place and prefill the cache eagerly with E[prompt ids]."""
        hm, width = self.hm, self.width
        for layer in self.cache.layers:
            if getattr(layer, "is_initialized", False):
                layer.cumulative_length.zero_()
        self.mask.zero_()
        self.mask[:, :width] = mask
        positions = (mask.cumsum(-1) - 1).clamp(min=0)                          # (B, P)
        last = torch.tensor([width - 1], device=ids.device)                     # as Decoder._forward does
        with low_precision(hm.model):                                            # the rollout's compute path
            out = hm.model(inputs_embeds=hm.embeddings[ids], attention_mask=self.mask[:, :width],
                           position_ids=positions, cache=self.cache, use_cache=True, logits_to_keep=last)
        self.logits.copy_(out.logits[:, -1].float())
        self.pos.copy_(positions[:, -1:] + 1)
        self.cpos.fill_(width)
        self.t.zero_()
        self.alive.fill_(True)
        self.seen.zero_()
        self.s.zero_()
        for buf in self.out.values():
            buf.zero_()
        self.gen.manual_seed(self.cfg.seed)

    @torch.no_grad()
    def step(self) -> None:
        """One decode position, entirely on device: sample, record, mix, advance the model by one token."""
        hm, cfg, E = self.hm, self.cfg, self.hm.embeddings
        probs, logp, idx = sampling_distribution(self.logits, cfg.top_k, cfg.temperature)  # (B, k)
        if cfg.greedy:
            pick = probs.argmax(-1, keepdim=True)
        else:   # argmax p / q, q ~ Exp(1): what torch.multinomial(p, 1) does, with no validity sync
            q = torch.empty_like(probs).exponential_(1, generator=self.gen)
            pick = (probs / q).argmax(-1, keepdim=True)
        x = (idx.gather(-1, pick) if idx is not None else pick).squeeze(-1)      # (B,)
        x = torch.where(self.alive, x, torch.full_like(x, hm.pad_id))
        lp = logp.gather(-1, pick).squeeze(-1)                                   # (B,)
        entropy = -(probs * logp).sum(-1)                                        # (B,)
        eff_vocab = 1.0 / probs.float().pow(2).sum(-1)                           # (B,) = 1 / ||p||_2^2
        e = E[x]                                                                 # (B, H)
        a = torch.ones_like(e, dtype=torch.float32)
        think = torch.zeros_like(self.alive)
        values = {}
        if cfg.hybrid:
            s, seen = marker_step(self.table, x, self.s, self.seen)
            think = self.alive & ~seen
            self.s.copy_(torch.where(self.alive, s, self.s))
            self.seen.copy_(torch.where(self.alive, seen, self.seen))
            h = latent_embedding(probs, idx, E)                                  # (B, H)
            mixed, a_mix = hm.gate(e, h)
            e = torch.where(think.unsqueeze(-1), mixed, e)
            a = torch.where(think.unsqueeze(-1), a_mix, a)
            if "latents" in self.out:
                values["latents"] = h
        values.update(token=x, thinking=think, alive=self.alive, gate_a=a.mean(-1),
                      hidden_ratio=hidden_ratio(a).mean(-1), logprob=lp, entropy=entropy, eff_vocab=eff_vocab)
        for name, v in values.items():
            self.out[name].index_copy_(1, self.t, v.unsqueeze(1))
        self.alive.logical_and_(~self.is_eos[x])
        self.mask.index_fill_(1, self.cpos, 1)
        with low_precision(hm.model):        # bf16 LoRA adapters as in Decoder and teacher forcing (captured too)
            out = hm.model(inputs_embeds=e.unsqueeze(1), attention_mask=self.mask, position_ids=self.pos,
                           cache=self.cache, use_cache=True)
        self.logits.copy_(out.logits[:, -1].float())
        self.pos.add_(1)
        self.cpos.add_(1)
        self.t.add_(1)

    def capture(self) -> None:
        """Capture one step in a CUDA graph (call after WARMUP eager steps; capturing runs nothing)."""
        graph = torch.cuda.CUDAGraph()
        if hasattr(graph, "register_generator_state"):
            graph.register_generator_state(self.gen)     # graph-safe RNG for our own generator
        with torch.cuda.graph(graph):
            self.step()
        self.graph = graph


class StaticDecoder:
    """Batched hybrid decode on a static cache; `run()` returns the same list[Trace] as rollout.Decoder."""

    def __init__(self, hm: HybridModel, prompts: list[str] | list[list[int]], cfg: RolloutConfig | None = None,
                 raw: bool = False, capture: bool | None = None, keep_latents: bool = False):
        if not prompts:
            raise ValueError("no prompts to decode")
        self.hm, self.cfg, self.keep_latents = hm, cfg or RolloutConfig(), keep_latents
        self.capture = hm.device.type == "cuda" if capture is None else capture
        if self.capture and hm.device.type != "cuda":
            raise ValueError("CUDA-graph capture needs a CUDA device")
        ids = [p if isinstance(p, list) else hm.encode(p, raw=raw) for p in prompts]
        if any(len(i) == 0 for i in ids):
            raise ValueError("empty prompt")
        width = max(map(len, ids))
        self.width = math.ceil(width / BUCKET) * BUCKET if self.capture else width
        limit = getattr(hm.model.config, "max_position_embeddings", None)
        if limit and self.width + self.cfg.max_new_tokens > limit:
            raise ValueError(f"prompt ({width} tokens) + max_new_tokens ({self.cfg.max_new_tokens}) "
                             f"exceeds the model's context of {limit} tokens")
        self.traces = [Trace(prompt=hm.tokenizer.decode(i), prompt_ids=i, hybrid=self.cfg.hybrid) for i in ids]
        self.generated, self.seconds, self.captured, self.capture_error = 0, 0.0, False, None

    def _engine(self) -> _Engine:
        make = lambda: _Engine(self.hm, len(self.traces), self.width, self.cfg, self.keep_latents)  # noqa: E731
        if not self.capture:
            return make()
        # id(hm) too: a dataclasses.replace'd HybridModel (other eos ids or pieces) needs its own tables
        cfg = self.cfg
        key = (id(self.hm), id(self.hm.model), id(self.hm.gate), len(self.traces), self.width, cfg.max_new_tokens,
               cfg.top_k, cfg.temperature, cfg.greedy, cfg.hybrid, self.keep_latents)
        if key not in _ENGINES:
            _ENGINES.clear()                     # keep one captured graph (and its memory pool) at a time
            _ENGINES[key] = make()
        return _ENGINES[key]

    @torch.no_grad()
    def run(self) -> list[Trace]:
        hm, dev, max_new = self.hm, self.hm.device, self.cfg.max_new_tokens
        start = time.perf_counter()
        ids, mask = left_pad([t.prompt_ids for t in self.traces], hm.pad_id)
        extra = self.width - ids.shape[1]                                        # bucket: more left padding
        ids = torch.cat([torch.full((len(ids), extra), hm.pad_id, dtype=torch.long), ids], 1)
        mask = torch.cat([torch.zeros((len(mask), extra), dtype=torch.long), mask], 1)
        eng = self._engine()
        eng.load(ids.to(dev), mask.to(dev))
        done = 0
        if self.capture and eng.graph is None and eng.capture_error is None:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):                # warm-up = the first real steps, run eagerly
                for _ in range(min(WARMUP, max_new)):
                    eng.step()
                    done += 1
            torch.cuda.current_stream().wait_stream(side)
            if done < max_new:
                try:
                    eng.capture()
                except RuntimeError as err:      # capture records, runs nothing: go on eagerly, say why once
                    eng.capture_error = f"{type(err).__name__}: {err}"
                    warnings.warn(f"CUDA-graph capture failed, decoding eagerly: {eng.capture_error}")
        while done < max_new:
            eng.graph.replay() if eng.graph is not None else eng.step()
            done += 1
            if done % CHECK_EVERY == 0 and not bool(eng.alive.any()):           # one host sync per CHECK_EVERY
                break
        self.captured, self.capture_error = eng.graph is not None, eng.capture_error
        out = {name: buf[:, :done].cpu() for name, buf in eng.out.items()}
        self.seconds = time.perf_counter() - start
        self._build(out)
        return self.traces

    def _build(self, out: dict) -> None:
        hm = self.hm
        for r, tr in enumerate(self.traces):
            n = int(out["alive"][r].sum())                                       # alive steps form a prefix
            tr.token_ids = out["token"][r, :n].tolist()
            names = ("thinking", "gate_a", "hidden_ratio", "logprob", "entropy", "eff_vocab")
            cols = [out[k][r, :n].tolist() for k in names]
            tr.steps = [Step(t, hm.piece(x), x, **dict(zip(names, vals)))
                        for t, (x, *vals) in enumerate(zip(tr.token_ids, *cols))]
            if "latents" in out and n:
                tr.latents = out["latents"][r, :n].float()                       # (n, H), as Decoder keeps them
            tr.finish = "eos" if tr.token_ids and tr.token_ids[-1] in hm.eos_ids else "length"
            tr.text = hm.tokenizer.decode(tr.token_ids, skip_special_tokens=True)
            tr.answer = extract_answer(tr.text)
            self.generated += n

    @property
    def tokens_per_s(self) -> float:
        return self.generated / self.seconds if self.seconds else 0.0


def static_wanted(device: torch.device, flag: bool | None = None) -> bool:
    """Use the static decoder?  flag wins; else HRPO_STATIC_DECODE: on | off | auto (default: CUDA only)."""
    if flag is not None:
        return flag
    mode = os.environ.get("HRPO_STATIC_DECODE", "auto").strip().lower()
    if mode not in ("auto", "on", "off", "1", "0", "true", "false"):
        raise ValueError(f"HRPO_STATIC_DECODE must be on, off or auto, got {mode!r}")
    return mode in ("on", "1", "true") or (mode == "auto" and device.type == "cuda")

