"""Sources coming back: login with the codename, replies read in memory, throttling,
logout and account deletion, through a real server and real SQLite.
"""

from __future__ import annotations

import hmac
import itertools
import json
import sqlite3
from hashlib import sha256

import pytest

import envelope
from server.domain.source_lifecycle import ItemKind, SourceGone, SourceLifecycle
from server.domain.sources import store_reply
from server.store.db import Database
from server.store.objects import ObjectStore
from server.store.sources import SqliteSourceStore
from tests.server_process import Instance, SourceClient, db_rows

SERVER_CONFIG = """
login_failures_per_session = 3
"""


def write_reply(instance: Instance, source_id: str, text: str) -> str:
    """What the journalist API will do: encrypt to the source's reply key, store."""
    db = Database(instance.data_dir / "lanterne.sqlite3")
    [reply_key] = [r[2] for r in db_rows(instance, "sources") if r[0] == source_id]
    return store_reply(
        SourceLifecycle(SqliteSourceStore(db), ObjectStore(instance.objects_dir)),
        source_id,
        text,
        reply_key,
        [j.public.recipient for j in instance.journalists],
        "2026-11-26",
    )


def source_of_last_submission(instance: Instance) -> str:
    return str(db_rows(instance, "submissions")[-1][1])


def test_login_shows_replies_decrypted_in_memory(served) -> None:
    instance, server = served
    with SourceClient(server.base_url) as first:
        codename = first.first_submission("I have documents")
    source_id = source_of_last_submission(instance)
    reply_id = write_reply(instance, source_id, "Merci. Pouvez-vous préciser les dates ?")
    # The reply on disk is an envelope the journalists can read too.
    [row] = [r for r in db_rows(instance, "replies") if r[0] == reply_id]
    sealed = (instance.objects_dir / str(row[2])).read_bytes()
    assert b"Merci" not in sealed
    plain = envelope.decrypt_bytes(sealed, instance.identities()[:1])
    assert plain.decode() == "Merci. Pouvez-vous préciser les dates ?"

    with SourceClient(server.base_url, lang="fr") as later:
        before = later.csrf("/fr/login")
        # Loading the form makes no session; a failed attempt does, and the
        # login must then not keep its id (no session fixation).
        from server.domain import codenames

        wrong = {"csrf_token": before, "codename": codenames.generate("fr")}
        assert later.client.post("/fr/login", data=wrong).status_code == 403
        old_cookie = later.client.cookies["lanterne_session"]
        response = later.client.post(
            "/fr/login", data={"csrf_token": before, "codename": codename.upper()}
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/fr/inbox"
        assert later.client.cookies["lanterne_session"] != old_cookie
        inbox = later.get("/fr/inbox")
        assert inbox.status_code == 200
        assert "Pouvez-vous préciser les dates ?" in inbox.text
        assert "Réponse du 2026-11-26" in inbox.text


def test_database_holds_only_hashes_and_public_keys(served) -> None:
    instance, server = served
    with SourceClient(server.base_url) as src:
        codename = src.first_submission("hash check")
    source_id = source_of_last_submission(instance)
    [row] = [r for r in db_rows(instance, "sources") if r[0] == source_id]
    _id, login_hash, reply_key, created, active, deleted, desk, *later = row
    assert deleted == 0 and desk is None  # an instance without desks
    # Then an official channel's days (none yet) and the expiry shift, a small
    # number drawn at the first submission.
    *nothing_yet, shift = later
    assert set(nothing_yet) == {None} and -7 <= shift <= 7
    assert len(login_hash) == 32 and len(reply_key) == 32
    assert created == active and len(str(created)) == 10  # a day, nothing finer
    dump = "\n".join(sqlite3.connect(instance.data_dir / "lanterne.sqlite3").iterdump())
    words = codename.split()
    # Single words can occur in the schema by chance ("table", "index"); pairs cannot.
    for pair in itertools.pairwise(words):
        assert " ".join(pair) not in dump
    # The stored hash is not a plain hash of anything the codename gives away.
    canonical = " ".join(codename.split()).encode()
    assert not hmac.compare_digest(login_hash, sha256(canonical).digest())


def test_wrong_codename_is_throttled_per_session(served) -> None:
    _instance, server = served
    with SourceClient(server.base_url) as src:
        codename = src.first_submission("throttle")
    words = codename.split()
    from server.domain import codenames

    with SourceClient(server.base_url) as guesser:
        token = guesser.csrf("/en/login")
        statuses = []
        for _ in range(4):
            guess = codenames.generate("en")  # valid checksum, wrong account
            response = guesser.client.post(
                "/en/login", data={"csrf_token": token, "codename": guess}
            )
            statuses.append(response.status_code)
        assert statuses == [403, 403, 403, 429]
        assert "Too many attempts" in response.text
        # Even the right codename is refused once the session is throttled.
        response = guesser.client.post(
            "/en/login", data={"csrf_token": token, "codename": " ".join(words)}
        )
        assert response.status_code == 429
    # A fresh session still gets in.
    with SourceClient(server.base_url) as src:
        assert src.login(codename).status_code == 303


def test_logout_ends_the_session(served) -> None:
    _instance, server = served
    with SourceClient(server.base_url) as src:
        src.first_submission("logout")
        inbox = src.get("/en/inbox")
        token = inbox.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        response = src.client.post("/en/logout", data={"csrf_token": token})
        assert response.status_code == 200
        assert "You are logged out" in response.text
        assert 'lanterne_session=""' in response.headers["set-cookie"]
        assert src.get("/en/inbox").headers["location"] == "/en/login"
        assert src.get("/en/codename").headers["location"] == "/en/"


def test_deleting_an_account_erases_login_and_replies_and_keeps_what_was_sent(served) -> None:
    instance, server = served
    with SourceClient(server.base_url) as src:
        codename = src.first_submission("delete me")
        source_id = source_of_last_submission(instance)
        write_reply(instance, source_id, "a reply that must disappear")
        [reply] = [r for r in db_rows(instance, "replies") if r[1] == source_id]
        reply_file = instance.objects_dir / str(reply[2])
        assert reply_file.exists()
        # Another browser logged in as the same source: its session ends too.
        other = SourceClient(server.base_url)
        assert other.login(codename).status_code == 303
        assert other.get("/en/inbox").status_code == 200
        page = src.get("/en/delete")
        # Said before confirming: codename, replies, and what stays with the journalists.
        assert "Your codename will stop working" in page.text
        assert "What you already sent stays with the journalists" in page.text
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        refused = src.client.post("/en/delete", data={"csrf_token": token})
        assert refused.status_code == 400  # the box was not ticked
        response = src.client.post("/en/delete", data={"csrf_token": token, "confirm": "yes"})
        assert response.status_code == 200
        assert "Your account is deleted" in response.text
        assert "What you sent stays with the journalists" in response.text
        assert other.get("/en/inbox").headers["location"] == "/en/login"
        other.client.close()
    # The row stays, without login hash or reply key, marked; the replies are gone.
    [row] = [r for r in db_rows(instance, "sources") if r[0] == source_id]
    assert row[1] is None and row[2] is None and row[5] == 1
    assert source_id not in [r[1] for r in db_rows(instance, "replies")]
    assert not reply_file.exists()
    # The submission stays with the journalists, still linked to its source.
    [sub] = [r for r in db_rows(instance, "submissions") if r[1] == source_id]
    manifest_ids = [
        r[0] for r in db_rows(instance, "objects") if r[1] == sub[0] and r[2] == "manifest"
    ]
    manifest = json.loads(
        envelope.decrypt_bytes(
            (instance.objects_dir / manifest_ids[0]).read_bytes(), instance.identities()[:1]
        )
    )
    assert manifest["type"] == "lanterne-manifest/v1"
    with SourceClient(server.base_url) as src:
        assert src.login(codename).status_code == 403
    # Nothing can be replied to them any more, and nothing is left behind trying.
    db = Database(instance.data_dir / "lanterne.sqlite3")
    before = set(instance.objects_dir.iterdir())
    with pytest.raises(SourceGone):
        SourceLifecycle(SqliteSourceStore(db), ObjectStore(instance.objects_dir)).add_item(
            ItemKind.REPLY, source_id, b"LANTERNE...", None, "2026-11-26"
        )
    assert set(instance.objects_dir.iterdir()) == before


def test_the_deletion_notice_says_what_stays_in_french(served) -> None:
    _instance, server = served
    with SourceClient(server.base_url, lang="fr") as src:
        src.first_submission("supprimez-moi")
        page = src.get("/fr/delete")
        assert "Ce que vous avez déjà envoyé reste chez les journalistes" in page.text
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        done = src.client.post("/fr/delete", data={"csrf_token": token, "confirm": "yes"})
        assert done.status_code == 200
        assert "Ce que vous avez envoyé reste chez les journalistes" in done.text
        assert "ne peuvent plus vous répondre" in done.text
