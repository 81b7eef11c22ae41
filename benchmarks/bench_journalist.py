"""Journalist side (issue 5): `lanterne pull` + `lanterne decrypt` of 100
submissions totalling 1 GiB over loopback, against `gpg --decrypt` of the same
files encrypted with gpg.

    .venv/bin/python benchmarks/bench_journalist.py [--submissions 100] [--total 1G] [--rounds 3]

One real server (`lanterne-server run --journalist-port`) receives the
submissions through the no-JS form (one source: a first submission, then
follow-ups). Each round, reversing the order every other round, measures:
- lanterne: `pull` into a fresh LANTERNE_HOME, `list --json` (to get the
  source's id, as a journalist would), then `decrypt SOURCE --out DIR
  --no-clean` (originals only, as gpg does no cleaning): wall time of all three;
- gpg: `gpg --decrypt -o OUT FILE`, one process per file, of the same
  plaintexts encrypted beforehand to a Curve25519 key with `--compress-algo
  none`, the files already on the disk: the issue's comparison, taken literally;
- curl_gpg: the same, but the gpg files are first downloaded over loopback
  (one curl for all, keep-alive) from Python's http.server: gpg's end to end;
- cp: `cp -r` of the gpg files, the cost of writing 1 GiB into the page cache
  at that moment (lanterne writes twice that: the vault, then the plaintexts).
Peak RSS is GNU time's %M of each lanterne command. Outputs are checked
against the plaintexts' SHA-256 every round.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._measure import MIB, median, parse_size, run_child  # noqa: E402
from journalist_cli.identity_store import JournalistIdentity, write_new_identity  # noqa: E402
from tests.server_process import (  # noqa: E402
    SERVER_CMD,
    Instance,
    SourceClient,
    free_port,
    run_server,
    wait_for_port,
)

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


TOOLS = ("lanterne", "lanterne_nofsync", "gpg", "curl_gpg", "cp")
LABELS = {
    "lanterne": "lanterne pull + list + decrypt",
    "lanterne_nofsync": "the same with fsync disabled (reference only)",
    "gpg": "gpg --decrypt x {n} (files already local)",
    "curl_gpg": "curl download + gpg --decrypt x {n}",
    "cp": "cp of the {n} gpg files (page-cache write floor)",
}


@contextlib.contextmanager
def static_server(directory: Path) -> Iterator[str]:
    """Python's http.server on loopback, serving the gpg files for the curl baseline."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(directory),
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc, 10)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait()


@dataclass
class Bench:
    work: Path
    identity: Path
    api: str
    gpghome: Path
    sealed: Path
    gpg_url: str
    names: list[str]
    rss: list[float] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=lambda: {"pull": [], "decrypt": []})

    def _gpg_decrypt_all(self, src: Path, out: Path) -> None:
        for name in self.names:
            subprocess.run(
                [
                    "gpg",
                    "--batch",
                    "--quiet",
                    "--homedir",
                    str(self.gpghome),
                    "-o",
                    str(out / name),
                    "--decrypt",
                    str(src / f"{name}.gpg"),
                ],
                check=True,
                capture_output=True,
            )

    def lanterne(self, out: Path, cli: tuple[str, ...] = (LANTERNE,)) -> float:
        home = self.work / "lanterne-home"
        env = {**os.environ, "LANTERNE_HOME": str(home)}
        config = [*cli, "config", "--server", self.api, "--identity", str(self.identity)]
        subprocess.run(config, env=env, check=True, capture_output=True)
        t = time.monotonic()
        pull = run_child([*cli, "pull"], env=env)
        listed = subprocess.run(
            [*cli, "list", "--json"], env=env, check=True, capture_output=True, text=True
        )
        sid = json.loads(listed.stdout)[0]["id"]
        dec = run_child([*cli, "decrypt", sid, "--out", str(out), "--no-clean"], env=env)
        took = time.monotonic() - t
        print(
            f"  pull {pull.wall_s:.2f} s (cpu {pull.cpu_s:.2f}),"
            f" decrypt {dec.wall_s:.2f} s (cpu {dec.cpu_s:.2f})"
        )
        if cli == (LANTERNE,):
            self.rss.append(max(pull.maxrss_mib, dec.maxrss_mib))
            self.phases["pull"].append(pull.wall_s)
            self.phases["decrypt"].append(dec.wall_s)
        shutil.rmtree(home)
        return took

    def lanterne_nofsync(self, out: Path) -> float:
        """What durability costs: the CLI with os.fsync replaced by a no-op."""
        wrapper = self.work / "lanterne_nofsync.py"
        wrapper.write_text(
            "import os, sys\nos.fsync = lambda fd: None\n"
            "from journalist_cli.main import console_main\nconsole_main()\n"
        )
        return self.lanterne(out, (sys.executable, str(wrapper)))

    def gpg(self, out: Path) -> float:
        out.mkdir()
        t = time.monotonic()
        self._gpg_decrypt_all(self.sealed, out)
        return time.monotonic() - t

    def curl_gpg(self, out: Path) -> float:
        out.mkdir()
        downloads = self.work / "curl-downloads"
        downloads.mkdir()
        t = time.monotonic()
        urls = [f"{self.gpg_url}/{name}.gpg" for name in self.names]
        subprocess.run(
            ["curl", "-sS", "--fail", "--output-dir", str(downloads), "--remote-name-all", *urls],
            check=True,
        )
        self._gpg_decrypt_all(downloads, out)
        took = time.monotonic() - t
        shutil.rmtree(downloads)
        return took

    def cp(self, out: Path) -> float:
        t = time.monotonic()
        subprocess.run(["cp", "-r", str(self.sealed), str(out)], check=True)
        took = time.monotonic() - t
        copied = {p.name: p.stat().st_size for p in out.iterdir()}
        assert copied == {p.name: p.stat().st_size for p in self.sealed.iterdir()}
        return took


def report(
    results: dict[str, list[float]], bench: Bench, mib: float, args: argparse.Namespace
) -> None:
    rss = bench.rss
    print()
    print(f"| | median wall s ({args.rounds} rounds) | MiB/s | peak RSS MiB (max) |")
    print("|---|---:|---:|---:|")
    for tool in TOOLS:
        m = median(results[tool])
        peak = f"{max(rss):.1f}" if tool == "lanterne" else "-"
        label = LABELS[tool].format(n=args.submissions)
        print(f"| {label} | {m:.2f} | {mib / m:.0f} | {peak} |")
    lm = median(results["lanterne"])
    print(
        f"\nlanterne speed / gpg --decrypt: {median(results['gpg']) / lm:.2f}x;"
        f" / curl + gpg: {median(results['curl_gpg']) / lm:.2f}x (target >= 2x);"
        f" peak RSS {max(rss):.1f} MiB (target < 128 MiB)"
    )
    print(
        f"lanterne phases (median wall): pull {median(bench.phases['pull']):.2f} s,"
        f" decrypt {median(bench.phases['decrypt']):.2f} s"
    )


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
        with run_server(instance, journalist_api=True) as server, static_server(sealed) as gpg_url:
            t = time.monotonic()
            with SourceClient(server.base_url) as src:
                names = sorted(digests)
                first = (plain / names[0]).read_bytes()
                src.first_submission("bench", [(names[0], first, "application/octet-stream")])
                for name in names[1:]:
                    answer = src.submit(
                        "", [(name, (plain / name).read_bytes(), "application/octet-stream")]
                    )
                    assert answer.status_code == 303, answer.text
            took = time.monotonic() - t
            print(f"submitted {args.submissions} x {each / MIB:.1f} MiB in {took:.1f} s")
            assert server.api_url is not None
            bench = Bench(
                work,
                keys / "bench.identity",
                server.api_url.removesuffix("/api/v1"),
                gpghome,
                sealed,
                gpg_url,
                sorted(digests),
            )
            results: dict[str, list[float]] = {tool: [] for tool in TOOLS}
            for r in range(args.rounds):
                order = TOOLS if r % 2 == 0 else TOOLS[::-1]
                for tool in order:
                    out = work / f"out-{tool}-{r}"
                    results[tool].append(getattr(bench, tool)(out))
                    if tool != "cp":  # the others must give back the exact plaintexts
                        got = {
                            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                            for p in out.rglob("doc*.bin")
                        }
                        assert got == digests, f"{tool}: outputs differ from the inputs"
                    shutil.rmtree(out)
                    print(f"round {r + 1} {tool}: {results[tool][-1]:.2f} s", flush=True)
        report(results, bench, args.submissions * each / MIB, args)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(work / "gnupg"), "--kill", "all"], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
