"""The one way a test waits for something: poll a condition, fail naming what it waited for.

A test that waits for a device, a process or the broker states the condition it waits
for, never a fixed sleep that hopes the thing has happened by then::

    fix = wait_until(lambda: gnss.fix(timeout=0.2), 4, "a GNSS fix")

A ``time.sleep`` is left in a test only where the time itself is under test (a debounce
window, a repeat guard, a will delay), with a comment saying so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float,
               message: str | Callable[[], str], *, interval: float = 0.02) -> T:
    """Call ``condition()`` until it returns something truthy, and return that.

    Raises AssertionError ("timed out after 2 s waiting for MESSAGE") once ``timeout``
    seconds have passed; the condition is asked one last time at the deadline, so a slow
    poll never fails a condition that came true in time. ``message`` may be a function,
    called only on failure, for what was going on then (a log tail, the screen shown).
    ``interval`` is the pause between polls.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            what = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(min(interval, left))
