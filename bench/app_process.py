"""The app as a child process: `python app.py` (or any command that ends in app.py's main) on a free loopback
port, returned once the port answers.  For the tests, the benchmarks, the screenshots and the device check.

    proc, url, seconds = start_app(env={"HRPO_MODEL": "tiny-random"}, log=path)
    ...
    stop_app(proc)
Test: pytest tests/test_app.py
"""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(env: dict | None = None, log=None, cmd: list[str] | None = None, port: int | None = None,
              limit_s: float = 180, base_env: dict | None = None) -> tuple[subprocess.Popen, str, float]:
    """Start the app on 127.0.0.1 (`cmd`, default `python app.py`, gets --port and --host appended; with
    port=0 neither is passed, for an app that reads GRADIO_SERVER_PORT from `env`); returns (process, url,
    seconds until it served).  `env` is added to `base_env` (default os.environ), with HF_HUB_OFFLINE=1 and
    the repository on PYTHONPATH.  Raises RuntimeError with the log's tail if the app exits or is not serving
    within limit_s (imports alone take tens of seconds on a busy 2-core machine)."""
    base = os.environ if base_env is None else base_env
    path = os.pathsep.join(filter(None, [str(ROOT), base.get("PYTHONPATH")]))
    env = {**base, "HF_HUB_OFFLINE": "1", "PYTHONPATH": path, **(env or {})}
    if port is None:
        port = free_port()
    args = ["--port", str(port), "--host", "127.0.0.1"] if port else []
    port = port or int(env["GRADIO_SERVER_PORT"])
    log_path = Path(log) if log else None
    out = open(log_path, "w") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([*(cmd or [sys.executable, str(ROOT / "app.py")]), *args], cwd=ROOT, env=env,
                            stdout=out, stderr=subprocess.STDOUT)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}/", time.perf_counter() - t0
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    stop_app(proc)
    tail = log_path.read_text(errors="replace")[-2000:] if log_path and log_path.exists() else ""
    raise RuntimeError(f"the app did not start (exit {proc.returncode}) within {limit_s:.0f} s: {tail}")


def stop_app(proc: subprocess.Popen, wait_s: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not exited within wait_s."""
    proc.terminate()
    try:
        proc.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
