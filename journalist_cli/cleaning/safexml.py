"""XML parsing for untrusted documents, and a writer that keeps namespace prefixes.

Parsing refuses DTDs, entity declarations and external references, with a
depth cap, so the recursive tree code after it cannot overflow. Two paths give
the same verdicts: a part that is plainly UTF-8 and holds no markup
declaration at all (nothing starting with `<!` but comments and CDATA) cannot
declare a DTD or an entity, so expat builds it with ElementTree's C tree
builder; anything else goes through defusedxml, whose parser hooks are pure
Python and about twice as slow on the large parts of a DOCX. The writer
exists because ElementTree renames prefixes to ns0, ns1...: Office then
rejects the file, since `mc:Ignorable="w14 wp14"` names prefixes by text.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET  # C parser only after `declaration_free`
from collections.abc import Iterator
from dataclasses import dataclass

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from journalist_cli.cleaning.errors import HostileFile, MalformedFile

XML_NS = "http://www.w3.org/XML/1998/namespace"


@dataclass
class XmlDoc:
    """A parsed part and the prefixes its author declared, in order."""

    root: ET.Element
    namespaces: list[tuple[str, str]]


# Every markup declaration (DOCTYPE, ENTITY, ELEMENT, ATTLIST, NOTATION) starts
# with "<!"; so do comments and CDATA sections, which declare nothing.
_HARMLESS_BANG = (b"<!--", b"<![CDATA[")
_UTF8_NAMES = {b"utf-8", b"utf8", b"us-ascii", b"ascii"}
_DECL_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def declaration_free(data: bytes) -> bool:
    """True only if expat will read `data` as UTF-8 and it holds no markup declaration.

    Then no DTD, entity or external reference can exist, and the C parser
    is as safe as defusedxml. False is not an accusation, only "let defusedxml
    decide": other encodings (UTF-16 spells `<!DOCTYPE` with other bytes),
    and any `<!` that is not a comment or CDATA, even inside a comment.
    """
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    # UTF-16 and UTF-32, with or without a byte order mark.
    if body.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in body[:4]:
        return False
    if body.startswith(b"<?xml"):
        end = body.find(b"?>", 0, 1024)
        if end < 0:
            return False
        decl = body[:end]
        match = _DECL_ENCODING.search(decl)
        if b"encoding" in decl and (match is None or match[1].lower() not in _UTF8_NAMES):
            return False
    position = body.find(b"<!")
    while position >= 0:
        if not body.startswith(_HARMLESS_BANG, position):
            return False
        position = body.find(b"<!", position + 2)
    return True


def parse(data: bytes, *, name: str, max_depth: int) -> XmlDoc:
    """Parse untrusted XML; raise HostileFile for DTDs/entities/deep nesting."""
    namespaces: list[tuple[str, str]] = []
    try:
        # Only namespace events reach Python; the C tree builder does the rest.
        if declaration_free(data):
            fast = ET.iterparse(io.BytesIO(data), events=("start-ns",))  # noqa: S314 (checked)
            namespaces.extend(item for _, item in fast)
            root: ET.Element | None = fast.root  # type: ignore[attr-defined]
        else:
            events = DET.iterparse(
                io.BytesIO(data),
                events=("start-ns",),
                forbid_dtd=True,
                forbid_entities=True,
                forbid_external=True,
            )
            namespaces.extend(item for _, item in events)
            root = events.root
    except DefusedXmlException as exc:
        raise HostileFile(f"{name}: XML with a DTD or entities ({type(exc).__name__})") from exc
    except ET.ParseError as exc:
        raise MalformedFile(f"{name}: broken XML ({exc})") from exc
    if root is None:
        raise MalformedFile(f"{name}: empty XML")
    # Measured without recursion, before any recursive code sees the tree: one
    # level at a time, so the Python work per element is one list append.
    level = [root]
    for _ in range(max_depth):
        level = [child for elem in level for child in elem]
        if not level:
            return XmlDoc(root, namespaces)
    raise HostileFile(f"{name}: XML nested deeper than {max_depth} levels")


def split(tag: str) -> tuple[str, str]:
    """'{uri}local' -> ('uri', 'local'); 'local' -> ('', 'local')."""
    if tag.startswith("{"):
        uri, _, local = tag[1:].partition("}")
        return uri, local
    return "", tag


def walk(root: ET.Element) -> Iterator[tuple[ET.Element | None, ET.Element]]:
    """Every (parent, element) pair, parents first; safe to collect then edit."""
    yield None, root
    stack = [root]
    while stack:
        parent = stack.pop()
        for child in parent:
            yield parent, child
            stack.append(child)


def remove(parent: ET.Element, child: ET.Element) -> None:
    """Remove an element but keep the text that follows it."""
    _move_tail(parent, child, child.tail)
    parent.remove(child)


def unwrap(parent: ET.Element, child: ET.Element) -> None:
    """Replace an element by its content (accepting an insertion, say)."""
    index = list(parent).index(child)
    _move_tail(parent, child, child.text)
    children = list(child)
    for offset, grandchild in enumerate(children):
        parent.insert(index + offset, grandchild)
    if children:
        last = children[-1]
        last.tail = (last.tail or "") + (child.tail or "")
        parent.remove(child)
    else:
        _move_tail(parent, child, child.tail)
        parent.remove(child)


def _move_tail(parent: ET.Element, child: ET.Element, text: str | None) -> None:
    if not text:
        return
    index = list(parent).index(child)
    if index == 0:
        parent.text = (parent.text or "") + text
    else:
        prev = parent[index - 1]
        prev.tail = (prev.tail or "") + text


_TEXT_SPECIAL = re.compile(r"[&<>]")
_ATTR_SPECIAL = re.compile(r'[&<>"\n\r\t]')


def _escape(text: str, *, attr: bool) -> str:
    if not (_ATTR_SPECIAL if attr else _TEXT_SPECIAL).search(text):
        return text
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if attr:
        text = (
            text.replace('"', "&quot;")
            .replace("\n", "&#10;")
            .replace("\r", "&#13;")
            .replace("\t", "&#9;")
        )
    return text


def plain(data: bytes) -> bool:
    """True if the bytes hold no XML comment or processing instruction (after the
    declaration): ElementTree drops those, so only such a part may be copied as is."""
    body = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if body.startswith(b"<?xml"):
        body = body[body.find(b"?>") + 2 :]
    return b"<!--" not in body and b"<?" not in body and b"<![CDATA[" not in body


def serialize(doc: XmlDoc) -> bytes:
    """Write the tree back with the original prefixes, all declared on the root."""
    prefixes: dict[str, str] = {XML_NS: "xml"}
    used: set[str] = {"xml"}
    has_plain = any(not e.tag.startswith("{") for _, e in walk(doc.root))
    for prefix, uri in doc.namespaces:
        if uri in prefixes or prefix in used or (prefix == "" and has_plain):
            continue
        prefixes[uri] = prefix
        used.add(prefix)

    def prefix_for(uri: str, *, attr: bool) -> str:
        prefix = prefixes.get(uri)
        if prefix is None or (attr and prefix == ""):
            n = 0
            while f"ns{n}" in used:
                n += 1
            prefix = f"ns{n}"
            prefixes[uri] = prefix
            used.add(prefix)
        return prefix

    names: dict[tuple[str, bool], str] = {}

    def qname(tag: str, *, attr: bool) -> str:
        known = names.get((tag, attr))
        if known is not None:
            return known
        uri, local = split(tag)
        prefix = prefix_for(uri, attr=attr) if uri else ""
        name = f"{prefix}:{local}" if prefix else local
        names[(tag, attr)] = name
        return name

    out: list[str] = []

    def write(elem: ET.Element) -> None:
        name = qname(elem.tag, attr=False)
        attrs = "".join(
            f' {qname(k, attr=True)}="{_escape(v, attr=True)}"' for k, v in elem.attrib.items()
        )
        out.append(f"<{name}{attrs}")
        if len(elem) or elem.text:
            out.append(">")
            if elem.text:
                out.append(_escape(elem.text, attr=False))
            for child in elem:
                write(child)
                if child.tail:
                    out.append(_escape(child.tail, attr=False))
            out.append(f"</{name}>")
        else:
            out.append("/>")

    write(doc.root)
    decls = "".join(
        f' xmlns="{_escape(uri, attr=True)}"'
        if prefix == ""
        else f' xmlns:{prefix}="{_escape(uri, attr=True)}"'
        for uri, prefix in prefixes.items()
        if prefix != "xml"
    )
    # Declarations are known only once the whole tree is written: add them to
    # the root's start tag, which is out[0].
    root_start = out[0]
    space = root_start.find(" ")
    out[0] = root_start + decls if space < 0 else root_start[:space] + decls + root_start[space:]
    body = "".join(out)
    return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + body.encode("utf-8")
