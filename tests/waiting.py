"""The one way tests wait for something to become true: poll ``check`` until it
answers truthily, or fail with ``what`` after ``timeout`` seconds.

Tests never sleep to let time pass where a clock can be injected; this is for
what really happens elsewhere (a process starting, a browser navigating).
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    check: Callable[[], object], timeout: float, what: str, *, interval: float = 0.05
) -> None:
    """Until ``check()`` is truthy; TimeoutError naming ``what`` after ``timeout`` s.

    ``check`` may raise to stop waiting at once (a process that died, say).
    """
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} (after {timeout} s)")
        time.sleep(interval)
