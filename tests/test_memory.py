"""The app's memory bound (studio/memory.py): malloc trimmed once per quiet spell, never while busy, and the
bound installed in a real process.
Test: pytest tests/test_memory.py
"""
import os
import subprocess
import sys

import pytest

from conftest import ROOT


def test_trims_once_per_quiet_spell_never_while_busy():
    """studio.memory.trim_when_quiet with a scripted CPU clock: busy periods (CPU >= QUIET_CPU of the period)
    never trim; a quiet spell trims once, however long it lasts; the next spell trims again."""
    import itertools

    from studio import memory
    per_period = [0.5, 0.5, 0.5, 0.01, 0.0, 0.0, 0.9, 0.0, 0.0]      # CPU seconds used in each 1 s period
    cpu = iter(itertools.accumulate([0.0, *per_period]))
    periods, trims = iter(range(len(per_period))), []

    class Clock:                   # stands in for stop.wait(period): one period passes, True once they run out
        def wait(self, _):
            self.now = next(periods, None)
            return self.now is None
    clock = Clock()
    memory.trim_when_quiet(lambda: trims.append(clock.now), 1.0, clock, cpu=lambda: next(cpu))
    assert trims == [3, 7]


@pytest.mark.slow
def test_memory_bound_runs_in_a_real_process():
    from studio import memory
    code = ("from studio import memory; import threading; ok = memory.bound_memory(arenas=2, check_every_s=0.1); "
            "import time; time.sleep(0.3); "
            "print(ok, memory.bound_memory(), [t.name for t in threading.enumerate() if t.name.startswith('hrpo')], "
            "memory.trim() in (True, False))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == (["True", "True", "['hrpo-malloc-trim']", "True"] if memory.glibc() else
                                  ["False", "False", "[]", "True"])
