"""Desks, as the admin sets them up (``lanterne-server desks``; docs/DESKS.md).

A desk is a name, a title and a description in every language of the source
interface, and its journalists; journalists marked "all desks" receive every
desk besides. Which keys a desk encrypts to is part of the newsroom's signed
key directory (envelope/SPEC.md §11.1): on a signed instance every change here
is signed with the newsroom key, and a change whose signature fails is undone,
so the rows and the signed directory never disagree for long.

Removing a desk that still has sources is refused: their submissions are
encrypted to that desk's journalists only, and only a journalist can move
them (``lanterne move``, which re-encrypts on their machine). With
``delete_sources`` the desk's sources are deleted, rows and ciphertext, as a
journalist's deletion does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from server.domain.source_lifecycle import SourceLifecycle
from server.languages import LANGUAGES
from server.store.protocols import DeskProblem, DeskRow, ObjectStore, SourceStore
from server.store.wiring import AdminJournalistStore

# envelope/SPEC.md §11.1: what a signed directory accepts as a desk name.
DESK_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
DESK_NAME_RULE = "1 to 32 lowercase letters, digits and '-', starting with a letter or digit"
MAX_TITLE = 80
MAX_DESCRIPTION = 400


class DeskError(Exception):
    """A desk change refused; the message says why and what to do."""


def parse_texts(
    values: Sequence[str], what: str, before: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``LANG=TEXT`` options into a map, over ``before`` (an edit's current texts);
    every language of the source interface must be given (sources read the page
    in any of them), and no other."""
    limit = MAX_TITLE if what == "title" else MAX_DESCRIPTION
    texts: dict[str, str] = {}
    for value in values:
        lang, sep, text = value.partition("=")
        if not sep or lang not in LANGUAGES:
            raise DeskError(
                f"--{what} takes LANG=TEXT with LANG one of {', '.join(LANGUAGES)}: {value!r}"
            )
        if lang in texts:
            raise DeskError(f"--{what} {lang}= is given twice")
        text = " ".join(text.split())
        if not text or len(text) > limit:
            raise DeskError(f"--{what} {lang}= must be 1 to {limit} characters")
        texts[lang] = text
    texts = {**{k: v for k, v in (before or {}).items() if k in LANGUAGES}, **texts}
    missing = [lang for lang in LANGUAGES if lang not in texts]
    if missing:
        raise DeskError(
            f"give the desk's {what} in every language of the source interface:"
            f" missing {', '.join(f'--{what} {lang}=...' for lang in missing)}"
        )
    return texts


def check_name(name: str) -> str:
    if not DESK_NAME.fullmatch(name):
        raise DeskError(f"a desk name is {DESK_NAME_RULE}: {name!r}")
    return name


def _problem(exc: DeskProblem, name: str) -> DeskError:
    if exc.kind == "exists":
        return DeskError(f"a desk named {name} exists")
    if exc.kind == "unknown":
        return DeskError(f"no desk named {name}")
    if exc.kind == "journalist":
        return DeskError(f"no journalist named {exc.detail}")
    return DeskError(
        f"desk {name} has {exc.detail} source(s): journalists can move them to another desk"
        " first (`lanterne move SOURCE DESK`, which re-encrypts on their machine), or"
        " remove it with --delete-sources, which deletes those sources and everything"
        " they sent"
    )


def _receivers(db: AdminJournalistStore, members: Sequence[str]) -> None:
    if not members and not any(j.all_desks for j in db.journalists()):
        raise DeskError(
            "a desk needs at least one journalist (--journalist NAME), or a journalist"
            " who receives every desk (`lanterne-server desks all-desks NAME`)"
        )


def add(
    db: AdminJournalistStore,
    desk: DeskRow,
    sign: Callable[[], None],
) -> None:
    """Record the desk, then sign the directory that names it (undone if that fails)."""
    check_name(desk.name)
    _receivers(db, desk.members)
    try:
        db.add_desk(desk)
    except DeskProblem as exc:
        raise _problem(exc, desk.name) from None
    try:
        sign()
    except BaseException:
        db.remove_desk(desk.name)
        raise


def set_members(
    db: AdminJournalistStore, name: str, members: Sequence[str], sign: Callable[[], None]
) -> tuple[str, ...]:
    """Replace the desk's journalists; the former list is put back if signing fails."""
    before = next((d.members for d in db.desks() if d.name == name), None)
    if before is None:
        raise DeskError(f"no desk named {name}")
    _receivers(db, members)
    try:
        db.set_desk_members(name, members)
    except DeskProblem as exc:
        raise _problem(exc, name) from None
    try:
        sign()
    except BaseException:
        db.set_desk_members(name, before)
        raise
    return before


def set_texts(
    db: AdminJournalistStore, name: str, titles: Sequence[str], descriptions: Sequence[str]
) -> DeskRow:
    """Change some of the desk's titles and descriptions (``LANG=TEXT``); the
    others stay. Not part of the signed directory: nothing to sign."""
    desk = next((d for d in db.desks() if d.name == name), None)
    if desk is None:
        raise DeskError(f"no desk named {name}")
    if not titles and not descriptions:
        raise DeskError("give --title LANG=TEXT or --description LANG=TEXT to change")
    changed = DeskRow(
        name,
        parse_texts(titles, "title", desk.titles),
        parse_texts(descriptions, "description", desk.descriptions),
        desk.members,
    )
    try:
        db.set_desk_texts(name, changed.titles, changed.descriptions)
    except DeskProblem as exc:  # removed meanwhile
        raise _problem(exc, name) from None
    return changed


def set_all_desks(
    db: AdminJournalistStore, journalist: str, on: bool, sign: Callable[[], None]
) -> None:
    row = db.journalist_named(journalist)
    if row is None:
        raise DeskError(f"no journalist named {journalist}")
    try:
        db.set_all_desks(journalist, on)
    except DeskProblem as exc:
        raise _problem(exc, journalist) from None
    try:
        sign()
    except BaseException:
        db.set_all_desks(journalist, row.all_desks)
        raise


def remove(
    db: AdminJournalistStore,
    name: str,
    sign: Callable[[], None],
    *,
    delete_sources: Callable[[], tuple[SourceStore, ObjectStore]] | None = None,
) -> int:
    """Remove the desk (refused while sources are in it, unless their deletion is
    asked for: ``delete_sources`` gives the stores); the number of sources deleted."""
    desk = next((d for d in db.desks() if d.name == name), None)
    if desk is None:
        raise DeskError(f"no desk named {name}")
    in_desk = db.desk_sources(name)
    if in_desk and delete_sources is None:
        raise _problem(DeskProblem("in_use", str(len(in_desk))), name)
    if in_desk and delete_sources is not None:
        rows, objects = delete_sources()
        lifecycle = SourceLifecycle(rows, objects)
        for source_id in in_desk:
            lifecycle.delete_by_journalist(source_id)
    try:
        db.remove_desk(name)
    except DeskProblem as exc:  # a source arrived meanwhile
        raise _problem(exc, name) from None
    try:
        sign()
    except BaseException:
        db.add_desk(desk)
        raise
    return len(in_desk)
