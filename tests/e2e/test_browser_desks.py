"""The page's script encrypts only to the chosen desk's recipients, computed from
the signed key directory (issue 16 §1; envelope/SPEC.md §11.1; upload.js
deskJournalists), in Chromium and in Firefox ESR at Safer; a follow-up goes to
the desk the first submission chose.

alice is the news desk, bruno the legal desk, chloe receives every desk.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import browsers
from tests.e2e.test_browser_uploads import firefox_by
from tests.server_process import Instance, run_server
from tests.test_desks import desked_instance, readers, source_desks
from tests.test_site_integrity import Proxy, proxy_url, reverse_proxy
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@contextlib.contextmanager
def served_desks(base: Path, *, signed: bool) -> Iterator[tuple[Instance, Proxy]]:
    """The two desks' instance behind a proxy that records the browser's requests."""
    instance = desked_instance(base, signed=signed)
    with run_server(instance) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        with reverse_proxy(port) as proxy:
            yield instance, proxy


@pytest.fixture(scope="module")
def desks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Proxy]]:
    with served_desks(tmp_path_factory.mktemp("desks"), signed=True) as served:
        yield served


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browsers.playwright_chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def firefox() -> Iterator[Any]:
    with browsers.marionette("safer") as client:
        client.timeout.script = 120
        yield client


def objects(instance: Instance) -> set[str]:
    return {p.name for p in instance.objects_dir.iterdir()}


def tus_requests(proxy: Proxy) -> int:
    return sum(1 for _m, p, _b, _s in proxy.requests if p.startswith("/tus"))


def added_readers(instance: Instance, before: set[str]) -> set[tuple[str, ...]]:
    added = [instance.objects_dir / name for name in objects(instance) - before]
    assert added
    return {tuple(readers(instance, path)) for path in added}


def chromium_submit(
    page: Any,
    instance: Instance,
    proxy: Proxy,
    url: str,
    message: str,
    desk: str | None,
    done: str,
) -> set[tuple[str, ...]]:
    """Send ``message`` from the page at ``url`` (choosing ``desk`` if given) and wait
    for ``done``: the browser encrypted it (tus requests); who can read what it added."""
    page.goto(url)
    page.wait_for_selector("#path-browser", state="visible")
    if desk is not None:
        page.check(f"#desk-{desk}")
    page.fill("#message", message)
    before = objects(instance)
    proxy.requests.clear()
    page.click("button[type=submit]")
    page.wait_for_url(done, timeout=120_000)
    assert tus_requests(proxy) > 0  # the browser encrypted, not the server
    return added_readers(instance, before)


def test_chromium_encrypts_to_the_chosen_desk_and_follows_up_there(desks, chromium) -> None:
    instance, proxy = desks
    submit = f"{proxy_url(proxy)}/en/submit"
    page = chromium.new_context().new_page()
    who = chromium_submit(
        page, instance, proxy, submit, "desk-legal-chromium", "legal", "**/en/codename"
    )
    assert who == {("bruno", "chloe")}
    assert "legal" in source_desks(instance).values()
    # Logged in (the same session): no choice, and the same desk.
    page.goto(submit)
    page.wait_for_selector("#path-browser", state="visible")
    assert page.locator("input[name=desk]").count() == 0
    who = chromium_submit(
        page, instance, proxy, submit, "desk-legal-chromium-again", None, "**/en/inbox"
    )
    assert who == {("bruno", "chloe")}
    page.context.close()


def test_firefox_safer_encrypts_to_the_chosen_desk(desks, firefox) -> None:
    instance, proxy = desks
    by = firefox_by()
    firefox.delete_all_cookies()
    firefox.navigate(f"{proxy_url(proxy)}/fr/submit")
    wait_until(
        lambda: firefox.find_element(by.ID, "path-browser").is_displayed(), 20, "JS path not shown"
    )
    firefox.find_element(by.ID, "desk-news").click()
    firefox.find_element(by.ID, "message").send_keys("desk-news-firefox")
    before = objects(instance)
    proxy.requests.clear()
    firefox.find_element(by.CSS_SELECTOR, "button[type=submit]").click()
    wait_until(lambda: firefox.get_url().endswith("/fr/codename"), 120, "no codename page")
    assert tus_requests(proxy) > 0
    assert added_readers(instance, before) == {("alice", "chloe")}


def test_chromium_without_a_desk_chosen_sends_nothing(desks, chromium) -> None:
    """The radio group is required: the browser's own check stops the form."""
    instance, proxy = desks
    page = chromium.new_context().new_page()
    page.goto(f"{proxy_url(proxy)}/en/submit")
    page.wait_for_selector("#path-browser", state="visible")
    page.fill("#message", "no-desk-chromium")
    before = objects(instance)
    proxy.requests.clear()
    page.click("button[type=submit]")
    page.wait_for_timeout(1500)
    assert page.url.endswith("/en/submit")
    assert not page.evaluate("document.getElementById('desk-news').validity.valid")
    assert tus_requests(proxy) == 0 and objects(instance) == before
    page.context.close()


@pytest.fixture(scope="module")
def unsigned_desks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Proxy]]:
    with served_desks(tmp_path_factory.mktemp("unsigned-desks"), signed=False) as served:
        yield served


def test_chromium_on_an_unsigned_instance_asks_for_the_desks_keys(unsigned_desks, chromium) -> None:
    """Without a newsroom key the page takes recipients.json?desk=: the desk's
    registered members and the all-desk journalist, nobody else."""
    instance, proxy = unsigned_desks
    page = chromium.new_context().new_page()
    who = chromium_submit(
        page,
        instance,
        proxy,
        f"{proxy_url(proxy)}/en/submit",
        "desk-news-unsigned-chromium",
        "news",
        "**/en/codename",
    )
    assert any("recipients.json?desk=news" in p for _m, p, _b, _s in proxy.requests)
    assert who == {("alice", "chloe")}
    page.context.close()
