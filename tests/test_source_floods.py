"""Anonymous floods must not hurt other sources (issue 11, items 6 and 7):
page loads cost the server no session, anonymous sessions never push out a
source's, and wrong codenames from fresh sessions lock nobody else out.
Real server process; the flood comes from many cookie-less clients."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import httpx
import pytest

from server.domain import codenames
from tests.server_process import CODENAME_RE, Server, SourceClient, init_instance, run_server

PAGE_LOADS = 10_200  # more than the default budget of 10,000 sessions


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    instance = init_instance(
        tmp_path_factory.mktemp("floods"), config="max_sessions = 20\nmax_waiting_logins = 2\n"
    )
    with run_server(instance) as server:
        yield server


def cookieless_loads(base_url: str, paths: list[str]) -> list[tuple[int, bool]]:
    """GET each path as a browser on its first visit (no cookie), 8 at a time:
    (status, whether a session cookie came back) for each."""

    def worker(share: list[str]) -> list[tuple[int, bool]]:
        answers = []
        with httpx.Client(base_url=base_url, timeout=60) as client:
            for path in share:
                client.cookies.clear()
                r = client.get(path)
                answers.append((r.status_code, "lanterne_session" in r.cookies))
        return answers

    shares = [paths[i::8] for i in range(8)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return [s for result in pool.map(worker, shares) for s in result]


def wrong_login(base_url: str) -> int:
    """A login with a well-formed codename nobody has, from a fresh browser."""
    with SourceClient(base_url) as guesser:
        return guesser.login(codenames.generate("en")).status_code


@pytest.mark.slow
def test_page_loads_and_anonymous_sessions_never_push_out_a_source(server: Server) -> None:
    base = server.base_url
    with SourceClient(base) as first, SourceClient(base) as returning, SourceClient(base) as new:
        codename = first.first_submission("Premier envoi.")
        assert returning.login(codename).status_code == 303
        # A source who has just submitted and not yet opened the codename page.
        assert new.submit("Un autre envoi.").headers["location"] == "/en/codename"

        paths = ["/en/submit", "/en/login", "/en/", "/fr/submit"] * (PAGE_LOADS // 4)
        loads = cookieless_loads(base, paths)
        assert {status for status, _ in loads} == {200}
        # Failed logins do make sessions: more of them than the budget of 20.
        statuses = [wrong_login(base) for _ in range(30)]
        assert set(statuses) <= {403, 503}

        inbox = returning.get("/en/inbox")
        assert inbox.status_code == 200, inbox.headers.get("location")
        page = new.get("/en/codename")
        assert page.status_code == 200, page.headers.get("location")
        assert CODENAME_RE.search(page.text)
        # The flood did not stop an anonymous visitor either: a form loaded
        # before it is still accepted (its token lives in the browser only).
        assert new.submit("Suite.").status_code == 303
    assert not any(session for _, session in loads)  # a page load makes no session


@pytest.mark.slow
def test_a_trickle_of_wrong_codenames_locks_nobody_out(server: Server) -> None:
    """More wrong codenames, each from a fresh session, than the old
    instance-wide limit of 60 a minute: a source with the right one gets in."""
    base = server.base_url
    with SourceClient(base) as src:
        codename = src.first_submission("Un envoi.")
    statuses = [wrong_login(base) for _ in range(65)]
    assert statuses.count(403) == 65
    with SourceClient(base) as src:
        assert src.login(codename).status_code == 303


def test_a_full_login_queue_refuses_only_the_latecomers(server: Server) -> None:
    """Many logins at once: each is answered (403, or 503 once two are waiting),
    none is a 429 or 500, and the queue empties for the next source."""
    base = server.base_url
    with SourceClient(base) as src:
        codename = src.first_submission("Encore un envoi.")
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda _: wrong_login(base), range(16)))
    assert set(statuses) <= {403, 503}
    assert 503 in statuses and 403 in statuses
    with SourceClient(base) as src:
        busy = src.client
        response = src.login(codename)
        assert response.status_code == 303
        assert busy.get("/en/inbox").status_code == 200
