"""Envelope encryption benchmark: lanterne vs gpg vs age vs pyrage (issue 2).

Every tool runs as a child process on the same random input and is measured
from the outside (``_measure.run_child``): wall time, user+sys CPU seconds
from ``os.wait4`` and peak RSS through GNU time (``/usr/bin/time``; see
_measure.py for why). Tools run alternately: round k runs every
tool once per operation, in an order rotated by k, so background load on a
shared machine spreads over all of them.

Operations: encrypt and decrypt, each file-to-file (the output is fsynced by
the parent after the child exits, and that time counts, so every tool pays
for durable output; lanterne's ``-o`` already fsyncs) and to /dev/null
(standard output). Every tool's ciphertext is checked once before timing by
decrypting it and comparing the SHA-256 of the result with the input; every
timed file-to-file decryption is hash-compared again.

    .venv/bin/python benchmarks/bench_envelope.py --sizes 1M,100M,1G

A quick run: ``--sizes 1M --rounds 2``. Results: a Markdown table on stdout,
and JSON + Markdown under benchmarks/out/ (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from _measure import (
    GNU_TIME,
    MIB,
    Measurement,
    fsync_path,
    launcher_overhead,
    median,
    parse_size,
    run_child,
    size_label,
)

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
LANTERNE = str(VENV_BIN / "lanterne")

TOOLS = ("lanterne", "gpg", "age", "pyrage")
API_TOOL = "lanterne-api"  # the Python API in a `python -c` child, to /dev/null only
OPS = (("encrypt", "file"), ("encrypt", "null"), ("decrypt", "file"), ("decrypt", "null"))

PYRAGE_CHILD = """\
import sys, pyrage
from pyrage import x25519
op, keyfile, src, dst = sys.argv[1:]
prefix = "age1" if op == "encrypt" else "AGE-SECRET-KEY-"
key = next(w for w in open(keyfile).read().split() if w.startswith(prefix))
if op == "encrypt":
    pyrage.encrypt_file(src, dst, [x25519.Recipient.from_str(key)])
else:
    pyrage.decrypt_file(src, dst, [x25519.Identity.from_str(key)])
"""

API_CHILD = """\
import sys
from pathlib import Path
import envelope
from journalist_cli import identity_store
op, keyfile, src, dst = sys.argv[1:]
with open(src, "rb") as fin, open(dst, "wb") as fout:
    if op == "encrypt":
        envelope.encrypt(fin, fout, [identity_store.read_public_key(Path(keyfile)).recipient])
    else:
        envelope.decrypt(fin, fout, identity_store.open_identity(Path(keyfile), None).identities())
"""


class Tools:
    """Keys and command lines for every tool, in a throwaway directory."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.env = {**os.environ, "LC_ALL": "C"}
        # lanterne
        (work / "lanterne").mkdir()
        _check(
            LANTERNE, "keys", "generate", "--name", "bench",
            "--dir", str(work / "lanterne"), "--no-passphrase",
        )  # fmt: skip
        self.lanterne_pub = str(work / "lanterne" / "bench.pub")
        self.lanterne_id = str(work / "lanterne" / "bench.identity")
        # gpg: Curve25519 (future-default = ed25519 + cv25519), no passphrase
        gnupg = work / "gnupg"
        gnupg.mkdir(mode=0o700)
        self.gpg_env = {**self.env, "GNUPGHOME": str(gnupg)}
        _check(
            "gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", "",
            "--quick-gen-key", "Lanterne Bench <bench@lanterne.invalid>",
            "future-default", "default", "never", env=self.gpg_env,
        )  # fmt: skip
        listing = _check("gpg", "--batch", "--with-colons", "--list-keys", env=self.gpg_env)
        self.gpg_fpr = next(
            line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
        )
        sub = next(line.split(":") for line in listing.splitlines() if line.startswith("sub:"))
        self.gpg_subkey = f"algo {sub[3]} ({sub[16] or '?'})"  # 18 = ECDH, cv25519
        # age / pyrage share one X25519 key
        (work / "age").mkdir()
        self.age_key = str(work / "age" / "key.txt")
        _check("age-keygen", "-o", self.age_key)
        self.age_recipient = _check("age-keygen", "-y", self.age_key).strip()
        self.age_pub = str(work / "age" / "recipient.txt")
        Path(self.age_pub).write_text(self.age_recipient + "\n")

    def close(self) -> None:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            _check("gpgconf", "--kill", "gpg-agent", env=self.gpg_env)

    def argv(self, tool: str, op: str, src: str, dst: str | None) -> list[str]:
        """The command line; ``dst`` None means standard output (/dev/null)."""
        enc = op == "encrypt"
        if tool == "lanterne":
            key = ["-r", self.lanterne_pub] if enc else ["-i", self.lanterne_id]
            out = ["-o", dst] if dst else []
            return [LANTERNE, "file", op, *key, *out, src]
        if tool == "gpg":
            common = ["gpg", "--batch", "--yes", "--quiet", "--no-auto-key-locate"]
            out = ["--output", dst or "-"]
            if enc:
                opts = ["--compress-algo", "none", "--trust-model", "always", "-r", self.gpg_fpr]
                return [*common, *opts, *out, "--encrypt", src]
            opts = ["--pinentry-mode", "loopback", "--passphrase", ""]
            return [*common, *opts, *out, "--decrypt", src]
        if tool == "age":
            key = ["-r", self.age_recipient] if enc else ["-d", "-i", self.age_key]
            out = ["-o", dst] if dst else []
            return ["age", *key, *out, src]
        if tool == "pyrage":
            key = self.age_pub if enc else self.age_key
            return [PYTHON, "-c", PYRAGE_CHILD, op, key, src, dst or os.devnull]
        if tool == API_TOOL:
            key = self.lanterne_pub if enc else self.lanterne_id
            return [PYTHON, "-c", API_CHILD, op, key, src, dst or os.devnull]
        raise ValueError(tool)

    def env_for(self, tool: str) -> dict[str, str]:
        return self.gpg_env if tool == "gpg" else self.env

    def cipher_source(self, tool: str) -> str:
        """Whose ciphertext a tool decrypts (the API child reads lanterne's)."""
        return "lanterne" if tool == API_TOOL else tool


def _check(*argv: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, env=env).stdout


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_random(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 4 * MIB))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest()


def rotated(items: Sequence[str], k: int) -> list[str]:
    k %= len(items)
    return [*items[k:], *items[:k]]


def machine_info(tools: Tools) -> dict[str, str]:
    import cryptography
    from cryptography.hazmat.backends.openssl.backend import backend

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpg_lines = _check("gpg", "--version", env=tools.gpg_env).splitlines()

    def git(*args: str) -> str:
        try:
            return _check("git", "-C", str(ROOT), *args).strip()
        except (OSError, subprocess.CalledProcessError):
            return "?"

    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "gpg": f"{gpg_lines[0]}, {gpg_lines[1]}",
        "gpg encryption subkey": tools.gpg_subkey,
        "age": _check("age", "--version").strip(),
        "pyrage": importlib.metadata.version("pyrage"),
        "cryptography": cryptography.__version__,
        "openssl": backend.openssl_version_text(),
        "git": git("rev-parse", "--short", "HEAD"),
        "uncommitted changes in envelope/": "yes"
        if git("status", "--porcelain", "--", "envelope")
        else "no",
        "envelope/ sha256": _digest(source_hashes("envelope")),
    }


def source_hashes(*packages: str) -> dict[str, str]:
    """Per-file hashes of the Python sources the lanterne children run.

    Others edit the same working tree; comparing these before and after a size
    catches a run that measured two versions of the code.
    """
    return {
        str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest()
        for pkg in packages
        for p in sorted((ROOT / pkg).rglob("*.py"))
    }


def _digest(hashes: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:12]


def changed_files(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


@contextlib.contextmanager
def workdir(base: str | None) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="lanterne-bench-", dir=base) as d:
        yield Path(d)


def run_one(tools: Tools, tool: str, op: str, mode: str, src: Path, out_dir: Path) -> dict:
    """One timed run; file mode fsyncs the output in the parent (timed) and checks it."""
    dst = out_dir / f"{tool}.{op}.out" if mode == "file" else None
    argv = tools.argv(tool, op, str(src), str(dst) if dst else None)
    m: Measurement = run_child(argv, env=tools.env_for(tool))
    fsync_s = 0.0
    if dst is not None:
        t = time.perf_counter()
        fsync_path(dst)
        fsync_s = time.perf_counter() - t
    return {
        "wall_s": m.wall_s,
        "fsync_s": fsync_s,
        "user_s": m.user_s,
        "sys_s": m.sys_s,
        "maxrss_kib": m.maxrss_kib,
        "_dst": dst,
    }


def bench_size(
    tools: Tools, work: Path, size: int, rounds: int, names: Sequence[str], log: list[dict]
) -> str:
    """Run every round for one size; returns the load averages seen, for the report."""
    label = size_label(size)
    src = work / f"input-{size}.bin"
    _progress(f"[{label}] writing random input")
    digest = write_random(src, size)
    out_dir = work / "out"
    out_dir.mkdir(exist_ok=True)
    # Ciphertext per tool, each verified by a round trip (untimed).
    cts: dict[str, Path] = {}
    for tool in names:
        if tool == API_TOOL:
            continue
        ct = work / f"{tool}-{size}.ct"
        run_child(tools.argv(tool, "encrypt", str(src), str(ct)), env=tools.env_for(tool))
        back = out_dir / "verify.out"
        run_child(tools.argv(tool, "decrypt", str(ct), str(back)), env=tools.env_for(tool))
        if sha256_file(back) != digest:
            raise SystemExit(f"{tool}: round trip of {label} does not match the input")
        back.unlink()
        cts[tool] = ct
    if API_TOOL in names:  # the API must read and write the same format as the CLI
        back = out_dir / "verify.out"
        run_child(tools.argv(API_TOOL, "encrypt", str(src), None), env=tools.env)
        run_child(tools.argv(API_TOOL, "decrypt", str(cts["lanterne"]), str(back)), env=tools.env)
        if sha256_file(back) != digest:
            raise SystemExit(f"{API_TOOL}: decryption of {label} does not match the input")
        back.unlink()
    load = os.getloadavg()
    for k in range(rounds):
        for op, mode in OPS:
            order = [t for t in names if mode == "null" or t != API_TOOL]
            for tool in rotated(order, k):
                path = src if op == "encrypt" else cts[tools.cipher_source(tool)]
                rec = run_one(tools, tool, op, mode, path, out_dir)
                dst = rec.pop("_dst")
                if dst is not None:
                    if op == "decrypt" and sha256_file(dst) != digest:
                        raise SystemExit(f"{tool}: decrypted {label} does not match the input")
                    if op == "encrypt" and dst.stat().st_size <= size:
                        raise SystemExit(f"{tool}: ciphertext of {label} is too short")
                    dst.unlink()
                rec.update(size=size, round=k, op=op, mode=mode, tool=tool)
                log.append(rec)
                mibs = size / MIB / (rec["wall_s"] + rec["fsync_s"])
                _progress(
                    f"[{label} r{k + 1}/{rounds}] {op:7} {mode:4} {tool:12} "
                    f"{mibs:8.1f} MiB/s  cpu {rec['user_s'] + rec['sys_s']:6.2f}s  "
                    f"rss {rec['maxrss_kib'] / 1024:6.1f} MiB"
                )
    for p in (src, *cts.values()):
        p.unlink()
    loads = f"{load[0]:.2f} before, {os.getloadavg()[0]:.2f} after"
    _progress(f"[{label}] done; load average {loads}")
    return loads


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def summarize(log: list[dict]) -> dict[tuple[int, str, str, str], dict[str, float]]:
    groups: dict[tuple[int, str, str, str], list[dict]] = {}
    for r in log:
        groups.setdefault((r["size"], r["op"], r["mode"], r["tool"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        mib = key[0] / MIB
        out[key] = {
            "n": len(rs),
            "mibs_wall": median([mib / (r["wall_s"] + r["fsync_s"]) for r in rs]),
            "mibs_cpu": median([mib / max(r["user_s"] + r["sys_s"], 1e-9) for r in rs]),
            "cpu_s": median([r["user_s"] + r["sys_s"] for r in rs]),
            "sys_s": median([r["sys_s"] for r in rs]),
            "wall_s": median([r["wall_s"] + r["fsync_s"] for r in rs]),
            "rss_mib": median([r["maxrss_kib"] / 1024 for r in rs]),
            "rss_max_mib": max(r["maxrss_kib"] / 1024 for r in rs),
        }
    return out


def markdown(summary: dict, sizes: Sequence[int], names: Sequence[str]) -> str:
    lines: list[str] = []
    for size in sizes:
        lines += [
            f"#### {size_label(size)}",
            "",
            "| operation | output | tool | MiB/s (wall) | MiB per CPU-s | CPU s | of which sys "
            "| wall s | peak RSS MiB (median / max) | runs |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for op, mode in OPS:
            for tool in names:
                s = summary.get((size, op, mode, tool))
                if s is None:
                    continue
                out = "file (fsync)" if mode == "file" else "/dev/null"
                lines.append(
                    f"| {op} | {out} | {tool} | {s['mibs_wall']:.1f} | {s['mibs_cpu']:.1f} "
                    f"| {s['cpu_s']:.3f} | {s['sys_s']:.3f} | {s['wall_s']:.3f} "
                    f"| {s['rss_mib']:.1f} / {s['rss_max_mib']:.1f} | {s['n']} |"
                )
        lines += ["", f"Ratios for {size_label(size)}, lanterne ÷ other (medians; "
                  "> 1 is better for lanterne on throughput, < 1 on RSS):", ""]  # fmt: skip
        lines += [
            "| operation | output | vs | MiB/s (wall) | MiB per CPU-s | peak RSS |",
            "|---|---|---|---:|---:|---:|",
        ]
        for op, mode in OPS:
            ours = summary.get((size, op, mode, "lanterne"))
            for other in ("gpg", "age", "pyrage"):
                theirs = summary.get((size, op, mode, other))
                if ours is None or theirs is None:
                    continue
                out = "file (fsync)" if mode == "file" else "/dev/null"
                lines.append(
                    f"| {op} | {out} | {other} "
                    f"| {ours['mibs_wall'] / theirs['mibs_wall']:.2f}x "
                    f"| {ours['mibs_cpu'] / theirs['mibs_cpu']:.2f}x "
                    f"| {ours['rss_mib'] / theirs['rss_mib']:.2f}x |"
                )
        lines.append("")
    lines += targets(summary, sizes)
    return "\n".join(lines)


def targets(summary: dict, sizes: Sequence[int]) -> list[str]:
    """The issue-2 targets, checked on the largest size measured (1 GiB in a full run)."""
    size = max(sizes)
    get = summary.get
    lines = [f"#### Targets (issue 2), on {size_label(size)}", ""]
    ours = get((size, "decrypt", "null", "lanterne"))
    for other, factor in (("gpg", 2.0), ("age", 1.0)):
        theirs = get((size, "decrypt", "null", other))
        if ours is None or theirs is None:
            continue
        for metric, name in (("mibs_cpu", "MiB per CPU-s"), ("mibs_wall", "MiB/s to /dev/null")):
            need = factor * theirs[metric]
            ok = ours[metric] >= need
            lines.append(
                f"- decrypt {name} ≥ {factor:g}x {other}: lanterne {ours[metric]:.1f} vs "
                f"needed {need:.1f} → {'MET' if ok else 'NOT MET'} "
                f"({ours[metric] / need:.2f}x of target)"
            )
    rss = [
        s["rss_max_mib"]
        for (sz, _op, _mode, tool), s in summary.items()
        if sz == size and tool == "lanterne"
    ]
    if rss:
        worst = max(rss)
        lines.append(
            f"- peak RSS < 64 MiB (lanterne CLI, every run at this size): worst {worst:.1f} MiB "
            f"→ {'MET' if worst < 64 else 'NOT MET'}"
        )
    lines.append("")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1M,100M,1G", help="comma-separated, e.g. 1M,100M,1G")
    ap.add_argument(
        "--rounds", type=int, help="rounds for every size (default: 5 below 1 GiB, 3 from 1 GiB)"
    )
    ap.add_argument("--tools", default=",".join([*TOOLS, API_TOOL]), help="subset to run")
    ap.add_argument("--tmpdir", help="where inputs and outputs go (default: $TMPDIR or /tmp)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out"), help="JSON/Markdown dir")
    args = ap.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    names = [t for t in args.tools.split(",") if t]
    for t in names:
        if t not in (*TOOLS, API_TOOL):
            ap.error(f"unknown tool {t!r}")
    if API_TOOL in names and "lanterne" not in names:
        ap.error(f"{API_TOOL} decrypts lanterne's ciphertext; include lanterne")
    for exe in ("gpg", "age", "age-keygen", LANTERNE, GNU_TIME):
        if shutil.which(exe) is None:
            raise SystemExit(f"{exe} not found (apt-get install age gpg time; pip install -e .)")

    with workdir(args.tmpdir) as work:
        # Per size: input, one ciphertext per tool, one output at a time (+15 % slack).
        need = max(size * (2 + 1.15 * len(names)) for size in sizes) + (256 * MIB)
        free = shutil.disk_usage(work).free
        if free < need:
            raise SystemExit(f"{work}: {free / MIB:.0f} MiB free, need {need / MIB:.0f} MiB")
        tools = Tools(work)
        try:
            info = machine_info(tools)
            base = launcher_overhead()
            info["launcher overhead (GNU time + true)"] = (
                f"{base.wall_s * 1000:.1f} ms wall, {base.cpu_s * 1000:.1f} ms CPU, "
                f"{base.maxrss_mib:.1f} MiB RSS"
            )
            log: list[dict] = []
            started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            for size in sizes:
                rounds = args.rounds or (5 if size < (1 << 30) else 3)
                before = source_hashes("envelope", "journalist_cli")
                loads = bench_size(tools, work, size, rounds, names, log)
                info[f"load average ({size_label(size)}, {rounds} rounds)"] = loads
                changed = changed_files(before, source_hashes("envelope", "journalist_cli"))
                # envelope/ sets throughput: a run mixing two versions is not valid.
                # journalist_cli/ only moves the CLI's start-up (imports); worth a note.
                if changed:
                    bad = any(f.startswith("envelope") for f in changed)
                    key = "WARNING" if bad else "note"
                    info[f"{key} ({size_label(size)})"] = (
                        f"changed during the runs: {', '.join(changed)}"
                        + ("; lanterne results mix code versions, run again" if bad else "")
                    )
                    _progress(f"{key}: changed during the {size_label(size)} runs: {changed}")
        finally:
            tools.close()

    summary = summarize(log)
    report = "\n".join(
        [
            *[f"- {k}: {v}" for k, v in info.items()],
            "",
            markdown(summary, sizes, names),
        ]
    )
    print(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"envelope-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".md").write_text(report + "\n")
    stem.with_suffix(".json").write_text(
        json.dumps({"started": started, "argv": sys.argv, "machine": info, "runs": log}, indent=1)
        + "\n"
    )
    _progress(f"wrote {stem}.md and {stem}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
