"""Errors raised by the envelope package.

    EnvelopeError              base class: anything wrong with an envelope or a key
    ├── FormatError            not a Lanterne envelope, an unsupported version, or over a limit
    ├── AuthenticationError    the envelope was altered, truncated or extended (one error for all)
    ├── NoMatchingKeyError     none of the given keys can open this envelope
    └── KeyFormatError         a key or key file cannot be read

Every authentication failure (header MAC, any chunk tag, truncation, trailing
data, bad padding) raises the same ``AuthenticationError`` with the same
message, so an attacker learns nothing from which check failed.
"""

from __future__ import annotations


class EnvelopeError(Exception):
    """Something is wrong with an envelope or a key."""


class FormatError(EnvelopeError):
    """The input is not an envelope this version can read, or it exceeds a limit."""


class AuthenticationError(EnvelopeError):
    """The envelope was altered, cut short or extended; nothing from it can be trusted."""

    def __init__(self) -> None:
        super().__init__(
            "the envelope failed authentication: it was altered, truncated or extended"
        )


class NoMatchingKeyError(EnvelopeError):
    """None of the given identities is a recipient of this envelope."""

    def __init__(self) -> None:
        super().__init__("none of the given keys can open this envelope")


class KeyFormatError(EnvelopeError):
    """A key, public key file or identity cannot be read."""
