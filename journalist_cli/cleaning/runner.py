"""Starting the keyless zygote: every untrusted file is parsed outside `lanterne`.

The `lanterne` process may hold decrypted private keys; it never parses a
received file. For each batch (up to `MAX_BATCH_FILES` files) it starts one
fresh zygote (`python -I -m journalist_cli.cleaning.worker`, never forked,
so it shares no memory with `lanterne`) with a minimal environment, only
paths in its request, and, where bubblewrap works, inside a sandbox without
network that sees read-only system directories, the batch's input files
(read-only) and one private work directory inside the output directory.
The zygote imports the parsers once and forks a child per file; each child
sets its own rlimits (address space, CPU seconds, file size, no core dumps)
and the zygote kills it at the wall-clock timeout, so a hostile file still
fails alone (see `worker`).

Between the two: length-prefixed JSON (`protocol`), one request, one result
per file, each frame capped and every field checked here. This side also
gives up on a zygote that stops answering, publishes each cleaned copy
without ever replacing a file, and yields the reports in input order.
"""

from __future__ import annotations

import contextlib
import functools
import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import journalist_cli
from journalist_cli.cleaning import protocol
from journalist_cli.cleaning.errors import (
    CleaningError,
    OutputError,
    WorkerFailed,
)
from journalist_cli.cleaning.limits import DEFAULT_LIMITS, Limits
from journalist_cli.cleaning.report import CleanReport

# Kept in step with worker.OUTPUT_NAME (not imported: this side stays light).
OUTPUT_NAME = "cleaned"
# One zygote serves at most this many files, and this many bytes of input
# paths: each input is a bubblewrap argument, and arguments are limited.
MAX_BATCH_FILES = 256
_MAX_BATCH_PATH_BYTES = 256 * 1024
# How long past the per-file timeout the zygote may stay silent: it kills a
# child at the timeout itself, so silence beyond this means it is stuck.
_SILENCE_GRACE = 30.0
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C.UTF-8"}


def _bwrap_command(inputs: Iterable[Path], work: Path) -> list[str]:
    """The bubblewrap prefix, or [] where bubblewrap is missing or does not work."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return []
    args = [
        bwrap,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--ro-bind",
        "/usr",
        "/usr",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",  # noqa: S108 (a private tmpfs)
    ]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        path = Path(top)
        if path.is_symlink():
            args += ["--symlink", str(path.readlink()), top]
        elif path.is_dir():
            args += ["--ro-bind", top, top]
    # Only the parts of /etc that loaders, libmagic, fontconfig and perl read.
    for name in (
        "ld.so.cache",
        "fonts",
        "mime.types",
        "magic",
        "magic.mime",
        "alternatives",
        "perl",
        "localtime",
    ):
        if Path("/etc", name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    package_root = Path(journalist_cli.__file__).resolve().parent.parent
    for path in {Path(sys.base_prefix), Path(sys.prefix), package_root / "journalist_cli"}:
        args += ["--ro-bind", str(path), str(path)]
    # The batch's inputs, read-only, each at its own path; writable: only the
    # batch's work directory, never the rest of the output directory.
    for src in sorted(set(inputs)):
        args += ["--ro-bind", str(src), str(src)]
    args += ["--bind", str(work), str(work), "--chdir", str(work)]
    return [*args, "--"]


@functools.cache
def sandbox_works() -> bool:
    """Whether bubblewrap can start the zygote here (it cannot inside some containers).

    Asked once per process: the answer does not change while `lanterne` runs.
    """
    true = shutil.which("true")
    with tempfile.TemporaryDirectory() as tmp:
        prefix = _bwrap_command([Path(sys.executable).resolve()], Path(tmp))
        if not prefix or true is None:
            return False
        try:
            result = subprocess.run([*prefix, true], capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0


def _failed(source: Path, error: CleaningError, sandbox: str) -> CleanReport:
    return CleanReport(source=str(source), error_kind=error.kind, error=str(error), sandbox=sandbox)


def _read_tail(path: Path, size: int) -> str:
    with contextlib.suppress(OSError), path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - size))
        return handle.read().decode("utf-8", "replace").strip()
    return ""


def _publish(cleaned: Path, final: Path, max_bytes: int) -> None:
    """Copy the worker's output to `final`, which must not exist yet.

    The worker's directory is writable by the sandbox, so whatever sits at
    `cleaned` may have been swapped at any moment for a symlink (to a key, an
    original), a FIFO or a hard link. It is opened once, without following a
    link and without blocking on a FIFO; the open file itself is checked
    (`fstat`: a regular file, no other name, within the output cap) and the
    copy is made from that descriptor, never by name, into a new file created
    exclusively. A race can only make the copy fail, never redirect it.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        # The file's own directory may have been swapped for a link as well.
        folder = os.open(cleaned.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            src = os.open(cleaned.name, flags, dir_fd=folder)
        finally:
            os.close(folder)
    except OSError as exc:
        raise WorkerFailed("the worker did not produce a regular file") from exc
    try:
        info = os.fstat(src)
        if not stat.S_ISREG(info.st_mode):
            raise WorkerFailed("the worker did not produce a regular file")
        # A hard link to some other file (an original, say) is not a cleaned copy.
        if info.st_nlink != 1:
            raise WorkerFailed("the worker's output was linked to another file")
        if info.st_size > max_bytes:
            raise WorkerFailed("the worker's output is larger than the output limit")
        try:
            dst = os.open(
                final, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
        except FileExistsError as exc:
            raise OutputError(f"{final} already exists; it was not replaced") from exc
        except OSError as exc:
            raise OutputError(f"cannot write {final} ({exc.strerror})") from exc
        try:
            _copy_fd(src, dst, info.st_size)
            os.fsync(dst)
        except BaseException:
            os.close(dst)
            final.unlink(missing_ok=True)
            raise
        os.close(dst)
    finally:
        os.close(src)


def _copy_fd(src: int, dst: int, size: int) -> None:
    """Exactly `size` bytes from the start of `src` (as fstat saw it) to `dst`."""
    offset = 0
    while offset < size:
        try:
            sent = os.sendfile(dst, src, offset, min(size - offset, 1 << 30))
        except OSError as exc:
            raise WorkerFailed(f"the worker's output could not be copied ({exc.strerror})") from exc
        if sent == 0:
            raise WorkerFailed("the worker's output shrank while it was copied")
        offset += sent


@dataclass(frozen=True)
class _Job:
    """A file that passed the checks done here, before any parsing."""

    index: int  # in the caller's list
    source: Path  # as given, for the report
    resolved: Path
    final: Path


def _check(index: int, source: Path, out_dir: Path, claimed: set[Path]) -> _Job:
    """Checks that need no parsing: a readable regular file, a free output name."""
    try:
        resolved = source.resolve(strict=True)
    except OSError as exc:
        raise CleaningError(f"cannot read {source} ({exc.strerror})") from exc
    if not resolved.is_file():
        raise CleaningError(f"{source} is not a regular file")
    final = out_dir / source.name
    if final == resolved:
        raise OutputError("the output would replace the original")
    if final.exists() or final.is_symlink():
        raise OutputError(f"{final} already exists; it was not replaced")
    if final in claimed:
        raise OutputError(f"another file of this batch is also named {source.name}")
    claimed.add(final)
    return _Job(index, source, resolved, final)


def _batches(jobs: list[_Job]) -> Iterator[list[_Job]]:
    batch: list[_Job] = []
    size = 0
    for job in jobs:
        length = len(os.fsencode(job.resolved)) + 64
        if batch and (len(batch) >= MAX_BATCH_FILES or size + length > _MAX_BATCH_PATH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(job)
        size += length
    if batch:
        yield batch


def _results(
    process: subprocess.Popen[bytes], count: int, limits: Limits
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(position in the batch, report data) from the zygote, each checked, each once."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    frames = protocol.FrameBuffer(limits.worker_report_bytes + protocol.RESULT_OVERHEAD)
    seen: set[int] = set()
    silence = limits.worker_timeout + _SILENCE_GRACE
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while len(seen) < count:
            deadline = time.monotonic() + silence
            while not selector.select(max(0.0, deadline - time.monotonic())):
                if time.monotonic() >= deadline:
                    raise WorkerFailed(f"the cleaning process stopped answering for {silence:g} s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return
            try:
                messages = frames.feed(chunk)
            except protocol.ProtocolError as exc:
                raise WorkerFailed(
                    f"the cleaning process sent an unreadable answer ({exc})"
                ) from exc
            for message in messages:
                index, report = message.get("index"), message.get("report")
                if (
                    set(message) != {"index", "report"}
                    or type(index) is not int
                    or not 0 <= index < count
                    or index in seen
                    or not isinstance(report, dict)
                ):
                    raise WorkerFailed("the cleaning process sent an unexpected answer")
                seen.add(index)
                yield index, report


def _accept(
    job: _Job, work: Path, data: dict[str, Any], sandbox: str, limits: Limits = DEFAULT_LIMITS
) -> CleanReport:
    """A report from the zygote, checked, with its cleaned copy published."""
    try:
        report = CleanReport.from_json(data)
    except (ValueError, KeyError, TypeError) as exc:
        return _failed(
            job.source, WorkerFailed(f"the worker's report was unreadable ({exc})"), sandbox
        )
    report.source, report.sandbox, report.output = str(job.source), sandbox, None
    if report.written:
        try:
            _publish(work / OUTPUT_NAME, job.final, limits.worker_output_bytes)
        except CleaningError as exc:
            return _failed(job.source, exc, sandbox)
        report.output = str(job.final)
    return report


def _stop(process: subprocess.Popen[bytes], *, grace: float = 0.0) -> int:
    """End the zygote and everything it started; return its exit status.

    With a `grace` period it may first exit by itself, as a zygote that
    answered for every file does at once; otherwise it is killed right away.
    """
    with contextlib.suppress(subprocess.TimeoutExpired):
        return process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    return process.wait()


def _run_batch(
    batch: list[_Job],
    out_dir: Path,
    *,
    flatten: bool,
    limits: Limits,
    jobs: int,
    sandbox: bool,
    label: str,
) -> Iterator[tuple[int, CleanReport]]:
    """Clean one batch in one zygote; (index, report) for every job, as each ends."""
    work = Path(tempfile.mkdtemp(prefix=".lanterne-clean-", dir=out_dir))
    process: subprocess.Popen[bytes] | None = None
    done: set[int] = set()
    failure: CleaningError | None = None
    try:
        dirs = [work / str(n) for n in range(len(batch))]
        for directory in dirs:
            directory.mkdir(mode=0o700)
        request = {
            "flatten": flatten,
            "jobs": jobs,
            "limits": asdict(limits),
            "files": [
                {"src": str(j.resolved), "work": str(d)} for j, d in zip(batch, dirs, strict=True)
            ],
        }
        command = [sys.executable, "-I", "-m", "journalist_cli.cleaning.worker"]
        if sandbox:
            command = _bwrap_command((j.resolved for j in batch), work) + command
        env = {**_ENV, "HOME": str(work), "TMPDIR": str(work)}
        with (work / "zygote.stderr").open("wb") as errors:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=env,
                cwd=work,
                start_new_session=True,
            )
        assert process.stdin is not None
        # A zygote that died at once shows as an early end of its answers.
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(protocol.encode(request))
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
        try:
            for n, data in _results(process, len(batch), limits):
                done.add(n)
                yield batch[n].index, _accept(batch[n], dirs[n], data, label, limits)
                shutil.rmtree(dirs[n], ignore_errors=True)
        except WorkerFailed as exc:
            failure = exc
        if len(done) < len(batch):
            # After an early end of its answers the zygote is exiting anyway:
            # a moment to learn why. A stuck or garbling zygote is killed.
            code = _stop(process, grace=1.0 if failure is None else 0.0)
            if failure is None:
                tail = _read_tail(work / "zygote.stderr", 64 * 1024)
                why = tail.splitlines()[-1] if tail else f"exit status {code}"
                failure = WorkerFailed(
                    f"the cleaning process stopped before this file was cleaned ({why})"
                )
            for n, job in enumerate(batch):
                if n not in done:
                    yield job.index, _failed(job.source, failure, label)
    finally:
        if process is not None:
            _stop(process, grace=2.0 if len(done) == len(batch) else 0.0)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        shutil.rmtree(work, ignore_errors=True)


def clean_files(
    sources: Sequence[Path],
    dst_dir: Path,
    *,
    flatten: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    jobs: int | None = None,
    use_sandbox: bool | None = None,
) -> Iterator[CleanReport]:
    """A cleaned copy of each source in `dst_dir`; one report per source, in input order.

    Never raises for a bad file: each report says what failed (`report.ok`),
    and the other files go on. `jobs` files are parsed at a time (default:
    one per CPU). `use_sandbox=None` uses bubblewrap if it works here.
    """
    if use_sandbox is None:
        use_sandbox = sandbox_works()
    label = "bubblewrap+rlimits" if use_sandbox else "rlimits"
    sources = [Path(s) for s in sources]
    ready: dict[int, CleanReport] = {}
    todo: list[_Job] = []
    try:
        out_dir = Path(dst_dir)
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        out_dir = out_dir.resolve()
    except OSError as exc:
        error = OutputError(f"cannot create {dst_dir} ({exc})")
        for source in sources:
            yield _failed(source, error, label)
        return
    claimed: set[Path] = set()
    for index, source in enumerate(sources):
        try:
            todo.append(_check(index, source, out_dir, claimed))
        except CleaningError as exc:
            ready[index] = _failed(source, exc, label)
    workers = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    following = 0
    for batch in _batches(todo):
        for index, report in _run_batch(
            batch,
            out_dir,
            flatten=flatten,
            limits=limits,
            jobs=workers,
            sandbox=use_sandbox,
            label=label,
        ):
            ready[index] = report
            while following in ready:
                yield ready.pop(following)
                following += 1
    while following in ready:
        yield ready.pop(following)
        following += 1


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
    return next(
        iter(clean_files([src], dst_dir, flatten=flatten, limits=limits, use_sandbox=use_sandbox))
    )
