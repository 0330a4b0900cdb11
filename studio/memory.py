"""Bounding the app's resident memory under concurrent requests (glibc malloc).

What grows (the app's RSS, burst after burst of concurrent generations) is free heap memory that glibc
keeps, not Python objects.  Gradio runs each request in a worker thread, and glibc
gives threads that contend for the allocator an arena of their own (up to 8 per core); every decode
step allocates and frees many tensors (logits, top-k, hidden states, KV-cache growth) and the freed
memory stays in the arena that served it.  As threads and arenas change from burst to burst, RSS
ratchets up; malloc_trim gives the free memory back.

bound_memory() is the start-up call for the app: it caps the number of arenas (mallopt M_ARENA_MAX,
like MALLOC_ARENA_MAX=2 in the environment but for arenas made after the call, so call it before the
first request) and starts a daemon thread that hands free heap memory back to the OS (malloc_trim) once
the process has gone quiet: every `check_every_s` seconds it looks at the CPU time the process used in
that period, and trims when that was under QUIET_CPU of one core, once per quiet spell.  Not while requests
decode: every page given back is faulted in again by their next steps, which slows them; between bursts
it costs nobody.  Both are no-ops off glibc (it returns False).

freeze_long_lived() is the other start-up call, for latency: Python's cyclic GC scans every tracked object
on a full (generation-2) collection, and the app's start-up heap (imports, the UI, a loaded model: several
hundred thousand objects) makes each such pass a pause in the middle of a request.  Freezing what is alive
after start-up and after the first model load takes it out of those scans for good (reference counting
still frees it; only cycles among frozen objects would stay).
Measure: python -m bench.app_memory --variant plain,bound; python -m bench.bench_live.
Test: pytest tests/test_reliability_files.py -k "memory or quiet" tests/test_hosting.py -k freeze
"""
import ctypes
import ctypes.util
import gc
import os
import threading
import time

M_ARENA_MAX = -8                                     # glibc's mallopt parameter numbers (malloc.h)
QUIET_CPU = 0.1                  # a process using less than this share of one core is quiet (docs/PERFORMANCE.md)

_TRIMMER: list[threading.Thread] = []


def glibc():
    """The C library when it is glibc (has mallopt and malloc_trim), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim                  # noqa: B018 (AttributeError off glibc)
        return libc
    except (OSError, AttributeError):
        return None


def trim() -> bool:
    """Return free heap memory of every arena to the OS now; True when something was released."""
    libc = glibc()
    return bool(libc and libc.malloc_trim(0))


def freeze_long_lived() -> int:
    """Collect, then move every object alive now to the GC's permanent generation; returns how many are
    frozen in all.  For start-up (and once a preloaded model is in): later full collections skip them."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def trim_when_quiet(trim, check_every_s: float, stop: threading.Event, cpu=time.process_time) -> None:
    """Every check_every_s: call trim() if the process used less than QUIET_CPU x check_every_s CPU seconds
    since the last check and has not trimmed since it was last busy.  Runs until `stop` is set."""
    last, trimmed = cpu(), False
    while not stop.wait(check_every_s):
        now = cpu()
        quiet = now - last < QUIET_CPU * check_every_s
        if quiet and not trimmed:
            trim()
        trimmed, last = quiet, now


def bound_memory(arenas: int = 2, check_every_s: float = 5.0) -> bool:
    """Cap glibc's malloc arenas at `arenas` and trim free memory when the process goes quiet (checked every
    `check_every_s` s; 0: never trim).

    Call once at start-up, before request threads allocate; later calls change nothing.  Returns
    False where the C library is not glibc, or HRPO_BOUND_MEMORY=0 (nothing done; for comparisons)."""
    libc = glibc()
    if libc is None or os.environ.get("HRPO_BOUND_MEMORY") == "0":
        return False
    if _TRIMMER:
        return True
    libc.mallopt(M_ARENA_MAX, int(arenas))
    if check_every_s > 0:
        thread = threading.Thread(target=trim_when_quiet, args=(lambda: libc.malloc_trim(0), check_every_s,
                                                               threading.Event()),
                                  name="hrpo-malloc-trim", daemon=True)
        _TRIMMER.append(thread)
        thread.start()
    else:
        _TRIMMER.append(threading.current_thread())   # marks "done"
    return True
