"""Shared traces: the store behind Live's Share links (`?trace=<key>`).

A shared trace is its trace file (hrpo/trace_file.py) saved as <store>/<key>.json, key = the first 32 hex digits
of the SHA-256 of its text: content-addressed, so sharing the same trace twice gives one file and one link, and
a key (128 bits) cannot be guessed from another.  Only keys of that form are looked up, so a link cannot name a
file outside the store.  Bounded: each file at most trace_file.MAX_BYTES, at most MAX_KEPT files (the least
recently shared or opened go first).  The store is $HRPO_TRACE_STORE, else <runs>/.shared-traces (Host).
Test: pytest tests/test_trace_file.py -k store
"""
import hashlib
import os
import re
import threading
from pathlib import Path

from hrpo import trace_file

MAX_KEPT = 500
KEY = re.compile(r"[0-9a-f]{32}")


class TraceStore:
    def __init__(self, root, max_kept: int = MAX_KEPT):
        self.root, self.max_kept, self.lock = Path(root), max_kept, threading.Lock()

    def put(self, text: str) -> str:
        """Keep a trace file's text; returns its key."""
        data = text.encode("utf-8")
        if len(data) > trace_file.MAX_BYTES:
            raise ValueError(f"this trace is larger than {trace_file.MAX_BYTES // 2**20} MB and cannot be shared")
        key = hashlib.sha256(data).hexdigest()[:32]
        path = self.root / f"{key}.json"
        with self.lock:
            self.root.mkdir(parents=True, exist_ok=True)
            if path.is_file():
                path.touch()                                  # shared again: kept longer
            else:
                tmp = path.with_name(f".{key}.{os.getpid()}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, path)
            self.prune()
        return key

    def get(self, key) -> trace_file.TraceFile:
        """The shared trace of a key; ValueError (one line) for a malformed or unknown key."""
        if not isinstance(key, str) or not KEY.fullmatch(key):
            raise ValueError("this link names no shared trace (a trace key is 32 hexadecimal digits)")
        path = self.root / f"{key}.json"
        if not path.is_file():
            raise ValueError("this shared trace is no longer kept here (the store keeps the latest "
                             f"{self.max_kept}); ask for the trace file itself")
        run = trace_file.read(path)
        path.touch()
        return run

    def prune(self) -> None:
        files = sorted(self.root.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in files[:max(0, len(files) - self.max_kept)]:
            old.unlink(missing_ok=True)
