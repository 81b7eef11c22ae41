"""Moving a source to another desk (docs/DESKS.md, "Moving a source"): every
envelope of the source is opened here and sealed again to the new desk's
recipients, chunk by chunk, ciphertext to ciphertext. The plaintext exists only
in this process's memory, one chunk at a time; the server receives the new
envelopes and never sees it. Nothing on the server changes until every new
envelope is uploaded: the move itself is one request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import BinaryIO

import envelope

READ_SIZE = 1 << 20


def reencrypt(
    src: BinaryIO,
    dst: BinaryIO,
    identities: Sequence[envelope.Identity],
    recipients: Sequence[envelope.Recipient],
) -> None:
    """Open the envelope ``src`` with ``identities`` and write it to ``dst`` sealed to
    ``recipients``. ``envelope.NoMatchingKeyError`` if none of the identities opens
    it; any authentication failure raises before ``dst`` is complete (the caller
    throws ``dst`` away: a truncated or altered envelope is never moved)."""
    opened = envelope.Decryptor(identities)
    sealed = envelope.Encryptor(recipients)
    dst.write(sealed.header)
    while data := src.read(READ_SIZE):
        for plain in opened.update(data):
            dst.write(sealed.update(plain))
    for plain in opened.finish():
        dst.write(sealed.update(plain))
    for piece in sealed.finish():
        dst.write(piece)


class ManifestRefused(ValueError):
    """A manifest this move cannot rewrite (not JSON, or naming an unknown object)."""


def rewrite_manifest(plain: bytes, new_ids: Mapping[str, str]) -> bytes:
    """The manifest with the ids of the objects it names (its message and files)
    replaced by their ids after the move; everything else exactly as it was."""
    try:
        doc = json.loads(plain)
    except (ValueError, UnicodeDecodeError):
        raise ManifestRefused("the manifest is not JSON") from None
    if not isinstance(doc, dict):
        raise ManifestRefused("the manifest is not a JSON object")
    named = [doc["message"]] if isinstance(doc.get("message"), dict) else []
    files = doc.get("files")
    named += [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []
    for entry in named:
        old = entry.get("object")
        if not isinstance(old, str) or old not in new_ids:
            raise ManifestRefused("the manifest names an object that is not in its submission")
        entry["object"] = new_ids[old]
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")
