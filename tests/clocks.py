"""One fake clock for every test that needs time to pass without waiting.

It is both a ``server.domain.clock.Clock`` (``monotonic``, ``today``) and the
``wall_clock`` callable that ``create_app`` and ``UploadStore`` take (seconds
since the epoch): tests move ``now`` forward instead of sleeping.
"""

from __future__ import annotations

import datetime


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:  # 2027-01-15, a minute boundary
        self.now = now

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def today(self) -> str:
        return datetime.datetime.fromtimestamp(self.now, datetime.UTC).date().isoformat()

    def advance(self, seconds: float) -> None:
        self.now += seconds
