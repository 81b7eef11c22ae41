"""Starting the keyless worker: every untrusted file is parsed in a fresh process.

The `lanterne` process may hold decrypted private keys. The worker is started
fresh (`python -I -m journalist_cli.cleaning.worker`, never forked, so it
shares no memory with its parent) with a minimal environment, only paths as
arguments, no stdin, and rlimits it sets on itself before touching the file:
address space, CPU seconds, file size, no core dumps. The parent adds a
wall-clock timeout and kills the whole process group when it expires. Where
bubblewrap works, the worker also runs without network, with read-only system
directories, and sees only its input file and a private output directory.

This module is the parent side (`clean_file`, `clean_files`); the child side
is `worker`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import journalist_cli
from journalist_cli.cleaning.errors import (
    CleaningError,
    OutputError,
    WorkerFailed,
)
from journalist_cli.cleaning.limits import DEFAULT_LIMITS, Limits
from journalist_cli.cleaning.report import CleanReport

OUTPUT_NAME = "cleaned"
REPORT_NAME = "report.json"
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
_SIGNALS = {
    signal.SIGKILL: "was killed (out of memory or time?)",
    signal.SIGXCPU: "ran out of CPU time",
    signal.SIGXFSZ: "tried to write more than the output limit",
    signal.SIGSEGV: "crashed (segmentation fault)",
    signal.SIGABRT: "aborted",
}


def _bwrap_command(src: Path, work: Path) -> list[str]:
    """The bubblewrap prefix, or [] where bubblewrap is missing or does not work."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return []
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]  # noqa: S108 (a private tmpfs)
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        path = Path(top)
        if path.is_symlink():
            args += ["--symlink", str(path.readlink()), top]
        elif path.is_dir():
            args += ["--ro-bind", top, top]
    # Only the parts of /etc that loaders, libmagic, fontconfig and perl read.
    for name in ("ld.so.cache", "fonts", "mime.types", "magic", "magic.mime", "alternatives",
                 "perl", "localtime"):
        if Path("/etc", name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    package_root = Path(journalist_cli.__file__).resolve().parent.parent
    for path in {Path(sys.base_prefix), Path(sys.prefix), package_root / "journalist_cli"}:
        args += ["--ro-bind", str(path), str(path)]
    args += ["--ro-bind", str(src), str(src), "--bind", str(work), str(work), "--chdir", str(work)]
    return [*args, "--"]


def sandbox_works() -> bool:
    """Whether bubblewrap can start the worker here (it cannot inside some containers)."""
    true = shutil.which("true")
    with tempfile.TemporaryDirectory() as tmp:
        prefix = _bwrap_command(Path(sys.executable).resolve(), Path(tmp))
        if not prefix or true is None:
            return False
        try:
            result = subprocess.run([*prefix, true], capture_output=True, timeout=30,
                                    check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0


def _failed(source: Path, error: CleaningError, sandbox: str) -> CleanReport:
    return CleanReport(source=str(source), error_kind=error.kind, error=str(error),
                       sandbox=sandbox)


def _read_capped(path: Path, cap: int) -> bytes:
    with contextlib.suppress(FileNotFoundError), path.open("rb") as handle:
        return handle.read(cap + 1)
    return b""


def _publish(cleaned: Path, final: Path) -> None:
    """Put the cleaned file in place without ever replacing an existing file."""
    if cleaned.is_symlink() or not cleaned.is_file():
        raise WorkerFailed("the worker did not produce a regular file")
    cleaned.chmod(0o600)
    try:
        os.link(cleaned, final)
    except FileExistsError as exc:
        raise OutputError(f"{final} already exists; it was not replaced") from exc
    except OSError:
        with cleaned.open("rb") as reader, final.open("xb") as writer:
            shutil.copyfileobj(reader, writer)


def clean_file(
    src: Path,
    dst_dir: Path,
    *,
    flatten: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    use_sandbox: bool | None = None,
) -> CleanReport:
    """Write a cleaned copy of `src` to `dst_dir/<same name>` and report on it.

    Never raises for a bad file: the report says what failed (`report.ok`).
    `use_sandbox=None` uses bubblewrap if it works here.
    """
    if use_sandbox is None:
        use_sandbox = sandbox_works()
    sandbox = "bubblewrap+rlimits" if use_sandbox else "rlimits"
    source = Path(src)
    try:
        resolved = source.resolve(strict=True)
        if not resolved.is_file():
            raise CleaningError(f"{source} is not a regular file")
    except OSError as exc:
        return _failed(source, CleaningError(f"cannot read {source} ({exc.strerror})"), sandbox)
    except CleaningError as exc:
        return _failed(source, exc, sandbox)
    final = Path(dst_dir).resolve() / source.name
    try:
        final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        return _failed(source, OutputError(f"cannot create {final.parent} ({exc})"), sandbox)
    if final == resolved:
        return _failed(source, OutputError("the output would replace the original"), sandbox)
    if final.exists() or final.is_symlink():
        return _failed(source, OutputError(f"{final} already exists; it was not replaced"),
                       sandbox)
    work = Path(tempfile.mkdtemp(prefix=".lanterne-clean-", dir=final.parent))
    try:
        report = _run(resolved, work, flatten=flatten, limits=limits, sandbox=use_sandbox)
        report.source, report.sandbox = str(source), sandbox
        if report.ok:
            _publish(work / OUTPUT_NAME, final)
            report.output = str(final)
        return report
    except CleaningError as exc:
        return _failed(source, exc, sandbox)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(src: Path, work: Path, *, flatten: bool, limits: Limits, sandbox: bool) -> CleanReport:
    command = [sys.executable, "-I", "-m", "journalist_cli.cleaning.worker",
               "--limits", json.dumps(asdict(limits)), str(src), str(work / OUTPUT_NAME),
               str(work / REPORT_NAME)]
    if flatten:
        command.insert(-3, "--flatten")
    if sandbox:
        command = _bwrap_command(src, work) + command
    env = {**_ENV, "HOME": str(work), "TMPDIR": str(work)}
    with (work / "stderr").open("wb") as errors:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=errors, env=env, cwd=work, start_new_session=True)
        try:
            code = process.wait(timeout=limits.worker_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise WorkerFailed(
                f"gave up after {limits.worker_timeout:.0f} s (a hostile or huge file?)"
            ) from None
    if code < 0:
        what = _SIGNALS.get(signal.Signals(-code), f"died of signal {-code}")
        raise WorkerFailed(f"the worker {what}")
    raw = _read_capped(work / REPORT_NAME, limits.worker_report_bytes)
    if code != 0 or not raw or len(raw) > limits.worker_report_bytes:
        tail = _read_capped(work / "stderr", 64 * 1024).decode("utf-8", "replace").strip()
        last = tail.splitlines()[-1] if tail else f"exit code {code}"
        if "MemoryError" in tail:
            last = "ran out of memory"
        raise WorkerFailed(f"the worker failed: {last}")
    try:
        return CleanReport.from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise WorkerFailed(f"the worker's report was unreadable ({exc})") from exc


def clean_files(
    sources: Sequence[Path],
    dst_dir: Path,
    *,
    flatten: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    jobs: int | None = None,
    use_sandbox: bool | None = None,
) -> Iterator[CleanReport]:
    """`clean_file` for each source, a few workers at a time; reports in input order."""
    if use_sandbox is None:
        use_sandbox = sandbox_works()
    workers = max(1, min(jobs or os.cpu_count() or 1, len(sources) or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(
            lambda src: clean_file(src, dst_dir, flatten=flatten, limits=limits,
                                   use_sandbox=use_sandbox),
            sources,
        )
