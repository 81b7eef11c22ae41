"""Submission receipts (SPEC §12): what a source can keep to show that they reported.

A receipt names who received the submission (the instance's or the desk's
name), the day, and a hash of the ciphertext objects received; it is signed
by the instance's online **receipt key**, whose public half the newsroom key
certified. The newsroom key stays offline (it cannot sign at submission
time); the certificate it made travels in every receipt, so a verifier who
knows only the newsroom's public key (its fingerprint, published elsewhere)
checks the whole chain offline.

A receipt is a short text block meant to be printed or copied. The signature
covers the block's lines as rebuilt by the reader (each stripped of
surrounding whitespace, joined with LF), so a copy that changed line endings
or added trailing spaces still verifies, and nothing a reader shows is
outside the signature.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass

from envelope import _primitives as prim
from envelope.directory import newsroom_fingerprint
from envelope.errors import KeyFormatError
from envelope.keys import b64decode, b64encode

__all__ = [
    "Receipt",
    "ReceiptCertificate",
    "ReceiptError",
    "certify_receipt_key",
    "receipt_objects_hash",
    "sign_receipt",
    "verify_receipt",
]

FORMAT = "lanterne-receipt/v1"
BEGIN = "-----BEGIN LANTERNE RECEIPT-----"
END = "-----END LANTERNE RECEIPT-----"
# SPEC §12: the fields, in this order, each once.
FIELDS = (
    "format",
    "received-by",
    "day",
    "objects",
    "sha256",
    "newsroom-key",
    "receipt-key",
    "certified-on",
    "certificate",
    "signature",
)
MAX_NAME = 200  # characters of received-by
MAX_OBJECTS = 10_000
MAX_TEXT = 64 * 1024  # a receipt is under 1 KiB; anything around it is ignored, up to this
SIGNATURE_SIZE = 64
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_HEX = re.compile(r"[0-9a-f]{64}")


class ReceiptError(KeyFormatError):
    """The receipt is malformed, altered, or not signed by a key the newsroom certified."""


@dataclass(frozen=True)
class ReceiptCertificate:
    """The newsroom key's signature over an online receipt key and the day it was made."""

    newsroom_key: bytes
    receipt_key: bytes
    day: str
    signature: bytes

    def verifies(self) -> bool:
        return prim.ed25519_verify(
            self.newsroom_key, self.signature, _certificate_message(self.receipt_key, self.day)
        )


@dataclass(frozen=True)
class Receipt:
    """A verified receipt: what the newsroom's receipt key signed."""

    received_by: str
    day: str
    objects: int
    sha256: str  # hex, receipt_objects_hash of the ciphertext objects
    newsroom_key: bytes
    receipt_key: bytes
    certified_on: str


def _certificate_message(receipt_key: bytes, day: str) -> bytes:
    return prim.LABEL_RECEIPT_KEY + receipt_key + day.encode("ascii")


def certify_receipt_key(
    receipt_key: bytes, *, day: datetime.date, seed: bytes
) -> ReceiptCertificate:
    """The newsroom key (``seed``) certifies ``receipt_key`` from ``day`` (SPEC §12.2)."""
    if len(receipt_key) != prim.KEY_SIZE or len(seed) != prim.KEY_SIZE:
        raise ReceiptError("receipt and newsroom keys are 32 bytes")
    text = day.isoformat()
    return ReceiptCertificate(
        newsroom_key=prim.ed25519_public(seed),
        receipt_key=receipt_key,
        day=text,
        signature=prim.ed25519_sign(seed, _certificate_message(receipt_key, text)),
    )


def receipt_objects_hash(object_hashes: Iterable[bytes]) -> bytes:
    """The receipt's hash of a submission's objects, from each object's SHA-256
    (of its ciphertext, as stored and as a journalist downloads it): SHA-256 of
    the label and the sorted object hashes, so the order of listing does not matter."""
    hashes = sorted(object_hashes)
    if not hashes or any(len(h) != 32 for h in hashes):
        raise ReceiptError("a receipt covers one or more SHA-256 object hashes")
    return prim.sha256(prim.LABEL_RECEIPT_OBJECTS + b"".join(hashes))


def _check_name(name: str) -> None:
    if (
        not 0 < len(name) <= MAX_NAME
        or name != name.strip()
        or any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029" for c in name)
    ):
        raise ReceiptError("the receiver's name must be 1-200 characters on one line")


def _lines(values: dict[str, str]) -> list[str]:
    return [BEGIN] + [f"{name}: {values[name]}" for name in FIELDS if name in values]


def _signed_bytes(lines: list[str]) -> bytes:
    """Every line before the signature's, each ending with LF (SPEC §12.1)."""
    return prim.LABEL_RECEIPT + "".join(line + "\n" for line in lines).encode("utf-8")


def sign_receipt(
    *,
    received_by: str,
    day: datetime.date,
    object_hashes: Iterable[bytes],
    certificate: ReceiptCertificate,
    seed: bytes,
) -> str:
    """The receipt's text block, signed with the receipt key ``seed`` that
    ``certificate`` certifies."""
    hashes = list(object_hashes)
    _check_name(received_by)
    if not 0 < len(hashes) <= MAX_OBJECTS:
        raise ReceiptError(f"a receipt covers 1 to {MAX_OBJECTS} objects")
    if len(seed) != prim.KEY_SIZE or prim.ed25519_public(seed) != certificate.receipt_key:
        raise ReceiptError("the certificate is for another receipt key")
    values = {
        "format": FORMAT,
        "received-by": received_by,
        "day": day.isoformat(),
        "objects": str(len(hashes)),
        "sha256": receipt_objects_hash(hashes).hex(),
        "newsroom-key": b64encode(certificate.newsroom_key),
        "receipt-key": b64encode(certificate.receipt_key),
        "certified-on": certificate.day,
        "certificate": b64encode(certificate.signature),
    }
    lines = _lines(values)
    signature = prim.ed25519_sign(seed, _signed_bytes(lines))
    return "\n".join([*lines, f"signature: {b64encode(signature)}", END]) + "\n"


def verify_receipt(text: str | bytes, newsroom: bytes | str) -> Receipt:
    """Check a receipt against the newsroom key the verifier already trusts:
    its 32 raw bytes, or its fingerprint (§11: eight groups of five digits,
    spaces optional), which the receipt's newsroom key must have.

    Text before the first BEGIN line and after the END line is ignored (a
    receipt pasted into a letter); inside, exactly the fields of SPEC §12.1 in
    order. Raises ``ReceiptError`` unless the newsroom key is ``newsroom_key``,
    its certificate of the receipt key verifies, and the receipt key's
    signature over the lines verifies; only then are the values read.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_TEXT:
            raise ReceiptError("this file is too large to be a receipt")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ReceiptError("a receipt is UTF-8 text") from None
    if len(text) > MAX_TEXT:
        raise ReceiptError("this text is too large to be a receipt")
    lines = [line.strip() for line in text.splitlines()]
    try:
        start = lines.index(BEGIN)
        end = lines.index(END, start)
    except ValueError:
        raise ReceiptError("no Lanterne receipt found (its BEGIN and END lines)") from None
    body = lines[start + 1 : end]
    if len(body) != len(FIELDS):
        raise ReceiptError(f"a receipt has {len(FIELDS)} lines between BEGIN and END")
    values: dict[str, str] = {}
    for name, line in zip(FIELDS, body, strict=True):
        prefix = f"{name}: "
        if not line.startswith(prefix) or not line[len(prefix) :]:
            raise ReceiptError(f"expected the line {name!r} here, found {line[:40]!r}")
        values[name] = line[len(prefix) :]
    if values["format"] != FORMAT:
        raise ReceiptError(f"not a {FORMAT} receipt")
    named = _b64(values["newsroom-key"], prim.KEY_SIZE, "newsroom key")
    if isinstance(newsroom, str):
        expected = "".join(newsroom.split())
        trusted = "".join(newsroom_fingerprint(named).split()) == expected
    else:
        trusted = named == newsroom
    if not trusted:
        raise ReceiptError(
            "this receipt is from another newsroom key than the one expected"
            f" (its fingerprint: {newsroom_fingerprint(named)})"
        )
    certificate = ReceiptCertificate(
        newsroom_key=named,
        receipt_key=_b64(values["receipt-key"], prim.KEY_SIZE, "receipt key"),
        day=_day(values["certified-on"], "certified-on"),
        signature=_b64(values["certificate"], SIGNATURE_SIZE, "certificate"),
    )
    if not certificate.verifies():
        raise ReceiptError("the newsroom key did not certify this receipt key")
    signature = _b64(values["signature"], SIGNATURE_SIZE, "signature")
    signed = _signed_bytes(_lines({k: v for k, v in values.items() if k != "signature"}))
    if not prim.ed25519_verify(certificate.receipt_key, signature, signed):
        raise ReceiptError("the receipt's signature does not verify: it was altered")
    # Signed by a certified key: the values are the newsroom's; check them anyway.
    _check_name(values["received-by"])
    objects = values["objects"]
    if not objects.isascii() or not objects.isdigit() or not 0 < int(objects) <= MAX_OBJECTS:
        raise ReceiptError("the receipt's object count is not a number from 1")
    if not _HEX.fullmatch(values["sha256"]):
        raise ReceiptError("the receipt's sha256 is not 64 lower-case hex digits")
    return Receipt(
        received_by=values["received-by"],
        day=_day(values["day"], "day"),
        objects=int(objects),
        sha256=values["sha256"],
        newsroom_key=named,
        receipt_key=certificate.receipt_key,
        certified_on=certificate.day,
    )


def _b64(value: str, size: int, what: str) -> bytes:
    try:
        return b64decode(value, size, what)
    except KeyFormatError as exc:
        raise ReceiptError(f"the receipt's {exc}") from None


def _day(value: str, what: str) -> str:
    try:
        if _DAY.fullmatch(value):
            datetime.date.fromisoformat(value)
            return value
    except ValueError:
        pass
    raise ReceiptError(f"the receipt's {what} is not a date (YYYY-MM-DD)")
