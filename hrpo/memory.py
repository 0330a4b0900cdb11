"""Bounding the app's resident memory under concurrent requests (glibc malloc).

What grows (the app's RSS, burst after burst of concurrent generations) is free heap memory that glibc
keeps, not Python objects.  Gradio runs each request in a worker thread, and glibc
gives threads that contend for the allocator an arena of their own (up to 8 per core); every decode
step allocates and frees many tensors (logits, top-k, hidden states, KV-cache growth) and the freed
memory stays in the arena that served it.  As threads and arenas change from burst to burst, RSS
ratchets up; malloc_trim gives the free memory back.

bound_memory() is the start-up call for the app: it caps the number of arenas (mallopt M_ARENA_MAX,
like MALLOC_ARENA_MAX=2 in the environment but for arenas made after the call, so call it before the
first request) and starts a daemon thread that hands free heap memory back to the OS (malloc_trim)
every `trim_every_s` seconds.  Both are no-ops off glibc (it returns False).
Measure: python -m bench.app_memory --variant plain,bound.
Test: pytest tests/test_reliability_round3.py -k memory
"""
import ctypes
import ctypes.util
import os
import threading

M_ARENA_MAX = -8                                     # glibc's mallopt parameter numbers (malloc.h)

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


def bound_memory(arenas: int = 2, trim_every_s: float = 10.0) -> bool:
    """Cap glibc's malloc arenas at `arenas` and trim free memory every `trim_every_s` s (0: never).

    Call once at start-up, before request threads allocate; later calls change nothing.  Returns
    False where the C library is not glibc, or HRPO_BOUND_MEMORY=0 (nothing done; for comparisons)."""
    libc = glibc()
    if libc is None or os.environ.get("HRPO_BOUND_MEMORY") == "0":
        return False
    if _TRIMMER:
        return True
    libc.mallopt(M_ARENA_MAX, int(arenas))
    if trim_every_s > 0:
        def loop(stop=threading.Event()):
            while not stop.wait(trim_every_s):
                libc.malloc_trim(0)
        _TRIMMER.append(threading.Thread(target=loop, name="hrpo-malloc-trim", daemon=True))
        _TRIMMER[0].start()
    else:
        _TRIMMER.append(threading.current_thread())   # marks "done"
    return True
