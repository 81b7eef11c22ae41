"""``HEAD`` answers like ``GET`` without a body, on a real server (monitoring tools use it).

Every page a source can GET, the static files, the asset list and the
journalist API's resources answer ``HEAD`` with GET's status and headers and
no body; ``HEAD`` keeps its own meaning where a route defines it (tus).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest

from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from tests.server_process import (
    ROOT,
    SERVER_CMD,
    Instance,
    Server,
    SourceClient,
    run_server,
)
from tests.test_journalist_api import Room, client

SOURCE_PATHS = (
    "/",
    "/en/",
    "/fr/",
    "/en/submit",
    "/fr/login",
    "/en/inbox",
    "/en/delete",
    "/en/codename",
    "/en/recipients.json",
    "/.well-known/lanterne-assets.json",
    "/static/style.css",
    "/static/upload.js",
    "/en/no-such-page",
    "/xx/",
)
# Headers that legitimately differ between two renderings of the same page.
PER_RESPONSE = {"set-cookie", "content-length"}


@pytest.mark.parametrize("path", SOURCE_PATHS)
def test_source_pages_answer_head_like_get(served: tuple[Instance, Server], path: str) -> None:
    _, server = served
    with httpx.Client(base_url=server.base_url, follow_redirects=False) as http:
        get = http.get(path)
        head = http.head(path)
    assert head.status_code == get.status_code != 405
    assert head.content == b""
    same = {k: v for k, v in get.headers.items() if k not in PER_RESPONSE}
    assert {k: v for k, v in head.headers.items() if k not in PER_RESPONSE} == same
    assert "content-security-policy" in head.headers  # the middleware still covers HEAD
    if "set-cookie" not in get.headers:
        assert head.headers["content-length"] == get.headers["content-length"]


def test_head_on_a_post_only_route_is_refused_like_get(served: tuple[Instance, Server]) -> None:
    _, server = served
    assert httpx.get(server.base_url + "/en/submit/commit").status_code == 405
    assert httpx.head(server.base_url + "/en/submit/commit").status_code == 405


def test_tus_keeps_its_own_head(served: tuple[Instance, Server]) -> None:
    """tus asks for an upload's offset with HEAD: never turned into a GET (405)."""
    _, server = served
    with SourceClient(server.base_url) as source:
        source.get("/en/submit")  # a session, as the page would have
        created = source.client.post(
            "/tus/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "100"}
        )
        assert created.status_code == 201, created.text
        where = created.headers["location"]
        head = source.client.head(where, headers={"Tus-Resumable": "1.0.0"})
        assert head.status_code == 200 and head.headers["upload-offset"] == "0"
        missing = source.client.head("/tus/" + "0" * 32, headers={"Tus-Resumable": "1.0.0"})
        assert missing.status_code == 404


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    base = tmp_path_factory.mktemp("head-api")
    alice = JournalistIdentity.generate("alice")
    write_new_identity(alice, base / "keys", None)
    data = base / "data"
    subprocess.run(
        [*SERVER_CMD, "init", "--data-dir", data, "--journalist", base / "keys" / "alice.pub"],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    instance = Instance(data, [], base / "server-tmp", base / "server.log")
    instance.tmp_dir.mkdir()
    with run_server(instance, journalist_api=True) as server:
        with SourceClient(server.base_url) as source:
            source.first_submission("Bonjour.", [("a.txt", b"x" * 5000, "text/plain")])
        room = Room(server, {"alice": alice}, "")
        yield room
        for c in room.clients:
            c.close()


def test_journalist_api_answers_head_like_get(room: Room) -> None:
    anonymous = httpx.head(f"{room.api}/sources")
    assert anonymous.status_code == httpx.get(f"{room.api}/sources").status_code == 401
    assert anonymous.content == b""
    api = client(room)
    for path in ("/journalists", "/sources"):
        get, head = api.get(path), api.head(path)
        assert head.status_code == get.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == get.headers["content-length"]
        assert head.headers["content-type"] == get.headers["content-type"]
    [source] = api.get("/sources").json()
    detail = api.get(f"/sources/{source['id']}").json()
    [sub] = detail["items"]["submissions"]
    obj = next(o for o in sub["objects"] if o["kind"] == "file")
    head = api.head(f"/objects/{obj['id']}")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == obj["size"]
    assert api.head("/objects/" + "0" * 32).status_code == 404
