"""The journalist API (docs/JOURNALIST_API.md) against a real server process:
signed-challenge login and its refusals, resources, triage, notes and replies,
deletion. The OpenAPI document and schemathesis: test_journalist_api_contract.py."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

import envelope
from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from server.store.db import Database
from server.web.journalist_api.auth import Authenticator, AuthFailed, Refusal, signed_message
from server.web.journalist_api.routes import MAX_MOVE_BODY
from tests.clocks import FakeClock
from tests.server_process import ROOT, SERVER_CMD, Instance, Server, SourceClient, run_server

PDF = b"%PDF-1.4\n" + os.urandom(200_000) + b"\n%%EOF\n"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Room:
    server: Server
    people: dict[str, JournalistIdentity]
    codename: str
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def api(self) -> str:
        assert self.server.api_url is not None
        return self.server.api_url


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    base = tmp_path_factory.mktemp("api")
    people = {n: JournalistIdentity.generate(n) for n in ("alice", "bruno", "chloe")}
    for ident in people.values():
        write_new_identity(ident, base / "keys", None)
    data = base / "data"
    init = [*SERVER_CMD, "init", "--data-dir", str(data)]
    for name in people:
        init += ["--journalist", str(base / "keys" / f"{name}.pub")]
    subprocess.run(init, check=True, cwd=ROOT, capture_output=True)
    instance = Instance(data, [], base / "server-tmp", base / "server.log")
    instance.tmp_dir.mkdir()
    with run_server(instance, journalist_api=True) as server:
        with SourceClient(server.base_url) as source:
            codename = source.first_submission(
                "Voici le rapport.", [("rapport.pdf", PDF, "application/pdf")]
            )
        room = Room(server, people, codename)
        yield room
        for c in room.clients:
            c.close()


def sign_in(room: Room, name: str, *, host: str | None = None) -> tuple[str, dict[str, str]]:
    """Log in as ``name``; returns the token and the body that obtained it."""
    challenge = httpx.post(f"{room.api}/auth/challenge").json()["challenge"]
    host = host or room.api.split("/")[2]
    sig = room.people[name].signing.sign(signed_message(unb64(challenge), host)).signature
    body = {"journalist": name, "challenge": challenge, "signature": b64(sig)}
    r = httpx.post(f"{room.api}/auth/token", json=body)
    return (r.json()["token"] if r.status_code == 200 else ""), body


def client(room: Room, name: str = "alice") -> httpx.Client:
    token, _ = sign_in(room, name)
    assert token
    api = httpx.Client(base_url=room.api, headers={"Authorization": f"Bearer {token}"})
    room.clients.append(api)
    return api


def the_source(api: httpx.Client) -> dict:
    [source] = api.get("/sources").json()
    return source


# --- Authentication -------------------------------------------------------------


def test_a_signature_works_once(room: Room) -> None:
    token, body = sign_in(room, "alice")
    assert token
    replay = httpx.post(f"{room.api}/auth/token", json=body)
    assert replay.status_code == 401
    assert replay.json()["error"] == "unauthorized"


def test_a_signature_for_another_host_is_refused(room: Room) -> None:
    token, _ = sign_in(room, "alice", host="someone-elses.onion")
    assert token == ""


def test_wrong_key_unknown_journalist_and_bad_tokens_are_refused(room: Room) -> None:
    challenge = httpx.post(f"{room.api}/auth/challenge").json()["challenge"]
    host = room.api.split("/")[2]
    sig = room.people["bruno"].signing.sign(signed_message(unb64(challenge), host)).signature
    as_alice = {"journalist": "alice", "challenge": challenge, "signature": b64(sig)}
    assert httpx.post(f"{room.api}/auth/token", json=as_alice).status_code == 401
    nobody = {"journalist": "mallory", "challenge": challenge, "signature": b64(sig)}
    assert httpx.post(f"{room.api}/auth/token", json=nobody).status_code == 401
    for headers in ({}, {"Authorization": "Bearer " + b64(os.urandom(32))}, {"Authorization": "x"}):
        r = httpx.get(f"{room.api}/sources", headers=headers)
        assert r.status_code == 401
        assert r.json()["error"] == "unauthorized"


def test_every_401_names_its_scheme(room: Room) -> None:
    # RFC 9110 §15.5.2: a 401 carries WWW-Authenticate, a login refused as much
    # as a missing or unknown token.
    _, body = sign_in(room, "alice")
    refused = [
        httpx.post(f"{room.api}/auth/token", json=body),  # the challenge was used
        httpx.get(f"{room.api}/sources"),
        httpx.get(f"{room.api}/sources", headers={"Authorization": "Bearer " + b64(bytes(32))}),
    ]
    for r in refused:
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer realm="lanterne"'
    assert refused[0].json()["reason"] == "challenge_expired"


def _chunks(data: bytes) -> Iterator[bytes]:
    """A body sent without Content-Length (chunked), as a client may."""
    for i in range(0, len(data), 16 << 10):
        yield data[i : i + (16 << 10)]


def test_json_bodies_over_their_limit_get_a_json_413_and_nothing_changes(room: Room) -> None:
    # FastAPI reads a JSON body whole before validating it: each operation that
    # takes one caps it (routes.MAX_*_BODY), whether the size is declared or not.
    api = client(room)
    sid = the_source(api)["id"]
    before = api.get(f"/sources/{sid}").json()
    padding = "x" * (5 << 10)
    login = json.dumps({"journalist": "alice", "challenge": padding, "signature": ""}).encode()
    patch = json.dumps({"add_tags": ["t" * 32] * 2100}).encode()  # about 76 KiB
    move = json.dumps({"desk": "default", "objects": [{"old": "a" * 64, "new": "b" * 64}]})
    move_body = move.replace("]", ", " + ", ".join(['{"old": "", "new": ""}'] * 800_000) + "]")
    cases = [
        ("POST", f"{room.api}/auth/token", login, 4 << 10),
        ("PATCH", f"{room.api}/sources/{sid}", patch, 64 << 10),
        ("POST", f"{room.api}/sources/{sid}/move", move_body.encode(), 16 << 20),
    ]
    headers = {"Content-Type": "application/json", **api.headers}
    for method, url, body, limit in cases:
        assert len(body) > limit
        for content in (body, _chunks(body)):
            r = httpx.request(method, url, content=content, headers=headers, timeout=60)
            assert r.status_code == 413, (url, r.text)
            assert r.json() == {"error": "too_large", "message": f"the body is over {limit} bytes"}
    assert api.get(f"/sources/{sid}").json() == before
    token, _ = sign_in(room, "alice")  # the server is as it was
    assert token
    # The largest move the schema allows still fits (ids of 64 characters).
    largest = {"desk": "d" * 32, "objects": [{"old": "a" * 64, "new": "b" * 64}] * 100_000}
    assert len(json.dumps(largest)) < MAX_MOVE_BODY


def test_challenges_and_tokens_expire() -> None:
    import nacl.signing

    clock = FakeClock()
    auth = Authenticator(clock)
    key = nacl.signing.SigningKey.generate()
    me = (1, bytes(key.verify_key))
    challenge = auth.new_challenge()
    clock.now += 61
    with pytest.raises(AuthFailed) as refused:
        auth.redeem(challenge, key.sign(signed_message(challenge, "h")).signature, ["h"], "h", me)
    assert refused.value.reason is Refusal.CHALLENGE
    challenge = auth.new_challenge()
    token = auth.redeem(
        challenge, key.sign(signed_message(challenge, "h")).signature, ["h"], "h", me
    )
    assert auth.session(token).journalist_id == 1
    assert auth.session(token).signing_key == bytes(key.verify_key)
    clock.now += 901
    with pytest.raises(AuthFailed) as refused:
        auth.session(token)
    assert refused.value.reason is Refusal.TOKEN


def test_a_challenge_is_bound_to_the_server_that_made_it() -> None:
    import nacl.signing

    key = nacl.signing.SigningKey.generate()
    me = (1, bytes(key.verify_key))
    other = Authenticator(FakeClock()).new_challenge()  # e.g. before a restart
    auth = Authenticator(FakeClock())
    forged = bytearray(auth.new_challenge())
    forged[0] ^= 1  # a later expiry, say
    for challenge in (other, bytes(forged)):
        with pytest.raises(AuthFailed) as refused:
            auth.redeem(
                challenge, key.sign(signed_message(challenge, "h")).signature, ["h"], "h", me
            )
        assert refused.value.reason is Refusal.CHALLENGE


def test_a_removed_journalist_loses_access_at_once(room: Room) -> None:
    api = client(room, "chloe")
    assert api.get("/sources").status_code == 200
    subprocess.run(
        [
            *SERVER_CMD,
            "journalists",
            "remove",
            "--data-dir",
            str(room.server.instance.data_dir),
            "chloe",
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    assert api.get("/sources").status_code == 401
    assert sign_in(room, "chloe")[0] == ""


# --- Resources ------------------------------------------------------------------


def test_sources_items_and_objects(room: Room) -> None:
    api = client(room)
    source = the_source(api)
    assert source["submissions"] == 1 and source["seen"] is False
    detail = api.get(f"/sources/{source['id']}").json()
    [sub] = detail["items"]["submissions"]
    kinds = {o["kind"]: o for o in sub["objects"]}
    assert set(kinds) == {"manifest", "message", "file"}
    me = room.people["alice"].identities()
    manifest = json.loads(
        envelope.decrypt_bytes(api.get(f"/objects/{kinds['manifest']['id']}").content, me)
    )
    assert manifest["type"] == "lanterne-manifest/v1"
    assert manifest["files"][0]["name"] == "rapport.pdf"
    whole = api.get(f"/objects/{kinds['file']['id']}")
    assert whole.status_code == 200 and len(whole.content) == kinds["file"]["size"]
    assert envelope.decrypt_bytes(whole.content, me) == PDF
    part = api.get(f"/objects/{kinds['file']['id']}", headers={"Range": "bytes=1000-"})
    assert part.status_code == 206
    assert part.content == whole.content[1000:]
    assert (
        part.headers["content-range"] == f"bytes 1000-{len(whole.content) - 1}/{len(whole.content)}"
    )
    assert (
        api.get(f"/objects/{kinds['file']['id']}", headers={"Range": "bytes=0-10"}).status_code
        == 416
    )
    assert api.get("/objects/" + "0" * 32).status_code == 404
    assert api.get("/objects/..%2Fsecrets.json").status_code == 404
    assert api.get("/sources/nope").status_code == 404


def test_journalists_lists_every_key_with_fingerprints(room: Room) -> None:
    keys = {j["name"]: j for j in client(room).get("/journalists").json()}
    alice = room.people["alice"].public
    assert keys["alice"]["fingerprint"] == alice.fingerprint
    assert keys["alice"]["encryption_key"] == alice.x25519.to_text()
    assert alice.hybrid is not None
    assert keys["alice"]["hybrid_key"] == alice.hybrid.to_text()


def test_triage_tags_atomic_and_validated(room: Room) -> None:
    api = client(room)
    sid = the_source(api)["id"]
    r = api.patch(
        f"/sources/{sid}", json={"seen": True, "starred": True, "add_tags": ["budget", "mairie"]}
    )
    assert r.status_code == 200
    assert (r.json()["seen"], r.json()["starred"], r.json()["tags"]) == (
        True,
        True,
        ["budget", "mairie"],
    )
    other = client(room, "bruno")
    assert other.patch(f"/sources/{sid}", json={"add_tags": ["urgent"]}).json()["tags"] == [
        "budget",
        "mairie",
        "urgent",
    ]
    assert api.patch(f"/sources/{sid}", json={"remove_tags": ["mairie"]}).json()["tags"] == [
        "budget",
        "urgent",
    ]
    assert api.patch(f"/sources/{sid}", json={"add_tags": ["no spaces"]}).status_code == 400
    assert api.patch(f"/sources/{sid}", json={"assignee": "mallory"}).status_code == 400
    assert api.patch(f"/sources/{sid}", json={"assignee": "bruno"}).json()["assignee"] == "bruno"
    assert api.patch(f"/sources/{sid}", json={"assignee": None}).json()["assignee"] is None
    assert api.patch(f"/sources/{sid}", json={"seen": "maybe"}).status_code == 400


def test_notes_and_replies_are_envelopes_and_the_source_reads_replies(room: Room) -> None:
    api = client(room)
    source = the_source(api)
    journalists = [
        envelope.X25519Recipient.from_text(j["encryption_key"])
        for j in api.get("/journalists").json()
    ]
    note = envelope.encrypt_bytes(b"Checked with the registry.", journalists)
    r = api.post(f"/sources/{source['id']}/notes", content=note)
    assert r.status_code == 201
    reply_to = [envelope.X25519Recipient.from_text(source["reply_key"]), *journalists]
    reply = envelope.encrypt_bytes("Merci. Pouvez-vous préciser la date ?".encode(), reply_to)
    assert api.post(f"/sources/{source['id']}/replies", content=reply).status_code == 201
    items = api.get(f"/sources/{source['id']}").json()["items"]
    assert [n["size"] for n in items["notes"]] == [len(note)]
    assert items["notes"][0]["journalist"] == "alice"
    # Not an envelope, or too large: refused, nothing stored.
    assert api.post(f"/sources/{source['id']}/notes", content=b"plain text").status_code == 400
    big = api.post(f"/sources/{source['id']}/notes", content=b"LANTERNE" + bytes(1 << 20))
    assert big.status_code == 413
    assert len(api.get(f"/sources/{source['id']}").json()["items"]["notes"]) == 1
    with SourceClient(room.server.base_url) as browser:
        inbox = browser.login(room.codename)
        page = browser.get(inbox.headers["location"]) if inbox.status_code == 303 else inbox
        assert "Pouvez-vous préciser la date" in page.text


def test_the_source_listener_does_not_serve_the_api(room: Room) -> None:
    r = httpx.get(f"{room.server.base_url}/api/v1/openapi.json")
    assert r.status_code == 404


def test_api_responses_carry_the_security_headers(room: Room) -> None:
    r = httpx.post(f"{room.api}/auth/challenge")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    assert "server" not in r.headers


def test_deleting_a_source_removes_its_files(room: Room) -> None:
    api = client(room)
    sid = the_source(api)["id"]
    detail = api.get(f"/sources/{sid}").json()["items"]
    ids = [o["id"] for s in detail["submissions"] for o in s["objects"]]
    ids += [i["object_id"] for i in (*detail["replies"], *detail["notes"])]
    objects = room.server.instance.data_dir / "objects"
    assert all((objects / i).exists() for i in ids)
    assert api.delete(f"/sources/{sid}").status_code == 204
    assert not any((objects / i).exists() for i in ids)
    assert api.get("/sources").json() == []
    assert api.delete(f"/sources/{sid}").status_code == 404


def test_a_source_deleting_their_account_takes_nothing_from_the_journalists(room: Room) -> None:
    api = client(room)
    known = {s["id"] for s in api.get("/sources").json()}
    with SourceClient(room.server.base_url) as src:
        src.first_submission("Je pars.", [("pièce.pdf", PDF, "application/pdf")])
        [source] = [s for s in api.get("/sources").json() if s["id"] not in known]
        sid = source["id"]
        assert source["account_deleted"] is False and source["reply_key"]
        keys = [
            envelope.X25519Recipient.from_text(j["encryption_key"])
            for j in api.get("/journalists").json()
        ]
        note = envelope.encrypt_bytes(b"Source solide.", keys)
        assert api.post(f"/sources/{sid}/notes", content=note).status_code == 201
        to_source = [envelope.X25519Recipient.from_text(source["reply_key"]), *keys]
        reply = envelope.encrypt_bytes(b"Merci.", to_source)
        assert api.post(f"/sources/{sid}/replies", content=reply).status_code == 201
        patch = {"starred": True, "add_tags": ["mairie"], "assignee": "bruno"}
        assert api.patch(f"/sources/{sid}", json=patch).status_code == 200
        [reply_item] = api.get(f"/sources/{sid}").json()["items"]["replies"]
        # The source deletes their account.
        page = src.get("/en/delete")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        done = src.client.post("/en/delete", data={"csrf_token": token, "confirm": "yes"})
        assert done.status_code == 200
    objects = room.server.instance.data_dir / "objects"
    listed = {s["id"]: s for s in api.get("/sources").json()}
    assert sid in listed
    detail = api.get(f"/sources/{sid}").json()
    for view in (listed[sid], detail):
        assert view["account_deleted"] is True and view["reply_key"] is None
        assert (view["submissions"], view["notes"], view["replies"]) == (1, 1, 0)
        assert view["starred"] is True and view["tags"] == ["mairie"]
        assert view["assignee"] == "bruno"
    # What they sent is still readable; the reply to them is gone, file and row.
    [sub] = detail["items"]["submissions"]
    me = room.people["alice"].identities()
    for obj in sub["objects"]:
        assert envelope.decrypt_bytes(api.get(f"/objects/{obj['id']}").content, me)
    assert detail["items"]["replies"] == []
    assert not (objects / reply_item["object_id"]).exists()
    assert api.get(f"/objects/{reply_item['object_id']}").status_code == 404
    # No reply can be stored for them any more; notes still can.
    refused = api.post(f"/sources/{sid}/replies", content=reply)
    assert refused.status_code == 409
    assert "deleted their account" in refused.json()["message"]
    assert api.post(f"/sources/{sid}/notes", content=note).status_code == 201
    # Only a journalist's deletion removes it all: every row and every file.
    detail = api.get(f"/sources/{sid}").json()["items"]
    ids = [o["id"] for o in sub["objects"]] + [n["object_id"] for n in detail["notes"]]
    assert len(ids) == 5 and all((objects / i).exists() for i in ids)
    assert api.delete(f"/sources/{sid}").status_code == 204
    assert not any((objects / i).exists() for i in ids)
    assert sid not in {s["id"] for s in api.get("/sources").json()}
    assert api.get(f"/sources/{sid}").status_code == 404
    db = Database(room.server.instance.data_dir / "lanterne.sqlite3")
    assert {p.name for p in objects.iterdir()} == db.known_object_ids()
