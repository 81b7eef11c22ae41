"""Opening what sources sent: manifests, file names, decryption and cleaning.

Everything here works offline, from the vault. A submission's manifest (an
envelope) says what its other objects are: the message, and files with their
names, types and sizes. A manifest is authenticated but not trusted: it was
written by a browser or, without JavaScript, by the server, and file names
are whatever the source's machine (or an attacker) chose. So names are
sanitised, sizes checked against what decrypts, and objects the manifest
names must belong to the same submission.

``decrypt_source`` writes, per submission::

    OUT/<designation>/<received_on>-<submission id[:8]>/
        message.txt          the message, as sent
        answers.txt          the answers to the instance's questions, if any
        files.json           manifest names, saved names, types, sizes
        original/<name>      the files byte for byte (evidence)
        cleaned/<name>       metadata-free copies (journalist_cli.cleaning)
        cleaning.json        what cleaning found, removed and flagged

It is built in a hidden ``.part`` directory and renamed into place at the
end, once every file in it is on disk (fsynced by a background thread while
the next file decrypts), so a submission directory is complete or absent;
existing ones are left alone, which makes running ``decrypt`` again cheap.

Two sources never share a folder, and two submissions never share one: a
designation another source of the vault shares gets a short id
(``wise-otter-1a2b3c4d``), submission ids sharing their first 8 characters
are written in full, and each submission folder holds a marker file
(``MARKER``) with its source and submission ids, so a folder is reused only
by the source or submission that made it. A submission that cannot be decrypted (altered
object, bad manifest) is reported in its result and the others go on.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import envelope
from journalist_cli import designations, safe_text
from journalist_cli.cleaning import CleanReport, clean_files
from journalist_cli.durable import Flusher, fsync_path
from journalist_cli.vault import ObjectRecord, SourceRecord, SubmissionRecord, Vault
from journalist_cli.workflow_errors import ObjectRefused, OutputConflict, VaultError

MANIFEST_TYPE = "lanterne-manifest/v1"
MAX_MANIFEST_BYTES = 16 << 20
DECRYPT_WORKERS = 2
MAX_SHOWN_TEXT = 1 << 20
MAX_NAME_BYTES = 200
MAX_EXTENSION = 16
MAX_FIELD_CHARS = 4096
MARKER = ".lanterne-id"  # in each submission folder: the source and submission it holds
WINDOWS_FORBIDDEN = set('<>:"/\\|?*')
RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{p}{i}" for p in ("COM", "LPT") for i in range(10)
}
# Control, format (bidi overrides like U+202E), surrogate, private use, line/paragraph separators.
DROPPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


# --- File names ----------------------------------------------------------------


def _cut_utf8(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def sanitise_name(name: str, fallback: str = "file") -> str:
    """A file name safe on Linux, macOS and Windows, close to what the source sent.

    No path separators, control or bidi-override characters, leading dots,
    dashes or spaces, trailing dots or spaces, Windows-reserved names or characters;
    at most ``MAX_NAME_BYTES`` bytes of UTF-8, keeping a short extension.
    """
    text = unicodedata.normalize("NFC", name)
    out = []
    for ch in text:
        if ch in "\t\n\r\x0b\x0c":
            ch = " "  # whitespace controls separate words
        elif unicodedata.category(ch) in DROPPED_CATEGORIES:
            continue
        out.append("_" if ch in WINDOWS_FORBIDDEN else ch)
    cleaned = " ".join("".join(out).split())  # tabs and runs of spaces become one space
    cleaned = cleaned.lstrip(". ").rstrip(". ")
    if not cleaned:
        cleaned = fallback
    if cleaned.startswith("-"):
        cleaned = "_" + cleaned[1:]  # "-rf" would be read as an option by the next command
    stem, dot, ext = cleaned.rpartition(".")
    if not dot or not stem or len(ext) > MAX_EXTENSION or " " in ext:
        stem, ext = cleaned, ""
    if stem.split(".")[0].upper().rstrip() in RESERVED:
        stem = "_" + stem
    suffix = f".{ext}" if ext else ""
    stem = _cut_utf8(stem, MAX_NAME_BYTES - len(suffix.encode("utf-8")))
    if not suffix:
        stem = stem.rstrip(". ")  # Windows drops trailing dots and spaces
    return (stem or fallback) + suffix


def unique_names(names: Iterable[str]) -> list[str]:
    """Sanitised names, de-duplicated case-insensitively: "a.pdf", "a (2).pdf", …"""
    used: set[str] = set()
    result = []
    for raw in names:
        name = sanitise_name(raw)
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        candidate, n = name, 1
        while candidate.casefold() in used:
            n += 1
            tag = f" ({n})"
            suffix = f".{ext}" if ext else ""
            room = MAX_NAME_BYTES - len((tag + suffix).encode("utf-8"))
            candidate = _cut_utf8(stem, room) + tag + suffix
        used.add(candidate.casefold())
        result.append(candidate)
    return result


# --- Manifests -------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestFile:
    object: str
    name: str
    type: str
    size: int


@dataclass(frozen=True)
class Answer:
    id: str
    question: str
    answer: str


@dataclass(frozen=True)
class Manifest:
    received_on: str | None
    language: str | None
    follow_up: bool
    message_object: str | None
    message_size: int | None
    files: tuple[ManifestFile, ...]
    answers: tuple[Answer, ...]

    def object_ids(self) -> list[str]:
        ids = [f.object for f in self.files]
        return [self.message_object, *ids] if self.message_object else ids


class ManifestError(ObjectRefused):
    """A manifest decrypted but does not describe a submission in a form we accept."""


def _text(doc: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = doc.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ManifestError(f"the manifest has no valid {key!r}")
    return value[:MAX_FIELD_CHARS]


def _size(doc: dict[str, Any], key: str) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ManifestError(f"the manifest has no valid {key!r}")
    return value


def parse_manifest(data: bytes) -> Manifest:
    """The manifest's JSON, checked field by field (unknown fields are ignored)."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestError("the manifest is not UTF-8 JSON") from exc
    if not isinstance(doc, dict) or doc.get("type") != MANIFEST_TYPE:
        raise ManifestError("the manifest is not a lanterne-manifest/v1 document")
    message = doc.get("message")
    if message is not None and not isinstance(message, dict):
        raise ManifestError("the manifest's 'message' is malformed")
    files_raw = doc.get("files", [])
    answers_raw = doc.get("answers", [])
    if not isinstance(files_raw, list) or not isinstance(answers_raw, list):
        raise ManifestError("the manifest's 'files' or 'answers' is not a list")
    files = []
    for f in files_raw:
        if not isinstance(f, dict):
            raise ManifestError("a file entry of the manifest is malformed")
        files.append(
            ManifestFile(
                object=_text(f, "object"),
                name=_text(f, "name", required=False),
                type=_text(f, "type", required=False),
                size=_size(f, "size"),
            )
        )
    answers = []
    for a in answers_raw:
        if not isinstance(a, dict):
            raise ManifestError("an answer in the manifest is malformed")
        answers.append(
            Answer(_text(a, "id", required=False), _text(a, "question"), _text(a, "answer"))
        )
    ids = [f.object for f in files] + ([_text(message, "object")] if message else [])
    if len(set(ids)) != len(ids):
        raise ManifestError("the manifest names the same object twice")
    received = doc.get("received_on")
    language = doc.get("language")
    return Manifest(
        received_on=received if isinstance(received, str) else None,
        language=language if isinstance(language, str) else None,
        follow_up=doc.get("follow_up") is True,
        message_object=_text(message, "object") if message else None,
        message_size=_size(message, "size") if message else None,
        files=tuple(files),
        answers=tuple(answers),
    )


# --- Decryption ------------------------------------------------------------------


def _refused(obj: ObjectRecord, exc: envelope.EnvelopeError) -> ObjectRefused:
    who = f"{designations.designation(obj.source_id)} ({obj.source_id[: designations.SHORT_ID]})"
    return ObjectRefused(
        f"{who}: {obj.kind} object {obj.id} was refused: {exc}. "
        "Nothing from it was written; pull it again, and if it fails again, tell your admin."
    )


def _require(vault: Vault, obj: ObjectRecord) -> Path:
    path = vault.object_path(obj.id)
    if not obj.present or not path.is_file():
        raise VaultError(
            f"{obj.kind} object {obj.id} is not in the vault yet: run `lanterne pull`"
            " (or import a bundle) first"
        )
    return path


def open_small(
    vault: Vault, obj: ObjectRecord, keys: Sequence[envelope.Identity], limit: int
) -> bytes:
    """Decrypt a small object (manifest, reply, note) in memory."""
    path = _require(vault, obj)
    if path.stat().st_size > limit + (1 << 20):
        raise ObjectRefused(f"{obj.kind} object {obj.id} is larger than a {obj.kind} can be")
    try:
        return envelope.decrypt_bytes(path.read_bytes(), keys)
    except envelope.EnvelopeError as exc:
        raise _refused(obj, exc) from exc


def _new_file(path: Path) -> BinaryIO:
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def decrypt_to(
    vault: Vault, obj: ObjectRecord, keys: Sequence[envelope.Identity], dst: Path, flusher: Flusher
) -> int:
    """Stream-decrypt an object into the new file ``dst`` and hand it to ``flusher``.

    ``dst`` lies in a work directory that is thrown away if anything fails.
    """
    path = _require(vault, obj)
    try:
        with path.open("rb") as fin, _new_file(dst) as fout:
            envelope.decrypt(fin, fout, keys)
            size = fout.tell()
    except envelope.EnvelopeError as exc:
        raise _refused(obj, exc) from exc
    flusher.fsync(dst)
    return size


def read_manifest(
    vault: Vault, sub: SubmissionRecord, keys: Sequence[envelope.Identity]
) -> Manifest:
    manifests = sub.of_kind("manifest")
    if len(manifests) != 1:
        raise ManifestError(f"submission {sub.id} has {len(manifests)} manifests instead of one")
    manifest = parse_manifest(open_small(vault, manifests[0], keys, MAX_MANIFEST_BYTES))
    ours = {o.id: o.kind for o in sub.objects}
    for oid in manifest.object_ids():
        expected = "message" if oid == manifest.message_object else "file"
        if ours.get(oid) != expected:
            raise ManifestError(
                f"the manifest of submission {sub.id} names an object of another submission"
            )
    return manifest


@dataclass
class SavedFile:
    name: str  # as the manifest says
    saved_as: str  # sanitised, de-duplicated
    type: str
    size: int


@dataclass
class DecryptedSubmission:
    submission_id: str
    directory: Path
    skipped: bool = False
    message: bool = False
    files: list[SavedFile] = field(default_factory=list)
    cleaning: list[CleanReport] = field(default_factory=list)
    error: ObjectRefused | VaultError | None = None  # set: nothing of it was written


def submission_dirname(sub: SubmissionRecord, siblings: Sequence[SubmissionRecord] = ()) -> str:
    """``<received_on>-<id[:8]>``, or the whole id when a sibling's id begins the same way."""
    short = sub.id[:8]
    if any(s.id != sub.id and s.id[:8] == short for s in siblings):
        short = sub.id
    return f"{sub.received_on}-{short}"


def _owner(directory: Path) -> tuple[str, str] | None:
    """(source id, submission id) from a submission folder's marker, if it has one."""
    try:
        lines = (directory / MARKER).read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return None
    return (lines[0], lines[1]) if len(lines) == 2 else ("", "")


def _write_marker(directory: Path, source_id: str, submission_id: str) -> None:
    fd = os.open(directory / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(f"{source_id}\n{submission_id}\n")


def _holds_only(folder: Path, source_id: str, names: set[str]) -> bool | None:
    """Whether every submission folder in ``folder`` is ``source_id``'s (by its
    marker, or for folders written before markers, by its name); None if it
    holds none."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    for entry in entries:
        if entry.is_symlink() or not entry.is_dir():
            return False
        owner = _owner(entry)
        if (owner[0] != source_id) if owner else (entry.name not in names):
            return False
    return True if entries else None


def source_folder(
    out_dir: Path,
    source_id: str,
    subs: Sequence[SubmissionRecord],
    others: Iterable[str],
    language: designations.Language = "en",
) -> Path:
    """The folder of ``source_id`` under ``out_dir``: its own, never another source's.

    The folder it already has (every submission folder in it is this
    source's), else the first of ``designations.folder_names`` that is free:
    the plain designation only while no other source of the vault shares it.
    """
    names = {submission_dirname(s, subs) for s in subs}
    free = designations.folder_names(source_id, others, language)
    for name in dict.fromkeys([*designations.folder_names(source_id, [], language), *free]):
        path = out_dir / name
        if path.is_dir() and not path.is_symlink() and _holds_only(path, source_id, names):
            return path
    for name in free:
        path = out_dir / name
        if not os.path.lexists(path):
            return path
        if path.is_dir() and not path.is_symlink() and _holds_only(path, source_id, names) is None:
            return path  # an empty folder
    raise OutputConflict(
        f"every folder name for source {source_id} under {out_dir} is taken by something"
        " else; choose another --out"
    )


def _mkdir_private(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _write_text(path: Path, text: str, flusher: Flusher) -> None:
    with _new_file(path) as out:
        out.write(text.encode("utf-8"))
    flusher.fsync(path)


def decrypt_submission(
    vault: Vault,
    sub: SubmissionRecord,
    keys: Sequence[envelope.Identity],
    out_dir: Path,
    *,
    clean: bool = True,
    siblings: Sequence[SubmissionRecord] = (),
) -> DecryptedSubmission:
    """Decrypt one submission into ``out_dir/<received_on>-<id8>`` (see the module doc)."""
    final = out_dir / submission_dirname(sub, siblings)
    result = DecryptedSubmission(sub.id, final)
    if os.path.lexists(final):
        owner = _owner(final)
        if owner is not None and owner != (sub.source_id, sub.id):
            raise OutputConflict(f"{final} holds another submission ({owner[1]}); left alone")
        result.skipped = True
        return result
    manifest = read_manifest(vault, sub, keys)
    _mkdir_private(out_dir)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=out_dir))
    try:
        with Flusher() as flusher:
            _write_marker(work, sub.source_id, sub.id)
            _decrypt_into(vault, sub, manifest, keys, work, result, flusher, clean=clean)
        for directory in (work / "original", work / "cleaned", work):
            if directory.is_dir():
                fsync_path(directory)
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    fsync_path(out_dir)
    return result


def _decrypt_into(
    vault: Vault,
    sub: SubmissionRecord,
    manifest: Manifest,
    keys: Sequence[envelope.Identity],
    work: Path,
    result: DecryptedSubmission,
    flusher: Flusher,
    *,
    clean: bool,
) -> None:
    by_id = {o.id: o for o in sub.objects}
    if manifest.message_object:
        decrypt_to(vault, by_id[manifest.message_object], keys, work / "message.txt", flusher)
        result.message = True
    if manifest.answers:
        _write_text(
            work / "answers.txt",
            safe_text.file_text("".join(f"{a.question}\n{a.answer}\n\n" for a in manifest.answers)),
            flusher,
        )
    named = list(manifest.files)
    unnamed = [o for o in sub.of_kind("file") if o.id not in {f.object for f in named}]
    named += [ManifestFile(o.id, f"unnamed-{i + 1}", "", -1) for i, o in enumerate(unnamed)]
    originals = work / "original"
    _mkdir_private(originals)
    for entry, saved_as in zip(named, unique_names(f.name for f in named), strict=True):
        size = decrypt_to(vault, by_id[entry.object], keys, originals / saved_as, flusher)
        if entry.size >= 0 and size != entry.size:
            raise ManifestError(
                f"{saved_as}: {size} bytes decrypted, the manifest says {entry.size}"
            )
        result.files.append(SavedFile(entry.name, saved_as, entry.type, size))
    _write_text(
        work / "files.json",
        safe_text.json_text([vars(f) for f in result.files]),
        flusher,
    )
    if clean and result.files:
        paths = [originals / f.saved_as for f in result.files]
        for report in clean_files(paths, work / "cleaned"):
            name = Path(report.source).name
            report.source = f"original/{name}"
            report.output = f"cleaned/{name}" if report.written else None
            if report.output:
                flusher.fsync(work / report.output)
            result.cleaning.append(report)
        _write_text(
            work / "cleaning.json",
            safe_text.json_text([r.to_json() for r in result.cleaning]),
            flusher,
        )


def decrypt_source(
    vault: Vault,
    source: SourceRecord,
    keys: Sequence[envelope.Identity],
    out_dir: Path,
    *,
    clean: bool = True,
    language: designations.Language = "en",
    on_done: Callable[[SubmissionRecord], None] | None = None,
) -> list[DecryptedSubmission]:
    """Decrypt every submission of ``source``, two at a time where there are two cores.

    ``on_done`` is called (from a worker thread) as each submission is finished.

    The work is mostly the kernel copying pages and AES-GCM, both of which run
    outside the GIL, so threads use both cores. A submission that cannot be
    decrypted (an altered or missing object, a bad manifest, a folder that
    belongs to something else) gets its ``error`` set, nothing of it is
    written, and the others go on. Other failures (a full disk, Ctrl-C) stop
    everything: submissions not started by then are not started, and
    finished submission directories stay (complete).
    """
    subs = vault.submissions(source.id)
    target = source_folder(out_dir, source.id, subs, vault.source_ids(), language)
    workers = max(1, min(DECRYPT_WORKERS, os.cpu_count() or 1, len(subs)))

    def one(sub: SubmissionRecord) -> DecryptedSubmission:
        try:
            result = decrypt_submission(vault, sub, keys, target, clean=clean, siblings=subs)
        except (ObjectRefused, VaultError) as exc:
            result = DecryptedSubmission(sub.id, target, error=exc)
        if on_done is not None:
            on_done(sub)
        return result

    with ThreadPoolExecutor(workers, thread_name_prefix="lanterne-decrypt") as pool:
        futures = [pool.submit(one, sub) for sub in subs]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise


# --- Reading in memory (for `show`) ---------------------------------------------


@dataclass
class ShownSubmission:
    id: str
    received_on: str
    manifest: Manifest
    message: str | None
    message_truncated: bool
    files: list[tuple[str, str, int]]  # saved name, type, size


@dataclass
class ShownItem:
    kind: str
    day: str
    journalist: str | None
    text: str | None  # None: not encrypted to this journalist's key
    error: str | None = None  # why it could not be opened (altered, missing...)


def read_submission(
    vault: Vault, sub: SubmissionRecord, keys: Sequence[envelope.Identity]
) -> ShownSubmission:
    manifest = read_manifest(vault, sub, keys)
    message, truncated = None, False
    if manifest.message_object:
        obj = next(o for o in sub.objects if o.id == manifest.message_object)
        if obj.size <= MAX_SHOWN_TEXT + (1 << 16):
            raw = open_small(vault, obj, keys, MAX_SHOWN_TEXT + (1 << 16))
            truncated = len(raw) > MAX_SHOWN_TEXT
            message = raw[:MAX_SHOWN_TEXT].decode("utf-8", errors="replace")
        else:
            message, truncated = "", True
    names = unique_names(f.name for f in manifest.files)
    files = [(n, f.type, f.size) for n, f in zip(names, manifest.files, strict=True)]
    return ShownSubmission(sub.id, sub.received_on, manifest, message, truncated, files)


def read_items(vault: Vault, source_id: str, keys: Sequence[envelope.Identity]) -> list[ShownItem]:
    """Replies and notes of a source, oldest first, decrypted where our key can."""
    shown = []
    items = vault.items(source_id, "reply") + vault.items(source_id, "note")
    for obj in sorted(items, key=lambda o: (o.day or "", o.kind)):
        text: str | None = None
        error: str | None = None
        try:
            text = open_small(vault, obj, keys, 1 << 20).decode("utf-8", errors="replace")
        except (ObjectRefused, VaultError) as exc:
            # One bad note does not hide the others: it is reported in its place.
            if not isinstance(exc.__cause__, envelope.NoMatchingKeyError):
                error = str(exc)
        shown.append(ShownItem(obj.kind, obj.day or "", obj.journalist, text, error))
    return shown
