"""`lanterne-server desks` (issue 16 §1; docs/DESKS.md): the admin's desks, their
journalists and the all-desk journalists, recorded in the rows and, on a signed
instance, in the newsroom's signed key directory (envelope/SPEC.md §11.1)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import envelope
from server.settings import DATABASE_NAME
from server.store.db import Database
from tests.server_process import (
    ROOT,
    SERVER_CMD,
    Instance,
    SourceClient,
    init_instance,
    run_server,
)
from tests.test_desks import desked_instance, source_desks
from tests.test_newsroom_key import newsroom_identity, stored_directory

pytestmark = pytest.mark.e2e

TEXTS = (
    "--title", "en=Investigations", "--title", "fr=Enquêtes",
    "--title", "es=Investigaciones", "--title", "it=Inchieste",
    "--title", "de=Recherchen", "--title", "ar=تحقيقات",
    "--description", "en=Wrongdoing in public bodies.",
    "--description", "fr=Les abus dans les services publics.",
    "--description", "es=Abusos en los servicios públicos.",
    "--description", "it=Abusi nei servizi pubblici.",
    "--description", "de=Missstände in Behörden.",
    "--description", "ar=المخالفات في الهيئات العامة.",
)  # fmt: skip


def admin(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVER_CMD, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def ok(*args: object) -> str:
    done = admin(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def refused(*args: object) -> str:
    done = admin(*args)
    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stderr
    return done.stderr


@pytest.fixture
def instance(tmp_path: Path) -> Instance:
    return init_instance(tmp_path, names=("alice", "bruno", "chloe"))


def test_desks_are_added_listed_and_removed(instance: Instance) -> None:
    d = ("--data-dir", instance.data_dir)
    assert "No desk" in ok("desks", "list", *d)
    ok("desks", "add", *d, *TEXTS, "--journalist", "alice", "news")
    ok("desks", "add", *d, *TEXTS, "--journalist", "bruno", "--journalist", "alice", "legal")
    ok("desks", "all-desks", *d, "chloe")
    listing = ok("desks", "list", *d)
    assert "news" in listing and "Investigations" in listing
    assert "journalists: alice, bruno" in listing
    assert "receive every desk: chloe" in listing
    rows = Database(instance.data_dir / "lanterne.sqlite3").desks()
    assert [(r.name, r.members) for r in rows] == [
        ("news", ("alice",)),
        ("legal", ("alice", "bruno")),
    ]
    assert rows[0].titles["en"] == "Investigations" and rows[0].titles["fr"] == "Enquêtes"
    assert rows[0].titles["ar"] == "تحقيقات"
    ok("desks", "journalists", *d, "--journalist", "bruno", "legal")
    assert "journalists: bruno" in ok("desks", "list", *d)
    ok("desks", "remove", *d, "legal")
    assert "legal" not in ok("desks", "list", *d)
    ok("desks", "all-desks", *d, "--off", "chloe")
    assert "every desk" not in ok("desks", "list", *d)


def test_bad_desks_are_refused_with_a_reason(instance: Instance) -> None:
    d = ("--data-dir", instance.data_dir)
    assert "missing --title fr=" in refused(
        "desks", "add", *d, "--title", "en=News", "--description", "en=x",
        "--description", "fr=x", "--journalist", "alice", "news",
    )  # fmt: skip
    assert "desk name" in refused("desks", "add", *d, *TEXTS, "--journalist", "alice", "News!")
    assert "no journalist named zoe" in refused(
        "desks", "add", *d, *TEXTS, "--journalist", "zoe", "news"
    )
    assert "at least one journalist" in refused("desks", "add", *d, *TEXTS, "news")
    ok("desks", "add", *d, *TEXTS, "--journalist", "alice", "news")
    assert "exists" in refused("desks", "add", *d, *TEXTS, "--journalist", "alice", "news")
    assert "no desk named hr" in refused("desks", "remove", *d, "hr")
    assert "no journalist named zoe" in refused("desks", "all-desks", *d, "zoe")
    assert Database(instance.data_dir / "lanterne.sqlite3").desks()[0].members == ("alice",)


def test_a_signed_instance_signs_every_desk_change(instance: Instance, tmp_path: Path) -> None:
    """Which keys a desk encrypts to is the newsroom's signature, not the server's rows."""
    d = ("--data-dir", instance.data_dir)
    key_file, _ = newsroom_identity(tmp_path / "newsroom")
    nk = ("--newsroom-key", key_file)
    ok("init", *d, *nk)
    assert "--newsroom-key" in refused("desks", "add", *d, *TEXTS, "--journalist", "alice", "news")
    assert Database(instance.data_dir / "lanterne.sqlite3").desks() == []  # nothing unsigned
    ok("desks", "add", *d, *TEXTS, "--journalist", "alice", *nk, "news")
    ok("desks", "add", *d, *TEXTS, "--journalist", "bruno", *nk, "legal")
    ok("desks", "all-desks", *d, "chloe", *nk)
    signed = stored_directory(instance)
    assert signed.desks == (
        envelope.DirectoryDesk("news", ("alice",)),
        envelope.DirectoryDesk("legal", ("bruno",)),
    )
    assert [k.name for k in signed.recipients_for("news")] == ["alice", "chloe"]
    assert [k.name for k in signed.recipients_for("legal")] == ["bruno", "chloe"]
    # Removing a journalist re-signs the desks without them.
    ok("journalists", "remove", *d, *nk, "--hs-dir", tmp_path / "no-hs", "chloe")
    assert [k.name for k in stored_directory(instance).recipients_for("news")] == ["alice"]
    ok("desks", "remove", *d, *nk, "legal")
    assert [x.name for x in stored_directory(instance).desks] == ["news"]


def test_an_admin_changes_a_desks_texts_and_keeps_its_sources(tmp_path: Path) -> None:
    instance = desked_instance(tmp_path, signed=False)
    d = ("--data-dir", instance.data_dir)
    with run_server(instance) as server, SourceClient(server.base_url) as src:
        src.first_submission("canary-before-the-edit", None, "news")
    before = source_desks(instance)
    done = admin(
        "desks", "texts", *d, "--title", "fr=Tuyaux", "--description", "ar=للأخبار.", "news"
    )
    assert done.returncode == 0, done.stderr
    assert "fr: Tuyaux (Pour la rédaction.)" in done.stdout
    news, legal = Database(instance.data_dir / DATABASE_NAME).desks()
    assert (news.titles["fr"], news.titles["en"]) == ("Tuyaux", "News tips")
    assert news.descriptions["ar"] == "للأخبار." and legal.titles["fr"] == "Service juridique"
    assert news.members == ("alice",)
    assert source_desks(instance) == before  # its source is still in it
    with run_server(instance) as server, SourceClient(server.base_url) as src:
        src.lang = "fr"
        assert "Tuyaux" in src.get("/fr/submit").text
    for args, error in (
        (("--title", "fr=Tuyaux", "hr"), "no desk named hr"),
        (("--title", "xx=Tuyaux", "news"), "LANG one of"),
        (("--title", "fr=" + "x" * 81, "news"), "1 to 80 characters"),
        (("news",), "give --title"),
    ):
        done = admin("desks", "texts", *d, *args)
        assert done.returncode != 0 and error in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
