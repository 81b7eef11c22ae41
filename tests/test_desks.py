"""Desks end to end (issue 16 §1, docs/DESKS.md): two desks and three
journalists on a real server. What a source sends to a desk is encrypted to
that desk's journalists (and the all-desk journalist) only, on the no-JS path
and the JavaScript path's keys alike; the source's first submission binds them
to the desk; the journalist API shows a desk's sources to its journalists only.

alice is the news desk, bruno the legal desk, chloe receives every desk.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import envelope
from journalist_cli.api_client import ApiClient
from journalist_cli.workflow_errors import RequestRefused, ServerError
from tests.cli_helpers import run
from tests.server_process import (
    ROOT,
    SERVER_CMD,
    Instance,
    Server,
    SourceClient,
    init_instance,
    run_server,
)
from tests.test_newsroom_key import newsroom_identity

pytestmark = pytest.mark.e2e

TEXTS = (
    "--title", "en=News tips", "--title", "fr=Informations", "--title", "es=Noticias",
    "--title", "it=Notizie", "--title", "de=Hinweise", "--title", "ar=أخبار",
    "--description", "en=Stories for the newsroom.", "--description", "fr=Pour la rédaction.",
    "--description", "es=Para la redacción.", "--description", "it=Per la redazione.",
    "--description", "de=Für die Redaktion.", "--description", "ar=لغرفة الأخبار.",
)  # fmt: skip
LEGAL_TEXTS = (
    "--title", "en=Legal department", "--title", "fr=Service juridique",
    "--title", "es=Servicio jurídico", "--title", "it=Ufficio legale",
    "--title", "de=Rechtsabteilung", "--title", "ar=القسم القانوني",
    "--description", "en=Breaches of the law.", "--description", "fr=Les infractions.",
    "--description", "es=Infracciones.", "--description", "it=Violazioni di legge.",
    "--description", "de=Rechtsverstöße.", "--description", "ar=مخالفات القانون.",
)  # fmt: skip


def admin(*args: object) -> str:
    done = subprocess.run(
        [*SERVER_CMD, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def desked_instance(base: Path, *, signed: bool) -> Instance:
    instance = init_instance(base, names=("alice", "bruno", "chloe"))
    d: tuple[object, ...] = ("--data-dir", instance.data_dir)
    if signed:
        key_file, _ = newsroom_identity(base / "newsroom")
        admin("init", *d, "--newsroom-key", key_file)
        d = (*d, "--newsroom-key", key_file)
    admin("desks", "add", *d, *TEXTS, "--journalist", "alice", "news")
    admin("desks", "add", *d, *LEGAL_TEXTS, "--journalist", "bruno", "legal")
    admin("desks", "all-desks", *d, "chloe")
    return instance


@pytest.fixture(params=["signed", "unsigned"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Instance, Server]]:
    instance = desked_instance(tmp_path, signed=request.param == "signed")
    with run_server(instance, journalist_api=True) as server:
        yield instance, server


def new_objects(instance: Instance, before: set[str]) -> list[Path]:
    return [p for p in instance.objects_dir.iterdir() if p.name not in before]


def readers(instance: Instance, path: Path) -> list[str]:
    """The journalists who can open this object."""
    data = path.read_bytes()
    names = []
    for j in instance.journalists:
        try:
            envelope.decrypt_bytes(data, [j.identity])
        except envelope.NoMatchingKeyError:
            continue
        names.append(j.public.name)
    return names


def source_desks(instance: Instance) -> dict[str, str | None]:
    conn = sqlite3.connect(instance.data_dir / "lanterne.sqlite3")
    try:
        return dict(conn.execute("SELECT id, desk FROM sources"))
    finally:
        conn.close()


def test_the_no_js_path_encrypts_to_the_chosen_desk_only(served: tuple[Instance, Server]) -> None:
    instance, server = served
    with SourceClient(server.base_url) as src:
        page = src.get("/en/submit").text
        assert 'name="desk"' in page and "News tips" in page and "Legal department" in page
        assert page.index('name="desk"') < page.index('name="message"')  # the desk comes first
        before = {p.name for p in instance.objects_dir.iterdir()}
        # Several desks and none chosen: refused, with nothing kept.
        refused = src.submit("canary-no-desk-0001")
        assert refused.status_code == 400
        assert "Choose who should receive this" in refused.text
        unknown = src.submit("canary-no-desk-0002", desk="hr")
        assert unknown.status_code == 400
        assert new_objects(instance, before) == [] and source_desks(instance) == {}
        src.first_submission("canary-news-0001", [("a.txt", b"news file", "text/plain")], "news")
        first = new_objects(instance, before)
        assert len(first) == 3  # message, file, manifest
        assert all(readers(instance, p) == ["alice", "chloe"] for p in first)
        assert list(source_desks(instance).values()) == ["news"]
        # The source is bound to the desk: a later message goes to the same desk,
        # whatever the form says, and the page offers no choice.
        follow_page = src.get("/en/submit").text
        assert 'type="radio"' not in follow_page and 'data-desk="news"' in follow_page
        seen = {p.name for p in instance.objects_dir.iterdir()}
        response = src.submit("canary-news-0002", desk="legal")
        assert response.status_code == 303, response.text
        later = new_objects(instance, seen)
        assert later and all(readers(instance, p) == ["alice", "chloe"] for p in later)
        assert list(source_desks(instance).values()) == ["news"]
    with SourceClient(server.base_url) as other:
        seen = {p.name for p in instance.objects_dir.iterdir()}
        other.first_submission("canary-legal-0001", None, "legal")
        legal = new_objects(instance, seen)
        assert legal and all(readers(instance, p) == ["bruno", "chloe"] for p in legal)
    assert sorted(source_desks(instance).values()) == ["legal", "news"]


def test_the_javascript_path_gets_only_the_desks_keys(served: tuple[Instance, Server]) -> None:
    """What the page's script encrypts to: on a signed instance the directory (it
    computes the desk's recipients itself, tests/e2e/test_browser_desks.py), else
    recipients.json?desk=."""
    _, server = served
    news = httpx.get(f"{server.base_url}/en/recipients.json?desk=news").json()
    assert [r["name"] for r in news["recipients"]] == ["alice", "chloe"]
    legal = httpx.get(f"{server.base_url}/en/recipients.json?desk=legal").json()
    assert [r["name"] for r in legal["recipients"]] == ["bruno", "chloe"]
    assert httpx.get(f"{server.base_url}/en/recipients.json?desk=hr").json()["recipients"] == []


@pytest.fixture
def newsroom(tmp_path: Path) -> Iterator[tuple[Instance, Server, dict[str, Path]]]:
    """Journalists with real identities (they log in), the two desks, a server."""
    from journalist_cli.identity_store import JournalistIdentity, write_new_identity

    keys = tmp_path / "keys"
    identities = {}
    for name in ("alice", "bruno", "chloe"):
        secret, _ = write_new_identity(JournalistIdentity.generate(name), keys, None)
        identities[name] = secret
    data = tmp_path / "data"
    admin("init", "--data-dir", data, *[f"--journalist={keys / f'{n}.pub'}" for n in identities])
    admin("desks", "add", "--data-dir", data, *TEXTS, "--journalist", "alice", "news")
    admin("desks", "add", "--data-dir", data, *LEGAL_TEXTS, "--journalist", "bruno", "legal")
    admin("desks", "all-desks", "--data-dir", data, "chloe")
    instance = Instance(data, [], tmp_path / "server-tmp", tmp_path / "server.log")
    instance.tmp_dir.mkdir()
    with run_server(instance, journalist_api=True) as server:
        yield instance, server, identities


def api_client(server: Server, identity: Path) -> ApiClient:
    from journalist_cli.identity_store import open_identity

    assert server.api_url is not None
    client = ApiClient(server.api_url.removesuffix("/api/v1"))
    ident = open_identity(identity, None)
    client.login(ident.name, ident.signing)
    return client


def lanterne(home: Path, *args: object) -> str:
    done = run(*args, env={"LANTERNE_HOME": str(home)})
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout.decode()


def test_each_journalist_lists_and_reads_only_their_desks(
    newsroom: tuple[Instance, Server, dict[str, Path]], tmp_path: Path
) -> None:
    instance, server, identities = newsroom
    with SourceClient(server.base_url) as src:
        src.first_submission("canary-desk-news", [("n.txt", b"news", "text/plain")], "news")
    with SourceClient(server.base_url) as src:
        src.first_submission("canary-desk-legal", None, "legal")
    desks = source_desks(instance)
    news = next(s for s, d in desks.items() if d == "news")
    legal = next(s for s, d in desks.items() if d == "legal")
    alice, bruno, chloe = (api_client(server, identities[n]) for n in ("alice", "bruno", "chloe"))
    with alice, bruno, chloe:
        assert [(s.id, s.desk) for s in alice.sources()] == [(news, "news")]
        assert [(s.id, s.desk) for s in bruno.sources()] == [(legal, "legal")]
        assert {s.id for s in chloe.sources()} == {news, legal}
        detail = alice.source(news)
        submission = detail.submissions[0]
        object_id = submission.objects[0].id
        # Outside the desk, the source does not exist: listing, reading, writing.
        for attempt in (
            lambda: bruno.source(news),
            lambda: bruno.update_source(news, {"seen": True}),
            lambda: bruno.add_note(news, envelope.encrypt_bytes(b"x", [X])),
            lambda: bruno.delete_submission(submission.id),
        ):
            with pytest.raises(ServerError, match="not found"):
                attempt()
        assert bruno.sources() and chloe.source(news).submissions[0].id == submission.id
        token = bruno.session.token if bruno.session else ""
        assert server.api_url is not None
        raw = httpx.get(
            f"{server.api_url}/objects/{object_id}",
            headers={"Authorization": f"Bearer {token}", "Host": bruno.host},
        )
        assert raw.status_code == 404
        delete = httpx.delete(
            f"{server.api_url}/sources/{news}",
            headers={"Authorization": f"Bearer {token}", "Host": bruno.host},
        )
        assert delete.status_code == 404 and news in source_desks(instance)
    # The CLI: `lanterne list` shows the desk; a note and a reply stay within it.
    home = tmp_path / "alice-home"
    url = server.api_url.removesuffix("/api/v1") if server.api_url else ""
    lanterne(home, "config", "--server", url, "--identity", identities["alice"])
    lanterne(home, "pull")
    [row] = json.loads(lanterne(home, "list", "--json"))
    assert (row["id"], row["desk"]) == (news, "news")
    assert "desk" in lanterne(home, "list") and "news" in lanterne(home, "list")
    before = {p.name for p in instance.objects_dir.iterdir()}
    assert "news desk" in lanterne(home, "note", news, "canary-note-within-desk")
    lanterne(home, "reply", news, "canary-reply-within-desk")
    added = new_objects(instance, before)
    assert len(added) == 2
    secrets = {n: read_identity_keys(p) for n, p in identities.items()}
    for path in added:
        data = path.read_bytes()
        assert envelope.decrypt_bytes(data, secrets["alice"])
        assert envelope.decrypt_bytes(data, secrets["chloe"])
        with pytest.raises(envelope.NoMatchingKeyError):
            envelope.decrypt_bytes(data, secrets["bruno"])


X = envelope.X25519Identity.generate().recipient


def test_the_channel_settings_show_only_the_journalists_desks(
    newsroom: tuple[Instance, Server, dict[str, Path]],
) -> None:
    instance, server, identities = newsroom
    for desk, days in (("news", "400"), ("legal", "1825")):
        admin("channel", "desk", "--data-dir", instance.data_dir, "--retention-days", days, desk)
    seen = {}
    for name in ("alice", "bruno", "chloe"):
        with api_client(server, identities[name]) as client:
            token = client.session.token if client.session else ""
            answer = httpx.get(
                f"{server.api_url}/channel",
                headers={"Authorization": f"Bearer {token}", "Host": client.host},
            )
        assert answer.status_code == 200, answer.text
        seen[name] = {d: s["retention_days"] for d, s in answer.json()["desks"].items()}
    assert seen == {
        "alice": {"news": 400},
        "bruno": {"legal": 1825},
        "chloe": {"news": 400, "legal": 1825},
    }


def read_identity_keys(path: Path) -> list[envelope.Identity]:
    from journalist_cli.identity_store import open_identity

    return list(open_identity(path, None).identities())


def test_a_member_added_to_a_desk_without_the_newsroom_key_receives_nothing(
    tmp_path: Path,
) -> None:
    """A compromised server (or a seized database, written back) puts bruno in the
    news desk: the rows say so, the signed directory does not, and both paths
    encrypt to what the newsroom signed."""
    instance = desked_instance(tmp_path, signed=True)
    conn = sqlite3.connect(instance.data_dir / "lanterne.sqlite3")
    with conn:
        conn.execute(
            "INSERT INTO desk_members(desk, journalist_id)"
            " SELECT 'news', id FROM journalists WHERE name = 'bruno'"
        )
    conn.close()
    # `check` says so: the rows and the signed directory disagree.
    checked = subprocess.run(
        [*SERVER_CMD, "check", "--data-dir", instance.data_dir, "--no-debian-defaults"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    news = next(line for line in checked.stdout.splitlines() if "desk news" in line)
    assert "changed without the newsroom key" in news and "alice, bruno" in news
    legal = next(line for line in checked.stdout.splitlines() if "desk legal" in line)
    assert "encrypted to bruno, chloe" in legal
    assert checked.returncode == 1
    with run_server(instance) as server, SourceClient(server.base_url) as src:
        before = {p.name for p in instance.objects_dir.iterdir()}
        src.first_submission("canary-tampered-desk", None, "news")
        added = new_objects(instance, before)
        assert added and all(readers(instance, p) == ["alice", "chloe"] for p in added)
        news = httpx.get(f"{server.base_url}/en/recipients.json?desk=news").json()
        assert [r["name"] for r in news["recipients"]] == ["alice", "chloe"]


def test_a_journalist_of_both_desks_moves_a_source_by_re_encrypting_it(
    newsroom: tuple[Instance, Server, dict[str, Path]], tmp_path: Path
) -> None:
    """`lanterne move`: decrypted and encrypted again on the mover's machine; the
    server swaps the envelopes at once and keeps none of the old ones."""
    instance, server, identities = newsroom
    with SourceClient(server.base_url) as src:
        codename = src.first_submission(
            "canary-move-message", [("m.txt", b"canary-move-file", "text/plain")], "news"
        )
    [sid] = source_desks(instance)
    url = server.api_url.removesuffix("/api/v1") if server.api_url else ""
    homes = {n: tmp_path / f"{n}-home" for n in identities}
    for name, home in homes.items():
        lanterne(home, "config", "--server", url, "--identity", identities[name])
    lanterne(homes["alice"], "pull")
    lanterne(homes["alice"], "note", sid, "canary-move-note")
    lanterne(homes["alice"], "reply", sid, "canary-move-reply")
    secrets = {n: read_identity_keys(p) for n, p in identities.items()}
    # alice is not in the legal desk: refused by her CLI (the signed or listed
    # desks) and by the API (tests below), nothing changes.
    refused = run("move", sid, "legal", env={"LANTERNE_HOME": str(homes["alice"])})
    assert refused.returncode != 0 and b"desk" in refused.stderr
    assert source_desks(instance) == {sid: "news"}
    before = {p.name for p in instance.objects_dir.iterdir()}
    lanterne(homes["chloe"], "pull")
    assert "moved to desk legal" in lanterne(homes["chloe"], "move", sid, "legal")
    assert source_desks(instance) == {sid: "legal"}
    after = {p.name for p in instance.objects_dir.iterdir()}
    assert not before & after  # every old envelope is gone, none is kept
    assert len(after) == len(before)
    plain = set()
    for name in after:
        data = (instance.objects_dir / name).read_bytes()
        plain.add(envelope.decrypt_bytes(data, secrets["bruno"]))
        with pytest.raises(envelope.NoMatchingKeyError):
            envelope.decrypt_bytes(data, secrets["alice"])
    assert {b"canary-move-message", b"canary-move-file", b"canary-move-note"} <= plain
    assert b"canary-move-reply" in plain
    # The journalists of the new desk list it, the old desk's do not.
    lanterne(homes["bruno"], "pull")
    [row] = json.loads(lanterne(homes["bruno"], "list", "--json"))
    assert (row["id"], row["desk"], row["notes"], row["replies"]) == (sid, "legal", 1, 1)
    assert "canary-move-note" in lanterne(homes["bruno"], "show", sid)
    lanterne(homes["alice"], "pull")
    assert json.loads(lanterne(homes["alice"], "list", "--json")) == []
    # The source still reads the reply, and what they send next goes to legal.
    with SourceClient(server.base_url) as src:
        assert src.login(codename).status_code == 303
        assert "canary-move-reply" in src.get("/en/inbox").text
        seen = {p.name for p in instance.objects_dir.iterdir()}
        assert src.submit("canary-after-move").status_code == 303
        added = new_objects(instance, seen)
        assert added
        for path in added:
            envelope.decrypt_bytes(path.read_bytes(), secrets["bruno"])
            with pytest.raises(envelope.NoMatchingKeyError):
                envelope.decrypt_bytes(path.read_bytes(), secrets["alice"])


def test_the_api_refuses_a_move_by_a_journalist_outside_the_new_desk(
    newsroom: tuple[Instance, Server, dict[str, Path]],
) -> None:
    instance, server, identities = newsroom
    with SourceClient(server.base_url) as src:
        src.first_submission("canary-move-refused", None, "news")
    [sid] = source_desks(instance)
    with (
        api_client(server, identities["alice"]) as alice,
        api_client(server, identities["bruno"]) as bruno,
    ):
        [sub] = alice.source(sid).submissions
        old = sub.objects[0].id
        staged = instance.tmp_dir / "staged"
        staged.write_bytes(envelope.encrypt_bytes(b"x", [X]))
        with pytest.raises(ServerError, match="not found"):  # bruno cannot see the source
            bruno.stage_replacement(sid, old, staged)
        new = alice.stage_replacement(sid, old, staged)
        mapping = {o.id: new for o in sub.objects[:1]}
        with pytest.raises(ServerError, match="403"):
            alice.move_source(sid, "legal", mapping)
        with pytest.raises(ServerError, match="not found"):
            bruno.move_source(sid, "legal", mapping)
        staged.write_bytes(b"not an envelope")
        with pytest.raises(RequestRefused):
            alice.stage_replacement(sid, old, staged)
    assert source_desks(instance) == {sid: "news"}
    assert all((instance.objects_dir / o.id).exists() for o in sub.objects)


def test_removing_a_desk_with_sources_is_refused_unless_they_are_deleted(tmp_path: Path) -> None:
    instance = desked_instance(tmp_path, signed=False)
    with run_server(instance) as server:
        with SourceClient(server.base_url) as src:
            src.first_submission("canary-removed-desk", None, "news")
        with SourceClient(server.base_url) as src:
            src.first_submission("canary-kept-desk", None, "legal")
        kept = {
            p.name for p in instance.objects_dir.iterdir() if readers(instance, p)[0] == "bruno"
        }
        d = ("--data-dir", instance.data_dir)
        done = subprocess.run(
            [*SERVER_CMD, "desks", "remove", *d, "news"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1 and "1 source(s)" in done.stderr
        assert "--delete-sources" in done.stderr and "Traceback" not in done.stderr
        assert sorted(source_desks(instance).values()) == ["legal", "news"]
        out = admin("desks", "remove", *d, "--delete-sources", "news")
        assert "deleted its 1 source(s)" in out
        assert list(source_desks(instance).values()) == ["legal"]
        assert {p.name for p in instance.objects_dir.iterdir()} == kept
        # The desk is gone from the page; one desk left: no choice shown.
        page = httpx.get(f"{server.base_url}/en/submit").text
        assert 'type="radio"' not in page and 'name="desk" value="legal"' in page
