"""Build .cache/gpu: the wheels and tokenizer that gpu/gpu_run.sh installs on a device machine.

The wheel list is derived, not written by hand: starting from requirements.txt (torch left out: the device
has its own CUDA build), every Requires-Dist of every distribution installed in this venv is walked, markers
evaluated for the device (Linux x86_64, CPython 3.12; extras only where a requirement asks for them).  Each
distribution reached is either
  image  the device image has it at a version known to meet every specifier put on it (DEVICE_IMAGE, read
         off KINDS.md), or has it at an unknown version and nothing constrains it, or it is one of the
         few large binaries trusted to the image (TRUST_IMAGE, checked there by --verify); its own
         requirements are the image's business and are not walked;
  pack   everything else, at the version installed here: downloaded as a cp312 manylinux wheel and
         walked further.
So a requirement can only be missed if this venv lacks it, and then plan() fails and says so.

Layout of the pack (git-ignored; the checkout plus the pack must stay under the device's 64 MiB carry):
  whl/        the wheels; transformers slimmed to the model families used (llama, qwen2 and what auto and
              peft import), gradio without its SSR node server, demo media and ffmpeg wasm
  tokenizer/  the embedded model's tokenizer (tokenizer.json gzipped) and config, no weights (the device
              runs use random weights and tiny-random); gpu_check.py points hrpo.embedded.embedded_dir at it
  plan.json   what was packed, what is left to the image, and every requirement behind each

Run here:     .venv/bin/python -m gpu.gpu_pack          # -> .cache/gpu, prints sizes
Rehearsal:    ... gpu_pack.py --python-version 3.11 --glibc 2.36 --out /tmp/pack311   (this machine's tags)
On a device:  python3 -m gpu.gpu_pack --verify    # every requirement met by what is visible there?
Test: pytest tests/test_gpu_pack.py
"""
import argparse
import gzip
import importlib.metadata as md
import json
import shutil
import subprocess
import sys
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name, parse_wheel_filename
except ImportError:                     # --verify where only pip's own copy is there, before the pack's
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[1]
CARRY_LIMIT_MIB = 64
NEVER_PACK = {"torch"}                 # the device's CUDA torch; its own requirements are not walked either
# The device image ('cuda', nvidia-h200), from /work/.library/device/KINDS.md: the package list read on
# 2026-11-17, versions where a session's pip list showed them (2026-11) or a device run reported them
# (torch and huggingface_hub, 2026-12-04).  A name without a version: present, version unknown.
DEVICE_IMAGE_TEXT = """
absl-py aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs build certifi charset-normalizer
chex click cloudpickle cmake colorama contourpy coverage cycler cython etils execnet filelock flatbuffers
fonttools frozenlist fsspec grpcio h11 h5py hf-xet httpcore httpx humanize hypothesis idna imageio iniconfig
jinja2 joblib kiwisolver lazy-loader llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl
ml-dtypes mpmath msgpack multidict mypy-extensions narwhals networkx ninja numba packaging pandas pathspec
patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11
py-cpuinfo pygments pyparsing pyproject-hooks pytest python-dateutil pyyaml regex requests rich scikit-learn
scipy setuptools shellingham simplejson six sortedcontainers statsmodels sympy tabulate threadpoolctl tqdm
typer typing-extensions typing-inspect urllib3 uvloop werkzeug wheel wrapt xxhash yarl zipp
accelerate==1.15.0 huggingface-hub==1.33.0 numpy==2.5.2 safetensors==0.8.0 sentencepiece==0.2.2
tokenizers==0.23.2 torch==2.11.0 transformers==5.17.0 triton==3.6.0
"""
# Constrained requirements on these are left to the image although it does not say their versions: large
# binary wheels (together ~75 MiB, over the carry limit) that are either core libraries a recent image
# carries in a recent release (pandas, scipy, scikit-learn, pillow, sympy) or imported only by code the
# device check never runs (umap's numba and llvmlite; hf-xet: hub downloads, and the device is offline).
# gpu_run.sh runs --verify there first, which checks them.
TRUST_IMAGE = {"pandas", "scipy", "scikit-learn", "numba", "llvmlite", "pillow", "sympy", "hf-xet"}
PLATFORMS = ["manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64"]
# model families whose modules are imported by auto / llama / qwen2 / peft at import time (found by trying)
KEEP_MODELS = {"auto", "llama", "qwen2", "encoder_decoder", "gemma", "gemma2", "mistral", "gpt2", "bloom"}
# left out of wheels to fit the carry limit: the device check talks to the app through gradio_client only, so
# gradio's page bundle (JS, CSS, fonts), SSR node server and demo media stay behind, and plotly's Jupyter
# widget and lab extension (the app's figures go to gradio as JSON); from any wheel, Jupyter's share/ data
DROP = {"gradio": ("gradio/templates/node/", "gradio/media_assets/", "gradio/templates/frontend/assets/",
                   "gradio/templates/frontend/static/"),
        "plotly": ("plotly/package_data/widgetbundle.js", "plotly/labextension/")}


def device_image() -> dict[str, str | None]:
    """{canonical name: version or None (present, version unknown)} of the device image."""
    out = {}
    for word in DEVICE_IMAGE_TEXT.split():
        name, _, version = word.partition("==")
        out[canonicalize_name(name)] = version or None
    return out


def target_env(python_version: str = "3.12") -> dict:
    """Marker environment of the device (Linux x86_64 CPython) at this Python version."""
    return {"python_version": python_version, "python_full_version": f"{python_version}.3", "os_name": "posix",
            "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
            "platform_python_implementation": "CPython", "implementation_name": "cpython",
            "platform_release": "", "platform_version": "", "implementation_version": f"{python_version}.3"}


def root_requirements(path: Path = ROOT / "requirements.txt") -> list[Requirement]:
    """requirements.txt's requirements (comments and options dropped)."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def applies(req: Requirement, env: dict, extras: set[str]) -> bool:
    """Does req apply in env, for a distribution installed with these extras?"""
    return req.marker is None or any(req.marker.evaluate({**env, "extra": e}) for e in {"", *extras})


def requirements_of(name: str, env: dict, extras: set[str]) -> list[Requirement]:
    """Requires-Dist of the installed distribution `name` that apply in env with these extras."""
    return [r for r in map(Requirement, md.requires(name) or []) if applies(r, env, extras)]


def meets(version: str | None, reqs: list[Requirement]) -> bool:
    """Does this version (None: unknown) meet every specifier of reqs (pre-releases allowed)?"""
    return version is not None and all(r.specifier.contains(version, prereleases=True) for r in reqs)


@dataclass
class Plan:
    """pack: name -> version to carry; image: name -> device version relied on (None: unknown);
    needs: name -> [(required by, requirement string)]; missing: requirements this venv cannot provide;
    roots: the requirements walked from."""
    roots: list[Requirement] = field(default_factory=root_requirements)
    pack: dict[str, str] = field(default_factory=dict)
    image: dict[str, str | None] = field(default_factory=dict)
    needs: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    missing: list[str] = field(default_factory=list)

    def provider(self, name: str) -> tuple[str, str | None]:
        """('pack' | 'image', version) of where the device gets `name`."""
        name = canonicalize_name(name)
        return ("pack", self.pack[name]) if name in self.pack else ("image", self.image.get(name))


def to_image(name: str, reqs: list[Requirement], image: dict) -> bool:
    """Leave `name` to the device image, given every requirement put on it so far?"""
    if name in NEVER_PACK:
        return True
    if name not in image:
        return False
    if image[name] is not None:
        return meets(image[name], reqs)
    return name in TRUST_IMAGE or all(not r.specifier for r in reqs)


def plan(python_version: str = "3.12", roots: list[Requirement] | None = None) -> Plan:
    """Walk the requirements from `roots` (requirements.txt) for the device at this Python version."""
    env, image, p = target_env(python_version), device_image(), Plan(roots=roots or root_requirements())
    reqs, extras = defaultdict(list), defaultdict(set)
    todo = [("requirements.txt", r) for r in p.roots if applies(r, env, set())]
    while todo:
        by, req = todo.pop()
        name = canonicalize_name(req.name)
        p.needs[name].append((by, str(req)))
        reqs[name].append(req)
        new_extras = set(req.extras) - extras[name]
        extras[name] |= new_extras
        if to_image(name, reqs[name], image):
            p.image[name] = image.get(name)
            continue
        p.image.pop(name, None)
        if name in p.pack and not new_extras:
            continue
        try:
            p.pack[name] = md.version(name)
        except md.PackageNotFoundError:
            p.missing.append(f"{req} (required by {by}): not installed in this venv")
            continue
        todo += [(name, r) for r in requirements_of(name, env, extras[name])]
    return p


def pin_problems(p: Plan, python_version: str = "3.12") -> list[str]:
    """Every requirement of every packed distribution (and of requirements.txt) checked against where the
    device gets it: the pack's version, the image's known version; unknown image versions only where
    allowed (unconstrained, or TRUST_IMAGE).  Empty when all are met."""
    env, bad = target_env(python_version), list(p.missing)
    sources = [("requirements.txt", r) for r in p.roots if applies(r, env, set())]
    sources += [(n, r) for n in p.pack for r in requirements_of(n, env, set())]
    for by, req in sources:
        name = canonicalize_name(req.name)
        where, version = p.provider(name)
        if name in NEVER_PACK:
            continue
        if name not in p.pack and name not in p.image:
            bad.append(f"{by} needs {req}: neither packed nor in the image")
        elif version is None and req.specifier and name not in TRUST_IMAGE:
            bad.append(f"{by} needs {req}: the image's version is unknown and {name} is not packed")
        elif version is not None and not meets(version, [req]):
            bad.append(f"{by} needs {req}; the device gets {name} {version} from the {where}")
    return bad


def dropped(pkg: str, name: str) -> bool:
    """Entries of a wheel left out to fit the carry limit."""
    if pkg == "transformers" and name.startswith("transformers/models/"):
        part = name.split("/")[2]
        return not (part.endswith(".py") or part in KEEP_MODELS)
    return name.startswith(DROP.get(pkg, ())) or ".data/data/share/jupyter/" in name


def slim(src: Path, dst: Path, pkg: str) -> None:
    """Copy wheel src to dst without the dropped entries (their RECORD lines go too)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if dropped(pkg, info.filename):
                continue
            data = zin.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines()
                data = "\n".join(x for x in lines if not dropped(pkg, x.split(",")[0])).encode() + b"\n"
            zout.writestr(info, data)


def platforms(glibc: str) -> list[str]:
    """pip --platform tags a Linux x86_64 machine with this glibc accepts (pip matches each exactly)."""
    minor = int(glibc.split(".")[1])
    return PLATFORMS + [f"manylinux_2_{n}_x86_64" for n in range(5, minor + 1)]


def wheel_name(path: Path) -> str:
    return canonicalize_name(parse_wheel_filename(path.name)[0])


def download(pins: dict[str, str], cache: Path, python_version: str, glibc: str) -> dict[str, Path]:
    """{name: wheel} for each pin, from `cache` or pip download (binary only, the target's tags)."""
    cache.mkdir(parents=True, exist_ok=True)
    have = {(wheel_name(w), str(parse_wheel_filename(w.name)[1])): w for w in cache.glob("*.whl")}
    want = [f"{n}=={v}" for n, v in sorted(pins.items()) if (n, v) not in have]
    if want:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
               "--python-version", python_version, "--implementation", "cp",
               *[x for tag in platforms(glibc) for x in ("--platform", tag)], "-d", str(cache), *want]
        subprocess.run(cmd, check=True)
        have = {(wheel_name(w), str(parse_wheel_filename(w.name)[1])): w for w in cache.glob("*.whl")}
    lacking = [f"{n}=={v}" for n, v in pins.items() if (n, v) not in have]
    if lacking:
        raise SystemExit(f"no wheel downloaded for {', '.join(lacking)}")
    return {n: have[n, v] for n, v in pins.items()}


def write_wheels(wheels: dict[str, Path], whl: Path) -> None:
    """Copy the wheels into whl/, slimmed where dropped() leaves something out."""
    whl.mkdir(parents=True, exist_ok=True)
    for name, src in wheels.items():
        with zipfile.ZipFile(src) as z:
            slimmed = any(dropped(name, n) for n in z.namelist())
        slim(src, whl / src.name, name) if slimmed else shutil.copy2(src, whl / src.name)


def tokenizer_dir(out: Path) -> None:
    """The embedded model's tokenizer and config files, no weights; tokenizer.json gzipped (3.4 -> 0.8 MiB):
    gpu_check.py unpacks it (tokenizer_path)."""
    from hrpo.embedded import embedded_dir
    out.mkdir(parents=True, exist_ok=True)
    for f in embedded_dir().iterdir():
        if f.is_file() and f.suffix not in (".safetensors", ".bin", ".gguf"):
            if f.name == "tokenizer.json":
                with f.open("rb") as src, gzip.open(out / "tokenizer.json.gz", "wb") as dst:
                    shutil.copyfileobj(src, dst)
            else:
                shutil.copy2(f, out / f.name)


def size_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def checkout_mib() -> float:
    """What a device call sends of the checkout: tracked and untracked-not-ignored files."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                           text=True).stdout.split("\0")
    return sum((ROOT / f).stat().st_size for f in files if f and (ROOT / f).is_file()) / 2**20


def build(out: Path, python_version: str = "3.12", glibc: str = "2.39", cache: Path | None = None,
          wheels: bool = True) -> Plan:
    """Write the pack to `out` (replacing it); returns its plan.  Raises SystemExit on a missing requirement."""
    p = plan(python_version)
    problems = pin_problems(p, python_version)
    if problems:
        raise SystemExit("the pack would not meet these requirements:\n  " + "\n  ".join(problems))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    tokenizer_dir(out / "tokenizer")
    if wheels:
        cache = cache or ROOT / ".cache" / "wheels" / f"cp{python_version.replace('.', '')}"
        write_wheels(download(p.pack, cache, python_version, glibc), out / "whl")
    (out / "plan.json").write_text(json.dumps({"python_version": python_version, "pack": p.pack, "image": p.image,
                                               "needs": p.needs}, indent=1, sort_keys=True))
    return p


def verify(pack: Path | None = None) -> list[str]:
    """On the machine that runs the check: walk requirements.txt through the distributions visible to this
    interpreter (markers for it; torch's own requirements not walked) and list every requirement that is
    not met, and every packed wheel whose version is not the one visible.  Empty when all is well."""
    env, bad, seen = {}, [], set()
    todo = [("requirements.txt", r) for r in root_requirements() if applies(r, env, set())]
    while todo:
        by, req = todo.pop()
        name = canonicalize_name(req.name)
        try:
            version = md.version(name)
        except md.PackageNotFoundError:
            bad.append(f"{by} needs {req}: not installed")
            continue
        if name not in NEVER_PACK and not req.specifier.contains(version, prereleases=True):
            bad.append(f"{by} needs {req}: {name} {version} is visible")
        if (name, frozenset(req.extras)) in seen or name in NEVER_PACK:
            continue
        seen.add((name, frozenset(req.extras)))
        todo += [(name, r) for r in requirements_of(name, env, set(req.extras))]
    for wheel in sorted((pack / "whl").glob("*.whl")) if pack else []:
        name, version = wheel_name(wheel), str(parse_wheel_filename(wheel.name)[1])
        try:
            if md.version(name) != version:
                bad.append(f"packed {name} {version}, but {md.version(name)} is the one visible")
        except md.PackageNotFoundError:
            bad.append(f"packed {name} {version} is not visible (not installed?)")
    return bad


def installed_closure(names: set[str], exclude: set[str]) -> list[md.Distribution]:
    """The installed distributions `names` and everything they require here (markers for this interpreter),
    minus `exclude`; names not installed here are skipped."""
    todo, found = [n for n in names if n not in exclude], {}
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found or name in exclude:
            continue
        try:
            found[name] = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        todo += [r.name for r in requirements_of(name, {}, set())]
    return list(found.values())


def stand_in(dest: Path, exclude: set[str]) -> Path:
    """This machine's stand-in for the device's python3: a clean venv at `dest` whose site-packages link to
    this venv's copies of the device image's distributions and of what they require, minus `exclude` (the
    packed names, which must then come from the pack).  Returns its python.  CPU rehearsal only."""
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    site = next((dest / "lib").glob("python3*/site-packages"))
    for dist in installed_closure(set(device_image()), {canonicalize_name(n) for n in exclude}):
        base = Path(dist.locate_file(""))
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] not in ("..", "__pycache__")}:
            link = site / top
            if (base / top).exists() and not link.exists():
                link.symlink_to(base / top)
    return dest / "bin" / "python"


def report(p: Plan, out: Path) -> None:
    for name in sorted(p.pack):
        print(f"pack   {name} {p.pack[name]}")
    for name in sorted(p.image):
        print(f"image  {name} {p.image[name] or '(version unknown)'}")
    for sub in sorted(x for x in out.iterdir() if x.is_dir()):
        print(f"{sub.name:10s} {size_mib(sub):6.1f} MiB")
    tree, pack = checkout_mib(), size_mib(out)
    print(f"pack {pack:.1f} MiB in {out}; a device call sends ~{tree + pack:.1f} MiB (checkout {tree:.1f} + pack), "
          f"limit {CARRY_LIMIT_MIB} MiB")
    if tree + pack > CARRY_LIMIT_MIB:
        raise SystemExit("over the device's carry limit")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / ".cache" / "gpu"))
    ap.add_argument("--python-version", default="3.12", help="the device's Python (3.12)")
    ap.add_argument("--glibc", default="2.39", help="the device's glibc, for manylinux tags (Ubuntu 24.04: 2.39)")
    ap.add_argument("--no-wheels", action="store_true", help="tokenizer and plan only")
    ap.add_argument("--list", action="store_true", help="print the plan and any unmet pin; build nothing")
    ap.add_argument("--verify", action="store_true", help="check the requirements visible to this interpreter")
    ap.add_argument("--pack", default=None, help="--verify: also check that this pack's wheels are the ones visible")
    ap.add_argument("--stand-in", default=None, metavar="DIR",
                    help="make DIR a clean venv standing in for the device's python3 (this venv's copies of the "
                         "image's packages, minus the pack's), for CPU rehearsals; prints its python")
    args = ap.parse_args(argv)
    if args.verify:
        bad = verify(Path(args.pack) if args.pack else None)
        print("pack check: every requirement met" if not bad else "pack check: UNMET\n  " + "\n  ".join(bad))
        return 1 if bad else 0
    if args.stand_in:
        print(stand_in(Path(args.stand_in), set(plan(args.python_version).pack)))
        return 0
    if args.list:
        p = plan(args.python_version)
        print(json.dumps({"pack": p.pack, "image": p.image, "unmet": pin_problems(p, args.python_version)}, indent=1))
        return 0
    out = Path(args.out)
    p = build(out, args.python_version, args.glibc, wheels=not args.no_wheels)
    report(p, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
