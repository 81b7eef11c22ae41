"""Reading and writing zip containers (OOXML, ODF) without trusting their sizes.

Counts and sizes in the central directory are whatever the attacker wrote,
so they are checked first and every read is capped again as it happens.
Members are only ever read into memory by their info record, never extracted
to disk by name. Written archives carry no timestamps, comments or extras.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from journalist_cli.cleaning.errors import HostileFile, MalformedFile
from journalist_cli.cleaning.limits import MIB, Limits

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass
class Member:
    """One zip member, decompressed."""

    name: str
    data: bytes
    stored: bool = False  # written without compression (ODF's `mimetype`)


def read_members(source: Path | bytes, limits: Limits, *, label: str) -> list[Member]:
    """All members of a zip, decompressed in memory within the caps."""
    raw: Path | io.BytesIO = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with zipfile.ZipFile(raw) as archive:
            infos = archive.infolist()
            _check_directory(infos, limits, label)
            members: list[Member] = []
            total = 0
            for info in infos:
                if info.is_dir():
                    continue
                with archive.open(info) as handle:
                    data = handle.read(limits.max_zip_member + 1)
                total += len(data)
                if len(data) > limits.max_zip_member or total > limits.max_zip_total:
                    raise HostileFile(f"{label}: zip member {info.filename!r} inflates too far")
                if len(data) > MIB and len(data) > limits.max_zip_ratio * max(
                    info.compress_size, 1
                ):
                    raise HostileFile(
                        f"{label}: zip member {info.filename!r} expands more than "
                        f"{limits.max_zip_ratio}x (a zip bomb?)"
                    )
                members.append(
                    Member(info.filename, data, info.compress_type == zipfile.ZIP_STORED)
                )
            return members
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise MalformedFile(f"{label}: broken zip container ({exc})") from exc
    except (ValueError, OSError) as exc:
        raise MalformedFile(f"{label}: unreadable zip container ({exc})") from exc


def _check_directory(infos: list[zipfile.ZipInfo], limits: Limits, label: str) -> None:
    if len(infos) > limits.max_zip_members:
        raise HostileFile(f"{label}: {len(infos)} zip members (limit {limits.max_zip_members})")
    names = [i.filename for i in infos]
    for name in names:
        check_name(name, label)
    if len({n.casefold() for n in names}) != len(names):
        # Two members with one name (or names equal but for case, on Windows
        # and macOS) are read differently by different tools.
        raise MalformedFile(f"{label}: the zip has duplicate member names")
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_zip_total:
        raise HostileFile(f"{label}: the zip declares {declared // MIB} MiB of content")
    for info in infos:
        if info.flag_bits & 0x1:
            raise MalformedFile(f"{label}: {info.filename!r} is encrypted; decrypt it first")
        if info.file_size > MIB and info.file_size > limits.max_zip_ratio * max(
            info.compress_size, 1
        ):
            raise HostileFile(
                f"{label}: zip member {info.filename!r} claims a "
                f"{info.file_size // max(info.compress_size, 1)}x expansion (a zip bomb?)"
            )


def check_name(name: str, label: str) -> None:
    """Refuse a member name that is not a plain relative path.

    Office suites never write `..`, absolute names, backslashes, drive letters
    or control characters; a zip that has them was built by hand, and a
    careless unzip of the copy would write outside its folder. Lanterne cannot
    vouch for such a file, so it is refused rather than renamed.
    """
    parts = name.rstrip("/").split("/")
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or (len(name) > 1 and name[1] == ":")
        or any(part in ("", ".", "..") for part in parts)
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name)
    ):
        raise MalformedFile(f"{label}: a zip member has an unsafe name ({name[:80]!r})")


def write_members(members: list[Member]) -> bytes:
    """A fresh zip: fixed timestamps, no comment, no extra fields, order kept."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member in members:
            check_name(member.name, "output")
            info = zipfile.ZipInfo(member.name, date_time=FIXED_TIME)
            info.create_system = 0
            info.external_attr = 0
            info.compress_type = zipfile.ZIP_STORED if member.stored else zipfile.ZIP_DEFLATED
            archive.writestr(info, member.data)
    return buffer.getvalue()
