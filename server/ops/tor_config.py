"""Tor configuration for Lanterne's two onion services.

* :func:`render_torrc` fills a torrc template (``deploy/torrc.source.tmpl``,
  ``deploy/torrc.journalist.tmpl``) with a service's directory and loopback
  port; :func:`verify_torrc` asks tor whether the result is valid.
* :class:`DebianLayout` says where deploy/install.sh puts both services.
* :class:`ClientAuthKey` is one journalist's onion client-authorisation
  keypair (x25519), with the two lines tor reads: the service's
  ``authorized_clients/<name>.auth`` and the client's ``<name>.auth_private``.
* :func:`add_authorized_client`, :func:`remove_authorized_client` and
  :func:`authorized_clients` manage the service side. tor applies an addition
  on reload; a removal only fully takes effect on restart (see
  :func:`remove_authorized_client`).
* :func:`read_onion_hostname` reads and checks the address tor wrote.

Formats follow tor's rend-spec-v3 ("Client authorization" and the appendix on
file formats; "Encoding onion addresses" for the checksum). Errors are
:class:`TorConfigError` with a message an admin can act on.

``python -m server.ops.tor_config`` runs the few operations deploy/install.sh
needs before ``lanterne-server`` has its admin commands.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import re
import string
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import nacl.public

from server import onion_address

__all__ = [
    "AUTHORIZED_CLIENTS_DIR",
    "DEBIAN_DEFAULTS_TORRC",
    "DEBIAN_INSTANCE_DEFAULTS_TORRC",
    "ClientAuthKey",
    "DebianLayout",
    "OnionService",
    "TorConfigError",
    "add_authorized_client",
    "authorized_clients",
    "check_onion_address",
    "new_client",
    "parse_service_line",
    "read_onion_hostname",
    "remove_authorized_client",
    "render_torrc",
    "tor_base32",
    "verify_torrc",
]

AUTHORIZED_CLIENTS_DIR = "authorized_clients"
AUTH_SUFFIX = ".auth"
AUTH_LINE_PREFIX = "descriptor:x25519:"
X25519_KEY_BYTES = 32
# Client names become file names; tor reads every "*.auth" in the directory,
# so no dots (no "..", no second suffix) and nothing a shell would mangle.
CLIENT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Paths go into the torrc unquoted: anything that could end the value or start
# a new option (space, newline, quote, '#', '\\') is refused rather than escaped.
TORRC_SAFE_PATH = re.compile(r"/[A-Za-z0-9._/@+-]*")
BASE32_KEY = re.compile(r"[A-Z2-7]{52}")
# Debian's tor units read these before the torrc (tor@default; tor@<instance>
# after replacing @@NAME@@); verify with them to check what the unit will run.
DEBIAN_DEFAULTS_TORRC = Path("/usr/share/tor/tor-service-defaults-torrc")
DEBIAN_INSTANCE_DEFAULTS_TORRC = Path("/usr/share/tor/tor-service-defaults-torrc-instances")


class TorConfigError(Exception):
    """A tor configuration value or file is unusable; the message says which and why."""


def tor_base32(raw: bytes) -> str:
    """RFC 4648 base32 as tor writes keys and addresses: no padding; upper case here.

    tor accepts either case when reading; upper case matches its own key files.
    """
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def _b32decode_key(text: str, what: str) -> bytes:
    text = text.strip().upper()
    if not BASE32_KEY.fullmatch(text):
        # The value is not echoed: it may be a private key.
        raise TorConfigError(f"{what}: expected 52 base32 characters, got {len(text)}")
    # 52 characters carry 260 bits; the padding restores the 56-character block.
    return base64.b32decode(text + "====")


# --- torrc -------------------------------------------------------------------


@dataclass(frozen=True)
class OnionService:
    """Where tor keeps a service's keys, and the loopback port it forwards to."""

    hs_dir: Path
    port: int


@dataclass(frozen=True)
class DebianLayout:
    """Where deploy/install.sh puts things on Debian 12; a prefix moves it all for tests.

    The source interface runs in Debian's tor@default (its AppArmor profile
    only lets tor write under /var/lib/tor); the journalist API in the tor
    instance ``tor@lanternejournalist`` (Debian's tor-instance-create), so it
    can be restarted to revoke a journalist without interrupting sources.
    """

    prefix: Path = Path("/")
    source_port: int = 8080
    journalist_port: int = 8081

    # tor-instance-create accepts [A-Za-z0-9] only.
    journalist_instance: ClassVar[str] = "lanternejournalist"

    def _at(self, path: str) -> Path:
        return self.prefix / path.lstrip("/")

    @property
    def source(self) -> OnionService:
        return OnionService(self._at("/var/lib/tor/lanterne-source"), self.source_port)

    @property
    def journalist(self) -> OnionService:
        home = f"/var/lib/tor-instances/{self.journalist_instance}"
        return OnionService(self._at(f"{home}/journalist-api"), self.journalist_port)

    @property
    def source_torrc(self) -> Path:
        return self._at("/etc/tor/torrc")

    @property
    def journalist_torrc(self) -> Path:
        return self._at(f"/etc/tor/instances/{self.journalist_instance}/torrc")

    @property
    def journalist_unit(self) -> str:
        """What to restart after removing a journalist's client key."""
        return f"tor@{self.journalist_instance}.service"


def _torrc_path(path: Path, what: str) -> str:
    text = str(path)
    if not TORRC_SAFE_PATH.fullmatch(text):
        raise TorConfigError(
            f"{what} {text!r} must be an absolute path of letters, digits and ._/@+-"
        )
    return text


def _port(port: int, what: str) -> str:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise TorConfigError(f"{what} must be a TCP port between 1 and 65535, got {port!r}")
    return str(port)


def render_torrc(template: str, service: OnionService) -> str:
    """The torrc text: ``template`` with ``$hs_dir`` and ``$port`` filled in.

    Values are validated, not escaped: a path that tor would split, or that
    could smuggle in another option, is refused.
    """
    values = {
        "hs_dir": _torrc_path(service.hs_dir, "HiddenServiceDir"),
        "port": _port(service.port, "port"),
    }
    try:
        return string.Template(template).substitute(values)
    except KeyError as exc:
        raise TorConfigError(f"torrc template uses an unknown variable ${exc.args[0]}") from exc
    except ValueError as exc:
        raise TorConfigError(f"torrc template: {exc}") from exc


def verify_torrc(torrc: Path, *, tor: str = "tor", defaults_torrc: Path | None = None) -> None:
    """Run ``tor --verify-config`` on ``torrc``; raise with tor's complaints if it fails.

    ``defaults_torrc``: Debian's units pass /usr/share/tor/tor-service-defaults-torrc
    (tor@default); verifying with it checks the file as the unit will read it.
    """
    argv = [tor, "--verify-config", "-f", str(torrc)]
    if defaults_torrc is not None:
        argv[1:1] = ["--defaults-torrc", str(defaults_torrc)]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError as exc:
        raise TorConfigError(f"{tor} is not installed (apt-get install tor)") from exc
    if result.returncode != 0:
        complaints = [
            line.split("] ", 1)[-1]
            for line in (result.stdout + result.stderr).splitlines()
            if "[warn]" in line or "[err]" in line
        ]
        raise TorConfigError(
            f"{torrc} does not verify: " + ("; ".join(complaints) or "tor exited non-zero")
        )


# --- onion addresses ---------------------------------------------------------


def check_onion_address(address: str) -> str:
    """``address`` as ``<56 characters>.onion`` if it is a valid v3 onion address
    (``server.onion_address``); ``TorConfigError`` if not."""
    try:
        return onion_address.check_onion_address(address)
    except onion_address.OnionAddressError as exc:
        raise TorConfigError(str(exc)) from None


def read_onion_hostname(hs_dir: Path) -> str:
    """The v3 address tor generated for the service in ``hs_dir`` (its ``hostname`` file)."""
    path = hs_dir / "hostname"
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError as exc:
        raise TorConfigError(
            f"{path} does not exist yet: has tor started with this torrc?"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TorConfigError(f"cannot read {path}: {exc}") from exc
    return check_onion_address(text)


# --- client authorisation ----------------------------------------------------


@dataclass(frozen=True)
class ClientAuthKey:
    """One client's x25519 keypair for onion client authorisation."""

    private_key: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        for name in ("private_key", "public_key"):
            if len(getattr(self, name)) != X25519_KEY_BYTES:
                raise TorConfigError(f"{name} must be {X25519_KEY_BYTES} bytes")
        derived = bytes(nacl.public.PrivateKey(self.private_key).public_key)
        if derived != self.public_key:
            raise TorConfigError("public_key does not belong to private_key")

    def __repr__(self) -> str:  # never print the private half by accident
        return f"ClientAuthKey(public_key={tor_base32(self.public_key)})"

    @classmethod
    def generate(cls) -> ClientAuthKey:
        # PyNaCl keeps the 32 random bytes unclamped, as tor stores them; both
        # clamp when they multiply, so the pair means the same to each.
        sk = nacl.public.PrivateKey.generate()
        return cls(private_key=bytes(sk), public_key=bytes(sk.public_key))

    @classmethod
    def from_private_line(cls, line: str) -> tuple[str, ClientAuthKey]:
        """Parse a client's ``<onion>:descriptor:x25519:<key>`` line: (address, key)."""
        onion, sep, rest = line.strip().partition(":")
        if not sep or not rest.startswith(AUTH_LINE_PREFIX):
            raise TorConfigError("expected <onion address>:descriptor:x25519:<base32 key>")
        sk = _b32decode_key(rest.removeprefix(AUTH_LINE_PREFIX), "private key")
        pk = bytes(nacl.public.PrivateKey(sk).public_key)
        return check_onion_address(onion), cls(private_key=sk, public_key=pk)

    def service_line(self) -> str:
        """Content of the service's ``authorized_clients/<name>.auth``."""
        return AUTH_LINE_PREFIX + tor_base32(self.public_key) + "\n"

    def client_line(self, onion_address: str) -> str:
        """Content of the client's ``<name>.auth_private`` (Tor Browser asks for
        the key part only; a tor daemon reads this file from ClientOnionAuthDir).
        """
        label = check_onion_address(onion_address).removesuffix(".onion")
        return f"{label}:{AUTH_LINE_PREFIX}{tor_base32(self.private_key)}\n"


def parse_service_line(text: str) -> bytes:
    """The public key of an ``authorized_clients/*.auth`` file's content."""
    line = text.strip()
    if not line.startswith(AUTH_LINE_PREFIX):
        raise TorConfigError(f"expected {AUTH_LINE_PREFIX}<base32 key>, got {line[:40]!r}")
    return _b32decode_key(line.removeprefix(AUTH_LINE_PREFIX), "public key")


def _client_name(name: str) -> str:
    if not CLIENT_NAME.fullmatch(name):
        raise TorConfigError(
            f"client name {name!r}: use 1 to 64 letters, digits, '-' or '_' (it names a file)"
        )
    return name


def _auth_dir(hs_dir: Path) -> Path:
    return hs_dir / AUTHORIZED_CLIENTS_DIR


def add_authorized_client(hs_dir: Path, name: str, public_key: bytes) -> Path:
    """Write ``hs_dir/authorized_clients/<name>.auth``; refuse to overwrite an existing one.

    The directory is created 0700 if missing. The file is written 0600 and
    atomically, and when run as root it gets the owner of ``hs_dir``: tor
    (debian-tor) must be able to read what the admin wrote with sudo.
    """
    path = _auth_dir(hs_dir) / (_client_name(name) + AUTH_SUFFIX)
    if len(public_key) != X25519_KEY_BYTES:
        raise TorConfigError(f"public key must be {X25519_KEY_BYTES} bytes")
    try:
        owner = hs_dir.stat()
    except FileNotFoundError as exc:
        raise TorConfigError(f"{hs_dir} does not exist: has tor created the service?") from exc
    auth_dir = path.parent
    if not auth_dir.exists():
        auth_dir.mkdir(mode=0o700)
        _chown_like(auth_dir, owner)
    if path.exists():
        raise TorConfigError(f"{path} exists: remove the client first to replace its key")
    fd, tmp = tempfile.mkstemp(dir=auth_dir, prefix=".", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(AUTH_LINE_PREFIX + tor_base32(public_key) + "\n")
        _chown_like(Path(tmp), owner)
        # link() fails if the name appeared meanwhile, unlike rename().
        os.link(tmp, path)
    except FileExistsError as exc:
        raise TorConfigError(f"{path} exists: remove the client first to replace its key") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _chown_like(path: Path, owner: os.stat_result) -> None:
    if os.geteuid() == 0:
        os.chown(path, owner.st_uid, owner.st_gid)


def remove_authorized_client(hs_dir: Path, name: str) -> bool:
    """Delete ``<name>.auth``; True if it existed. RESTART that tor afterwards.

    A reload (SIGHUP) publishes a descriptor without the key but keeps the
    introduction points and open rendezvous circuits: a removed client that
    holds the old descriptor still gets in (measured: for as long as we
    watched, over a minute). A restart makes new introduction points, so the
    old descriptor leads nowhere and the new one cannot be decrypted.
    """
    path = _auth_dir(hs_dir) / (_client_name(name) + AUTH_SUFFIX)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def authorized_clients(hs_dir: Path) -> dict[str, bytes]:
    """Name -> public key for every ``*.auth`` file tor would read from ``hs_dir``.

    Raises on a file tor would reject, naming it, so ``check`` can report it.
    """
    auth_dir = _auth_dir(hs_dir)
    if not auth_dir.is_dir():
        return {}
    clients = {}
    for path in sorted(auth_dir.iterdir()):
        if path.suffix != AUTH_SUFFIX or not path.is_file():
            continue
        try:
            clients[path.stem] = parse_service_line(path.read_text(encoding="ascii"))
        except (OSError, UnicodeDecodeError, binascii.Error) as exc:
            raise TorConfigError(f"{path}: {exc}") from exc
        except TorConfigError as exc:
            raise TorConfigError(f"{path}: {exc}") from exc
    return clients


def new_client(hs_dir: Path, name: str, private_out: Path) -> ClientAuthKey:
    """Authorise a new client of the service in ``hs_dir`` with a fresh key.

    Writes the client's ``.auth_private`` line to ``private_out`` (a new file,
    0600) first, so a failure never leaves an authorisation nobody holds.
    """
    key = ClientAuthKey.generate()
    line = key.client_line(read_onion_hostname(hs_dir))
    _client_name(name)
    if (_auth_dir(hs_dir) / (name + AUTH_SUFFIX)).exists():
        raise TorConfigError(f"client {name!r} is already authorised for {hs_dir}")
    try:
        fd = os.open(private_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise TorConfigError(f"cannot create {private_out}: {exc.strerror}") from exc
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(line)
    try:
        add_authorized_client(hs_dir, name, key.public_key)
    except BaseException:
        private_out.unlink(missing_ok=True)
        raise
    return key


# --- command line (used by deploy/install.sh) --------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.ops.tor_config", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    render = sub.add_parser("render", help="print the torrc rendered from a template")
    render.add_argument("--template", type=Path, required=True)
    render.add_argument("--hs-dir", type=Path, required=True)
    render.add_argument("--port", type=int, required=True)

    hostname = sub.add_parser("hostname", help="print a service's checked onion address")
    hostname.add_argument("hs_dir", type=Path)

    # Interim, until `lanterne-server journalists add` writes these itself.
    client = sub.add_parser(
        "client-auth", help="authorise a new client: write its .auth and its .auth_private"
    )
    client.add_argument("name")
    client.add_argument("--hs-dir", type=Path, required=True, help="the journalist service's")
    client.add_argument(
        "--private-out", type=Path, required=True, help="new file for <name>.auth_private"
    )

    args = parser.parse_args(argv)
    try:
        if args.command == "render":
            service = OnionService(args.hs_dir, args.port)
            sys.stdout.write(render_torrc(args.template.read_text(encoding="utf-8"), service))
        elif args.command == "hostname":
            print(read_onion_hostname(args.hs_dir))
        else:
            new_client(args.hs_dir, args.name, args.private_out)
            print(f"wrote {args.private_out}; now reload the journalist tor instance")
    except (TorConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
