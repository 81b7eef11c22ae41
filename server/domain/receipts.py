"""Receipts for sources (envelope/SPEC.md §12, issue 16 §5).

The newsroom key is offline, so the server signs receipts with its own
Ed25519 **receipt key**, which the newsroom key certifies when the admin
signs the key directory (``server/ops/newsroom_key.py``). The key's seed is
derived from the instance secret (``secrets.json``, a keyed BLAKE2b with its
own personalisation), so every instance sharing that file signs with the
same key and nothing new is stored; the certificate is an instance value
beside the signed directory.

A receipt is made when a submission is recorded and kept only in the
source's sealed session (shown, downloadable, gone at logout or expiry).
The server keeps nothing that links it to a source: it holds the objects,
from which anyone with the server's data could compute the same hash,
and that is all (docs/THREAT_MODEL.md, "Receipts").
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Sequence

import nacl.encoding
import nacl.hash

import envelope
from envelope.keys import b64decode, b64encode
from server.domain import key_directory
from server.domain.key_directory import RecordedValues
from server.store.protocols import ObjectStore

CERTIFICATE_META = "receipt_certificate"
_PERSON = b"lanterne-receipt"  # BLAKE2b personalisation: 16 bytes
_READ = 1 << 20


def receipt_seed(instance_key: bytes) -> bytes:
    """The receipt key's Ed25519 seed, derived from the instance secret."""
    return bytes(
        nacl.hash.blake2b(
            b"receipt signing key v1",
            digest_size=32,
            key=instance_key,
            person=_PERSON,
            encoder=nacl.encoding.RawEncoder,
        )
    )


def receipt_public_key(instance_key: bytes) -> bytes:
    return envelope.newsroom_public_key(receipt_seed(instance_key))  # any Ed25519 seed's


def encode_certificate(cert: envelope.ReceiptCertificate) -> str:
    return json.dumps(
        {
            "newsroom_key": b64encode(cert.newsroom_key),
            "receipt_key": b64encode(cert.receipt_key),
            "day": cert.day,
            "signature": b64encode(cert.signature),
        },
        sort_keys=True,
    )


def stored_certificate(values: RecordedValues) -> envelope.ReceiptCertificate | None:
    """The recorded certificate, if it is well formed (not yet checked)."""
    text = values.meta_value(CERTIFICATE_META)
    if text is None:
        return None
    try:
        doc = json.loads(text)
        return envelope.ReceiptCertificate(
            newsroom_key=b64decode(doc["newsroom_key"], 32, "newsroom key"),
            receipt_key=b64decode(doc["receipt_key"], 32, "receipt key"),
            day=str(doc["day"]),
            signature=b64decode(doc["signature"], 64, "signature"),
        )
    except (ValueError, KeyError, TypeError, envelope.KeyFormatError):
        return None


def usable_certificate(
    values: RecordedValues, instance_key: bytes
) -> envelope.ReceiptCertificate | None:
    """The certificate if receipts can be signed now: recorded, for this
    instance's receipt key, by the recorded newsroom key, and verifying."""
    cert = stored_certificate(values)
    try:
        newsroom = key_directory.newsroom_key(values)
    except key_directory.DirectoryUnusable:
        return None
    if (
        cert is None
        or newsroom is None
        or cert.newsroom_key != newsroom
        or cert.receipt_key != receipt_public_key(instance_key)
        or not cert.verifies()
    ):
        return None
    return cert


def object_hash(store: ObjectStore, object_id: str) -> bytes:
    """SHA-256 of a stored object's ciphertext, read in pieces (SPEC §12.3)."""
    digest = hashlib.sha256()
    with store.open(object_id) as stream:
        while chunk := stream.read(_READ):
            digest.update(chunk)
    return digest.digest()


def make_receipt(
    values: RecordedValues,
    instance_key: bytes,
    store: ObjectStore,
    *,
    received_by: str,
    day: str,
    object_ids: Sequence[str],
) -> str | None:
    """The signed receipt of a recorded submission; None when the instance
    cannot sign receipts (no certificate for its key yet)."""
    cert = usable_certificate(values, instance_key)
    if cert is None:
        return None
    return envelope.sign_receipt(
        received_by=received_by,
        day=datetime.date.fromisoformat(day),
        object_hashes=[object_hash(store, oid) for oid in object_ids],
        certificate=cert,
        seed=receipt_seed(instance_key),
    )
