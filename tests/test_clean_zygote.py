"""The zygote: one keyless process per batch, one forked, limited child per file.

`worker.run_batch` is driven here with stand-in cleaners that hang, crash or
blow up, forked from the test process; the real zygote is checked end to end
through `clean_files` (memory limit, environment, protocol).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import journalist_cli.cleaning as cleaning
from journalist_cli.cleaning import Limits, protocol, safexml, worker
from journalist_cli.cleaning.report import CleanReport
from tests import metadata_corpus as corpus

# Real processes end to end: CI runs it, scripts/test.sh --fast does not (under two minutes).
pytestmark = pytest.mark.slow

SECRET = "LNTSECRETpassphrase-must-not-reach-the-zygote"


def tasks(tmp_path: Path, names: list[str]) -> list[worker.Task]:
    made = []
    for name in names:
        src = tmp_path / name
        src.write_text(name)
        work = tmp_path / f"work-{name}"
        work.mkdir()
        made.append(worker.Task(src, work))
    return made


def stand_in(src: Path, out: Path, flatten: bool, limits: Limits) -> CleanReport:
    """A cleaner whose behaviour is named by the file: hang, crash, hog, or copy."""
    name = src.name
    (out.parent / "pid").write_text(str(os.getpid()))
    if name.startswith("hang"):
        helper = subprocess.Popen(["sleep", "600"])
        (out.parent / "helper").write_text(str(helper.pid))
        time.sleep(600)
    elif name.startswith("segv"):
        ctypes.string_at(0)
    elif name.startswith("hog"):
        # One allocation far over the cap: refused at once, nothing touched.
        hoard = bytearray(limits.worker_memory)
        del hoard
    out.write_bytes(src.read_bytes())
    return CleanReport(source=str(src), status="cleaned", output=str(out))


def run(
    tmp_path: Path, names: list[str], limits: Limits, jobs: int = 1
) -> tuple[list[worker.Task], dict[int, dict[str, Any]], list[int]]:
    batch = tasks(tmp_path, names)
    results: dict[int, dict[str, Any]] = {}
    order: list[int] = []

    def emit(index: int, report: dict[str, Any]) -> None:
        assert index not in results
        results[index] = report
        order.append(index)

    worker.run_batch(batch, flatten=False, limits=limits, jobs=jobs, clean=stand_in, emit=emit)
    return batch, results, order


def gone(pid: int) -> bool:
    """Dead: no such process, or a zombie left for init to reap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def headroom(extra: int) -> int:
    """An address-space cap `extra` bytes above this process's current size.

    A forked child starts as large as the test process, whatever that is.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024 + extra
    raise AssertionError("no VmSize in /proc/self/status")


def test_a_hanging_child_is_killed_at_the_timeout_and_the_batch_goes_on(tmp_path: Path) -> None:
    batch, results, order = run(
        tmp_path, ["hang.bin", "a.bin", "b.bin"], Limits(worker_timeout=1.0)
    )
    assert order == [0, 1, 2]  # one at a time: the others waited for the kill
    assert results[0]["error_kind"] == "worker"
    assert "gave up after 1 s" in results[0]["error"]
    # The child and what it started (its process group) are dead.
    assert gone(int((batch[0].work / "pid").read_text()))
    assert gone(int((batch[0].work / "helper").read_text()))
    for task, index in ((batch[1], 1), (batch[2], 2)):
        assert results[index]["status"] == "cleaned"
        assert (task.work / worker.OUTPUT_NAME).read_text() == task.src.name


def test_children_die_with_their_zygote(tmp_path: Path) -> None:
    # lanterne kills a zygote that stops answering; its children must not live on.
    batch = tasks(tmp_path, ["hang.bin"])
    zygote = os.fork()
    if zygote == 0:
        try:
            worker.run_batch(
                batch,
                flatten=False,
                limits=Limits(worker_timeout=600),
                jobs=1,
                clean=stand_in,
                emit=lambda index, report: None,
            )
        finally:
            os._exit(0)
    helper_file = batch[0].work / "helper"
    deadline = time.monotonic() + 30
    while not helper_file.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    child = int((batch[0].work / "pid").read_text())
    helper = int(helper_file.read_text())
    try:
        assert not gone(child)
        os.kill(zygote, signal.SIGKILL)
        os.waitpid(zygote, 0)
        deadline = time.monotonic() + 10
        while not gone(child) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gone(child)
    finally:
        # What the child started outlives it here (outside bubblewrap's pid namespace).
        with contextlib.suppress(ProcessLookupError):
            os.kill(helper, signal.SIGKILL)


def test_a_crashing_child_fails_alone(tmp_path: Path) -> None:
    batch, results, _ = run(tmp_path, ["a.bin", "segv.bin", "b.bin"], Limits(), jobs=2)
    assert results[1]["error_kind"] == "worker"
    assert "segmentation fault" in results[1]["error"]
    assert results[0]["status"] == results[2]["status"] == "cleaned"
    assert int((batch[1].work / "pid").read_text()) != os.getpid()


def test_a_child_over_its_memory_limit_fails_alone(tmp_path: Path) -> None:
    _, results, _ = run(tmp_path, ["hog.bin", "a.bin"], Limits(worker_memory=headroom(256 << 20)))
    assert results[0]["error_kind"] == "worker"
    assert "memory" in results[0]["error"]
    assert results[1]["status"] == "cleaned"


def test_each_child_gets_its_own_limits(tmp_path: Path) -> None:
    seen: dict[str, int] = {}

    def report_limits(src: Path, out: Path, flatten: bool, limits: Limits) -> CleanReport:
        import resource

        values = [
            resource.getrlimit(r)[0]
            for r in (
                resource.RLIMIT_AS,
                resource.RLIMIT_CPU,
                resource.RLIMIT_FSIZE,
                resource.RLIMIT_CORE,
            )
        ]
        out.write_text(",".join(map(str, values)))
        return CleanReport(source=str(src), status="cleaned")

    memory = headroom(512 << 20)
    limits = Limits(worker_memory=memory, worker_cpu_seconds=7, worker_output_bytes=12345678)
    batch = tasks(tmp_path, ["a.bin"])
    worker.run_batch(
        batch,
        flatten=False,
        limits=limits,
        jobs=1,
        clean=report_limits,
        emit=lambda i, r: seen.update({r["status"]: i}),
    )
    assert seen == {"cleaned": 0}
    assert (batch[0].work / worker.OUTPUT_NAME).read_text() == f"{memory},7,12345678,0"
    # ...and the process that forked it keeps its own.
    import resource

    assert resource.getrlimit(resource.RLIMIT_CPU)[0] != 7


def big_png(path: Path) -> Path:
    # 49 Mpx is under the pixel cap, but its 147 MB of pixels are over a 120 MiB cap,
    # and cleaning it takes about a second.
    Image.new("RGB", (7000, 7000), (10, 20, 30)).save(path, compress_level=1)
    return path


@pytest.mark.parametrize("sandbox", [False, True])
def test_a_file_over_the_memory_limit_fails_alone_in_a_real_batch(
    tmp_path: Path, sandbox: bool
) -> None:
    photo = corpus.make_jpeg(tmp_path / "photo.jpg")
    big = big_png(tmp_path / "big.png")
    memo = corpus.make_docx(tmp_path / "memo.docx")
    reports = list(
        cleaning.clean_files(
            [photo.path, big, memo.path],
            tmp_path / "out",
            jobs=1,
            use_sandbox=sandbox,
            limits=Limits(worker_memory=120 * 1024 * 1024),
        )
    )
    assert [r.source for r in reports] == [str(photo.path), str(big), str(memo.path)]
    assert reports[1].error_kind == "worker" and "memory" in reports[1].error
    assert reports[0].ok and reports[2].ok, (reports[0].error, reports[2].error)
    for item in (photo, memo):
        assert corpus.deep_scan(tmp_path / "out" / item.path.name, item.tokens) == set()
    # Nothing of the batch's work directory is left in the output directory.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["memo.docx", "photo.jpg"]


def descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid]
        found += children
        frontier += children
    return found


@pytest.mark.parametrize("sandbox", [False, True])
def test_the_zygote_gets_no_environment_secrets(
    tmp_path: Path, sandbox: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANTERNE_PASSPHRASE", SECRET)
    small = corpus.make_png(tmp_path / "small.png")
    bigs = [big_png(tmp_path / f"big{n}.png") for n in range(2)]
    reports = cleaning.clean_files(
        [*bigs, small.path], tmp_path / "out", jobs=1, use_sandbox=sandbox
    )
    # Biggest first, one at a time: after the first report the zygote is busy
    # with the second big file for about a second.
    assert next(reports).ok
    # The zygote forks the next child just after it answers: look until it is seen.
    deadline = time.monotonic() + 5
    environs: dict[int, bytes] = {}
    while len(environs) < 2 and time.monotonic() < deadline:
        for pid in descendants(os.getpid()):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if any(b"journalist_cli.cleaning.worker" in part for part in cmdline):
                    environs[pid] = Path(f"/proc/{pid}/environ").read_bytes()
        time.sleep(0.01)
    assert [r.ok for r in reports] == [True, True]
    # The zygote and its child (inside bubblewrap: also bubblewrap itself).
    assert len(environs) >= 2
    for environ in environs.values():
        assert SECRET.encode() not in environ
        names = {item.split(b"=", 1)[0] for item in environ.split(b"\0") if item}
        # PWD: bubblewrap sets it for --chdir.
        assert names <= {b"PATH", b"LC_ALL", b"HOME", b"TMPDIR", b"PWD"}, names


def test_the_sandbox_sees_only_the_batch(tmp_path: Path) -> None:
    inputs = [tmp_path / "in" / "a.png", tmp_path / "elsewhere" / "b.png"]
    for path in inputs:
        path.parent.mkdir()
        path.write_bytes(b"x")
    work = tmp_path / "out" / ".work"
    prefix = cleaning.runner._bwrap_command(inputs, work)
    ro = {prefix[i + 1] for i, arg in enumerate(prefix) if arg == "--ro-bind"}
    rw = [prefix[i + 1] for i, arg in enumerate(prefix) if arg == "--bind"]
    assert {str(p) for p in inputs} <= ro
    assert rw == [str(work)]
    assert str(tmp_path / "out") not in ro | set(rw)


def test_files_with_the_same_name_in_one_batch_are_refused_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = corpus.make_png(tmp_path / "one" / "a.png")
    second = corpus.make_jpeg(tmp_path / "two" / "a.png")
    reports = list(cleaning.clean_files([first.path, second.path], tmp_path / "out"))
    assert reports[0].ok, reports[0].error
    assert reports[1].error_kind == "output" and "also named" in reports[1].error
    with Image.open(tmp_path / "out" / "a.png") as image:
        assert image.format == "PNG"


# --- protocol ----------------------------------------------------------------------


def test_frames_survive_arbitrary_splits() -> None:
    messages = [{"index": n, "report": {"text": "é" * n}} for n in range(5)]
    stream = b"".join(protocol.encode(m) for m in messages)
    buffer = protocol.FrameBuffer(cap=1024)
    received = []
    for start in range(0, len(stream), 7):
        received += buffer.feed(stream[start : start + 7])
    assert received == messages
    assert buffer.pending == 0


def test_an_oversized_frame_is_refused_from_its_header() -> None:
    buffer = protocol.FrameBuffer(cap=100)
    with pytest.raises(protocol.ProtocolError, match="limit 100"):
        buffer.feed((101).to_bytes(4, "big"))


@pytest.mark.parametrize("body", [b"[1, 2]", b"\xff\xfe", b"{not json"])
def test_a_frame_that_is_not_a_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.FrameBuffer(cap=100).feed(len(body).to_bytes(4, "big") + body)


@pytest.mark.parametrize(
    "request_",
    [
        None,
        {"files": [], "flatten": False},
        {"files": [], "flatten": False, "jobs": 0, "limits": {}},
        {"files": [], "flatten": "no", "jobs": 1, "limits": {}},
        {"files": [{"src": "relative", "work": "/w"}], "flatten": False, "jobs": 1, "limits": {}},
        {
            "files": [{"src": "/a", "work": "/w", "x": "/y"}],
            "flatten": False,
            "jobs": 1,
            "limits": {},
        },
        {"files": [], "flatten": False, "jobs": 1, "limits": {"no_such_limit": 1}},
    ],
)
def test_the_zygote_refuses_a_malformed_request(request_: dict[str, Any] | None) -> None:
    with pytest.raises(protocol.ProtocolError):
        worker._request(request_)


def test_the_zygote_accepts_a_well_formed_request() -> None:
    tasks_, flatten, limits, jobs = worker._request(
        {
            "files": [{"src": "/in/a.pdf", "work": "/out/w/0"}],
            "flatten": True,
            "jobs": 2,
            "limits": {"worker_timeout": 5.0},
        }
    )
    assert tasks_ == [worker.Task(Path("/in/a.pdf"), Path("/out/w/0"))]
    assert (flatten, limits.worker_timeout, jobs) == (True, 5.0, 2)


def test_lanterne_refuses_unexpected_answers_from_the_zygote(tmp_path: Path) -> None:
    # A stand-in zygote that answers twice for the same file.
    answer = protocol.encode({"index": 0, "report": {}})
    script = f"import sys; sys.stdout.buffer.write({answer + answer!r}); sys.stdout.flush()"
    process = subprocess.Popen(["python3", "-c", script], stdout=subprocess.PIPE)
    try:
        results = cleaning.runner._results(process, 2, Limits())
        assert next(results) == (0, {})
        with pytest.raises(cleaning.WorkerFailed, match="unexpected answer"):
            next(results)
    finally:
        process.wait()
        assert process.stdout is not None
        process.stdout.close()


def test_a_zygote_that_dies_fails_the_rest_of_its_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A hostile child could kill its zygote; lanterne then reports and goes on.
    def killed_zygote(*args: object, **kwargs: Any) -> subprocess.Popen[bytes]:
        process = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        os.killpg(process.pid, signal.SIGKILL)
        return process  # type: ignore[no-any-return]

    real_popen = subprocess.Popen
    monkeypatch.setattr(subprocess, "Popen", killed_zygote)
    item = corpus.make_png(tmp_path / "a.png")
    report = cleaning.clean_file(item.path, tmp_path / "out", use_sandbox=False)
    assert report.error_kind == "worker"
    assert "stopped before this file was cleaned" in report.error
    assert list((tmp_path / "out").iterdir()) == []


# --- XML: the C parser only where no declaration can exist ------------------------------


@pytest.mark.parametrize(
    ("data", "fast"),
    [
        (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><a/>', True),
        (b"\xef\xbb\xbf<a><!-- note --><![CDATA[x]]></a>", True),
        (b"<a>plain</a>", True),
        (b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', False),
        (b"<a><!-- <!DOCTYPE in a comment --></a>", False),
        (b'<?xml version="1.0" encoding="ISO-8859-1"?><a/>', False),
        (b"<?xml version='1.0' encoding='utf-16'?><a/>", False),
        (b'<?xml version="1.0" encoding="x"?><a/>', False),
        ('<?xml version="1.0"?><a/>'.encode("utf-16"), False),
        ("<a/>".encode("utf-16-le"), False),
    ],
)
def test_only_plain_utf8_without_declarations_takes_the_fast_path(data: bytes, fast: bool) -> None:
    assert safexml.declaration_free(data) is fast


def test_entities_in_utf16_are_still_refused() -> None:
    laughs = (
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE d [<!ENTITY a "aaaa">'
        '<!ENTITY b "&a;&a;&a;&a;">]><d>&b;</d>'
    ).encode("utf-16")
    with pytest.raises(cleaning.HostileFile, match="DTD or entities"):
        safexml.parse(laughs, name="t", max_depth=10)


def test_both_parsers_build_the_same_tree(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET
    import zipfile

    memo = corpus.make_docx(tmp_path / "memo.docx")
    with zipfile.ZipFile(memo.path) as archive:
        parts = [archive.read(n) for n in archive.namelist() if n.endswith((".xml", ".rels"))]
    assert all(safexml.declaration_free(p) for p in parts)
    for part in parts:
        fast = safexml.parse(part, name="t", max_depth=256)
        # A comment at the end sends the same part down the defusedxml path.
        slow = safexml.parse(part + b"<!-- <!x -->", name="t", max_depth=256)
        assert fast.namespaces == slow.namespaces
        assert ET.tostring(fast.root) == ET.tostring(slow.root)


def test_undefined_entities_are_malformed_on_the_fast_path() -> None:
    with pytest.raises(cleaning.MalformedFile):
        safexml.parse(b"<a>&undefined;</a>", name="t", max_depth=10)


def test_the_depth_cap_counts_the_root_as_level_one() -> None:
    nested = b"<a>" * 3 + b"</a>" * 3
    assert safexml.parse(nested, name="t", max_depth=3).root.tag == "a"
    with pytest.raises(cleaning.HostileFile, match="deeper than 2"):
        safexml.parse(nested, name="t", max_depth=2)


# --- publishing the worker's output ------------------------------------------------

_FLIPPER = r"""
import os, sys
folder, secret = sys.argv[1], sys.argv[2]
real, link, out = (os.path.join(folder, n) for n in ("real", "link", "cleaned"))
while True:
    # A worker-like attacker: its output is a regular file one instant, a
    # symlink to the journalist's secret the next, swapped atomically.
    with open(real, "wb") as f:
        f.write(b"cleaned content")
    os.rename(real, out)
    os.symlink(secret, link)
    os.rename(link, out)
"""


def _publish_report() -> dict[str, Any]:
    return CleanReport(source="x", status="cleaned", output="x").to_json()


def test_publishing_cannot_be_redirected_by_a_worker_swapping_its_output(
    tmp_path: Path,
) -> None:
    """The worker's directory is writable from the sandbox: whatever it puts at its
    output name, at whatever moment, the published file is never the secret, never a
    link, and the copy comes from the file that was checked."""
    secret = tmp_path / "alice.identity"
    secret.write_bytes(b"PRIVATE KEY MATERIAL")
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    flipper = subprocess.Popen(["python3", "-c", _FLIPPER, str(work), str(secret)])
    try:
        while not (work / "cleaned").is_symlink():  # the attacker is at work
            assert flipper.poll() is None
        published = refused = 0
        for n in range(1000):
            job = cleaning.runner._Job(0, Path("in"), Path("in"), out / f"{n}.docx")
            report = cleaning.runner._accept(job, work, _publish_report(), "test")
            final = out / f"{n}.docx"
            assert not final.is_symlink()
            if report.ok:
                published += 1
                assert final.read_bytes() == b"cleaned content", n
            else:
                refused += 1
                assert not final.exists()
                assert report.error_kind in ("worker", "error")
        print(f"{published} published, {refused} refused")
        assert secret.stat().st_mode & 0o777 == 0o644 & ~_umask()  # never chmod-ed through a link
    finally:
        flipper.kill()
        flipper.wait()
    assert secret.read_bytes() == b"PRIVATE KEY MATERIAL"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("what", ["symlink", "fifo", "hard link", "directory", "too big"])
def test_publishing_refuses_what_is_not_a_fresh_regular_file(tmp_path: Path, what: str) -> None:
    import threading

    secret = tmp_path / "secret"
    secret.write_bytes(b"PRIVATE")
    work = tmp_path / "work"
    work.mkdir()
    output = work / "cleaned"
    if what == "symlink":
        output.symlink_to(secret)
    elif what == "fifo":
        os.mkfifo(output)
    elif what == "hard link":
        os.link(secret, output)
    elif what == "directory":
        output.mkdir()
    else:
        output.write_bytes(b"x" * 2000)
    final = tmp_path / "final.pdf"
    job = cleaning.runner._Job(0, Path("in"), Path("in"), final)
    limits = Limits(worker_output_bytes=1000)
    reports: list[CleanReport] = []
    # A FIFO must not make `lanterne` wait for a writer that never comes.
    thread = threading.Thread(
        target=lambda: reports.append(
            cleaning.runner._accept(job, work, _publish_report(), "test", limits)
        ),
        daemon=True,
    )
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "publishing blocked"
    [report] = reports
    assert not report.ok and report.error_kind == "worker"
    assert not final.exists() and not final.is_symlink()


def test_publishing_refuses_a_work_directory_swapped_for_a_link(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "cleaned").write_bytes(b"someone else's file")
    work = tmp_path / "work"
    work.symlink_to(elsewhere)
    final = tmp_path / "final.pdf"
    job = cleaning.runner._Job(0, Path("in"), Path("in"), final)
    report = cleaning.runner._accept(job, work, _publish_report(), "test")
    assert not report.ok and not final.exists()
