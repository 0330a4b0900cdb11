"""Background training jobs for the app: one at a time, surviving closed browser tabs.

A job is `python -m hrpo train ... --out runs/<name>` in its own process (a new session, so the
app's requests never block it).  Its state lives on disk: the run directory's train_config.json,
metrics.jsonl and checkpoints/, plus job.json (pid, command, start time); any app process (or a
restarted app) reads the same status.  Stop sends SIGTERM: the trainer finishes its current step,
writes a checkpoint and exits; resume starts the same command with --resume.
The job process is identified by pid *and* its start time and command line (psutil), so a stale
job.json (after a reboot, or with the pid reused) reads as "not running" and is never signalled.
Starting is serialised by a lock on <runs>/.job.lock: two concurrent starts never make two trainers.
Test: pytest tests/test_jobs.py tests/test_reliability_jobs.py
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from hrpo.config import TrainConfig
from hrpo.rundir import has_run, read_rows

ROOT = Path(__file__).resolve().parents[1]
# A job that ended before its last step failed when its log's tail shows a traceback, its last line
# ("RuntimeError: ..."; a long traceback's header may be out of the tail), the CLI's "error: ..." or a kill.
FAILURE = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception|Interrupt)\b|^error: |^Killed",
                     re.MULTILINE)


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


START_SLACK_S = 30.0


def job_process(st: dict | None):
    """The psutil.Process of a job record when that very process still runs, else None.

    It must have the recorded pid and command line, and a start time within START_SLACK_S of the record's;
    anything else holding the pid now (a reboot, pid reuse) is not the job.  The slack is wide because a start
    time in epoch seconds moves with the system clock: psutil adds /proc/stat's btime, which an NTP slew or
    step changes while the job runs, by a second or more."""
    import psutil
    if not st or not st.get("pid") or not pid_alive(st["pid"]):
        return None
    try:
        proc = psutil.Process(st["pid"])
        same = abs(proc.create_time() - st.get("created", -1.0)) < START_SLACK_S and proc.cmdline() == st.get("cmd")
        return proc if same and proc.status() != psutil.STATUS_ZOMBIE else None
    except psutil.Error:
        return None


def runs_dir() -> Path:
    """$HRPO_RUNS, else runs/ in the repository (the tests point HRPO_RUNS at a temporary directory)."""
    return Path(os.environ.get("HRPO_RUNS") or ROOT / "runs")


class JobManager:
    """Start, stop, resume and report the single training job under `runs_dir`."""

    def __init__(self, runs=None):
        self.runs_dir = Path(runs) if runs is not None else runs_dir()
        self.state_file = self.runs_dir / "job.json"

    STATE_FIELDS = {"pid": int, "out": str, "steps": int, "mode": str, "model": str, "task": str, "cmd": list}
    OPTIONAL_FIELDS = {"created": (int, float), "started": (int, float)}

    def _state(self) -> dict | None:
        """The last job's record, or None when there is none or job.json is not a record of ours (unreadable,
        another JSON shape: it then reads as no job, and the next start replaces it)."""
        if not self.state_file.is_file():
            return None
        try:
            st = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        ok = isinstance(st, dict) and all(isinstance(st.get(k), t) and not isinstance(st.get(k), bool)
                                          for k, t in self.STATE_FIELDS.items()) and \
            all(isinstance(st[k], t) for k, t in self.OPTIONAL_FIELDS.items() if k in st)
        return st if ok else None

    def running(self) -> bool:
        return job_process(self._state()) is not None

    def start(self, cfg: TrainConfig, resume: bool = False) -> dict:
        import fcntl
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        with open(self.runs_dir / ".job.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)          # check-and-start is one step across threads and processes
            return self._start(cfg, resume)

    def _start(self, cfg: TrainConfig, resume: bool) -> dict:
        import psutil
        if self.running():
            raise RuntimeError("a training job is already running; stop it first")
        out = Path(cfg.out)
        if not resume and has_run(out):
            raise RuntimeError(f"{out.name} already holds a run; resume it or pick another run name")
        out.mkdir(parents=True, exist_ok=True)
        conf = out / "job_config.json"
        conf.write_text(json.dumps(cfg.to_dict(), indent=2), encoding="utf-8")
        cmd = [sys.executable, "-m", "hrpo", "train", "--config", str(conf)] + (["--resume"] if resume else [])
        log = open(out / "train.log", "a", encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        created = -1.0                                # stays -1 if it already exited: recorded as not running
        deadline = time.time() + 15                   # until the child has exec'd (before that its cmdline is ours)
        while time.time() < deadline:
            try:
                child = psutil.Process(proc.pid)
                created = child.create_time()
                if child.cmdline() == cmd:
                    break
            except psutil.Error:
                break
            time.sleep(0.05)
        state = {"pid": proc.pid, "created": created, "out": str(out), "steps": cfg.steps, "mode": cfg.mode,
                 "model": cfg.model, "task": cfg.task, "started": time.time(), "cmd": cmd}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.state_file)
        return state

    def stop(self) -> bool:
        """Ask the job to checkpoint and exit; True when a running job was signalled."""
        proc = job_process(self._state())
        if proc is None:
            return False
        proc.send_signal(signal.SIGTERM)
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
        metrics = read_rows(Path(st["out"]) / "metrics.jsonl")
        step = metrics[-1]["step"] if metrics else 0
        alive = job_process(st) is not None
        log = Path(st["out"]) / "train.log"
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.is_file() else ""
        if alive:
            state = "running"
        elif step >= st["steps"]:
            state = "finished"
        elif FAILURE.search(tail):
            state = "failed"
        else:
            state = "stopped"
        recent = [m["step_seconds"] for m in metrics[-10:] if isinstance(m.get("step_seconds"), (int, float))]
        eta = (st["steps"] - step) * sum(recent) / len(recent) if alive and recent else None
        return {"state": state, "step": step, "steps": st["steps"], "eta_s": eta, "out": st["out"],
                "mode": st["mode"], "model": st["model"], "task": st["task"], "metrics": metrics, "log_tail": tail}
