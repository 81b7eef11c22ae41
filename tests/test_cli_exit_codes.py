"""`lanterne`'s exit codes: one table in the code (``ExitCode``), the same table in
docs/JOURNALIST_GUIDE.md, and every code triggered by a real command (the real
console script, a real server for the codes that need one).

Also what happens with no terminal to ask on (cron, a pipe): a passphrase or a
confirmation is not prompted for; the command says which option answers it
ahead of time and exits USAGE, with no getpass warning and no "interrupted".
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from journalist_cli.errors import ExitCode
from tests.cli_helpers import LANTERNE, run
from tests.server_process import SourceClient
from tests.test_journalist_workflow import (
    Newsroom,
    lanterne,
    newsroom,
    remove_journalist,
    setup_journalist,
)

# Real processes end to end: CI runs it, scripts/test.sh --fast does not (under two minutes).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "JOURNALIST_GUIDE.md"

Done = subprocess.CompletedProcess[bytes]


def detached(*args: object, env: dict[str, str] | None = None) -> Done:
    """`lanterne ARGS` as cron would run it: no controlling terminal, stdin empty."""
    return subprocess.run(
        [LANTERNE, *map(str, args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # no controlling terminal: /dev/tty cannot be opened
        timeout=120,
        check=False,
    )


# --- The table ----------------------------------------------------------------------


def guide_table() -> list[tuple[int, str]]:
    text = GUIDE.read_text(encoding="utf-8")
    section = text[text.index("## 6. When something fails") :]
    return [
        (int(code), meaning)
        for code, meaning in re.findall(r"^\| (\d+) \| (.+?) \|$", section, re.MULTILINE)
    ]


def test_the_guide_shows_the_code_table() -> None:
    assert guide_table() == [(int(c), c.meaning) for c in ExitCode]


def test_the_readme_points_to_the_table_and_has_no_copy() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert 'docs/JOURNALIST_GUIDE.md` ("When something fails")' in readme
    assert "| code |" not in readme and "Exit status: 0" not in readme


# --- Every code, from a real command --------------------------------------------------


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Newsroom, Path, str]]:
    """A real server with alice and bruno, one submission, alice's vault pulled."""
    base = tmp_path_factory.mktemp("exit-codes")
    with newsroom(base, ("alice", "bruno")) as r:
        with SourceClient(r.source_url) as source:
            source.first_submission("Bonjour.", [("a.txt", b"texte\n", "text/plain")])
        home = base / "alice-home"
        setup_journalist(r, home, "alice")
        lanterne(home, "pull")
        [row] = json.loads(lanterne(home, "list", "--json").stdout)
        yield r, home, row["id"]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("exit-keys")
    assert run("keys", "generate", "--name", "zoe", "--dir", d, "--no-passphrase").returncode == 0
    (d / "pp").write_text("correct horse\n")
    done = run("keys", "generate", "--name", "carol", "--dir", d, "--passphrase-file", d / "pp")
    assert done.returncode == 0, done.stderr
    return d


def ok(keys: Path, room: tuple[Newsroom, Path, str]) -> list[Done]:
    return [run("keys", "show", keys / "zoe.pub")]


def error(keys: Path, room: tuple[Newsroom, Path, str]) -> list[Done]:
    (keys / "wrong").write_text("not it\n")
    sealed = run("file", "encrypt", "-r", keys / "carol.pub", input=b"x").stdout
    wrong = run(
        "file", "decrypt", "-i", keys / "carol.identity", "--passphrase-file", keys / "wrong",
        input=sealed,
    )  # fmt: skip
    assert b"wrong passphrase" in wrong.stderr
    return [wrong]


def usage(keys: Path, room: tuple[Newsroom, Path, str]) -> list[Done]:
    _, home, sid = room
    env = {"LANTERNE_HOME": str(home)}
    missing = keys / "no-such-file.txt"
    done = [
        run("file", "encrypt", "-r", keys / "zoe.pub", missing),
        run("clean", "--out", keys / "cleaned", missing),
        run("export", sid, "--gpg", "1234", "--out", keys / "export", env=env),
        run("show", "no such source", env=env),
    ]
    # Arguments the server refuses: its reason is shown, not "could not reach".
    bad_tag = lanterne(home, "tag", sid, "bad tag!", ok=False)
    assert b"tags: each 1-32 letters" in bad_tag.stderr, bad_tag.stderr
    nobody = lanterne(home, "assign", sid, "nobody", ok=False)
    assert b"no journalist has that name" in nobody.stderr, nobody.stderr
    for d in (bad_tag, nobody):
        assert b"reach" not in d.stderr and b"refused this" in d.stderr
    return [*done, bad_tag, nobody]


def decrypt_failed(keys: Path, room: tuple[Newsroom, Path, str]) -> list[Done]:
    sealed = bytearray(run("file", "encrypt", "-r", keys / "zoe.pub", input=b"y" * 1000).stdout)
    sealed[-20] ^= 1
    return [run("file", "decrypt", "-i", keys / "zoe.identity", input=bytes(sealed))]


def server(keys: Path, room: tuple[Newsroom, Path, str]) -> list[Done]:
    env = {"LANTERNE_HOME": str(keys / "unreachable-home")}
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        assert run("config", "--server", url, "--identity", keys / "zoe.identity",
                   env=env).returncode == 0  # fmt: skip
        return [run("pull", env=env)]


def login_refused(keys: Path, room: tuple[Newsroom, Path, str]) -> list[Done]:
    r, _, _ = room
    stranger = keys / "stranger-home"
    assert run("config", "--server", r.api_url, "--identity", keys / "zoe.identity",
               env={"LANTERNE_HOME": str(stranger)}).returncode == 0  # fmt: skip
    return [run("pull", env={"LANTERNE_HOME": str(stranger)})]


def interrupted(keys: Path, room: tuple[Newsroom, Path, str]) -> list[Done]:
    proc = subprocess.Popen(
        [LANTERNE, "file", "encrypt", "-r", str(keys / "zoe.pub")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write(os.urandom(1 << 20))  # more than a chunk: output starts flowing
    proc.stdin.flush()
    assert proc.stdout.read(1024)  # it is running, inside the command, waiting for more
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return [subprocess.CompletedProcess(proc.args, proc.returncode, out, err)]


TRIGGERS: dict[ExitCode, Callable[[Path, tuple[Newsroom, Path, str]], list[Done]]] = {
    ExitCode.OK: ok,
    ExitCode.ERROR: error,
    ExitCode.USAGE: usage,
    ExitCode.DECRYPT_FAILED: decrypt_failed,
    ExitCode.SERVER: server,
    ExitCode.LOGIN_REFUSED: login_refused,
    ExitCode.INTERRUPTED: interrupted,
}


def test_every_code_has_a_trigger() -> None:
    assert set(TRIGGERS) == set(ExitCode)


@pytest.mark.parametrize("code", list(ExitCode), ids=lambda c: c.name)
def test_every_code_from_a_real_command(
    code: ExitCode, keys: Path, room: tuple[Newsroom, Path, str]
) -> None:
    for done in TRIGGERS[code](keys, room):
        assert done.returncode == code, (done.args, done.returncode, done.stderr)
        assert b"Traceback" not in done.stderr
        if code != ExitCode.OK:
            assert done.stderr.strip(), done.args  # always a reason


def test_a_removed_journalist_gets_login_refused(
    tmp_path: Path, keys: Path, room: tuple[Newsroom, Path, str]
) -> None:
    r, _, _ = room
    home = tmp_path / "bruno"
    setup_journalist(r, home, "bruno")
    remove_journalist(r, "bruno")
    done = lanterne(home, "pull", ok=False)
    assert done.returncode == ExitCode.LOGIN_REFUSED, done.stderr


# --- No terminal ------------------------------------------------------------------------


def test_no_terminal_for_a_passphrase(keys: Path) -> None:
    sealed = keys / "sealed"
    sealed.write_bytes(run("file", "encrypt", "-r", keys / "carol.pub", input=b"z").stdout)
    done = detached("file", "decrypt", "-i", keys / "carol.identity", sealed)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert b"no terminal" in done.stderr and b"--passphrase-file" in done.stderr
    assert b"GetPassWarning" not in done.stderr and b"interrupted" not in done.stderr
    assert done.stdout == b""
    new = detached("keys", "generate", "--name", "dan", "--dir", keys / "new")
    assert new.returncode == ExitCode.USAGE and b"--passphrase-file" in new.stderr
    assert not (keys / "new" / "dan.identity").exists()
    protect = detached("keys", "protect", keys / "zoe.identity", "--new-passphrase")
    assert protect.returncode == ExitCode.USAGE and b"--new-passphrase-file" in protect.stderr
    assert b"GetPassWarning" not in new.stderr + protect.stderr


def test_no_terminal_for_a_confirmation(room: tuple[Newsroom, Path, str]) -> None:
    _, home, sid = room
    done = detached("delete", sid, env={"LANTERNE_HOME": str(home)})
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert b"no terminal" in done.stderr and b"--yes" in done.stderr
    assert b"interrupted" not in done.stderr
    still = json.loads(lanterne(home, "list", "--json").stdout)
    assert [row["id"] for row in still] == [sid]  # nothing was deleted
    # A reply with no TEXT opens $EDITOR: not without a terminal.
    reply = detached("reply", sid, env={"LANTERNE_HOME": str(home), "EDITOR": "cat"})
    assert reply.returncode == ExitCode.USAGE, reply.stderr
    assert b"no terminal" in reply.stderr and b"- to read it" in reply.stderr
