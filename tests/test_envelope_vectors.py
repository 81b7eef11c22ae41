"""The project's envelope vectors (tests/vectors), one test per file."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

import envelope
from envelope import _stream
from envelope._primitives import LABEL_STANZA_X25519
from envelope.recipients import STANZA_X25519_HPKE, stanza_info
from tests.hpke_reference import seal as reference_seal
from tests.vectors import generate

# Python's own vectors, and the browser writer's (tests/vectors/xwing, made by
# server/static/envelope.js with fixed randomness): the product opens both.
VECTORS = sorted(Path(generate.HERE).glob("*.json")) + sorted(
    (generate.HERE / "xwing").glob("*.json")
)
EXPECTED_ERROR: dict[str, type[Exception]] = {
    "header failure": envelope.FormatError,
    "mac failure": envelope.AuthenticationError,
    "payload failure": envelope.AuthenticationError,
    "truncated": envelope.AuthenticationError,
    "no match": envelope.NoMatchingKeyError,
}


# README.md: "identity_type" is absent (x25519) or "xwing" (a 32-byte X-Wing seed).
IDENTITY_TYPES: dict[str, type[envelope.X25519Identity] | type[envelope.HybridIdentity]] = {
    "x25519": envelope.X25519Identity,
    "xwing": envelope.HybridIdentity,
}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_there_are_vectors_of_every_kind() -> None:
    kinds = {load(p)["expect"] for p in VECTORS}
    assert kinds == {"ok", *EXPECTED_ERROR}
    assert len(VECTORS) >= 30


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.relative_to(generate.HERE).as_posix())
def test_vector(path: Path) -> None:
    v = load(path)
    identity = IDENTITY_TYPES[v.get("identity_type", "x25519")](base64.b64decode(v["identity"]))
    data = base64.b64decode(v["envelope"])
    if v["expect"] == "ok":
        plaintext = envelope.decrypt_bytes(data, [identity])
        assert len(plaintext) == v["plaintext_length"]
        assert hashlib.sha256(plaintext).hexdigest() == v["plaintext_sha256"]
        if "plaintext" in v:
            assert plaintext == base64.b64decode(v["plaintext"])
        else:
            assert plaintext == generate.pattern(v["plaintext_length"])
    else:
        with pytest.raises(EXPECTED_ERROR[v["expect"]]):
            envelope.decrypt_bytes(data, [identity])


def test_hybrid_vectors_exist_and_open_only_with_their_seed() -> None:
    """Python's recorded ones and the browser's deterministic ones (xwing/) alike."""
    xwing = [p for p in VECTORS if "xwing" in p.stem]
    assert {load(p)["expect"] for p in xwing} >= {"ok", "header failure", "no match"}
    assert any(p.parent.name == "xwing" for p in xwing)
    for p in xwing:
        assert load(p).get("identity_type", "x25519") in ("xwing", "x25519"), p.name


@pytest.mark.parametrize(
    "path",
    [p for p in generate.generated(generate.HERE) if p.stem.startswith("ok_")],
    ids=lambda p: p.stem,
)
def test_ok_vectors_are_reproducible_from_their_writer_inputs(path: Path) -> None:
    """What the browser writer must do: same inputs, same bytes."""
    v = load(path)
    w = v["writer"]
    file_key, salt = base64.b64decode(w["file_key"]), base64.b64decode(w["salt"])
    extra = [
        envelope._header.Stanza(s["type"], base64.b64decode(s["body"])) for s in w["extra_stanzas"]
    ]
    keys = [base64.b64decode(r) for r in w["recipients"]]
    recipients = [k for k in keys if len(k) == 32]
    # Hybrid stanzas cannot be re-encapsulated from Python: their recorded bodies are
    # used as they are, after the X25519 ones (generate.py's docstring).
    recorded = v.get("recorded_xwing_stanzas", {"bodies": []})["bodies"]
    assert len(recorded) == len(keys) - len(recipients)
    assert w["ephemeral_keys"][len(recipients) :] == [None] * len(recorded)
    xwing = [envelope.Stanza(0x0002, base64.b64decode(b)) for b in recorded]
    prefix = envelope._header.encode_prefix(salt, len(recipients) + len(extra) + len(xwing))
    info = stanza_info(LABEL_STANZA_X25519, prefix, STANZA_X25519_HPKE)
    stanzas = extra + [
        envelope._header.Stanza(
            STANZA_X25519_HPKE,
            reference_seal(pk, info, file_key, base64.b64decode(eph)),
        )
        for pk, eph in zip(recipients, w["ephemeral_keys"][: len(recipients)], strict=True)
    ]
    stanzas += xwing
    header = envelope._header.assemble_header(
        file_key, prefix, b"".join(s.encode() for s in stanzas)
    )
    plaintext = (
        base64.b64decode(v["plaintext"])
        if "plaintext" in v
        else generate.pattern(v["plaintext_length"])
    )
    # The payload comes from the product's own Encryptor with the vector's key and salt.
    enc = _stream.Encryptor._with_header(header, file_key, salt)
    produced = b"".join([enc.header, *enc.update_chunks(plaintext), *enc.finish()])
    assert produced == base64.b64decode(v["envelope"])


def test_generator_reproduces_the_committed_files(tmp_path: Path) -> None:
    generate.write(tmp_path)
    fresh = sorted(p.name for p in tmp_path.glob("*.json"))
    assert fresh == [p.name for p in generate.generated(generate.HERE)]
    for name in fresh:
        assert (tmp_path / name).read_bytes() == (generate.HERE / name).read_bytes(), name
