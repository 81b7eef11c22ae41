"""``EphemeralStore`` (server/store/protocols.py) on PostgreSQL, for instances on
several machines (docs/SERVER_LAYERS.md, "Several instances").

The same rows as the SQLite file (server/store/ephemeral.py): keyed hashes,
values sealed by the domain, a use order that is a counter, and the UTC day
after which a row may go. The table is ``UNLOGGED``: it is never written to
the WAL (so never to a WAL archive or a streaming replica), and PostgreSQL
empties it after a crash, which logs sources out, the safe failure. Its pages
are still ordinary files in the data directory, and a deleted row stays in
them until ``VACUUM`` reuses the space (docs/THREAT_MODEL.md): what they hold
is sealed under secrets that only browsers and journalists have.

The table is step 5 of the one migration list (server/store/migrations.py),
created with the rest of the schema by ``PostgresDatabase.prepare``.
"""

from __future__ import annotations

from collections.abc import Callable

from server.store.postgres import PostgresDatabase


class PostgresEphemeralStore:
    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def prepare(self) -> None:
        """The schema, the table included, brought up to date (safe at every start)."""
        self.db.prepare()

    def get(self, kind: str, key: bytes) -> bytes | None:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT value FROM ephemeral WHERE kind = %s AND key = %s", (kind, key)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def update(
        self,
        kind: str,
        key: bytes,
        change: Callable[[bytes | None], bytes | None],
        *,
        tier: int = 0,
        until_day: str,
    ) -> bytes | None:
        with self.db.connect() as conn:
            # The row's lock (or, for a new key, the key's) orders concurrent changes.
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s || %s, 0))", (kind, key.hex())
            )
            row = conn.execute(
                "SELECT value FROM ephemeral WHERE kind = %s AND key = %s FOR UPDATE",
                (kind, key),
            ).fetchone()
            new = change(None if row is None else bytes(row[0]))
            if new is None:
                conn.execute("DELETE FROM ephemeral WHERE kind = %s AND key = %s", (kind, key))
                return None
            conn.execute(
                "INSERT INTO ephemeral(kind, key, value, tier, seq, until_day)"
                " VALUES (%s, %s, %s, %s, nextval('ephemeral_seq'), %s)"
                " ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value,"
                " tier = excluded.tier, seq = excluded.seq, until_day = excluded.until_day",
                (kind, key, new, tier, until_day),
            )
            return new

    def delete(self, kind: str, key: bytes) -> None:
        with self.db.connect() as conn:
            conn.execute("DELETE FROM ephemeral WHERE kind = %s AND key = %s", (kind, key))

    def add_once(self, kind: str, key: bytes, *, until_day: str) -> bool:
        with self.db.connect() as conn:
            cursor = conn.execute(
                "INSERT INTO ephemeral(kind, key, value, tier, seq, until_day)"
                " VALUES (%s, %s, '', 0, 0, %s) ON CONFLICT (kind, key) DO NOTHING",
                (kind, key, until_day),
            )
            return cursor.rowcount == 1

    def count(self, kind: str, tier: int) -> int:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM ephemeral WHERE kind = %s AND tier = %s", (kind, tier)
            ).fetchone()
        assert row is not None
        return int(row[0])

    def trim(self, kind: str, tier: int, keep: int) -> None:
        with self.db.connect() as conn:
            conn.execute(
                "DELETE FROM ephemeral WHERE kind = %s AND tier = %s AND key IN ("
                " SELECT key FROM ephemeral WHERE kind = %s AND tier = %s"
                " ORDER BY seq DESC OFFSET %s)",
                (kind, tier, kind, tier, keep),
            )

    def sweep(self, today: str) -> int:
        with self.db.connect() as conn:
            return conn.execute("DELETE FROM ephemeral WHERE until_day < %s", (today,)).rowcount
