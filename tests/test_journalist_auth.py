"""Journalist API authentication under attack, against a real server process and
the real admin commands: a token dies with the key that obtained it, a login
signature names the address the server is configured to serve, a flood of
challenges locks nobody out, concurrent logins all succeed, and the CLI says
why a login was refused (issue 11, items 3, 4, 5, 19)."""

from __future__ import annotations

import base64
import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import nacl.signing
import pytest

from journalist_cli.api_client import ApiClient
from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from journalist_cli.workflow_errors import LoginRefused
from server.domain.clock import SystemClock
from server.web.journalist_api.auth import Authenticator, signed_message
from tests.server_process import ROOT, SERVER_CMD, Instance, Server, run_server
from tests.test_onion_location import onion_address

# Over ~20 s of real servers and CLI runs: CI runs it, scripts/test.sh --fast does not.
pytestmark = pytest.mark.slow


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def admin(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVER_CMD, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@dataclass
class Newsroom:
    server: Server
    keys: Path

    @property
    def api(self) -> str:
        assert self.server.api_url is not None
        return self.server.api_url

    @property
    def loopback(self) -> str:
        return self.api.split("/")[2]

    @property
    def data_dir(self) -> Path:
        return self.server.instance.data_dir

    def new_key(self, name: str, tag: str = "") -> JournalistIdentity:
        """A key pair for ``name``, its NAME.pub in keys/<tag>/."""
        ident = JournalistIdentity.generate(name)
        write_new_identity(ident, self.keys / tag if tag else self.keys, None)
        return ident

    def pub(self, name: str, tag: str = "") -> Path:
        return (self.keys / tag if tag else self.keys) / f"{name}.pub"

    def add(self, name: str, *extra: object, tag: str = "") -> subprocess.CompletedProcess[str]:
        return admin(
            "journalists", "add", "--data-dir", self.data_dir, "--no-client-auth",
            *extra, self.pub(name, tag),
        )  # fmt: skip


def login(
    room: Newsroom,
    who: JournalistIdentity,
    *,
    signed_host: str | None = None,
    sent_host: str | None = None,
    http: httpx.Client | None = None,
) -> httpx.Response:
    """POST /auth/token: signed for ``signed_host``, sent with Host ``sent_host``."""
    with contextlib.ExitStack() as stack:
        if http is None:
            http = stack.enter_context(httpx.Client())
        challenge = unb64(http.post(f"{room.api}/auth/challenge").json()["challenge"])
        signed_host = signed_host or room.loopback
        sig = who.signing.sign(signed_message(challenge, signed_host)).signature
        body = {"journalist": who.name, "challenge": b64(challenge), "signature": b64(sig)}
        headers = {"Host": sent_host} if sent_host else {}
        return http.post(f"{room.api}/auth/token", json=body, headers=headers)


@contextlib.contextmanager
def token_of(room: Newsroom, who: JournalistIdentity) -> Iterator[httpx.Client]:
    r = login(room, who)
    assert r.status_code == 200, r.text
    bearer = {"Authorization": f"Bearer {r.json()['token']}"}
    with httpx.Client(base_url=room.api, headers=bearer) as api:
        yield api


@pytest.fixture
def room(tmp_path: Path) -> Iterator[Newsroom]:
    keys = tmp_path / "keys"
    data = tmp_path / "data"
    done = admin("init", "--data-dir", data)
    assert done.returncode == 0, done.stderr
    instance = Instance(data, [], tmp_path / "server-tmp", tmp_path / "server.log")
    instance.tmp_dir.mkdir()
    with run_server(instance, journalist_api=True) as server:
        yield Newsroom(server, keys)


# --- Item 3: a token dies with the key that obtained it --------------------------


def test_replacing_a_key_ends_its_tokens_at_once(room: Newsroom) -> None:
    old = room.new_key("dora")
    assert room.add("dora").returncode == 0
    new = room.new_key("dora", "new")
    with token_of(room, old) as api:
        assert api.get("/sources").status_code == 200
        assert room.add("dora", tag="new").returncode == 1  # refused without --replace
        assert api.get("/sources").status_code == 200
        assert room.add("dora", "--replace", tag="new").returncode == 0
        refused = api.get("/sources")
        assert refused.status_code == 401
        assert refused.json()["reason"] == "key_revoked"
    assert login(room, old).json()["reason"] == "key_refused"
    with token_of(room, new) as api:
        assert api.get("/sources").status_code == 200


def test_a_removed_journalists_token_never_acts_for_a_later_one(room: Newsroom) -> None:
    room.new_key("alice")
    dora = room.new_key("dora")
    for name in ("alice", "dora"):
        assert room.add(name).returncode == 0
    no_onion = room.keys / "no-onion-here"
    with token_of(room, dora) as api:
        assert {j["name"] for j in api.get("/journalists").json()} == {"alice", "dora"}
        done = admin(
            "journalists", "remove", "--data-dir", room.data_dir, "--hs-dir", no_onion, "dora"
        )
        assert done.returncode == 0, done.stderr
        # A new journalist comes before dora's token is used again: with ids
        # reused, emile would get dora's row id, and her token would act as him.
        room.new_key("emile")
        assert room.add("emile").returncode == 0
        refused = api.get("/sources")
        assert refused.status_code == 401 and refused.json()["reason"] == "key_revoked"
        assert api.get("/journalists").status_code == 401


# --- Item 4: the login signature names the address the server serves --------------


def test_a_signature_for_another_address_is_refused_even_with_a_matching_host(
    room: Newsroom,
) -> None:
    alice = room.new_key("alice")
    assert room.add("alice").returncode == 0
    elsewhere = onion_address("elsewhere")
    refused = login(room, alice, signed_host=elsewhere, sent_host=elsewhere)
    assert refused.status_code == 401
    assert refused.json()["reason"] == "wrong_host"
    assert login(room, alice).status_code == 200  # the loopback address it listens on


def test_once_the_onion_is_recorded_logins_must_name_it(room: Newsroom, tmp_path: Path) -> None:
    alice = room.new_key("alice")
    hs_dir = tmp_path / "journalist-hs"
    hs_dir.mkdir(mode=0o700)
    onion = onion_address("recorded")
    (hs_dir / "hostname").write_text(onion + "\n")
    done = admin(
        "journalists", "add", "--data-dir", room.data_dir,
        "--client-auth-out", tmp_path / "alice.auth_private", "--hs-dir", hs_dir,
        "--tor-reload-cmd", "true", room.pub("alice"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The loopback address no longer counts, whatever the Host header says.
    for host in (room.loopback, onion_address("another")):
        wrong = login(room, alice, signed_host=host, sent_host=host)
        assert wrong.status_code == 401 and wrong.json()["reason"] == "wrong_host"
    assert login(room, alice, signed_host=onion, sent_host=onion).status_code == 200
    # What is signed counts, not the Host header (tor hands the API any name).
    assert login(room, alice, signed_host=onion).status_code == 200


# --- Item 5: init refuses to replace a journalist silently ------------------------


def test_init_refuses_to_replace_a_journalist_without_replace(tmp_path: Path) -> None:
    first = JournalistIdentity.generate("alice")
    write_new_identity(first, tmp_path / "one", None)
    second = JournalistIdentity.generate("alice")
    write_new_identity(second, tmp_path / "two", None)
    data = tmp_path / "data"
    assert (
        admin("init", "--data-dir", data, "--journalist", tmp_path / "one/alice.pub").returncode
        == 0
    )
    # Running init again with the same file is fine (init is idempotent).
    again = admin("init", "--data-dir", data, "--journalist", tmp_path / "one/alice.pub")
    assert again.returncode == 0, again.stderr
    refused = admin("init", "--data-dir", data, "--journalist", tmp_path / "two/alice.pub")
    assert refused.returncode == 1
    assert "a journalist named alice exists with other keys; use --replace" in refused.stderr
    listed = admin("journalists", "list", "--data-dir", data).stdout
    assert first.public.fingerprint in listed and second.public.fingerprint not in listed
    done = admin(
        "init", "--data-dir", data, "--replace", "--journalist", tmp_path / "two/alice.pub"
    )
    assert done.returncode == 0, done.stderr
    assert second.public.fingerprint in admin("journalists", "list", "--data-dir", data).stdout


def test_an_upgraded_key_needs_replace_and_is_listed_as_hybrid(tmp_path: Path) -> None:
    """Issue 15: adding a hybrid key to a journalist is a key change like any other."""
    old = JournalistIdentity.generate("alice", hybrid=False)
    write_new_identity(old, tmp_path / "one", None)
    upgraded = old.with_hybrid()
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "alice.pub").write_text(upgraded.public.to_json())
    data = tmp_path / "data"
    assert (
        admin("init", "--data-dir", data, "--journalist", tmp_path / "one/alice.pub").returncode
        == 0
    )
    listed = admin("journalists", "list", "--data-dir", data).stdout
    assert f"X25519  {old.public.fingerprint}" in listed
    refused = admin("init", "--data-dir", data, "--journalist", tmp_path / "two/alice.pub")
    assert "exists with other keys; use --replace" in refused.stderr
    done = admin(
        "init", "--data-dir", data, "--replace", "--journalist", tmp_path / "two/alice.pub"
    )
    assert done.returncode == 0, done.stderr
    listed = admin("journalists", "list", "--data-dir", data).stdout
    assert f"hybrid  {upgraded.public.fingerprint}" in listed
    assert old.public.fingerprint not in listed


# --- Item 19: floods and concurrency --------------------------------------------


@pytest.mark.slow
def test_a_flood_of_challenges_does_not_lock_journalists_out(room: Newsroom) -> None:
    alice = room.new_key("alice")
    assert room.add("alice").returncode == 0

    def flood(n: int) -> int:
        with httpx.Client(base_url=room.api) as anon:
            return sum(anon.post("/auth/challenge").status_code == 200 for _ in range(n))

    with ThreadPoolExecutor(8) as pool:
        answered = sum(pool.map(flood, [2_500] * 8))
    assert answered == 20_000
    assert login(room, alice).status_code == 200


def test_concurrent_logins_all_succeed(room: Newsroom) -> None:
    people = [room.new_key(f"j{i}") for i in range(4)]
    for who in people:
        assert room.add(who.name).returncode == 0

    def many(who: JournalistIdentity) -> list[int]:
        with httpx.Client() as http:
            return [login(room, who, http=http).status_code for _ in range(20)]

    with ThreadPoolExecutor(16) as pool:
        codes = [c for batch in pool.map(many, people * 4) for c in batch]
    assert codes == [200] * 320


def test_the_cli_says_why_a_login_was_refused(room: Newsroom) -> None:
    alice = room.new_key("alice")
    unknown = pytest.raises(LoginRefused, match="knows no journalist of that name with this key")
    with ApiClient(room.api.removesuffix("/api/v1")) as client, unknown:
        client.login("alice", alice.signing)
    assert room.add("alice").returncode == 0
    # Through another name for the same server: the address it does not serve.
    port = room.loopback.split(":")[1]
    elsewhere = pytest.raises(LoginRefused, match=f"does not serve the address localhost:{port}")
    with ApiClient(f"http://localhost:{port}") as client, elsewhere:
        client.login("alice", alice.signing)
    with ApiClient(room.api.removesuffix("/api/v1")) as client:
        assert client.login("alice", alice.signing).name == "alice"


def test_the_authenticator_is_safe_under_concurrent_threads() -> None:
    """FastAPI runs these routes in a thread pool. Before the lock, expiring
    entries while another thread added one raised "dictionary changed size
    during iteration" (a 500) or lost a challenge (a refused login)."""
    auth = Authenticator(SystemClock())
    key = nacl.signing.SigningKey.generate()
    me = (1, bytes(key.verify_key))
    problems: list[BaseException] = []
    tokens: list[bytes] = []

    def work() -> None:
        try:
            for _ in range(200):
                c = auth.new_challenge()
                token = auth.redeem(c, key.sign(signed_message(c, "h")).signature, ["h"], "h", me)
                assert auth.session(token).journalist_id == 1
                tokens.append(token)
        except BaseException as exc:  # reported below
            problems.append(exc)

    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=work) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(before)
    assert problems == []
    assert len(set(tokens)) == 16 * 200


def test_more_hybrid_keys_than_one_header_holds_are_refused(tmp_path: Path) -> None:
    """56 hybrid keys cannot all be recipients of one envelope (SPEC §7): refused at
    registration, all or nothing, rather than failing every submission later."""
    files = []
    for i in range(56):
        key = JournalistIdentity.generate(f"j{i:02d}").public
        files += ["--journalist", tmp_path / f"j{i:02d}.pub"]
        (tmp_path / f"j{i:02d}.pub").write_text(key.to_json())
    data = tmp_path / "data"
    refused = admin("init", "--data-dir", data, *files)
    assert refused.returncode == 1
    assert "56 journalists' keys do not fit in one envelope" in refused.stderr
    assert "No journalist registered." in admin("journalists", "list", "--data-dir", data).stdout
    done = admin("init", "--data-dir", data, *files[:-2])  # 55, and a reply adds the source
    assert done.returncode == 0, done.stderr
