"""Vaults filled with real envelopes, as a pull from a real server would leave them.

The manifest is built exactly as the server's no-JS path writes it
(server/web/routes/submit.py), and encrypted to real journalist identities.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import envelope
from journalist_cli.identity_store import JournalistIdentity
from journalist_cli.records import (
    ItemInfo,
    ObjectInfo,
    SourceDetail,
    SourceInfo,
    SubmissionInfo,
)
from journalist_cli.vault import Vault


def new_id() -> str:
    return secrets.token_hex(16)


@dataclass
class Built:
    """A source as stored on the server: its detail and each object's bytes."""

    detail: SourceDetail
    blobs: dict[str, bytes] = field(default_factory=dict)
    reply_identity: envelope.Identity | None = None

    @property
    def id(self) -> str:
        return self.detail.source.id


def build_source(
    recipients: list[envelope.Recipient],
    submissions: list[tuple[str, list[tuple[str, bytes, str]]]],
    *,
    answers: list[dict[str, str]] | None = None,
    day: str = "2026-11-20",
    source_id: str | None = None,
    manifest_override: dict[str, object] | None = None,
) -> Built:
    """``submissions``: (message, [(name, content, type)]) for each submission."""
    reply = envelope.X25519Identity.generate()
    built = Built(SourceDetail(_info(source_id or new_id(), reply, 0, 0)), reply_identity=reply)
    subs = []
    for message, files in submissions:
        objects = []
        manifest: dict[str, object] = {
            "type": "lanterne-manifest/v1",
            "received_on": day,
            "language": "en",
            "follow_up": bool(subs),
            "message": None,
            "files": [],
            "answers": answers or [],
        }
        if message:
            oid = new_id()
            built.blobs[oid] = envelope.encrypt_bytes(message.encode(), recipients)
            manifest["message"] = {"object": oid, "size": len(message.encode())}
            objects.append(ObjectInfo(oid, "message", len(built.blobs[oid])))
        for name, content, ctype in files:
            oid = new_id()
            built.blobs[oid] = envelope.encrypt_bytes(content, recipients)
            manifest["files"].append(  # type: ignore[attr-defined]
                {"object": oid, "name": name, "type": ctype, "size": len(content)}
            )
            objects.append(ObjectInfo(oid, "file", len(built.blobs[oid])))
        manifest.update(manifest_override or {})
        mid = new_id()
        built.blobs[mid] = envelope.encrypt_bytes(json.dumps(manifest).encode(), recipients)
        objects.insert(0, ObjectInfo(mid, "manifest", len(built.blobs[mid])))
        subs.append(SubmissionInfo(new_id(), day, tuple(objects)))
    size = sum(len(b) for b in built.blobs.values())
    built.detail = SourceDetail(_info(built.id, reply, len(subs), size, day), tuple(subs), (), ())
    return built


def add_items(
    built: Built, kind: str, texts: list[tuple[str, str]], recipients: list[envelope.Recipient]
) -> None:
    """Replies or notes (author, text), stored like the API would."""
    items = []
    for author, text in texts:
        oid = new_id()
        built.blobs[oid] = envelope.encrypt_bytes(text.encode(), recipients)
        size = len(built.blobs[oid])
        items.append(ItemInfo(new_id(), oid, built.detail.source.last_activity, author, size))
    d = built.detail
    s = d.source
    if kind == "reply":
        info = _replace(s, replies=s.replies + len(items))
        built.detail = SourceDetail(info, d.submissions, d.replies + tuple(items), d.notes)
    else:
        info = _replace(s, notes=s.notes + len(items))
        built.detail = SourceDetail(info, d.submissions, d.replies, d.notes + tuple(items))


def _replace(s: SourceInfo, **changes: object) -> SourceInfo:
    from dataclasses import replace

    return replace(s, **changes)  # type: ignore[arg-type]


def _info(
    sid: str, reply: envelope.Identity, subs: int, size: int, day: str = "2026-11-20"
) -> SourceInfo:
    return SourceInfo(
        id=sid,
        reply_key=reply.recipient.to_text(),
        last_activity=day,
        submissions=subs,
        size=size,
        seen=False,
        starred=False,
        tags=(),
        assignee=None,
        notes=0,
        replies=0,
    )


def store(vault: Vault, built: Built, *, objects: bool = True) -> None:
    """What a pull does: the detail into the index, the objects into the vault."""
    vault.store_detail(built.detail)
    if objects:
        for oid, blob in built.blobs.items():
            vault.write_object(oid, blob)


def journalist(name: str = "alice") -> JournalistIdentity:
    return JournalistIdentity.generate(name)


def write_identity(ident: JournalistIdentity, directory: Path) -> Path:
    from journalist_cli.identity_store import write_new_identity

    secret, _public = write_new_identity(ident, directory, None)
    return secret
