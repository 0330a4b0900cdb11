"""Background training jobs for the app: one at a time, surviving closed browser tabs.

A job is `python -m hrpo train ... --out runs/<name>` in its own process (a new session, so the
app's requests never block it).  Its state lives on disk: the run directory's train_config.json,
metrics.jsonl and checkpoints/, plus job.json (pid, command, start time); any app process (or a
restarted app) reads the same status.  Stop sends SIGTERM: the trainer finishes its current step,
writes a checkpoint and exits; resume starts the same command with --resume.
Test: pytest tests/test_jobs.py
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def read_metrics(run_dir) -> list[dict]:
    """Every complete line of <run>/metrics.jsonl (a line being written is skipped)."""
    path = Path(run_dir) / "metrics.jsonl"
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:   # a zombie child counts as finished
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


class JobManager:
    """Start, stop, resume and report the single training job under `runs_dir`."""

    def __init__(self, runs_dir="runs"):
        self.runs_dir = Path(runs_dir)
        self.state_file = self.runs_dir / "job.json"

    def _state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        st = self._state()
        return bool(st) and pid_alive(st.get("pid"))

    def start(self, cfg: TrainConfig, resume: bool = False) -> dict:
        if self.running():
            raise RuntimeError("a training job is already running; stop it first")
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        out = Path(cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        conf = out / "job_config.json"
        conf.write_text(json.dumps(cfg.to_dict(), indent=2), encoding="utf-8")
        cmd = [sys.executable, "-m", "hrpo", "train", "--config", str(conf)] + (["--resume"] if resume else [])
        log = open(out / "train.log", "a", encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        state = {"pid": proc.pid, "out": str(out), "steps": cfg.steps, "mode": cfg.mode, "model": cfg.model,
                 "task": cfg.task, "started": time.time(), "cmd": cmd}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.state_file)
        return state

    def stop(self) -> bool:
        """Ask the job to checkpoint and exit; True when a running job was signalled."""
        st = self._state()
        if not st or not pid_alive(st.get("pid")):
            return False
        os.kill(st["pid"], signal.SIGTERM)
        return True

    def resume(self) -> dict:
        st = self._state()
        if not st:
            raise RuntimeError("no earlier training job to resume")
        cfg = TrainConfig.from_json(str(Path(st["out"]) / "job_config.json"))
        return self.start(cfg, resume=True)

    def status(self) -> dict:
        """{state, step, steps, eta_s, out, metrics, log_tail}; state in idle|running|finished|stopped|failed."""
        st = self._state()
        if not st:
            return {"state": "idle", "step": 0, "steps": 0, "eta_s": None, "out": None, "metrics": [], "log_tail": ""}
        metrics = read_metrics(st["out"])
        step = metrics[-1]["step"] if metrics else 0
        alive = pid_alive(st.get("pid"))
        log = Path(st["out"]) / "train.log"
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.is_file() else ""
        if alive:
            state = "running"
        elif step >= st["steps"]:
            state = "finished"
        elif "error:" in tail or "Traceback" in tail:
            state = "failed"
        else:
            state = "stopped"
        recent = [m["step_seconds"] for m in metrics[-10:]]
        eta = (st["steps"] - step) * sum(recent) / len(recent) if alive and recent else None
        return {"state": state, "step": step, "steps": st["steps"], "eta_s": eta, "out": st["out"],
                "mode": st["mode"], "model": st["model"], "task": st["task"], "metrics": metrics, "log_tail": tail}
