"""The real source interface and journalist API on PostgreSQL and S3 (issue 14 §4).

The default wiring does not choose these stores yet (docs/SCALE_OUT.md); the
app factories take their stores, so the apps here get the PostgreSQL row
stores (a real cluster) and the S3 object store (moto's server over HTTP), and
are served by uvicorn on a thread. A source submits without JavaScript; a
journalist logs in to the API, lists, downloads (ranges too), writes a note
and deletes the source. The plaintext canaries are then looked for in
everything the backends keep: PostgreSQL's data directory (after a
checkpoint), every object with its headers and tags, and the instance's data
directory, which must hold no submission at all.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

import envelope
from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from server.settings import Settings
from server.store.postgres import PostgresDatabase
from server.store.postgres_stores import (
    PostgresJournalistStore,
    PostgresNewsroomStore,
    PostgresSourceStore,
)
from server.store.protocols import new_id
from server.store.s3_objects import S3Location, S3ObjectStore, connect
from server.store.wiring import sqlite_api_stores, sqlite_stores
from server.web.app import create_app
from server.web.journalist_api import create_journalist_app
from server.web.journalist_api.auth import signed_message
from tests.pg_cluster import Cluster
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, S3Server
from tests.server_process import (
    ROOT,
    SERVER_CMD,
    SourceClient,
    find_canaries,
    serve_in_thread,
)

# slow: two apps served on PostgreSQL and S3 with a whole submission (15 s and more).
pytestmark = pytest.mark.slow

MESSAGE = "LNTCANARY-scale-out-message-91c2"
FILE = b"LNTCANARY-scale-out-file-4d7e " * 3000  # 90 kB: more than one envelope chunk
HOST = "api.lanterne.test"


@dataclass
class Backend:
    settings: Settings
    alice: JournalistIdentity
    pg: PostgresDatabase
    objects: S3ObjectStore
    s3: S3Server
    bucket: str


@pytest.fixture
def backend(tmp_path: Path, pg_url: str, s3_server: S3Server) -> Iterator[Backend]:
    alice = JournalistIdentity.generate("alice")
    write_new_identity(alice, tmp_path / "keys", None)
    data_dir = tmp_path / "data"
    init = [*SERVER_CMD, "init", "--data-dir", str(data_dir)]
    subprocess.run(
        [*init, "--journalist", str(tmp_path / "keys" / "alice.pub")],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    settings = dataclasses.replace(Settings.load(data_dir), journalist_hosts=(HOST,))
    bucket = s3_server.new_bucket()
    client = connect(S3Location(s3_server.endpoint, bucket, ACCESS_KEY, SECRET_KEY, REGION))
    objects = S3ObjectStore(client, bucket, tmp_path / "spool", grace=timedelta(0))
    objects.create_dirs()
    with PostgresDatabase(pg_url, max_size=6) as pg:
        pg.prepare()
        public = alice.public
        PostgresJournalistStore(pg).add_journalist(
            "alice",
            public.x25519.public_bytes,
            public.signing_key,
            "journalist",
            "2026-12-04",
            hybrid_key=None if public.hybrid is None else public.hybrid.public_bytes,
        )
        yield Backend(settings, alice, pg, objects, s3_server, bucket)


def on_pg_and_s3(stores: object, b: Backend) -> object:
    return dataclasses.replace(
        stores,  # type: ignore[type-var]
        journalists=PostgresJournalistStore(b.pg),
        sources=PostgresSourceStore(b.pg),
        newsroom=PostgresNewsroomStore(b.pg),
        objects=b.objects,
    )


def logged_in(api: httpx.Client, alice: JournalistIdentity) -> None:
    challenge = api.post("/auth/challenge").json()["challenge"]
    raw = base64.urlsafe_b64decode(challenge + "=" * (-len(challenge) % 4))
    signature = alice.signing.sign(signed_message(raw, HOST)).signature
    token = api.post(
        "/auth/token",
        json={
            "journalist": "alice",
            "challenge": challenge,
            "signature": base64.urlsafe_b64encode(signature).decode().rstrip("="),
        },
    ).json()["token"]
    api.headers["Authorization"] = f"Bearer {token}"


def test_a_submission_read_and_deleted_on_postgresql_and_s3(
    backend: Backend, pg_cluster: Cluster
) -> None:
    b = backend
    identities = b.alice.identities()
    source_app = create_app(b.settings, stores=on_pg_and_s3(sqlite_stores(b.settings), b))
    with serve_in_thread(source_app) as base_url, SourceClient(base_url) as source:
        codename = source.first_submission(MESSAGE, [("report.txt", FILE, "text/plain")])
    assert codename

    # Rows in PostgreSQL, objects in S3, nothing of it in the data directory.
    assert db_rows_of(b.pg, "submissions") == 1
    assert list((b.settings.data_dir / "objects").iterdir()) == []
    with contextlib.closing(sqlite3.connect(b.settings.database_path)) as embedded:
        assert embedded.execute("SELECT count(*) FROM submissions").fetchone() == (0,)
    stored = b.objects.ids()
    assert len(stored) == 3  # manifest, message, file

    api_app = create_journalist_app(
        b.settings, stores=on_pg_and_s3(sqlite_api_stores(b.settings), b)
    )
    with serve_in_thread(api_app) as base_url, httpx.Client(base_url=f"{base_url}/api/v1") as api:
        logged_in(api, b.alice)
        [summary] = api.get("/sources").json()
        detail = api.get(f"/sources/{summary['id']}").json()
        [submission] = detail["items"]["submissions"]
        by_kind = {o["kind"]: o for o in submission["objects"]}
        manifest_env = api.get(f"/objects/{by_kind['manifest']['id']}").content
        manifest = json.loads(envelope.decrypt_bytes(manifest_env, identities))
        message_id = manifest["message"]["object"]
        message_env = api.get(f"/objects/{message_id}").content
        assert envelope.decrypt_bytes(message_env, identities).decode() == MESSAGE
        file_id = manifest["files"][0]["object"]
        whole = api.get(f"/objects/{file_id}").content
        tail = api.get(f"/objects/{file_id}", headers={"Range": "bytes=1000-"})
        assert tail.status_code == 206 and tail.content == whole[1000:]
        assert envelope.decrypt_bytes(whole, identities) == FILE
        note = envelope.encrypt_bytes(b"checked", [b.alice.public.recipient])
        assert api.post(f"/sources/{summary['id']}/notes", content=note).status_code == 201
        assert len(b.objects.ids()) == 4

        # Every place the backends keep something: no plaintext.
        probe = b"LNTPROBE-" + new_id().encode()  # shows that the scan reads the rows' pages
        with b.pg.connect() as conn:
            conn.execute("INSERT INTO meta(key, value) VALUES ('probe', %s)", (probe.decode(),))
        with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
            conn.execute("CHECKPOINT")  # the rows' pages on disk, not only in memory
        assert find_canaries([probe], [pg_cluster.data_dir])
        canaries = [MESSAGE.encode(), FILE[:30]]
        assert find_canaries(canaries, [pg_cluster.data_dir, b.settings.data_dir]) == []
        raw = b"".join(
            b.s3.client().get_object(Bucket=b.bucket, Key=k)["Body"].read() for k in stored
        )
        assert raw and not any(c in raw for c in canaries)

        assert api.delete(f"/sources/{summary['id']}").status_code == 204
        assert api.get("/sources").json() == []
    assert b.objects.ids() == set()
    assert db_rows_of(b.pg, "submissions") == 0


def db_rows_of(pg: PostgresDatabase, table: str) -> int:
    with pg.connect() as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # a name from the test
    assert row is not None
    return int(row[0])
