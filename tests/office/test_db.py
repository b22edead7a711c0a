"""The office database: Django's migrations own the schema, on SQLite and on PostgreSQL.

Real SQLite files on disk and a real PostgreSQL server (``tests/postgres.py``), opened as
``office serve``, the web app and the office CLI open them. A file the office made before
the web app (the script before migrations, or sqlite-utils migrations m001-m004) is
adopted with its rows.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.db.utils import IntegrityError

from office.db import OfficeDb
from sync import protocol as p
from sync.errors import StoreError
from tests.postgres import PostgresServer

# The schema the office ran at every start before it had migrations, word for word, frozen
# here: files made by it may be in use.
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
# What the sqlite-utils migrations m002-m004 added on top of it.
SQLITE_UTILS_LATER = """
CREATE INDEX assignments_undelivered ON assignments(queued_at) WHERE delivered_at IS NULL;
CREATE INDEX commands_unsent ON commands(queued_at) WHERE sent_at IS NULL;
CREATE INDEX uploads_by_kit ON uploads(kit_id);
CREATE INDEX uploads_by_age ON uploads(updated_at);
CREATE TABLE refusal_counts (
    kit_id TEXT NOT NULL, leaf TEXT NOT NULL, reason TEXT NOT NULL, minute INTEGER NOT NULL,
    n INTEGER NOT NULL, PRIMARY KEY (kit_id, leaf, reason, minute));
CREATE TABLE quarantine (
    kit_id TEXT NOT NULL, record_id TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    sealed_at TEXT NOT NULL, received_at REAL NOT NULL, blob BLOB NOT NULL,
    PRIMARY KEY (kit_id, record_id, sha256));
CREATE TABLE _sqlite_migrations (id INTEGER PRIMARY KEY, migration_set TEXT, name TEXT,
    applied_at TEXT);
INSERT INTO _sqlite_migrations (migration_set, name) VALUES
    ('jaranijo.office', 'm001_initial'), ('jaranijo.office', 'm002_outgoing_queue_indexes'),
    ('jaranijo.office', 'm003_upload_quotas_refusal_counts'),
    ('jaranijo.office', 'm004_quarantine');
"""
OFFICE_MIGRATIONS = sorted(p.stem for p in (Path(__file__).parents[2] / "office" /
                                            "migrations").glob("0*.py"))


@pytest.fixture(params=["sqlite", "postgresql"])
def office_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty office database: a SQLite file, or a database of its own on the test
    PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "office.db")
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"office_{secrets.token_hex(6)}"
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql://{server.user}@{server.host}:{server.port}/{name}"


def applied(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute(
            "SELECT name FROM django_migrations WHERE app = 'office' ORDER BY id")]


def schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return sorted((r[0], r[1]) for r in conn.execute(
            "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))


def old_file(path: Path, *, later: bool) -> None:
    """An office database as the office left it before the web app, with some rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(PRE_MIGRATION_SCHEMA + (SQLITE_UTILS_LATER if later else ""))
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


def test_a_new_sqlite_file_is_migrated_wal_and_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "office" / "office.db"  # the folder is made too
    db = OfficeDb.open(path)
    try:
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert db.kits() == [] and db.records() == [] and db.refusals() == []
    finally:
        db.close()
    assert applied(path) == OFFICE_MIGRATIONS
    names = {n for _, n in schema(path)}
    assert {"records", "quarantine", "refusal_counts", "auth_user", "django_session",
            "assignments_undelivered", "commands_unsent"} <= names


@pytest.mark.parametrize("later", [False, True], ids=["before-migrations", "sqlite-utils"])
def test_a_file_made_before_the_web_app_is_adopted_with_its_rows(tmp_path: Path,
                                                                 later: bool) -> None:
    path = tmp_path / "office.db"
    old_file(path, later=later)
    db = OfficeDb.open(path)
    try:
        record = db.record("blitar-kit-01", "0192-a")
        assert record is not None and record["size"] == len(b"sealed record bytes")
        assert db.record_blob("blitar-kit-01", "0192-a") == b"sealed record bytes"
        kit = db.kit("blitar-kit-01")
        assert kit is not None and kit["online"] == 1 and kit["session"] == 7
        assert [a["assignment_id"] for a in db.undelivered_assignments()] == ["A-1"]
        assert db.refusals() == [{"ts": 1795000050.0, "kit_id": "blitar-kit-02",
                                  "leaf": "up", "reason": "kit_unknown"}]
        assert db.refuse("blitar-kit-01", "health", "bad_cbor") == 1  # written as before
        assert len(db.refusals()) == 2
    finally:
        db.close()
    assert applied(path) == OFFICE_MIGRATIONS


def test_reopening_applies_nothing_twice_and_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "office.db"
    db = OfficeDb.open(path)
    db.queue_assignment("blitar-kit-01", "A-1", "2026-11-23T09:00:00+00:00", b"env")
    db.close()
    before = schema(path)
    for _ in range(2):  # new processes: each migrates what it finds
        subprocess.run([sys.executable, "-c", "import sys; from office.db import OfficeDb; "
                        "OfficeDb.open(sys.argv[1]).close()", str(path)], check=True)
    assert schema(path) == before and applied(path) == OFFICE_MIGRATIONS
    db = OfficeDb.open(path)
    try:
        assert [a["assignment_id"] for a in db.assignments()] == ["A-1"]
    finally:
        db.close()


def test_processes_opening_a_new_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    # ``office serve``, ``office web`` and ``office assign`` started together on a new --db.
    path = tmp_path / "office.db"
    procs = [subprocess.Popen([sys.executable, "-c", "import sys; from office.db import "
                               "OfficeDb; OfficeDb.open(sys.argv[1]).close()", str(path)],
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert applied(path) == OFFICE_MIGRATIONS


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
    # ``office serve`` asks for what is still to send twice a second.
    db = OfficeDb.open(tmp_path / "office.db")
    try:
        plans = {
            "assignments_undelivered": "SELECT * FROM assignments WHERE delivered_at IS NULL "
                                       "AND sent_at IS NULL ORDER BY queued_at",
            "commands_unsent": "SELECT * FROM commands WHERE sent_at IS NULL AND "
                               "expires_at > 0 ORDER BY queued_at",
        }
        for index, sql in plans.items():
            plan = " ".join(str(r[3]) for r in db.conn.execute("EXPLAIN QUERY PLAN " + sql))
            assert index in plan, plan
    finally:
        db.close()


def test_the_ingest_writes_what_the_models_read(office_db: str) -> None:
    """One schema: a row the ingest's SQL writes is the row the web app's model reads."""
    from office import models

    db = OfficeDb.open(office_db)
    try:
        db.set_kit("blitar-kit-01", online=1, session=4, last_seen=1795000100.0)
        db.refuse("blitar-kit-01", "up", "bad_cbor")
        kit = models.Kit.objects.using(db.alias).get(kit_id="blitar-kit-01")
        assert (kit.online, kit.session, kit.last_seen) == (1, 4, 1795000100.0)
        assert models.RefusalCount.objects.using(db.alias).get().n == 1
    finally:
        db.close()


def test_a_record_arrives_chunk_by_chunk_and_is_stored_once(office_db: str) -> None:
    blob = bytes(range(256)) * 4
    sha = hashlib.sha256(blob).digest()
    db = OfficeDb.open(office_db)
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
        with pytest.raises(IntegrityError):
            db.finish_record("blitar-kit-01", "0192-a", sha.hex(), blob, "2026-11-23", False)
        assert len(db.records()) == 1
    finally:
        db.close()


def test_an_assignment_is_queued_delivered_then_opened_for_its_own_version(
        office_db: str) -> None:
    kit, aid = "blitar-kit-01", "0193a2c4-5e10-7c3a-9b41-6d2f0e8a1b01"
    v1, v2 = "2026-11-23T09:00:00.000000+00:00", "2026-11-23T10:00:00.000000+00:00"
    db = OfficeDb.open(office_db)
    try:
        def row() -> dict[str, object]:
            (only,) = db.assignments(kit)
            return only

        db.queue_assignment(kit, aid, v1, b"env-1")
        assert row()["opened_at"] is None and row()["delivered_at"] is None
        db.assignment_answered(kit, p.AssignmentAck(aid, ok=True, sealed_at=v1))
        assert row()["delivered_at"] is not None and row()["opened_at"] is None
        db.assignment_answered(kit, p.AssignmentAck(aid, ok=True, sealed_at=v1, opened=True))
        opened = row()["opened_at"]
        assert opened is not None
        db.assignment_answered(kit, p.AssignmentAck(aid, ok=True, sealed_at=v1, opened=True))
        assert row()["opened_at"] == opened  # a repeat changes nothing

        # The office changes the visit: sealed again, newer; its progress starts over.
        db.queue_assignment(kit, aid, v2, b"env-2")
        assert (row()["sent_at"], row()["delivered_at"], row()["opened_at"]) == \
            (None, None, None)
        # The kit's late news about version 1 does not mark version 2 opened.
        db.assignment_answered(kit, p.AssignmentAck(aid, ok=True, sealed_at=v1, opened=True))
        db.assignment_answered(kit, p.AssignmentAck(aid, ok=True, opened=True))  # no version
        assert row()["opened_at"] is None and row()["delivered_at"] is None
        # Version 2's opening, its receipt lost on the way: delivered and opened at once.
        db.assignment_answered(kit, p.AssignmentAck(aid, ok=True, sealed_at=v2, opened=True))
        assert row()["opened_at"] is not None and row()["delivered_at"] is not None
        assert [a["assignment_id"] for a in db.undelivered_assignments(kit)] == []
    finally:
        db.close()


def test_an_assignment_the_kiosk_cannot_open_says_why(office_db: str) -> None:
    kit, aid = "blitar-kit-01", "0193a2c4-5e10-7c3a-9b41-6d2f0e8a1b02"
    v1, v2 = "2026-11-23T09:00:00.000000+00:00", "2026-11-23T10:00:00.000000+00:00"
    db = OfficeDb.open(office_db)
    try:
        db.queue_assignment(kit, aid, v2, b"env-2")
        db.assignment_answered(kit, p.AssignmentAck(aid, ok=True, sealed_at=v2))
        db.assignment_answered(kit, p.AssignmentAck(aid, ok=False, sealed_at=v1,
                                                    reason="bad_signature", opened=True))
        assert db.assignments(kit)[0]["error"] == ""  # about an older version
        db.assignment_answered(kit, p.AssignmentAck(aid, ok=False, sealed_at=v2,
                                                    reason="bad_signature", opened=True))
        (row,) = db.assignments(kit)
        assert (row["error"], row["opened_at"]) == ("bad_signature", None)
        assert row["delivered_at"] is not None
        db.assignment_answered(kit, p.AssignmentAck(aid, ok=True, sealed_at=v2, opened=True))
        (row,) = db.assignments(kit)
        assert row["error"] == "" and row["opened_at"] is not None
    finally:
        db.close()
