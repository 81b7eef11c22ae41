"""Real browsers for end-to-end tests: Debian's Chromium through Playwright and
Debian's Firefox ESR through Marionette, with Tor Browser's security-level prefs.

A missing browser is a failure, never a skip: `scripts/bootstrap.sh --test`
installs both.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from tests.waiting import wait_until

CHROMIUM = "/usr/lib/chromium/chromium"  # the real binary, not Debian's wrapper script
FIREFOX = shutil.which("firefox-esr") or "/usr/bin/firefox-esr"

# Tor Browser's SecurityLevel prefs (tor-browser SecurityLevel.sys.mjs).
SAFER_PREFS = {
    "javascript.options.ion": False,
    "javascript.options.baselinejit": False,
    "javascript.options.native_regexp": False,
    "javascript.options.asmjs": False,
    "javascript.options.wasm": False,
    "mathml.disabled": True,
    "gfx.font_rendering.graphite.enabled": False,
    "gfx.font_rendering.opentype_svg.enabled": False,
}
SAFEST_PREFS = {**SAFER_PREFS, "svg.disabled": True, "javascript.enabled": False}
LEVELS = {"standard": {}, "safer": SAFER_PREFS, "safest": SAFEST_PREFS}
AUTOMATION_PREFS = {
    "browser.shell.checkDefaultBrowser": False,
    "app.update.disabledForTesting": True,
    "datareporting.policy.dataSubmissionEnabled": False,
    "browser.aboutwelcome.enabled": False,
    "network.captive-portal-service.enabled": False,
    "remote.prefs.recommended": True,
    "network.proxy.type": 0,
}


class Browser(Protocol):
    name: str

    def goto(self, url: str) -> None: ...
    def title(self) -> str: ...
    def text(self, element_id: str) -> str: ...


def wait_for_title(browser: Browser, title: str, timeout: float) -> None:
    wait_until(
        lambda: browser.title() == title,
        timeout,
        f"{browser.name}: page title never became {title!r}",
        interval=0.2,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Chromium:
    def __init__(self, page: object, name: str) -> None:
        self._page = page
        self.name = name

    def goto(self, url: str) -> None:
        self._page.goto(url)  # type: ignore[attr-defined]

    def title(self) -> str:
        return str(self._page.title())  # type: ignore[attr-defined]

    def text(self, element_id: str) -> str:
        return str(self._page.inner_text(f"#{element_id}"))  # type: ignore[attr-defined]


@contextlib.contextmanager
def chromium(
    *, javascript: bool = True, jitless: bool = False, extra_args: Sequence[str] = ()
) -> Iterator[Browser]:
    """Chromium, headless, in a fresh context; ``extra_args`` go on its command line."""
    args = ["--js-flags=--jitless", *extra_args] if jitless else extra_args
    with playwright_chromium(args) as browser:
        context = browser.new_context(java_script_enabled=javascript)  # type: ignore[attr-defined]
        yield _Chromium(context.new_page(), "chromium-jitless" if jitless else "chromium")


@contextlib.contextmanager
def playwright_chromium(extra_args: Sequence[str] = ()) -> Iterator[object]:
    """The one Chromium launcher: Playwright's Browser object on Debian's Chromium
    (never a downloaded one), closed on exit. A missing Chromium is a failure."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        raise RuntimeError(
            f"Chromium is not installed ({CHROMIUM}); run scripts/bootstrap.sh --test"
        )
    args = [
        "--no-sandbox",
        "--disable-background-networking",
        "--disable-component-update",
        *extra_args,
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()


class _Firefox:
    def __init__(self, client: object, name: str) -> None:
        self._client = client
        self.name = name

    def goto(self, url: str) -> None:
        self._client.navigate(url)  # type: ignore[attr-defined]

    def title(self) -> str:
        return str(self._client.title)  # type: ignore[attr-defined]

    def text(self, element_id: str) -> str:
        from marionette_driver.by import By

        return str(self._client.find_element(By.ID, element_id).text)  # type: ignore[attr-defined]


@contextlib.contextmanager
def firefox(level: str = "safer") -> Iterator[Browser]:
    """Firefox ESR with the prefs of a Tor Browser security level, in a fresh profile."""
    with marionette(level) as client:
        yield _Firefox(client, f"firefox-{level}")


@contextlib.contextmanager
def marionette(level: str = "safer") -> Iterator[Any]:
    """The one Firefox launcher: a Marionette client of Firefox ESR with the prefs of
    a Tor Browser security level, in a fresh profile. A missing Firefox is a failure."""
    with warnings.catch_warnings():
        # mozinfo/mozrunner use deprecated distro and telnetlib calls at import time.
        warnings.simplefilter("ignore", DeprecationWarning)
        from marionette_driver.marionette import Marionette

    if not os.path.exists(FIREFOX):
        raise RuntimeError("firefox-esr is not installed; run scripts/bootstrap.sh --test")
    port = free_port()
    prefs = {**AUTOMATION_PREFS, **LEVELS[level], "marionette.port": port}
    with tempfile.TemporaryDirectory(prefix="lanterne-ff-") as profile:
        lines = [
            f'user_pref("{k}", {str(v).lower() if isinstance(v, bool) else v});'
            for k, v in prefs.items()
        ]
        Path(profile, "user.js").write_text("\n".join(lines) + "\n")
        proc = subprocess.Popen(
            [
                FIREFOX,
                "-marionette",
                "-remote-allow-system-access",
                "-headless",
                "-no-remote",
                "-profile",
                profile,
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Marionette(host="127.0.0.1", port=port)
        try:
            with warnings.catch_warnings():
                # It polls the port with sockets it never closes.
                warnings.simplefilter("ignore", ResourceWarning)
                client.start_session(timeout=90)
                gc.collect()
            yield client
        finally:
            with contextlib.suppress(Exception), warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                client.delete_session()
                gc.collect()
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
