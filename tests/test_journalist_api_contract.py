"""The journalist API's OpenAPI document is the contract (docs/JOURNALIST_API.md):
what it allows, a real server accepts; what the server refuses, it refuses with a
status the document lists, with the body the document gives; a 405 names what
the path allows. Checked by reading the document, and by schemathesis against a
real server process, logged in."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import envelope
from journalist_cli import api_client, records
from journalist_cli.api_client import ApiClient
from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from journalist_cli.workflow_errors import RequestRefused
from server.web.journalist_api.auth import signed_message
from server.web.journalist_api.routes import MAX_ITEM_BYTES
from tests.server_process import ROOT, SERVER_CMD, Instance, Server, SourceClient, run_server
from tests.test_full_disk import fill, make_instance, small_disk

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PUBLIC = {"challenge", "token"}  # the two operations that log in


@dataclass
class Api:
    server: Server
    people: dict[str, JournalistIdentity]

    @property
    def url(self) -> str:
        assert self.server.api_url is not None
        return self.server.api_url

    def login_body(self, name: str = "alice") -> dict[str, str]:
        """What POST /auth/token takes, for a fresh challenge signed by ``name``."""
        challenge = httpx.post(f"{self.url}/auth/challenge").json()["challenge"]
        raw = base64.urlsafe_b64decode(challenge + "=" * (-len(challenge) % 4))
        signed = signed_message(raw, self.url.split("/")[2])
        signature = self.people[name].signing.sign(signed).signature
        return {
            "journalist": name,
            "challenge": challenge,
            "signature": base64.urlsafe_b64encode(signature).rstrip(b"=").decode(),
        }

    def token(self, name: str = "alice") -> str:
        answer = httpx.post(f"{self.url}/auth/token", json=self.login_body(name))
        assert answer.status_code == 200, answer.text
        return str(answer.json()["token"])

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token()}"}, timeout=60
        )

    def seed(self, count: int) -> list[str]:
        """``count`` new sources, each with a message, a file, a note and a reply,
        so that the fuzzer meets real sources, submissions and objects; their ids."""
        with self.client() as api:
            known = {s["id"] for s in api.get("/sources").json()}
            for k in range(count):
                with SourceClient(self.server.base_url) as source:
                    source.first_submission(f"Source {k}.", [("a.txt", b"x" * 100, "text/plain")])
            keys = [
                envelope.X25519Recipient.from_text(j["encryption_key"])
                for j in api.get("/journalists").json()
            ]
            new = [s for s in api.get("/sources").json() if s["id"] not in known]
            for s in new:
                note = envelope.encrypt_bytes(b"note", keys)
                assert api.post(f"/sources/{s['id']}/notes", content=note).status_code == 201
                to = [envelope.X25519Recipient.from_text(s["reply_key"]), *keys]
                reply = envelope.encrypt_bytes(b"reply", to)
                assert api.post(f"/sources/{s['id']}/replies", content=reply).status_code == 201
        assert len(new) == count
        return [s["id"] for s in new]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    base = tmp_path_factory.mktemp("contract")
    people = {n: JournalistIdentity.generate(n) for n in ("alice", "bruno")}
    # A signed journalist list, so that GET /directory has something to answer.
    write_new_identity(JournalistIdentity.generate("newsroom"), base / "keys", None)
    init = [*SERVER_CMD, "init", "--data-dir", str(base / "data")]
    init += ["--newsroom-key", str(base / "keys" / "newsroom.identity")]
    for ident in people.values():
        write_new_identity(ident, base / "keys", None)
        init += ["--journalist", str(base / "keys" / f"{ident.name}.pub")]
    subprocess.run(init, check=True, cwd=ROOT, capture_output=True)
    instance = Instance(base / "data", [], base / "server-tmp", base / "server.log")
    instance.tmp_dir.mkdir()
    with run_server(instance, journalist_api=True) as server:
        yield Api(server, people)


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def schemas_of(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(doc["components"]["schemas"])


def response_schema(doc: dict[str, Any], response: dict[str, Any]) -> str:
    """The component a JSON response refers to ('' if none)."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", "")).rsplit("/", 1)[-1]


def test_the_document_lists_what_the_server_answers(api: Api) -> None:
    doc = httpx.get(f"{api.url}/openapi.json").json()
    assert "422" not in json.dumps(doc["paths"])  # FastAPI's; the server answers 400
    assert not {"HTTPValidationError", "ValidationError"} & set(doc["components"]["schemas"])
    seen = set()
    for path, method, op in operations(doc):
        seen.add(op["operationId"])
        responses = op["responses"]
        where = f"{method.upper()} {path}"
        # Authenticated operations say so, and list the 401 and its body.
        secured = op["operationId"] not in PUBLIC
        assert bool(op.get("security")) == secured, where
        if secured or op["operationId"] == "token":
            assert response_schema(doc, responses["401"]) == "Refused", where
        # A 400 wherever the server validates a body, and nowhere else.
        assert ("400" in responses) == ("requestBody" in op), where
        for status, response in responses.items():
            if status[0] in "45" and status != "401" and op["operationId"] != "challenge":
                assert response_schema(doc, response) == "Error", f"{where} {status}"
        # The listener's cap on connections (server/serving.py) answers any request.
        assert "text/plain" in responses["503"]["content"], where
        assert "Retry-After" in responses["503"]["headers"], where
        # A full disk can refuse what writes, never what only reads.
        assert ("507" in responses) == (method in ("patch", "post", "delete") and secured), where
        # No header parameter stands for the token: it is the security scheme.
        assert "authorization" not in {p["name"].lower() for p in op.get("parameters", [])}
    # GET /channel and /sources/{id}/acknowledgement (docs/OFFICIAL_CHANNEL.md), and
    # the two of a move between desks (docs/DESKS.md)
    assert len(seen) == 16
    # The one success schemathesis cannot reach (it takes a signature): a real login.
    token = schemas_of(doc)["Token"]
    answer = httpx.post(f"{api.url}/auth/token", json=api.login_body()).json()
    assert set(answer) == set(token["properties"]) == set(token["required"])
    assert re.fullmatch(token["properties"]["token"]["pattern"], answer["token"])
    assert answer["role"] in token["properties"]["role"]["enum"]
    assert doc["components"]["securitySchemes"]["token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer TOKEN`, TOKEN from `POST /auth/token`",
    }


def test_the_document_allows_only_requests_the_server_accepts(api: Api) -> None:
    """The constraints the server enforces are in the request schemas, and the
    server does refuse what they exclude, with a 400."""
    doc = httpx.get(f"{api.url}/openapi.json").json()
    schemas = doc["components"]["schemas"]
    login = schemas["TokenRequest"]
    assert login["properties"]["challenge"]["pattern"] == "^[A-Za-z0-9_-]{43}$"
    assert login["properties"]["signature"]["pattern"] == "^[A-Za-z0-9_-]{86}$"
    assert login["properties"]["challenge"]["contentEncoding"] == "base64url"
    assert login["additionalProperties"] is False
    patch = schemas["TriagePatch"]
    assert patch["additionalProperties"] is False
    assignee = patch["properties"]["assignee"]["anyOf"][0]
    assert (assignee["minLength"], assignee["maxLength"]) == (1, 64)
    [tags] = [t for t in patch["properties"]["add_tags"]["anyOf"] if t["type"] == "array"]
    assert tags["items"]["pattern"] == "^[A-Za-z0-9._-]{1,32}$" and tags["maxItems"] == 16
    for what in ("notes", "replies"):
        body = doc["paths"][f"/api/v1/sources/{{source_id}}/{what}"]["post"]["requestBody"]
        assert body["required"] is True
        [(media, content)] = body["content"].items()
        assert media == "application/octet-stream"
        assert content["schema"]["format"] == "binary"
        assert content["schema"]["pattern"] == "^LANTERNE"
        assert content["schema"]["maxLength"] == MAX_ITEM_BYTES

    challenge = httpx.post(f"{api.url}/auth/challenge").json()["challenge"]
    for refused in (
        {"journalist": "alice", "challenge": "!" * 43, "signature": "A" * 86},
        {"journalist": "alice", "challenge": challenge, "signature": "A" * 85},
        {"journalist": "alice", "challenge": challenge, "signature": "A" * 86, "x": 1},
    ):
        answer = httpx.post(f"{api.url}/auth/token", json=refused)
        assert answer.status_code == 400, refused
        assert answer.json()["error"] == "bad_request"
    api.seed(1)
    with api.client() as client:
        sid = client.get("/sources").json()[0]["id"]
        for body in ({"assignee": ""}, {"seen": True, "sen": True}, {"add_tags": ["a b"]}):
            answer = client.patch(f"/sources/{sid}", json=body)
            assert answer.status_code == 400, body
            assert set(answer.json()) == {"error", "message"}
        empty = client.patch(f"/sources/{sid}", json={"assignee": ""})
        assert "assignee" in empty.json()["message"]
        for what in ("notes", "replies"):
            answer = client.post(f"/sources/{sid}/{what}", content=b"not an envelope")
            assert answer.status_code == 400


class Recording(httpx.HTTPTransport):
    """A real transport that notes each request's method, path and answer's status."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.seen.append((request.method, request.url.path, response.status_code))
        return response


def test_the_cli_client_keeps_to_the_document(api: Api, tmp_path: Path) -> None:
    """journalist_cli's client: every request it makes is a documented operation
    answered with a documented status, and the rules it checks answers against
    are the document's."""
    doc = httpx.get(f"{api.url}/openapi.json").json()
    schemas = schemas_of(doc)
    assert schemas["SourceOut"]["properties"]["id"]["pattern"] == f"^{records.ID_PATTERN.pattern}$"
    assert schemas["NoteOut"]["properties"]["written_on"]["pattern"] == (
        "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
    )
    assert schemas["NoteOut"]["properties"]["size"]["maximum"] == records.MAX_ITEM_BYTES
    assert schemas["ObjectOut"]["properties"]["kind"]["enum"] == list(records.KINDS)
    add_tags = schemas["TriagePatch"]["properties"]["add_tags"]["anyOf"][0]
    assert add_tags["items"]["pattern"] == f"^{records.TAG_PATTERN.pattern}$"
    assert set(schemas["Refusal"]["enum"]) >= set(api_client.LOGIN_REFUSALS)

    api.seed(1)
    transport = Recording()
    host = api.url.removesuffix("/api/v1")
    with ApiClient(host, transport=transport) as client:
        client.login("alice", api.people["alice"].signing)
        keys = [envelope.X25519Recipient.from_text(j.encryption_key) for j in client.journalists()]
        [source, *_] = client.sources()
        detail = client.source(source.id)
        client.update_source(source.id, {"add_tags": ["contract"], "seen": True})
        with pytest.raises(RequestRefused):
            client.update_source(source.id, {"assignee": "nobody"})
        client.add_note(source.id, envelope.encrypt_bytes(b"n", keys))
        assert source.reply_key is not None
        to = [envelope.X25519Recipient.from_text(source.reply_key), *keys]
        client.add_reply(source.id, envelope.encrypt_bytes(b"r", to))
        obj = detail.submissions[0].objects[0]
        with (tmp_path / "object").open("wb") as out:
            client.download(obj.id, out, 0, obj.size, lambda n: None)
            client.download(obj.id, out, 10, obj.size, lambda n: None)
        client.delete_submission(detail.submissions[0].id)
        client.delete_source(source.id)
    assert len(transport.seen) >= 12
    for method, path, status in transport.seen:
        [operation] = [
            op
            for template, m, op in operations(doc)
            if m == method.lower() and re.fullmatch(re.sub(r"\{[a-z_]+\}", "[^/]+", template), path)
        ]
        assert str(status) in operation["responses"], (method, path, status)


def test_a_405_names_every_method_of_the_path(api: Api) -> None:
    """Allow lists what the document lists for the path (and HEAD with GET), on
    paths that several routes share too."""
    doc = httpx.get(f"{api.url}/openapi.json").json()
    with api.client() as client:
        for path, item in doc["paths"].items():
            url = path.removeprefix("/api/v1").replace("{source_id}", "0")
            url = re.sub(r"\{[a-z_]+\}", "0", url)
            answer = client.request("TRACE", url)
            assert answer.status_code == 405, path
            assert answer.json()["error"] == "bad_request"
            documented = {m.upper() for m in item if m in METHODS}
            if "GET" in documented:
                documented.add("HEAD")
            allowed = answer.headers["allow"].split(", ")
            assert set(allowed) == documented, path
            assert len(allowed) == len(documented)


def test_the_source_interface_answers_405_with_allow(api: Api) -> None:
    base = api.server.base_url
    for path, allowed in (
        ("/en/submit", {"GET", "HEAD", "POST"}),
        ("/en/", {"GET", "HEAD"}),
        ("/static/style.css", {"GET", "HEAD"}),
    ):
        answer = httpx.request("PUT", base + path)
        assert answer.status_code == 405, path
        assert set(answer.headers["allow"].split(", ")) == allowed, path


@pytest.mark.slow
def test_a_full_disk_is_a_documented_answer(tmp_path: Path) -> None:
    """The journalist API on a full disk: what writes gets the documented 507
    (JSON, nothing kept), what reads goes on; once room is back, writes work."""
    with small_disk(tmp_path / "data") as data:
        instance, alice = make_instance(tmp_path, data)
        with run_server(instance, journalist_api=True) as server:
            with SourceClient(server.base_url) as source:
                source.first_submission("Avant que le disque soit plein.")
            api = Api(server, {"alice": alice})
            doc = httpx.get(f"{api.url}/openapi.json").json()
            with api.client() as client:
                [s] = client.get("/sources").json()
                keys = [alice.public.recipient]
                note = envelope.encrypt_bytes(os.urandom(200_000), keys)
                before = sorted(os.listdir(instance.objects_dir))
                filler = fill(data)
                answers = {
                    "add_note": client.post(f"/sources/{s['id']}/notes", content=note),
                    "patch_source": client.patch(f"/sources/{s['id']}", json={"starred": True}),
                    "sources": client.get("/sources"),
                    "source": client.get(f"/sources/{s['id']}"),
                }
                assert answers["add_note"].status_code == 507
                assert answers["add_note"].json()["error"] == "no_room"
                assert answers["sources"].status_code == answers["source"].status_code == 200
                for name, answer in answers.items():
                    [op] = [op for _, _, op in operations(doc) if op["operationId"] == name]
                    assert str(answer.status_code) in op["responses"], (name, answer.status_code)
                assert sorted(os.listdir(instance.objects_dir)) == before
                filler.unlink()
                assert client.post(f"/sources/{s['id']}/notes", content=note).status_code == 201
        assert "unexpected" not in server.log()  # no 500 on the way


# --- schemathesis -----------------------------------------------------------------

# Every check but positive_data_acceptance, which wants a 2xx for any request the
# schema allows: the server answers 400 to an assignee who is not a journalist,
# to more than 16 tags in all, and to a body that is not an envelope (JSON Schema
# cannot make a generator start binary bodies with the magic), 416 to a range
# past the end. Those are documented statuses, which status_code_conformance checks.
CHECKS = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]
MAX_EXAMPLES = 25


def schemathesis(
    api: Api, workdir: Path, phases: str, config: str = ""
) -> tuple[str, list[dict[str, Any]]]:
    """One ``st run`` against the real server, logged in as alice: its output and
    the requests it sent with their answers (its HAR report)."""
    name = phases.replace(",", "-")
    har = workdir / f"{name}.har"
    (workdir / f"{name}.toml").write_text(config)
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "--config-file",
            str(workdir / f"{name}.toml"),
            "run",
            f"{api.url}/openapi.json",
            *CHECKS,
            "--phases",
            phases,
            "--max-examples",
            str(MAX_EXAMPLES),
            "--workers",
            "1",
            "-H",
            f"Authorization: Bearer {api.token()}",
            "--generation-database",
            "none",
            "--report",
            "har",
            "--report-har-path",
            str(har),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=workdir,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    return done.stdout, json.loads(har.read_text())["log"]["entries"]


def operation_of(doc: dict[str, Any], method: str, url: str) -> str | None:
    path = httpx.URL(url).path
    for template, method_in_doc, op in operations(doc):
        pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template))
        if method_in_doc == method.lower() and re.fullmatch(pattern, path):
            return str(op["operationId"])
    return None


@pytest.mark.slow
def test_schemathesis_finds_the_server_true_to_its_document(api: Api, tmp_path: Path) -> None:
    """Response schemas, status codes, content types, headers, Allow on 405, schema-
    invalid requests refused, no 5xx: on every operation, with real data.

    Two runs: the stateful phase first, following the document's links from the
    sources to their submissions and objects; then examples, coverage and fuzzing
    on fresh sources (the first run deletes some). Those phases meet source ids
    (in the listing) but no submission or object id, and DELETE /sources would
    take away any they were given: each of these three operations gets a real id
    of its own source for that run (its other parameters and bodies still vary).
    """
    doc = httpx.get(f"{api.url}/openapi.json").json()
    api.seed(3)
    stateful, entries = schemathesis(api, tmp_path, "stateful")
    doomed, with_submission, with_object = api.seed(3)
    with api.client() as client:
        submission = client.get(f"/sources/{with_submission}").json()["items"]["submissions"][0]
        note = client.get(f"/sources/{with_object}").json()["items"]["notes"][0]
    real_ids = "".join(
        f'[[operations]]\ninclude-operation-id = "{operation}"\n'
        f'parameters = {{ "{name}" = "{value}" }}\n'
        for operation, name, value in (
            ("delete_source", "source_id", doomed),
            ("delete_submission", "submission_id", submission["id"]),
            ("get_object", "object_id", note["object_id"]),
        )
    )
    # A move's replacement: a real object of its own source (the body still varies).
    real_ids += (
        '[[operations]]\ninclude-operation-id = "stage_replacement"\n'
        f'parameters = {{ "source_id" = "{with_object}", "object_id" = "{note["object_id"]}" }}\n'
    )
    fuzzing, more = schemathesis(api, tmp_path, "examples,coverage,fuzzing", real_ids)
    assert "Tested: 16" in fuzzing
    assert "✅ Coverage" in fuzzing and "✅ Fuzzing" in fuzzing and "✅ Stateful" in stateful
    # Every operation answered a success at least once, so its success schema was
    # checked against a real answer, not only its errors. (A login needs a
    # signature: test_the_document_lists_what_the_server_answers checks one.)
    succeeded = Counter(
        operation_of(doc, e["request"]["method"], e["request"]["url"])
        for e in [*entries, *more]
        if 200 <= e["response"]["status"] < 300
    )
    # A move succeeds only with every object of a source re-encrypted and staged
    # first: tests/test_desks.py moves sources and reads the answer as SourceOut.
    expected = {op["operationId"] for _, _, op in operations(doc)} - PUBLIC - {"move_source"}
    assert expected <= set(succeeded), succeeded
    print(stateful[-1500:], fuzzing[-1500:], f"{len(entries) + len(more)} requests", succeeded)
