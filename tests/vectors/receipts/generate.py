"""Generate the receipt test vectors in this directory (SPEC.md §12, README.md).

Ed25519 signatures are deterministic (RFC 8032), so fixed seeds give the same
files every time: ``tests/test_receipts.py`` checks that this script
reproduces them byte for byte. Never edit the JSON files by hand.

    python -m tests.vectors.receipts.generate
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import envelope

HERE = Path(__file__).resolve().parent
NEWSROOM_SEED = hashlib.sha256(b"receipt vectors: newsroom seed").digest()
OTHER_NEWSROOM_SEED = hashlib.sha256(b"receipt vectors: another newsroom").digest()
RECEIPT_SEED = hashlib.sha256(b"receipt vectors: receipt seed").digest()
ROGUE_SEED = hashlib.sha256(b"receipt vectors: an uncertified key").digest()
OBJECTS = [b"manifest ciphertext", b"message ciphertext", b"file ciphertext"]
DAY = datetime.date(2026, 12, 4)
CERTIFIED = datetime.date(2026, 12, 1)


def _receipt(
    *,
    received_by: str = "Le Quotidien",
    seed: bytes = RECEIPT_SEED,
    certificate: envelope.ReceiptCertificate | None = None,
) -> str:
    cert = certificate or envelope.certify_receipt_key(
        envelope.newsroom_public_key(seed), day=CERTIFIED, seed=NEWSROOM_SEED
    )
    return envelope.sign_receipt(
        received_by=received_by,
        day=DAY,
        object_hashes=[hashlib.sha256(o).digest() for o in OBJECTS],
        certificate=cert,
        seed=seed,
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _replace_line(text: str, name: str, value: str) -> str:
    lines = text.split("\n")
    i = next(i for i, line in enumerate(lines) if line.startswith(f"{name}: "))
    lines[i] = f"{name}: {value}"
    return "\n".join(lines)


def vectors() -> list[dict[str, object]]:
    good = _receipt()
    genuine = envelope.certify_receipt_key(
        envelope.newsroom_public_key(RECEIPT_SEED), day=CERTIFIED, seed=NEWSROOM_SEED
    )
    # The newsroom's real certificate signature, presented for another key.
    rogue_cert = envelope.ReceiptCertificate(
        newsroom_key=genuine.newsroom_key,
        receipt_key=envelope.newsroom_public_key(ROGUE_SEED),
        day=genuine.day,
        signature=genuine.signature,
    )
    # The certified key named, the lines signed by another key.
    lines = good.split("\n")
    signed = "".join(line + "\n" for line in lines[:10]).encode()
    rogue_signature = Ed25519PrivateKey.from_private_bytes(ROGUE_SEED).sign(
        b"lanterne/v1/receipt" + signed
    )
    signed_by_rogue = _replace_line(good, "signature", b64url(rogue_signature))
    other = envelope.certify_receipt_key(
        envelope.newsroom_public_key(RECEIPT_SEED), day=CERTIFIED, seed=OTHER_NEWSROOM_SEED
    )
    # The right newsroom certified RECEIPT_SEED's key; the rogue key signs with
    # that certificate's values but its own key named (so the certificate fails).
    cases: list[tuple[str, str, str, str]] = [
        ("ok", "ok", "a receipt as the server writes it", good),
        (
            "ok_pasted",
            "ok",
            "the same receipt in a letter: CRLF line ends, indentation, trailing spaces",
            "Dear editor,\r\n\r\n"
            + "".join(f"   {line}  \r\n" for line in good.splitlines())
            + "\r\nRegards\r\n",
        ),
        (
            "ok_unicode_name",
            "ok",
            "a receiver's name outside ASCII",
            _receipt(received_by="Défenseur des droits — signalements"),
        ),
        (
            "bad_day",
            "error",
            "the day changed after signing",
            _replace_line(good, "day", "2026-12-05"),
        ),
        (
            "bad_received_by",
            "error",
            "the receiver's name changed after signing",
            _replace_line(good, "received-by", "Le Monde"),
        ),
        (
            "bad_sha256",
            "error",
            "the objects hash changed after signing",
            _replace_line(good, "sha256", "0" * 64),
        ),
        (
            "bad_objects",
            "error",
            "the object count changed after signing",
            _replace_line(good, "objects", "2"),
        ),
        (
            "uncertified_key",
            "error",
            "signed by a receipt key the newsroom never certified",
            _receipt(seed=ROGUE_SEED, certificate=rogue_cert),
        ),
        (
            "signed_by_another_key",
            "error",
            "names the certified receipt key but is signed by another key",
            signed_by_rogue,
        ),
        (
            "other_newsroom",
            "error",
            "certified by another newsroom key than the trusted one",
            _receipt(certificate=other),
        ),
        (
            "certified_on_changed",
            "error",
            "the certificate's day changed (the certificate no longer verifies)",
            _replace_line(good, "certified-on", "2026-11-30"),
        ),
        (
            "missing_line",
            "error",
            "a field line removed",
            "\n".join(line for line in good.split("\n") if not line.startswith("objects: ")),
        ),
        ("truncated", "error", "the END line missing", good.rsplit("-----END", 1)[0]),
    ]
    return [
        {
            "name": name,
            "description": description,
            "expect": expect,
            "newsroom_key": envelope.newsroom_public_key(NEWSROOM_SEED).hex(),
            "receipt": text,
            **(
                {
                    "received_by": "Le Quotidien"
                    if name != "ok_unicode_name"
                    else "Défenseur des droits — signalements",
                    "day": DAY.isoformat(),
                    "objects": len(OBJECTS),
                    "object_sha256": [hashlib.sha256(o).hexdigest() for o in OBJECTS],
                }
                if expect == "ok"
                else {}
            ),
        }
        for expect, name, description, text in [(c[1], c[0], c[2], c[3]) for c in cases]
    ]


def render(vector: dict[str, object]) -> str:
    return json.dumps(vector, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for vector in vectors():
        (HERE / f"{vector['name']}.json").write_text(render(vector), encoding="utf-8")


if __name__ == "__main__":
    main()
