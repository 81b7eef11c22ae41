"""The journalist keys the server encrypts to, and hands out, come from the
newsroom's signed key directory (envelope/SPEC.md §11, docs/THREAT_MODEL.md).

The admin records the newsroom's public signing key once (``lanterne-server
init --newsroom-key``); from then on every change to the journalist list is a
new directory that the admin signs with the newsroom key, which never stays on
the server. The server keeps the signed document as it is and serves it; the
browser, the no-JS path and the journalist CLI all verify it before using a
key. A directory that no longer verifies (a tampered database) stops the
server from encrypting to anyone rather than to keys nobody signed.

An instance whose admin never recorded a newsroom key (created before this
existed) keeps encrypting to its registered journalists, unsigned; ``check``
says so until the admin signs a first directory.
"""

from __future__ import annotations

import functools
from typing import Protocol

import envelope
from envelope.keys import b64decode, b64encode
from server.store.protocols import DeskRow, JournalistStore

NEWSROOM_KEY_META = "newsroom_key"
DIRECTORY_META = "key_directory"


class DirectoryUnusable(Exception):
    """A newsroom key is recorded but its directory is missing or fails to verify."""


class RecordedValues(Protocol):
    def meta_value(self, key: str) -> str | None: ...


def registered_keys(store: JournalistStore) -> list[envelope.PublicKey]:
    """The journalists as registered (an unsigned instance encrypts to these)."""
    return [row.public_key() for row in store.journalists()]


def keys_to_encrypt_to(store: JournalistStore) -> list[envelope.PublicKey]:
    """The signed directory's keys; the registered ones on an unsigned instance.

    Raises ``DirectoryUnusable`` rather than fall back when a newsroom key is
    recorded: never encrypt to keys the newsroom did not sign."""
    directory = current(store)
    return list(directory.journalists) if directory is not None else registered_keys(store)


def desk_keys(store: JournalistStore, desk: str | None) -> list[envelope.PublicKey]:
    """The keys what is sent to ``desk`` is encrypted to (None: a source of the
    whole newsroom, from before desks): on a signed instance the signed
    directory's recipients of that desk (SPEC §11.1), none for a desk it does
    not name; on an unsigned one, the desk's registered members and the
    all-desk journalists. ``DirectoryUnusable`` as ``keys_to_encrypt_to``."""
    directory = current(store)
    if directory is not None:
        try:
            return list(directory.recipients_for(desk))
        except envelope.DirectoryError:
            return []  # a desk the newsroom did not sign receives nothing
    rows = store.journalists()
    if desk is None:
        return [row.public_key() for row in rows]
    found = next((d for d in store.desks() if d.name == desk), None)
    if found is None:
        return []
    return [row.public_key() for row in rows if row.name in found.members or row.all_desks]


def offered_desks(store: JournalistStore) -> list[DeskRow]:
    """The desks a source can choose now: those with at least one key to encrypt to."""
    return [d for d in store.desks() if desk_keys(store, d.name)]


def newsroom_key(values: RecordedValues) -> bytes | None:
    """The newsroom's public signing key recorded at init, if any."""
    text = values.meta_value(NEWSROOM_KEY_META)
    if text is None:
        return None
    try:
        return b64decode(text, 32, "newsroom key")
    except envelope.KeyFormatError as exc:
        raise DirectoryUnusable(f"the recorded newsroom key is damaged: {exc}") from None


def signed_document(values: RecordedValues) -> str | None:
    """The directory exactly as signed, for serving; None on an unsigned instance."""
    if newsroom_key(values) is None:
        return None
    return values.meta_value(DIRECTORY_META)


def current(values: RecordedValues) -> envelope.KeyDirectory | None:
    """The verified directory; None when no newsroom key is recorded."""
    key = newsroom_key(values)
    if key is None:
        return None
    document = values.meta_value(DIRECTORY_META)
    if document is None:
        raise DirectoryUnusable("a newsroom key is recorded but no signed key directory")
    try:
        return _verified(document, key)
    except envelope.DirectoryError as exc:
        raise DirectoryUnusable(f"the stored key directory does not verify: {exc}") from None


@functools.lru_cache(maxsize=8)
def _verified(document: str, key: bytes) -> envelope.KeyDirectory:
    """Pages read the directory on every request; verifying the same document
    (a signature and up to 1000 key checks) once is enough. Keyed by the exact
    document and key, so any change is verified afresh; failures are not cached."""
    return envelope.verify_directory(document, key)


def encoded_key(key: bytes) -> str:
    return b64encode(key)
