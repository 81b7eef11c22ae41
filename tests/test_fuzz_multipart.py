"""Fuzzing the no-JavaScript form's multipart path (issue 13, item 5).

Bodies are valid submission forms, then mutated (bit flips, overwritten,
inserted and deleted runs, cuts, stray boundaries and part headers) or plain
random bytes, fed to ``EncryptingFormParser`` in arbitrary pieces as they
would arrive. Whatever comes in:

- the parser raises only ``FormRejected`` (a page in both languages), nothing else;
- a refused form leaves nothing in the object store: not an object, not a
  temporary file (the request's ``ObjectBatch`` removes what was written);
- an accepted form's objects are all complete envelopes, and nothing else is there.

Then the same kind of bodies go to a real server (uvicorn process): never a 5xx,
nothing kept from a refused body, no traceback in the log.

Bounded for CI by ``LANTERNE_FUZZ_EXAMPLES`` (default 2,000 bodies for the
parser, a fifth of that for the server); a longer run sets it higher:

    LANTERNE_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/test_fuzz_multipart.py -q
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import envelope
from server.domain.submissions import ObjectBatch
from server.settings import Limits
from server.store.objects import ObjectStore
from server.web.streaming_form import EncryptingFormParser, FormRejected
from tests.server_process import CSRF_RE, Instance, Server, db_rows

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("LANTERNE_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
ME = envelope.X25519Identity.generate()
TOKEN = "t" * 43
BOUNDARY = b"fuzzboundary"
LIMITS = Limits(
    max_file_bytes=100_000,
    max_files=3,
    max_message_bytes=20_000,
    max_field_bytes=256,
    max_parts=8,
)
QUESTIONS = ["role"]

# Half the time what a browser sends, half the time not.
names = st.sampled_from(["message", "files", "q_role"]) | st.sampled_from(
    ["csrf_token", "website", "other", ""]
)
values = st.text(max_size=2000).map(str.encode) | st.binary(max_size=3000)
filenames = st.sampled_from(["a.pdf", "é.txt"]) | st.sampled_from(
    [None, "", "../x", "a\x00b", "x" * 300]
)


@st.composite
def form(draw: st.DrawFn, token: str) -> bytes:
    """A form as a browser sends it, or close to one: the token first, then parts."""
    parts = [(b"csrf_token", None, token.encode())]
    for _ in range(draw(st.integers(0, 6))):
        name = draw(names).encode()
        filename = draw(filenames)
        value = draw(values)
        if name != b"files":
            filename = None if draw(st.integers(0, 9)) else filename
        if name == b"files" and filename is not None and draw(st.booleans()):
            value = draw(st.randoms()).randbytes(draw(st.integers(0, 120_000)))
        parts.append((name, filename, value))
    body = b""
    for name, filename, value in parts:
        disposition = b'form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename.encode() + b'"'
        body += b"--" + BOUNDARY + b"\r\nContent-Disposition: " + disposition + b"\r\n"
        if filename is not None:
            body += b"Content-Type: " + draw(st.sampled_from([b"text/plain", b"x"])) + b"\r\n"
        body += b"\r\n" + value + b"\r\n"
    return body + b"--" + BOUNDARY + b"--\r\n"


JUNK = [
    b"\r\n",
    b"--",
    b"--" + BOUNDARY,
    b"\r\n--" + BOUNDARY + b"\r\n",
    b"\r\n--" + BOUNDARY + b"--",
    b'Content-Disposition: form-data; name="files"; filename="z"\r\n\r\n',
    b"\r\n\r\n",
    b"\x00" * 8,
]


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=4096))
    data = bytearray(draw(form(TOKEN)))
    for _ in range(draw(st.sampled_from([0, 0, 1, 2, 4]))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "junk", "delete", "cut"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and data:
            data[min(at, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            run = draw(st.binary(min_size=1, max_size=32))
            data[at : at + len(run)] = run
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif kind == "junk":
            data[at:at] = draw(st.sampled_from(JUNK))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 200))]
        else:
            del data[at:]
    return bytes(data)


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    out, at = [], 0
    for n in cuts:
        out.append(data[at : at + n])
        at += n
    out.append(data[at:])
    return out


@FUZZ
@given(bodies(), st.lists(st.integers(1, 70_000), max_size=8))
def test_the_parser_gives_a_form_or_form_rejected_and_keeps_nothing_refused(
    body: bytes, cuts: list[int]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = ObjectStore(Path(tmp, "objects"))
        store.create_dirs()
        with ObjectBatch(store) as batch:
            parser = EncryptingFormParser(
                BOUNDARY,
                recipients=[ME.recipient],
                batch=batch,
                limits=LIMITS,
                question_ids=QUESTIONS,
                check_csrf=lambda value: value == TOKEN,
            )
            try:
                for piece in pieces(body, cuts):
                    parser.feed(piece)
                result = parser.close()
            except FormRejected as exc:
                parser.abort()
                result = None
                event(f"refused: {exc.reason.name}")
            if result is not None:
                event("accepted")
                # Accepted: every object is a whole envelope, and only these are there.
                assert set(os.listdir(store.root)) == set(result.object_sizes)
                for object_id in result.object_sizes:
                    envelope.decrypt_bytes(store.read_bytes(object_id), [ME])
        # Never kept (the request did not keep the batch): nothing is left.
        assert os.listdir(store.root) == []


# The same on a real server


@pytest.fixture(scope="module")
def client(served: tuple[Instance, Server]) -> httpx.Client:
    _instance, server = served
    with httpx.Client(base_url=server.base_url, timeout=60) as c:
        yield c


@settings(FUZZ, max_examples=max(EXAMPLES // 5, 50))
@given(st.data())
def test_a_real_server_never_answers_5xx_and_keeps_nothing_refused(
    served: tuple[Instance, Server], client: httpx.Client, data: st.DataObject
) -> None:
    instance, server = served
    page = client.get("/en/submit")
    match = CSRF_RE.search(page.text)
    assert match
    # Drawn with a stand-in token, then given the page's: what hypothesis draws
    # must not depend on the server (tokens differ in length).
    body = data.draw(bodies()).replace(TOKEN.encode(), match.group(1).encode())
    before = set(os.listdir(instance.objects_dir))
    submissions = len(db_rows(instance, "submissions"))
    r = client.post(
        "/en/submit",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY.decode()}"},
    )
    event(f"status {r.status_code}")
    assert r.status_code < 500, r.status_code
    after = set(os.listdir(instance.objects_dir))
    if r.status_code == 303:  # accepted: a submission and its objects, none partial
        assert len(db_rows(instance, "submissions")) == submissions + 1
        assert not any(n.endswith(".part") for n in after)
    else:
        assert after == before
        assert len(db_rows(instance, "submissions")) == submissions
    assert "Traceback" not in server.log()
    assert not re.search(r"unexpected \w+ while answering", server.log())
