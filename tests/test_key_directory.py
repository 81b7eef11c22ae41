"""The newsroom's signed key directory (envelope/directory.py, SPEC §11), attacked."""

from __future__ import annotations

import base64
import datetime
import json

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import envelope
from envelope import directory
from envelope.keys import PublicKey, b64encode

SEED = bytes(range(32))
OTHER_SEED = bytes(range(1, 33))
NEWSROOM = directory.newsroom_public_key(SEED)
DAY = datetime.date(2026, 12, 4)


def _ed25519_sign(seed: bytes, message: bytes) -> bytes:
    # The test signs with PyNaCl, a second Ed25519 implementation.
    return bytes(nacl.signing.SigningKey(seed).sign(message).signature)


def journalist(name: str, hybrid: bool = False) -> PublicKey:
    return PublicKey(
        name=name,
        x25519=envelope.X25519Identity.generate().recipient,
        signing_key=bytes(32),
        hybrid=envelope.HybridIdentity.generate().recipient if hybrid else None,
    )


# A hybrid (v2) key and an X25519-only (v1) one: a directory carries both.
KEYS = [journalist("alice", hybrid=True), journalist("bob")]


def signed(serial: int = 3, keys: list[PublicKey] = KEYS, seed: bytes = SEED) -> bytes:
    return directory.sign_directory(keys, serial=serial, day=DAY, seed=seed)


def reshaped(document: bytes, **changes: object) -> bytes:
    doc = json.loads(document)
    doc.update(changes)
    return json.dumps(doc).encode()


def resigned_payload(payload: dict[str, object], seed: bytes = SEED) -> bytes:
    """A payload signed properly but built by hand (to attack the parser behind the signature)."""
    raw = json.dumps(payload).encode()
    sig = _ed25519_sign(seed, directory.LABEL_SIGNATURE + raw)
    return json.dumps(
        {
            "type": directory.DIRECTORY_TYPE,
            "newsroom_key": b64encode(directory.newsroom_public_key(seed)),
            "payload": b64encode(raw),
            "signature": b64encode(sig),
        }
    ).encode()


def test_a_signed_directory_verifies_and_lists_its_keys() -> None:
    d = directory.verify_directory(signed(), NEWSROOM)
    assert d.serial == 3 and d.day == "2026-12-04"
    assert [k.name for k in d.journalists] == ["alice", "bob"]
    assert d.find("bob") == KEYS[1]
    assert d.journalists[0].recipient.public_bytes == KEYS[0].recipient.public_bytes


def test_signing_is_deterministic() -> None:
    assert signed() == signed()


def test_another_newsroom_key_is_refused_even_when_the_document_names_it() -> None:
    other = signed(seed=OTHER_SEED)
    with pytest.raises(directory.DirectoryError, match="another newsroom key"):
        directory.verify_directory(other, NEWSROOM)
    # The attacker names our key but signs with theirs.
    forged = reshaped(other, newsroom_key=b64encode(NEWSROOM))
    with pytest.raises(directory.DirectoryError, match="signature does not verify"):
        directory.verify_directory(forged, NEWSROOM)


def test_a_changed_payload_is_refused() -> None:
    doc = json.loads(signed())
    payload = json.loads(base64.urlsafe_b64decode(doc["payload"] + "=="))
    payload["journalists"].append(json.loads(journalist("mallory").to_json()))
    raw = json.dumps(payload).encode()
    forged = reshaped(signed(), payload=b64encode(raw))
    with pytest.raises(directory.DirectoryError, match="signature does not verify"):
        directory.verify_directory(forged, NEWSROOM)


def test_a_signature_without_the_label_is_refused() -> None:
    """An Ed25519 signature the newsroom key made over the bare payload (for any
    other purpose) must not pass as a directory signature."""
    doc = json.loads(signed())
    raw = base64.urlsafe_b64decode(doc["payload"] + "==")
    bare = _ed25519_sign(SEED, raw)
    with pytest.raises(directory.DirectoryError, match="signature does not verify"):
        directory.verify_directory(reshaped(signed(), signature=b64encode(bare)), NEWSROOM)


def test_an_older_serial_is_a_downgrade() -> None:
    assert directory.verify_directory(signed(3), NEWSROOM, min_serial=3).serial == 3
    with pytest.raises(directory.DowngradeError, match="serial 2"):
        directory.verify_directory(signed(2), NEWSROOM, min_serial=3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"serial": 0}, "serial"),
        ({"serial": True}, "serial"),
        ({"serial": 2.0}, "serial"),
        ({"serial": 1 << 53}, "serial"),
        ({"day": "2026-13-01"}, "day"),
        ({"day": "2026-12-04T10:00"}, "day"),
        ({"journalists": {}}, "list of journalists"),
        ({"type": "lanterne-key-directory-payload/v0"}, "payload"),
    ],
)
def test_signed_but_malformed_payloads_are_refused(change: dict[str, object], message: str) -> None:
    payload: dict[str, object] = {
        "type": directory.PAYLOAD_TYPE,
        "serial": 1,
        "day": "2026-12-04",
        "journalists": [json.loads(k.to_json()) for k in KEYS],
    }
    payload.update(change)
    with pytest.raises(directory.DirectoryError, match=message):
        directory.verify_directory(resigned_payload(payload), NEWSROOM)


def test_duplicate_names_are_refused_when_signing_and_verifying() -> None:
    twice = [KEYS[0], journalist("alice")]
    with pytest.raises(directory.DirectoryError, match="unique"):
        signed(keys=twice)
    payload = {
        "type": directory.PAYLOAD_TYPE,
        "serial": 1,
        "day": "2026-12-04",
        "journalists": [json.loads(k.to_json()) for k in twice],
    }
    with pytest.raises(directory.DirectoryError, match="same name"):
        directory.verify_directory(resigned_payload(payload), NEWSROOM)


def test_non_canonical_base64_and_oversized_documents_are_refused() -> None:
    doc = json.loads(signed())
    with pytest.raises(directory.DirectoryError, match="canonical"):
        directory.verify_directory(reshaped(signed(), payload=doc["payload"] + "="), NEWSROOM)
    with pytest.raises(directory.DirectoryError, match="too large"):
        directory.verify_directory(b" " * (directory.MAX_DOCUMENT + 1), NEWSROOM)


def test_the_newsroom_fingerprint_is_eight_groups_and_its_own_label() -> None:
    fp = directory.newsroom_fingerprint(NEWSROOM)
    groups = fp.split(" ")
    assert len(groups) == 8 and all(len(g) == 5 and g.isdigit() for g in groups)
    assert fp != directory.newsroom_fingerprint(directory.newsroom_public_key(OTHER_SEED))
    # The same 32 bytes as a journalist's keys never give the same digits.
    assert fp != envelope.fingerprint(NEWSROOM, b"")


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_mutation_is_refused_with_a_directory_error(data: st.DataObject) -> None:
    document = bytearray(signed())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(document) - 1))
        document[i] = data.draw(st.integers(0, 255))
    try:
        d = directory.verify_directory(bytes(document), NEWSROOM)
    except directory.DirectoryError:
        return
    # Only changes outside what the signature covers (JSON whitespace) may pass,
    # and then the directory must be exactly the signed one.
    assert d == directory.verify_directory(signed(), NEWSROOM)


# Issue 16 §1: desks, signed (SPEC §11.1).
DESKED = [journalist("alice", hybrid=True), journalist("bob"), journalist("chloe")]
DESKS = [directory.DirectoryDesk("news", ("alice",)), directory.DirectoryDesk("legal", ("bob",))]


def desked(**changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "type": directory.PAYLOAD_TYPE_V2,
        "serial": 1,
        "day": "2026-12-04",
        "journalists": [json.loads(k.to_json()) for k in DESKED],
        "desks": [{"name": d.name, "members": list(d.members)} for d in DESKS],
        "all_desks": ["chloe"],
    }
    payload.update(changes)
    return payload


def test_desks_are_signed_and_name_their_recipients() -> None:
    document = directory.sign_directory(
        DESKED, serial=4, day=DAY, seed=SEED, desks=DESKS, all_desks=["chloe"]
    )
    found = directory.verify_directory(document, NEWSROOM)
    payload = json.loads(base64.urlsafe_b64decode(json.loads(document)["payload"] + "=="))
    assert payload["type"] == "lanterne-key-directory-payload/v2"
    assert found.desks == tuple(DESKS) and found.all_desks == ("chloe",)
    assert [k.name for k in found.recipients_for("news")] == ["alice", "chloe"]
    assert [k.name for k in found.recipients_for("legal")] == ["bob", "chloe"]
    assert [k.name for k in found.recipients_for(None)] == ["alice", "bob", "chloe"]
    with pytest.raises(directory.DirectoryError, match="no desk named 'hr'"):
        found.recipients_for("hr")


def test_without_desks_the_directory_stays_v1_for_older_readers() -> None:
    payload = json.loads(base64.urlsafe_b64decode(json.loads(signed())["payload"] + "=="))
    assert payload["type"] == "lanterne-key-directory-payload/v1" and "desks" not in payload
    assert directory.verify_directory(signed(), NEWSROOM).desks == ()


def test_a_server_cannot_add_a_member_to_a_signed_desk() -> None:
    """The compromised server's move: put its own journalist in a desk after signing."""
    document = json.loads(
        directory.sign_directory(DESKED, serial=4, day=DAY, seed=SEED, desks=DESKS)
    )
    payload = json.loads(base64.urlsafe_b64decode(document["payload"] + "=="))
    payload["desks"][0]["members"].append("bob")
    document["payload"] = b64encode(json.dumps(payload, sort_keys=True).encode())
    with pytest.raises(directory.DirectoryError, match="signature"):
        directory.verify_directory(json.dumps(document), NEWSROOM)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"desks": {}}, "list of desks"),
        ({"desks": [{"name": "news"}]}, "name and its members"),
        ({"desks": [{"name": "News!", "members": []}]}, "desk name"),
        ({"desks": [{"name": "news", "members": ["mallory"]}]}, "does not list"),
        ({"desks": [{"name": "news", "members": ["bob", "bob"]}]}, "twice"),
        ({"desks": [{"name": "a", "members": []}, {"name": "a", "members": []}]}, "same name"),
        ({"all_desks": ["mallory"]}, "does not list"),
        ({"all_desks": None}, "list of names"),
    ],
)
def test_signed_but_malformed_desks_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(directory.DirectoryError, match=message):
        directory.verify_directory(resigned_payload(desked(**change)), NEWSROOM)


def test_desks_naming_unknown_journalists_are_never_signed() -> None:
    with pytest.raises(directory.DirectoryError, match="does not list"):
        directory.sign_directory(
            KEYS, serial=1, day=DAY, seed=SEED, desks=[directory.DirectoryDesk("x", ("zoe",))]
        )
