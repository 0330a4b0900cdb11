"""The device side of hrpo.static_decoder.StaticDecoder: `Engine`, the static buffers and the one decode step that a
CUDA graph captures.

Per step (the method of rollout.Decoder, docs/DESIGN.md section 1, "Hybrid rollout"):
    p = softmax(top_k(logits) / tau);  x = argmax p (greedy) or argmax p / q, q ~ Exp(1) (torch.multinomial's draw)
    h = E^T p / ||p||_2                  -- gathered over the k kept rows of E
    next input = gate(E[x], h) while the row has not yet produced '####', else E[x]
with a = the forced value force[t] where it is not NaN (Decoder's force_a), the learned gate elsewhere.

'####' and the end of the answer line are tracked by hrpo/stopping.py's automaton (token tables, no strings),
as in the eager Decoder: a row stops at EOS, or once its answer line is complete under stop="answer".

Engine(hm, rows, width, cfg, keep_latents, keep_states) holds, for one shape (B = rows):
  cache    transformers StaticCache of width + max_new columns: the prompts at [0, P) (P <= width their own
           padded width), step t at column P + t, the columns after masked: the layout of the eager Decoder's
           cache and of teacher forcing, whatever the width.  (Prompts shifted right by masked columns took
           other reduction blocks in attention: bf16 log-probs off teacher forcing on the CPU.)
  mask     (B, width + max_new) attention mask; pos (B, 1) position ids; cpos (1,) the next cache column;
           t (1,) the step counter: all advanced in place
  logits   (B, V) the next position's logits, in the model's dtype
  alive (B,): still decoding; state: the stopping.AnswerState per row ('####' seen, answer line complete...)
  force    (max_new,) float32: the forced gate value per step, NaN = the learned gate
  hscale   (max_new,) float32: the factor on the latent h as the gate mixes it, per step (Decoder's scale_h)
  out      records written at column t: token (B, max_new) long, stats (B, max_new, 7) float32 (STATS);
           latents (keep_latents, hybrid) and inputs (keep_states) (B, max_new, H) in E's dtype;
           top_ids (B, max_new, 10) long and top_probs (B, max_new, 10) float32 (keep_states)
`load` resets them and prefills; `step` has no host sync, no data-dependent Python branch and no shape
change, so `capture` records it once in a CUDA graph and `advance` replays it.
Test: pytest tests/test_static_decoder.py tests/test_static_stream.py (CPU, eager); gpu/gpu_check.py (the graph).
"""
import threading

import torch

from .config import RolloutConfig
from .cpu_precision import low_precision
from .gate import hidden_ratio, mix
from .models import HybridModel
from .rollout import distinct_rows, prompt_pass
from .sampling import input_scale, latent_embedding, model_inputs, step_distribution, token_logprob
from .stopping import AnswerState, advance, marker_table, stops

STATS = ("gate_a", "hidden_ratio", "logprob", "entropy", "eff_vocab", "thinking", "alive")   # out["stats"] columns
TOP = 10                 # keep_states: the most likely next tokens kept per step


def static_supported(hm: HybridModel) -> bool:
    """Can the static decoder run this model?  Every layer of its StaticCache must be plain full attention
    (the prefill's KV is copied in by column); sliding-window or linear-attention layers decode eagerly."""
    from transformers import StaticCache
    from transformers.cache_utils import StaticLayer
    return all(type(layer) is StaticLayer for layer in StaticCache(config=hm.model.config, max_cache_len=1).layers)


class Engine:
    """Static buffers + StaticCache for one (rows, prompt width, config) shape; see the module docstring."""

    def __init__(self, hm: HybridModel, rows: int, width: int, cfg: RolloutConfig, keep_latents: bool = False,
                 keep_states: bool = False):
        from transformers import StaticCache
        dev, self.hm, self.cfg, self.width = hm.device, hm, cfg, width
        self.max_new, total = cfg.max_new_tokens, width + cfg.max_new_tokens
        (V, H), dt = hm.embeddings.shape, hm.embeddings.dtype
        self.cache = StaticCache(config=hm.model.config, max_cache_len=total)
        self.scale = input_scale(hm.model)                  # the model's input is s * (E[x] or the gate's mix)
        self.table = marker_table(hm)
        self.is_eos = torch.zeros(V, dtype=torch.bool, device=dev)
        self.is_eos[[i for i in hm.eos_ids if i is not None and i < V]] = True
        z = lambda *shape, dtype=torch.long: torch.zeros(shape, dtype=dtype, device=dev)  # noqa: E731
        self.mask, self.pos, self.cpos, self.t = z(rows, total), z(rows, 1), z(1), z(1)
        self.logits = None                                   # (B, V) in the model's dtype, made by the first load
        self.alive, self.state = z(rows, dtype=torch.bool), AnswerState.zeros(rows, dev)
        self.force = torch.full((self.max_new,), float("nan"), device=dev)
        self.hscale = torch.ones(self.max_new, device=dev)
        self.out = {"token": z(rows, self.max_new), "stats": z(rows, self.max_new, len(STATS), dtype=torch.float32)}
        if keep_latents and cfg.hybrid:
            self.out["latents"] = z(rows, self.max_new, H, dtype=dt)
        if keep_states:
            top = min(TOP, cfg.top_k if 0 < cfg.top_k < V else V)
            self.out.update(inputs=z(rows, self.max_new, H, dtype=dt), top_ids=z(rows, self.max_new, top),
                            top_probs=z(rows, self.max_new, top, dtype=torch.float32))
        self.gen = torch.Generator(device=dev)
        self.graph, self.capture_error = None, None
        self.lock = threading.Lock()                         # one decode at a time on these buffers

    @torch.no_grad()
    def load(self, ids: torch.Tensor, mask: torch.Tensor, force: list[float | None], seed: int,
             scale: list[float | None] | None = None) -> None:
        """Reset every buffer in place and prefill.  ids, mask (B, P), P <= width, go through rollout.prompt_pass,
        each distinct prompt once, as the eager Decoder and teacher forcing compute them (the same KV and first
        logits, bit for bit); their KV is copied into the cache's columns [0, P), the next column is P.
        force: max_new values, None = the learned gate; seed: this request's (an engine serves many);
        scale: max_new factors on the latent h (None = 1)."""
        hm, P = self.hm, ids.shape[1]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)                          # (B, P)
        logits, prompt = prompt_pass(hm.model, model_inputs(hm.embeddings[ids], self.scale), mask, positions,
                                     distinct_rows(ids, mask))
        for layer, src in zip(self.cache.layers, prompt.layers, strict=True):
            if not layer.is_initialized:
                layer.lazy_initialization(src.keys, src.values)
            layer.keys[:, :, :P].copy_(src.keys)
            layer.values[:, :, :P].copy_(src.values)
            layer.cumulative_length.fill_(P)
        self.mask.zero_()
        self.mask[:, :P] = mask
        if self.logits is None:
            self.logits = torch.empty_like(logits)
        self.logits.copy_(logits)
        self.pos.copy_(positions[:, -1:] + 1)
        self.cpos.fill_(P)
        self.t.zero_()
        self.alive.fill_(True)
        self.state.copy_(AnswerState.zeros(len(self.alive), self.alive.device))
        self.force.copy_(torch.tensor([float("nan") if f is None else float(f) for f in force]))
        self.hscale.copy_(torch.tensor([1.0 if f is None else float(f) for f in scale or [None] * self.max_new]))
        for buf in self.out.values():
            buf.zero_()
        self.gen.manual_seed(seed)

    @torch.no_grad()
    def step(self) -> None:
        """One decode position, entirely on device: sample, record, mix, advance the model by one token."""
        hm, cfg, E = self.hm, self.cfg, self.hm.embeddings
        probs, logp, idx, scaled = step_distribution(self.logits, cfg.top_k, cfg.temperature)   # (B, k)
        if cfg.greedy:
            pick = probs.argmax(-1, keepdim=True)
        else:   # argmax p / q, q ~ Exp(1): what torch.multinomial(p, 1) does, with no validity sync
            q = torch.empty_like(probs).exponential_(1, generator=self.gen)
            pick = (probs / q).argmax(-1, keepdim=True)
        x = (idx.gather(-1, pick) if idx is not None else pick).squeeze(-1)      # (B,)
        x = torch.where(self.alive, x, torch.full_like(x, hm.pad_id))
        e = E[x]                                                                 # (B, H)
        a = torch.ones_like(e, dtype=torch.float32)
        self.state.copy_(advance(self.table, x, self.state, self.alive))
        think = self.alive & ~self.state.seen & cfg.hybrid
        rec = {}
        if cfg.hybrid:
            h = latent_embedding(probs, idx, E)                                  # (B, H)
            a_gate, i = hm.gate.gates(e)                 # the gate's forward, with a forced per step from a tensor
            f = self.force.index_select(0, self.t)                               # (1,) NaN: learned
            a_gate = torch.where(torch.isnan(f), a_gate, f)
            h_in = h.float() * self.hscale.index_select(0, self.t)                # (B, H); x 1.0 is exact
            mixed = mix(e.float(), h_in, a_gate, i).to(e.dtype)
            e = torch.where(think.unsqueeze(-1), mixed, e)
            a = torch.where(think.unsqueeze(-1), a_gate, a)
            rec["latents"] = h
        if "top_ids" in self.out:
            top_probs, j = probs.topk(self.out["top_ids"].shape[-1], dim=-1)     # (B, 10)
            rec.update(inputs=e, top_probs=top_probs, top_ids=idx.gather(-1, j) if idx is not None else j)
        rec["token"] = x
        rec["stats"] = torch.stack([a.mean(-1), hidden_ratio(a).mean(-1), token_logprob(scaled, pick),
                                    -(probs * logp).sum(-1), 1.0 / probs.pow(2).sum(-1), think.float(),
                                    self.alive.float()], -1)                     # (B, 7) as STATS
        for name, buf in self.out.items():
            buf.index_copy_(1, self.t, rec[name].unsqueeze(1))
        self.alive.logical_and_(~self.is_eos[x])
        if stops(cfg):
            self.alive.logical_and_(~self.state.line)
        self.mask.index_fill_(1, self.cpos, 1)
        with low_precision(hm.model):        # bf16 LoRA adapters as in Decoder and teacher forcing (captured too)
            out = hm.model(inputs_embeds=model_inputs(e, self.scale).unsqueeze(1), attention_mask=self.mask,
                           position_ids=self.pos,
                           cache=self.cache, use_cache=True)
        self.logits.copy_(out.logits[:, -1])
        self.pos.add_(1)
        self.cpos.add_(1)
        self.t.add_(1)

    def warm_up(self, steps: int) -> int:
        """CUDA: run `steps` eager steps on a side stream (the warm-up a capture needs), then capture one step
        if any remain (a failed capture is kept in capture_error: decoding goes on eagerly).  Returns steps."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(steps):
                self.step()
        torch.cuda.current_stream().wait_stream(side)
        if steps < self.max_new:
            try:
                self.capture()
            except RuntimeError as err:          # capture records, runs nothing: go on eagerly, say why once
                self.capture_error = f"{type(err).__name__}: {err}"
        return steps

    def capture(self) -> None:
        """Capture one step in a CUDA graph (call after warm-up steps; capturing runs nothing).  thread_local:
        another thread's CUDA calls meanwhile (another request decoding eagerly) are not errors."""
        graph = torch.cuda.CUDAGraph()
        if hasattr(graph, "register_generator_state"):
            graph.register_generator_state(self.gen)     # graph-safe RNG for our own generator
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self.step()
        self.graph = graph

    def advance(self, steps: int) -> None:
        """Run `steps` positions: graph replays once captured, eager steps otherwise.  No host sync."""
        for _ in range(steps):
            self.graph.replay() if self.graph is not None else self.step()

