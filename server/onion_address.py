"""v3 onion addresses, checked (rend-spec-v3, "Encoding onion addresses").

Shared by every layer like ``server.settings``: pure functions, no I/O. The
Tor configuration (server/ops/tor_config.py) and the ``Onion-Location``
setting (server/web/onion_location.py) both check addresses here.
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

ONION_VERSION = 3
ONION_CHECKSUM_LABEL = b".onion checksum"  # rend-spec-v3, "Encoding onion addresses"


class OnionAddressError(ValueError):
    """Not a valid v3 onion address (the message says why)."""


def check_onion_address(address: str) -> str:
    """``address`` as ``<56 characters>.onion`` if it is a valid v3 onion address.

    Checks the version byte and the checksum (rend-spec-v3 section 6), so a
    mistyped address is caught here rather than as a silent connection failure.
    """
    label = address.strip().lower().removesuffix(".onion")
    if not re.fullmatch(r"[a-z2-7]{56}", label):
        raise OnionAddressError(f"{address!r} is not a v3 onion address (56 base32 characters)")
    raw = base64.b32decode(label.upper())
    pubkey, checksum, version = raw[:32], raw[32:34], raw[34]
    if version != ONION_VERSION:
        raise OnionAddressError(f"{address!r} is not a v3 onion address (version {version})")
    expected = hashlib.sha3_256(ONION_CHECKSUM_LABEL + pubkey + bytes([version])).digest()[:2]
    if checksum != expected:
        raise OnionAddressError(f"{address!r} has a wrong checksum (mistyped?)")
    return label + ".onion"


def parse_onion_location(value: object) -> str:
    """The configured value, checked: ``http(s)://<v3 onion>``, no path or query."""
    if not isinstance(value, str):
        raise ValueError("onion_location must be a string")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or parts.path not in ("", "/"):
        raise ValueError('onion_location must look like "http://<address>.onion"')
    if parts.query or parts.fragment or parts.username or parts.port is not None:
        raise ValueError('onion_location must look like "http://<address>.onion"')
    try:
        host = check_onion_address(parts.hostname or "")
    except OnionAddressError as exc:
        raise ValueError(f"onion_location: {exc}") from exc
    return f"{parts.scheme}://{host}"
