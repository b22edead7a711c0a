"""The agent's service: one MQTT connection to the office, and what travels over it.

From one main thread (the devices are read by :class:`kit.agent.sampling.Sampler`'s
own): connect with backoff, presence (birth, last will with a will delay, a session
counter that only grows), telemetry as :mod:`kit.agent.reporting` decides, record
upload through :class:`kit.agent.uploader.Uploader`, assignments checked and kept
sealed, signed commands checked and run, and systemd's ``READY``/``WATCHDOG``/
``STOPPING``. Nothing the office or the broker sends stops it. The protocol:
sync/PROTOCOL.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from nacl.signing import VerifyKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kit import keyring
from kit.agent.reporting import TelemetryPolicy, Track
from kit.agent.sampling import Sampler, Snapshot, Sources, open_sources
from kit.agent.settings import REMOTE_SETTINGS, AgentSettings, load_agent_config
from kit.agent.uploader import Uploader
from kit.config import KitConfig
from kit.keyring import agent_key
from kit.shared_readings import ModemView, share_gnss_fix, share_modem_view
from kit.store import Store
from kit.vault import Argon2Cost, PinVault
from sensors.gnss import GnssFix
from sync import __version__
from sync import protocol as p
from sync.envelope import (
    fingerprint,
    read_key_file,
)
from sync.errors import ConfigError, JaranIjoError
from sync.protocol import backoff_s

log = logging.getLogger(__name__)

# How often the agent looks in the store for assignments the kiosk opened since (the kiosk
# runs in its own process and writes only the store); a report reaches the office within it.
OPENING_CHECK_S = 2.0


class Notifier:
    """Tells systemd how the service is (sd_notify) when it runs under systemd
    (``NOTIFY_SOCKET``); silent otherwise."""

    def __init__(self) -> None:
        self._notifier: Any = None
        if os.environ.get("NOTIFY_SOCKET"):
            import sdnotify

            self._notifier = sdnotify.SystemdNotifier()
        usec = os.environ.get("WATCHDOG_USEC", "")
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() else 0.0

    def notify(self, state: str) -> None:
        if self._notifier is not None:
            self._notifier.notify(state)


@dataclass
class AgentKeys:
    """The keys the agent checks the office's messages with: the office's signing key, and
    the fingerprint of the kit's box key (assignments must be sealed to it)."""

    office_sign: VerifyKey
    kit_box_fingerprint: str | None


def load_agent_keys(config: KitConfig) -> AgentKeys:
    """The agent's keys, from the kit's key folder; both are public keys."""
    keys_dir = config.keys_dir
    office = VerifyKey(read_key_file(keys_dir / "office-sign.pub", "office-sign-public",
                                     secret=False))
    box_fp: str | None = None
    box_path = keys_dir / "kit-box.pub"
    if box_path.exists():
        box_fp = fingerprint(read_key_file(box_path, "kit-box-public", secret=False))
    return AgentKeys(office_sign=office, kit_box_fingerprint=box_fp)


def read_password(config: KitConfig) -> str | None:
    """The kit's broker password: sealed in the TPM, or in the weaker mode a 0600 file
    (see :mod:`kit.keyring`); None: log in without one."""
    return keyring.broker_password(config)


class Agent:
    """The kit's link to the office. Build with :meth:`from_config`; :meth:`run` until stopped.

    ``clock`` is wall time (seconds since 1970) for timestamps; every timer runs on
    ``time.monotonic``, so the clock jumping at boot (no RTC, then NTP or GNSS time)
    cannot stall the agent.
    """

    def __init__(self, config: KitConfig, settings: AgentSettings, store: Store,
                 keys: AgentKeys, sources: Sources, *, password: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.kit_id = p.check_kit_id(config.kit.id)
        self.topics = p.KitTopics(self.kit_id)
        self.store = store
        self.office_sign = keys.office_sign
        self.keys = keys
        self.sources = sources
        self.password = password
        self.clock = clock
        self.settings = self._with_overrides(settings)
        self.sampler = Sampler(sources, lambda: self.settings.poll_s)
        self.policy = TelemetryPolicy(self.settings)
        self.track = Track(self.settings.track_max_points, self.settings.track_min_distance_m)
        # The fix it shares and the track driven offline are places: kept under this key.
        self.place_key = agent_key(config)
        self.uploader = Uploader(self)
        self.notifier = Notifier()
        self.stop_event = threading.Event()
        self.client: mqtt.Client | None = None
        self.connected = False
        self._connect_started = 0.0
        self._next_connect_at = 0.0
        self._connect_failures = 0
        self._rng = random.Random()
        self.session = int(store.status("mqtt_session", 0) or 0)
        self._attempt_session = self.session + 1
        self.office_online: bool | None = None  # unknown until its retained status arrives
        self._aliases: dict[str, int] = {}
        self._alias_max = 0
        self._slow_sent: dict[str, Any] = {}
        self._track_mid: int | None = None
        self._track_sent_len = 0
        self._next_housekeeping = 0.0
        self._next_telemetry = 0.0
        # Reports that the kiosk opened an assignment (or could not), waiting for the
        # broker's PUBACK: mid -> (assignment id, sealed_at, opened, error).
        self._opening_mids: dict[int, tuple[str, str, bool, str]] = {}
        self._next_opening_check = 0.0
        # The office's self-test waiting for the kiosk's part: (command id, the agent's own
        # result, monotonic deadline).
        self._selftest_pending: tuple[str, Any, float] | None = None
        self._shared_fix: GnssFix | None = None
        self._shared_network: ModemView | None = None
        self._last_watchdog = 0.0
        self.counters: dict[str, int] = {"connects": 0, "telemetry": 0, "rejected": 0}

    @classmethod
    def from_config(cls, loaded: tuple[KitConfig, AgentSettings], *,
                    sources: Sources | None = None) -> Agent:
        config, settings = loaded
        if not p.KIT_ID_RE.match(config.kit.id):
            raise ConfigError(
                id=f"{config.source}: kit.id {config.kit.id!r} tidak sah untuk agen",
                en=f"{config.source}: kit.id {config.kit.id!r} is not a valid kit id",
                hint_id="Kit perlu disiapkan dengan 'jaranijo provision --kit-id ...'",
                hint_en="Provision the kit with 'jaranijo provision --kit-id ...'")
        keys = load_agent_keys(config)
        password = read_password(config)
        store = Store.open(config.store_path, create=False)
        return cls(config, settings, store, keys,
                   sources if sources is not None else open_sources(config), password=password)

    def _with_overrides(self, settings: AgentSettings) -> AgentSettings:
        overrides = self.store.status("agent_overrides", {})
        if isinstance(overrides, dict) and overrides:
            try:
                return settings.with_changes(overrides, "office config command")
            except ConfigError as exc:
                log.warning("ignoring stored settings from the office: %s", exc)
        return settings

    # -- life cycle ----------------------------------------------------------------------------
    def run(self) -> int:
        """Run until :meth:`stop` (or SIGTERM via :func:`run_agent`); returns an exit code."""
        self.track.load(self.store, self.place_key)
        self.sampler.start()
        self.notifier.notify("READY=1")
        self.notifier.notify(f"STATUS=kit {self.kit_id}: connecting to "
                             f"{self.config.mqtt.host}:{self.config.mqtt.port}")
        log.info("agent for kit %s started (software %s)", self.kit_id, __version__)
        try:
            while not self.stop_event.is_set():
                self._tick()
        finally:
            self._shutdown()
        return 0

    def stop(self) -> None:
        self.stop_event.set()

    def _tick(self) -> None:
        now = time.monotonic()
        try:
            self._ensure_connected(now)
            client = self.client
            if client is not None:
                rc = client.loop(timeout=0.05 if self.uploader.active else 0.2)
                if rc != mqtt.MQTT_ERR_SUCCESS and self.client is client:
                    self._lost(f"network: {mqtt.error_string(rc)}")
            else:
                self.stop_event.wait(0.2)
            now = time.monotonic()
            if now >= self._next_telemetry:
                self._next_telemetry = now + 1.0
                self._telemetry(now)
            self.uploader.pump(now)
            self._selftest_tick(now)
            self._report_openings(now)
            self._housekeeping(now)
        except JaranIjoError as exc:
            log.error("%s", exc.text("en"))
            self.stop_event.wait(1.0)
        except Exception:  # the agent must keep reporting even after a bug of ours
            log.exception("agent loop failed; carrying on")
            self.stop_event.wait(1.0)

    def _shutdown(self) -> None:
        self.notifier.notify("STOPPING=1")
        client = self.client
        if client is not None and self.connected:
            info = client.publish(self.topics.status, p.encode_status(p.Status(
                online=False, session=self.session, tst=int(self.clock()),
                software=__version__, reason="shutdown")), qos=1, retain=True)
            deadline = time.monotonic() + 2.0
            while not info.is_published() and time.monotonic() < deadline:
                client.loop(0.05)
            # A normal DISCONNECT: the broker discards the will (we said goodbye ourselves).
            client.disconnect()
            with contextlib.suppress(Exception):
                client.loop(0.1)
        self._drop_client()
        try:
            self.uploader.persist()
            self.track.save(self.store, self.place_key)
        except JaranIjoError as exc:
            log.warning("could not save upload progress: %s", exc)
        self.sampler.stop()
        self.sources.close()
        log.info("agent stopped")

    # -- connection ----------------------------------------------------------------------------
    def _ensure_connected(self, now: float) -> None:
        if self.client is not None:
            if not self.connected and now - self._connect_started > \
                    self.settings.connect_timeout_s:
                self._lost("no answer from the broker")
            return
        if now < self._next_connect_at:
            return
        # The session counter counts connections: this attempt's number goes in the will
        # (the broker may accept it before we hear so), and is kept only on CONNACK.
        self._attempt_session = self.session + 1
        wall = self.clock()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.kit_id,
                             protocol=mqtt.MQTTv5, reconnect_on_failure=False)
        client.connect_timeout = min(self.settings.connect_timeout_s, 30.0)
        mqtt_cfg = self.config.mqtt
        if mqtt_cfg.username:
            client.username_pw_set(mqtt_cfg.username, self.password)
        if mqtt_cfg.tls:
            # An empty ca_file: the system's CA store (a broker with a public certificate).
            # A client certificate, when given, is a second factor beside the password.
            try:
                client.tls_set(ca_certs=mqtt_cfg.ca_file or None,
                               certfile=mqtt_cfg.cert_file or None,
                               keyfile=mqtt_cfg.key_file or None)
            except (OSError, ValueError) as exc:
                self._lost(f"TLS cannot be set up (check mqtt.ca_file {mqtt_cfg.ca_file!r}, "
                           f"mqtt.cert_file {mqtt_cfg.cert_file!r}, mqtt.key_file "
                           f"{mqtt_cfg.key_file!r}): {exc}")
                return
        will_props = Properties(PacketTypes.WILLMESSAGE)
        will_props.WillDelayInterval = int(self.settings.will_delay_s)
        client.will_set(self.topics.status, p.encode_status(p.Status(
            online=False, session=self._attempt_session, tst=int(wall), software=__version__,
            reason="lost")), qos=1, retain=True, properties=will_props)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = int(self.settings.session_expiry_s)
        self.client = client
        self._connect_started = now
        try:
            client.connect(mqtt_cfg.host, mqtt_cfg.port, keepalive=int(self.settings.keepalive_s),
                           clean_start=False, properties=props)
            p.no_delay(client)
        except (OSError, ValueError) as exc:
            self._lost(f"cannot reach {mqtt_cfg.host}:{mqtt_cfg.port}: {exc}")

    def _lost(self, reason: str) -> None:
        was_connected = self.connected
        self._drop_client()
        self._connect_failures += 1
        delay = backoff_s(self._connect_failures, self.settings.reconnect_min_s,
                          self.settings.reconnect_max_s, self._rng)
        self._next_connect_at = time.monotonic() + delay
        level = logging.WARNING if was_connected or self._connect_failures == 1 else logging.INFO
        log.log(level, "broker link down (%s); next try in %.1f s", reason, delay)
        self.notifier.notify(f"STATUS=offline: {reason}")

    def _drop_client(self) -> None:
        client, self.client = self.client, None
        self.connected = False
        if client is not None:
            p.close_without_goodbye(client)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any,
                    reason: Any, properties: Any) -> None:
        if client is not self.client:
            return
        if reason.is_failure:
            hint = ""
            if reason.value in (0x86, 0x87, 0x8C):
                hint = " (check mqtt.username and mqtt.password_file; the office must add " \
                       "this kit to the broker's password file)"
            log.error("broker refused the connection: %s%s", reason, hint)
            self._lost(str(reason))
            return
        self.connected = True
        self._connect_failures = 0
        self.session = self._attempt_session
        self.store.set_status("mqtt_session", self.session)
        self.counters["connects"] += 1
        self._aliases = {}
        self._alias_max = int(getattr(properties, "TopicAliasMaximum", 0) or 0)
        self._slow_sent = {}
        self._track_mid = None
        self._opening_mids = {}  # the old client is gone: what it held unconfirmed goes again
        self._next_opening_check = 0.0
        log.info("connected to the broker as %s (session %d, broker kept our session: %s)",
                 self.kit_id, self.session, bool(getattr(flags, "session_present", False)))
        client.subscribe([(self.topics.rcpt, 1), (self.topics.assign, 1), (self.topics.cmd, 1),
                          (p.OFFICE_STATUS_TOPIC, 1)])
        self.publish(self.topics.status, p.encode_status(p.Status(
            online=True, session=self.session, tst=int(self.clock()), software=__version__,
            security=keyring.security_mode(self.config))), qos=1, retain=True)
        self.uploader.reset_for_new_connection(time.monotonic())
        # What happened while offline: the track, then a fresh location and health at once.
        if self.track.points:
            info = client.publish(self.topics.track, p.encode_track(self.track.points), qos=1)
            self._track_mid, self._track_sent_len = info.mid, len(self.track.points)
            # The same points for OwnTracks Recorder, each under its own time; QoS 0 like any
            # location (the office has them from the track), not retained: the fresh
            # location that follows is what a late subscriber should see.
            for payload in p.encode_track_locations(self.track.points, kit_id=self.kit_id):
                self.publish(self.topics.location, payload, qos=0, alias=True)
        self.policy.last_location_at = None
        self.policy.last_health_at = None
        self.notifier.notify(f"STATUS=online as {self.kit_id}")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        if client is self.client:
            self._lost(f"disconnected: {reason}")

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        if client is not self.client:
            return
        if mid == self._track_mid:
            # The broker has the track: forget the points it held, keep any newer ones.
            self.track.points = self.track.points[self._track_sent_len:]
            if not self.track.points:
                self.track.clear(self.settings.track_min_distance_m)
            self.track.dirty = True
            self._track_mid = None
        opening = self._opening_mids.pop(mid, None)
        if opening is not None and not getattr(reason, "is_failure", False):
            aid, sealed_at, opened, error = opening
            self.store.inbox_reported(aid, sealed_at, opened=opened, error=error)
        if getattr(reason, "is_failure", False):
            log.warning("broker refused a publish (%s): check the broker ACL for kit %s",
                        reason, self.kit_id)

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False,
                alias: bool = False) -> bool:
        """Publish if connected; topic aliases save the topic text on frequent QoS 0 reports."""
        client = self.client
        if client is None or not self.connected:
            return False
        props = None
        wire_topic = topic
        if alias and qos == 0 and self._alias_max:
            props = Properties(PacketTypes.PUBLISH)
            if topic in self._aliases:
                props.TopicAlias = self._aliases[topic]
                wire_topic = ""
            elif len(self._aliases) < self._alias_max:
                self._aliases[topic] = len(self._aliases) + 1
                props.TopicAlias = self._aliases[topic]
            else:
                props = None
        info = client.publish(wire_topic, payload, qos=qos, retain=retain, properties=props)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    # -- incoming ------------------------------------------------------------------------------
    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if client is not self.client:
            return
        topic, payload = message.topic, bytes(message.payload)
        try:
            if topic == self.topics.rcpt:
                self.uploader.on_progress(p.decode_progress(payload), time.monotonic())
            elif topic == self.topics.assign:
                self._on_assignment(payload)
            elif topic == self.topics.cmd:
                self._on_command(payload)
            elif topic == p.OFFICE_STATUS_TOPIC:
                status = p.decode_office_status(payload)
                if status.online != self.office_online:
                    log.info("office service is %s", "up" if status.online else "down")
                    if status.online and self.office_online is False:
                        # What we sent before it went down waits in its session at the
                        # broker: no resending, just a fresh start for the stall timer.
                        self.uploader.office_back(time.monotonic())
                self.office_online = status.online
                if self.store.status("office_online") != status.online:
                    self.store.set_status("office_online", status.online)
            else:
                log.warning("message on unexpected topic %s ignored", topic)
        except p.ProtocolError as exc:
            self.counters["rejected"] += 1
            log.warning("refused a message on %s: %s", topic, exc.message["en"])
            self.store.audit("message_refused", subject=topic.rsplit("/", 1)[-1],
                             detail=exc.reason)
        except JaranIjoError as exc:
            log.error("handling a message on %s failed: %s", topic, exc.text("en"))
        except Exception:  # never let one message take the agent down
            log.exception("handling a message on %s failed", topic)

    def _on_assignment(self, payload: bytes) -> None:
        try:
            message = p.decode_assignment(payload)
        except p.ProtocolError as exc:
            self._ack_assignment(p.AssignmentAck("", ok=False, reason=exc.reason))
            raise
        aid = message.assignment_id
        try:
            header = p.verify_envelope(message.envelope, self.office_sign)
            if header.get("kind") != p.ASSIGNMENT_KIND:
                raise p.ProtocolError("wrong_kind", "envelope is not an assignment")
            if header.get("kit_id") != self.kit_id:
                raise p.ProtocolError("wrong_kit", "assignment is for another kit")
            if header.get("assignment_id") != aid:
                raise p.ProtocolError("malformed", "assignment id differs from its envelope")
            if self.keys.kit_box_fingerprint and header.get("to") != self.keys.kit_box_fingerprint:
                raise p.ProtocolError("wrong_key", "assignment is sealed to another kit key")
            sealed_at = header.get("sealed_at")
            if not isinstance(sealed_at, str):
                raise p.ProtocolError("malformed", "envelope has no sealing time")
        except p.ProtocolError as exc:
            self._ack_assignment(p.AssignmentAck(aid, ok=False, reason=exc.reason))
            raise
        stored = self.store.put_inbox(aid, sealed_at, message.envelope)
        log.info("assignment %s %s", aid, "stored (sealed) for the kiosk" if stored
                 else "already held in this or a newer version")
        self._ack_assignment(p.AssignmentAck(aid, ok=True, sealed_at=sealed_at,
                                             reason="" if stored else "duplicate"))

    def _ack_assignment(self, ack: p.AssignmentAck) -> None:
        self.publish(self.topics.ack, p.encode_assignment_ack(ack), qos=1)

    def _report_openings(self, now: float) -> None:
        """Tell the office which assignment versions the kiosk opened, or failed to open.

        The kiosk is another process: it only notes the opening in the store
        (:func:`kit.records.open_inbox`). Each is published once, QoS 1, and noted as
        told when the broker's PUBACK comes (:meth:`_on_publish`); one not confirmed
        before the link dropped goes again on the next connection (the office takes a
        repeat as the same news)."""
        if not self.connected or now < self._next_opening_check:
            return
        self._next_opening_check = now + OPENING_CHECK_S
        in_flight = {(aid, sa, opened) for aid, sa, opened, _ in self._opening_mids.values()}
        client = self.client
        for row in self.store.inbox_reports_due():
            aid, sealed_at = str(row["assignment_id"]), str(row["sealed_at"])
            opened = row["opened_at"] is not None
            error = "" if opened else str(row["error"])
            if client is None or (aid, sealed_at, opened) in in_flight:
                continue
            ack = p.AssignmentAck(aid, ok=opened, sealed_at=sealed_at, reason=error,
                                  opened=True)
            info = client.publish(self.topics.ack, p.encode_assignment_ack(ack), qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return  # the link is going down; the next connection tries again
            self._opening_mids[info.mid] = (aid, sealed_at, opened, error)
            log.info("reported assignment %s %s on the kiosk", aid,
                     "opened" if opened else f"not opened ({error})")

    def _on_command(self, payload: bytes) -> None:
        now = self.clock()
        try:
            command = p.verify_command(
                payload, self.office_sign, kit_id=self.kit_id, now=now,
                max_skew_s=self.settings.max_clock_skew_s,
                max_lifetime_s=self.settings.command_max_lifetime_s,
                seen=self.store.command_seen)
            if not self.store.remember_command(command.command_id, command.name,
                                               command.expires_at):
                raise p.ProtocolError("replayed", "command id was already received")
        except p.ProtocolError as exc:
            command_id = p.peek_command_id(payload) or ""
            self.store.audit("command_refused", subject=command_id, detail=exc.reason)
            self.publish(self.topics.result, p.encode_result(p.CommandResult(
                command_id, ok=False, reason=exc.reason)), qos=1)
            raise
        log.info("office command %s (%s) accepted", command.name, command.command_id)
        self.store.audit("command_accepted", subject=command.command_id, detail=command.name)
        if command.name == "selftest":
            self._start_selftest(command.command_id)  # answered from _tick (the kiosk's part)
            return
        try:
            result = self._run_command(command)
        except (JaranIjoError, ValueError) as exc:
            reason = exc.text("en") if isinstance(exc, JaranIjoError) else str(exc)
            result = p.CommandResult(command.command_id, ok=False, reason=reason[:200])
        self.store.set_command_result(command.command_id, "ok" if result.ok else result.reason)
        self.publish(self.topics.result, p.encode_result(result), qos=1)

    def _run_command(self, command: p.Command) -> p.CommandResult:
        cid, now = command.command_id, self.clock()
        if command.name == "ping":
            count, _, _ = self.store.outbox_summary()
            return p.CommandResult(cid, ok=True, result={"pong": int(now),
                                                         "session": self.session,
                                                         "outbox": count})
        if command.name == "lock":
            self.store.set_status("ui_lock", {"locked": True, "command": cid, "at": now})
            self.store.audit("remote_lock", subject=cid)
            return p.CommandResult(cid, ok=True, result={"locked": True})
        if command.name == "wipe":
            return self._wipe(cid)
        if command.name == "config":
            return self._configure(cid, command.args)
        if command.name == "resend":
            return self._resend(cid, command.args)
        raise ValueError(f"command {command.name} has no handler")

    def _wipe(self, cid: str) -> p.CommandResult:
        """Crypto-erase: every officer slot and vault secret, every draft, every sealed inbox."""
        counts = PinVault(self.store, Argon2Cost()).wipe()
        slots, drafts, inbox = counts["slots"], counts["drafts"], counts["inbox"]
        self.store.set_status("ui_lock", {"locked": True, "command": cid, "at": self.clock(),
                                          "wiped": True})
        self.store.audit("remote_wipe", subject=cid,
                         detail=f"slots={slots} drafts={drafts} inbox={inbox}")
        # The deleted slot and secrets are zeroed (secure_delete); now out of the WAL too.
        self.store.scrub()
        log.warning("office wiped this kit: %d officer slots, %d drafts, %d sealed assignments",
                    slots, drafts, inbox)
        return p.CommandResult(cid, ok=True, result={"slots": slots, "drafts": drafts,
                                                     "inbox": inbox})

    def _resend(self, cid: str, args: dict[str, Any]) -> p.CommandResult:
        """The office takes back a final refusal (e.g. after reviewing a collision): the
        record goes back in the queue and is uploaded again from its first byte."""
        record_id = args.get("record")
        if set(args) != {"record"} or not isinstance(record_id, str):
            return p.CommandResult(cid, ok=False, reason="bad_args: resend takes record=ID")
        if not self.store.outbox_release(record_id):
            return p.CommandResult(cid, ok=False,
                                   reason="not_refused: no record refused for good has that id")
        self.uploader.not_before.pop(record_id, None)
        self.uploader.active.pop(record_id, None)
        self.store.audit("record_released", subject=cid)
        log.info("office released a refused record; uploading it again")
        return p.CommandResult(cid, ok=True, result={"queued": True})

    def _configure(self, cid: str, args: dict[str, Any]) -> p.CommandResult:
        unknown = sorted(set(args) - set(REMOTE_SETTINGS))
        if unknown or not args:
            return p.CommandResult(cid, ok=False, reason="bad_args: settings the office may "
                                   f"change: {', '.join(REMOTE_SETTINGS)}")
        try:
            new = self.settings.with_changes(args, "office config command")
        except ConfigError as exc:
            return p.CommandResult(cid, ok=False, reason=f"bad_args: {exc.text('en')}"[:200])
        overrides = self.store.status("agent_overrides", {})
        overrides = {**(overrides if isinstance(overrides, dict) else {}), **args}
        self.store.set_status("agent_overrides", overrides)
        self.settings = new
        self.policy.settings = new
        self.store.audit("remote_config", subject=cid, detail=",".join(sorted(args)))
        return p.CommandResult(cid, ok=True, result={k: getattr(new, k) for k in args})

    def self_test(self) -> dict[str, Any]:
        """The agent's side of the office's self-test, answered at once (the kiosk's devices
        left as held): what :meth:`_start_selftest` begins with."""
        result = self._own_selftest()
        self._keep_selftest(result)
        return self._selftest_answer(result)

    def _start_selftest(self, command_id: str) -> None:
        """The office's ``selftest`` command: the agent's checks now, then the kiosk's part.

        The camera and the fingerprint sensor belong to the kiosk (DESIGN.md s4): the agent
        asks it through the store (``selftest_request``) and answers the office when the
        kiosk has answered (``selftest_kiosk``), or after ``selftest_kiosk_wait_s``, or at
        once when the kiosk's heartbeat is old (it is not running). The main loop goes on
        meanwhile: nothing here blocks telemetry, uploads or the watchdog."""
        from kit.selftest import KIOSK_ALIVE_KEY, KIOSK_ALIVE_S, REQUEST_KEY

        if self._selftest_pending is not None:  # one request at a time: the older is answered
            older, older_result, _ = self._selftest_pending
            self._selftest_pending = None
            self._finish_selftest(older, older_result, None, "another self-test was asked")
        result = self._own_selftest()
        self.store.set_status(REQUEST_KEY, {"id": command_id, "at": self.clock()})
        alive = self.store.status(KIOSK_ALIVE_KEY, {})
        at = alive.get("at") if isinstance(alive, dict) else None
        if not isinstance(at, int | float) or abs(self.clock() - at) > KIOSK_ALIVE_S:
            self._finish_selftest(command_id, result, None, "kiosk not running")
            return
        self._selftest_pending = (command_id, result,
                                  time.monotonic() + self.settings.selftest_kiosk_wait_s)

    def _selftest_tick(self, now: float) -> None:
        pending = self._selftest_pending
        if pending is None:
            return
        from kit.selftest import ANSWER_KEY, checks_from_json

        command_id, result, deadline = pending
        answer = self.store.status(ANSWER_KEY, {})
        if isinstance(answer, dict) and answer.get("id") == command_id:
            self._selftest_pending = None
            self._finish_selftest(command_id, result, checks_from_json(answer.get("checks")), "")
        elif now >= deadline:
            self._selftest_pending = None
            wait = self.settings.selftest_kiosk_wait_s
            self._finish_selftest(command_id, result, None,
                                  f"the kiosk did not answer within {wait:g} s")

    def _finish_selftest(self, command_id: str, result: Any, kiosk: list[Any] | None,
                         why: str) -> None:
        from kit.selftest import REQUEST_KEY, SKIP, Check

        if kiosk:
            result.replace(kiosk)
        else:
            result.replace(Check(name, True, SKIP, f"held by the kiosk; {why}")
                           for name in ("fingerprint", "camera"))
        self._keep_selftest(result)
        request = self.store.status(REQUEST_KEY, {})
        if isinstance(request, dict) and request.get("id") == command_id:
            self.store.delete_status(REQUEST_KEY)  # answered: the kiosk need not take it up
        self.store.set_command_result(command_id, "ok")
        self.publish(self.topics.result, p.encode_result(
            p.CommandResult(command_id, ok=True, result=self._selftest_answer(result))), qos=1)
        log.info("self-test %s answered (%s)", command_id,
                 "with the kiosk's devices" if kiosk else why)

    def _selftest_answer(self, result: Any) -> dict[str, Any]:
        from kit.selftest import agent_answer

        return agent_answer(result, device_problems=self.sampler.snapshot().problems,
                            keys_mode=keyring.security_mode(self.config),
                            disk_free_mib=self._disk_free_mib() or 0)

    def _keep_selftest(self, result: Any) -> None:
        try:
            result.save(self.config.data_dir)
        except OSError as exc:
            log.warning("self-test result not kept: %s", exc)

    def _own_selftest(self) -> Any:
        """The checks of :mod:`kit.selftest` (the same as ``jaranijo selftest``) from the
        agent's side. GNSS, modem and battery are the agent's own (the modem and battery
        figures its sampler last read); the camera, fingerprint sensor and GPIO belong to
        the kiosk and are left as held."""
        from kit.agent.sampling import BatteryPower, GnssPositions, ModemNetwork
        from kit.selftest import Devices, ModemReading, Options, run_selftest
        from sensors.errors import DeviceError

        snap = self.sampler.snapshot()
        sources = self.sources
        held = "held by the kiosk (asked through selftest_request)"
        devices = Devices(held={"camera": held, "fingerprint": held})
        sections = self.config.devices
        switched_on = {"gnss": sections.gnss.enabled, "modem": sections.modem.enabled,
                       "battery": sections.battery.kind != "none"}
        for name, on in switched_on.items():
            devices.problems[name] = DeviceError(
                name, "open", id=f"{name} tidak dapat dibuka (lihat log agen)",
                en=f"{name} could not be opened (see the agent's log)",
                code="device" if on else "disabled")
        if isinstance(sources.position, GnssPositions):
            devices.gnss = sources.position.gnss
        if isinstance(sources.network, ModemNetwork):
            # Without a reading yet, the check asks the modem (its lock keeps the sampler out).
            devices.modem = sources.network.modem
            net = snap.network
            if net is not None:
                devices.modem_reading = ModemReading(
                    net.registered, "registered" if net.registered else "not_registered",
                    net.operator, net.access_tech, net.rssi_dbm, None)
        if isinstance(sources.power, BatteryPower):
            devices.battery = sources.power.battery
            devices.battery_reading = snap.power
        return run_selftest(self.config, devices, store=self.store, source="agent",
                            options=Options(finger_timeout=None, fix_timeout=0.0,
                                            broker_connected=self.connected, gpio=False))

    # -- telemetry -----------------------------------------------------------------------------
    def health(self, snap: Snapshot) -> p.Health:
        now = self.clock()
        count, oldest, _ = self.store.outbox_summary()
        power, net = snap.power, snap.network

        def whole(value: float | None) -> int | None:
            return None if value is None else round(value)

        ui_state = self.store.status("ui_state")
        if not isinstance(ui_state, str) or not p.UI_STATE_RE.match(ui_state):
            ui_state = None
        return p.Health(
            tst=int(now), session=self.session,
            battery_percent=whole(power.percent) if power else None,
            battery_state=power.state if power else 0,
            voltage_mv=whole(power.voltage_v * 1000) if power and power.voltage_v else None,
            minutes_left=whole(power.minutes_left) if power else None,
            registered=net.registered if net else None,
            access_tech=net.access_tech if net else None,
            operator=net.operator if net else None,
            rssi_dbm=whole(net.rssi_dbm) if net else None,
            rsrp_dbm=whole(net.rsrp_dbm) if net else None,
            rsrq_db=net.rsrq_db if net else None, sinr_db=net.sinr_db if net else None,
            fix_age_s=whole(snap.fix_age_s), disk_free_mib=self._disk_free_mib(),
            uptime_s=_uptime_s(), outbox_count=count,
            outbox_oldest_s=None if oldest is None else max(0, round(now - oldest)),
            software=__version__, ui_state=ui_state)

    def _disk_free_mib(self) -> int | None:
        try:
            return shutil.disk_usage(self.config.data_dir).free // (1024 * 1024)
        except OSError:
            return None

    def _share_fix(self) -> None:
        """Hand the kiosk the latest fix: it stamps records with it, and only the agent may
        hold the GNSS port (two readers of one serial port would each get half the bytes)."""
        position = self.sources.position
        fix = None if position is None else position.last_fix
        if fix is None or fix is self._shared_fix:
            return
        self._shared_fix = fix
        share_gnss_fix(self.store, fix, self.place_key)

    def _share_network(self, snap: Snapshot) -> None:
        """Hand the kiosk's status bar the modem's view (it may not open the modem port)."""
        net = snap.network
        view = None if net is None else ModemView(
            registered=net.registered, operator=net.operator, access_tech=net.access_tech,
            rssi_dbm=net.rssi_dbm, rsrp_dbm=net.rsrp_dbm)
        if view != self._shared_network:
            self._shared_network = view
            share_modem_view(self.store, view)

    def _telemetry(self, now: float) -> None:
        self._share_fix()
        snap = self.sampler.snapshot()
        self._share_network(snap)
        mode = self.policy.mode(snap, now)
        if not self.connected:
            if snap.position is not None:
                self.track.add(snap.position)
            return
        trigger = self.policy.location_due(snap, now, mode)
        if trigger is not None and snap.position is not None:
            power = snap.power
            payload = p.encode_location(
                snap.position, kit_id=self.kit_id,
                battery_percent=power.percent if power else None,
                battery_state=power.state if power else None, trigger=trigger)
            # Retained: a Recorder or app that subscribes later sees where the kit is at once.
            if self.publish(self.topics.location, payload, qos=0, retain=True, alias=True):
                self.policy.location_sent(snap.position, now)
                self.counters["telemetry"] += 1
        health = self.health(snap)
        if self.policy.health_due(health, now, mode):
            slow = [f for f in p.SLOW_FIELDS if self._slow_sent.get(f) != getattr(health, f)]
            if self.publish(self.topics.health, p.encode_health(health, slow=slow), qos=0,
                            alias=True):
                self.policy.health_sent(health, now)
                self.counters["telemetry"] += 1
                self._slow_sent.update({f: getattr(health, f) for f in slow})

    def _housekeeping(self, now: float) -> None:
        if self.notifier.watchdog_s and now - self._last_watchdog >= \
                self.notifier.watchdog_s / 3:
            self.notifier.notify("WATCHDOG=1")
            self._last_watchdog = now
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + 5.0
        self.uploader.persist()
        self.track.save(self.store, self.place_key)
        self.store.forget_commands_before(self.clock() - self.settings.max_clock_skew_s - 86400)


def _uptime_s() -> int | None:
    try:
        return int(float(Path("/proc/uptime").read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return None


def run_agent(config_path: str | Path) -> int:
    """Run the agent from a kit configuration file until SIGTERM or SIGINT."""
    agent = Agent.from_config(load_agent_config(config_path))

    def stop(signum: int, frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        agent.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return agent.run()
    finally:
        agent.store.close()
