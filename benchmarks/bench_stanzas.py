"""Cost of the recipient stanzas, X25519 (0x0001) vs X-Wing hybrid (0x0002) (issue 15).

Per stanza, in this process with the product's own code: wrapping the file
key (``Recipient.wrap``), unwrapping it (``Identity.unwrap``, keys parsed
once, as the Decryptor holds them), an unwrap that fails (the stanza is not
for this key: what trial decryption pays for every other stanza), loading a
key (X-Wing: seed expansion), and the header size per recipient. Then a
whole small envelope to N journalists: encrypt, and decrypt by the last one
(who tries every stanza before its own).

    .venv/bin/python benchmarks/bench_stanzas.py [--repeat 200]

Medians of ``--repeat`` runs, in microseconds; the machine's load counts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import envelope
from envelope import _header


def median_us(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    repeat = parser.parse_args().repeat
    file_key = bytes(32)
    prefix = _header.encode_prefix(bytes(16), 1)
    kinds: dict[str, tuple[Callable[[], object], Callable[[bytes], object]]] = {
        "X25519 (0x0001)": (envelope.X25519Identity.generate, envelope.X25519Identity),
        "X-Wing (0x0002)": (envelope.HybridIdentity.generate, envelope.HybridIdentity),
    }
    print(f"| per stanza (median of {repeat}, µs) | wrap | unwrap | unwrap, not ours "
          "| load key | header bytes |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for label, (generate, load) in kinds.items():
        me, other = generate(), generate()
        stanza = me.recipient.wrap(file_key, prefix)
        assert me.unwrap(stanza, prefix) == file_key and other.unwrap(stanza, prefix) is None
        secret = me.private_bytes()
        print(
            f"| {label} | {median_us(lambda r=me.recipient: r.wrap(file_key, prefix), repeat):.0f}"
            f" | {median_us(lambda i=me, s=stanza: i.unwrap(s, prefix), repeat):.0f}"
            f" | {median_us(lambda i=other, s=stanza: i.unwrap(s, prefix), repeat):.0f}"
            f" | {median_us(lambda f=load, k=secret: f(k), repeat):.0f}"
            f" | {4 + len(stanza.body)} |"
        )
    print()
    print(f"| 1 KiB envelope (median of {repeat // 4}, ms) | encrypt | decrypt by the last |")
    print("|---|---|---|")
    for n in (1, 3, 10):
        for label, (generate, _load) in kinds.items():
            ids = [generate() for _ in range(n)]
            sealed = envelope.encrypt_bytes(bytes(1024), [i.recipient for i in ids])
            enc = median_us(
                lambda ids=ids: envelope.encrypt_bytes(bytes(1024), [i.recipient for i in ids]),
                repeat // 4,
            )
            dec = median_us(
                lambda s=sealed, last=ids[-1]: envelope.decrypt_bytes(s, [last]), repeat // 4
            )
            print(f"| {n} x {label} | {enc / 1000:.2f} | {dec / 1000:.2f} |")


if __name__ == "__main__":
    main()
