"""Build .cache/gpu, what scripts/gpu_run.sh needs on a device machine that lacks it (issue 13, part 2).

The device image has torch, accelerate and tokenizers but an older transformers (the project needs the
`cache=` keyword of >= 5.24), no gradio stack, and no network.  This folder (git-ignored, carried by the
device tool; it must stay under ~40 MiB since the checkout itself is ~23 MiB of the 64 MiB limit) holds:
  whl/     cp312 manylinux wheels of the versions in this venv (pip download --no-deps); transformers
           slimmed to the model families used (llama, qwen2, and what auto and peft import), gradio
           without its SSR node server, demo media and ffmpeg wasm (gradio_client needs none of them)
  tokenizer/  the embedded model's tokenizer and config, no weights: the device runs use random weights
           and tiny-random, which only need the tokenizer; gpu_check.py points hrpo.models.embedded_dir
           at it (HRPO_GPU_TOKENIZER), since the pinned 98 MB GGUF does not fit
Run here:  PYTHONPATH=. .venv/bin/python scripts/gpu_pack.py            # -> .cache/gpu, prints its size
"""
import argparse
import importlib.metadata as md
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# what the device image lacks (KINDS.md package list) or has in a version too old, for hrpo + app.py
PACKAGES = ["transformers", "peft", "gradio", "gradio_client", "hf-gradio", "fastapi", "starlette", "uvicorn",
            "pydantic", "pydantic_core", "annotated-types", "typing-inspection", "annotated-doc", "python-multipart",
            "orjson", "safehttpx", "semantic-version", "groovy", "tomlkit", "brotli", "pydub", "plotly",
            "typing_extensions", "opentelemetry-api", "pytz"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64"]
# model families whose modules are imported by auto / llama / qwen2 / peft at import time (found by trying)
KEEP_MODELS = {"auto", "llama", "qwen2", "encoder_decoder", "gemma", "gemma2", "mistral", "gpt2", "bloom"}
DROP = {"gradio": ("gradio/templates/node/", "gradio/media_assets/", "gradio/templates/frontend/static/ffmpeg/")}


def dropped(pkg: str, name: str) -> bool:
    """Entries of a wheel left out to fit the carry limit."""
    if pkg == "transformers" and name.startswith("transformers/models/"):
        part = name.split("/")[2]
        return not (part.endswith(".py") or part in KEEP_MODELS)
    return name.startswith(DROP.get(pkg, ()))


def slim(wheel: Path, pkg: str) -> None:
    """Rewrite the wheel in place without the dropped entries (their RECORD lines go too)."""
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if dropped(pkg, info.filename):
                continue
            data = src.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines()
                data = "\n".join(x for x in lines if not dropped(pkg, x.split(",")[0])).encode() + b"\n"
            dst.writestr(info, data)
    tmp.replace(wheel)


def download(whl: Path) -> None:
    pins = [f"{p}=={md.version(p)}" for p in PACKAGES]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.12", "--implementation", "cp", *[x for p in PLATFORMS for x in ("--platform", p)], "-d", str(whl), *pins]
    subprocess.run(cmd, check=True)
    for pkg in ("transformers", "gradio"):
        for wheel in whl.glob(f"{pkg}-*.whl"):
            slim(wheel, pkg)


def tokenizer_dir(out: Path) -> None:
    from hrpo.embedded import embedded_dir
    out.mkdir(parents=True, exist_ok=True)
    for f in embedded_dir().iterdir():
        if f.is_file() and f.suffix not in (".safetensors", ".bin", ".gguf"):
            shutil.copy2(f, out / f.name)


def size_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / ".cache" / "gpu"))
    ap.add_argument("--no-wheels", action="store_true", help="the tokenizer only")
    args = ap.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    tokenizer_dir(out / "tokenizer")
    if not args.no_wheels:
        download(out / "whl")
    for sub in sorted(out.iterdir()):
        print(f"{sub.name:6s} {size_mib(sub):6.1f} MiB")
    print(f"total  {size_mib(out):6.1f} MiB in {out}")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                           text=True).stdout.split("\0")
    tree = sum((ROOT / f).stat().st_size for f in files if f and (ROOT / f).is_file()) / 2**20
    print(f"the device call sends ~{tree + size_mib(out):.1f} MiB (checkout {tree:.1f} + this); its limit is 64 MiB")


if __name__ == "__main__":
    main()
