"""Benchmarks, not tests (pytest collects nothing here): ``python -m tests.bench [NAME]``
prints figures, each against a baseline measured in the same run, for sealing and the
Argon2 unlock, the serial parsers, the fingerprint download, the workflow, the link,
photo quality and the kiosk UI.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def timings(fn: Callable[[], object], repeat: int) -> tuple[list[float], object]:
    """Wall times (seconds) of ``repeat`` calls of ``fn``, and what the last one returned."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """The fastest of ``repeat`` calls (seconds), and what the last one returned."""
    times, out = timings(fn, repeat)
    return min(times), out
