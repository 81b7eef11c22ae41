"""Sources: codename -> Argon2id -> a login id (stored hashed) and a reply key (DESIGN §5).

``Argon2id(codename, instance salt)`` gives 64 bytes: the first 32 are the
login id, the last 32 the X25519 private reply key. The database keeps
``HMAC-SHA256(instance key, login id)`` and the reply key's public half; the
private half is derived again at each login, used to read replies in memory,
and dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from base64 import b64decode, b64encode
from dataclasses import dataclass

import nacl.pwhash

import envelope
from server import languages
from server.domain import codenames
from server.domain.source_lifecycle import ItemKind, SourceLifecycle
from server.store.protocols import ObjectStore, SourceRow, SourceStore, new_id

_LOGIN_HASH_LABEL = b"lanterne source login v1\x00"


@dataclass(frozen=True)
class InstanceSecrets:
    argon2_salt: bytes  # 16 bytes
    login_key: bytes  # 32 bytes, keys the stored login hashes

    @classmethod
    def generate(cls) -> InstanceSecrets:
        return cls(os.urandom(nacl.pwhash.argon2id.SALTBYTES), os.urandom(32))

    def to_json(self) -> str:
        return json.dumps(
            {
                "type": "lanterne-instance-secrets/v1",
                "argon2_salt": b64encode(self.argon2_salt).decode(),
                "login_key": b64encode(self.login_key).decode(),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, raw: bytes, where: str = "instance secrets") -> InstanceSecrets:
        """Read what ``to_json`` wrote (the store reads the file: ``Stores.instance_secrets``)."""
        doc = json.loads(raw)
        secrets = cls(b64decode(doc["argon2_salt"]), b64decode(doc["login_key"]))
        if (
            len(secrets.argon2_salt) != nacl.pwhash.argon2id.SALTBYTES
            or len(secrets.login_key) != 32
        ):
            raise ValueError(f"{where}: wrong secret sizes")
        return secrets


@dataclass(frozen=True)
class SourceKeys:
    login_hash: bytes
    reply_identity: envelope.X25519Identity


class KeyDeriver:
    """Argon2id with bounded parallelism: each run holds ``memlimit`` bytes."""

    def __init__(
        self, secrets: InstanceSecrets, opslimit: int, memlimit: int, parallel: int
    ) -> None:
        self._secrets = secrets
        self._opslimit = opslimit
        self._memlimit = memlimit
        self._slots = threading.BoundedSemaphore(parallel)

    def derive(self, canonical_codename: str) -> SourceKeys:
        with self._slots:
            out = nacl.pwhash.argon2id.kdf(
                64,
                canonical_codename.encode("utf-8"),
                self._secrets.argon2_salt,
                opslimit=self._opslimit,
                memlimit=self._memlimit,
            )
        login_id, reply_seed = out[:32], out[32:]
        login_hash = hmac.new(
            self._secrets.login_key, _LOGIN_HASH_LABEL + login_id, hashlib.sha256
        ).digest()
        return SourceKeys(login_hash, envelope.X25519Identity(reply_seed))


@dataclass(frozen=True)
class Reply:
    id: str
    sent_on: str
    text: str


class SourceService:
    """Codenames and what they unlock; the source's lifecycle itself (create,
    follow-up, deletion) is ``self.lifecycle`` (server/domain/source_lifecycle.py)."""

    def __init__(
        self, rows: SourceStore, store: ObjectStore, deriver: KeyDeriver, lifecycle: SourceLifecycle
    ) -> None:
        self.rows = rows
        self.store = store
        self.deriver = deriver
        self.lifecycle = lifecycle

    def new_codename(self, language: str) -> tuple[str, SourceRow]:
        """A fresh codename and the row to insert for it (with the submission)."""
        entry = languages.BY_CODE.get(language, languages.FALLBACK)
        codename = codenames.generate(entry.wordlist)
        keys = self.deriver.derive(codenames.parse(codename))
        row = SourceRow(new_id(), keys.login_hash, keys.reply_identity.recipient.public_bytes)
        return codename, row

    def login(self, typed: str) -> tuple[SourceRow, envelope.X25519Identity] | None:
        """The source and its reply identity, or None. CodenameError for a typo."""
        canonical = codenames.parse(typed)
        keys = self.deriver.derive(canonical)
        row = self.rows.find_source(keys.login_hash)
        # The lookup is by an HMAC of a 256-bit secret; the comparison below is
        # constant-time anyway so no timing depends on how much of it matched.
        if row is None or not hmac.compare_digest(row.login_hash, keys.login_hash):
            return None
        return row, keys.reply_identity

    def read_replies(self, source_id: str, identity: envelope.Identity) -> list[Reply]:
        replies = []
        for r in self.rows.replies(source_id):
            try:
                text = envelope.decrypt_bytes(self.store.read_bytes(r.object_id), [identity])
                replies.append(Reply(r.id, r.sent_on, text.decode("utf-8", errors="replace")))
            except (OSError, envelope.EnvelopeError):
                # A damaged reply is skipped, not a reason to lock the source out.
                continue
        return replies


def store_reply(
    lifecycle: SourceLifecycle,
    source_id: str,
    text: str,
    reply_key: bytes,
    journalist_keys: list[envelope.Recipient],
    day: str,
    journalist_id: int | None = None,
) -> str:
    """Encrypt a reply to the source (and the journalists, to read their own) and store it.

    Not the journalist API's path: there a reply arrives already encrypted by
    the journalist's machine (``lanterne reply``) and is stored as sent. This
    encrypts on the server, for tests that need a reply without the CLI.
    """
    recipients = [envelope.X25519Recipient(reply_key), *journalist_keys]
    body = envelope.encrypt_bytes(text.encode("utf-8"), recipients)
    reply_id, _ = lifecycle.add_item(ItemKind.REPLY, source_id, body, journalist_id, day)
    return reply_id
