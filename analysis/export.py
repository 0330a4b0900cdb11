"""Traces to and from JSON and long-format CSV (strings in, strings out; the caller writes files).

JSON: a list of objects, one per trace, with every Trace field; tensors (latents, inputs, top_ids,
top_probs) as nested lists, null when absent; floats as Python writes them, so values round-trip
exactly.  CSV: one row per step (trace, prompt, prompt_ids, text, answer, has_answer, finish,
hybrid, then the Step fields, eff_vocab = 1/sum(p^2) included); tensors are not in the CSV.
A trace without steps writes one row with index -1.  `traces_from_*` rebuild hrpo.rollout.Trace objects.
export_dir() gives the app's download files a place under one hrpo-trace-* temp directory per process,
removed at exit and on SIGTERM (install_cleanup).
Test: pytest tests/test_analysis_export.py tests/test_reliability_files.py -k trace
"""
import atexit
import dataclasses
import io
import json
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pandas as pd
import torch

from hrpo.rollout import Step, Trace

TENSORS = {"latents": torch.float32, "inputs": torch.float32, "top_ids": torch.long, "top_probs": torch.float32}
STEP_FIELDS = [f.name for f in dataclasses.fields(Step)]
OPTIONAL = {"eff_vocab"}           # step columns that older exports lack (read as 0.0: not recorded)
TRACE_FIELDS = ["trace", "prompt", "prompt_ids", "text", "answer", "has_answer", "finish", "hybrid"]


def trace_to_dict(tr: Trace) -> dict:
    """A JSON-ready dict of one trace."""
    d = {"prompt": tr.prompt, "prompt_ids": list(tr.prompt_ids), "token_ids": list(tr.token_ids),
         "steps": [dataclasses.asdict(s) for s in tr.steps], "text": tr.text, "answer": tr.answer,
         "finish": tr.finish, "hybrid": tr.hybrid}
    for name in TENSORS:
        t = getattr(tr, name)
        d[name] = t.tolist() if t is not None else None
    return d


def trace_from_dict(d: dict) -> Trace:
    """The Trace of one trace_to_dict dict."""
    tensors = {n: torch.tensor(d[n], dtype=dt) if d.get(n) is not None else None for n, dt in TENSORS.items()}
    return Trace(prompt=d["prompt"], prompt_ids=list(d["prompt_ids"]), token_ids=list(d["token_ids"]),
                 steps=[Step(**s) for s in d["steps"]], text=d["text"], answer=d["answer"], finish=d["finish"],
                 hybrid=bool(d["hybrid"]), **tensors)


def traces_to_json(traces) -> str:
    """JSON array of traces, tensors included as lists (UTF-8 text kept as is)."""
    return json.dumps([trace_to_dict(t) for t in traces], ensure_ascii=False)


def traces_from_json(s: str) -> list[Trace]:
    """Traces from traces_to_json's output."""
    data = json.loads(s)
    if not isinstance(data, list):
        raise ValueError("traces JSON must be a list of trace objects")
    return [trace_from_dict(d) for d in data]


def traces_frame(traces) -> pd.DataFrame:
    """The long per-step frame written by traces_to_csv (TRACE_FIELDS + STEP_FIELDS)."""
    rows = []
    for i, tr in enumerate(traces):
        head = [i, tr.prompt, " ".join(map(str, tr.prompt_ids)), tr.text, tr.answer or "", tr.answer is not None,
                tr.finish, tr.hybrid]
        steps = tr.steps or [Step(-1, "", -1, False, 1.0, 0.0, 0.0, 0.0)]
        rows += [head + [getattr(s, f) for f in STEP_FIELDS] for s in steps]
    return pd.DataFrame(rows, columns=TRACE_FIELDS + STEP_FIELDS)


def csv_text(frame: pd.DataFrame) -> str:
    """A frame as CSV with CRLF line ends (RFC 4180), so that every field holding a CR or LF is quoted: with
    pandas' default LF ends a token that is a lone CR is written bare and splits its row when read back."""
    return frame.to_csv(index=False, lineterminator="\r\n")


def traces_to_csv(traces) -> str:
    """Long-format CSV, one row per step (tensors left out)."""
    return csv_text(traces_frame(traces))


def traces_from_csv(s: str) -> list[Trace]:
    """Traces from traces_to_csv's output (latents etc. are None: the CSV has no tensors)."""
    text_cols = {c: str for c in ("prompt", "prompt_ids", "text", "answer", "finish", "token")}
    df = pd.read_csv(io.StringIO(s), dtype=text_cols, keep_default_na=False, na_filter=False)
    missing = set(TRACE_FIELDS + STEP_FIELDS) - set(df.columns) - OPTIONAL
    if missing:
        raise ValueError(f"not a traces CSV: missing column(s) {', '.join(sorted(missing))}")
    traces = []
    for _, g in df.groupby("trace", sort=True):
        head = g.iloc[0]
        steps = [Step(int(r["index"]), r["token"], int(r["token_id"]), _bool(r["thinking"]), float(r["gate_a"]),
                      float(r["hidden_ratio"]), float(r["logprob"]), float(r["entropy"]),
                      float(r.get("eff_vocab", 0.0) or 0.0))
                 for _, r in g.iterrows() if int(r["index"]) >= 0]
        traces.append(Trace(prompt=head["prompt"], prompt_ids=[int(x) for x in head["prompt_ids"].split()],
                            token_ids=[s.token_id for s in steps], steps=steps, text=head["text"],
                            answer=head["answer"] if _bool(head["has_answer"]) else None,
                            finish=head["finish"], hybrid=_bool(head["hybrid"])))
    return traces


TRACE_DIR: list[Path] = []                           # one hrpo-trace-* directory per app process
TRACE_LOCK = threading.Lock()


def remove_trace_dir() -> None:
    """Delete this process's hrpo-trace-* directory (at exit, and on SIGTERM)."""
    for d in TRACE_DIR:
        shutil.rmtree(d, ignore_errors=True)


def install_cleanup() -> bool:
    """Remove the trace directory on SIGTERM too (export_dir registers the atexit hook for a normal exit).

    Python runs no atexit hook when SIGTERM kills it, and Gradio's server (in a thread) installs no
    handler, so an app stopped by `kill`, systemd or a container runtime left /tmp/hrpo-trace-*
    behind.  The SIGTERM handler removes the directory, then hands the signal on: to the
    handler that was there before, or (default) to the default action, so the exit status stays
    "killed by SIGTERM".  Signal handlers can only be set from the main thread: this runs when the
    module is imported (the app imports it at start-up, in its main thread); elsewhere it returns False
    and only atexit applies.  Test: pytest tests/test_reliability_files.py -k trace
    """
    if getattr(install_cleanup, "done", False):
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):
        remove_trace_dir()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:              # SIG_DFL, or None (set outside Python)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)
    install_cleanup.done = True
    return True


def trace_root() -> Path:
    """This process's one hrpo-trace-* temp directory, made on first use (removed at exit and on SIGTERM)."""
    with TRACE_LOCK:                                  # concurrent first exports make one directory
        if not TRACE_DIR:
            TRACE_DIR.append(Path(tempfile.mkdtemp(prefix="hrpo-trace-")))
            atexit.register(remove_trace_dir)
    return TRACE_DIR[0]


def export_dir(keep_s: float = 600.0) -> Path:
    """A fresh sub-directory of this process's one hrpo-trace-* temp directory (removed at exit and on
    SIGTERM, see install_cleanup); exports older than keep_s (long since copied by gradio) are deleted."""
    for old in trace_root().iterdir():
        if old.name == "gradio-cache":
            continue
        try:
            if time.time() - old.stat().st_mtime > keep_s:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:                               # another request removed it first
            pass
    out = trace_root() / uuid.uuid4().hex[:12]
    out.mkdir()
    return out


def private_gradio_cache() -> Path:
    """Point Gradio's file cache at a directory of this process (GRADIO_TEMP_DIR, unless the user set it).

    Gradio copies every file a callback returns (the trace exports) into its cache, /tmp/gradio by default,
    and keeps the copies after the app exits: prompts and traces would outlive the app's own cleanup.  The
    private cache is removed with the exports (at exit, on SIGTERM and on Ctrl-C).  Call it before the
    Blocks are built: each component reads the cache location when it is made."""
    if os.environ.get("GRADIO_TEMP_DIR"):
        return Path(os.environ["GRADIO_TEMP_DIR"])
    cache = trace_root() / "gradio-cache"
    cache.mkdir(exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(cache)
    return cache


install_cleanup()


def write_trace_files(run, out: Path) -> tuple[str, str]:
    """trace.json (the trace file of a hrpo.trace_file.TraceFile, which Live can open again) and trace.csv (one
    row per step) in `out`; returns their paths."""
    from hrpo import trace_file
    (out / "trace.json").write_text(trace_file.dump(run), encoding="utf-8")
    (out / "trace.csv").write_text(traces_to_csv([run.trace]), encoding="utf-8")
    return str(out / "trace.json"), str(out / "trace.csv")


def _bool(v) -> bool:
    return v if isinstance(v, bool) else str(v).strip().lower() in ("true", "1")
