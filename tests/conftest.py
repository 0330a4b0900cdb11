"""Shared fixtures: the real embedded model and the tiny random llama, loaded once per session."""
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def embedded():
    from hrpo.models import load_model
    return load_model("default", device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def tiny():
    from hrpo.models import load_model
    return load_model("tiny-random", device="cpu", dtype="float32")


def run_cli(*args: str, timeout: int = 300):
    """Run `python -m hrpo ...` in a real subprocess; returns CompletedProcess."""
    import subprocess
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)
