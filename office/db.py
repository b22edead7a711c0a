"""The office database, shared by the office's processes: SQLite by default, PostgreSQL to grow.

``office serve`` writes what kits send; the web app shows it; ``office assign`` and
``office command`` queue what goes out. The schema is the Django models of
:mod:`office.models`, migrated by Django's migrations (``office/migrations``), so the web
app and the ingest always agree on it. :class:`OfficeDb` is the ingest's way in.

- **SQLite** (a file path; the default on one office PC): WAL, so one process writes
  while the others read; ``synchronous=FULL``, so a committed transaction is on the disk
  before the office sends a kit the receipt that lets it delete its copy; a busy timeout,
  so a second process waits instead of failing; ``BEGIN IMMEDIATE``, so two writers never
  deadlock upgrading a read lock.
- **PostgreSQL** (a ``postgresql://user@host:port/dbname`` URL): for several ingest
  workers (MQTT 5 shared subscriptions); PostgreSQL's default ``fsync`` and
  ``synchronous_commit`` give the same promise.

A SQLite file made by the office before the web app (the ``sqlite-utils`` migrations
``jaranijo.office`` m001-m004, or the script before them) is adopted as it is: its
tables are these, so the matching Django migrations are recorded as applied and the rest
run. A file whose tables are not the office's (the kit's store given by mistake) is
refused, never altered.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sync import protocol as p
from sync.errors import StoreError

BUSY_TIMEOUT_S = 10.0
SETTINGS_MODULE = "office.web.settings"

# The tables of migration office.0001 (the office's schema before the web app), and the
# two the sqlite-utils migrations m003 and m004 added (office.0002 has them).
INITIAL_TABLES = ("records", "uploads", "chunks", "kits", "positions", "assignments",
                  "commands", "refusals")
LATER_TABLES = ("refusal_counts", "quarantine")


def database_settings(target: str | Path) -> dict[str, Any]:
    """A Django ``DATABASES`` entry for a SQLite file path or a ``postgresql://`` URL."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        url = urlsplit(text)
        return {"ENGINE": "django.db.backends.postgresql", "NAME": url.path.lstrip("/"),
                "USER": unquote(url.username or ""), "PASSWORD": unquote(url.password or ""),
                "HOST": url.hostname or "", "PORT": str(url.port or ""),
                "CONN_MAX_AGE": 0}
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(Path(text)),
            "OPTIONS": {"timeout": BUSY_TIMEOUT_S, "transaction_mode": "IMMEDIATE",
                        "init_command": f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}; "
                                        "PRAGMA journal_mode = WAL; "
                                        "PRAGMA synchronous = FULL"}}


def setup_django() -> None:
    """Configure Django for a process that is not the web server (the ingest, the CLI)."""
    import django
    from django.apps import apps

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    if not apps.ready:
        django.setup()


_lock = threading.Lock()
_migrated: set[str] = set()


def use_database(target: str | Path) -> str:
    """The Django connection alias for ``target``, added if new and migrated once per
    process; "default" when it is the settings' own database."""
    setup_django()
    from django.db import connections

    conf = database_settings(target)
    with _lock:
        alias = "default"
        default = connections.settings["default"]
        if (default.get("ENGINE"), str(default.get("NAME")), default.get("HOST", "")) != (
                conf["ENGINE"], conf["NAME"], conf.get("HOST", "")):
            alias = f"office:{conf.get('HOST', '')}:{conf.get('PORT', '')}:{conf['NAME']}"
            if alias not in connections.settings:
                connections.settings[alias] = connections.configure_settings(
                    {"default": default, alias: conf})[alias]
        if alias not in _migrated:
            _migrate(alias, conf)
            _migrated.add(alias)
    return alias


def _migrate(alias: str, conf: dict[str, Any]) -> None:
    from django.core.management import call_command
    from django.db import DatabaseError, connections

    sqlite_path = Path(conf["NAME"]) if conf["ENGINE"].endswith("sqlite3") else None
    with _migration_lock(alias, sqlite_path):
        try:
            if sqlite_path is not None:
                sqlite_path.parent.mkdir(parents=True, exist_ok=True)
                _adopt_sqlite(alias, sqlite_path)
            call_command("migrate", database=alias, interactive=False, verbosity=0)
        except (DatabaseError, sqlite3.DatabaseError) as exc:
            connections[alias].close()
            raise _cannot_open(conf["NAME"], exc) from None


@contextlib.contextmanager
def _migration_lock(alias: str, sqlite_path: Path | None) -> Iterator[None]:
    """One migrating process at a time: a lock file beside a SQLite database, an advisory
    lock in PostgreSQL."""
    from django.db import connections

    if sqlite_path is not None:
        sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{sqlite_path}.migrate-lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
        return
    with connections[alias].cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(8427163)")
        try:
            yield
        finally:
            cur.execute("SELECT pg_advisory_unlock(8427163)")


def _adopt_sqlite(alias: str, path: Path) -> None:
    """A file made before Django: record the migrations its tables already are."""
    from django.core.management import call_command

    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        conn = sqlite3.connect(path)
        try:
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "django_migrations" in tables or not tables:
                return
            _check_adoptable(conn, path, tables)
            old: set[str] = set()
            if "_sqlite_migrations" in tables:
                old = {r[0] for r in conn.execute(
                    "SELECT name FROM _sqlite_migrations WHERE migration_set = "
                    "'jaranijo.office'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise _cannot_open(str(path), exc) from None
    done_later = set(LATER_TABLES) <= tables and {
        "m002_outgoing_queue_indexes", "m003_upload_quotas_refusal_counts",
        "m004_quarantine"} <= old
    if old - {"m001_initial"} and not done_later:
        raise StoreError(
            id=f"{path}: migrasi lama kantor hanya sebagian ({', '.join(sorted(old))})",
            en=f"{path}: the office's old migrations are only partly applied "
               f"({', '.join(sorted(old))})",
            hint_id="Jalankan versi sebelumnya sekali untuk menuntaskannya; berkas tidak diubah",
            hint_en="Run the previous version once to finish them; the file was not changed",
            code="not_office_db")
    call_command("migrate", "office", "0002" if done_later else "0001", fake=True,
                 database=alias, interactive=False, verbosity=0)


class Row(dict[str, Any]):
    """A result row as ``sqlite3.Row`` is one: by column name, by position, and unpacked
    as a tuple (iterating gives the values); ``dict(row)`` gives the columns."""

    def __getitem__(self, key: str | int) -> Any:  # type: ignore[override]
        if isinstance(key, int):
            return list(self.values())[key]
        return super().__getitem__(key)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return iter(list(self.values()))


class _Result:
    """What :meth:`_Conn.execute` returns: the rows read at once, and ``rowcount``."""

    def __init__(self, rows: list[Row], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Row | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Row]:
        return self.rows

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)


class _Conn:
    """SQL on this thread's Django connection for the alias, with ``%s`` parameters.

    The statement runs on a cursor of the driver's own connection under Django's (the
    same connection, so inside Django's transactions, with its errors as Django's), not
    through Django's cursor wrapper: that costs ~30 µs a statement, most of what a
    telemetry message costs the ingest (``tests/bench/bench_ingest.py``)."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self._sqlite_sql: dict[str, str] = {}  # "%s" -> "?", once per statement text

    def _cursor(self, sql: str) -> tuple[Any, Any, str]:
        from django.db import connections

        wrapper = connections[self.alias]
        if wrapper.connection is None:
            wrapper.ensure_connection()
        wrapper.validate_no_broken_transaction()
        if wrapper.vendor == "sqlite":
            converted = self._sqlite_sql.get(sql)
            if converted is None:
                converted = self._sqlite_sql[sql] = _QMARK.sub("?", sql).replace("%%", "%")
            sql = converted
        return wrapper, wrapper.connection.cursor(), sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Result:
        wrapper, cur, sql = self._cursor(sql)
        try:
            with wrapper.wrap_database_errors:
                cur.execute(sql, tuple(params))
                rows: list[Row] = []
                if cur.description:
                    names = [d[0] for d in cur.description]
                    rows = [Row(zip(names, (bytes(v) if isinstance(v, memoryview) else v
                                            for v in r), strict=True))
                            for r in cur.fetchall()]
                return _Result(rows, cur.rowcount)
        finally:
            cur.close()

    def executemany(self, sql: str, seq: Sequence[Sequence[Any]]) -> None:
        wrapper, cur, sql = self._cursor(sql)
        try:
            with wrapper.wrap_database_errors:
                cur.executemany(sql, [tuple(s) for s in seq])
        finally:
            cur.close()


_QMARK = re.compile(r"(?<!%)%s")  # as Django's SQLite backend converts its "%s"


def transaction_atomic(alias: str) -> contextlib.AbstractContextManager[Any]:
    from django.db import transaction

    return transaction.atomic(using=alias)


class OfficeDb:
    """The office database: what kits sent, what they are, and what goes out to them.

    It stores records received (still sealed, with their hash and size), uploads in
    progress chunk by chunk, each kit's latest status, merged health, location and past
    positions, the assignments and commands queued for kits with their delivery and
    results, and every refused message with its reason. The tables are the Django models
    of :mod:`office.models`; this class writes them with plain SQL that SQLite and
    PostgreSQL both run, for the ingest's speed. Open it with :meth:`open` (which makes
    or migrates the database); it may be used from any thread (each gets its own
    connection).

    >>> db = OfficeDb.open(tmp_path / "office.db")   # doctest: +SKIP
    >>> db.kits()                                    # doctest: +SKIP
    []
    """

    def __init__(self, target: str | Path, alias: str) -> None:
        self.target = target
        self.alias = alias
        self.conn = _Conn(alias)
        self._vendor: str | None = None

    @property
    def path(self) -> Path:
        return Path(str(self.target))

    @classmethod
    def open(cls, target: str | Path) -> OfficeDb:
        """Open the database (a SQLite file, made if missing, or a ``postgresql://`` URL)
        and bring its schema up to date; refuse one that is not the office's."""
        alias = use_database(target)
        return cls(target, alias)

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        from django.db import connections

        connections[self.alias].close()

    def transaction(self) -> contextlib.AbstractContextManager[Any]:
        """One durable write transaction, committed when the block ends without error."""
        return transaction_atomic(self.alias)

    @property
    def vendor(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        if self._vendor is None:
            from django.db import connections

            self._vendor = str(connections[self.alias].vendor)
        return self._vendor

    @contextlib.contextmanager
    def telemetry_transaction(self) -> Iterator[None]:
        """A transaction for telemetry (location, health), which no kit waits on a receipt
        for: atomic, but committed without waiting for the disk. A power cut may lose the
        last moments of it (the kit reports again within minutes); it never corrupts, and
        every durable commit after it (a record, a claim) also makes it durable.
        PostgreSQL: ``SET LOCAL synchronous_commit = off`` (asynchronous commit, at most
        ``3 x wal_writer_delay`` lost). SQLite (WAL): ``synchronous = NORMAL`` for this
        commit only, back to FULL after it; the next FULL commit syncs the WAL with it.
        Inside another transaction it is just part of that one."""
        from django.db import connections

        if connections[self.alias].in_atomic_block:
            with self.transaction():
                yield
            return
        if self.vendor == "postgresql":
            with self.transaction():
                self.conn.execute("SET LOCAL synchronous_commit = off")
                yield
            return
        self.conn.execute("PRAGMA synchronous = NORMAL")
        try:
            with self.transaction():
                yield
        finally:
            self.conn.execute("PRAGMA synchronous = FULL")

    def lock_kit(self, kit_id: str) -> None:
        """Inside :meth:`transaction`: hold the kit's lock until the transaction ends, so
        several ingest workers (a shared subscription) never interleave their reads and
        writes of one kit's uploads, health or status. PostgreSQL: a transaction-level
        advisory lock keyed by the kit id (it also covers a first chunk, whose upload row
        does not exist yet to be locked ``FOR UPDATE``). SQLite: nothing to do, the
        transaction's ``BEGIN IMMEDIATE`` already holds the database's one write lock."""
        if self.vendor == "postgresql":
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_kit_lock_key(kit_id),))

    def lock_kits(self, kit_ids: Iterable[str]) -> None:
        """Inside :meth:`transaction`: :meth:`lock_kit` for each kit, in sorted kit order and
        in one statement (a telemetry batch holds hundreds). Every worker takes several
        kits' locks in that one order and a single-kit transaction takes one, so no two
        transactions ever wait on each other in a circle."""
        if self.vendor != "postgresql":
            return
        keys = [_kit_lock_key(k) for k in sorted(set(kit_ids))]
        if len(keys) == 1:
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (keys[0],))
        elif keys:
            # The function scan yields the array in order, and a volatile function in the
            # select list is evaluated after the ORDER BY: the locks go in kit order. One
            # row back (the count), not one a kit.
            self.conn.execute("SELECT count(*) FROM (SELECT pg_advisory_xact_lock(k) FROM "
                              "unnest(%s::bigint[]) WITH ORDINALITY AS t(k, n) ORDER BY n) s",
                              (keys,))

    # -- records ---------------------------------------------------------------------------
    def record(self, kit_id: str, record_id: str) -> Row | None:
        return self.conn.execute(
            "SELECT kit_id, record_id, sha256, size, sealed_at, received_at, opened "
            "FROM records WHERE kit_id = %s AND record_id = %s", (kit_id, record_id)).fetchone()

    def record_blob(self, kit_id: str, record_id: str) -> bytes | None:
        row = self.conn.execute("SELECT blob FROM records WHERE kit_id = %s AND record_id = %s",
                                (kit_id, record_id)).fetchone()
        return None if row is None else bytes(row[0])

    def records(self, kit_id: str | None = None) -> list[dict[str, Any]]:
        sql = ("SELECT kit_id, record_id, sha256, size, sealed_at, received_at, opened "
               "FROM records")
        rows = self.conn.execute(sql + (" WHERE kit_id = %s" if kit_id else "") +
                                 " ORDER BY received_at", (kit_id,) if kit_id else ())
        return [dict(r) for r in rows]

    def upload(self, kit_id: str, record_id: str) -> Row | None:
        return self.conn.execute("SELECT * FROM uploads WHERE kit_id = %s AND record_id = %s",
                                 (kit_id, record_id)).fetchone()

    def append_chunk(self, kit_id: str, chunk: p.Chunk, have: int, data: bytes) -> None:
        """Keep bytes ``have .. have+len(data)`` of an upload, durably."""
        now = time.time()
        with self.transaction():
            self.conn.execute(
                "INSERT INTO uploads VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT(kit_id, record_id) DO UPDATE SET have = excluded.have, "
                "updated_at = excluded.updated_at",
                (kit_id, chunk.record_id, chunk.sha256.hex(), chunk.size, have + len(data),
                 now, now))
            self.conn.execute("INSERT INTO chunks VALUES (%s, %s, %s, %s) ON CONFLICT "
                              "(kit_id, record_id, off) DO UPDATE SET data = excluded.data",
                              (kit_id, chunk.record_id, have, data))

    def assembled(self, kit_id: str, record_id: str) -> bytes:
        rows = self.conn.execute("SELECT data FROM chunks WHERE kit_id = %s AND record_id = %s "
                                 "ORDER BY off", (kit_id, record_id))
        return b"".join(bytes(r[0]) for r in rows)

    def finish_record(self, kit_id: str, record_id: str, sha_hex: str, blob: bytes,
                      sealed_at: str, opened: bool) -> None:
        """Store the whole record and drop its chunks, in one durable transaction."""
        with self.transaction():
            self.conn.execute("INSERT INTO records VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                              (kit_id, record_id, sha_hex, len(blob), sealed_at, time.time(),
                               int(opened), blob))
            self._drop_upload(kit_id, record_id)

    def quarantine_record(self, kit_id: str, record_id: str, sha_hex: str, blob: bytes,
                          sealed_at: str) -> bool:
        """Keep aside a record colliding with a stored one and drop its upload, in one durable
        transaction; False if those very bytes were already kept."""
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT INTO quarantine VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (kit_id, record_id, sha_hex, len(blob), sealed_at, time.time(), blob))
            self._drop_upload(kit_id, record_id)
        return cursor.rowcount == 1

    def quarantined(self, kit_id: str | None = None) -> list[dict[str, Any]]:
        """Records kept aside for review (without their bytes: :meth:`quarantined_blob`)."""
        sql = "SELECT kit_id, record_id, sha256, size, sealed_at, received_at FROM quarantine"
        rows = self.conn.execute(sql + (" WHERE kit_id = %s" if kit_id else "") +
                                 " ORDER BY received_at", (kit_id,) if kit_id else ())
        return [dict(r) for r in rows]

    def quarantined_blob(self, kit_id: str, record_id: str, sha_hex: str) -> bytes | None:
        row = self.conn.execute("SELECT blob FROM quarantine WHERE kit_id = %s AND "
                                "record_id = %s AND sha256 = %s",
                                (kit_id, record_id, sha_hex)).fetchone()
        return None if row is None else bytes(row[0])

    def is_quarantined(self, kit_id: str, record_id: str, sha_hex: str) -> bool:
        return self.conn.execute("SELECT 1 FROM quarantine WHERE kit_id = %s AND record_id = %s "
                                 "AND sha256 = %s", (kit_id, record_id, sha_hex)
                                 ).fetchone() is not None

    def quarantine_untrusted(self, kit_id: str, record_id: str, sha_hex: str, blob: bytes,
                             declared_hex: str, code: str, reason_id: str,
                             reason_en: str) -> bool:
        """Keep bytes that failed the office's check on receipt in quarantine with why, in
        one transaction (the same bytes again keep their first reason); True if newly kept."""
        with self.transaction():
            kept = self.quarantine_record(kit_id, record_id, sha_hex, blob, "")
            self.conn.execute(
                "INSERT INTO quarantine_reasons (kit_id, record_id, sha256, declared_sha256, "
                "code, reason_id, reason_en, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (kit_id, record_id, sha_hex, declared_hex, code[:40], reason_id, reason_en,
                 time.time()))
        return kept

    def untrusted(self, kit_id: str, record_id: str, sha_hex: str) -> tuple[str, str] | None:
        """``(code, English reason)`` when these quarantined bytes failed the office's check
        on receipt (office/ingest.py); None for a collision or a revoked kit's upload."""
        row = self.conn.execute("SELECT code, reason_en FROM quarantine_reasons WHERE "
                                "kit_id = %s AND record_id = %s AND sha256 = %s",
                                (kit_id, record_id, sha_hex)).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def quarantine_take(self, kit_id: str, record_id: str, sha_hex: str) -> bool:
        """After review: the quarantined bytes become the record, and the record stored so
        far (if any: a revoked kit's held record has none) goes to quarantine in their place
        (nothing is deleted). False when there is no such quarantined record, or when the
        bytes failed their check on receipt (:meth:`untrusted`): those never become a
        record, whoever reviews them."""
        if self.untrusted(kit_id, record_id, sha_hex) is not None:
            return False
        with self.transaction():
            kept = self.conn.execute(
                "SELECT blob, sealed_at FROM quarantine WHERE kit_id = %s AND record_id = %s "
                "AND sha256 = %s", (kit_id, record_id, sha_hex)).fetchone()
            stored = self.conn.execute(
                "SELECT sha256, blob, sealed_at FROM records WHERE kit_id = %s AND record_id = %s",
                (kit_id, record_id)).fetchone()
            if kept is None:
                return False
            now = time.time()
            if stored is None:
                self.conn.execute("DELETE FROM quarantine WHERE kit_id = %s AND record_id = %s "
                                  "AND sha256 = %s", (kit_id, record_id, sha_hex))
                self.conn.execute("INSERT INTO records (kit_id, record_id, sha256, size, "
                                  "sealed_at, received_at, opened, blob) VALUES (%s, %s, %s, "
                                  "%s, %s, %s, 0, %s)", (kit_id, record_id, sha_hex,
                                                         len(kept[0]), kept[1], now, kept[0]))
                return True
            self.conn.execute("DELETE FROM quarantine WHERE kit_id = %s AND record_id = %s AND "
                              "sha256 = %s", (kit_id, record_id, sha_hex))
            self.conn.execute("INSERT INTO quarantine VALUES (%s, %s, %s, %s, %s, %s, %s) "
                              "ON CONFLICT DO NOTHING",
                              (kit_id, record_id, stored[0], len(stored[1]), stored[2], now,
                               stored[1]))
            self.conn.execute("UPDATE records SET sha256 = %s, size = %s, sealed_at = %s, "
                              "received_at = %s, opened = 0, blob = %s WHERE kit_id = %s AND "
                              "record_id = %s", (sha_hex, len(kept[0]), kept[1], now, kept[0],
                                                kit_id, record_id))
        return True

    def is_revoked(self, kit_id: str) -> bool:
        """Whether staff revoked the kit (reported lost): what it uploads is held."""
        return self.conn.execute("SELECT 1 FROM revocations WHERE kit_id = %s",
                                 (kit_id,)).fetchone() is not None

    def quarantine_drop(self, kit_id: str, record_id: str, sha_hex: str) -> bool:
        """After review: discard a quarantined record (a forgery); False if there is none."""
        with self.transaction():
            cur = self.conn.execute("DELETE FROM quarantine WHERE kit_id = %s AND record_id = %s "
                                    "AND sha256 = %s", (kit_id, record_id, sha_hex))
        return cur.rowcount == 1

    def quarantine_usage(self, kit_id: str) -> tuple[int, int]:
        """A kit's records kept aside: how many, and how many bytes."""
        row = self.conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM quarantine "
                                "WHERE kit_id = %s", (kit_id,)).fetchone()
        return int(row[0]), int(row[1])

    def open_uploads(self, kit_id: str) -> tuple[int, int]:
        """A kit's unfinished uploads: how many, and how many bytes of chunks they hold."""
        row = self.conn.execute("SELECT COUNT(*), COALESCE(SUM(have), 0) FROM uploads "
                                "WHERE kit_id = %s", (kit_id,)).fetchone()
        return int(row[0]), int(row[1])

    def expire_uploads(self, before: float) -> list[tuple[str, str]]:
        """Drop every unfinished upload with no chunk since ``before``; ``(kit, record)`` each."""
        with self.transaction():
            stale = [(r[0], r[1]) for r in self.conn.execute(
                "SELECT kit_id, record_id FROM uploads WHERE updated_at < %s", (before,))]
            for kit_id, record_id in stale:
                self._drop_upload(kit_id, record_id)
        return stale

    def drop_upload(self, kit_id: str, record_id: str) -> None:
        with self.transaction():
            self._drop_upload(kit_id, record_id)

    def _drop_upload(self, kit_id: str, record_id: str) -> None:
        self.conn.execute("DELETE FROM chunks WHERE kit_id = %s AND record_id = %s",
                          (kit_id, record_id))
        self.conn.execute("DELETE FROM uploads WHERE kit_id = %s AND record_id = %s",
                          (kit_id, record_id))

    # -- kits ------------------------------------------------------------------------------
    def kit(self, kit_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM kits WHERE kit_id = %s", (kit_id,)).fetchone()
        return None if row is None else dict(row)

    def kits(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM kits ORDER BY kit_id")]

    def set_kit(self, kit_id: str, **values: Any) -> None:
        columns = ", ".join(values)
        marks = ", ".join("%s" for _ in values)
        updates = ", ".join(f"{c} = excluded.{c}" for c in values)
        self.conn.execute(f"INSERT INTO kits (kit_id, {columns}) VALUES (%s, {marks}) "
                          f"ON CONFLICT(kit_id) DO UPDATE SET {updates}",
                          (kit_id, *values.values()))

    def write_telemetry(self, batch: Sequence[Telemetry]) -> None:
        """Many telemetry messages (:class:`Telemetry`, oldest first) in one telemetry
        transaction (:meth:`telemetry_transaction`), coalesced per kit as if they had been
        written one by one: the kits row written once a kit, its columns as the last message
        setting each left them; health merged, in order, over the stored health read once
        (a report's fields that are None keep the last known: slow fields travel only on
        change); positions and health samples inserted with ``executemany`` in arrival
        order (of two points with one ``(kit, tst)`` the first stays, as before). On
        PostgreSQL each kit written is locked first (:meth:`lock_kits`, sorted), so a
        worker of a share group handling the same kit's chunk or status waits for it."""
        kits: dict[str, dict[str, Any]] = {}
        healths: dict[str, list[p.Health]] = {}
        positions: list[tuple[Any, ...]] = []
        samples: list[tuple[Any, ...]] = []
        for t in batch:
            kits.setdefault(t.kit_id, {}).update(t.kit)
            positions.extend((t.kit_id, q.tst, q.lat, q.lon, q.acc_m, t.source)
                             for q in t.positions)
            h = t.health
            if h is not None:
                healths.setdefault(t.kit_id, []).append(h)
                samples.append((t.kit_id, t.at, h.battery_percent, h.battery_state,
                                h.rssi_dbm, h.rsrp_dbm, h.sinr_db, h.outbox_count))
        order = sorted(kits)
        with self.telemetry_transaction():
            self.lock_kits(order)
            if healths:
                stored = self._healths(sorted(healths))
                for kit_id, reports in healths.items():
                    merged = json.loads(stored.get(kit_id) or "{}")
                    for h in reports:
                        merged.update({k: v for k, v in h.__dict__.items() if v is not None})
                    kits[kit_id]["health"] = json.dumps(merged)
            groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
            for kit_id in order:
                values = kits[kit_id]
                if values:
                    names = tuple(sorted(values))
                    groups.setdefault(names, []).append(
                        (kit_id, *(values[c] for c in names)))
            for names, rows in groups.items():
                conflict = "ON CONFLICT(kit_id) DO UPDATE SET " + ", ".join(
                    f"{c} = excluded.{c}" for c in names)
                self._insert_many("kits", ("kit_id", *names), rows, conflict)
            if positions:
                self._insert_many("positions", _POSITION_COLUMNS, positions,
                                  "ON CONFLICT DO NOTHING")
            if samples:
                self._insert_many("health_samples", _SAMPLE_COLUMNS, samples)

    def _insert_many(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]],
                     conflict: str = "") -> None:
        """Insert ``rows`` (in order) into ``table``'s ``columns``. SQLite: ``executemany``,
        one prepared statement run for each row. PostgreSQL: one ``INSERT ... SELECT FROM
        json_to_recordset(rows as one JSON text)``: Django's psycopg connection binds
        parameters in the client and prepares nothing (for connection poolers), so
        ``executemany`` there has the server parse and plan a statement a row, and arrays
        of text cost psycopg a regular expression a character; one JSON text (made by the
        ``json`` module's C encoder) costs neither. Floats go through JSON exactly (``repr``
        digits). ``ON CONFLICT DO NOTHING`` keeps the first of two rows with one key, as row
        by row; rows for ``DO UPDATE`` must have distinct keys (one a kit: coalesced)."""
        names = ", ".join(columns)
        if self.vendor != "postgresql":
            marks = ", ".join("%s" for _ in columns)
            self.conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}",
                                  rows)
            return
        types = [_PG_TYPES.get(f"{table}.{c}") or _PG_TYPES[c] for c in columns]
        records = [{c: None if v is None else cast(v)
                    for c, (_, cast), v in zip(columns, types, row, strict=True)} for row in rows]
        shape = ", ".join(f"{c} {sql_type}" for c, (sql_type, _) in zip(columns, types,
                                                                        strict=True))
        self.conn.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM "
                          f"json_to_recordset(%s::json) AS r({shape}) {conflict}",
                          (json.dumps(records),))

    def _healths(self, kit_ids: list[str]) -> dict[str, str | None]:
        """The stored health JSON of these kits (those that have a row)."""
        out: dict[str, str | None] = {}
        for i in range(0, len(kit_ids), 500):  # within any SQLite's parameter limit
            part = kit_ids[i:i + 500]
            marks = ", ".join("%s" for _ in part)
            out.update((r[0], r[1]) for r in self.conn.execute(
                f"SELECT kit_id, health FROM kits WHERE kit_id IN ({marks})", part))
        return out

    def prune_health_samples(self, before: float, *, rows: int = 1000,
                             budget: int = 20_000) -> tuple[int, bool]:
        """Delete health samples taken before ``before``: ``(how many, whether all are
        gone)``. In deletes of at most ``rows`` rows, each its own short transaction, so
        the ingest and the web app never wait long on it; at most ``budget`` rows a call,
        so a first pruning of a large table goes in steps (call again while not done).

        The kits are found along the ``(kit_id, tst)`` index (a skip scan written as a
        recursive query: each next kit id is one index probe), and so are each kit's old
        rows: no pass over the whole table. PostgreSQL: rows another worker is deleting
        at the same moment are skipped (``SKIP LOCKED``), not waited for."""
        kits = [r[0] for r in self.conn.execute(
            "WITH RECURSIVE k(kit_id) AS ("
            "SELECT MIN(kit_id) FROM health_samples UNION ALL "
            "SELECT (SELECT MIN(h.kit_id) FROM health_samples h WHERE h.kit_id > k.kit_id) "
            "FROM k WHERE k.kit_id IS NOT NULL) "
            "SELECT kit_id FROM k WHERE kit_id IS NOT NULL AND EXISTS (SELECT 1 FROM "
            "health_samples o WHERE o.kit_id = k.kit_id AND o.tst < %s)", (before,))]
        skip = " FOR UPDATE SKIP LOCKED" if self.vendor == "postgresql" else ""
        sql = ("DELETE FROM health_samples WHERE id IN (SELECT id FROM health_samples "
               f"WHERE kit_id = %s AND tst < %s LIMIT %s{skip})")
        deleted = 0
        for kit_id in kits:
            while True:
                if deleted >= budget:
                    return deleted, False
                limit = min(rows, budget - deleted)
                with self.transaction():
                    n = max(0, self.conn.execute(sql, (kit_id, before, limit)).rowcount)
                deleted += n
                if n < limit:
                    break
        return deleted, True

    def positions(self, kit_id: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(
            "SELECT tst, lat, lon, acc, source FROM positions WHERE kit_id = %s ORDER BY tst",
            (kit_id,))]

    def refuse(self, kit_id: str, leaf: str, reason: str) -> int:
        """Count a refusal; the count of its kind (kit, leaf, reason) in this minute.

        Only the first of a kind in a minute (count 1) is also written to
        ``refusals`` (and logged, by the receiver): a flood of garbage grows a
        counter in ``refusal_counts``, not a row a message.
        """
        now = time.time()
        with self.transaction():
            n = int(self.conn.execute(
                "INSERT INTO refusal_counts VALUES (%s, %s, %s, %s, 1) ON CONFLICT(kit_id, leaf, "
                "reason, minute) DO UPDATE SET n = refusal_counts.n + 1 RETURNING n",
                (kit_id, leaf[:16], reason[:40], int(now // 60))).fetchone()[0])
            if n == 1:
                self.conn.execute("INSERT INTO refusals (ts, kit_id, leaf, reason) "
                                  "VALUES (%s, %s, %s, %s)", (now, kit_id, leaf[:16], reason[:40]))
        return n

    def refusals(self) -> list[dict[str, Any]]:
        """The first refusal of each kind in each minute (:meth:`refusal_counts` has them all)."""
        return [dict(r) for r in self.conn.execute(
            "SELECT ts, kit_id, leaf, reason FROM refusals ORDER BY id")]

    def refusal_counts(self, kit_id: str | None = None) -> list[dict[str, Any]]:
        """Every refusal counted, per kit, leaf, reason and minute (Unix time // 60)."""
        sql = "SELECT kit_id, leaf, reason, minute, n FROM refusal_counts"
        rows = self.conn.execute(sql + (" WHERE kit_id = %s" if kit_id else "") +
                                 " ORDER BY minute, kit_id, leaf, reason",
                                 (kit_id,) if kit_id else ())
        return [dict(r) for r in rows]

    # -- outgoing: assignments and commands ------------------------------------------------
    def queue_assignment(self, kit_id: str, assignment_id: str, sealed_at: str,
                         envelope: bytes) -> None:
        self.conn.execute(
            "INSERT INTO assignments (kit_id, assignment_id, sealed_at, envelope, queued_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT(kit_id, assignment_id) DO UPDATE SET "
            "sealed_at = excluded.sealed_at, envelope = excluded.envelope, "
            "queued_at = excluded.queued_at, sent_at = NULL, delivered_at = NULL, "
            "opened_at = NULL, error = ''",
            (kit_id, assignment_id, sealed_at, envelope, time.time()))

    def assignments(self, kit_id: str | None = None) -> list[dict[str, Any]]:
        """Each assignment's progress: queued, ``sent_at``, ``delivered_at`` (the agent
        holds it, sealed) and ``opened_at`` (an officer's kiosk opened and stored it)."""
        sql = ("SELECT kit_id, assignment_id, sealed_at, queued_at, sent_at, delivered_at, "
               "opened_at, error FROM assignments")
        rows = self.conn.execute(sql + (" WHERE kit_id = %s" if kit_id else "") +
                                 " ORDER BY queued_at", (kit_id,) if kit_id else ())
        return [dict(r) for r in rows]

    def undelivered_assignments(self, kit_id: str | None = None, *,
                                unsent_only: bool = False) -> list[Row]:
        sql = "SELECT * FROM assignments WHERE delivered_at IS NULL"
        args: tuple[Any, ...] = ()
        if kit_id:
            sql += " AND kit_id = %s"
            args = (kit_id,)
        if unsent_only:
            sql += " AND sent_at IS NULL"
        return list(self.conn.execute(sql + " ORDER BY queued_at", args))

    def claim_assignment(self, kit_id: str, assignment_id: str, *,
                         sent_before: float | None) -> tuple[float, float | None] | None:
        """Mark an undelivered assignment sent now, if nobody else did: unsent
        (``sent_before`` None) or last sent before ``sent_before``. One atomic conditional
        UPDATE, so of several ingest workers polling the same queue exactly one wins and
        publishes it. ``(claimed_at, sent_at before)`` for :meth:`unclaim_assignment`, or
        None when another worker has it (or it was delivered meanwhile)."""
        with self.transaction():
            row = self.conn.execute(
                "SELECT sent_at FROM assignments WHERE kit_id = %s AND assignment_id = %s "
                "AND delivered_at IS NULL", (kit_id, assignment_id)).fetchone()
            if row is None:
                return None
            before = row["sent_at"]
            if before is not None and (sent_before is None or before >= sent_before):
                return None
            now = time.time()
            sql = ("UPDATE assignments SET sent_at = %s WHERE kit_id = %s AND "
                   "assignment_id = %s AND delivered_at IS NULL AND ")
            if before is None:
                cur = self.conn.execute(sql + "sent_at IS NULL", (now, kit_id, assignment_id))
            else:
                cur = self.conn.execute(sql + "sent_at = %s",
                                        (now, kit_id, assignment_id, before))
        return (now, before) if cur.rowcount == 1 else None

    def unclaim_assignment(self, kit_id: str, assignment_id: str, claimed_at: float,
                           before: float | None) -> None:
        """The publish after :meth:`claim_assignment` failed: put ``sent_at`` back."""
        self.conn.execute("UPDATE assignments SET sent_at = %s WHERE kit_id = %s AND "
                          "assignment_id = %s AND sent_at = %s",
                          (before, kit_id, assignment_id, claimed_at))

    def claim_command(self, command_id: str) -> float | None:
        """Mark an unsent command sent now if no other worker did (atomic conditional
        UPDATE); the time claimed, or None when another worker has it."""
        now = time.time()
        cur = self.conn.execute("UPDATE commands SET sent_at = %s WHERE command_id = %s AND "
                                "sent_at IS NULL", (now, command_id))
        return now if cur.rowcount == 1 else None

    def unclaim_command(self, command_id: str, claimed_at: float) -> None:
        self.conn.execute("UPDATE commands SET sent_at = NULL WHERE command_id = %s AND "
                          "sent_at = %s", (command_id, claimed_at))

    def assignment_sent(self, kit_id: str, assignment_id: str) -> None:
        self.conn.execute("UPDATE assignments SET sent_at = %s WHERE kit_id = %s AND "
                          "assignment_id = %s", (time.time(), kit_id, assignment_id))

    def assignment_answered(self, kit_id: str, ack: p.AssignmentAck) -> None:
        """Note the kit's answer. A receipt (not ``opened``) marks delivered any version
        up to the one acknowledged. An ``opened`` ack counts only for the very version
        queued (same ``sealed_at``): the kiosk opening an older copy says nothing about
        the newer one. It sets ``opened_at`` (and ``delivered_at`` if its receipt was
        lost) or, not ``ok``, the error the kiosk met opening it. Repeats are harmless."""
        if ack.opened:
            if not ack.sealed_at:
                return
            if ack.ok:
                now = time.time()
                self.conn.execute(
                    "UPDATE assignments SET opened_at = COALESCE(opened_at, %s), "
                    "delivered_at = COALESCE(delivered_at, %s), error = '' WHERE kit_id = %s "
                    "AND assignment_id = %s AND sealed_at = %s",
                    (now, now, kit_id, ack.assignment_id, ack.sealed_at))
            else:
                self.conn.execute(
                    "UPDATE assignments SET error = %s WHERE kit_id = %s AND "
                    "assignment_id = %s AND sealed_at = %s AND opened_at IS NULL",
                    (ack.reason[:200] or "unopened", kit_id, ack.assignment_id,
                     ack.sealed_at))
            return
        if ack.ok:
            self.conn.execute(
                "UPDATE assignments SET delivered_at = %s, error = '' WHERE kit_id = %s AND "
                "assignment_id = %s AND sealed_at <= %s",
                (time.time(), kit_id, ack.assignment_id, ack.sealed_at or "~"))
        else:
            self.conn.execute("UPDATE assignments SET error = %s WHERE kit_id = %s AND "
                              "assignment_id = %s", (ack.reason[:200], kit_id, ack.assignment_id))

    def queue_command(self, command: p.Command, payload: bytes) -> None:
        self.conn.execute(
            "INSERT INTO commands (command_id, kit_id, name, args, issued_at, expires_at, "
            "payload, queued_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (command.command_id, command.kit_id, command.name, json.dumps(command.args),
             command.issued_at, command.expires_at, payload, time.time()))

    def unsent_commands(self) -> list[Row]:
        return list(self.conn.execute(
            "SELECT * FROM commands WHERE sent_at IS NULL AND expires_at > %s ORDER BY queued_at",
            (time.time(),)))

    def command_sent(self, command_id: str) -> None:
        self.conn.execute("UPDATE commands SET sent_at = %s WHERE command_id = %s",
                          (time.time(), command_id))

    def command_answered(self, kit_id: str, result: p.CommandResult) -> bool:
        cursor = self.conn.execute(
            "UPDATE commands SET result_ok = %s, result = %s, result_at = %s WHERE command_id = %s "
            "AND kit_id = %s AND result_at IS NULL",
            (int(result.ok), json.dumps({"why": result.reason, "res": result.result},
                                        default=str), time.time(), result.command_id, kit_id))
        return cursor.rowcount == 1

    def command(self, command_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM commands WHERE command_id = %s",
                                (command_id,)).fetchone()
        return None if row is None else dict(row)


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One telemetry message (location, health, track) as :meth:`OfficeDb.write_telemetry`
    takes it: the kits columns it sets (``location``, ``location_at``, ``health_at``,
    ``last_seen``; not ``health``, merged when written), the positions it adds under
    ``source``, and the health report for the merge and the health sample taken ``at``."""

    kit_id: str
    kit: dict[str, Any]
    positions: tuple[p.Position, ...] = ()
    source: str = ""
    health: p.Health | None = None
    at: float = 0.0


def _kit_lock_key(kit_id: str) -> int:
    """The kit's PostgreSQL advisory lock key: 64 bits of a hash of its id."""
    return int.from_bytes(hashlib.sha256(f"kit/{kit_id}".encode()).digest()[:8], "big",
                          signed=True)


_POSITION_COLUMNS = ("kit_id", "tst", "lat", "lon", "acc", "source")
_SAMPLE_COLUMNS = ("kit_id", "tst", "battery", "battery_state", "rssi", "rsrp", "sinr",
                   "outbox")
# PostgreSQL types of the columns telemetry writes in bulk, and the Python type each value
# is made first (an int column must get a JSON integer, never 5.0).
_PG_TYPES: dict[str, tuple[str, Any]] = {
    "kit_id": ("text", str), "source": ("text", str), "location": ("text", str),
    "health": ("text", str), "location_at": ("float8", float), "health_at": ("float8", float),
    "last_seen": ("float8", float), "lat": ("float8", float), "lon": ("float8", float),
    "acc": ("float8", float), "sinr": ("float8", float), "tst": ("float8", float),
    "positions.tst": ("int8", int),
    "battery": ("int4", int), "battery_state": ("int4", int), "rssi": ("int4", int),
    "rsrp": ("int4", int), "outbox": ("int4", int)}


def _check_adoptable(conn: sqlite3.Connection, path: Path, tables: set[str]) -> None:
    """Refuse a file whose tables are not the office's (another program's, the kit's store)."""
    from office import models

    # Columns later migrations add to these tables: a file from before Django has none.
    added_later = {"assignments": {"opened_at"}}  # 0008
    wanted = {m._meta.db_table: [f.column for f in m._meta.local_fields if f.column and
                                 f.column not in added_later.get(m._meta.db_table, ())]
              for m in (models.Record, models.Upload, models.Chunk, models.Kit,
                        models.Position, models.Assignment, models.Command, models.Refusal,
                        models.RefusalCount, models.Quarantined)}
    for table in sorted(tables & set(wanted)):
        have = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        if have != wanted[table]:
            raise StoreError(
                id=f"{path} bukan basis data kantor Jaran Ijo (tabel {table} berbeda)",
                en=f"{path} is not a Jaran Ijo office database (table {table} differs)",
                hint_id="Periksa pilihan --db; tabel berkas ini dibiarkan apa adanya",
                hint_en="Check the --db option; the file's tables were left as they are",
                code="not_office_db")
    if not set(INITIAL_TABLES) <= tables:
        missing = sorted(set(INITIAL_TABLES) - tables)
        raise StoreError(
            id=f"{path} bukan basis data kantor Jaran Ijo (tanpa tabel {', '.join(missing)})",
            en=f"{path} is not a Jaran Ijo office database (no table {', '.join(missing)})",
            hint_id="Periksa pilihan --db; tabel berkas ini dibiarkan apa adanya",
            hint_en="Check the --db option; the file's tables were left as they are",
            code="not_office_db")


def _cannot_open(name: str | Path, exc: Exception) -> StoreError:
    return StoreError(
        id=f"Basis data kantor {name} tidak dapat dibuka ({exc})",
        en=f"Office database {name} cannot be opened ({exc})",
        hint_id="Jangan hapus berkasnya; periksa disk dan hak akses",
        hint_en="Do not delete the file; check the disk and permissions",
    )
