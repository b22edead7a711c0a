"""Receiving from kits over MQTT: records stored durably, receipts, telemetry, answers.

:class:`OfficeReceiver` is the service ``office serve`` runs. It subscribes
to every kit, stores what they send in the office database
(:class:`office.db.OfficeDb`) and publishes what ``office assign`` and
``office command`` queued there (:mod:`office.outbound`). It needs:

* **the office's signing key** (``office-sign.key``): it signs receipts.
  The office *seal* key, which opens records, need not be here: the
  receiver checks a record without opening it (kit signature, SHA-256 of
  every byte, sealed to the office's public seal key, ids matching the
  topic) and stores it still sealed; ``jaranijo office open`` (or the
  office's later record service) opens it where that key lives. Given the
  seal key (``open_records=True``) it also opens each record fully before
  acknowledging it;
* **the kits' public keys**, a folder per kit: ``KITS/{kit_id}/kit-sign.pub``
  and ``kit-box.pub``. A kit without a folder is refused (and retries).

A record is acknowledged -- the signed receipt that lets the kit delete it
-- only after the transaction that stores it has committed. Every chunk is
committed before its progress is confirmed, so a kit resumes after any
interruption on either side from what is really on disk. A record already
held is never stored twice: a repeat gets the receipt again. A refused
record gets a reason and how long to wait before sending it again
(:data:`RETRY_S`). What a kit can make the office keep is bounded: a quota
of unfinished uploads per kit (:data:`MAX_OPEN_UPLOADS`,
:data:`MAX_OPEN_UPLOAD_BYTES`; beyond it ``busy``), stale uploads expire
(:data:`STALE_UPLOAD_S`), and refusals are counted per kit, reason and
minute, with one log line for the first of each. A status whose session jumps
implausibly above the last accepted (:data:`MAX_SESSION_JUMP`) is refused; a
record with the id of a stored one but other bytes is received whole, kept
aside in the ``quarantine`` table for review, and answered ``conflict``. A record received
whole that fails its check (hash, kit signature, header, office key) is kept there too,
with the reason in ``quarantine_reasons`` (:func:`untrusted_reason`), and answered with
the same refusal as before; never a record, never a receipt.

Several receivers may split the kits' traffic (``BrokerSettings.share_group``: MQTT 5
shared subscriptions, each worker its own broker user, one database, PostgreSQL across
machines). The broker gives each message to one of them, so two workers may hold chunks
of one record at once: every chunk, health and status message is handled in one
transaction holding the kit's lock (:meth:`OfficeDb.lock_kit`), its replies published
after the commit. What goes out (assignments, commands) is claimed in the database
before it is published, so one worker sends each.

Telemetry (location, health, track), which no receipt depends on, is grouped: held in
memory and written in one transaction a batch (:meth:`OfficeDb.write_telemetry`,
coalesced per kit, each kit locked in sorted order) when the batch is
:data:`TELEMETRY_BATCH_S` old or :data:`TELEMETRY_BATCH_MAX` messages long, before any
other kind of message is handled (a kit's status never overtakes the telemetry before
it), and on shutdown; committed without waiting for the disk
(:meth:`OfficeDb.telemetry_transaction`). One commit a batch instead of one a message is
what lets one core take thousands of messages a second (issue 11,
``tests/bench/bench_ingest.py``). **What a crash may lose**: the telemetry not yet
flushed, under :data:`TELEMETRY_BATCH_S` of it (plus what an asynchronous commit had not
synced when the power went), which the kits report again within minutes; never a record
or a receipt, whose transactions are their own, durable, and come after the flush of the
telemetry before them. A payload that does not decode is refused at once and never
enters a batch; a batch the database refuses is written again message by message, so one
bad row loses only itself. Health samples older than ``health_retention_s`` (35 days) are
deleted with the stale uploads' expiry, a thousand rows a transaction.

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
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from nacl.public import PublicKey
from nacl.signing import SigningKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from office.db import OfficeDb, Telemetry
from office.records import open_record
from sync import protocol as p
from sync.envelope import KitPublicKeys, OfficeKeys, fingerprint, read_key_file
from sync.errors import JaranIjoError, KeyFileError

# Named after the service, not the module: what operators' journal filters already match.
log = logging.getLogger("office.receiver")

# How long a kit should wait before sending a refused record again, by reason. The kit
# never sends again by itself a record refused for a reason in p.TERMINAL_REFUSALS
# (conflict, too_large): their wait is only what an older kit would honour.
RETRY_S = {"hash": 0, "kit_unknown": 600, "busy": 600, "too_large": 86400, "conflict": 86400,
           "revoked": 86400}
DEFAULT_RETRY_S = 3600

# What one kit may keep at the office in unfinished uploads. A kit in good order has at
# most ``upload_window`` (4) records going up at once, each at most p.MAX_RECORD_BYTES and
# in practice a few hundred kB: 8 uploads and 2 x MAX_RECORD_BYTES leave it room for twice
# its window and two records of the largest size, and bound what a kit with stolen or
# faulty software can pile up to 64 MiB, whatever it sends. Beyond them a new upload (or
# more bytes) is refused as ``busy``; the kit waits and starts that record again, and the
# office keeps what it already held of it.
MAX_OPEN_UPLOADS = 8
MAX_OPEN_UPLOAD_BYTES = 2 * p.MAX_RECORD_BYTES
# An unfinished upload with no chunk for this long is dropped: a kit sending it again is
# answered ``have 0`` with ``gap`` and starts it from the first chunk.
STALE_UPLOAD_S = 86400.0
# How far a kit's session counter may move above the last one the office accepted. The
# counter grows by one a broker connection, so a kit in good order moves it by a handful
# between two statuses the office sees (a birth each connection); a kit that reconnects
# every few minutes for days while the office is away stays far below 1,000, and a kit
# whose counter also grows on failed attempts (issue 10, finding 10: older kits) gains at
# most one every ``reconnect_max_s`` (300 s) while it cannot connect, hence the allowance
# of one more a minute since the last accepted status. A status above that bound is
# refused (``session_jump``): the office keeps the highest session and ignores lower ones,
# so one forged retained status with 2**53 would otherwise hide the real kit for ever.
# A kit's first status (none stored yet) is accepted as it comes.
MAX_SESSION_JUMP = 1000
SESSION_JUMP_PER_S = 1 / 60
# What one kit may leave in quarantine: records whose id collides with a stored one, kept
# aside for review. A kit in good order leaves none; these bound what one with stolen
# software can pile up. Beyond them a colliding record is refused as today and not kept.
MAX_QUARANTINED = 16
MAX_QUARANTINED_BYTES = 2 * p.MAX_RECORD_BYTES
# Telemetry batches (see the module docstring): written when this old or this long. 0.2 s
# is what a crash may lose, far below a kit's reporting interval; 500 messages keep one
# transaction short (a few ms) while the commit's cost is spread over hundreds.
TELEMETRY_BATCH_S = 0.2
TELEMETRY_BATCH_MAX = 500
TELEMETRY_LEAVES = frozenset({"location", "health", "track"})
# Health samples (the kit page's battery and signal chart) kept this long: a month and
# the days around it; a kit reporting every 5-15 minutes leaves ~3,000-9,000 rows in it.
HEALTH_RETENTION_S = 35 * 86400.0
# A shared-subscription group name: one topic level without wildcards.
SHARE_GROUP = re.compile(r"[A-Za-z0-9_.-]{1,64}")


# Why a record was kept in quarantine on receipt, by the refusal reason of _check_record:
# (Bahasa Indonesia, English), for the records pages and the technician. No personal data:
# the office never opened these bytes.
UNTRUSTED_REASONS = {
    "hash": ("Isi rekaman tidak cocok dengan hash SHA-256 yang dikirim kit (rusak atau "
             "diubah dalam perjalanan): dikirim {declared}, diterima {actual}.",
             "The record's bytes do not match the SHA-256 hash the kit sent (damaged or "
             "altered on the way): sent {declared}, received {actual}."),
    "bad_signature": ("Tanda tangan kit tidak sah: rekaman ini tidak ditandatangani dengan "
                      "kunci kit tersebut.",
                      "The kit's signature is not valid: this record is not signed with "
                      "that kit's key."),
    "malformed": ("Amplop rekaman rusak: tanda tangan kit tidak dapat diperiksa.",
                  "The record's envelope is malformed: the kit's signature cannot be "
                  "checked."),
    "wrong_kind": ("Yang dikirim bukan rekaman kunjungan.",
                   "What was sent is not a visit recording."),
    "wrong_kit": ("Rekaman menyebut kit lain dari kit yang mengirimnya.",
                  "The record names another kit than the one that sent it."),
    "header_mismatch": ("ID di kepala rekaman tidak cocok dengan ID unggahan.",
                        "The id in the record's header does not match the upload's id."),
    "wrong_office_key": ("Rekaman disegel untuk kunci kantor lain: kantor ini tidak dapat "
                         "membukanya.",
                         "The record is sealed to another office key: this office cannot "
                         "open it."),
}


def untrusted_reason(code: str, declared: str, actual: str) -> tuple[str, str]:
    """The (Indonesian, English) reason a record failing ``code`` was quarantined."""
    if code.startswith("unopenable"):
        pair = ("Rekaman tidak dapat dibuka dengan kunci kantor ({code}).",
                "The record cannot be opened with the office key ({code}).")
    else:
        pair = UNTRUSTED_REASONS.get(code, ("Pemeriksaan rekaman gagal ({code}).",
                                            "The record failed its check ({code})."))
    values = {"code": code, "declared": declared[:16], "actual": actual[:16]}
    return pair[0].format(**values), pair[1].format(**values)


def office_subscriptions(share_group: str = "") -> list[str]:
    """The filters the office subscribes to, as ``$share/<group>/...`` when in a group."""
    topics = p.office_subscriptions()
    return [f"$share/{share_group}/{t}" for t in topics] if share_group else topics


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


class OncePerMinute:
    """Says yes to a key at most once a minute (monotonic): for log lines a kit can trigger."""

    def __init__(self, period_s: float = 60.0, *, max_keys: int = 10_000) -> None:
        self.period_s = period_s
        self.max_keys = max_keys
        self._last: dict[tuple[str, ...], float] = {}

    def __call__(self, *key: str) -> bool:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.period_s:
            return False
        if len(self._last) >= self.max_keys:
            self._last = {k: t for k, t in self._last.items() if now - t < self.period_s}
        self._last[key] = now
        return True


class KitDirectory:
    """Kits' public keys, a folder per kit; a kit added while running is found."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._cache: dict[str, KitPublicKeys] = {}
        self._say = OncePerMinute()

    def get(self, kit_id: str) -> KitPublicKeys | None:
        keys = self._cache.get(kit_id)
        if keys is None:
            try:
                keys = KitPublicKeys.load(self.directory / kit_id)
            except KeyFileError as exc:
                if self._say(kit_id):
                    log.warning("no usable keys for kit %s: %s", kit_id, exc.text("en"))
                return None
            self._cache[kit_id] = keys
        return keys


# ---------------------------------------------------------------------------------------------
# The service
# ---------------------------------------------------------------------------------------------


@dataclass
class BrokerSettings:
    """Where the office's broker is, how the office logs in, and the session's timers.

    >>> BrokerSettings("broker.example", 8883, password=secret, tls=True)  # doctest: +SKIP
    """

    host: str = "localhost"
    port: int = 8883
    username: str = p.OFFICE_USER
    password: str | None = None
    tls: bool = True  # the office's password must not cross a network in clear either
    ca_file: str = ""  # the office CA's certificate; empty: the system's CA store
    cert_file: str = ""  # a client certificate, for a broker with require_certificate
    key_file: str = ""
    client_id: str = p.OFFICE_USER
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 86400
    will_delay_s: int = 30
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    resend_s: float = 600.0  # undelivered assignments go out again this often
    max_chunk_data: int = p.MAX_CHUNK_DATA
    max_open_uploads: int = MAX_OPEN_UPLOADS  # per kit
    max_open_upload_bytes: int = MAX_OPEN_UPLOAD_BYTES  # per kit
    stale_upload_s: float = STALE_UPLOAD_S
    expire_every_s: float = 60.0  # how often stale uploads (and old health samples) are looked for
    health_retention_s: float = HEALTH_RETENTION_S  # health samples older are deleted
    telemetry_batch_s: float = TELEMETRY_BATCH_S  # a telemetry batch is written this old
    telemetry_batch_max: int = TELEMETRY_BATCH_MAX  # ... or this many messages long
    retry_s: dict[str, int] = field(default_factory=lambda: dict(RETRY_S))  # by reason
    max_session_jump: int = MAX_SESSION_JUMP  # plus session_jump_per_s since the last status
    session_jump_per_s: float = SESSION_JUMP_PER_S
    max_quarantined: int = MAX_QUARANTINED  # per kit
    max_quarantined_bytes: int = MAX_QUARANTINED_BYTES  # per kit
    # Several workers, one group: each subscribes as ``$share/<group>/<filter>`` (MQTT 5
    # shared subscriptions) and the broker hands each kit message to one of them. Every
    # worker needs its own broker user (use_username_as_clientid) and the same database,
    # PostgreSQL for more than one machine. Empty: this receiver alone gets everything.
    share_group: str = ""

    def __post_init__(self) -> None:
        if self.share_group and not SHARE_GROUP.fullmatch(self.share_group):
            raise ValueError(f"share group {self.share_group!r}: letters, digits, '-', '_' "
                             "and '.' only (no '/', '+', '#')")


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
        self._next_expiry = 0.0
        self._rng = random.Random()
        self._say = OncePerMinute()  # log lines a kit's messages trigger, per kit and kind
        # Messages to kits held back until the transaction that decides them has committed
        # (see _kit_locked); None when not inside one.
        self._deferred: list[tuple[str, bytes]] | None = None
        # Telemetry waiting for its batch to be written (oldest first), and since when
        # (monotonic). Batching is on while serve() runs, whose loop writes a batch when it
        # is due; a caller handing messages in without it (a test, a script) gets each
        # written at once unless it turns batching on and calls flush_telemetry() itself.
        self.batching = False
        self._telemetry: list[Telemetry] = []
        self._telemetry_since = 0.0
        self.counters: dict[str, int] = {"records": 0, "chunks": 0, "refused": 0,
                                         "receipts": 0, "quarantined": 0, "telemetry": 0,
                                         "telemetry_lost": 0}

    # -- life cycle -------------------------------------------------------------------------
    def serve(self, stop: threading.Event | None = None) -> None:
        """Run until ``stop`` (or :meth:`stop`) is set."""
        if stop is not None:
            self.stop_event = stop
        log.info("office receiver starting (broker %s:%d)", self.broker.host, self.broker.port)
        self.batching = True
        try:
            while not self.stop_event.is_set():
                self._tick()
        finally:
            self._shutdown()
            self.batching = False

    def stop(self) -> None:
        self.stop_event.set()

    def _tick(self) -> None:
        try:
            now = time.monotonic()
            self._ensure_connected(now)
            client = self.client
            # Wait for the network no longer than the pending batch may still wait.
            wait = 0.1 if not self._telemetry else min(0.1, max(0.0, self._telemetry_since +
                                                                self.broker.telemetry_batch_s -
                                                                now))
            if client is not None:
                rc = client.loop(wait)
                if rc != mqtt.MQTT_ERR_SUCCESS and self.client is client:
                    self._lost(mqtt.error_string(rc))
            else:
                self.stop_event.wait(wait)
            if self._telemetry and (time.monotonic() - self._telemetry_since >=
                                    self.broker.telemetry_batch_s):
                self.flush_telemetry()
            if self.connected and now >= self._next_poll:
                self._next_poll = now + 0.5
                self._send_queued(resend=now >= self._next_resend)
                if now >= self._next_resend:
                    self._next_resend = now + self.broker.resend_s
            if now >= self._next_expiry:
                self._next_expiry = now + self.broker.expire_every_s
                self.flush_telemetry()  # not left waiting while the expiry runs
                self.expire_stale_uploads()
                if not self.prune_health_samples():
                    self._next_expiry = now + 1.0  # more to delete: the next step soon
        except JaranIjoError as exc:
            log.error("%s", exc.text("en"))
            self.stop_event.wait(1.0)
        except Exception:  # keep serving the other kits
            log.exception("office receiver loop failed; carrying on")
            self.stop_event.wait(1.0)

    def _shutdown(self) -> None:
        self.flush_telemetry()  # before the office says it is offline
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
            try:
                client.tls_set(ca_certs=b.ca_file or None, certfile=b.cert_file or None,
                               keyfile=b.key_file or None)
            except (OSError, ValueError) as exc:
                self._lost(f"TLS cannot be set up (check the CA file {b.ca_file!r} and the "
                           f"client certificate {b.cert_file!r}): {exc}")
                return
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
        topics = office_subscriptions(self.broker.share_group)
        if self.broker.share_group:
            # Not shared: every worker hears the office status, to say "online" again when
            # one worker's clean stop or will says "offline" while others still serve.
            topics.append(p.OFFICE_STATUS_TOPIC)
        client.subscribe([(topic, 1) for topic in topics])
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

    def _send(self, topic: str, payload: bytes) -> None:
        """Publish now, or after the commit when inside :meth:`_kit_locked`."""
        if self._deferred is not None:
            self._deferred.append((topic, payload))
        else:
            self.publish(topic, payload)

    @contextlib.contextmanager
    def _kit_locked(self, kit_id: str) -> Iterator[None]:
        """One transaction holding the kit's lock (:meth:`OfficeDb.lock_kit`): what is read
        in it is what is written, whichever worker of a share group handles the kit's next
        message. Replies sent in it go out only once it has committed (a receipt must never
        overtake the commit it confirms); if it fails, none goes out and the kit retries.
        Telemetry has its own transactions, a batch each (:meth:`flush_telemetry`)."""
        outer = self._deferred is None
        if outer:
            self._deferred = []
        try:
            with self.db.transaction():
                self.db.lock_kit(kit_id)
                yield
            if outer:
                deferred, self._deferred = self._deferred, None
                for topic, payload in deferred or ():
                    self.publish(topic, payload)
        finally:
            if outer:
                self._deferred = None

    # -- outgoing ---------------------------------------------------------------------------
    # Each queued item is claimed in the database (an atomic conditional UPDATE of sent_at)
    # before it is published, so of several workers polling one queue exactly one sends
    # it; a failed publish gives the claim back.
    def _send_queued(self, *, resend: bool) -> None:
        # A resend only for what nobody (re)sent in the last resend period, so a share group
        # resends once a period, not once a worker.
        cutoff = time.time() - self.broker.resend_s + 1.0 if resend else None
        for row in self.db.undelivered_assignments(unsent_only=not resend):
            self._send_assignment(row, sent_before=cutoff)
        for row in self.db.unsent_commands():
            claimed = self.db.claim_command(row["command_id"])
            if claimed is None:
                continue
            if not self.publish(p.KitTopics(row["kit_id"]).cmd, bytes(row["payload"])):
                self.db.unclaim_command(row["command_id"], claimed)

    def _send_assignment(self, row: Any, *, sent_before: float | None) -> None:
        kit_id, assignment_id = row["kit_id"], row["assignment_id"]
        claim = self.db.claim_assignment(kit_id, assignment_id, sent_before=sent_before)
        if claim is None:
            return
        message = p.AssignmentMessage(assignment_id, bytes(row["envelope"]))
        if not self.publish(p.KitTopics(kit_id).assign, p.encode_assignment(message)):
            self.db.unclaim_assignment(kit_id, assignment_id, *claim)

    def resend_assignments(self, kit_id: str) -> None:
        """The kit is back (a live birth): everything undelivered again, whenever it was
        last sent. A copy sent before this birth may have met no subscription (a kit's
        first session, or one the broker did not keep), so even one sent a moment ago goes
        again; the kit stores an assignment once and confirms a repeat. Only one worker of
        a share group gets the birth, so this is one resend per birth, not one a worker."""
        born = time.time()
        for row in self.db.undelivered_assignments(kit_id):
            self._send_assignment(row, sent_before=born)

    def expire_stale_uploads(self) -> int:
        """Drop unfinished uploads without a chunk for ``stale_upload_s``; how many."""
        stale = self.db.expire_uploads(time.time() - self.broker.stale_upload_s)
        for kit_id in sorted({kit for kit, _ in stale}):
            log.info("%d unfinished upload(s) from kit %s expired (no chunk for %.0f s)",
                     sum(kit == kit_id for kit, _ in stale), kit_id, self.broker.stale_upload_s)
        return len(stale)

    def prune_health_samples(self) -> bool:
        """Delete health samples older than ``health_retention_s`` (by the receiver's clock,
        which stamped them), in bounded deletes (:meth:`OfficeDb.prune_health_samples`);
        whether none is left to delete."""
        deleted, done = self.db.prune_health_samples(self.clock() - self.broker.health_retention_s)
        if deleted:
            log.info("%d health sample(s) older than %.0f days deleted%s", deleted,
                     self.broker.health_retention_s / 86400, "" if done else "; more to go")
        return done

    # -- telemetry --------------------------------------------------------------------------
    def _buffer(self, item: Telemetry) -> None:
        """Hold one telemetry message for its batch; write the batch when it is due."""
        if not self._telemetry:
            self._telemetry_since = time.monotonic()
        self._telemetry.append(item)
        if (not self.batching or len(self._telemetry) >= self.broker.telemetry_batch_max
                or time.monotonic() - self._telemetry_since >= self.broker.telemetry_batch_s):
            self.flush_telemetry()

    def flush_telemetry(self) -> int:
        """Write the pending telemetry in one transaction; how many messages it held.

        Never raises: a failure is logged and the receiver goes on. If the database refuses
        the batch for its data (a value out of a column's range, say), each message is
        written alone, so one bad row loses only itself; if it fails otherwise (locked past
        the busy timeout, connection lost), the batch is dropped with one log line, as a
        single message was before: telemetry comes again within minutes."""
        items, self._telemetry = self._telemetry, []
        if not items:
            return 0
        try:
            self.db.write_telemetry(items)
        except Exception as exc:  # the receiver must keep running
            from django.db import DataError, IntegrityError

            if not isinstance(exc, DataError | IntegrityError) or len(items) == 1:
                self.counters["telemetry_lost"] += len(items)
                log.exception("writing %d telemetry message(s) failed; dropped", len(items))
                return len(items)
            log.warning("a telemetry batch of %d messages was refused (%s); writing them one "
                        "by one", len(items), type(exc).__name__)
            for item in items:
                try:
                    self.db.write_telemetry([item])
                except Exception as one:
                    self.counters["telemetry_lost"] += 1
                    if self._say(item.kit_id, "telemetry_write"):
                        log.warning("telemetry from kit %s not stored: %s", item.kit_id,
                                    type(one).__name__)
                else:
                    self.counters["telemetry"] += 1
            return len(items)
        self.counters["telemetry"] += len(items)
        return len(items)

    def _telemetry_of(self, kit_id: str, leaf: str, payload: bytes, now: float,
                      retained: bool) -> Telemetry | None:
        """A telemetry message decoded and checked (a bad payload raises ProtocolError
        here, before anything is held); None when it changes nothing."""
        if leaf == "location":
            position, data = p.decode_location(payload)
            if data.get("conn") == "o":
                return None  # an offline point repeated for OwnTracks: the office has it
                # from /track
            if retained:
                # The broker's copy of the last report, met on (re)subscribing: where the kit
                # was at its own time, not a sign that it is there now.
                columns = {"location": json.dumps(data),
                           "location_at": min(now, float(position.tst))}
            else:
                columns = {"location": json.dumps(data), "location_at": now, "last_seen": now}
            return Telemetry(kit_id, columns, (position,), "location")
        if leaf == "health":
            # Merged over the stored health when written (slow fields, software and operator,
            # travel only on change: the last known stays); a sample for the kit page's chart.
            return Telemetry(kit_id, {"health_at": now, "last_seen": now},
                             health=p.decode_health(payload), at=now)
        points = p.decode_track(payload)
        return Telemetry(kit_id, {"last_seen": now}, tuple(points), "track")

    # -- incoming ---------------------------------------------------------------------------
    def _refused(self, kit_id: str, leaf: str, reason: str, what: str) -> None:
        """Count a refusal; log it only when it is the first of its kind this minute."""
        self.counters["refused"] += 1
        n = self.db.refuse(kit_id, leaf, reason)
        if n == 1:
            log.warning("refused %s from kit %s: %s (more of these this minute are counted, "
                        "not logged)", leaf, kit_id, what)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if client is not self.client:
            return
        topic, payload = message.topic, bytes(message.payload)
        kit_id, leaf = "-", "?"
        if topic == p.OFFICE_STATUS_TOPIC:
            self._on_office_status(payload)
            return
        try:
            kit_id, leaf = p.parse_kit_topic(topic)
            self.handle(kit_id, leaf, payload, retained=bool(message.retain))
        except p.ProtocolError as exc:
            self._refused(kit_id, leaf, exc.reason, exc.message["en"])
        except JaranIjoError as exc:
            log.error("handling %s from kit %s failed: %s", leaf, kit_id, exc.text("en"))
        except Exception:  # one bad message must not stop the office
            log.exception("handling %s from kit %s failed", leaf, kit_id)

    def _on_office_status(self, payload: bytes) -> None:
        """In a share group: another worker stopped (or its will fired) and left "offline"
        as the office's retained status while this one still serves: say "online" again."""
        try:
            status = p.decode_office_status(payload)
        except p.ProtocolError:
            return
        if not status.online and self.connected and not self.stop_event.is_set():
            log.info("another office worker went offline; this one still serves")
            client = self.client
            if client is not None:
                client.publish(p.OFFICE_STATUS_TOPIC, p.encode_office_status(
                    p.OfficeStatus(online=True, tst=int(self.clock()))), qos=1, retain=True)

    def handle(self, kit_id: str, leaf: str, payload: bytes, *, retained: bool = False) -> None:
        """Process one message from a kit (the topic already parsed). Telemetry joins the
        pending batch; anything else first has the batch written, so it sees (and comes
        after) every telemetry message received before it."""
        now = self.clock()
        if leaf in TELEMETRY_LEAVES:
            item = self._telemetry_of(kit_id, leaf, payload, now, retained)
            if item is not None:
                self._buffer(item)
            return
        self.flush_telemetry()
        if leaf == "up":
            self._on_chunk(kit_id, p.decode_chunk(payload, max_data=self.broker.max_chunk_data))
        elif leaf == "status":
            status = p.decode_status(payload)
            with self._kit_locked(kit_id):
                back = self._on_status(kit_id, status, now, retained)
            if back:
                self.resend_assignments(kit_id)
        elif leaf == "ack":
            self.db.assignment_answered(kit_id, p.decode_assignment_ack(payload))
        elif leaf == "result":
            result = p.decode_result(payload)
            if not self.db.command_answered(kit_id, result) and self._say(kit_id, "result"):
                log.info("result for unknown or answered command %s from %s",
                         result.command_id, kit_id)
        else:
            raise p.ProtocolError("bad_topic", f"nothing handles '{leaf}'")

    def _on_status(self, kit_id: str, status: p.Status, now: float, retained: bool) -> bool:
        """Store a status; whether the kit has just come (live) online."""
        old = self.db.kit(kit_id)
        if old is not None and status.session < old["session"]:
            if self._say(kit_id, "old_status"):
                log.info("ignoring an older status of kit %s (session %d < %d)", kit_id,
                         status.session, old["session"])
            return False
        if old is not None and old["status_at"] is not None:
            elapsed = max(0.0, now - float(old["status_at"]))
            bound = old["session"] + self.broker.max_session_jump + \
                int(elapsed * self.broker.session_jump_per_s)
            if status.session > bound:
                # Counted and logged as a refusal; the stored session and presence stay.
                self._refused(kit_id, "status", "session_jump",
                              f"session {status.session} jumps above {bound} (last accepted "
                              f"{old['session']}){', retained' if retained else ''}")
                return False
        values = dict(status.__dict__)
        known = json.loads(old.get("status") or "{}").get("security", "") if old else ""
        if not status.security:
            values["security"] = known  # only a birth message says; a will keeps the last
        elif status.security == "software" and known != "software":
            log.warning("kit %s runs without a TPM (software key slots: the weaker mode)",
                        kit_id)
        self.db.set_kit(kit_id, online=int(status.online), session=status.session,
                        status=json.dumps(values), status_at=now,
                        last_seen=now if status.online else (old or {}).get("last_seen"))
        log.info("kit %s is %s (session %d%s)", kit_id, "online" if status.online else
                 "offline", status.session, f", {status.reason}" if status.reason else "")
        return status.online and not retained

    # -- records ----------------------------------------------------------------------------
    def _reply(self, kit_id: str, progress: p.Progress) -> None:
        self._send(p.KitTopics(kit_id).rcpt, p.encode_progress(progress))

    def _reject(self, kit_id: str, record_id: str, reason: str) -> None:
        self._refused(kit_id, "up", reason, f"record {record_id}, {reason}")
        self._reply(kit_id, p.Progress("reject", record_id, reason=reason,
                                       retry_s=self.broker.retry_s.get(reason,
                                                                       DEFAULT_RETRY_S)))

    def _over_quota(self, kit_id: str, new_upload: bool, more_bytes: int) -> bool:
        """Whether keeping ``more_bytes`` more (of a new upload or not) passes the kit's quota."""
        count, held = self.db.open_uploads(kit_id)
        return (new_upload and count >= self.broker.max_open_uploads) or \
            held + more_bytes > self.broker.max_open_upload_bytes

    def _receipt(self, kit_id: str, record_id: str, sha: bytes, stored_at: int) -> None:
        self.counters["receipts"] += 1
        self._reply(kit_id, p.sign_receipt(self.keys.sign, kit_id, record_id, sha, stored_at))

    def _on_chunk(self, kit_id: str, chunk: p.Chunk) -> None:
        self.counters["chunks"] += 1
        # Under the kit's lock: two workers of a share group may get chunks of one record
        # (or the same chunk twice); each sees what the other committed before deciding.
        with self._kit_locked(kit_id):
            self._on_chunk_locked(kit_id, chunk)

    def _on_chunk_locked(self, kit_id: str, chunk: p.Chunk) -> None:
        rid = chunk.record_id
        held = self.db.record(kit_id, rid)
        colliding = ""  # the stored hash when other bytes come under a stored id
        if held is not None:
            if held["sha256"] == chunk.sha256.hex():
                self._receipt(kit_id, rid, chunk.sha256, int(held["received_at"]))
                return
            # Other bytes under a stored id: received whole and kept aside for review (the
            # first may be the forgery), then answered ``conflict`` as before. Those very
            # bytes already kept, or the kit's quarantine full: answered at once.
            count, size = self.db.quarantine_usage(kit_id)
            if (self.db.is_quarantined(kit_id, rid, chunk.sha256.hex())
                    or count >= self.broker.max_quarantined
                    or size + chunk.size > self.broker.max_quarantined_bytes):
                self._reject(kit_id, rid, "conflict")
                return
            colliding = str(held["sha256"])
        # A revoked kit (reported lost): what it still uploads is received whole and held in
        # quarantine for review, never taken as a record; answered ``revoked``.
        revoked = self.db.is_revoked(kit_id)
        if revoked:
            count, size = self.db.quarantine_usage(kit_id)
            if (self.db.is_quarantined(kit_id, rid, chunk.sha256.hex())
                    or count >= self.broker.max_quarantined
                    or size + chunk.size > self.broker.max_quarantined_bytes):
                self._reject(kit_id, rid, "revoked")
                return
        kit_keys = self.kits.get(kit_id)
        if kit_keys is None:
            self._reject(kit_id, rid, "kit_unknown")
            return
        upload = self.db.upload(kit_id, rid)
        if upload is not None and (upload["sha256"] != chunk.sha256.hex()
                                   or upload["size"] != chunk.size):
            if self._say(kit_id, "restarted"):
                log.info("kit %s restarted record %s with other bytes; starting over", kit_id,
                         rid)
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
            if self._over_quota(kit_id, upload is None, len(fresh)):
                self._reject(kit_id, rid, "busy")
                return
            self.db.append_chunk(kit_id, chunk, have, fresh)
            self._reply(kit_id, p.Progress("have", rid, have=end))
            return
        blob = self.db.assembled(kit_id, rid) + fresh
        problem, sealed_at, opened = self._check_record(kit_id, rid, chunk.sha256, blob,
                                                        kit_keys)
        if problem:
            # Kept in quarantine with the reason (bounded as the rest of it), never taken as
            # a record; the kit is told the same refusal either way.
            if not self._quarantine_untrusted(kit_id, rid, chunk.sha256, blob, problem):
                self.db.drop_upload(kit_id, rid)
            self._reject(kit_id, rid, problem)
            return
        if revoked:
            if self.db.quarantine_record(kit_id, rid, chunk.sha256.hex(), blob, sealed_at):
                self.counters["quarantined"] += 1
                log.warning("record %s from revoked kit %s held in quarantine for review "
                            "(%d bytes)", rid, kit_id, len(blob))
            self._reject(kit_id, rid, "revoked")
            return
        if colliding:
            if self.db.quarantine_record(kit_id, rid, chunk.sha256.hex(), blob, sealed_at):
                self.counters["quarantined"] += 1
                log.warning("record %s from kit %s collides with the one stored under that id "
                            "(sha256 %s, stored %s): kept aside in quarantine for review "
                            "(%d bytes)", rid, kit_id, chunk.sha256.hex(), colliding, len(blob))
            self._reject(kit_id, rid, "conflict")
            return
        self.db.finish_record(kit_id, rid, chunk.sha256.hex(), blob, sealed_at, opened)
        self.counters["records"] += 1
        log.info("record %s from kit %s stored (%d bytes)", rid, kit_id, len(blob))
        self._receipt(kit_id, rid, chunk.sha256, int(time.time()))

    def _quarantine_untrusted(self, kit_id: str, record_id: str, declared: bytes, blob: bytes,
                              problem: str) -> bool:
        """Keep a fully received record that failed :meth:`_check_record` in quarantine,
        the bytes as they came, keyed by their own SHA-256, with the reason (issue 12, "a
        record whose signature or hash fails stays quarantined with the reason"), in one
        durable transaction that also drops its upload. False (nothing kept) when the
        kit's quarantine is full; the same bytes again keep their first reason."""
        sha_hex = hashlib.sha256(blob).hexdigest()
        count, size = self.db.quarantine_usage(kit_id)
        if not self.db.is_quarantined(kit_id, record_id, sha_hex) and (
                count >= self.broker.max_quarantined
                or size + len(blob) > self.broker.max_quarantined_bytes):
            if self._say(kit_id, "quarantine_full"):
                log.warning("record %s from kit %s failed its check (%s); the kit's "
                            "quarantine is full, so it is refused without being kept",
                            record_id, kit_id, problem)
            return False
        reason_id, reason_en = untrusted_reason(problem, declared.hex(), sha_hex)
        if self.db.quarantine_untrusted(kit_id, record_id, sha_hex, blob, declared.hex(),
                                        problem, reason_id, reason_en):
            self.counters["quarantined"] += 1
            log.warning("record %s from kit %s failed its check (%s): kept in quarantine with "
                        "the reason, not taken as a record (%d bytes)", record_id, kit_id,
                        problem, len(blob))
        return True

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
        try:
            open_record(blob, self.keys.full, lambda _kit: kit_keys.sign)
        except JaranIjoError as exc:
            return f"unopenable:{exc.code}"[:40], "", False
        return "", sealed_at, True

