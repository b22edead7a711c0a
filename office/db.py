"""The office database: one SQLite file (sqlite-utils migrations), shared by the office's processes.

``office serve`` writes what kits send; ``office assign`` and ``office
command`` queue what goes out while it runs. The file is opened as the
kit's store is (:mod:`sync.durable`): WAL lets one write while the others
read, a busy timeout makes them wait instead of failing, and
``synchronous=FULL`` puts a committed transaction on disk before the office
tells a kit so (a receipt lets the kit delete its copy).

The schema grows by numbered migrations, as the kit's store does
(:mod:`kit.store`; the office has its own set, ``jaranijo.office``). A file
made before migrations existed (by a ``CREATE TABLE IF NOT EXISTS`` script
run at every start) is adopted as it is: migration 1 is that same script,
so it creates nothing there and is recorded as applied, then the later
migrations run. A file whose tables do not match is refused, never altered.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlite_utils import Database, Migrations

from sync import protocol as p
from sync.durable import connect_durable, transaction
from sync.errors import StoreError

migrations = Migrations("jaranijo.office")

# The tables as the office made them before migrations, word for word: migration 1 runs
# exactly this, which is what lets it adopt a file made then.
INITIAL_TABLES = {
    "records": """
CREATE TABLE IF NOT EXISTS records (
    kit_id TEXT NOT NULL, record_id TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    sealed_at TEXT NOT NULL, received_at REAL NOT NULL, opened INTEGER NOT NULL DEFAULT 0,
    blob BLOB NOT NULL, PRIMARY KEY (kit_id, record_id))""",
    "uploads": """
CREATE TABLE IF NOT EXISTS uploads (
    kit_id TEXT NOT NULL, record_id TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    have INTEGER NOT NULL, started_at REAL NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (kit_id, record_id))""",
    "chunks": """
CREATE TABLE IF NOT EXISTS chunks (
    kit_id TEXT NOT NULL, record_id TEXT NOT NULL, off INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (kit_id, record_id, off))""",
    "kits": """
CREATE TABLE IF NOT EXISTS kits (
    kit_id TEXT PRIMARY KEY, online INTEGER NOT NULL DEFAULT 0, session INTEGER NOT NULL
    DEFAULT 0, status_at REAL, status TEXT, health TEXT, health_at REAL, location TEXT,
    location_at REAL, last_seen REAL)""",
    "positions": """
CREATE TABLE IF NOT EXISTS positions (
    kit_id TEXT NOT NULL, tst INTEGER NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL,
    acc REAL, source TEXT NOT NULL, PRIMARY KEY (kit_id, tst))""",
    "assignments": """
CREATE TABLE IF NOT EXISTS assignments (
    kit_id TEXT NOT NULL, assignment_id TEXT NOT NULL, sealed_at TEXT NOT NULL,
    envelope BLOB NOT NULL, queued_at REAL NOT NULL, sent_at REAL, delivered_at REAL,
    error TEXT NOT NULL DEFAULT '', PRIMARY KEY (kit_id, assignment_id))""",
    "commands": """
CREATE TABLE IF NOT EXISTS commands (
    command_id TEXT PRIMARY KEY, kit_id TEXT NOT NULL, name TEXT NOT NULL, args TEXT NOT NULL,
    issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, payload BLOB NOT NULL,
    queued_at REAL NOT NULL, sent_at REAL, result_ok INTEGER, result TEXT, result_at REAL)""",
    "refusals": """
CREATE TABLE IF NOT EXISTS refusals (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, kit_id TEXT NOT NULL,
    leaf TEXT NOT NULL, reason TEXT NOT NULL)""",
}


@migrations()
def m001_initial(db: Database) -> None:
    for sql in INITIAL_TABLES.values():
        db.execute(sql)


@migrations()
def m002_outgoing_queue_indexes(db: Database) -> None:
    # ``office serve`` looks for what is still to send twice a second; these keep that a
    # short index walk however many assignments and commands the years pile up.
    db.execute("CREATE INDEX assignments_undelivered ON assignments(queued_at) "
               "WHERE delivered_at IS NULL")
    db.execute("CREATE INDEX commands_unsent ON commands(queued_at) WHERE sent_at IS NULL")


@migrations()
def m003_upload_quotas_refusal_counts(db: Database) -> None:
    # Per-kit quotas on unfinished uploads and the expiry of stale ones look uploads up by
    # kit and by age. Refusals are counted per kit, topic leaf, reason and minute: a flood
    # of garbage adds to a counter, not a row a message.
    db.execute("CREATE INDEX uploads_by_kit ON uploads(kit_id)")
    db.execute("CREATE INDEX uploads_by_age ON uploads(updated_at)")
    db.execute("""
CREATE TABLE refusal_counts (
    kit_id TEXT NOT NULL, leaf TEXT NOT NULL, reason TEXT NOT NULL, minute INTEGER NOT NULL,
    n INTEGER NOT NULL, PRIMARY KEY (kit_id, leaf, reason, minute))""")


@migrations()
def m004_quarantine(db: Database) -> None:
    # A record whose id collides with one already stored, with other bytes, is kept aside
    # for review (issue 10): with a kit's signing key stolen, the forgery may be the one
    # that came first, and the genuine record must not be lost. One row per distinct
    # (kit, record id, hash); the receiver bounds how many a kit can leave here.
    db.execute("""
CREATE TABLE quarantine (
    kit_id TEXT NOT NULL, record_id TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    sealed_at TEXT NOT NULL, received_at REAL NOT NULL, blob BLOB NOT NULL,
    PRIMARY KEY (kit_id, record_id, sha256))""")


class OfficeDb:
    """The office's SQLite file: what kits sent, what they are, and what goes out to them.

    It stores records received (still sealed, with their hash and size),
    uploads in progress chunk by chunk, each kit's latest status, merged
    health, location and past positions, the assignments and commands
    queued for kits with their delivery and results, and every refused
    message with its reason. Open it with :meth:`open` (which makes or
    migrates the file), one connection per process or thread.

    The office web app (Django, DESIGN.md §6a; a coming issue) takes this
    schema over: its models map these tables, and from then on the schema
    changes through its migrations rather than the ones here.

    >>> db = OfficeDb.open(tmp_path / "office.db")   # doctest: +SKIP
    >>> db.kits()                                    # doctest: +SKIP
    []
    """

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn

    @classmethod
    def open(cls, path: str | Path) -> OfficeDb:
        """Open the file (made if missing) and bring its schema up to date; refuse a bad one."""
        path = Path(path)
        try:
            conn = connect_durable(path)
        except sqlite3.Error as exc:
            raise _cannot_open(path, exc) from None
        try:
            conn.row_factory = sqlite3.Row
            db = cls(path, conn)
            utils = Database(conn)
            if migrations.pending(utils):
                # Under one write lock: a second process opening a new file at the same
                # moment waits, then finds the work done.
                with db.transaction():
                    if "m001_initial" not in {m.name for m in migrations.applied(utils)}:
                        _check_adoptable(conn, path)
                    migrations.apply(utils)
        except sqlite3.Error as exc:
            conn.close()
            raise _cannot_open(path, exc) from None
        except StoreError:
            conn.close()
            raise
        return db

    def close(self) -> None:
        self.conn.close()

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """One durable write transaction, committed when the block ends without error."""
        return transaction(self.conn)

    # -- records ---------------------------------------------------------------------------
    def record(self, kit_id: str, record_id: str) -> sqlite3.Row | None:
        return self.conn.execute(
            "SELECT kit_id, record_id, sha256, size, sealed_at, received_at, opened "
            "FROM records WHERE kit_id = ? AND record_id = ?", (kit_id, record_id)).fetchone()

    def record_blob(self, kit_id: str, record_id: str) -> bytes | None:
        row = self.conn.execute("SELECT blob FROM records WHERE kit_id = ? AND record_id = ?",
                                (kit_id, record_id)).fetchone()
        return None if row is None else bytes(row[0])

    def records(self, kit_id: str | None = None) -> list[dict[str, Any]]:
        sql = ("SELECT kit_id, record_id, sha256, size, sealed_at, received_at, opened "
               "FROM records")
        rows = self.conn.execute(sql + (" WHERE kit_id = ?" if kit_id else "") +
                                 " ORDER BY received_at", (kit_id,) if kit_id else ())
        return [dict(r) for r in rows]

    def upload(self, kit_id: str, record_id: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM uploads WHERE kit_id = ? AND record_id = ?",
                                 (kit_id, record_id)).fetchone()

    def append_chunk(self, kit_id: str, chunk: p.Chunk, have: int, data: bytes) -> None:
        """Keep bytes ``have .. have+len(data)`` of an upload, durably."""
        now = time.time()
        with self.transaction():
            self.conn.execute(
                "INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(kit_id, record_id) "
                "DO UPDATE SET have = excluded.have, updated_at = excluded.updated_at",
                (kit_id, chunk.record_id, chunk.sha256.hex(), chunk.size, have + len(data),
                 now, now))
            self.conn.execute("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?)",
                              (kit_id, chunk.record_id, have, data))

    def assembled(self, kit_id: str, record_id: str) -> bytes:
        rows = self.conn.execute("SELECT data FROM chunks WHERE kit_id = ? AND record_id = ? "
                                 "ORDER BY off", (kit_id, record_id))
        return b"".join(bytes(r[0]) for r in rows)

    def finish_record(self, kit_id: str, record_id: str, sha_hex: str, blob: bytes,
                      sealed_at: str, opened: bool) -> None:
        """Store the whole record and drop its chunks, in one durable transaction."""
        with self.transaction():
            self.conn.execute("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              (kit_id, record_id, sha_hex, len(blob), sealed_at, time.time(),
                               int(opened), blob))
            self._drop_upload(kit_id, record_id)

    def quarantine_record(self, kit_id: str, record_id: str, sha_hex: str, blob: bytes,
                          sealed_at: str) -> bool:
        """Keep aside a record colliding with a stored one and drop its upload, in one durable
        transaction; False if those very bytes were already kept."""
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT OR IGNORE INTO quarantine VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kit_id, record_id, sha_hex, len(blob), sealed_at, time.time(), blob))
            self._drop_upload(kit_id, record_id)
        return cursor.rowcount == 1

    def quarantined(self, kit_id: str | None = None) -> list[dict[str, Any]]:
        """Records kept aside for review (without their bytes: :meth:`quarantined_blob`)."""
        sql = "SELECT kit_id, record_id, sha256, size, sealed_at, received_at FROM quarantine"
        rows = self.conn.execute(sql + (" WHERE kit_id = ?" if kit_id else "") +
                                 " ORDER BY received_at", (kit_id,) if kit_id else ())
        return [dict(r) for r in rows]

    def quarantined_blob(self, kit_id: str, record_id: str, sha_hex: str) -> bytes | None:
        row = self.conn.execute("SELECT blob FROM quarantine WHERE kit_id = ? AND "
                                "record_id = ? AND sha256 = ?",
                                (kit_id, record_id, sha_hex)).fetchone()
        return None if row is None else bytes(row[0])

    def is_quarantined(self, kit_id: str, record_id: str, sha_hex: str) -> bool:
        return self.conn.execute("SELECT 1 FROM quarantine WHERE kit_id = ? AND record_id = ? "
                                 "AND sha256 = ?", (kit_id, record_id, sha_hex)
                                 ).fetchone() is not None

    def quarantine_take(self, kit_id: str, record_id: str, sha_hex: str) -> bool:
        """After review: the quarantined bytes become the record, and the record stored so
        far goes to quarantine in their place (nothing is deleted). False when there is no
        such quarantined record, or no stored record of that id."""
        with self.transaction():
            kept = self.conn.execute(
                "SELECT blob, sealed_at FROM quarantine WHERE kit_id = ? AND record_id = ? "
                "AND sha256 = ?", (kit_id, record_id, sha_hex)).fetchone()
            stored = self.conn.execute(
                "SELECT sha256, blob, sealed_at FROM records WHERE kit_id = ? AND record_id = ?",
                (kit_id, record_id)).fetchone()
            if kept is None or stored is None:
                return False
            now = time.time()
            self.conn.execute("DELETE FROM quarantine WHERE kit_id = ? AND record_id = ? AND "
                              "sha256 = ?", (kit_id, record_id, sha_hex))
            self.conn.execute("INSERT OR IGNORE INTO quarantine VALUES (?, ?, ?, ?, ?, ?, ?)",
                              (kit_id, record_id, stored[0], len(stored[1]), stored[2], now,
                               stored[1]))
            self.conn.execute("UPDATE records SET sha256 = ?, size = ?, sealed_at = ?, "
                              "received_at = ?, opened = 0, blob = ? WHERE kit_id = ? AND "
                              "record_id = ?", (sha_hex, len(kept[0]), kept[1], now, kept[0],
                                                kit_id, record_id))
        return True

    def quarantine_drop(self, kit_id: str, record_id: str, sha_hex: str) -> bool:
        """After review: discard a quarantined record (a forgery); False if there is none."""
        with self.transaction():
            cur = self.conn.execute("DELETE FROM quarantine WHERE kit_id = ? AND record_id = ? "
                                    "AND sha256 = ?", (kit_id, record_id, sha_hex))
        return cur.rowcount == 1

    def quarantine_usage(self, kit_id: str) -> tuple[int, int]:
        """A kit's records kept aside: how many, and how many bytes."""
        row = self.conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM quarantine "
                                "WHERE kit_id = ?", (kit_id,)).fetchone()
        return int(row[0]), int(row[1])

    def open_uploads(self, kit_id: str) -> tuple[int, int]:
        """A kit's unfinished uploads: how many, and how many bytes of chunks they hold."""
        row = self.conn.execute("SELECT COUNT(*), COALESCE(SUM(have), 0) FROM uploads "
                                "WHERE kit_id = ?", (kit_id,)).fetchone()
        return int(row[0]), int(row[1])

    def expire_uploads(self, before: float) -> list[tuple[str, str]]:
        """Drop every unfinished upload with no chunk since ``before``; ``(kit, record)`` each."""
        with self.transaction():
            stale = [(r[0], r[1]) for r in self.conn.execute(
                "SELECT kit_id, record_id FROM uploads WHERE updated_at < ?", (before,))]
            for kit_id, record_id in stale:
                self._drop_upload(kit_id, record_id)
        return stale

    def drop_upload(self, kit_id: str, record_id: str) -> None:
        with self.transaction():
            self._drop_upload(kit_id, record_id)

    def _drop_upload(self, kit_id: str, record_id: str) -> None:
        self.conn.execute("DELETE FROM chunks WHERE kit_id = ? AND record_id = ?",
                          (kit_id, record_id))
        self.conn.execute("DELETE FROM uploads WHERE kit_id = ? AND record_id = ?",
                          (kit_id, record_id))

    # -- kits ------------------------------------------------------------------------------
    def kit(self, kit_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM kits WHERE kit_id = ?", (kit_id,)).fetchone()
        return None if row is None else dict(row)

    def kits(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM kits ORDER BY kit_id")]

    def set_kit(self, kit_id: str, **values: Any) -> None:
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        updates = ", ".join(f"{c} = excluded.{c}" for c in values)
        self.conn.execute(f"INSERT INTO kits (kit_id, {columns}) VALUES (?, {marks}) "
                          f"ON CONFLICT(kit_id) DO UPDATE SET {updates}",
                          (kit_id, *values.values()))

    def add_positions(self, kit_id: str, points: list[p.Position], source: str) -> None:
        with self.transaction():
            self.conn.executemany(
                "INSERT OR IGNORE INTO positions VALUES (?, ?, ?, ?, ?, ?)",
                [(kit_id, q.tst, q.lat, q.lon, q.acc_m, source) for q in points])

    def positions(self, kit_id: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(
            "SELECT tst, lat, lon, acc, source FROM positions WHERE kit_id = ? ORDER BY tst",
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
                "INSERT INTO refusal_counts VALUES (?, ?, ?, ?, 1) ON CONFLICT(kit_id, leaf, "
                "reason, minute) DO UPDATE SET n = n + 1 RETURNING n",
                (kit_id, leaf[:16], reason[:40], int(now // 60))).fetchone()[0])
            if n == 1:
                self.conn.execute("INSERT INTO refusals (ts, kit_id, leaf, reason) "
                                  "VALUES (?, ?, ?, ?)", (now, kit_id, leaf[:16], reason[:40]))
        return n

    def refusals(self) -> list[dict[str, Any]]:
        """The first refusal of each kind in each minute (:meth:`refusal_counts` has them all)."""
        return [dict(r) for r in self.conn.execute(
            "SELECT ts, kit_id, leaf, reason FROM refusals ORDER BY id")]

    def refusal_counts(self, kit_id: str | None = None) -> list[dict[str, Any]]:
        """Every refusal counted, per kit, leaf, reason and minute (Unix time // 60)."""
        sql = "SELECT kit_id, leaf, reason, minute, n FROM refusal_counts"
        rows = self.conn.execute(sql + (" WHERE kit_id = ?" if kit_id else "") +
                                 " ORDER BY minute, kit_id, leaf, reason",
                                 (kit_id,) if kit_id else ())
        return [dict(r) for r in rows]

    # -- outgoing: assignments and commands ------------------------------------------------
    def queue_assignment(self, kit_id: str, assignment_id: str, sealed_at: str,
                         envelope: bytes) -> None:
        self.conn.execute(
            "INSERT INTO assignments (kit_id, assignment_id, sealed_at, envelope, queued_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(kit_id, assignment_id) DO UPDATE SET "
            "sealed_at = excluded.sealed_at, envelope = excluded.envelope, "
            "queued_at = excluded.queued_at, sent_at = NULL, delivered_at = NULL, error = ''",
            (kit_id, assignment_id, sealed_at, envelope, time.time()))

    def assignments(self, kit_id: str | None = None) -> list[dict[str, Any]]:
        sql = ("SELECT kit_id, assignment_id, sealed_at, queued_at, sent_at, delivered_at, "
               "error FROM assignments")
        rows = self.conn.execute(sql + (" WHERE kit_id = ?" if kit_id else "") +
                                 " ORDER BY queued_at", (kit_id,) if kit_id else ())
        return [dict(r) for r in rows]

    def undelivered_assignments(self, kit_id: str | None = None, *,
                                unsent_only: bool = False) -> list[sqlite3.Row]:
        sql = "SELECT * FROM assignments WHERE delivered_at IS NULL"
        args: tuple[Any, ...] = ()
        if kit_id:
            sql += " AND kit_id = ?"
            args = (kit_id,)
        if unsent_only:
            sql += " AND sent_at IS NULL"
        return list(self.conn.execute(sql + " ORDER BY queued_at", args))

    def assignment_sent(self, kit_id: str, assignment_id: str) -> None:
        self.conn.execute("UPDATE assignments SET sent_at = ? WHERE kit_id = ? AND "
                          "assignment_id = ?", (time.time(), kit_id, assignment_id))

    def assignment_answered(self, kit_id: str, ack: p.AssignmentAck) -> None:
        if ack.ok:
            self.conn.execute(
                "UPDATE assignments SET delivered_at = ?, error = '' WHERE kit_id = ? AND "
                "assignment_id = ? AND sealed_at <= ?",
                (time.time(), kit_id, ack.assignment_id, ack.sealed_at or "~"))
        else:
            self.conn.execute("UPDATE assignments SET error = ? WHERE kit_id = ? AND "
                              "assignment_id = ?", (ack.reason[:200], kit_id, ack.assignment_id))

    def queue_command(self, command: p.Command, payload: bytes) -> None:
        self.conn.execute(
            "INSERT INTO commands (command_id, kit_id, name, args, issued_at, expires_at, "
            "payload, queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (command.command_id, command.kit_id, command.name, json.dumps(command.args),
             command.issued_at, command.expires_at, payload, time.time()))

    def unsent_commands(self) -> list[sqlite3.Row]:
        return list(self.conn.execute(
            "SELECT * FROM commands WHERE sent_at IS NULL AND expires_at > ? ORDER BY queued_at",
            (time.time(),)))

    def command_sent(self, command_id: str) -> None:
        self.conn.execute("UPDATE commands SET sent_at = ? WHERE command_id = ?",
                          (time.time(), command_id))

    def command_answered(self, kit_id: str, result: p.CommandResult) -> bool:
        cursor = self.conn.execute(
            "UPDATE commands SET result_ok = ?, result = ?, result_at = ? WHERE command_id = ? "
            "AND kit_id = ? AND result_at IS NULL",
            (int(result.ok), json.dumps({"why": result.reason, "res": result.result},
                                        default=str), time.time(), result.command_id, kit_id))
        return cursor.rowcount == 1

    def command(self, command_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM commands WHERE command_id = ?",
                                (command_id,)).fetchone()
        return None if row is None else dict(row)


def _check_adoptable(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a file whose tables are not the office's (another program's, the kit's store).

    Runs before migration 1 is recorded: on a new file (nothing to check) or
    one made before migrations, whose tables must be the ones migration 1
    would make, column for column.
    """
    reference = sqlite3.connect(":memory:")
    try:
        for sql in INITIAL_TABLES.values():
            reference.execute(sql)
        for table in INITIAL_TABLES:
            have = [tuple(r) for r in conn.execute(f"PRAGMA table_info({table})")]
            want = [tuple(r) for r in reference.execute(f"PRAGMA table_info({table})")]
            if have and have != want:
                raise StoreError(
                    id=f"{path} bukan basis data kantor Jaran Ijo (tabel {table} berbeda)",
                    en=f"{path} is not a Jaran Ijo office database (table {table} differs)",
                    hint_id="Periksa pilihan --db; tabel berkas ini dibiarkan apa adanya",
                    hint_en="Check the --db option; the file's tables were left as they are",
                    code="not_office_db")
    finally:
        reference.close()


def _cannot_open(path: Path, exc: sqlite3.Error) -> StoreError:
    return StoreError(
        id=f"Basis data kantor {path} tidak dapat dibuka ({exc})",
        en=f"Office database {path} cannot be opened ({exc})",
        hint_id="Jangan hapus berkasnya; periksa disk dan hak akses",
        hint_en="Do not delete the file; check the disk and permissions",
    )
