"""A client of the journalist API (docs/JOURNALIST_API.md), over httpx.

Every answer is parsed into the typed records of ``journalist_cli.records``,
checked as untrusted input (anything outside the contract raises
``ServerError``). Through Tor the proxy is ``socks5h://127.0.0.1:9050``:
httpx's SOCKS support (socksio) always hands host names to the proxy, so an
``.onion`` name is resolved by Tor and never by the local resolver.
"""

from __future__ import annotations

import base64
import binascii
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import nacl.signing
import socksio.exceptions

from journalist_cli.records import (
    MAX_ITEM_BYTES,
    MAX_TEMPLATE_CHARS,
    ChannelInfo,
    Created,
    JournalistInfo,
    Session,
    SourceDetail,
    SourceInfo,
    as_dict,
    as_list,
    id_field,
    typed_field,
)
from journalist_cli.workflow_errors import LoginRefused, RequestRefused, ServerError

API_PREFIX = "/api/v1"
AUTH_LABEL = b"lanterne/v1/api-auth\x00"
CHALLENGE_BYTES = 32
MAX_JSON_BYTES = 64 << 20
MAX_ERROR_BYTES = 64 << 10  # the body of an error answer to a download
TIMEOUT = httpx.Timeout(120.0, connect=60.0)  # Tor circuits can take a while


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ServerError("the server sent invalid base64") from exc


# Why a login was refused, by the reason code of the server's 401 (docs/JOURNALIST_API.md).
LOGIN_REFUSALS = {
    "key_refused": "it knows no journalist of that name with this key (never added, removed,"
    " or the key was replaced: ask the admin to check `lanterne-server journalists list`)",
    "wrong_host": "it does not serve the address {host}; use the journalist onion address"
    " the admin gave you (`lanterne config --server http://ADDRESS.onion`)",
    "challenge_expired": "the login took too long, or the server restarted meanwhile; try again",
    "busy": "it has too many sessions open; try again in a few minutes",
}


def auth_message(challenge: bytes, host: str) -> bytes:
    """What is signed to log in: label, NUL, the challenge, the Host header sent."""
    return AUTH_LABEL + challenge + host.encode("ascii")


def _tls_context(url: httpx.URL) -> ssl.SSLContext | bool:
    """The system's CAs for https; for http (an onion: Tor authenticates the
    server) a context that trusts nothing, since loading the CA bundle costs
    more than the rest of a command's start-up and would never be used."""
    if url.scheme == "https":
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, with no CA: fails closed


def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """The body of ``response`` as sent (no content coding is accepted), reading
    no more than ``limit`` bytes from the network: ServerError beyond."""
    if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
        raise ServerError("the server's answer is content-encoded, which lanterne never asks for")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ServerError(f"the server's answer is too large ({declared} bytes announced)")
    try:
        read = response.content  # read already (by a test's transport, for one)
    except httpx.ResponseNotRead:
        pass
    else:
        if len(read) > limit:
            raise ServerError(f"the server's answer is too large (over {limit} bytes)")
        return read
    body = bytearray()
    for chunk in response.iter_raw():
        if len(body) + len(chunk) > limit:
            raise ServerError(f"the server's answer is too large (over {limit} bytes); stopped")
        body += chunk
    return bytes(body)


# --- The client ------------------------------------------------------------------


Progress = Callable[[int], None]


class ApiClient:
    """One journalist's connection to the API; log in with ``login`` first.

    ``transport`` is the seam for tests (an ``httpx.MockTransport`` or an ASGI
    transport); by default httpx talks to ``server``, through ``proxy`` if set.
    """

    def __init__(
        self,
        server: str,
        *,
        proxy: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base = httpx.URL(server)
        # The Host header is part of what is signed: send exactly what we sign.
        self.host = self.base.netloc.decode("ascii")
        self._http = httpx.Client(
            base_url=self.base.join(API_PREFIX + "/"),
            verify=_tls_context(self.base),
            proxy=proxy,
            transport=transport,
            timeout=TIMEOUT,
            # Bodies as sent: a compressed answer could expand past the caps in one chunk.
            headers={"Host": self.host, "User-Agent": "lanterne", "Accept-Encoding": "identity"},
            follow_redirects=False,
            trust_env=False,
        )
        self.session: Session | None = None
        self._login_lock = threading.Lock()
        self._signer: tuple[str, nacl.signing.SigningKey] | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Transport and errors

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, its answer read whole but never past ``MAX_JSON_BYTES``.

        The cap is enforced while the body streams in (a compromised server
        can send an endless body, with or without a Content-Length): reading
        stops at the first byte over it, so memory stays bounded.
        """
        try:
            request = self._http.build_request(method, path.lstrip("/"), **kwargs)
            response = self._http.send(request, stream=True)
            try:
                body = _read_capped(response, MAX_JSON_BYTES)
            finally:
                response.close()
            return httpx.Response(
                response.status_code, headers=response.headers, content=body, request=request
            )
        except (httpx.ProxyError, socksio.exceptions.ProtocolError) as exc:
            # socksio raises its own error, outside httpx's tree, for the onion
            # reply codes of Tor's ExtendedErrors (0xF0-0xF7: no descriptor,
            # missing or wrong client authorisation...).
            raise ServerError(
                f"cannot reach the server through Tor ({exc or type(exc).__name__}): is Tor"
                f" running, and is your onion client key (.auth_private) installed?"
            ) from exc
        except httpx.TimeoutException as exc:
            raise ServerError(f"the server did not answer in time ({self.host})") from exc
        except httpx.TransportError as exc:
            raise ServerError(f"cannot reach the server at {self.host}: {exc}") from exc

    def _request(
        self, method: str, path: str, *, authenticated: bool = True, **kwargs: Any
    ) -> httpx.Response:
        if authenticated:
            kwargs.setdefault("headers", {})["Authorization"] = self._bearer()
        response = self._send(method, path, **kwargs)
        if response.status_code == 401 and authenticated and self._signer is not None:
            # Tokens live 15 minutes and die with a server restart: log in again once.
            kwargs["headers"]["Authorization"] = self._fresh_bearer(kwargs["headers"])
            response = self._send(method, path, **kwargs)
        self._check(response)
        return response

    def _fresh_bearer(self, refused: dict[str, str]) -> str:
        """A new token after ``refused`` got a 401. Downloads run in several
        threads: the first to get here logs in, the others take its token."""
        assert self._signer is not None
        with self._login_lock:
            if self._bearer() == refused.get("Authorization"):
                self.login(*self._signer)
            return self._bearer()

    def _bearer(self) -> str:
        if self.session is None:
            raise LoginRefused("not logged in")
        return f"Bearer {self.session.token}"

    @staticmethod
    def _check(response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        message = ""
        try:
            doc = response.json()
            if isinstance(doc, dict) and isinstance(doc.get("message"), str):
                message = doc["message"][:300]
        except ValueError:
            pass
        detail = f" ({message})" if message else ""
        if response.status_code == 401:
            raise LoginRefused(
                "the server refused this journalist's key: is it registered and current?" + detail
            )
        if response.status_code == 404:
            raise ServerError(f"not found on the server{detail}")
        if response.status_code in (400, 413):  # the API's refusals of a value (its OpenAPI)
            raise RequestRefused(f"the server refused this: {message or response.status_code}")
        raise ServerError(f"the server answered {response.status_code}{detail}")

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ServerError("the server's answer is not JSON") from exc

    # Authentication

    def _login_refusal(self, name: str, response: httpx.Response) -> str:
        """What to tell the journalist, from the 401's ``reason`` (the server's
        auth.Refusal); the server's free text is not shown, only known reasons."""
        reason = None
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("reason"), str):
            reason = doc["reason"]
        why = LOGIN_REFUSALS.get(reason or "", LOGIN_REFUSALS["key_refused"])
        return f"the server refused to log in {name!r}: " + why.format(host=self.host)

    def login(self, name: str, signing_key: nacl.signing.SigningKey) -> Session:
        """Signed-challenge login; the token is kept for the following requests."""
        doc = as_dict(self._json(self._request("POST", "auth/challenge", authenticated=False)))
        challenge = unb64(typed_field(doc, "challenge", str))
        if len(challenge) != CHALLENGE_BYTES:
            raise ServerError("the server sent a challenge of the wrong length")
        signature = signing_key.sign(auth_message(challenge, self.host)).signature
        body = {"journalist": name, "challenge": b64(challenge), "signature": b64(signature)}
        response = self._send("POST", "auth/token", json=body)
        if response.status_code == 401:
            raise LoginRefused(self._login_refusal(name, response))
        self._check(response)
        token = as_dict(self._json(response))
        self.session = Session(
            name=typed_field(token, "name", str),
            role=typed_field(token, "role", str),
            token=typed_field(token, "token", str),
        )
        self._signer = (name, signing_key)
        return self.session

    # Resources

    def journalists(self) -> list[JournalistInfo]:
        raw = as_list(self._json(self._request("GET", "journalists")))
        return [JournalistInfo.parse(j) for j in raw]

    def directory(self) -> bytes | None:
        """The newsroom's signed key directory as served; None if the server has none."""
        response = self._send("GET", "directory", headers={"Authorization": self._bearer()})
        if response.status_code == 404:
            return None
        self._check(response)
        return response.content

    def sources(self) -> list[SourceInfo]:
        raw = as_list(self._json(self._request("GET", "sources")))
        return [SourceInfo.parse(s) for s in raw]

    def source(self, source_id: str) -> SourceDetail:
        return SourceDetail.parse(self._json(self._request("GET", f"sources/{source_id}")))

    def update_source(self, source_id: str, changes: dict[str, Any]) -> SourceInfo:
        response = self._request("PATCH", f"sources/{source_id}", json=changes)
        return SourceInfo.parse(self._json(response))

    def _post_envelope(
        self, source_id: str, what: str, sealed: bytes, params: dict[str, str] | None = None
    ) -> Created:
        response = self._request(
            "POST",
            f"sources/{source_id}/{what}",
            content=sealed,
            headers={"Content-Type": "application/octet-stream"},
            params=params,
        )
        doc = as_dict(self._json(response))
        return Created(id=id_field(doc), object_id=id_field(doc, "object_id"))

    def add_note(self, source_id: str, sealed: bytes) -> Created:
        return self._post_envelope(source_id, "notes", sealed)

    def add_reply(self, source_id: str, sealed: bytes, purpose: str | None = None) -> Created:
        """``purpose``: ``acknowledgement`` or ``feedback`` (docs/OFFICIAL_CHANNEL.md)."""
        params = None if purpose is None else {"purpose": purpose}
        return self._post_envelope(source_id, "replies", sealed, params)

    def acknowledgement(self, source_id: str, language: str | None = None) -> str:
        """The acknowledgement text for this source (its desk's, else the instance's)."""
        params = None if language is None else {"lang": language}
        response = self._request("GET", f"sources/{source_id}/acknowledgement", params=params)
        text = typed_field(as_dict(self._json(response)), "text", str)
        if not text.strip() or len(text) > MAX_TEMPLATE_CHARS:
            raise ServerError("the server's acknowledgement text is empty or too long")
        return str(text)

    def channel(self) -> ChannelInfo | None:
        """The channel's declaration and the server's day; None from a server before it."""
        response = self._send("GET", "channel", headers={"Authorization": self._bearer()})
        if response.status_code == 404:
            return None
        self._check(response)
        return ChannelInfo.parse(self._json(response))

    def stage_replacement(self, source_id: str, object_id: str, path: Path) -> str:
        """Upload the envelope re-encrypted for a move (``move_source``); its new id."""
        with path.open("rb") as body:
            response = self._request(
                "POST",
                f"sources/{source_id}/objects/{object_id}/replacement",
                content=body,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(path.stat().st_size),
                },
            )
        return id_field(as_dict(self._json(response)), "object_id")

    def move_source(self, source_id: str, desk: str, replacements: dict[str, str]) -> SourceInfo:
        """Move the source to ``desk``, each object replaced by its staged envelope."""
        objects = [{"old": old, "new": new} for old, new in replacements.items()]
        response = self._request(
            "POST", f"sources/{source_id}/move", json={"desk": desk, "objects": objects}
        )
        return SourceInfo.parse(self._json(response))

    def delete_source(self, source_id: str) -> None:
        self._request("DELETE", f"sources/{source_id}")

    def delete_submission(self, submission_id: str) -> None:
        self._request("DELETE", f"submissions/{submission_id}")

    def download(
        self, object_id: str, out: BinaryIO, offset: int, expected: int | None, progress: Progress
    ) -> int:
        """Append object bytes from ``offset`` (a resumed download) to ``out``.

        Asks for ``Range: bytes=offset-``; a server that answers 200 instead
        restarts the object, so ``out`` is rewound. Never writes past
        ``expected`` bytes (the size the listing gave), or past
        ``MAX_ITEM_BYTES`` for replies and notes, whose size is not listed.
        Returns the object's full size.
        """
        limit = MAX_ITEM_BYTES if expected is None else expected
        # Bytes as stored: no content coding may sit between the server and the vault.
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        with self._stream("GET", f"objects/{object_id}", headers=headers) as response:
            if response.headers.get("content-encoding", "identity") != "identity":
                raise ServerError(f"object {object_id}: the server sent it content-encoded")
            if response.status_code == 200 and offset:
                out.seek(0)
                out.truncate()
                progress(-offset)
                offset = 0
            elif response.status_code == 206:
                crange = response.headers.get("content-range", "")
                if not crange.startswith(f"bytes {offset}-"):
                    raise ServerError(f"object {object_id}: the server resumed at the wrong place")
            elif response.status_code != 200:
                raise ServerError(f"object {object_id}: unexpected status {response.status_code}")
            written = offset
            for chunk in response.iter_raw():
                written += len(chunk)
                if written > limit:
                    raise ServerError(f"object {object_id} is larger than the server announced")
                out.write(chunk)
                progress(len(chunk))
        if expected is not None and written != expected:
            raise ServerError(
                f"object {object_id} stopped after {written} of {expected} bytes; pull again"
            )
        return written

    @contextmanager
    def _stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        headers = {**kwargs.pop("headers", {}), "Authorization": self._bearer()}
        for attempt in range(2):
            try:
                with self._http.stream(method, path, headers=headers, **kwargs) as response:
                    if response.status_code == 401 and attempt == 0 and self._signer:
                        headers["Authorization"] = self._fresh_bearer(headers)
                        continue
                    if response.status_code >= 400:
                        body = _read_capped(response, MAX_ERROR_BYTES)
                        self._check(
                            httpx.Response(
                                response.status_code, headers=response.headers, content=body
                            )
                        )
                    yield response
                    return
            except (httpx.ProxyError, socksio.exceptions.ProtocolError) as exc:
                raise ServerError(f"cannot reach the server through Tor ({exc})") from exc
            except httpx.TimeoutException as exc:
                raise ServerError(f"the download stalled ({self.host}); pull again") from exc
            except httpx.TransportError as exc:
                raise ServerError(f"the connection dropped ({exc}); pull again to resume") from exc
