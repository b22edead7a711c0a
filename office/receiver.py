"""The office end of the link: receive records durably, send receipts, assignments, commands.

A minimal service the office issues build on. It holds:

* **its own SQLite file** (WAL, ``synchronous=FULL``): records received,
  uploads in progress chunk by chunk, the latest status, health and position
  of every kit, assignments and commands waiting to go out;
* **the office's signing key** (``office-sign.key``): it signs receipts,
  assignments and commands. The office *seal* key, which opens records,
  need not be here: the receiver checks a record without opening it (kit
  signature, SHA-256 of every byte, sealed to the office's public seal key,
  ids matching the topic) and stores it still sealed; ``jaranijo office
  open`` (or the office's later record service) opens it where that key
  lives. Given the seal key (``open_records=True``) it also opens each
  record fully before acknowledging it;
* **the kits' public keys**, a folder per kit: ``KITS/{kit_id}/kit-sign.pub``
  and ``kit-box.pub``. A kit without a folder is refused (and retries).

A record is acknowledged -- the signed receipt that lets the kit delete it
-- only after the transaction that stores it has committed. Every chunk is
committed before its progress is confirmed, so a kit resumes after any
interruption on either side from what is really on disk. A record already
held is never stored twice: a repeat gets the receipt again.

>>> receiver = OfficeReceiver(OfficeDb.open("office.db"), OfficeKeysForLink.load(keys), kits,
...                           BrokerSettings("broker.example", 8883, tls=True))  # doctest: +SKIP
>>> receiver.serve()                                                          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from nacl.public import PublicKey
from nacl.signing import SigningKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sync import protocol as p
from sync.envelope import KitPublicKeys, OfficeKeys, fingerprint, read_key_file, seal
from sync.errors import JaranIjoError, KeyFileError, StoreError

log = logging.getLogger(__name__)

SCHEMA = """
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

# How long a kit should wait before sending a refused record again, by reason.
RETRY_S = {"hash": 0, "kit_unknown": 600, "too_large": 86400, "conflict": 86400}
DEFAULT_RETRY_S = 3600


class OfficeDb:
    """The receiver's SQLite file. One connection per thread; WAL lets the CLI write
    (queue an assignment) while the service runs."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn

    @classmethod
    def open(cls, path: str | Path) -> OfficeDb:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, timeout=10.0, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(
                id=f"Basis data kantor {path} tidak dapat dibuka ({exc})",
                en=f"Office database {path} cannot be opened ({exc})",
                hint_id="Jangan hapus berkasnya; periksa disk dan hak akses",
                hint_en="Do not delete the file; check the disk and permissions",
            ) from None
        return cls(path, conn)

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Any:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

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

    def refuse(self, kit_id: str, leaf: str, reason: str) -> None:
        self.conn.execute("INSERT INTO refusals (ts, kit_id, leaf, reason) VALUES (?, ?, ?, ?)",
                          (time.time(), kit_id, leaf, reason))

    def refusals(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(
            "SELECT ts, kit_id, leaf, reason FROM refusals ORDER BY id")]

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


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfficeKeysForLink:
    """What the receiver needs: the signing key, the public seal key, optionally the secret one."""

    sign: SigningKey
    seal_public: PublicKey
    full: OfficeKeys | None = None

    @classmethod
    def load(cls, directory: str | Path, *, open_records: bool = False) -> OfficeKeysForLink:
        directory = Path(directory)
        sign = SigningKey(read_key_file(directory / "office-sign.key", "office-sign-secret",
                                        secret=True))
        seal_public = PublicKey(read_key_file(directory / "office-seal.pub",
                                              "office-seal-public", secret=False))
        full = OfficeKeys.load(directory) if open_records else None
        return cls(sign=sign, seal_public=seal_public, full=full)


class KitDirectory:
    """Kits' public keys, a folder per kit; a kit added while running is found."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._cache: dict[str, KitPublicKeys] = {}

    def get(self, kit_id: str) -> KitPublicKeys | None:
        keys = self._cache.get(kit_id)
        if keys is None:
            try:
                keys = KitPublicKeys.load(self.directory / kit_id)
            except KeyFileError as exc:
                log.warning("no usable keys for kit %s: %s", kit_id, exc.text("en"))
                return None
            self._cache[kit_id] = keys
        return keys


# ---------------------------------------------------------------------------------------------
# Sending to kits (used by the CLI; the service publishes what is queued)
# ---------------------------------------------------------------------------------------------


def seal_assignment(content: dict[str, Any], assignment_id: str, kit_id: str,
                    kit_keys: KitPublicKeys, office_sign: SigningKey) -> tuple[bytes, str]:
    """The sealed, signed envelope of an assignment for one kit, and its sealing time."""
    envelope = seal(content, kind=p.ASSIGNMENT_KIND,
                    ids={"assignment_id": assignment_id, "kit_id": kit_id},
                    recipient=kit_keys.box, signer=office_sign)
    sealed_at = str(p.verify_envelope(envelope, office_sign.verify_key)["sealed_at"])
    if len(p.encode_assignment(p.AssignmentMessage(assignment_id, envelope))) > \
            p.LIMITS["assign"]:
        raise p.ProtocolError("oversized", "assignment is too large for one message; "
                                           "split it into several visits")
    return envelope, sealed_at


def make_command(kit_id: str, name: str, args: dict[str, Any], office_sign: SigningKey, *,
                 lifetime_s: int = 3600, now: float | None = None) -> tuple[p.Command, bytes]:
    """A signed command for one kit, valid for ``lifetime_s`` from now."""
    issued = int(now if now is not None else time.time())
    command = p.Command(command_id=str(uuid.uuid4()), kit_id=p.check_kit_id(kit_id), name=name,
                        args=args, issued_at=issued, expires_at=issued + lifetime_s)
    if name not in p.COMMANDS:
        raise p.ProtocolError("unknown_command", f"command {name!r} is not one of "
                                                 f"{', '.join(p.COMMANDS)}")
    payload = p.sign_command(command, office_sign)
    if len(payload) > p.LIMITS["cmd"]:
        raise p.ProtocolError("oversized", "command arguments are too large")
    return command, payload


# ---------------------------------------------------------------------------------------------
# The service
# ---------------------------------------------------------------------------------------------


@dataclass
class BrokerSettings:
    host: str = "localhost"
    port: int = 1883
    username: str = p.OFFICE_USER
    password: str | None = None
    tls: bool = False
    ca_file: str = ""
    client_id: str = p.OFFICE_USER
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 86400
    will_delay_s: int = 30
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    resend_s: float = 600.0  # undelivered assignments go out again this often
    max_chunk_data: int = p.MAX_CHUNK_DATA


class OfficeReceiver:
    """Subscribes to every kit, stores what they send, answers, and publishes what is queued."""

    def __init__(self, db: OfficeDb, keys: OfficeKeysForLink, kits: KitDirectory,
                 broker: BrokerSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.keys = keys
        self.kits = kits
        self.broker = broker
        self.clock = clock
        self.seal_fingerprint = fingerprint(bytes(keys.seal_public))
        self.client: mqtt.Client | None = None
        self.connected = False
        self.stop_event = threading.Event()
        self._failures = 0
        self._next_connect = 0.0
        self._connect_started = 0.0
        self._next_poll = 0.0
        self._next_resend = 0.0
        self._rng = random.Random()
        self.counters: dict[str, int] = {"records": 0, "chunks": 0, "refused": 0,
                                         "receipts": 0}

    # -- life cycle -------------------------------------------------------------------------
    def serve(self, stop: threading.Event | None = None) -> None:
        """Run until ``stop`` (or :meth:`stop`) is set."""
        if stop is not None:
            self.stop_event = stop
        log.info("office receiver starting (broker %s:%d)", self.broker.host, self.broker.port)
        try:
            while not self.stop_event.is_set():
                self._tick()
        finally:
            self._shutdown()

    def stop(self) -> None:
        self.stop_event.set()

    def _tick(self) -> None:
        try:
            now = time.monotonic()
            self._ensure_connected(now)
            client = self.client
            if client is not None:
                rc = client.loop(0.1)
                if rc != mqtt.MQTT_ERR_SUCCESS and self.client is client:
                    self._lost(mqtt.error_string(rc))
            else:
                self.stop_event.wait(0.1)
            if self.connected and now >= self._next_poll:
                self._next_poll = now + 0.5
                self._send_queued(resend=now >= self._next_resend)
                if now >= self._next_resend:
                    self._next_resend = now + self.broker.resend_s
        except JaranIjoError as exc:
            log.error("%s", exc.text("en"))
            self.stop_event.wait(1.0)
        except Exception:  # keep serving the other kits
            log.exception("office receiver loop failed; carrying on")
            self.stop_event.wait(1.0)

    def _shutdown(self) -> None:
        client = self.client
        if client is not None and self.connected:
            info = client.publish(p.OFFICE_STATUS_TOPIC, p.encode_office_status(
                p.OfficeStatus(online=False, tst=int(self.clock()))), qos=1, retain=True)
            deadline = time.monotonic() + 2.0
            while not info.is_published() and time.monotonic() < deadline:
                client.loop(0.05)
            client.disconnect()
        self._drop()
        log.info("office receiver stopped")

    def _ensure_connected(self, now: float) -> None:
        if self.client is not None:
            if not self.connected and now - self._connect_started > 30:
                self._lost("no answer from the broker")
            return
        if now < self._next_connect:
            return
        b = self.broker
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=b.client_id,
                             protocol=mqtt.MQTTv5, reconnect_on_failure=False)
        if b.username:
            client.username_pw_set(b.username, b.password)
        if b.tls:
            client.tls_set(ca_certs=b.ca_file or None)
        will_props = Properties(PacketTypes.WILLMESSAGE)
        will_props.WillDelayInterval = b.will_delay_s
        client.will_set(p.OFFICE_STATUS_TOPIC, p.encode_office_status(
            p.OfficeStatus(online=False, tst=int(self.clock()))), qos=1, retain=True,
            properties=will_props)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = b.session_expiry_s
        self.client = client
        self._connect_started = now
        try:
            client.connect(b.host, b.port, keepalive=b.keepalive_s, clean_start=False,
                           properties=props)
            p.no_delay(client)
        except (OSError, ValueError) as exc:
            self._lost(f"cannot reach {b.host}:{b.port}: {exc}")

    def _lost(self, reason: str) -> None:
        self._drop()
        self._failures += 1
        delay = p.backoff_s(self._failures, self.broker.reconnect_min_s,
                            self.broker.reconnect_max_s, self._rng)
        self._next_connect = time.monotonic() + delay
        log.warning("broker link down (%s); next try in %.1f s", reason, delay)

    def _drop(self) -> None:
        client, self.client = self.client, None
        self.connected = False
        if client is not None:
            p.close_without_goodbye(client)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if client is not self.client:
            return
        if reason.is_failure:
            log.error("broker refused the office: %s", reason)
            self._lost(str(reason))
            return
        self.connected = True
        self._failures = 0
        client.subscribe([(topic, 1) for topic in p.office_subscriptions()])
        client.publish(p.OFFICE_STATUS_TOPIC, p.encode_office_status(
            p.OfficeStatus(online=True, tst=int(self.clock()))), qos=1, retain=True)
        self._next_resend = 0.0
        log.info("office receiver connected")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        if client is self.client:
            self._lost(f"disconnected: {reason}")

    def publish(self, topic: str, payload: bytes) -> bool:
        client = self.client
        if client is None or not self.connected:
            return False
        return client.publish(topic, payload, qos=1).rc == mqtt.MQTT_ERR_SUCCESS

    # -- outgoing ---------------------------------------------------------------------------
    def _send_queued(self, *, resend: bool) -> None:
        for row in self.db.undelivered_assignments(unsent_only=not resend):
            topics = p.KitTopics(row["kit_id"])
            message = p.AssignmentMessage(row["assignment_id"], bytes(row["envelope"]))
            if self.publish(topics.assign, p.encode_assignment(message)):
                self.db.assignment_sent(row["kit_id"], row["assignment_id"])
        for row in self.db.unsent_commands():
            if self.publish(p.KitTopics(row["kit_id"]).cmd, bytes(row["payload"])):
                self.db.command_sent(row["command_id"])

    def resend_assignments(self, kit_id: str) -> None:
        for row in self.db.undelivered_assignments(kit_id):
            message = p.AssignmentMessage(row["assignment_id"], bytes(row["envelope"]))
            if self.publish(p.KitTopics(kit_id).assign, p.encode_assignment(message)):
                self.db.assignment_sent(kit_id, row["assignment_id"])

    # -- incoming ---------------------------------------------------------------------------
    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if client is not self.client:
            return
        topic, payload = message.topic, bytes(message.payload)
        kit_id, leaf = "-", "?"
        try:
            kit_id, leaf = p.parse_kit_topic(topic)
            self.handle(kit_id, leaf, payload, retained=bool(message.retain))
        except p.ProtocolError as exc:
            self.counters["refused"] += 1
            log.warning("refused %s from kit %s: %s", leaf, kit_id, exc.message["en"])
            self.db.refuse(kit_id, leaf, exc.reason)
        except JaranIjoError as exc:
            log.error("handling %s from kit %s failed: %s", leaf, kit_id, exc.text("en"))
        except Exception:  # one bad message must not stop the office
            log.exception("handling %s from kit %s failed", leaf, kit_id)

    def handle(self, kit_id: str, leaf: str, payload: bytes, *, retained: bool = False) -> None:
        """Process one message from a kit (the topic already parsed)."""
        now = self.clock()
        if leaf == "up":
            self._on_chunk(kit_id, p.decode_chunk(payload, max_data=self.broker.max_chunk_data))
        elif leaf == "location":
            position, data = p.decode_location(payload)
            self.db.set_kit(kit_id, location=json.dumps(data), location_at=now, last_seen=now)
            self.db.add_positions(kit_id, [position], "location")
        elif leaf == "health":
            health = p.decode_health(payload)
            old = self.db.kit(kit_id) or {}
            merged = json.loads(old.get("health") or "{}")
            # Slow fields (software, operator) travel only on change: keep the last known.
            merged.update({k: v for k, v in health.__dict__.items() if v is not None})
            self.db.set_kit(kit_id, health=json.dumps(merged), health_at=now, last_seen=now)
        elif leaf == "status":
            self._on_status(kit_id, p.decode_status(payload), now, retained)
        elif leaf == "track":
            points = p.decode_track(payload)
            if points:
                self.db.add_positions(kit_id, points, "track")
            self.db.set_kit(kit_id, last_seen=now)
        elif leaf == "ack":
            self.db.assignment_answered(kit_id, p.decode_assignment_ack(payload))
        elif leaf == "result":
            result = p.decode_result(payload)
            if not self.db.command_answered(kit_id, result):
                log.info("result for unknown or answered command %s from %s",
                         result.command_id, kit_id)
        else:
            raise p.ProtocolError("bad_topic", f"nothing handles '{leaf}'")

    def _on_status(self, kit_id: str, status: p.Status, now: float, retained: bool) -> None:
        old = self.db.kit(kit_id)
        if old is not None and status.session < old["session"]:
            log.info("ignoring an older status of kit %s (session %d < %d)", kit_id,
                     status.session, old["session"])
            return
        self.db.set_kit(kit_id, online=int(status.online), session=status.session,
                        status=json.dumps(status.__dict__), status_at=now,
                        last_seen=now if status.online else (old or {}).get("last_seen"))
        log.info("kit %s is %s (session %d%s)", kit_id, "online" if status.online else
                 "offline", status.session, f", {status.reason}" if status.reason else "")
        if status.online and not retained:
            self.resend_assignments(kit_id)

    # -- records ----------------------------------------------------------------------------
    def _reply(self, kit_id: str, progress: p.Progress) -> None:
        self.publish(p.KitTopics(kit_id).rcpt, p.encode_progress(progress))

    def _reject(self, kit_id: str, record_id: str, reason: str) -> None:
        self.counters["refused"] += 1
        self.db.refuse(kit_id, "up", reason)
        log.warning("record %s from kit %s refused: %s", record_id, kit_id, reason)
        self._reply(kit_id, p.Progress("reject", record_id, reason=reason,
                                       retry_s=RETRY_S.get(reason, DEFAULT_RETRY_S)))

    def _receipt(self, kit_id: str, record_id: str, sha: bytes, stored_at: int) -> None:
        self.counters["receipts"] += 1
        self._reply(kit_id, p.sign_receipt(self.keys.sign, kit_id, record_id, sha, stored_at))

    def _on_chunk(self, kit_id: str, chunk: p.Chunk) -> None:
        self.counters["chunks"] += 1
        rid = chunk.record_id
        held = self.db.record(kit_id, rid)
        if held is not None:
            if held["sha256"] == chunk.sha256.hex():
                self._receipt(kit_id, rid, chunk.sha256, int(held["received_at"]))
            else:
                self._reject(kit_id, rid, "conflict")
            return
        kit_keys = self.kits.get(kit_id)
        if kit_keys is None:
            self._reject(kit_id, rid, "kit_unknown")
            return
        upload = self.db.upload(kit_id, rid)
        if upload is not None and (upload["sha256"] != chunk.sha256.hex()
                                   or upload["size"] != chunk.size):
            log.info("kit %s restarted record %s with other bytes; starting over", kit_id, rid)
            self.db.drop_upload(kit_id, rid)
            upload = None
        have = 0 if upload is None else int(upload["have"])
        end = chunk.offset + len(chunk.data)
        if chunk.offset > have:
            self._reply(kit_id, p.Progress("have", rid, have=have, gap=True))
            return
        if end <= have:
            self._reply(kit_id, p.Progress("have", rid, have=have))
            return
        fresh = chunk.data[have - chunk.offset:]
        if end < chunk.size:
            self.db.append_chunk(kit_id, chunk, have, fresh)
            self._reply(kit_id, p.Progress("have", rid, have=end))
            return
        blob = self.db.assembled(kit_id, rid) + fresh
        problem, sealed_at, opened = self._check_record(kit_id, rid, chunk.sha256, blob,
                                                        kit_keys)
        if problem:
            self.db.drop_upload(kit_id, rid)
            self._reject(kit_id, rid, problem)
            return
        self.db.finish_record(kit_id, rid, chunk.sha256.hex(), blob, sealed_at, opened)
        self.counters["records"] += 1
        log.info("record %s from kit %s stored (%d bytes)", rid, kit_id, len(blob))
        self._receipt(kit_id, rid, chunk.sha256, int(time.time()))

    def _check_record(self, kit_id: str, record_id: str, sha: bytes, blob: bytes,
                      kit_keys: KitPublicKeys) -> tuple[str, str, bool]:
        """``(problem, sealed_at, opened)``; problem is "" for a record the office can keep."""
        if hashlib.sha256(blob).digest() != sha:
            return "hash", "", False
        try:
            header = p.verify_envelope(blob, kit_keys.sign)
        except p.ProtocolError as exc:
            return exc.reason, "", False
        if header.get("kind") != "recording":
            return "wrong_kind", "", False
        if header.get("kit_id") != kit_id:
            return "wrong_kit", "", False
        if header.get("record_id") != record_id:
            return "header_mismatch", "", False
        if header.get("to") != self.seal_fingerprint:
            # Sealed to another office key: acknowledging it would let the kit delete a
            # record nobody here can ever open.
            return "wrong_office_key", "", False
        sealed_at = str(header.get("sealed_at", ""))
        if self.keys.full is None:
            return "", sealed_at, False
        from office.records import open_record

        try:
            open_record(blob, self.keys.full, lambda _kit: kit_keys.sign)
        except JaranIjoError as exc:
            return f"unopenable:{exc.code}"[:40], "", False
        return "", sealed_at, True

