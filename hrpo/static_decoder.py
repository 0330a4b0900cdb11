"""Static-cache hybrid decoding whose whole step can be captured in one CUDA graph, and `make_decoder`, the one
place that chooses between it and the eager rollout.Decoder.

Same method, API and records as hrpo.rollout.Decoder (docs/DESIGN.md section 1, "Hybrid rollout"):
    StaticDecoder(hm, prompts, cfg, raw=False, capture=None, keep_latents=False, keep_states=False, force_a=None,
                  scale_h=None, chunk=None)
    .steps()  yields [(row, Step)] after each position for the rows still running; .run() -> list[Trace]
Everything a step needs lives in preallocated device buffers (hrpo/static_engine.py), so one step is one
CUDA-graph replay.  On CUDA the first steps run eagerly on a side stream, then one step is captured and
replayed; anywhere else the very same step runs eagerly, nothing captured.

Streaming without a sync per step: the device runs a chunk of steps, then the host copies that chunk's
records back (one sync) and yields them one position at a time: a caller receives every step in order, a
chunk's steps in quick succession.  Chunks grow 1, 1, 2, 4, ... up to CHUNK (8) on CUDA, so the first
tokens come at once and later a one-row Live request sees a burst every 8 steps; on CUDA the next chunk is
started before a chunk's events are handed out, so the device decodes while the host and the caller work.
On the CPU a chunk is one step (reading back costs nothing there).  No chunk is started once every row has
finished (EOS), so at most CHUNK - 1 steps are computed past the last EOS and discarded.

With capture the prompt width is rounded up to BUCKET columns of cache capacity (the prompts still sit at
columns [0, P), as in the eager cache and teacher forcing) and the captured engine is cached by shape (model,
rows, bucket, config; not the seed, the prompt, the forced gate values or latent scales, which are loaded into
buffers), so later requests of that shape replay the same graph: the Live tab's one-row requests reuse theirs.
At most MAX_ENGINES are kept, all of one model; an engine busy with another request's decode is not shared:
that request decodes on a fresh, uncaptured engine.

make_decoder: StaticDecoder on CUDA (static_wanted; HRPO_STATIC_DECODE=off|on|auto overrides), the eager
Decoder elsewhere and for what the static one cannot run (a model that is not a HybridModel, sliding-window
attention).  force_a and scale_h must be pure functions of the step: the static decoder reads them for every
step up front.
Test: pytest tests/test_static_decoder.py tests/test_static_stream.py (CPU, eager); gpu/gpu_check.py (the graph).
"""
import collections
import math
import os
import threading
import time
import warnings
from typing import Iterator

import torch

from .config import RolloutConfig
from .models import HybridModel
from .rollout import Decoder, ForceA, ScaleH, Step, Trace, check_prompt_ids, decoding_config, finish_trace, left_pad
from .static_engine import STATS, Engine, static_supported
from .stopping import stops

_Engine = Engine         # the name gpu/gpu_check.py patches
CHUNK = 8                # steps between host reads on CUDA
WARMUP = 3               # eager steps on a side stream before capture
BUCKET = 32              # captured graphs are reused across prompt lengths rounded up to this
MAX_ENGINES = 4          # captured engines kept (CUDA only), all of one model
_ENGINES: collections.OrderedDict = collections.OrderedDict()   # shape key -> Engine, least recently used first
_ENGINES_LOCK = threading.Lock()
FLOAT_KEPT = ("latents", "inputs")                               # kept as float32 on the CPU, as Decoder keeps them


class StaticDecoder:
    """Batched hybrid decode on a static cache; `steps()` and `run()` as rollout.Decoder's."""

    def __init__(self, hm: HybridModel, prompts: list[str] | list[list[int]], cfg: RolloutConfig | None = None,
                 raw: bool = False, capture: bool | None = None, keep_latents: bool = False,
                 keep_states: bool = False, force_a: ForceA | None = None, scale_h: ScaleH | None = None,
                 chunk: int | None = None):
        if not prompts:
            raise ValueError("no prompts to decode")
        if not static_supported(hm):
            raise ValueError("the static decoder needs full attention in every layer; use rollout.Decoder")
        self.hm, self.cfg = hm, decoding_config(hm, cfg or RolloutConfig())
        self.force_a, self.scale_h = force_a, scale_h
        self.keep_latents, self.keep_states = keep_latents or keep_states, keep_states
        self.capture = hm.device.type == "cuda" if capture is None else capture
        if self.capture and hm.device.type != "cuda":
            raise ValueError("CUDA-graph capture needs a CUDA device")
        self.chunk = chunk or (CHUNK if hm.device.type == "cuda" else 1)
        self.ahead = hm.device.type == "cuda"        # start the next chunk before handing this one out
        ids = [p if isinstance(p, list) else hm.encode(p, raw=raw) for p in prompts]
        width = max(map(len, ids))
        self.width = math.ceil(width / BUCKET) * BUCKET if self.capture else width
        check_prompt_ids(hm, ids, self.cfg.max_new_tokens, self.width)
        self.traces = [Trace(prompt=hm.tokenizer.decode(i), prompt_ids=i, hybrid=self.cfg.hybrid) for i in ids]
        self.generated, self.seconds, self.captured, self.capture_error = 0, 0.0, False, None

    def _engine(self) -> tuple[Engine, bool]:
        """(engine, shared): the cached engine of this shape, locked for this decode (CUDA with capture), or a
        fresh one that nobody else sees (not captured)."""
        make = lambda: Engine(self.hm, len(self.traces), self.width, self.cfg, self.keep_latents,  # noqa: E731
                              self.keep_states)
        if not self.capture:
            return make(), False
        # id(hm) too: a dataclasses.replace'd HybridModel (other eos ids or pieces) needs its own tables
        cfg, model = self.cfg, (id(self.hm), id(self.hm.model), id(self.hm.gate))
        key = (*model, len(self.traces), self.width, cfg.max_new_tokens, cfg.top_k, cfg.temperature, cfg.greedy,
               cfg.hybrid, cfg.stop, self.keep_latents, self.keep_states)
        with _ENGINES_LOCK:
            if key not in _ENGINES:
                for old in [k for k in _ENGINES if k[:3] != model]:    # another model's graphs: let them go
                    del _ENGINES[old]
                _ENGINES[key] = make()
                while len(_ENGINES) > MAX_ENGINES:
                    _ENGINES.popitem(last=False)
            _ENGINES.move_to_end(key)
            eng = _ENGINES[key]
            if eng.lock.acquire(blocking=False):
                return eng, True
        return make(), False                     # busy with another request: decode this one on a fresh engine

    @torch.no_grad()
    def steps(self) -> Iterator[list[tuple[int, Step]]]:
        """Decode; after each position yield [(row, Step)] for the rows still running (read back in chunks).
        On CUDA the next chunk is started before this one's events are handed out, so the device decodes while
        the host (and the caller, between yields) works; it is started only while a row is still running."""
        hm, dev, max_new = self.hm, self.hm.device, self.cfg.max_new_tokens
        start = time.perf_counter()
        ids, mask = left_pad([t.prompt_ids for t in self.traces], hm.pad_id)
        force = [self.force_a(t) if self.force_a else None for t in range(max_new)]
        scale = [self.scale_h(t) if self.scale_h else None for t in range(max_new)]
        eng, shared = self._engine()
        kept = {name: [[] for _ in self.traces] for name in ("latents", "inputs", "top_ids", "top_probs")
                if name in eng.out}
        try:
            eng.load(ids.to(dev), mask.to(dev), force, self.cfg.seed, scale)
            read, done = 0, self._launch(eng, 0, shared)
            while read < done:
                out = {name: buf[:, read:done].to("cpu", copy=True) for name, buf in eng.out.items()}  # one sync
                first, read = read, done
                more = bool(eng.alive.any()) and done < max_new        # after these steps (synced above)
                if more and self.ahead:
                    done = self._launch(eng, done, shared)
                yield from self._events(out, first, kept)
                if more and not self.ahead:
                    done = self._launch(eng, done, shared)
            self.captured, self.capture_error = eng.graph is not None, eng.capture_error
            answered = (eng.state.line & stops(self.cfg)).tolist()
        finally:
            if shared:
                if dev.type == "cuda":
                    torch.cuda.current_stream(dev).synchronize()     # an abandoned stream's last chunk
                eng.lock.release()
        self.seconds = time.perf_counter() - start
        for r, tr in enumerate(self.traces):
            finish_trace(hm, tr, answered[r])
            for name, per_row in kept.items():
                if per_row[r]:
                    kept_r = torch.cat(per_row[r])                               # (T, ...)
                    setattr(tr, name, kept_r.float() if name in FLOAT_KEPT else kept_r)

    def _launch(self, eng: Engine, done: int, shared: bool) -> int:
        """Start the chunk of steps after `done` (on a shared engine not yet captured: the warm-up steps, then
        the capture); returns the number of steps started.  Chunks grow 1, 1, 2, 4, ... up to self.chunk."""
        max_new = self.cfg.max_new_tokens
        if shared and eng.graph is None and eng.capture_error is None:
            steps = eng.warm_up(min(WARMUP, max_new - done))
            if eng.capture_error:
                warnings.warn(f"CUDA-graph capture failed, decoding eagerly: {eng.capture_error}")
            return done + steps
        n = min(self.chunk, max(1, done), max_new - done)
        eng.advance(n)
        return done + n

    def _events(self, out: dict, first: int, kept: dict):
        """Yield the events of the records `out` (steps first, first + 1, ...) one position at a time, appending
        them to the traces and the kept tensors."""
        tokens, stats = out["token"].tolist(), out["stats"].tolist()             # (B, n), (B, n, 7)
        alive = STATS.index("alive")
        for r in range(len(self.traces)):       # a row's alive steps are a prefix: keep its tensors per chunk
            m = sum(s[alive] > 0 for s in stats[r])
            for name in kept:
                if m:
                    kept[name][r].append(out[name][r, :m])
        for j in range(len(tokens[0])):
            events = []
            for r, tr in enumerate(self.traces):
                gate_a, hr, lp, entropy, eff_vocab, thinking, on = stats[r][j]
                if not on:
                    continue
                x = tokens[r][j]
                st = Step(first + j, self.hm.piece(x), x, bool(thinking), gate_a, hr, lp, entropy, eff_vocab)
                tr.steps.append(st)
                tr.token_ids.append(x)
                events.append((r, st))
            if events:
                self.generated += len(events)
                yield events

    def run(self) -> list[Trace]:
        for _ in self.steps():
            pass
        return self.traces

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


def make_decoder(hm, prompts, cfg: RolloutConfig, keep_latents: bool = False, keep_states: bool = False,
                 force_a: ForceA | None = None, scale_h: ScaleH | None = None,
                 raw: bool = False) -> "StaticDecoder | Decoder":
    """The CUDA-graph StaticDecoder on a GPU, the eager Decoder elsewhere: the same records and traces (the
    rule of static_wanted; HRPO_STATIC_DECODE overrides it).  A model that is not a HybridModel, or that
    static_supported refuses, decodes eagerly.  force_a / scale_h: the gate forced / the latent scaled per step
    (counterfactual replays).  Used by training rollouts, evaluation, Live, Compare, replays and the latent map."""
    kw = dict(raw=raw, keep_latents=keep_latents, keep_states=keep_states, force_a=force_a, scale_h=scale_h)
    if isinstance(hm, HybridModel) and static_wanted(hm.device) and static_supported(hm):
        return StaticDecoder(hm, prompts, cfg, **kw)
    return Decoder(hm, prompts, cfg, **kw)
