"""Shared fixtures, and the test tiers.

Tiers are markers: ``e2e`` (tests/e2e: whole deployments, the installer),
``browser`` (a real Chromium or Firefox ESR), ``tor`` (a private Tor network)
and ``slow`` (a module that takes more than about 20 s on the 2-core test
machine). ``scripts/test.sh --fast`` leaves all four out; ``scripts/test.sh``
(and CI) runs everything. So that the fast tier can never quietly start a
browser or a Tor network, collection fails when a module under tests/e2e is
not marked ``e2e`` or a module that drives a browser is not marked ``browser``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg_cluster import Cluster, fresh_schema, running_cluster
from tests.s3_server import S3Server, running_s3_server
from tests.server_process import Instance, Server, init_instance, run_server

TIERS = ("e2e", "browser", "tor", "slow")
_BROWSER_USE = ("tests.e2e import browsers", "playwright", "marionette")


@pytest.fixture(scope="module")
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Instance, Server]]:
    """One real server (uvicorn process) for the whole module.

    Its config.toml gets the module's ``SERVER_CONFIG`` string, if it has one.
    """
    module = request.module
    name = module.__name__.rsplit(".", 1)[-1]
    instance = init_instance(
        tmp_path_factory.mktemp(name), config=getattr(module, "SERVER_CONFIG", "")
    )
    with run_server(instance) as server:
        yield instance, server


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A throw-away PostgreSQL cluster for this pytest process (each xdist worker its own)."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """A URL to a new empty schema of the session's cluster, dropped after the test."""
    with fresh_schema(pg_cluster) as url:
        yield url


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's standalone S3 server for this pytest process (each xdist worker its own)."""
    with running_s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    checked: dict[Path, str | None] = {}
    for item in items:
        path = Path(str(item.fspath))
        if path not in checked:
            checked[path] = _missing_tier(path, {m.name for m in item.iter_markers()})
    problems = sorted(f"{p.name}: {why}" for p, why in checked.items() if why)
    if problems:
        raise pytest.UsageError("test tiers: " + "; ".join(problems))


def _missing_tier(path: Path, markers: set[str]) -> str | None:
    if "e2e" in path.parts and "e2e" not in markers:
        return "a module under tests/e2e must be marked e2e (pytestmark)"
    source = path.read_text(encoding="utf-8")
    if any(use in source for use in _BROWSER_USE) and "browser" not in markers:
        return "a module that drives a browser must be marked browser (pytestmark)"
    return None
