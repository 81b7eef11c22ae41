"""Receipts on a real server (issue 16 §5): after a submission, with JavaScript
off and on, the source can read and download a receipt that verifies offline
against the newsroom key; altered receipts fail; the objects a journalist
pulls hash to the receipt's value; the server keeps nothing new about it."""

from __future__ import annotations

import hashlib
import html
import os
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import envelope
from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from tests.cli_helpers import LANTERNE
from tests.server_process import (
    ROOT,
    SERVER_CMD,
    Instance,
    Server,
    SourceClient,
    files_under,
    run_server,
)
from tests.test_newsroom_key import newsroom_identity
from tests.test_uploads_tus import Browser, manifest

pytestmark = pytest.mark.slow

RECEIPT_RE = re.compile(r'<pre class="receipt" id="receipt"[^>]*>(.*?)</pre>', re.S)


@dataclass
class Room:
    instance: Instance
    server: Server
    keys: Path
    newsroom: bytes

    @property
    def fingerprint(self) -> str:
        return envelope.newsroom_fingerprint(self.newsroom)


def admin(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVER_CMD, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def lanterne(home: Path, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LANTERNE, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LANTERNE_HOME": str(home)},
    )


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    base = tmp_path_factory.mktemp("receipts")
    keys = base / "keys"
    write_new_identity(JournalistIdentity.generate("alice"), keys, None)
    key_file, newsroom = newsroom_identity(base / "newsroom")
    data = base / "data"
    done = admin(
        "init", "--data-dir", data, "--journalist", keys / "alice.pub", "--newsroom-key", key_file
    )
    assert done.returncode == 0, done.stderr
    assert "receipt key certified by the newsroom key" in done.stdout
    alice = envelope.PublicKey.from_json((keys / "alice.pub").read_bytes())
    instance = Instance(data, [], base / "server-tmp", base / "server.log")
    instance.tmp_dir.mkdir()
    with run_server(instance, journalist_api=True) as server:
        room = Room(instance, server, keys, newsroom)
        room.instance.journalists = []  # the JS path seals to alice below
        room.alice = alice  # type: ignore[attr-defined]
        yield room


def receipt_of(client: SourceClient | Browser, lang: str = "en") -> str:
    page = client.client.get(f"/{lang}/receipt")
    assert page.status_code == 200, page.status_code
    match = RECEIPT_RE.search(page.text)
    assert match, page.text
    text = html.unescape(match.group(1))
    download = client.client.get(f"/{lang}/receipt.txt")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/plain")
    assert download.headers["content-disposition"].startswith(
        'attachment; filename="lanterne-receipt-'
    )
    assert download.text == text
    return text


def test_a_no_js_submission_gets_a_receipt_that_verifies(room: Room, tmp_path: Path) -> None:
    with SourceClient(room.server.base_url) as source:
        source.first_submission("receipt canary 0001", [("doc.pdf", b"%PDF-1.4 x", "")])
        page = source.get("/en/codename")
        assert 'href="/en/receipt"' in page.text
        text = receipt_of(source)
    receipt = envelope.verify_receipt(text, room.newsroom)
    assert receipt.received_by == "Lanterne"
    assert receipt.objects == 3  # manifest, message, file
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", receipt.day)
    assert envelope.verify_receipt(text, room.fingerprint) == receipt
    # Nothing identifies the source: no codename, no session, no id.
    for word in ("codename", "session", "source"):
        assert word not in text.lower()

    # Altered: the day, the receiver, the hash; or another newsroom's key.
    for name, value in (
        ("day", "2020-01-01"),
        ("received-by", "Someone Else"),
        ("sha256", "0" * 64),
    ):
        altered = re.sub(rf"(?m)^{name}: .*$", f"{name}: {value}", text)
        assert altered != text
        with pytest.raises(envelope.ReceiptError):
            envelope.verify_receipt(altered, room.newsroom)
    with pytest.raises(envelope.ReceiptError, match="another newsroom key"):
        envelope.verify_receipt(text, hashlib.sha256(b"other").digest())

    # The commands: the admin's, with the instance's key or a fingerprint.
    path = tmp_path / "receipt.txt"
    path.write_text(text)
    done = admin("verify-receipt", path, "--data-dir", room.instance.data_dir)
    assert done.returncode == 0, done.stderr
    assert "valid receipt" in done.stdout
    assert "this instance holds the submission it covers" in done.stdout
    done = admin("verify-receipt", path, "--newsroom", room.fingerprint)
    assert done.returncode == 0 and "valid receipt" in done.stdout
    bad = tmp_path / "bad.txt"
    bad.write_text(re.sub(r"(?m)^day: .*$", "day: 2020-01-01", text))
    refused = admin("verify-receipt", bad, "--newsroom", room.fingerprint)
    assert refused.returncode == 1 and "not a valid receipt" in refused.stderr
    other = " ".join(["12345"] * 8)
    refused = admin("verify-receipt", path, "--newsroom", other)
    assert refused.returncode == 1 and "another newsroom key" in refused.stderr


def test_the_journalist_confirms_a_receipt_against_what_they_pulled(
    room: Room, tmp_path: Path
) -> None:
    with SourceClient(room.server.base_url) as source:
        source.first_submission("receipt canary 0002", [("a.txt", os.urandom(70_000), "")])
        text = receipt_of(source)
    path = tmp_path / "receipt.txt"
    path.write_text(text)
    home = tmp_path / "home"
    api = room.server.api_url
    assert api is not None
    done = lanterne(
        home,
        "config",
        "--server",
        api.removesuffix("/api/v1"),
        "--identity",
        room.keys / "alice.identity",
        "--newsroom",
        room.fingerprint,
    )
    assert done.returncode == 0, done.stderr
    assert lanterne(home, "pull").returncode == 0
    done = lanterne(home, "verify-receipt", path)
    assert done.returncode == 0, done.stderr
    assert "valid receipt" in done.stdout
    assert re.search(r"matches submission [0-9a-f]{32} of ", done.stdout), done.stdout
    # The hash is of the ciphertext objects exactly as the journalist holds them.
    receipt = envelope.verify_receipt(text, room.newsroom)
    objects = sorted((home / "vault" / "objects").iterdir())
    hashes = {p.name: hashlib.sha256(p.read_bytes()).digest() for p in objects}
    assert any(
        envelope.receipt_objects_hash(group).hex() == receipt.sha256
        for group in _groups_of(list(hashes.values()), receipt.objects)
    )
    # Altered, or checked against another newsroom: exit code 1, no match claimed.
    bad = tmp_path / "bad.txt"
    bad.write_text(re.sub(r"(?m)^received-by: .*$", "received-by: Other", text))
    refused = lanterne(home, "verify-receipt", bad)
    assert refused.returncode == 1 and "not a valid receipt" in refused.stderr
    refused = lanterne(home, "verify-receipt", path, "--newsroom", " ".join(["11111"] * 8))
    assert refused.returncode == 1 and "another newsroom key" in refused.stderr


def _groups_of(items: list[bytes], size: int) -> Iterator[list[bytes]]:
    from itertools import combinations

    for combo in combinations(items, size):
        yield list(combo)


def test_a_js_submission_gets_a_receipt_of_the_uploaded_ciphertext(room: Room) -> None:
    alice = room.alice  # type: ignore[attr-defined]

    def seal(plain: bytes) -> bytes:
        return envelope.encrypt_bytes(plain, [alice.recipient])

    with Browser(room.server.base_url, lang="fr") as browser:
        message = seal(b"JS message")
        document = seal(b"JS file " + os.urandom(5000))
        message_id = browser.upload(message)
        file_id = browser.upload(document)
        manifest_ct = seal(manifest((message_id, 10), [(file_id, "d.bin", "x", 5008)]))
        manifest_id = browser.upload(manifest_ct)
        done = browser.commit(manifest_id, message_id, [file_id])
        assert done.status_code == 303 and done.headers["location"] == "/fr/codename"
        codename_page = browser.client.get("/fr/codename").text
        assert "Enregistrer un récépissé de cet envoi" in codename_page
        text = receipt_of(browser, "fr")
        page = browser.client.get("/fr/receipt").text
        assert "Votre récépissé" in page and "Télécharger le récépissé" in page
        # In a right-to-left language the receipt and the fingerprint stay left to
        # right: groups of digits in reverse order would not compare.
        arabic = browser.client.get("/ar/receipt").text
        assert 'id="receipt" tabindex="0" dir="ltr"' in arabic
        assert f'<span class="fingerprint" dir="ltr">{room.fingerprint}</span>' in arabic
    receipt = envelope.verify_receipt(text, room.newsroom)
    expected = envelope.receipt_objects_hash(
        hashlib.sha256(ct).digest() for ct in (manifest_ct, message, document)
    )
    assert receipt.sha256 == expected.hex() and receipt.objects == 3


def test_the_server_keeps_no_receipt(room: Room) -> None:
    with SourceClient(room.server.base_url) as source:
        source.first_submission("receipt canary 0003")
        text = receipt_of(source)
    receipt = envelope.verify_receipt(text, room.newsroom)
    signature = re.search(r"(?m)^signature: (.*)$", text)
    assert signature
    needles = [signature.group(1).encode(), receipt.sha256.encode(), bytes.fromhex(receipt.sha256)]
    for path in files_under(room.instance.data_dir, room.instance.tmp_dir):
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, path
    log = room.instance.log_path.read_bytes()
    assert all(n not in log for n in needles)


def test_an_instance_without_a_certified_receipt_key_offers_none(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    write_new_identity(JournalistIdentity.generate("alice"), keys, None)
    data = tmp_path / "data"
    done = admin("init", "--data-dir", data, "--journalist", keys / "alice.pub")
    assert done.returncode == 0, done.stderr
    instance = Instance(data, [], tmp_path / "server-tmp", tmp_path / "server.log")
    instance.tmp_dir.mkdir()
    with run_server(instance) as server, SourceClient(server.base_url) as source:
        source.first_submission("no receipt here")
        assert "/en/receipt" not in source.get("/en/codename").text
        assert source.get("/en/receipt").status_code == 303
        assert source.get("/en/receipt.txt").status_code == 303


def test_check_reports_whether_receipts_are_certified(room: Room, tmp_path: Path) -> None:
    from server.ops.health_check import _check_receipts
    from server.store.db import Database

    data = room.instance.data_dir
    [ok] = _check_receipts(Database(data / "lanterne.sqlite3"), data / "secrets.json")
    assert ok.ok and not ok.warn and "certified by the newsroom key on" in ok.message
    other = tmp_path / "other"
    assert admin("init", "--data-dir", other).returncode == 0
    [warn] = _check_receipts(Database(other / "lanterne.sqlite3"), other / "secrets.json")
    assert warn.warn and "not certified" in warn.message


def test_a_follow_up_gets_its_own_receipt_and_logout_forgets_it(room: Room) -> None:
    with SourceClient(room.server.base_url) as source:
        codename = source.first_submission("receipt canary 0004")
        first = receipt_of(source)
        # Logged out: the receipt is gone with the session.
        token = source.csrf("/en/inbox")
        assert source.client.post("/en/logout", data={"csrf_token": token}).status_code in (
            200,
            303,
        )
        assert source.get("/en/receipt").status_code == 303
        assert source.login(codename).status_code == 303
        assert 'href="/en/receipt"' not in source.get("/en/inbox").text
        assert source.submit("a follow-up", [("b.txt", b"more", "")]).status_code == 303
        inbox = source.get("/en/inbox").text
        assert "Save a receipt of your last submission" in inbox
        second = receipt_of(source)
    one, two = (envelope.verify_receipt(t, room.newsroom) for t in (first, second))
    assert one.sha256 != two.sha256 and two.objects == 3


def test_a_desks_source_gets_a_receipt_naming_the_desk(tmp_path: Path) -> None:
    from server.languages import LANGUAGES

    keys = tmp_path / "keys"
    write_new_identity(JournalistIdentity.generate("alice"), keys, None)
    key_file, newsroom = newsroom_identity(tmp_path / "newsroom")
    data = tmp_path / "data"
    done = admin(
        "init", "--data-dir", data, "--journalist", keys / "alice.pub", "--newsroom-key", key_file
    )
    assert done.returncode == 0, done.stderr
    texts = [a for lang in LANGUAGES for a in ("--title", f"{lang}=Legal affairs")]
    texts += [a for lang in LANGUAGES for a in ("--description", f"{lang}=Contracts")]
    done = admin(
        "desks", "add", "legal", "--data-dir", data, *texts,
        "--journalist", "alice", "--newsroom-key", key_file,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    instance = Instance(data, [], tmp_path / "server-tmp", tmp_path / "server.log")
    instance.tmp_dir.mkdir()
    with run_server(instance) as server, SourceClient(server.base_url) as source:
        # One desk: the submit page offers no choice and everything goes to it
        # (docs/DESKS.md), so the first receipt already names it.
        codename = source.first_submission("to the legal desk")
        first = envelope.verify_receipt(receipt_of(source), newsroom)
        conn = sqlite3.connect(data / "lanterne.sqlite3")
        with conn:
            assert list(conn.execute("SELECT desk FROM sources")) == [("legal",)]
        conn.close()
        source.client.cookies.clear()
        assert source.login(codename).status_code == 303
        assert source.submit("to the legal desk again").status_code == 303
        receipt = envelope.verify_receipt(receipt_of(source), newsroom)
    assert first.received_by == receipt.received_by == "Lanterne — Legal affairs"
