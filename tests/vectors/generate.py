"""Generate the envelope test vectors in this directory (SPEC.md §10, README.md).

    python tests/vectors/generate.py

Every vector is built from fixed keys and fixed randomness, so running this
again reproduces the same files byte for byte; the test suite checks that.
Never edit the JSON files by hand.

One exception, by necessity: ``cryptography`` cannot encapsulate X-Wing with
chosen randomness, so a hybrid (0x0002) stanza body is made once and then
*recorded*: the generator reuses the body already committed in this
directory (``writer.xwing_stanzas``) and makes a fresh one only for a new
vector. Everything around it (file key, salt, header MAC, payload, the broken
variants) is derived as for the other vectors. The files in ``xwing/`` are
written by the browser code's builder (``xwing/generate.mjs``, deterministic
encapsulation), not by this script.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from envelope import _header, _stream  # noqa: E402
from envelope._primitives import LABEL_STANZA_X25519  # noqa: E402
from envelope.recipients import (  # noqa: E402
    STANZA_X25519_HPKE,
    STANZA_XWING_HPKE,
    HybridIdentity,
    stanza_info,
)
from envelope.recipients import X25519Identity as Identity  # noqa: E402
from tests import hpke_reference  # noqa: E402

INLINE_PLAINTEXT_MAX = 4096


def fixed(label: str, n: int = 32) -> bytes:
    """Deterministic 'random' bytes: SHA-256 of a label, extended if needed."""
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"lanterne test vector {label} {counter}".encode()).digest()
        counter += 1
    return out[:n]


def pattern(n: int) -> bytes:
    """The plaintext used by long vectors: byte i is i mod 251."""
    return bytes(i % 251 for i in range(n))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Build:
    """Everything needed to write one envelope deterministically, and to break it."""

    name: str
    plaintext: bytes
    n_recipients: int = 1
    my_index: int = 0
    extra_stanzas: list[_header.Stanza] = field(default_factory=list)
    padded: bytes | None = None  # override the padded plaintext (bad padding vectors)
    flags: Callable[[int, int], int] | None = None  # (index, count) -> nonce flag
    n_xwing: int = 0  # hybrid recipients, after the X25519 ones; opened with the first
    _xwing_bodies: list[bytes] | None = None

    def identities(self) -> list[Identity]:
        return [Identity(fixed(f"identity {i}")) for i in range(self.n_recipients)]

    def xwing_identities(self) -> list[HybridIdentity]:
        return [HybridIdentity(fixed(f"xwing identity {i}")) for i in range(self.n_xwing)]

    def xwing_stanzas(self, prefix: bytes) -> list[bytes]:
        """Recorded bodies (see the module docstring), or fresh ones for a new vector."""
        if self._xwing_bodies is None:
            self._xwing_bodies = self._recorded(prefix) or [
                i.recipient.wrap(self.file_key(), prefix).body for i in self.xwing_identities()
            ]
        return self._xwing_bodies

    def _recorded(self, prefix: bytes) -> list[bytes] | None:
        for path in sorted(HERE.glob("*.json")):
            rec = json.loads(path.read_text()).get("recorded_xwing_stanzas")
            if not rec or rec["build"] != self.name:
                continue
            bodies = [base64.b64decode(b) for b in rec["bodies"]]
            if len(bodies) == self.n_xwing and all(
                i.unwrap(_header.Stanza(STANZA_XWING_HPKE, b), prefix) == self.file_key()
                for i, b in zip(self.xwing_identities(), bodies, strict=True)
            ):
                return bodies
        return None

    def file_key(self) -> bytes:
        return fixed(f"{self.name} file key")

    def salt(self) -> bytes:
        return fixed(f"{self.name} salt", 16)

    def ephemeral(self, i: int) -> bytes:
        return fixed(f"{self.name} ephemeral {i}")

    def header(self) -> bytes:
        ids = self.identities()
        count = len(ids) + len(self.extra_stanzas) + self.n_xwing
        prefix = _header.encode_prefix(self.salt(), count)
        info = stanza_info(LABEL_STANZA_X25519, prefix, STANZA_X25519_HPKE)
        stanzas = list(self.extra_stanzas)
        for i, ident in enumerate(ids):
            body = hpke_reference.seal(
                ident.recipient.public_bytes, info, self.file_key(), self.ephemeral(i)
            )
            stanzas.append(_header.Stanza(STANZA_X25519_HPKE, body))
        stanzas += [_header.Stanza(STANZA_XWING_HPKE, b) for b in self.xwing_stanzas(prefix)]
        return _header.assemble_header(
            self.file_key(), prefix, b"".join(s.encode() for s in stanzas)
        )

    def payload(self) -> bytes:
        padded = self.padded
        if padded is None:
            size = _stream.padded_size(len(self.plaintext) + 1)
            padded = self.plaintext + b"\x80" + bytes(size - len(self.plaintext) - 1)
        aead = AESGCM(_header.payload_key(self.file_key(), self.salt()))
        chunks = [
            padded[i : i + _stream.CHUNK_SIZE] for i in range(0, len(padded), _stream.CHUNK_SIZE)
        ]
        out = []
        for i, chunk in enumerate(chunks):
            flag = self.flags(i, len(chunks)) if self.flags else int(i == len(chunks) - 1)
            out.append(aead.encrypt(i.to_bytes(11, "big") + bytes([flag]), chunk, None))
        return b"".join(out)

    def envelope(self) -> bytes:
        return self.header() + self.payload()


def flip(data: bytes, pos: int) -> bytes:
    return data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :]


def vectors() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []

    def add(
        name: str,
        expect: str,
        description: str,
        build: Build,
        env: bytes | None = None,
        identity: bytes | None = None,
    ) -> None:
        ok = expect == "ok"
        if identity is None:
            identity = (
                build.xwing_identities()[0].private_bytes()
                if build.n_xwing
                else build.identities()[build.my_index].private_bytes()
            )
        v: dict[str, object] = {
            "name": name,
            "description": description,
            "expect": expect,
            "identity": b64(identity),
            "envelope": b64(env if env is not None else build.envelope()),
        }
        if build.n_xwing:
            v["identity_type"] = "xwing"
            v["recorded_xwing_stanzas"] = {
                "build": build.name,
                "bodies": [b64(b) for b in build._xwing_bodies or []],
            }
        if ok:
            v["plaintext_sha256"] = hashlib.sha256(build.plaintext).hexdigest()
            v["plaintext_length"] = len(build.plaintext)
            if len(build.plaintext) <= INLINE_PLAINTEXT_MAX:
                v["plaintext"] = b64(build.plaintext)
            else:
                v["plaintext_pattern"] = "byte i is i mod 251"
            # What an independent writer needs to reproduce the envelope byte for byte.
            v["writer"] = {
                "file_key": b64(build.file_key()),
                "salt": b64(build.salt()),
                # In stanza order; a 1216-byte key is X-Wing. Its stanza cannot be
                # re-made from Python (no ephemeral: null), see recorded_xwing_stanzas.
                "recipients": [b64(i.recipient.public_bytes) for i in build.identities()]
                + [b64(i.recipient.public_bytes) for i in build.xwing_identities()],
                "ephemeral_keys": [b64(build.ephemeral(i)) for i in range(build.n_recipients)]
                + [None] * build.n_xwing,
                "extra_stanzas": [
                    {"type": s.type, "body": b64(s.body)} for s in build.extra_stanzas
                ],
            }
        out.append(v)

    # --- ok -------------------------------------------------------------------
    add(
        "ok_empty", "ok", "empty plaintext: one chunk of marker and padding", Build("ok_empty", b"")
    )
    add("ok_hello", "ok", "short text", Build("ok_hello", b"Bonjour, voici les documents.\n"))
    add(
        "ok_padding_lookalike",
        "ok",
        "plaintext ending in 0x80 0x00 0x00: must come back whole",
        Build("ok_padding_lookalike", b"abc\x80\x00\x00"),
    )
    for n in (4095, 4096, 65535, 65536, 65537, 200_000):
        add(f"ok_len_{n}", "ok", f"{n} bytes of pattern", Build(f"ok_len_{n}", pattern(n)))
    add(
        "ok_three_recipients",
        "ok",
        "three recipients, opened with the second",
        Build("ok_three_recipients", b"to three journalists", n_recipients=3, my_index=1),
    )
    add(
        "ok_unknown_stanza",
        "ok",
        "an unknown stanza type before ours is skipped",
        Build(
            "ok_unknown_stanza",
            b"future-proof",
            extra_stanzas=[_header.Stanza(0x7A7A, b"some future recipient type")],
        ),
    )

    # --- header failures ----------------------------------------------------
    base = Build("header_base", b"header tests")
    env = base.envelope()
    add("header_bad_magic", "header failure", "magic is not LANTERNE", base, b"LANTERNF" + env[8:])
    add(
        "header_version_2",
        "header failure",
        "version 2 is not readable",
        base,
        env[:8] + b"\x02" + env[9:],
    )
    zero = env[:25] + b"\x00\x00" + env[27:]
    add("header_zero_stanzas", "header failure", "n = 0", base, zero)
    add(
        "header_stanza_length",
        "header failure",
        "X25519 stanza with length 79",
        base,
        env[:29] + struct.pack(">H", 79) + env[31:],
    )
    big = Build(
        "header_oversized",
        b"x",
        extra_stanzas=[_header.Stanza(0x7A7A, bytes(60000)), _header.Stanza(0x7A7A, bytes(6000))],
    )
    add("header_oversized", "header failure", "header over 65536 bytes", big)
    add("header_empty_input", "header failure", "no bytes at all", base, b"")

    # --- mac failures ---------------------------------------------------------
    hdr_len = len(base.header())
    add(
        "mac_flipped",
        "mac failure",
        "last byte of the header MAC flipped",
        base,
        flip(env, hdr_len - 1),
    )
    odd = Build("mac_unknown", b"x", extra_stanzas=[_header.Stanza(0x7A7A, b"abcdef")])
    odd_env = odd.envelope()
    add(
        "mac_unknown_stanza_altered",
        "mac failure",
        "a skipped stanza was altered",
        odd,
        flip(odd_env, 27 + 4),
    )

    # --- no match -------------------------------------------------------------
    add(
        "no_match_other_key",
        "no match",
        "encrypted to someone else",
        base,
        env,
        identity=fixed("a stranger"),
    )
    add(
        "no_match_stanza_altered",
        "no match",
        "the only stanza's ciphertext altered",
        base,
        flip(env, 27 + 4 + 40),
    )
    add(
        "no_match_salt_altered",
        "no match",
        "salt altered: the stanza info no longer matches",
        base,
        flip(env, 10),
    )

    # --- payload failures -----------------------------------------------------
    long = Build("payload_base", pattern(140_000))
    lenv = long.envelope()
    lhdr = len(long.header())
    sealed = _stream.SEALED_CHUNK_SIZE
    add(
        "payload_flipped_chunk0",
        "payload failure",
        "a bit flipped in chunk 0",
        long,
        flip(lenv, lhdr + 100),
    )
    add(
        "payload_flipped_tag",
        "payload failure",
        "a bit flipped in the last tag",
        long,
        flip(lenv, len(lenv) - 1),
    )
    swapped = (
        lenv[:lhdr]
        + lenv[lhdr + sealed : lhdr + 2 * sealed]
        + lenv[lhdr : lhdr + sealed]
        + lenv[lhdr + 2 * sealed :]
    )
    add("payload_swapped_chunks", "payload failure", "chunks 0 and 1 swapped", long, swapped)
    add(
        "payload_trailing_byte",
        "payload failure",
        "one byte after the last chunk",
        long,
        lenv + b"\x00",
    )
    add(
        "payload_trailing_chunk",
        "payload failure",
        "a copy of the last chunk appended",
        long,
        lenv + lenv[-100:],
    )
    add(
        "payload_no_final_flag",
        "payload failure",
        "every chunk sealed with flag 0x00",
        Build("payload_no_final_flag", pattern(70_000), flags=lambda i, n: 0),
    )
    add(
        "payload_early_final_flag",
        "payload failure",
        "chunk 0 of 2 sealed with flag 0x01",
        Build("payload_early_final_flag", pattern(70_000), flags=lambda i, n: 1),
    )
    add(
        "payload_no_marker",
        "payload failure",
        "padded plaintext without the 0x80 marker",
        Build("payload_no_marker", b"abc", padded=b"abc" + bytes(4093)),
    )
    add(
        "payload_wrong_bucket",
        "payload failure",
        "padding to 4097 bytes instead of 4096",
        Build("payload_wrong_bucket", b"abc", padded=b"abc\x80" + bytes(4093)),
    )
    add(
        "payload_marker_then_data",
        "payload failure",
        "non-zero byte after the last 0x80",
        Build("payload_marker_then_data", b"abc", padded=b"abc\x80" + bytes(4091) + b"\x01"),
    )

    # --- hybrid (0x0002 X-Wing-HPKE) -------------------------------------------------
    add(
        "ok_xwing_hello",
        "ok",
        "one hybrid recipient (X-Wing stanza), opened with its seed",
        Build("ok_xwing_hello", b"Bonjour, post-quantique.\n", n_recipients=0, n_xwing=1),
    )
    add(
        "ok_xwing_after_x25519",
        "ok",
        "an X25519 stanza then a hybrid one, opened with the hybrid seed",
        Build("ok_xwing_after_x25519", pattern(70_000), n_recipients=1, n_xwing=1),
    )
    xb = Build("xwing_base", b"hybrid header tests", n_recipients=0, n_xwing=1)
    xenv = xb.envelope()
    xhdr = len(xb.header())
    for n in (1167, 1169):
        body = (xenv[31 : 31 + 1168] + b"\x00")[:n]
        add(
            f"xwing_stanza_length_{n}",
            "header failure",
            f"hybrid stanza with length {n} (must be 1168)",
            xb,
            xenv[:29] + struct.pack(">H", n) + body + xenv[31 + 1168 :],
        )
    add(
        "xwing_stanza_altered",
        "no match",
        "a byte of the hybrid stanza's ciphertext flipped",
        xb,
        flip(xenv, 31 + 1168 - 1),
    )
    add(
        "xwing_enc_altered",
        "no match",
        "a byte of the hybrid stanza's ML-KEM ciphertext flipped",
        xb,
        flip(xenv, 31 + 10),
    )
    add(
        "xwing_salt_altered",
        "no match",
        "salt altered: the hybrid stanza's info no longer matches",
        xb,
        flip(xenv, 10),
    )
    add(
        "xwing_other_key",
        "no match",
        "a hybrid envelope opened with another hybrid seed",
        xb,
        xenv,
        identity=fixed("a hybrid stranger"),
    )
    add(
        "xwing_mac_flipped",
        "mac failure",
        "hybrid stanza opens, header MAC flipped",
        xb,
        flip(xenv, xhdr - 1),
    )
    add(
        "xwing_as_x25519_type",
        "header failure",
        "a hybrid stanza relabelled as type 0x0001 (length 1168 is not 80)",
        xb,
        xenv[:27] + struct.pack(">H", 1) + xenv[29:],
    )

    # --- truncated ------------------------------------------------------------
    add("header_truncated", "header failure", "cut inside the stanza", base, env[:60])
    add("truncated_after_header", "truncated", "header only, no payload", base, env[:hdr_len])
    add(
        "truncated_at_chunk", "truncated", "cut after chunk 1 of 3", long, lenv[: lhdr + 2 * sealed]
    )
    add("truncated_mid_chunk", "truncated", "cut inside the last chunk", long, lenv[:-10])
    return out


def generated(directory: Path) -> list[Path]:
    """The files of ``directory`` this script owns (not those of ``xwing/``)."""
    return sorted(directory.glob("*.json"))


def write(out_dir: Path) -> int:
    names = set()
    for old in generated(out_dir):
        old.unlink()
    for v in vectors():
        name = str(v["name"])
        assert name not in names, name
        names.add(name)
        (out_dir / f"{name}.json").write_text(json.dumps(v, indent=1, sort_keys=True) + "\n")
    return len(names)


def main() -> None:
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    print(f"wrote {write(out_dir)} vectors to {out_dir}")


if __name__ == "__main__":
    main()
