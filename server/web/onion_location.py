"""``Onion-Location`` for an optional clearnet landing page.

A newsroom may publish the source interface's landing page on its ordinary
website too (a reverse proxy forwarding only ``/`` and ``/<lang>/`` to the
app). Tor Browser then offers the onion address to visitors who arrive there,
through the ``Onion-Location`` header (Tor Browser honours it on HTTPS pages).

Set in config.toml (checked by ``server.onion_address.parse_onion_location``)::

    onion_location = "http://<56 characters>.onion"

The header is added only when that is set, only on the landing pages, and
only to requests that did not already arrive through an onion address.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LANDING_PATH = re.compile(r"/(?:[a-z]{2}/)?")


class OnionLocationMiddleware:
    def __init__(self, app: ASGIApp, location: str) -> None:
        self.app = app
        self.location = location

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._applies(scope):
            await self.app(scope, receive, send)
            return
        value = (self.location + scope["path"]).encode("ascii")

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"onion-location", value)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_header)

    @staticmethod
    def _applies(scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return False
        if not LANDING_PATH.fullmatch(scope["path"]):
            return False
        host = next((v for k, v in scope.get("headers", []) if k == b"host"), b"")
        # Already on the onion: nothing to offer.
        return not host.split(b":")[0].lower().endswith(b".onion")
