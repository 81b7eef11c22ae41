"""Decrypting submissions from the vault: names, manifests, exact bytes, cleaning."""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import pytest

from journalist_cli import receive, safe_text
from journalist_cli.receive import ManifestError, sanitise_name, unique_names
from journalist_cli.safe_text import terminal as terminal_safe
from journalist_cli.vault import Vault
from journalist_cli.workflow_errors import ObjectRefused, VaultError
from tests.journalist_fixtures import add_items, build_source, journalist, store
from tests.metadata_corpus import make_jpeg, token

# --- file names ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("..\\..\\boot.ini", "_.._boot.ini"),
        ("/absolute/path.txt", "_absolute_path.txt"),
        (".bashrc", "bashrc"),
        ("...", "file"),
        ("", "file"),
        ("   ", "file"),
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("LPT1.tar.gz", "_LPT1.tar.gz"),
        ("nul", "_nul"),
        ("a\x00b\x1b[31mc.txt", "ab[31mc.txt"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # right-to-left override dropped
        ("line\nbreak\r.txt", "line break .txt"),
        ('what?<>|*:".doc', "what_______.doc"),
        ("trailing dots. . .", "trailing dots"),
        ("tab\there.txt", "tab here.txt"),
        ("e\u0301te\u0301.txt", "été.txt"),  # NFC
    ],
)
def test_sanitise_name(raw: str, expected: str) -> None:
    assert sanitise_name(raw) == expected


def test_sanitised_names_are_bounded_and_keep_a_short_extension() -> None:
    long = "é" * 300 + ".pdf"
    name = sanitise_name(long)
    assert len(name.encode()) <= receive.MAX_NAME_BYTES
    assert name.endswith(".pdf")
    assert name.encode().decode() == name  # no split UTF-8 sequence
    weird_ext = sanitise_name("x." + "y" * 50)
    assert len(weird_ext.encode()) <= receive.MAX_NAME_BYTES


def test_every_sanitised_name_is_a_plain_file_name() -> None:
    hostile = ["../x", "a/../../b", "/", "\\", ".", "..", "x/", "\x00", "a\u2028b", "\ud800"]
    for raw in hostile:
        name = sanitise_name(raw)
        assert "/" not in name and "\\" not in name and not name.startswith(".")
        assert name not in ("", ".", "..")
        assert all(ch.isprintable() for ch in name)


def test_unique_names_deduplicate_case_insensitively() -> None:
    names = unique_names(["a.pdf", "A.PDF", "a.pdf", "../a.pdf", "b", "b"])
    assert names == ["a.pdf", "A (2).PDF", "a (3).pdf", "_a.pdf", "b", "b (2)"]
    assert len({n.casefold() for n in names}) == len(names)


def test_sanitised_names_never_start_with_a_dash() -> None:
    for raw in ("-rf", "--help", " -x.pdf", ".-a", "-"):
        assert not sanitise_name(raw).startswith("-"), raw
    assert sanitise_name("-rf.txt") == "_rf.txt"
    assert unique_names(["-a", "_a"]) == ["_a", "_a (2)"]


def test_json_text_is_lossless_and_harmless() -> None:
    doc = {"name": "a\x9b31m\u202eb\x1b\U000e0001é", "n": [1, "\n"]}
    text = safe_text.json_text(doc)
    assert json.loads(text) == doc
    assert all(ch.isprintable() or ch in "\n " for ch in text)
    assert "é" in text  # readable, not ASCII-escaped
    assert safe_text.terminal("a\nb\tc", one_line=True) == "a<U+A>b<U+9>c"


def test_no_code_point_passes_raw() -> None:
    """Every code point of the planes in use (and the ends of the private ones),
    alone between two letters, in both modes."""
    dangerous = safe_text.DANGEROUS_CATEGORIES
    planes = [range(0x30000), range(0xE0000, 0xE1000), range(0xF0000, 0xF0100)]
    text = "".join(f"a{chr(cp)}b" for plane in planes for cp in plane)
    text += "\U0010fffd\U0010ffff"
    for one_line in (False, True):
        shown = safe_text.terminal(text, one_line=one_line)
        kept = set() if one_line else set("\n\t")
        assert not {c for c in shown if unicodedata.category(c) in dangerous} - kept


def test_terminal_safe_neutralises_escapes() -> None:
    shown = terminal_safe("ok\n\x1b]0;pwned\x07 \u202eevil\tend")
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert "<U+1B>" in shown and "\n" in shown and "\t" in shown


# --- manifests -------------------------------------------------------------------


def _manifest(**changes: object) -> bytes:
    doc: dict[str, object] = {
        "type": "lanterne-manifest/v1",
        "received_on": "2026-11-20",
        "language": "fr",
        "follow_up": False,
        "message": {"object": "m1", "size": 5},
        "files": [{"object": "f1", "name": "a.pdf", "type": "application/pdf", "size": 10}],
        "answers": [{"id": "q1", "question": "Where?", "answer": "Lyon"}],
    }
    doc.update(changes)
    return json.dumps(doc).encode()


def test_parse_manifest() -> None:
    m = receive.parse_manifest(_manifest())
    assert m.message_object == "m1" and m.message_size == 5
    assert m.files[0].name == "a.pdf" and m.files[0].size == 10
    assert m.answers[0].answer == "Lyon"
    assert m.object_ids() == ["m1", "f1"]
    assert receive.parse_manifest(_manifest(message=None, files=[])).object_ids() == []


@pytest.mark.parametrize(
    "bad",
    [
        b"\xff\xfe",
        b"[]",
        _manifest(type="something-else"),
        _manifest(files={"a": 1}),
        _manifest(files=[{"object": "f1", "name": "x", "size": -1}]),
        _manifest(files=[{"object": "f1", "name": "x", "size": True}]),
        _manifest(files=[{"name": "x", "size": 1}]),
        _manifest(files=["x"]),
        _manifest(message="text"),
        _manifest(answers=[{"question": 1, "answer": "x"}]),
        _manifest(files=[{"object": "m1", "name": "x", "size": 1}]),  # object used twice
    ],
)
def test_bad_manifests_are_refused(bad: bytes) -> None:
    with pytest.raises(ManifestError):
        receive.parse_manifest(bad)


# --- decrypting from a vault -----------------------------------------------------


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault.open(tmp_path / "home")


def _failure(
    results: list[receive.DecryptedSubmission], kind: type[Exception], match: str
) -> Exception:
    """The one submission's error: a failure is reported in its result, not raised."""
    [result] = results
    assert isinstance(result.error, kind) and match in str(result.error), result.error
    return result.error


def test_decrypt_writes_exact_originals_cleaned_copies_and_reports(
    vault: Vault, tmp_path: Path
) -> None:
    me = journalist()
    jpeg = make_jpeg(tmp_path / "photo.jpg", name="Recv")
    photo = jpeg.path.read_bytes()
    binary = os.urandom(200_000)
    built = build_source(
        [me.decryption.recipient],
        [
            (
                "Bonjour, voici les documents.",
                [
                    ("../../photo.jpg", photo, "image/jpeg"),
                    ("data.bin", binary, "application/octet-stream"),
                    ("DATA.BIN", b"second", "application/octet-stream"),
                ],
            )
        ],
        answers=[{"id": "where", "question": "Where?", "answer": "Lyon"}],
    )
    store(vault, built)
    out = tmp_path / "out"
    [result] = receive.decrypt_source(vault, vault.source(built.id), [me.decryption], out)
    sub = result.directory
    assert sub.parent == out / receive.designations.slug(built.id)
    assert (sub / "message.txt").read_text() == "Bonjour, voici les documents."
    assert "Where?\nLyon" in (sub / "answers.txt").read_text()
    assert (sub / "original" / "_.._photo.jpg").read_bytes() == photo
    assert (sub / "original" / "data.bin").read_bytes() == binary
    assert (sub / "original" / "DATA (2).BIN").read_bytes() == b"second"
    files = json.loads((sub / "files.json").read_text())
    assert [f["name"] for f in files] == ["../../photo.jpg", "data.bin", "DATA.BIN"]
    cleaned = (sub / "cleaned" / "_.._photo.jpg").read_bytes()
    assert cleaned != photo
    for t in jpeg.tokens:
        assert t.encode() not in cleaned
    reports = json.loads((sub / "cleaning.json").read_text())
    assert {r["source"] for r in reports} == {
        "original/_.._photo.jpg",
        "original/data.bin",
        "original/DATA (2).BIN",
    }
    jpeg_report = next(r for r in reports if r["source"] == "original/_.._photo.jpg")
    assert jpeg_report["status"] == "cleaned" and jpeg_report["output"] == "cleaned/_.._photo.jpg"
    assert any(f["category"] == "gps" for f in jpeg_report["removed"])
    # Nothing escaped the output directory, and no work directory was left behind.
    assert all(p.resolve().is_relative_to(out.resolve()) for p in out.rglob("*"))
    assert not [p for p in out.rglob("*.part")]
    # Running it again leaves the complete directory alone.
    [again] = receive.decrypt_source(vault, vault.source(built.id), [me.decryption], out)
    assert again.skipped
    assert token("RecvComment").encode() in (sub / "original" / "_.._photo.jpg").read_bytes()


def test_a_tampered_object_is_refused_and_nothing_is_written(vault: Vault, tmp_path: Path) -> None:
    me = journalist()
    built = build_source([me.decryption.recipient], [("msg", [("f.txt", b"x" * 5000, "")])])
    store(vault, built)
    file_obj = built.detail.submissions[0].objects[-1]
    path = vault.object_path(file_obj.id)
    data = bytearray(path.read_bytes())
    data[-100] ^= 1
    path.write_bytes(bytes(data))
    out = tmp_path / "out"
    results = receive.decrypt_source(
        vault, vault.source(built.id), [me.decryption], out, clean=False
    )
    error = _failure(results, ObjectRefused, "failed authentication")
    assert file_obj.id in str(error)
    assert [p for p in out.rglob("*") if p.is_file() and p.name != receive.MARKER] == []


def test_wrong_key_and_missing_objects(vault: Vault, tmp_path: Path) -> None:
    me, stranger = journalist("alice"), journalist("eve")
    built = build_source([me.decryption.recipient], [("msg", [])])
    store(vault, built, objects=False)
    results = receive.decrypt_source(vault, vault.source(built.id), [me.decryption], tmp_path / "o")
    _failure(results, VaultError, "lanterne pull")
    for oid, blob in built.blobs.items():
        vault.write_object(oid, blob)
    results = receive.decrypt_source(
        vault, vault.source(built.id), [stranger.decryption], tmp_path / "o"
    )
    _failure(results, ObjectRefused, "none of the given keys")


def test_a_manifest_pointing_into_another_submission_is_refused(
    vault: Vault, tmp_path: Path
) -> None:
    me = journalist()
    r = [me.decryption.recipient]
    victim = build_source(r, [("secret", [])])
    store(vault, victim)
    stolen = victim.detail.submissions[0].objects[1].id  # the victim's message
    thief = build_source(
        r, [("", [])], manifest_override={"message": {"object": stolen, "size": 6}}
    )
    store(vault, thief)
    results = receive.decrypt_source(vault, vault.source(thief.id), [me.decryption], tmp_path / "o")
    _failure(results, ManifestError, "another submission")


def test_size_mismatch_with_the_manifest_is_refused(vault: Vault, tmp_path: Path) -> None:
    me = journalist()
    built = build_source([me.decryption.recipient], [("", [("a.txt", b"abc", "")])])
    sub = built.detail.submissions[0]
    fid = sub.objects[1].id
    liar = build_source(
        [me.decryption.recipient],
        [("", [])],
        manifest_override={"files": [{"object": fid, "name": "a.txt", "type": "", "size": 4}]},
        source_id=built.id,
    )
    # The liar's manifest, with the real file object in its submission.
    detail = liar.detail
    liar_sub = detail.submissions[0]
    merged = type(liar_sub)(liar_sub.id, liar_sub.received_on, (*liar_sub.objects, sub.objects[1]))
    liar.detail = type(detail)(detail.source, (merged,))
    liar.blobs[fid] = built.blobs[fid]
    store(vault, liar)
    results = receive.decrypt_source(
        vault, vault.source(built.id), [me.decryption], tmp_path / "o", clean=False
    )
    _failure(results, ManifestError, "the manifest says 4")
    assert not list((tmp_path / "o").rglob("a.txt"))


def test_show_reads_messages_replies_and_notes(vault: Vault) -> None:
    alice, bruno = journalist("alice"), journalist("bruno")
    everyone = [alice.decryption.recipient, bruno.decryption.recipient]
    built = build_source(everyone, [("first message", [("a.txt", b"A", "text/plain")])])
    assert built.reply_identity is not None
    add_items(built, "reply", [("alice", "thank you")], [built.reply_identity.recipient, *everyone])
    add_items(built, "note", [("bruno", "call the lawyer")], everyone)
    add_items(built, "note", [("carol", "old note")], [built.reply_identity.recipient])
    store(vault, built)
    [sub] = vault.submissions(built.id)
    shown = receive.read_submission(vault, sub, [bruno.decryption])
    assert shown.message == "first message" and not shown.message_truncated
    assert shown.files == [("a.txt", "text/plain", 1)]
    items = receive.read_items(vault, built.id, [bruno.decryption])
    texts = {(i.kind, i.journalist, i.text) for i in items}
    assert texts == {
        ("reply", "alice", "thank you"),
        ("note", "bruno", "call the lawyer"),
        ("note", "carol", None),  # not encrypted to bruno: shown as such, not an error
    }
