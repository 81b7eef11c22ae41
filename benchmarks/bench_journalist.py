"""Journalist side (issue 5): `lanterne pull` + `lanterne decrypt` of 100
submissions totalling 1 GiB over loopback, against `gpg --decrypt` of the same
files encrypted with gpg.

    .venv/bin/python benchmarks/bench_journalist.py [--submissions 100] [--total 1G] [--rounds 3]

One real server (`lanterne-server run --journalist-port`) receives the
submissions through the no-JS form (one source: a first submission, then
follow-ups). Each round, alternating the order, measures:
- lanterne: `pull` into a fresh LANTERNE_HOME, then `decrypt SOURCE --out DIR
  --no-clean` (originals only, as gpg does no cleaning), wall time of both;
- gpg: `gpg --decrypt -o OUT FILE` for each of the same plaintexts encrypted
  beforehand to a Curve25519 key with `--compress-algo none`.
Peak RSS is GNU time's %M of each lanterne command. Outputs are checked
against the plaintexts' SHA-256 every round.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._measure import MIB, median, parse_size, run_child  # noqa: E402
from journalist_cli.identity_store import JournalistIdentity, write_new_identity  # noqa: E402
from tests.server_process import SERVER_CMD, Instance, SourceClient, run_server  # noqa: E402

LANTERNE = str(Path(sys.executable).parent / "lanterne")


def gpg_setup(home: Path) -> str:
    home.mkdir(mode=0o700)
    base = ["gpg", "--batch", "--homedir", str(home)]
    subprocess.run(
        [
            *base,
            "--passphrase",
            "",
            "--quick-gen-key",
            "Bench <b@example.org>",
            "future-default",
            "default",
            "never",
        ],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [*base, "--with-colons", "--list-keys"], check=True, capture_output=True, text=True
    ).stdout
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--submissions", type=int, default=100)
    ap.add_argument("--total", default="1G")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    total = parse_size(args.total)
    each = total // args.submissions
    work = Path(tempfile.mkdtemp(prefix="lt-bench-j-"))
    try:
        keys = work / "keys"
        write_new_identity(JournalistIdentity.generate("bench"), keys, None)
        data = work / "data"
        subprocess.run(
            [*SERVER_CMD, "init", "--data-dir", str(data), "--journalist", str(keys / "bench.pub")],
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
        plain = work / "plain"
        plain.mkdir()
        digests = {}
        for i in range(args.submissions):
            blob = os.urandom(each)
            (plain / f"doc{i:03d}.bin").write_bytes(blob)
            digests[f"doc{i:03d}.bin"] = hashlib.sha256(blob).hexdigest()
        gpghome = work / "gnupg"
        fpr = gpg_setup(gpghome)
        sealed = work / "gpg"
        sealed.mkdir()
        for name in digests:
            subprocess.run(
                [
                    "gpg",
                    "--batch",
                    "--homedir",
                    str(gpghome),
                    "--trust-model",
                    "always",
                    "--compress-algo",
                    "none",
                    "-r",
                    fpr,
                    "-o",
                    str(sealed / f"{name}.gpg"),
                    "--encrypt",
                    str(plain / name),
                ],
                check=True,
                capture_output=True,
            )
        instance = Instance(data, [], work / "server-tmp", work / "server.log")
        instance.tmp_dir.mkdir()
        with run_server(instance, journalist_api=True) as server:
            t = time.monotonic()
            with SourceClient(server.base_url) as src:
                names = sorted(digests)
                first = (plain / names[0]).read_bytes()
                src.first_submission("bench", [(names[0], first, "application/octet-stream")])
                for name in names[1:]:
                    r = src.submit(
                        "", [(name, (plain / name).read_bytes(), "application/octet-stream")]
                    )
                    assert r.status_code == 303, r.text
            took = time.monotonic() - t
            print(f"submitted {args.submissions} x {each / MIB:.1f} MiB in {took:.1f} s")
            assert server.api_url is not None
            api = server.api_url.removesuffix("/api/v1")
            results: dict[str, list[float]] = {"lanterne": [], "gpg": []}
            rss: list[float] = []
            for r in range(args.rounds):
                order = ["lanterne", "gpg"] if r % 2 == 0 else ["gpg", "lanterne"]
                for tool in order:
                    out = work / f"out-{tool}-{r}"
                    if tool == "lanterne":
                        home = work / f"home-{r}"
                        env = {**os.environ, "LANTERNE_HOME": str(home)}
                        subprocess.run(
                            [
                                LANTERNE,
                                "config",
                                "--server",
                                api,
                                "--identity",
                                str(keys / "bench.identity"),
                            ],
                            env=env,
                            check=True,
                            capture_output=True,
                        )
                        t = time.monotonic()
                        pull = run_child([LANTERNE, "pull"], env=env)
                        pulled = time.monotonic() - t

                        sid = json.loads(
                            subprocess.run(
                                [LANTERNE, "list", "--json"],
                                env=env,
                                check=True,
                                capture_output=True,
                                text=True,
                            ).stdout
                        )[0]["id"]
                        dec = run_child(
                            [LANTERNE, "decrypt", sid, "--out", str(out), "--no-clean"], env=env
                        )
                        results[tool].append(time.monotonic() - t)
                        print(
                            f"  pull {pulled:.2f} s (cpu {pull.cpu_s:.2f}),"
                            f" decrypt {dec.wall_s:.2f} s (cpu {dec.cpu_s:.2f})"
                        )
                        rss.append(max(pull.maxrss_mib, dec.maxrss_mib))
                        got = {
                            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                            for p in out.rglob("doc*.bin")
                        }
                        shutil.rmtree(home)
                    else:
                        out.mkdir()
                        t = time.monotonic()
                        for name in digests:
                            subprocess.run(
                                [
                                    "gpg",
                                    "--batch",
                                    "--quiet",
                                    "--homedir",
                                    str(gpghome),
                                    "-o",
                                    str(out / name),
                                    "--decrypt",
                                    str(sealed / f"{name}.gpg"),
                                ],
                                check=True,
                                capture_output=True,
                            )
                        results[tool].append(time.monotonic() - t)
                        got = {
                            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                            for p in out.iterdir()
                        }
                    assert got == digests, f"{tool}: outputs differ from the inputs"
                    shutil.rmtree(out)
                    print(f"round {r + 1} {tool}: {results[tool][-1]:.2f} s", flush=True)
        mib = args.submissions * each / MIB
        lm, gm = median(results["lanterne"]), median(results["gpg"])
        print()
        print(f"| tool | median wall s ({args.rounds} rounds) | MiB/s | peak RSS MiB (max) |")
        print("|---|---:|---:|---:|")
        print(f"| lanterne pull + decrypt | {lm:.2f} | {mib / lm:.0f} | {max(rss):.1f} |")
        print(f"| gpg --decrypt x {args.submissions} | {gm:.2f} | {mib / gm:.0f} | - |")
        print(
            f"\nlanterne end-to-end speed / gpg: {gm / lm:.2f}x (target >= 2x); "
            f"peak RSS {max(rss):.1f} MiB (target < 128 MiB)"
        )
    finally:
        subprocess.run(["gpgconf", "--homedir", str(work / "gnupg"), "--kill", "all"], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
