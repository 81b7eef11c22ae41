"""Reading numbers out of request headers, strictly.

``str.isdigit`` accepts digits Python's ``int`` refuses ('²') or reads
unexpectedly ('١٢٣' is 123), and ``int`` refuses more than 4,300 digits with
a ValueError: either would become a 500. Every header number goes through
``decimal``, which answers None for anything but a few ASCII digits.
"""

from __future__ import annotations

MAX_DIGITS = 20  # 10^20 bytes: far beyond any size or offset the server accepts

_ASCII_DIGITS = frozenset("0123456789")


def decimal(value: str | None, max_digits: int = MAX_DIGITS) -> int | None:
    """The value of 1 to ``max_digits`` ASCII digits, or None for anything else."""
    if not value or len(value) > max_digits or not _ASCII_DIGITS.issuperset(value):
        return None
    return int(value)


def byte_range_start(value: str) -> int | None:
    """N of ``bytes=N-``, the one form of Range the server honours; None otherwise.

    Suffix ranges (``bytes=-N``), closed ranges, several ranges and other
    units are refused rather than half-understood.
    """
    if not value.startswith("bytes=") or not value.endswith("-"):
        return None
    return decimal(value[len("bytes=") : -1])
