"""A database that cannot be used for a moment is a "try again" page, never a 500
(issue 13, item 3).

Real server processes. Running out of descriptors is made exact: the test
lowers the running server's descriptor limit (``prlimit``) to what it already
has open, so any file it tries to open fails with EMFILE, while a connection
already open can still be answered. Then the database's name taken by a
directory (SQLite cannot open it). Either way every source page answers 503 with
the "try again, nothing was kept" page in its language, a no-JS body is read to
its end first, nothing is kept, and the server works again once the cause is gone.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest

from server.settings import MiB
from tests.server_process import SourceClient, db_rows, run_server
from tests.test_full_disk import make_instance

pytestmark = pytest.mark.slow

FR_TITLE = "Le site ne peut pas recevoir de demandes pour le moment"
EN_TITLE = "The site cannot take requests for a moment"


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_running_out_of_descriptors_gives_the_try_again_page(tmp_path: Path) -> None:
    instance, _alice = make_instance(tmp_path, tmp_path / "data")
    with run_server(instance) as server, SourceClient(server.base_url) as src:
        for path in ("/en/", "/fr/submit"):
            assert src.get(path).status_code == 200
        token = src.csrf("/fr/submit")
        limits = resource.prlimit(server.pid, resource.RLIMIT_NOFILE)
        full = open_descriptors(server.pid)
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (full, limits[1]))
        try:
            r = src.get("/en/submit")
            assert r.status_code == 503, r.status_code
            assert EN_TITLE in r.text and "Nothing you sent was kept" in r.text
            src.lang = "fr"
            r = src.submit(
                "Plus de descripteurs.", [("d.bin", os.urandom(2 * MiB), "x/y")], token=token
            )
            assert r.status_code == 503, r.status_code  # read to its end: the page arrives
            assert FR_TITLE in r.text and "Rien de ce que vous avez envoyé" in r.text
        finally:
            resource.prlimit(server.pid, resource.RLIMIT_NOFILE, limits)
        assert os.listdir(instance.objects_dir) == []
        src.lang = "en"
        assert src.submit("De nouveau.").status_code == 303
    assert len(db_rows(instance, "submissions")) == 1
    log = server.log()
    assert "Traceback" not in log and "unexpected" not in log
    assert "storage unavailable (OperationalError): answered 503" in log


def test_a_database_that_cannot_be_opened_gives_the_try_again_page(tmp_path: Path) -> None:
    """What running out of descriptors does to SQLite ("unable to open database
    file"), made deterministic: the database's name is taken by a directory for
    a moment. Every page answers 503 "try again", in its language, never 500."""
    instance, _alice = make_instance(tmp_path, tmp_path / "data")
    database = instance.data_dir / "lanterne.sqlite3"
    with run_server(instance) as server, SourceClient(server.base_url) as src:
        token = src.csrf("/fr/submit")
        aside = database.with_name("aside.sqlite3")
        database.rename(aside)
        database.mkdir()
        try:
            for path in ("/en/", "/fr/submit"):
                r = src.get(path)
                assert r.status_code == 503, (path, r.status_code)
            src.lang = "fr"
            r = src.submit(
                "Base indisponible.", [("b.bin", os.urandom(2 * MiB), "x/y")], token=token
            )
            assert r.status_code == 503, r.status_code
            assert "Le site ne peut pas recevoir de demandes pour le moment" in r.text
            assert "Rien de ce que vous avez envoyé" in r.text
            r = src.get("/en/")
            assert "The site cannot take requests for a moment" in r.text
            assert os.listdir(instance.objects_dir) == []
        finally:
            database.rmdir()
            aside.rename(database)
        assert src.get("/en/").status_code == 200
        src.lang = "en"
        assert src.submit("Base revenue.").status_code == 303
    log = server.log()
    assert "Traceback" not in log and "unexpected" not in log
    assert "storage unavailable (OperationalError): answered 503" in log


def test_the_log_line_names_the_store_and_the_drivers_error_never_a_path(caplog) -> None:
    """An operator must tell a pool timeout from a refused connection, and from
    the S3 server; an ``OSError``'s message (which names a path) is never logged."""
    from psycopg_pool import PoolTimeout

    from server.store.protocols import StoreFull, StoreUnavailable
    from server.web.error_pages import log_storage_failure

    def raised(exc: OSError, cause: Exception | None) -> OSError:
        try:
            raise exc from cause
        except OSError as caught:
            return caught

    with caplog.at_level("WARNING", logger="lanterne.server"):
        log_storage_failure(raised(StoreUnavailable("the database"), PoolTimeout("wait")), 503)
        log_storage_failure(raised(StoreFull("the object store"), None), 507)
        log_storage_failure(OSError(24, "Too many open files", "/srv/data/objects/abc.part"), 503)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "storage unavailable (StoreUnavailable: the database cannot be reached, PoolTimeout):"
        " answered 503",
        "storage unavailable (StoreFull: the object store is full, -): answered 507",
        "storage unavailable (OSError EMFILE): answered 503",
    ]
