"""The office database: a new file, adopting a file made before migrations, re-opening.

Real SQLite files on disk, opened as ``office serve`` and the office CLI
open them.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import pytest

from office.db import INITIAL_TABLES, OfficeDb, migrations
from sync import protocol as p
from sync.errors import StoreError

# The schema the office ran at every start before it had migrations
# (``office/receiver.py``, word for word), frozen here: files made by it are in use.
PRE_MIGRATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kit_id TEXT NOT NULL, record_id TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    sealed_at TEXT NOT NULL, received_at REAL NOT NULL, opened INTEGER NOT NULL DEFAULT 0,
    blob BLOB NOT NULL, PRIMARY KEY (kit_id, record_id));
CREATE TABLE IF NOT EXISTS uploads (
    kit_id TEXT NOT NULL, record_id TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    have INTEGER NOT NULL, started_at REAL NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (kit_id, record_id));
CREATE TABLE IF NOT EXISTS chunks (
    kit_id TEXT NOT NULL, record_id TEXT NOT NULL, off INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (kit_id, record_id, off));
CREATE TABLE IF NOT EXISTS kits (
    kit_id TEXT PRIMARY KEY, online INTEGER NOT NULL DEFAULT 0, session INTEGER NOT NULL
    DEFAULT 0, status_at REAL, status TEXT, health TEXT, health_at REAL, location TEXT,
    location_at REAL, last_seen REAL);
CREATE TABLE IF NOT EXISTS positions (
    kit_id TEXT NOT NULL, tst INTEGER NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL,
    acc REAL, source TEXT NOT NULL, PRIMARY KEY (kit_id, tst));
CREATE TABLE IF NOT EXISTS assignments (
    kit_id TEXT NOT NULL, assignment_id TEXT NOT NULL, sealed_at TEXT NOT NULL,
    envelope BLOB NOT NULL, queued_at REAL NOT NULL, sent_at REAL, delivered_at REAL,
    error TEXT NOT NULL DEFAULT '', PRIMARY KEY (kit_id, assignment_id));
CREATE TABLE IF NOT EXISTS commands (
    command_id TEXT PRIMARY KEY, kit_id TEXT NOT NULL, name TEXT NOT NULL, args TEXT NOT NULL,
    issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, payload BLOB NOT NULL,
    queued_at REAL NOT NULL, sent_at REAL, result_ok INTEGER, result TEXT, result_at REAL);
CREATE TABLE IF NOT EXISTS refusals (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, kit_id TEXT NOT NULL,
    leaf TEXT NOT NULL, reason TEXT NOT NULL);
"""

ALL_MIGRATIONS = [m.name for m in migrations._migrations]


def applied(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = 'jaranijo.office' "
            "ORDER BY id")]


def columns(conn: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {table: [tuple(r) for r in conn.execute(f"PRAGMA table_info({table})")]
            for table in INITIAL_TABLES}


def indexes(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}


def pre_migration_file(path: Path) -> None:
    """An office database as ``office serve`` left it before migrations, with some rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(PRE_MIGRATION_SCHEMA)
    blob = b"sealed record bytes"
    conn.execute("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 ("blitar-kit-01", "0192-a", hashlib.sha256(blob).hexdigest(), len(blob),
                  "2026-11-23T10:00:00+00:00", 1795000000.0, 0, blob))
    conn.execute("INSERT INTO kits (kit_id, online, session, last_seen) VALUES (?, ?, ?, ?)",
                 ("blitar-kit-01", 1, 7, 1795000100.0))
    conn.execute("INSERT INTO assignments (kit_id, assignment_id, sealed_at, envelope, "
                 "queued_at) VALUES (?, ?, ?, ?, ?)",
                 ("blitar-kit-01", "A-1", "2026-11-23T09:00:00+00:00", b"env", 1795000000.0))
    conn.execute("INSERT INTO refusals (ts, kit_id, leaf, reason) VALUES (?, ?, ?, ?)",
                 (1795000050.0, "blitar-kit-02", "up", "kit_unknown"))
    conn.close()


def test_a_new_file_gets_every_migration_wal_and_full_sync(tmp_path: Path) -> None:
    db = OfficeDb.open(tmp_path / "office" / "office.db")  # the folder is made too
    try:
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        reference = sqlite3.connect(":memory:")
        reference.executescript(PRE_MIGRATION_SCHEMA)
        assert columns(db.conn) == columns(reference)  # migration 1 is today's tables
        assert {"assignments_undelivered", "commands_unsent"} <= indexes(db.conn)
        assert db.kits() == [] and db.records() == [] and db.refusals() == []
    finally:
        db.close()
    assert ALL_MIGRATIONS[0] == "m001_initial"
    assert applied(tmp_path / "office" / "office.db") == ALL_MIGRATIONS


def test_a_file_made_before_migrations_is_adopted_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "office.db"
    pre_migration_file(path)
    with sqlite3.connect(path) as conn:
        before = columns(conn)
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = "
                            "'_sqlite_migrations'").fetchone() is None

    db = OfficeDb.open(path)
    try:
        assert columns(db.conn) == before  # no table or column changed
        record = db.record("blitar-kit-01", "0192-a")
        assert record is not None and record["size"] == len(b"sealed record bytes")
        assert db.record_blob("blitar-kit-01", "0192-a") == b"sealed record bytes"
        kit = db.kit("blitar-kit-01")
        assert kit is not None and kit["online"] == 1 and kit["session"] == 7
        assert [a["assignment_id"] for a in db.undelivered_assignments()] == ["A-1"]
        assert db.refusals() == [{"ts": 1795000050.0, "kit_id": "blitar-kit-02",
                                  "leaf": "up", "reason": "kit_unknown"}]
        # Later migrations ran on the adopted file.
        assert {"assignments_undelivered", "commands_unsent"} <= indexes(db.conn)
        # And it is written to as before.
        db.refuse("blitar-kit-01", "health", "bad_cbor")
        assert len(db.refusals()) == 2
    finally:
        db.close()
    assert applied(path) == ALL_MIGRATIONS


def test_reopening_applies_nothing_twice_and_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "office.db"
    db = OfficeDb.open(path)
    db.queue_assignment("blitar-kit-01", "A-1", "2026-11-23T09:00:00+00:00", b"env")
    db.close()
    with sqlite3.connect(path) as conn:
        schema = sorted(conn.execute("SELECT type, name, sql FROM sqlite_master"))
    for _ in range(2):
        OfficeDb.open(path).close()
    with sqlite3.connect(path) as conn:
        assert sorted(conn.execute("SELECT type, name, sql FROM sqlite_master")) == schema
    assert applied(path) == ALL_MIGRATIONS  # each once, in order
    db = OfficeDb.open(path)
    try:
        assert [a["assignment_id"] for a in db.assignments()] == ["A-1"]
    finally:
        db.close()


def test_processes_opening_a_new_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    # ``office serve`` and ``office assign`` started together on a new --db.
    path = tmp_path / "office.db"
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            OfficeDb.open(path).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert applied(path) == ALL_MIGRATIONS


def test_a_file_with_other_tables_is_refused_and_left_alone(tmp_path: Path) -> None:
    # The kit's store given as --db by mistake: it too has `records` and `assignments`.
    path = tmp_path / "kit.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE records (id TEXT PRIMARY KEY, kind TEXT NOT NULL)")
        conn.execute("INSERT INTO records VALUES ('0192-a', 'recording')")
    with pytest.raises(StoreError) as info:
        OfficeDb.open(path)
    assert info.value.code == "not_office_db"
    assert str(path) in info.value.text("en") and "records" in info.value.text("en")
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == [
            "records", "sqlite_autoindex_records_1"]
        assert conn.execute("SELECT * FROM records").fetchall() == [("0192-a", "recording")]


def test_a_damaged_file_is_reported_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "office.db"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError) as info:
        OfficeDb.open(path)
    assert str(path) in info.value.text("en")
    assert "Do not delete" in info.value.text("en")
    assert path.read_bytes() == before


def test_the_send_queue_is_read_through_its_indexes(tmp_path: Path) -> None:
    # ``office serve`` asks for what is still to send twice a second (migration 2).
    db = OfficeDb.open(tmp_path / "office.db")
    try:
        plans = {
            "assignments_undelivered": "SELECT * FROM assignments WHERE delivered_at IS NULL "
                                       "AND sent_at IS NULL ORDER BY queued_at",
            "commands_unsent": "SELECT * FROM commands WHERE sent_at IS NULL AND "
                               "expires_at > 0 ORDER BY queued_at",
        }
        for index, sql in plans.items():
            plan = " ".join(r[3] for r in db.conn.execute("EXPLAIN QUERY PLAN " + sql))
            assert index in plan, plan
    finally:
        db.close()


def test_a_record_arrives_chunk_by_chunk_and_is_stored_once(tmp_path: Path) -> None:
    blob = bytes(range(256)) * 4
    sha = hashlib.sha256(blob).digest()
    db = OfficeDb.open(tmp_path / "office.db")
    try:
        first = p.Chunk("0192-a", sha, len(blob), 0, blob[:600])
        db.append_chunk("blitar-kit-01", first, 0, first.data)
        upload = db.upload("blitar-kit-01", "0192-a")
        assert upload is not None and upload["have"] == 600
        assert db.assembled("blitar-kit-01", "0192-a") == blob[:600]
        db.finish_record("blitar-kit-01", "0192-a", sha.hex(), blob, "2026-11-23", False)
        assert db.upload("blitar-kit-01", "0192-a") is None
        assert db.assembled("blitar-kit-01", "0192-a") == b""  # chunks dropped with it
        assert db.record_blob("blitar-kit-01", "0192-a") == blob
        with pytest.raises(sqlite3.IntegrityError):
            db.finish_record("blitar-kit-01", "0192-a", sha.hex(), blob, "2026-11-23", False)
        assert len(db.records()) == 1
    finally:
        db.close()
