"""Notes and replies: encrypted here, to keys this vault has accepted.

The server lists the journalists' keys (``GET /journalists``), and notes and
replies are encrypted to all of them. A server that slipped in a key of its
own would read every note and reply from then on, so the list is pinned in
the vault: the first list seen is accepted (trust on first use, shown to
the user), and afterwards any new or changed key stops `note` and `reply`
until a person compares its fingerprint and runs `lanterne journalists
--accept`. Keys that disappeared (removed journalists) are simply no longer
encrypted to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import envelope
from envelope.keys import b64decode
from journalist_cli.records import MAX_ITEM_BYTES, JournalistInfo
from journalist_cli.vault import Vault
from journalist_cli.workflow_errors import ServerError, UnverifiedKeys


@dataclass(frozen=True)
class KeyStatus:
    info: JournalistInfo
    public: envelope.PublicKey
    status: str  # "accepted", "new" or "changed"


def check_keys(vault: Vault, journalists: Sequence[JournalistInfo]) -> list[KeyStatus]:
    """Parse the server's list and compare it with the accepted keys."""
    accepted = vault.accepted_keys()
    result = []
    for j in journalists:
        try:
            public = envelope.PublicKey(
                name=j.name,
                x25519=envelope.X25519Recipient.from_text(j.encryption_key),
                signing_key=b64decode(j.signing_key, 32, "signing key"),
                hybrid=None
                if j.hybrid_key is None
                else envelope.HybridRecipient.from_text(j.hybrid_key),
            )
        except envelope.KeyFormatError as exc:
            raise ServerError(f"the server lists a malformed key for {j.name!r}: {exc}") from exc
        if public.fingerprint != j.fingerprint:
            raise ServerError(f"the fingerprint the server gives for {j.name!r} is wrong")
        pinned = accepted.get(j.name)
        # The fingerprint covers every key, the hybrid one included: adding or
        # changing it is a key change like any other.
        if pinned == (j.encryption_key, j.signing_key, j.fingerprint):
            status = "accepted"
        else:
            status = "new" if pinned is None else "changed"
        result.append(KeyStatus(j, public, status))
    return result


def recipients(
    vault: Vault,
    journalists: Sequence[JournalistInfo],
    me: envelope.PublicKey,
    desk: str | None = None,
) -> tuple[list[envelope.Recipient], bool]:
    """Every listed journalist's recipient (the hybrid key if any), once all are
    accepted; of ``desk``'s journalists only (its members and the all-desk ones,
    as this unsigned server lists them) when the source is in a desk.

    Returns the recipients and whether this was the first use (the list was
    accepted just now, trust on first use).
    """
    keys = check_keys(vault, journalists)
    if all(k.public != me for k in keys):
        raise ServerError("the server's journalist list does not contain your own key")
    first_use = not vault.accepted_keys()
    if first_use:
        vault.accept_keys(journalists)
    else:
        unverified = [k for k in keys if k.status != "accepted"]
        if unverified:
            listing = "; ".join(
                f"{k.info.name} ({k.status}) {k.public.fingerprint}" for k in unverified
            )
            raise UnverifiedKeys(
                f"the server lists keys you have not accepted: {listing}. Compare the "
                "fingerprints with those journalists (aloud, not through this server), "
                "then run `lanterne journalists --accept`."
            )
    if desk is not None:
        keys = [k for k in keys if desk in k.info.desks or k.info.all_desks]
        if all(k.public != me for k in keys):
            raise ServerError(f"the server does not list you in desk {desk!r}")
    return [k.public.recipient for k in keys], first_use


def directory_recipients(
    directory: envelope.KeyDirectory, me: envelope.PublicKey, desk: str | None = None
) -> list[envelope.Recipient]:
    """The journalists of a directory verified against the pinned newsroom key:
    every one, or ``desk``'s recipients (envelope/SPEC.md §11.1) for a source in
    a desk, so that notes and replies stay within the desk."""
    if all(k.name != me.name or k.fingerprint != me.fingerprint for k in directory.journalists):
        raise ServerError(
            "your own key is not in the newsroom's signed key directory: ask the admin"
        )
    try:
        chosen = directory.recipients_for(desk)
    except envelope.DirectoryError as exc:
        raise ServerError(f"{exc}: ask the admin") from None
    if all(k.name != me.name for k in chosen):
        raise ServerError(f"you are not in desk {desk!r} in the newsroom's signed key directory")
    return [k.recipient for k in chosen]


def _check_size(sealed: bytes, what: str) -> bytes:
    if len(sealed) > MAX_ITEM_BYTES:
        raise ServerError(f"this {what} is too long: at most about {MAX_ITEM_BYTES >> 10} KiB")
    return sealed


def seal_note(text: str, journalists: Sequence[envelope.Recipient]) -> bytes:
    """A note, readable by every journalist and nobody else."""
    return _check_size(envelope.encrypt_bytes(text.encode("utf-8"), journalists), "note")


def seal_reply(text: str, reply_key: str, journalists: Sequence[envelope.Recipient]) -> bytes:
    """A reply, readable by the source (its reply key) and every journalist."""
    try:
        source = envelope.X25519Recipient.from_text(reply_key)
    except envelope.KeyFormatError as exc:
        raise ServerError("the server gave a malformed reply key for this source") from exc
    return _check_size(
        envelope.encrypt_bytes(text.encode("utf-8"), [source, *journalists]), "reply"
    )
