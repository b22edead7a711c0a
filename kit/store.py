"""The kit's store: one SQLite file (sqlite-utils), shared by the kiosk and the agent.

Durability first. The database runs in WAL mode with ``synchronous=FULL``,
so a transaction that has returned is on the SD card and survives a power
cut; a record is reported "saved" only after its transaction commits. The
kiosk and the agent open the same file; WAL lets one write while the other
reads, and ``busy_timeout`` makes the other wait instead of failing.

Personal data never lies in clear: targets, assignments and drafts are
stored as ciphertext under the vault's data key (:class:`kit.vault.DataKey`),
sealed records are already encrypted to the office. What stays in clear is
what the agent needs without an officer's PIN: record and assignment ids, dates,
sizes, hashes, and the audit log, which names events, never people. Nothing in
clear ties a time or a place to a resident: targets are kept under a keyed
reference, not their id, with their status and outcome encrypted; a record does
not name its target; an audit entry about a visit has its ids sealed to the
kit's box key; the agent's GNSS fix and offline track are encrypted under its
machine key (:mod:`kit.keyring`).

A damaged file is reported, never "repaired" by deleting data.

What is deleted is gone from the bytes too: the connection runs with
``secure_delete`` (a deleted row's bytes are overwritten with zeros), and
after a wipe :meth:`Store.scrub` checkpoints the WAL into the database,
truncates it to nothing and VACUUMs, so neither ``kit.db`` nor
``kit.db-wal`` keeps a deleted key slot or secret. The store's folder is
0700 and its files (``kit.db``, ``-wal``, ``-shm``) 0600.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nacl.exceptions
from nacl.public import PrivateKey, PublicKey, SealedBox

from sync.durable import connect_durable, transaction
from sync.envelope import read_key_file
from sync.errors import JaranIjoError, StoreError


def _import_sqlite_utils() -> Any:
    """sqlite-utils, without the numpy and pandas it would load only for their types.

    ``sqlite_utils.db`` imports numpy and pandas when they are installed, to map their
    scalar types to column types. The store never writes one, and the agent needs
    neither: numpy alone is 11 MiB of the agent's 50 (issue 15's memory budget). So
    when numpy is not loaded yet, sqlite-utils is imported with the two hidden (a
    ``None`` in ``sys.modules`` makes their import fail, which sqlite-utils expects) and
    shown again at once: a later ``import numpy`` (the kiosk's OpenCV) loads as usual.
    """
    hidden = [] if "sqlite_utils" in sys.modules else [
        name for name in ("numpy", "pandas") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import sqlite_utils
    finally:
        for name in hidden:
            if sys.modules.get(name, "") is None:
                del sys.modules[name]
    return sqlite_utils


if TYPE_CHECKING:
    from sqlite_utils import Database, Migrations
else:
    _sqlite_utils = _import_sqlite_utils()
    Database, Migrations = _sqlite_utils.Database, _sqlite_utils.Migrations

log = logging.getLogger(__name__)

migrations = Migrations("jaranijo.kit")

# Audit events about a visit: their subject (a recording, target or assignment id) and
# detail are sealed to the kit's box key, so the log ties no time to a resident for
# someone holding only the files. Events about the kit itself (provisioning, commands,
# officer slots) stay in clear.
SEALED_AUDIT_EVENTS = frozenset({
    "assignment_stored", "assignment_received", "assignment_unopened",
    "recording_started", "recording_resumed", "recording_paused", "draft_expired",
    "record_sealed", "record_acknowledged", "receipt_refused", "record_refused",
})
SEALED_PREFIX = "sealed:"


@migrations()
def m001_initial(db: Database) -> None:
    db.execute("""
        CREATE TABLE key_slots (
            officer_id TEXT PRIMARY KEY, salt BLOB NOT NULL, opslimit INTEGER NOT NULL,
            memlimit INTEGER NOT NULL, wrapped BLOB NOT NULL, created_at REAL NOT NULL)""")
    db.execute("""
        CREATE TABLE pin_attempts (
            officer_id TEXT PRIMARY KEY, failures INTEGER NOT NULL DEFAULT 0,
            last_failure REAL NOT NULL DEFAULT 0)""")
    db.execute("""
        CREATE TABLE assignments (
            id TEXT PRIMARY KEY, visit_date TEXT NOT NULL, received_at REAL NOT NULL,
            payload BLOB NOT NULL)""")
    db.execute("""
        CREATE TABLE targets (
            id TEXT PRIMARY KEY, assignment_id TEXT NOT NULL REFERENCES assignments(id),
            position INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
            updated_at REAL NOT NULL, payload BLOB NOT NULL)""")
    db.execute("CREATE INDEX targets_by_assignment ON targets(assignment_id, position)")
    db.execute("""
        CREATE TABLE drafts (
            recording_id TEXT PRIMARY KEY, target_id TEXT NOT NULL, step TEXT NOT NULL,
            updated_at REAL NOT NULL, expires_at REAL NOT NULL, payload BLOB NOT NULL)""")
    db.execute("""
        CREATE TABLE records (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, target_id TEXT,
            sealed_at TEXT NOT NULL, stored_at REAL NOT NULL, size INTEGER NOT NULL,
            sha256 TEXT NOT NULL, blob BLOB)""")
    db.execute("""
        CREATE TABLE outbox (
            record_id TEXT PRIMARY KEY REFERENCES records(id),
            state TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0, sent_bytes INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '', acked_at REAL)""")
    db.execute("""
        CREATE TABLE kit_status (
            key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at REAL NOT NULL)""")
    db.execute("""
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, event TEXT NOT NULL,
            actor TEXT NOT NULL DEFAULT '', subject TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '')""")


@migrations()
def m002_sync_inbox_commands(db: Database) -> None:
    # The agent's state for the office link (kit/agent): assignments received
    # still sealed (only an unlocked UI session can open them), and the ids of
    # office commands already received, so none runs twice.
    db.execute("""
        CREATE TABLE inbox (
            assignment_id TEXT PRIMARY KEY, sealed_at TEXT NOT NULL, received_at REAL NOT NULL,
            envelope BLOB, opened_at REAL, error TEXT NOT NULL DEFAULT '')""")
    db.execute("""
        CREATE TABLE seen_commands (
            command_id TEXT PRIMARY KEY, name TEXT NOT NULL, received_at REAL NOT NULL,
            expires_at REAL NOT NULL, result TEXT NOT NULL DEFAULT '')""")


@migrations()
def m003_target_outcome(db: Database) -> None:
    # Why a target was not recorded (refused, not_home, ...), for the officer's list;
    # only the outcome's name, the note stays inside the sealed record.
    db.execute("ALTER TABLE targets ADD COLUMN outcome TEXT NOT NULL DEFAULT ''")


@migrations()
def m004_tpm_key_slots(db: Database) -> None:
    # A slot whose key is sealed in the kit's TPM (kit/tpm.py) keeps the TPM's blob here;
    # its opslimit and memlimit are 0 (no Argon2id work).
    db.execute("ALTER TABLE key_slots ADD COLUMN tpm_blob BLOB")


@migrations()
def m005_no_visit_in_clear(db: Database) -> None:
    # Where a target stands (status, outcome) moves into ``state``, encrypted under the
    # officers' data key (kit.records.set_target_state). The migration has no key: a row's
    # clear values stay only until the next unlocked session rewrites them encrypted and
    # blanks them (kit.records.target_states). A record no longer names its target, the
    # audit keeps no visit's id in clear, and a fix the agent kept in clear is dropped
    # (it shares a new one, encrypted, within seconds).
    db.execute("ALTER TABLE targets ADD COLUMN state BLOB")
    db.execute("UPDATE records SET target_id = NULL WHERE target_id IS NOT NULL")
    events = sorted(SEALED_AUDIT_EVENTS)
    db.execute(f"UPDATE audit SET subject = '', detail = '' WHERE event IN "
               f"({', '.join('?' * len(events))}) AND subject NOT LIKE 'sealed:%'", events)
    db.execute("DELETE FROM kit_status WHERE key = 'gnss_fix'")


@migrations()
def m006_assignment_changes(db: Database) -> None:
    # The office changes an assignment by sealing it again, or cancels it: a cancelled one
    # stays (the targets already recorded still belong to it) but the kiosk no longer lists
    # it. The agent tells the office when the kiosk opened an assignment, or could not, once
    # per version: these note what it has told. A row opened before this migration has its
    # opening reported too (the office ignores it for a version it no longer holds).
    db.execute("ALTER TABLE assignments ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE inbox ADD COLUMN opened_reported_at REAL")
    db.execute("ALTER TABLE inbox ADD COLUMN error_reported TEXT NOT NULL DEFAULT ''")


@dataclass(frozen=True)
class StoredRecord:
    """A sealed record as the kit keeps it until the office's receipt."""

    id: str
    kind: str
    target_id: str | None
    sealed_at: str
    size: int
    sha256: str


class Store:
    """The kit's one SQLite file, for everything the kiosk and the agent keep.

    Assignments and targets (encrypted under the officers' data key), drafts of
    recordings in progress, sealed records until the office's receipt (the outbox),
    officer key slots, the agent's inbox, upload progress and command replay guard,
    the status values the two processes share, and the audit log. Each method is one
    transaction; the schema grows only by the numbered migrations above. Open it with
    :meth:`open`, close it with :meth:`close` (or use it as a context manager).

    >>> store = Store.open(tmp_path / "kit.db")   # doctest: +SKIP
    """

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn
        self.db = Database(conn)

    # -- opening ---------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, create: bool = True, check: bool = True) -> Store:
        """Open (and with ``create``, make) the store; refuse a damaged file with a clear error."""
        path = Path(path)
        if not path.exists() and not create:
            raise StoreError(
                id=f"Basis data {path} tidak ada",
                en=f"Database {path} does not exist",
                hint_id="Jalankan 'jaranijo provision' lebih dulu",
                hint_en="Run 'jaranijo provision' first",
            )
        private_files(path)
        try:
            conn = connect_durable(path)
        except sqlite3.Error as exc:
            raise _damaged(path, exc) from None
        try:
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("PRAGMA foreign_keys = ON")
            if check:
                result = conn.execute("PRAGMA quick_check").fetchall()
                if result != [("ok",)]:
                    raise sqlite3.DatabaseError(str(result[0][0]) if result else "no answer")
            store = cls(path, conn)
            migrations.apply(store.db)
        except sqlite3.Error as exc:
            conn.close()
            raise _damaged(path, exc) from None
        private_files(path)  # the -wal and -shm files SQLite made
        return store

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """One durable transaction: committed (and synced) when the block ends without error."""
        return transaction(self.conn)

    def scrub(self) -> bool:
        """Leave no deleted byte behind (after a wipe): copy the WAL into the database and
        truncate it to nothing, VACUUM (rewrites the file without free pages, through the
        WAL), and checkpoint with truncate again. True when every step completed; False
        when another connection (the kiosk) kept a checkpoint from finishing, the WAL then
        is scrubbed by the next checkpoint."""
        def checkpoint() -> bool:
            busy, _, _ = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return bool(busy == 0)

        first = checkpoint()
        self.conn.execute("VACUUM")
        complete = checkpoint() and first
        if not complete:
            log.warning("wipe: another process kept the WAL from being truncated")
        return complete

    def integrity_check(self) -> str:
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])

    # -- key slots and PIN attempts ---------------------------------------------------
    def put_key_slot(self, officer_id: str, salt: bytes, opslimit: int, memlimit: int,
                     wrapped: bytes, tpm_blob: bytes | None = None) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO key_slots (officer_id, salt, opslimit, memlimit, wrapped, "
            "created_at, tpm_blob) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (officer_id, salt, opslimit, memlimit, wrapped, time.time(), tpm_blob),
        )

    def key_slot(self, officer_id: str) -> tuple[bytes, int, int, bytes, bytes | None] | None:
        """``(salt, opslimit, memlimit, wrapped, tpm_blob)`` of an officer's slot."""
        row = self.conn.execute(
            "SELECT salt, opslimit, memlimit, wrapped, tpm_blob FROM key_slots "
            "WHERE officer_id = ?", (officer_id,),
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3], row[4])

    def key_slot_ids(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT officer_id FROM key_slots ORDER BY 1")]

    def delete_key_slot(self, officer_id: str) -> None:
        self.conn.execute("DELETE FROM key_slots WHERE officer_id = ?", (officer_id,))

    def pin_failures(self, officer_id: str) -> tuple[int, float]:
        row = self.conn.execute(
            "SELECT failures, last_failure FROM pin_attempts WHERE officer_id = ?", (officer_id,)
        ).fetchone()
        return (0, 0.0) if row is None else (int(row[0]), float(row[1]))

    def record_pin_failure(self, officer_id: str, now: float) -> None:
        self.conn.execute(
            "INSERT INTO pin_attempts VALUES (?, 1, ?) ON CONFLICT(officer_id) DO UPDATE "
            "SET failures = failures + 1, last_failure = excluded.last_failure",
            (officer_id, now),
        )

    def restart_pin_waits(self, now: float) -> None:
        """Every recorded failure's time set to ``now`` (the monotonic clock restarted)."""
        self.conn.execute("UPDATE pin_attempts SET last_failure = ?", (now,))

    def reset_pin_failures(self, officer_id: str) -> None:
        self.conn.execute("DELETE FROM pin_attempts WHERE officer_id = ?", (officer_id,))

    # -- assignments and targets (ciphertext) -----------------------------------------
    def put_assignment(self, assignment_id: str, visit_date: str, payload: bytes,
                       targets: list[tuple[str, bytes]], *, drop: Iterable[str] = (),
                       cancelled: bool = False) -> int:
        """Store an assignment and its targets (already encrypted) in one transaction.

        A newer version replaces the older: its targets take positions in its order,
        and the rows named in ``drop`` (targets the caller found untouched, pending,
        and no longer in it) are deleted. A row is deleted only if it still belongs to
        this assignment, is not in the new version and no draft names it, and has no
        state kept in clear from before m005; a target dropped from the list that was
        recorded (or is being recorded) stays, after the new ones, so nothing an
        officer did is lost. ``cancelled`` keeps the row (and those targets) but hides
        it from :meth:`assignments`. Returns how many targets were deleted.
        """
        now = time.time()
        new_ids = [target_id for target_id, _ in targets]
        dropped = 0
        with self.transaction():
            self.conn.execute(
                "INSERT INTO assignments (id, visit_date, received_at, payload, cancelled) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "visit_date = excluded.visit_date, received_at = excluded.received_at, "
                "payload = excluded.payload, cancelled = excluded.cancelled",
                (assignment_id, visit_date, now, payload, int(cancelled)),
            )
            for position, (target_id, blob) in enumerate(targets):
                self.conn.execute(
                    "INSERT INTO targets (id, assignment_id, position, status, updated_at, "
                    "payload) VALUES (?, ?, ?, '', ?, ?) ON CONFLICT(id) DO UPDATE SET "
                    "assignment_id = excluded.assignment_id, position = excluded.position, "
                    "payload = excluded.payload, updated_at = excluded.updated_at",
                    (target_id, assignment_id, position, now, blob),
                )
            for row_id in set(drop) - set(new_ids):
                dropped += self.conn.execute(
                    "DELETE FROM targets WHERE id = ? AND assignment_id = ? "
                    "AND status IN ('', 'pending') AND outcome = '' AND NOT EXISTS "
                    "(SELECT 1 FROM drafts d WHERE d.target_id = targets.id)",
                    (row_id, assignment_id)).rowcount
            kept = [r[0] for r in self.conn.execute(
                f"SELECT id FROM targets WHERE assignment_id = ? AND id NOT IN "
                f"({', '.join('?' * len(new_ids))}) ORDER BY position, id",
                (assignment_id, *new_ids))]
            for offset, row_id in enumerate(kept):  # no longer asked for: after the new ones
                self.conn.execute("UPDATE targets SET position = ? WHERE id = ?",
                                  (len(new_ids) + offset, row_id))
            self._audit("assignment_stored", subject=assignment_id,
                        detail=json.dumps({"targets": len(targets), "dropped": dropped,
                                           "kept": len(kept), "cancelled": cancelled}))
        return dropped

    def assignments(self, *, include_cancelled: bool = False) -> list[dict[str, Any]]:
        """The assignments the kiosk may offer, by visit date; a cancelled one only with
        ``include_cancelled`` (its recorded targets are still in the store)."""
        where = "" if include_cancelled else "WHERE cancelled = 0 "
        return [dict(r) for r in self.db.query(
            "SELECT id, visit_date, received_at, cancelled FROM assignments "
            f"{where}ORDER BY visit_date, id")]

    def assignment_cancelled(self, assignment_id: str) -> bool | None:
        """Whether the office cancelled it; None when the kit does not hold it."""
        row = self.conn.execute(
            "SELECT cancelled FROM assignments WHERE id = ?", (assignment_id,)).fetchone()
        return None if row is None else bool(row[0])

    def assignment_payload(self, assignment_id: str) -> bytes | None:
        row = self.conn.execute(
            "SELECT payload FROM assignments WHERE id = ?", (assignment_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def targets(self, assignment_id: str) -> list[dict[str, Any]]:
        """Targets of an assignment in office order: the row id (a reference, see
        :func:`kit.records.target_ref`), the encrypted payload and the encrypted ``state``
        (None: pending); ``status``/``outcome`` are blank but on rows kept before m005."""
        return [dict(r) for r in self.db.query(
            "SELECT id, status, outcome, state, updated_at, payload FROM targets "
            "WHERE assignment_id = ? "
            "ORDER BY position", [assignment_id])]

    def set_target_state(self, row_id: str, state: bytes) -> None:
        """Where a target stands, encrypted (:func:`kit.records.set_target_state`). Its time
        is not kept: ``updated_at`` stays when the assignment came."""
        self.conn.execute("UPDATE targets SET state = ?, status = '', outcome = '' "
                          "WHERE id = ?", (state, row_id))

    def rekey_target(self, old_id: str, row_id: str, payload: bytes, state: bytes) -> None:
        """Move a target row kept under its target's id (before m005) to its reference
        ``row_id``, with its payload and state encrypted for that name; its drafts follow."""
        with self.transaction():
            self.conn.execute("UPDATE targets SET id = ?, payload = ?, state = ?, status = '', "
                              "outcome = '' WHERE id = ?", (row_id, payload, state, old_id))
            self.conn.execute("UPDATE drafts SET target_id = ? WHERE target_id = ?",
                              (row_id, old_id))

    # -- drafts (ciphertext) ----------------------------------------------------------
    def put_draft(self, recording_id: str, target_ref: str, step: str, payload: bytes,
                  expires_at: float) -> None:
        """Keep a draft; ``target_ref`` is the target's reference (:func:`kit.records.target_ref`),
        never its id."""
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO drafts VALUES (?, ?, ?, ?, ?, ?)",
                (recording_id, target_ref, step, time.time(), expires_at, payload),
            )

    def drafts(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query(
            "SELECT recording_id, target_id, step, updated_at, expires_at FROM drafts "
            "ORDER BY updated_at")]

    def draft_payload(self, recording_id: str) -> bytes | None:
        row = self.conn.execute(
            "SELECT payload FROM drafts WHERE recording_id = ?", (recording_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def delete_draft(self, recording_id: str) -> None:
        self.conn.execute("DELETE FROM drafts WHERE recording_id = ?", (recording_id,))

    # -- sealed records and the outbox ------------------------------------------------
    def save_sealed(self, record_id: str, kind: str, sealed_at: str, blob: bytes, *,
                    target_ref: str | None = None, target_state: bytes | None = None,
                    actor: str = "") -> StoredRecord:
        """Store a sealed record, queue it for upload, close its draft: one durable commit.

        With ``target_ref``, that target's row takes ``target_state`` (encrypted, see
        :func:`kit.records.seal_recording`); the record itself does not name its target.
        When this returns, the record is on disk and may be reported as saved.
        """
        digest = hashlib.sha256(blob).hexdigest()
        with self.transaction():
            self.conn.execute(
                "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (record_id, kind, None, sealed_at, time.time(), len(blob), digest, blob),
            )
            self.conn.execute("INSERT INTO outbox (record_id) VALUES (?)", (record_id,))
            self.conn.execute("DELETE FROM drafts WHERE recording_id = ?", (record_id,))
            if target_ref and target_state is not None:
                self.set_target_state(target_ref, target_state)
            self._audit("record_sealed", actor=actor, subject=record_id,
                        detail=json.dumps({"kind": kind, "size": len(blob)}))
        return StoredRecord(record_id, kind, None, sealed_at, len(blob), digest)

    def record(self, record_id: str) -> StoredRecord | None:
        row = self.conn.execute(
            "SELECT id, kind, target_id, sealed_at, size, sha256 FROM records WHERE id = ?",
            (record_id,)).fetchone()
        return None if row is None else StoredRecord(*row)

    def record_blob(self, record_id: str) -> bytes | None:
        row = self.conn.execute("SELECT blob FROM records WHERE id = ?", (record_id,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def record_ids(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT id FROM records ORDER BY id")]

    def outbox(self) -> list[dict[str, Any]]:
        """Records waiting for the office's receipt, oldest first."""
        return [dict(r) for r in self.db.query(
            "SELECT o.record_id, o.state, o.attempts, o.next_attempt_at, o.sent_bytes, "
            "o.last_error, r.size, r.sha256, r.stored_at FROM outbox o JOIN records r "
            "ON r.id = o.record_id WHERE o.state != 'acked' ORDER BY r.stored_at, r.id")]

    def mark_acked(self, record_id: str) -> None:
        """The office holds the record durably: drop the payload, keep the receipt."""
        with self.transaction():
            self.conn.execute("UPDATE outbox SET state = 'acked', acked_at = ? "
                              "WHERE record_id = ?", (time.time(), record_id))
            self.conn.execute("UPDATE records SET blob = NULL WHERE id = ?", (record_id,))
            self._audit("record_acknowledged", subject=record_id)

    # -- kit status and audit ----------------------------------------------------------
    def set_status(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO kit_status VALUES (?, ?, ?)",
                          (key, json.dumps(value), time.time()))

    def status(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM kit_status WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def status_keys(self, prefix: str = "") -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT key FROM kit_status WHERE key LIKE ? ORDER BY key", (prefix + "%",))]

    def delete_status(self, key: str) -> None:
        self.conn.execute("DELETE FROM kit_status WHERE key = ?", (key,))

    def audit(self, event: str, *, actor: str = "", subject: str = "", detail: str = "") -> None:
        """Note an event. Never pass personal data: ids and counts only. The subject and
        detail of an event about a visit (:data:`SEALED_AUDIT_EVENTS`) are sealed."""
        self._audit(event, actor=actor, subject=subject, detail=detail)

    def _audit(self, event: str, *, actor: str = "", subject: str = "", detail: str = "") -> None:
        if event in SEALED_AUDIT_EVENTS and (subject or detail):
            subject, detail = self._seal_audit(subject, detail), ""
        self.conn.execute("INSERT INTO audit (ts, event, actor, subject, detail) "
                          "VALUES (?, ?, ?, ?, ?)", (time.time(), event, actor, subject, detail))

    def _seal_audit(self, subject: str, detail: str) -> str:
        """``subject`` and ``detail`` sealed to the kit's box public key (written with no
        secret, read only with the box secret key, which lies under the officers' data key);
        without that key on the kit (not provisioned) they are not kept at all."""
        box_path = self.path.parent / "keys" / "kit-box.pub"
        try:
            public = PublicKey(read_key_file(box_path, "kit-box-public", secret=False))
        except JaranIjoError:
            return ""
        sealed = SealedBox(public).encrypt(json.dumps([subject, detail]).encode())
        return SEALED_PREFIX + base64.b64encode(sealed).decode("ascii")

    def audit_log(self, limit: int = 100, *, box_key: bytes | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` entries, newest first. A sealed subject and detail read as
        ``"(sealed)"``, or in clear with the kit's box secret key (``box_key``, a vault
        secret: ``PinVault.get_secret(data_key, "kit-box")``)."""
        box = None if box_key is None else SealedBox(PrivateKey(box_key))
        rows = [dict(r) for r in self.db.query(
            "SELECT ts, event, actor, subject, detail FROM audit ORDER BY id DESC LIMIT ?",
            [limit])]
        for row in rows:
            if row["subject"].startswith(SEALED_PREFIX):
                row["subject"], row["detail"] = _open_audit(row["subject"], box)
        return rows


    # -- office link (kit/agent): outbox progress, inbox, command replay ------------
    def outbox_summary(self) -> tuple[int, float | None, int]:
        """Records waiting for a receipt: how many, when the oldest was stored, total bytes."""
        row = self.conn.execute(
            "SELECT COUNT(*), MIN(r.stored_at), COALESCE(SUM(r.size), 0) FROM outbox o "
            "JOIN records r ON r.id = o.record_id WHERE o.state != 'acked'").fetchone()
        return int(row[0]), (None if row[1] is None else float(row[1])), int(row[2])

    def outbox_entry(self, record_id: str) -> dict[str, Any] | None:
        """One outbox row (state, attempts, next_attempt_at, sent_bytes...), or None."""
        rows = list(self.db.query("SELECT * FROM outbox WHERE record_id = ?", [record_id]))
        return dict(rows[0]) if rows else None

    def set_outbox_progress(self, record_id: str, sent_bytes: int) -> None:
        """Remember how much of a record the office has confirmed, to resume from there."""
        self.conn.execute("UPDATE outbox SET sent_bytes = ?, state = 'sending' "
                          "WHERE record_id = ? AND state != 'acked'", (sent_bytes, record_id))

    def outbox_failed(self, record_id: str, error: str, next_attempt_at: float) -> None:
        """The office refused a record: count the attempt, wait, start it again from 0."""
        self.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
            "sent_bytes = 0, state = 'queued' WHERE record_id = ? AND state != 'acked'",
            (error[:200], next_attempt_at, record_id))

    def outbox_refused(self, record_id: str, reason: str, at: float) -> None:
        """The office refused a record for good (a final reason): count it, keep it and its
        payload, and mark it ``refused`` so the uploader never sends it again by itself."""
        with self.transaction():
            self.outbox_failed(record_id, reason, at)
            self.conn.execute("UPDATE outbox SET state = 'refused' WHERE record_id = ? AND "
                              "state != 'acked'", (record_id,))

    def outbox_release(self, record_id: str) -> bool:
        """The office asks again for a record it refused for good: queue it as new.
        False when no refused record has that id."""
        cur = self.conn.execute(
            "UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = 0, "
            "sent_bytes = 0, last_error = '' WHERE record_id = ? AND state = 'refused'",
            (record_id,))
        return cur.rowcount == 1

    def put_inbox(self, assignment_id: str, sealed_at: str, envelope: bytes) -> bool:
        """Keep a verified, still sealed assignment; False when the same or a newer one is here.

        ``sealed_at`` is the office's ISO time, so comparing the texts orders
        them: an old version replayed never replaces a newer one.
        """
        with self.transaction():
            row = self.conn.execute("SELECT sealed_at FROM inbox WHERE assignment_id = ?",
                                    (assignment_id,)).fetchone()
            if row is not None and row[0] >= sealed_at:
                return False
            self.conn.execute(
                "INSERT OR REPLACE INTO inbox (assignment_id, sealed_at, received_at, envelope) "
                "VALUES (?, ?, ?, ?)", (assignment_id, sealed_at, time.time(), envelope))
            self._audit("assignment_received", subject=assignment_id)
        return True

    def inbox(self, *, pending_only: bool = True) -> list[dict[str, Any]]:
        """Assignments received from the office, oldest first (sealed envelopes included)."""
        where = "WHERE envelope IS NOT NULL" if pending_only else ""
        return [dict(r) for r in self.db.query(
            "SELECT assignment_id, sealed_at, received_at, envelope, opened_at, error "
            f"FROM inbox {where} ORDER BY received_at, assignment_id")]

    def inbox_opened(self, assignment_id: str, sealed_at: str) -> None:
        """The UI opened and stored it: drop the envelope, keep the date against replays."""
        self.conn.execute("UPDATE inbox SET envelope = NULL, opened_at = ?, error = '' "
                          "WHERE assignment_id = ? AND sealed_at = ?",
                          (time.time(), assignment_id, sealed_at))

    def inbox_error(self, assignment_id: str, error: str) -> None:
        self.conn.execute("UPDATE inbox SET error = ? WHERE assignment_id = ?",
                          (error[:200], assignment_id))

    def inbox_reports_due(self) -> list[dict[str, Any]]:
        """What the agent has still to tell the office about the kiosk opening assignments:
        each version opened and not yet reported, and each error met opening a version
        still waiting that was not yet reported (the same error is told once). A newer
        version replaces its row (:meth:`put_inbox`), so it is told afresh."""
        return [dict(r) for r in self.db.query(
            "SELECT assignment_id, sealed_at, opened_at, error FROM inbox WHERE "
            "(opened_at IS NOT NULL AND opened_reported_at IS NULL) OR "
            "(opened_at IS NULL AND envelope IS NOT NULL AND error != '' "
            "AND error != error_reported) ORDER BY received_at, assignment_id")]

    def inbox_reported(self, assignment_id: str, sealed_at: str, *, opened: bool,
                       error: str = "") -> None:
        """The broker accepted the report of that version's opening (or of ``error``)."""
        if opened:
            self.conn.execute("UPDATE inbox SET opened_reported_at = ? WHERE "
                              "assignment_id = ? AND sealed_at = ? AND opened_at IS NOT NULL",
                              (time.time(), assignment_id, sealed_at))
        else:
            self.conn.execute("UPDATE inbox SET error_reported = ? WHERE assignment_id = ? "
                              "AND sealed_at = ?", (error[:200], assignment_id, sealed_at))

    def clear_inbox(self) -> int:
        """Drop every envelope still waiting (after a wipe nothing could open them)."""
        return self.conn.execute("UPDATE inbox SET envelope = NULL WHERE envelope IS NOT NULL"
                                 ).rowcount

    def remember_command(self, command_id: str, name: str, expires_at: float) -> bool:
        """Note a command id; False if it was already noted (a replay)."""
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO seen_commands (command_id, name, received_at, expires_at) "
            "VALUES (?, ?, ?, ?)", (command_id, name, time.time(), expires_at))
        return cursor.rowcount == 1

    def command_seen(self, command_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM seen_commands WHERE command_id = ?",
                                 (command_id,)).fetchone() is not None

    def set_command_result(self, command_id: str, result: str) -> None:
        self.conn.execute("UPDATE seen_commands SET result = ? WHERE command_id = ?",
                          (result[:1000], command_id))

    def forget_commands_before(self, expired_before: float) -> int:
        """Drop ids of commands that expired before then: a replay of one is refused as stale."""
        return self.conn.execute("DELETE FROM seen_commands WHERE expires_at < ?",
                                 (expired_before,)).rowcount

    def delete_drafts(self) -> int:
        """Delete every draft (part of a wipe)."""
        return self.conn.execute("DELETE FROM drafts").rowcount

def _open_audit(sealed: str, box: SealedBox | None) -> tuple[str, str]:
    if box is None:
        return "(sealed)", "(sealed)"
    try:
        subject, detail = json.loads(box.decrypt(
            base64.b64decode(sealed[len(SEALED_PREFIX):], validate=True)))
        return str(subject), str(detail)
    except (nacl.exceptions.CryptoError, ValueError, TypeError, binascii.Error):
        return "(damaged)", "(damaged)"


def private_files(path: Path) -> None:
    """The store's folder 0700 and its files 0600, made so when missing (before SQLite makes
    ``kit.db``, so it is never readable by others, and SQLite gives the -wal and -shm files
    the database's mode). Modes of files another user owns are left to that user."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    if not path.exists():
        with contextlib.suppress(OSError):  # then SQLite says why it cannot open it
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if name.stat().st_mode & 0o077:
                os.chmod(name, 0o600)


def _damaged(path: Path, exc: Exception) -> StoreError:
    return StoreError(
        id=f"Basis data {path} rusak atau bukan basis data ({exc})",
        en=f"Database {path} is damaged or not a database ({exc})",
        hint_id="Jangan hapus berkasnya; hubungi teknisi untuk memulihkan dari cadangan",
        hint_en="Do not delete the file; ask a technician to restore it from a backup",
    )
