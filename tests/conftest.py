"""Shared fixtures: the real embedded model and the tiny random llama, loaded once per session.

The suite's state goes to one temporary directory per session, never into the checkout's runs/ or
the user's ~/.cache/hrpo: HRPO_RUNS (the app's job.json and runs) and HRPO_CACHE (converted models)
point there, and every subprocess inherits them.  The user's converted embedded model, when present,
is linked in to save a conversion (nothing ever writes into a cached model directory)."""
import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
USER_CACHE = Path(os.environ.get("HRPO_CACHE") or Path.home() / ".cache" / "hrpo")
STATE = Path(tempfile.mkdtemp(prefix="hrpo-tests-"))
atexit.register(shutil.rmtree, STATE, True)
os.environ["HRPO_RUNS"] = str(STATE / "runs")
os.environ["HRPO_CACHE"] = str(STATE / "cache")
(STATE / "cache" / "models").mkdir(parents=True)
if (USER_CACHE / "models" / "smollm2-135m-instruct" / "config.json").is_file():
    (STATE / "cache" / "models" / "smollm2-135m-instruct").symlink_to(USER_CACHE / "models" / "smollm2-135m-instruct")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


def pytest_collection_modifyitems(config, items):
    """Tests marked native_bf16 assert what holds only with native bf16 kernels (avx512_bf16 / amx_bf16: bf16
    matmuls rounded once, so two code paths agree bit for bit); elsewhere bf16 is emulated and they are skipped,
    while their counterparts (fp32, or a bound measured on an AVX2-only CPU) run.  HRPO_CPU_BF16=emulated
    rehearses such a CPU anywhere (.ci/run)."""
    from hrpo.models import cpu_has_native_bf16
    if cpu_has_native_bf16():
        return
    skip = pytest.mark.skip(reason="needs native bf16 kernels (avx512_bf16 or amx_bf16)")
    for item in items:
        if "native_bf16" in item.keywords:
            item.add_marker(skip)


def seeded_load(spec: str):
    """The fresh gate's init draws from the global RNG: seed it, so a session fixture is the same model
    whichever tests ran before it (one test's near-tied sampled token flipped with the order otherwise)."""
    from hrpo.models import load_model
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return load_model(spec, device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def embedded():
    return seeded_load("default")


@pytest.fixture(scope="session")
def tiny():
    return seeded_load("tiny-random")


def run_cli(*args: str, timeout: int = 300):
    """Run `python -m hrpo ...` in a real subprocess; returns CompletedProcess."""
    import subprocess
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def one_thread():
    """Small decodes: one intra-op thread avoids OpenMP spinning on a busy machine (opt in with usefixtures)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def eager_keeps_every_row(monkeypatch):
    """The eager decoder keeps its finished rows, as the static decoder computes every row to the end (dropping
    them changes the fp32 GEMMs' row count and so their rounding)."""
    monkeypatch.setattr("hrpo.rollout.MIN_ROWS", 10**9)


# ------------------------------------------------------------------------------ the app in a real process
def start_app(log_path, **env_extra):
    """`python app.py` on a free loopback port with env_extra; returns (process, url) once the port answers."""
    from bench import app_process as process
    proc, url, _ = process.start_app(env=env_extra, log=log_path)
    return proc, url


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    proc, url = start_app(tmp_path_factory.mktemp("app") / "app.log", HRPO_MODEL="tiny-random")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


LIVE = ("tiny-random", "What is 2 + 3?", 12, 0.5, 50, 0, True, True)


def raw_call(url: str, api: str, data: list) -> str:
    """POST `data` to gradio's HTTP API as JSON (NaN and lone surrogates allowed, as a hostile client may send
    them; gradio_client refuses to), then read the event stream of the call."""
    import json
    import urllib.request
    req = urllib.request.Request(f"{url}gradio_api/call/{api}", data=json.dumps({"data": data}).encode(),
                                 headers={"Content-Type": "application/json"})
    event = json.load(urllib.request.urlopen(req, timeout=30))["event_id"]
    return urllib.request.urlopen(f"{url}gradio_api/call/{api}/{event}", timeout=120).read().decode()


def components(url) -> dict:
    """{elem_id or label: props} of the page's components, from gradio's /config."""
    import json
    import urllib.request
    cfg = json.load(urllib.request.urlopen(url + "config", timeout=30))
    return {c["props"].get("elem_id") or c["props"].get("label"): c["props"] for c in cfg["components"]}


