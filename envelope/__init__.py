"""Lanterne envelopes: the one encryption format for everything the server stores.

The format is specified in ``envelope/SPEC.md``; this package is its reference
implementation. The public surface is deliberately small::

    from envelope import Identity, encrypt_bytes, decrypt_bytes
    me = Identity.generate()
    sealed = encrypt_bytes(b"tip", [me.recipient])
    assert decrypt_bytes(sealed, [me]) == b"tip"

Streaming: ``encrypt``/``decrypt`` (file objects), ``encrypt_file``/
``decrypt_file`` (paths, atomic), ``encrypt_aiter``/``decrypt_aiter`` (async
iterators), and the incremental ``Encryptor``/``Decryptor`` underneath.
"""

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
from envelope.errors import (
    AuthenticationError,
    EnvelopeError,
    FormatError,
    KeyFormatError,
    NoMatchingKeyError,
)
from envelope.keys import Identity, PublicKey, Recipient, fingerprint

__all__ = [
    "AuthenticationError",
    "Decryptor",
    "Encryptor",
    "EnvelopeError",
    "FormatError",
    "Identity",
    "KeyFormatError",
    "NoMatchingKeyError",
    "PublicKey",
    "Recipient",
    "atomic_output",
    "decrypt",
    "decrypt_aiter",
    "decrypt_bytes",
    "decrypt_file",
    "encrypt",
    "encrypt_aiter",
    "encrypt_bytes",
    "encrypt_file",
    "fingerprint",
    "padded_size",
]
