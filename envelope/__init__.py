"""Lanterne envelopes: the one encryption format for everything the server stores.

The format is specified in ``envelope/SPEC.md``; this package is its reference
implementation. The public surface is deliberately small::

    from envelope import X25519Identity, encrypt_bytes, decrypt_bytes
    me = X25519Identity.generate()
    sealed = encrypt_bytes(b"tip", [me.recipient])
    assert decrypt_bytes(sealed, [me]) == b"tip"

Streaming: ``encrypt``/``decrypt`` (file objects), ``encrypt_file``/
``decrypt_file`` (paths, atomic), ``encrypt_aiter``/``decrypt_aiter`` (async
iterators), and the incremental ``Encryptor``/``Decryptor`` underneath.

Recipients and identities are interfaces (``Recipient.wrap``,
``Identity.unwrap``), one implementation pair per stanza type
(``envelope.recipients``, SPEC §4.1).
"""

from envelope import _header, _stream
from envelope._io import (
    atomic_output,
    decrypt,
    decrypt_aiter,
    decrypt_bytes,
    decrypt_file,
    encrypt,
    encrypt_aiter,
    encrypt_bytes,
    encrypt_file,
)
from envelope._stream import Decryptor, Encryptor, padded_size
from envelope.directory import (
    DirectoryDesk,
    DirectoryError,
    DowngradeError,
    KeyDirectory,
    newsroom_fingerprint,
    newsroom_public_key,
    sign_directory,
    verify_directory,
)
from envelope.errors import (
    AuthenticationError,
    EnvelopeError,
    FormatError,
    KeyFormatError,
    NoMatchingKeyError,
)
from envelope.keys import PublicKey, fingerprint
from envelope.receipt import (
    Receipt,
    ReceiptCertificate,
    ReceiptError,
    certify_receipt_key,
    receipt_objects_hash,
    sign_receipt,
    verify_receipt,
)
from envelope.recipients import (
    HybridIdentity,
    HybridRecipient,
    Identity,
    Recipient,
    Stanza,
    X25519Identity,
    X25519Recipient,
)

__all__ = [
    "AuthenticationError",
    "Decryptor",
    "DirectoryDesk",
    "DirectoryError",
    "DowngradeError",
    "Encryptor",
    "EnvelopeError",
    "FormatError",
    "HybridIdentity",
    "HybridRecipient",
    "Identity",
    "KeyDirectory",
    "KeyFormatError",
    "NoMatchingKeyError",
    "PublicKey",
    "Receipt",
    "ReceiptCertificate",
    "ReceiptError",
    "Recipient",
    "Stanza",
    "X25519Identity",
    "X25519Recipient",
    "atomic_output",
    "certify_receipt_key",
    "ciphertext_size",
    "decrypt",
    "decrypt_aiter",
    "decrypt_bytes",
    "decrypt_file",
    "encrypt",
    "encrypt_aiter",
    "encrypt_bytes",
    "encrypt_file",
    "fingerprint",
    "header_size",
    "newsroom_fingerprint",
    "newsroom_public_key",
    "padded_size",
    "receipt_objects_hash",
    "sign_directory",
    "sign_receipt",
    "verify_directory",
    "verify_receipt",
]


def ciphertext_size(plaintext_size: int, header_size: int | None = None) -> int:
    """The exact length of an envelope of ``plaintext_size`` bytes (SPEC §5-6).

    ``header_size`` is the length of its header, MAC included (``header_size()``
    of the envelope's first bytes); without it, the largest header the format
    allows, so the result bounds the envelope whatever its recipients.
    """
    header = _header.MAX_HEADER_SIZE if header_size is None else header_size
    padded = _stream.padded_size(plaintext_size + 1)  # + the padding marker (SPEC §6)
    chunks = -(-padded // _stream.CHUNK_SIZE)
    return header + chunks * _stream.SEALED_CHUNK_SIZE - (chunks * _stream.CHUNK_SIZE - padded)


def header_size(head: bytes | bytearray) -> int | None:
    """The length of the envelope header at the start of ``head``, MAC included.

    None if ``head`` ends before the header does; ``FormatError`` if its bytes
    cannot start an envelope. Nothing is decrypted or authenticated here.
    """
    parsed = _header.parse_header(head)
    return None if parsed is None else parsed.size
