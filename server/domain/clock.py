"""The clock the server reads: a monotonic time for sessions and throttles, and
today's date (UTC) for what is stored, which never holds a time finer than the day."""

from __future__ import annotations

import datetime
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def today(self) -> str: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def today(self) -> str:
        # Days in UTC: the coarsest date that still helps journalists.
        return datetime.datetime.now(datetime.UTC).date().isoformat()
