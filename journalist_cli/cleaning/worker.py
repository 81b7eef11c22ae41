"""The keyless zygote: imports the parsers once per batch, forks one child per file.

`runner` starts it fresh as `python -I -m journalist_cli.cleaning.worker`
(never forked from `lanterne`, so it shares no memory and no keys with it),
with a minimal environment and, where bubblewrap works, inside one sandbox
per batch. It reads one batch request from stdin (`protocol`), limits itself,
imports every parser, and then, for each file, forks a child that limits
itself again before it touches the file: address space, CPU seconds, file
size, no core dumps. At most `jobs` children run at once. The zygote reads
each child's JSON report from a pipe (capped), kills a child's whole process
group at the wall-clock timeout, turns a crash into a failed report for that
file alone, and writes one result frame per file to stdout.

The fork is what makes a batch fast (no interpreter start and no imports per
file) and what keeps the per-file isolation that matters against a hostile
file: each child has its own memory, CPU and time limits and its own work
directory, and its crash or death is that file's failure only.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import resource
import selectors
import signal
import sys
import tempfile
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from journalist_cli.cleaning import protocol
from journalist_cli.cleaning.errors import CleaningError, WorkerFailed
from journalist_cli.cleaning.limits import Limits
from journalist_cli.cleaning.report import CleanReport

OUTPUT_NAME = "cleaned"
STDERR_NAME = "stderr"
MAX_JOBS = 64
SIGNALS = {
    signal.SIGKILL: "was killed (out of memory or time?)",
    signal.SIGXCPU: "ran out of CPU time",
    signal.SIGXFSZ: "tried to write more than the output limit",
    signal.SIGSEGV: "crashed (segmentation fault)",
    signal.SIGABRT: "aborted",
}
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4

# engine.run's shape: clean `src` into `out`, return the report, never raise.
Clean = Callable[[Path, Path, bool, Limits], CleanReport]
# Called once per task, as each ends: (task index, report as JSON data).
Emit = Callable[[int, dict[str, Any]], None]


@dataclass(frozen=True)
class Task:
    """One file: the input, and a private directory for its output and stderr."""

    src: Path
    work: Path


@dataclass
class _Child:
    index: int
    task: Task
    pid: int
    pidfd: int
    reader: int
    deadline: float
    data: bytearray = field(default_factory=bytearray)
    too_big: bool = False


def limit_self(limits: Limits, *, cpu: bool = True) -> None:
    """Cap this process: address space, file size, no core dumps, and CPU if `cpu`."""
    caps = [
        (resource.RLIMIT_AS, limits.worker_memory),
        (resource.RLIMIT_FSIZE, limits.worker_output_bytes),
        (resource.RLIMIT_CORE, 0),
    ]
    if cpu:
        caps.append((resource.RLIMIT_CPU, limits.worker_cpu_seconds))
    for which, value in caps:
        resource.setrlimit(which, (value, value))


def _prctl(option: int, value: int) -> None:
    # Best effort: where prctl is missing, the rlimits and the sandbox still hold.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def _not_dumpable() -> None:
    """Keep children from reading the zygote's memory or file descriptors.

    A child is the same user as the zygote, and a child that a hostile file
    took over could otherwise ptrace it or open /proc/<zygote>/mem and fd/
    (the zygote relays the other files' reports). Children inherit the flag,
    so they cannot read each other either.
    """
    _prctl(_PR_SET_DUMPABLE, 0)


def _failed(task: Task, error: CleaningError) -> dict[str, Any]:
    return CleanReport(source=str(task.src), error_kind=error.kind, error=str(error)).to_json()


def _child(
    task: Task, *, flatten: bool, limits: Limits, clean: Clean, writer: int, zygote: int
) -> NoReturn:
    """The forked child: limit itself, clean one file, send the report, exit."""
    code = 1
    try:
        # Its own process group, so that a timeout also kills what it started
        # (pdftoppm, mat2); and killed with the zygote, which `lanterne` kills
        # if it gives up on the batch (the group kill would miss this group).
        os.setpgid(0, 0)
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != zygote:
            os._exit(1)  # the zygote died before the line above
        # Nothing of the zygote's: not its pipes to `lanterne` (fd 0 and 1),
        # not the other children's pipes, nothing a hung child could hold open.
        os.closerange(3, writer)
        os.closerange(writer + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.close(null)
        errors = os.open(task.work / STDERR_NAME, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(errors, 2)
        os.close(errors)
        # A fresh writer on the new fd 2: nothing buffered by the zygote, and
        # tracebacks land in this file's stderr even where sys.stderr was
        # replaced (under pytest, say).
        sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
        os.chdir(task.work)
        os.environ["HOME"] = os.environ["TMPDIR"] = str(task.work)
        tempfile.tempdir = None
        limit_self(limits)
        report = clean(task.src, task.work / OUTPUT_NAME, flatten, limits)
        payload = memoryview(json.dumps(report.to_json()).encode("utf-8"))
        while payload:
            payload = payload[os.write(writer, payload) :]
        code = 0
    except BaseException:  # the child must reach os._exit, whatever happened
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stderr.flush()
        # Never return into the zygote's loop, never run its cleanup.
        os._exit(code)


def _stderr_tail(task: Task) -> str:
    with contextlib.suppress(OSError), (task.work / STDERR_NAME).open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 64 * 1024))
        return handle.read().decode("utf-8", "replace").strip()
    return ""


def _outcome(child: _Child, status: int, limits: Limits, *, timed_out: bool) -> dict[str, Any]:
    """The report to send for a child that ended (or was ended)."""
    task = child.task
    if timed_out:
        return _failed(
            task,
            WorkerFailed(f"gave up after {limits.worker_timeout:g} s (a hostile or huge file?)"),
        )
    if child.too_big:
        return _failed(task, WorkerFailed("the worker's report was larger than the limit"))
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        what = SIGNALS.get(signal.Signals(number), f"died of signal {number}")
        return _failed(task, WorkerFailed(f"the worker {what}"))
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or not child.data:
        tail = _stderr_tail(task)
        last = tail.splitlines()[-1] if tail else f"exit code {code}"
        if "MemoryError" in tail:
            last = "ran out of memory"
        return _failed(task, WorkerFailed(f"the worker failed: {last}"))
    try:
        report = json.loads(bytes(child.data))
    except ValueError as exc:
        return _failed(task, WorkerFailed(f"the worker's report was unreadable ({exc})"))
    if not isinstance(report, dict):
        return _failed(task, WorkerFailed("the worker's report was not a JSON object"))
    return report


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def run_batch(
    tasks: Sequence[Task], *, flatten: bool, limits: Limits, jobs: int, clean: Clean, emit: Emit
) -> None:
    """Clean every task in its own forked child, at most `jobs` at once.

    `emit` gets exactly one report per task, in the order the children end.
    Returns when every child has ended and been reaped.
    """
    selector = selectors.DefaultSelector()
    # Biggest files first: the batch ends sooner when its longest job does not
    # start last. (Only the size is read here; the zygote parses nothing.)
    pending = deque(sorted(enumerate(tasks), key=lambda item: -_size(item[1].src)))
    running: dict[int, _Child] = {}

    def start(index: int, task: Task) -> None:
        reader, writer = os.pipe()
        # Whatever sits in the zygote's buffers would otherwise be written twice.
        sys.stdout.flush()
        sys.stderr.flush()
        zygote = os.getpid()
        pid = os.fork()
        if pid == 0:
            _child(task, flatten=flatten, limits=limits, clean=clean, writer=writer, zygote=zygote)
        os.close(writer)
        # Also set here: the kill at the timeout must not depend on the child
        # having got that far.
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        os.set_blocking(reader, False)
        child = _Child(
            index, task, pid, os.pidfd_open(pid), reader, time.monotonic() + limits.worker_timeout
        )
        running[index] = child
        selector.register(reader, selectors.EVENT_READ, (child, "data"))
        selector.register(child.pidfd, selectors.EVENT_READ, (child, "exit"))

    def drain(child: _Child) -> None:
        """Read what the pipe holds now; stop listening at its end."""
        while not child.too_big:
            try:
                chunk = os.read(child.reader, 1 << 16)
            except BlockingIOError:
                return
            if not chunk:
                with contextlib.suppress(KeyError, ValueError):
                    selector.unregister(child.reader)
                return
            child.data += chunk
            if len(child.data) > limits.worker_report_bytes:
                child.too_big = True

    def finish(child: _Child, *, timed_out: bool) -> None:
        # Kills the child on a timeout or an oversized report, and in every
        # case whatever it left running in its group.
        for kill in (os.killpg, os.kill):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(child.pid, signal.SIGKILL)
        _, status = os.waitpid(child.pid, 0)
        if not timed_out:
            drain(child)
        for fd in (child.reader, child.pidfd):
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(fd)
            os.close(fd)
        del running[child.index]
        emit(child.index, _outcome(child, status, limits, timed_out=timed_out))

    try:
        while pending or running:
            while pending and len(running) < jobs:
                start(*pending.popleft())
            wait = min(c.deadline for c in running.values()) - time.monotonic()
            for key, _ in selector.select(max(0.0, wait)):
                child, what = key.data
                if child.index not in running:
                    continue
                drain(child)
                if child.too_big or what == "exit":
                    finish(child, timed_out=False)
            now = time.monotonic()
            for child in [c for c in running.values() if c.deadline <= now]:
                finish(child, timed_out=True)
    finally:
        # Only reached with children left if `emit` failed (lanterne went away).
        for child in running.values():
            with contextlib.suppress(OSError):
                os.killpg(child.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(child.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child.pid, 0)
        selector.close()


def _request(message: dict[str, Any] | None) -> tuple[list[Task], bool, Limits, int]:
    """The batch request, checked field by field."""
    if message is None:
        raise protocol.ProtocolError("no batch request")
    files, flatten, jobs = message.get("files"), message.get("flatten"), message.get("jobs")
    if not isinstance(files, list) or not isinstance(flatten, bool) or type(jobs) is not int:
        raise protocol.ProtocolError("a batch request without files, flatten or jobs")
    if not 1 <= jobs <= MAX_JOBS:
        raise protocol.ProtocolError(f"jobs must be 1..{MAX_JOBS}")
    tasks = []
    for item in files:
        if (
            not isinstance(item, dict)
            or set(item) != {"src", "work"}
            or not all(isinstance(v, str) and v.startswith("/") for v in item.values())
        ):
            raise protocol.ProtocolError("a file entry that is not two absolute paths")
        tasks.append(Task(Path(item["src"]), Path(item["work"])))
    try:
        limits = Limits(**message["limits"])
    except (KeyError, TypeError) as exc:
        raise protocol.ProtocolError(f"unusable limits ({exc})") from exc
    return tasks, flatten, limits, jobs


def _warm_up() -> Clean:
    """Import every parser and load what each loads lazily, once for all children."""
    import magic

    # Only the Pillow plugins the cleaners open or save (images.PILLOW_FORMATS,
    # PPM for --flatten): Image.init() would load all forty of them.
    from PIL import (  # noqa: F401 (imported for the children)
        GifImagePlugin,
        JpegImagePlugin,
        PngImagePlugin,
        PpmImagePlugin,
        TiffImagePlugin,
        WebPImagePlugin,
    )

    from journalist_cli.cleaning import (  # noqa: F401 (imported for the children)
        audio,
        engine,
        flatten,
        images,
        mat2_backend,
        office,
        pdf,
    )

    magic.from_buffer(b"%PDF-1.7\n", mime=True)  # loads the magic database

    def clean(src: Path, out: Path, flatten_pixels: bool, limits: Limits) -> CleanReport:
        return engine.run(src, out, flatten_pixels=flatten_pixels, limits=limits)

    return clean


def main() -> int:
    """Zygote entry point: one batch request on stdin, one result frame per file on stdout.

    Returns only on a bad request (exit status 2); a batch ends in os._exit(0).
    """
    _not_dumpable()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    try:
        tasks, flatten, limits, jobs = _request(
            protocol.read_frame(stdin, protocol.MAX_REQUEST_BYTES)
        )
    except protocol.ProtocolError as exc:
        print(f"lanterne-clean-worker: {exc}", file=sys.stderr)
        return 2
    # The zygote's own caps (no CPU cap: it lives for the whole batch); each
    # child adds the CPU cap before it touches its file.
    limit_self(limits, cpu=False)
    clean = _warm_up()
    # Objects from before the fork stay out of the collector's sight, so the
    # children do not copy the zygote's pages just by scanning them.
    gc.freeze()

    def emit(index: int, report: dict[str, Any]) -> None:
        stdout.write(protocol.encode({"index": index, "report": report}))
        stdout.flush()

    run_batch(tasks, flatten=flatten, limits=limits, jobs=jobs, clean=clean, emit=emit)
    # Every child is reaped and every answer flushed: skip the interpreter's
    # teardown of all those modules, `lanterne` is waiting for this exit.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
