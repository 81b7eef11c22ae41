"""server/ops/tor_config.py: torrc rendering checked by tor itself, client-auth formats.

`tor` is required (scripts/bootstrap.sh --test installs it): a missing tor
fails these tests, it does not skip them.
"""

from __future__ import annotations

import base64
import os
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from server.ops.tor_config import (
    DEBIAN_DEFAULTS_TORRC,
    ClientAuthKey,
    DebianLayout,
    OnionService,
    TorConfigError,
    add_authorized_client,
    authorized_clients,
    check_onion_address,
    main,
    new_client,
    parse_service_line,
    read_onion_hostname,
    remove_authorized_client,
    render_torrc,
    tor_base32,
    verify_torrc,
)

ROOT = Path(__file__).resolve().parent.parent
SOURCE_TEMPLATE = (ROOT / "deploy" / "torrc.source.tmpl").read_text()
JOURNALIST_TEMPLATE = (ROOT / "deploy" / "torrc.journalist.tmpl").read_text()

# Published v3 addresses (the Tor Project's and DuckDuckGo's), valid checksums.
KNOWN_ONIONS = (
    "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion",
    "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion",
)
ONION = KNOWN_ONIONS[0]
B32 = re.compile(r"[A-Z2-7]{52}")


def options(torrc: str) -> list[str]:
    """The option lines of a torrc, without comments and blank lines."""
    return [line for line in torrc.splitlines() if line.strip() and not line.startswith("#")]


# --- rendering -----------------------------------------------------------------


def test_source_torrc_renders_a_public_service_with_proof_of_work(tmp_path: Path) -> None:
    torrc = render_torrc(SOURCE_TEMPLATE, OnionService(tmp_path / "src", 8080))
    assert "$" not in torrc  # every variable filled, none left for tor to misread
    assert options(torrc) == [
        "SocksPort 0",
        "SafeLogging 1",
        f"HiddenServiceDir {tmp_path}/src",
        "HiddenServiceVersion 3",
        "HiddenServicePort 80 127.0.0.1:8080",
        "HiddenServicePoWDefensesEnabled 1",
        "HiddenServicePoWQueueRate 250",
        "HiddenServicePoWQueueBurst 2500",
        "HiddenServiceMaxStreams 32",
        "HiddenServiceMaxStreamsCloseCircuit 1",
    ]


def test_journalist_torrc_renders_a_service_without_public_options(tmp_path: Path) -> None:
    torrc = render_torrc(JOURNALIST_TEMPLATE, OnionService(tmp_path / "jr", 8081))
    assert "$" not in torrc
    assert options(torrc) == [
        "SocksPort 0",
        "SafeLogging 1",
        f"HiddenServiceDir {tmp_path}/jr",
        "HiddenServiceVersion 3",
        "HiddenServicePort 80 127.0.0.1:8081",
    ]
    # The comment tells the admin where the keys go, with the real path.
    assert f"{tmp_path}/jr/authorized_clients/" in torrc


@pytest.mark.parametrize(
    "hs_dir",
    [
        "relative/dir",
        "/var/lib/tor/with space",
        "/var/lib/tor/x\nSocksPort 9050",  # would smuggle in an option
        '/var/lib/tor/"quoted"',
        "/var/lib/tor/#comment",
        "/var/lib/tor/back\\slash",
    ],
)
def test_render_refuses_paths_tor_would_misread(hs_dir: str) -> None:
    with pytest.raises(TorConfigError, match="HiddenServiceDir"):
        render_torrc(SOURCE_TEMPLATE, OnionService(Path(hs_dir), 8080))


@pytest.mark.parametrize("port", [0, -1, 65536, True])
def test_render_refuses_bad_ports(port: int) -> None:
    with pytest.raises(TorConfigError, match="port"):
        render_torrc(SOURCE_TEMPLATE, OnionService(Path("/var/lib/tor/x"), port))


def test_render_refuses_unknown_template_variables() -> None:
    with pytest.raises(TorConfigError, match=r"\$data_dir"):
        render_torrc("DataDirectory $data_dir\n", OnionService(Path("/x"), 80))
    with pytest.raises(TorConfigError, match="template"):
        render_torrc("HiddenServicePort 80 127.0.0.1:$\n", OnionService(Path("/x"), 80))


# --- tor --verify-config ----------------------------------------------------------


def test_rendered_torrcs_verify_with_tor(tmp_path: Path) -> None:
    for name, template in (("source", SOURCE_TEMPLATE), ("journalist", JOURNALIST_TEMPLATE)):
        torrc = tmp_path / f"{name}.torrc"
        torrc.write_text(
            f"DataDirectory {tmp_path}/data\n"
            + render_torrc(template, OnionService(tmp_path / name, 8080))
        )
        verify_torrc(torrc)
    # The source torrc as Debian's tor@default reads it: with its defaults file.
    source = tmp_path / "source-debian.torrc"
    source.write_text(render_torrc(SOURCE_TEMPLATE, DebianLayout().source))
    verify_torrc(source, defaults_torrc=DEBIAN_DEFAULTS_TORRC)


@pytest.mark.parametrize(
    ("broken", "complaint"),
    [
        ("HiddenServicePoWDefensesEnabled 2\n", "HiddenServicePoWDefensesEnabled"),
        ("NoSuchOption 1\n", "NoSuchOption"),
        ("HiddenServicePort 80 127.0.0.1:notaport\n", "notaport"),
    ],
)
def test_a_broken_torrc_fails_verification(tmp_path: Path, broken: str, complaint: str) -> None:
    torrc = tmp_path / "torrc"
    torrc.write_text(
        f"DataDirectory {tmp_path}/data\n"
        + render_torrc(SOURCE_TEMPLATE, OnionService(tmp_path / "src", 8080))
        + broken
    )
    with pytest.raises(TorConfigError, match=complaint) as info:
        verify_torrc(torrc)
    assert str(torrc) in str(info.value)


def test_verify_says_when_tor_is_missing(tmp_path: Path) -> None:
    torrc = tmp_path / "torrc"
    torrc.write_text("SocksPort 0\n")
    with pytest.raises(TorConfigError, match="not installed"):
        verify_torrc(torrc, tor=str(tmp_path / "no-tor"))


# --- addresses ---------------------------------------------------------------------


def test_tor_base32_is_rfc4648_without_padding() -> None:
    assert tor_base32(b"foobar") == "MZXW6YTBOI"  # RFC 4648 section 10: "MZXW6YTBOI======"
    assert tor_base32(bytes(32)) == "A" * 52


def test_known_onion_addresses_check() -> None:
    for onion in KNOWN_ONIONS:
        assert check_onion_address(onion) == onion
        assert check_onion_address(onion.upper().removesuffix(".ONION") + "\n") == onion


def test_bad_onion_addresses_are_refused() -> None:
    label = ONION.removesuffix(".onion")
    flipped = label[:10] + ("a" if label[10] != "a" else "b") + label[11:]
    with pytest.raises(TorConfigError, match="checksum"):
        check_onion_address(flipped)
    raw = bytearray(base64.b32decode(label.upper()))
    raw[34] = 2  # version byte
    with pytest.raises(TorConfigError, match="version"):
        check_onion_address(base64.b32encode(bytes(raw)).decode().lower())
    for bad in ("", label[:-1], label + "a", "facebookcorewwwi.onion", label[:-1] + "1"):
        with pytest.raises(TorConfigError, match="v3 onion address"):
            check_onion_address(bad)


def test_read_onion_hostname(tmp_path: Path) -> None:
    with pytest.raises(TorConfigError, match="has tor started"):
        read_onion_hostname(tmp_path)
    (tmp_path / "hostname").write_text(ONION + "\n")
    assert read_onion_hostname(tmp_path) == ONION
    (tmp_path / "hostname").write_text("not an onion\n")
    with pytest.raises(TorConfigError):
        read_onion_hostname(tmp_path)


# --- client authorisation keys ---------------------------------------------------


def test_client_auth_key_lines_have_tors_formats() -> None:
    key = ClientAuthKey.generate()
    service = key.service_line()
    m = re.fullmatch(r"descriptor:x25519:([A-Z2-7]{52})\n", service)
    assert m and base64.b32decode(m.group(1) + "====") == key.public_key
    assert parse_service_line(service) == key.public_key
    client = key.client_line(ONION)
    m = re.fullmatch(r"([a-z2-7]{56}):descriptor:x25519:([A-Z2-7]{52})\n", client)
    assert m and m.group(1) + ".onion" == ONION
    assert base64.b32decode(m.group(2) + "====") == key.private_key
    assert ClientAuthKey.from_private_line(client) == (ONION, key)


def test_client_auth_public_key_is_the_x25519_public_key() -> None:
    # Independent check with another X25519 implementation: tor derives the
    # public key from the private one the same way.
    key = ClientAuthKey.generate()
    other = X25519PrivateKey.from_private_bytes(key.private_key).public_key().public_bytes_raw()
    assert other == key.public_key
    assert ClientAuthKey.generate().private_key != key.private_key


def test_client_auth_key_refuses_mismatched_or_short_keys() -> None:
    a, b = ClientAuthKey.generate(), ClientAuthKey.generate()
    with pytest.raises(TorConfigError, match="does not belong"):
        ClientAuthKey(a.private_key, b.public_key)
    with pytest.raises(TorConfigError, match="32 bytes"):
        ClientAuthKey(a.private_key[:31], a.public_key)
    assert a.private_key.hex() not in repr(a)
    assert tor_base32(a.private_key) not in repr(a)


@pytest.mark.parametrize(
    "line",
    [
        "descriptor:x25519:" + "A" * 52,  # no address
        ONION.removesuffix(".onion") + ":descriptor:ed25519:" + "A" * 52,
        ONION.removesuffix(".onion") + ":descriptor:x25519:" + "A" * 51,
        ONION.removesuffix(".onion") + ":descriptor:x25519:" + "1" * 52,
    ],
)
def test_bad_private_lines_are_refused(line: str) -> None:
    with pytest.raises(TorConfigError) as info:
        ClientAuthKey.from_private_line(line)
    assert line.rsplit(":", 1)[-1] not in str(info.value)  # never echo a private key


# --- the service's authorized_clients/ ---------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_add_list_remove_authorized_clients(tmp_path: Path) -> None:
    hs_dir = tmp_path / "hs"
    hs_dir.mkdir(mode=0o700)
    alice, bob = ClientAuthKey.generate(), ClientAuthKey.generate()
    path = add_authorized_client(hs_dir, "alice", alice.public_key)
    add_authorized_client(hs_dir, "bob_2", bob.public_key)
    assert path == hs_dir / "authorized_clients" / "alice.auth"
    assert path.read_text() == alice.service_line()
    assert mode(path.parent) == 0o700
    assert mode(path) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["alice.auth", "bob_2.auth"]
    (path.parent / "notes.txt").write_text("tor ignores files without .auth")
    assert authorized_clients(hs_dir) == {"alice": alice.public_key, "bob_2": bob.public_key}

    with pytest.raises(TorConfigError, match="exists"):
        add_authorized_client(hs_dir, "alice", bob.public_key)
    assert path.read_text() == alice.service_line()  # not replaced

    assert remove_authorized_client(hs_dir, "alice") is True
    assert remove_authorized_client(hs_dir, "alice") is False
    assert authorized_clients(hs_dir) == {"bob_2": bob.public_key}


def test_auth_files_get_the_owner_of_the_service_directory(tmp_path: Path) -> None:
    # As root (an admin with sudo), files must still be readable by tor's
    # user, who owns the HiddenServiceDir.
    hs_dir = tmp_path / "hs"
    hs_dir.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(hs_dir, 4242, 4243)
    path = add_authorized_client(hs_dir, "alice", ClientAuthKey.generate().public_key)
    owner = hs_dir.stat()
    for p in (path.parent, path):
        assert (p.stat().st_uid, p.stat().st_gid) == (owner.st_uid, owner.st_gid), p


@pytest.mark.parametrize("name", ["", "../alice", "alice.auth", "a b", "é", "x" * 65, "a/b"])
def test_client_names_must_be_plain_file_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(TorConfigError, match="client name"):
        add_authorized_client(tmp_path, name, bytes(32))
    with pytest.raises(TorConfigError, match="client name"):
        remove_authorized_client(tmp_path, name)
    assert not (tmp_path / "authorized_clients").exists()


def test_add_needs_the_service_directory_and_a_32_byte_key(tmp_path: Path) -> None:
    with pytest.raises(TorConfigError, match="does not exist"):
        add_authorized_client(tmp_path / "missing", "alice", bytes(32))
    with pytest.raises(TorConfigError, match="32 bytes"):
        add_authorized_client(tmp_path, "alice", bytes(31))


def test_a_malformed_auth_file_is_reported_by_name(tmp_path: Path) -> None:
    auth_dir = tmp_path / "authorized_clients"
    auth_dir.mkdir()
    (auth_dir / "mallory.auth").write_text("descriptor:x25519:tooshort\n")
    with pytest.raises(TorConfigError, match=r"mallory\.auth"):
        authorized_clients(tmp_path)


def test_new_client_writes_both_halves(tmp_path: Path) -> None:
    hs_dir = tmp_path / "hs"
    hs_dir.mkdir(mode=0o700)
    (hs_dir / "hostname").write_text(ONION + "\n")
    private = tmp_path / "alice.auth_private"
    key = new_client(hs_dir, "alice", private)
    assert mode(private) == 0o600
    assert ClientAuthKey.from_private_line(private.read_text()) == (ONION, key)
    assert authorized_clients(hs_dir) == {"alice": key.public_key}
    # A second time: refused before anything is written.
    again = tmp_path / "again.auth_private"
    with pytest.raises(TorConfigError, match="already authorised"):
        new_client(hs_dir, "alice", again)
    assert not again.exists()
    # An existing private file is never overwritten, and no .auth appears.
    with pytest.raises(TorConfigError, match="cannot create"):
        new_client(hs_dir, "bob", private)
    assert ClientAuthKey.from_private_line(private.read_text()) == (ONION, key)
    assert "bob" not in authorized_clients(hs_dir)


# --- layout and command line -----------------------------------------------------


def test_debian_layout() -> None:
    layout = DebianLayout()
    assert layout.source == OnionService(Path("/var/lib/tor/lanterne-source"), 8080)
    assert layout.journalist == OnionService(
        Path("/var/lib/tor-instances/lanternejournalist/journalist-api"), 8081
    )
    assert layout.source_torrc == Path("/etc/tor/torrc")
    assert layout.journalist_torrc == Path("/etc/tor/instances/lanternejournalist/torrc")
    assert layout.journalist_unit == "tor@lanternejournalist.service"
    moved = DebianLayout(prefix=Path("/tmp/root"))
    assert moved.source.hs_dir == Path("/tmp/root/var/lib/tor/lanterne-source")
    assert moved.journalist_torrc == Path("/tmp/root/etc/tor/instances/lanternejournalist/torrc")


def test_command_line_render_and_hostname(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = ROOT / "deploy" / "torrc.source.tmpl"
    argv = ["render", "--template", str(template), "--hs-dir", str(tmp_path), "--port", "8080"]
    assert main(argv) == 0
    assert capsys.readouterr().out == render_torrc(SOURCE_TEMPLATE, OnionService(tmp_path, 8080))
    assert main([*argv[:-1], "0"]) == 1
    assert "port" in capsys.readouterr().err

    assert main(["hostname", str(tmp_path)]) == 1
    assert "has tor started" in capsys.readouterr().err
    (tmp_path / "hostname").write_text(ONION + "\n")
    assert main(["hostname", str(tmp_path)]) == 0
    assert capsys.readouterr().out == ONION + "\n"


def test_command_line_client_auth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "hostname").write_text(ONION + "\n")
    private = tmp_path / "alice.auth_private"
    argv = ["client-auth", "alice", "--hs-dir", str(tmp_path), "--private-out", str(private)]
    assert main(argv) == 0
    address, key = ClientAuthKey.from_private_line(private.read_text())
    assert address == ONION
    assert authorized_clients(tmp_path) == {"alice": key.public_key}
    assert str(private) in capsys.readouterr().out
    assert main(argv) == 1
    assert "already authorised" in capsys.readouterr().err
