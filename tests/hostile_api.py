"""A compromised journalist API: a real HTTP server on 127.0.0.1 answering crafted JSON.

The tests drive the real `lanterne` script against it. Everything it serves is
in ``HostileApi`` and may be changed between commands: sources and their items
(built with ``tests.journalist_fixtures``, so objects are real envelopes),
the journalists' keys, and misbehaviours (an endless body on one path). It
records the replies and notes posted to it.

Login accepts any signature: what is under test is what the client does with
the answers, not the server's authentication.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from journalist_cli.identity_store import JournalistIdentity
from journalist_cli.records import SourceDetail, SourceInfo
from tests.journalist_fixtures import Built, new_id

CHUNK = b" " * (64 << 10)


def source_doc(info: SourceInfo, **extra: Any) -> dict[str, Any]:
    """A source as the API lists it; ``extra`` adds or overrides fields
    (``account_deleted`` is left out unless given, as older servers do)."""
    doc = info.to_api()
    del doc["account_deleted"]
    return {**doc, **extra}


def detail_doc(detail: SourceDetail, **extra: Any) -> dict[str, Any]:
    doc = detail.to_api()
    del doc["account_deleted"]
    return {**doc, **extra}


@dataclass
class Posted:
    source_id: str
    what: str  # "replies" or "notes"
    body: bytes


@dataclass
class HostileApi:
    journalists: list[JournalistIdentity]
    sources: dict[str, Built] = field(default_factory=dict)
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)  # per source: fields to add
    endless: str | None = None  # a path answered 200 with an endless body, no Content-Length
    gzipped: str | None = None  # a path whose JSON answer is gzip-compressed (a 1000:1 bomb)
    error: tuple[int, dict[str, Any]] | None = None  # the answer to every PATCH
    deleted_on_reply: bool = False  # the source deletes their account as a reply arrives
    posted: list[Posted] = field(default_factory=list)
    endless_sent: int = 0
    url: str = ""

    def add(self, built: Built, **extra: Any) -> None:
        self.sources[built.id] = built
        self.extra[built.id] = extra

    def change(self, source_id: str, **fields: Any) -> None:
        """Change what the API says about a source (``reply_key``, ``assignee``...)."""
        listed = set(SourceInfo.__dataclass_fields__) - {"account_deleted"}  # sent only if extra
        known = {k: v for k, v in fields.items() if k in listed}
        built = self.sources[source_id]
        built.detail = replace(built.detail, source=replace(built.detail.source, **known))
        self.extra[source_id].update({k: v for k, v in fields.items() if k not in known})

    def listing(self) -> list[dict[str, Any]]:
        return [source_doc(b.detail.source, **self.extra[b.id]) for b in self.sources.values()]

    def journalist_docs(self) -> list[dict[str, Any]]:
        return [
            {
                "name": j.name,
                "role": "journalist",
                "encryption_key": j.public.x25519.to_text(),
                "hybrid_key": None if j.public.hybrid is None else j.public.hybrid.to_text(),
                "signing_key": base64.urlsafe_b64encode(bytes(j.signing.verify_key))
                .rstrip(b"=")
                .decode(),
                "fingerprint": j.public.fingerprint,
            }
            for j in self.journalists
        ]

    def blob(self, object_id: str) -> bytes | None:
        for built in self.sources.values():
            if object_id in built.blobs:
                return built.blobs[object_id]
        return None


@contextmanager
def hostile_api(api: HostileApi) -> Iterator[HostileApi]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, doc: object) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def _endless(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            self.wfile.write(b"[")
            try:
                while api.endless_sent < (256 << 20):  # an old client would read it all
                    self.wfile.write(CHUNK)
                    api.endless_sent += len(CHUNK)
            except OSError:
                pass  # the client hung up: what it took is in endless_sent

        def do_POST(self) -> None:
            body = self._body()
            if self.path == "/api/v1/auth/challenge":
                challenge = base64.urlsafe_b64encode(bytes(32)).rstrip(b"=").decode()
                self._send(200, {"challenge": challenge, "expires_in": 60})
            elif self.path == "/api/v1/auth/token":
                name = json.loads(body)["journalist"]
                self._send(200, {"token": "t", "expires_in": 900, "name": name, "role": "x"})
            elif (
                m := re.fullmatch(r"/api/v1/sources/([^/]+)/replies", self.path)
            ) and api.deleted_on_reply:
                api.change(m[1], reply_key=None, account_deleted=True)
                self._send(409, {"error": "conflict", "message": "the source deleted it"})
            elif m := re.fullmatch(r"/api/v1/sources/([^/]+)/(replies|notes)", self.path):
                api.posted.append(Posted(m[1], m[2], body))
                self._send(201, {"id": new_id(), "object_id": new_id()})
            else:
                self._send(404, {"error": "not_found", "message": "no"})

        def do_PATCH(self) -> None:
            self._body()
            if api.error is not None:
                self._send(*api.error)
            else:
                self._send(404, {"error": "not_found", "message": "no"})

        def do_GET(self) -> None:
            path = self.path
            if api.endless == path:
                self._endless()
            elif api.gzipped == path:
                body = gzip.compress(b"[" + b" " * (200 << 20) + b"]")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif path == "/api/v1/sources":
                self._send(200, api.listing())
            elif path == "/api/v1/journalists":
                self._send(200, api.journalist_docs())
            elif (m := re.fullmatch(r"/api/v1/sources/([^/]+)", path)) and m[1] in api.sources:
                built = api.sources[m[1]]
                self._send(200, detail_doc(built.detail, **api.extra[built.id]))
            elif (m := re.fullmatch(r"/api/v1/objects/([^/]+)", path)) and api.blob(m[1]):
                data = api.blob(m[1]) or b""
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            else:
                self._send(404, {"error": "not_found", "message": "no"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
