"""`lanterne ack` answers in the language the source wrote in (issue 16 §2): the
CLI reads it from the source's encrypted manifest, which the server cannot,
and asks the server for that language's acknowledgement text. `--lang` still
chooses; a signing identity, which cannot decrypt, says so and sends the
channel's default language."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from server.domain.channel import DEFAULT_ACK_TEMPLATE
from server.web.i18n import load_translations
from tests.cli_helpers import run
from tests.server_process import ROOT, SERVER_CMD, Instance, Server, SourceClient, run_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    secret, public = write_new_identity(JournalistIdentity.generate("alice"), tmp_path, None)
    data = tmp_path / "data"
    subprocess.run(
        [*SERVER_CMD, "init", "--data-dir", data, "--journalist", public],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    instance = Instance(data, [], tmp_path / "server-tmp", tmp_path / "server.log")
    instance.tmp_dir.mkdir()
    with run_server(instance, journalist_api=True) as server:
        yield server, secret


def lanterne(home: Path, *args: object) -> subprocess.CompletedProcess[bytes]:
    done = run(*map(str, args), env={"LANTERNE_HOME": str(home)})
    assert done.returncode == 0, (args, done.stderr.decode())
    return done


def configure(home: Path, server: Server, identity: Path) -> None:
    assert server.api_url is not None
    url = server.api_url.removesuffix("/api/v1")
    lanterne(home, "config", "--server", url, "--identity", identity)


def ack_a_french_source(server: Server, home: Path, *options: str) -> tuple[bytes, str]:
    """A source writes from the French pages; the journalist pulls and runs
    `lanterne ack` (with ``options``): its stderr, and the source's inbox after."""
    source = SourceClient(server.base_url)
    source.lang = "fr"
    with source:
        codename = source.first_submission("un signalement en français")
        lanterne(home, "pull")
        [row] = json.loads(lanterne(home, "list", "--json").stdout)
        done = lanterne(home, "ack", row["id"], *options)
        assert source.login(codename).status_code == 303
        return done.stderr, source.get("/fr/inbox").text


def test_the_acknowledgement_is_in_the_language_the_source_wrote_in(
    served: tuple[Server, Path], tmp_path: Path
) -> None:
    server, identity = served
    configure(tmp_path / "home", server, identity)
    _, page = ack_a_french_source(server, tmp_path / "home")
    french = load_translations("fr").gettext(DEFAULT_ACK_TEMPLATE)
    assert french != DEFAULT_ACK_TEMPLATE
    assert french.split(";")[0] in page  # the page escapes the apostrophes after it
    assert DEFAULT_ACK_TEMPLATE[:40] not in page


def test_lang_still_chooses(served: tuple[Server, Path], tmp_path: Path) -> None:
    server, identity = served
    configure(tmp_path / "home", server, identity)
    _, page = ack_a_french_source(server, tmp_path / "home", "--lang", "de")
    assert load_translations("de").gettext(DEFAULT_ACK_TEMPLATE)[:40] in page


def test_a_signing_identity_sends_the_default_language_and_says_why(
    served: tuple[Server, Path], tmp_path: Path
) -> None:
    server, identity = served
    signing = tmp_path / "alice.signing"
    lanterne(tmp_path / "setup", "signing-key", identity, "--out", signing, "--no-passphrase")
    configure(tmp_path / "home", server, signing)
    stderr, page = ack_a_french_source(server, tmp_path / "home")
    assert b"cannot read which language the source wrote in" in stderr
    assert DEFAULT_ACK_TEMPLATE[:40] in page
