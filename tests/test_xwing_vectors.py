"""Hybrid (X-Wing) envelopes written by the browser's code, opened independently.

``tests/vectors/xwing/*.json`` are produced by ``server/static/envelope.js``
and ``xwing.js`` (noble's ML-KEM-768, WebCrypto X25519) in Node with fixed
randomness. Here a reader written from SPEC.md alone, with ``cryptography``'s
HPKE (``KEM.MLKEM768_X25519``) and primitives and nothing from ``envelope``,
opens every one of them. Node also reproduces the draft-ietf-hpke-pq KEM
vectors for 0x647a, and running the generator again gives the same files.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import struct
import subprocess
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "tests" / "vectors" / "xwing"
VECTORS = sorted(HERE.glob("*.json"))
KAT_FILE = Path(cryptography_vectors.__file__).parent / "HPKE" / "hpke-pq-test-vectors.json"
NODE = shutil.which("node") or "node"

XWING = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
X25519 = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
# SPEC §4.1: stanza type -> (info label, body size, suite)
STANZAS = {
    0x0001: (b"lanterne/v1/x25519-hpke", 80, X25519),
    0x0002: (b"lanterne/v1/xwing-hpke", 1168, XWING),
}


class HeaderFailure(Exception):
    pass


class NoMatch(Exception):
    pass


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def xwing_private(seed: bytes) -> hpke.MLKEM768X25519PrivateKey:
    """An X-Wing private key from its 32-byte seed (draft-connolly-cfrg-xwing-kem)."""
    expanded = hashlib.shake_256(seed).digest(96)
    return hpke.MLKEM768X25519PrivateKey(
        MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
        X25519PrivateKey.from_private_bytes(expanded[64:]),
    )


def xwing_public_bytes(seed: bytes) -> bytes:
    expanded = hashlib.shake_256(seed).digest(96)
    ml = MLKEM768PrivateKey.from_seed_bytes(expanded[:64]).public_key()
    x = X25519PrivateKey.from_private_bytes(expanded[64:]).public_key()
    raw = (Encoding.Raw, PublicFormat.Raw)
    return ml.public_bytes(*raw) + x.public_bytes(*raw)


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt, info).derive(ikm)


def independent_open(data: bytes, identity: bytes, identity_type: str) -> bytes:
    """SPEC §3-§6 with cryptography only: header, stanzas, MAC, chunks, padding."""
    if len(data) < 27 or data[:9] != b"LANTERNE\x01":
        raise HeaderFailure("prefix")
    salt, count = data[9:25], struct.unpack(">H", data[25:27])[0]
    prefix, pos, stanzas = data[:27], 27, []
    for _ in range(count):
        stype, length = struct.unpack(">HH", data[pos : pos + 4])
        if stype in STANZAS and length != STANZAS[stype][1]:
            raise HeaderFailure(f"stanza 0x{stype:04x} of {length} bytes")
        stanzas.append((stype, data[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    mine = 0x0002 if identity_type == "xwing" else 0x0001
    key = xwing_private(identity) if identity_type == "xwing" else None
    x_key = X25519PrivateKey.from_private_bytes(identity)
    file_key = None
    for stype, body in stanzas:
        if stype != mine:
            continue
        label, _, suite = STANZAS[stype]
        info = label + prefix + struct.pack(">H", stype)
        try:
            file_key = suite.decrypt(body, key if key is not None else x_key, info=info)
            break
        except InvalidTag:
            continue
    if file_key is None:
        raise NoMatch()
    header_mac = data[pos : pos + 32]
    expected = hmac.new(hkdf(file_key, salt, b"lanterne/v1/header"), data[:pos], "sha256").digest()
    assert hmac.compare_digest(header_mac, expected), "header MAC"
    aead = AESGCM(hkdf(file_key, salt, b"lanterne/v1/payload"))
    payload, padded = data[pos + 32 :], b""
    sealed = [payload[i : i + 65552] for i in range(0, len(payload), 65552)]
    for i, chunk in enumerate(sealed):
        nonce = i.to_bytes(11, "big") + bytes([i == len(sealed) - 1])
        padded += aead.decrypt(nonce, chunk, None)
    plaintext = padded[: padded.rindex(b"\x80")]
    assert set(padded[len(plaintext) + 1 :]) <= {0}, "padding"
    return plaintext


def test_there_are_hybrid_vectors_of_each_kind() -> None:
    kinds = {load(p)["expect"] for p in VECTORS}
    assert kinds == {"ok", "no match", "header failure"}
    assert len([p for p in VECTORS if p.stem.startswith("ok_")]) >= 5


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_cryptography_opens_the_browser_writers_vector(path: Path) -> None:
    v = load(path)
    identity = base64.b64decode(v["identity"])
    data = base64.b64decode(v["envelope"])
    if v["expect"] == "ok":
        plaintext = independent_open(data, identity, v["identity_type"])
        assert hashlib.sha256(plaintext).hexdigest() == v["plaintext_sha256"]
        assert len(plaintext) == v["plaintext_length"]
        # The stanzas follow the recipient list: one 0x0002 per hybrid key, no 0x0001 for it.
        count = struct.unpack(">H", data[25:27])[0]
        types, pos = [], 27
        for _ in range(count):
            stype, length = struct.unpack(">HH", data[pos : pos + 4])
            types.append(stype)
            pos += 4 + length
        lengths = [len(base64.b64decode(r)) for r in v["writer"]["recipients"]]
        assert types == [{32: 0x0001, 1216: 0x0002}[n] for n in lengths]
    else:
        error = {"no match": NoMatch, "header failure": HeaderFailure}[v["expect"]]
        with pytest.raises(error):
            independent_open(data, identity, v["identity_type"])


@pytest.mark.parametrize(
    "path", [p for p in VECTORS if load(p)["identity_type"] == "xwing"], ids=lambda p: p.stem
)
def test_the_javascript_public_key_is_cryptographys(path: Path) -> None:
    """xwing.js's publicKeyFromSeed made the recipients: cryptography agrees on the key."""
    v = load(path)
    if v["expect"] == "ok":
        mine = xwing_public_bytes(base64.b64decode(v["identity"]))
        assert base64.b64encode(mine).decode() in v["writer"]["recipients"]


def test_the_generator_reproduces_the_files(tmp_path: Path) -> None:
    subprocess.run(
        [NODE, str(HERE / "generate.mjs"), str(tmp_path)], check=True, capture_output=True
    )
    made = sorted(p.name for p in tmp_path.glob("*.json"))
    assert made == [p.name for p in VECTORS]
    for name in made:
        assert (tmp_path / name).read_bytes() == (HERE / name).read_bytes(), name


def test_node_reproduces_the_draft_hpke_pq_kem_vectors() -> None:
    """pkRm from the seed, enc and the shared secret from the encapsulation randomness."""
    out = subprocess.run(
        [NODE, str(ROOT / "tests" / "js" / "xwing_kat.mjs"), str(KAT_FILE)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    results = json.loads(out)
    assert len(results) == 2  # the two 0x647a vectors cryptography_vectors ships
    assert all(r == {"pk": True, "enc": True, "shared_secret": True} for r in results), results


def test_the_browser_writer_refuses_what_no_reader_would_open() -> None:
    """A header over 65536 bytes (56 hybrid recipients), a key of the wrong
    length, an ML-KEM key a hostile server made with unreduced coefficients."""
    out = subprocess.run(
        [NODE, str(ROOT / "tests" / "js" / "envelope_limits.mjs")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    r = json.loads(out)
    assert r["mixed_size"] == {"ok": True}  # headerSize() is the header's real length
    assert r["hybrid_55"] == {"ok": 27 + 55 * (4 + 1168) + 32}
    assert r["hybrid_56"] == {"error": "too many recipients for one header"}
    assert r["wrong_length"] == {"error": "not a recipient key: 1215 bytes"}
    assert "modulus" in r["unreduced_key"]["error"]
