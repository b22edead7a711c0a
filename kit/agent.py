"""The kit agent: the systemd service that links one kit to the office over MQTT.

What it does, all from one main thread (plus one thread that samples the
devices, whose serial reads may block for a second):

* **Telemetry.** Reads the GNSS receiver, the LTE modem and the battery
  every ``poll_s`` seconds and reports *by exception* -- when the kit
  moves, the battery drops a step, the network changes, records pile up --
  and on a timer whose period depends on what the kit is doing: fast while
  it moves (``interval_moving_s``) or its battery is low
  (``interval_low_battery_s``, so the office sees it before it dies), slow
  while it stands still (``interval_idle_s``). Position goes out as
  OwnTracks JSON, health as compact CBOR (:mod:`sync.protocol`).
* **Offline.** It keeps only the latest reading and a *compact track*: a
  point each time the kit has moved ``track_min_distance_m``, at most
  ``track_max_points`` (when full, every other point goes and the spacing
  doubles, so a day's drive still fits, coarser). Nothing else queues up.
* **Records.** Sealed records wait in the store's outbox (durable, unlike
  paho's in-memory queue). They go up in chunks of ``chunk_bytes`` with at
  most ``upload_window`` chunks unconfirmed; the office confirms how many
  bytes it holds durably and finally sends a *signed receipt*; only then
  does the kit drop the payload (:meth:`kit.store.Store.mark_acked`).
  After a broker outage, an agent restart or a power cut the upload resumes
  where the office says it stands. A refused record is retried with
  exponential backoff, forever.
* **Assignments** from the office are checked (office signature, this kit,
  newer than any copy held) and stored still sealed: the agent cannot open
  them, because the kit's box key is in the vault under the officers' data
  key. The kiosk opens them with :func:`kit.records.open_inbox` once an officer logs in.
* **Commands** (ping, lock, wipe, selftest, config) must be signed by the
  office, for this kit, within their validity window and never seen before;
  anything else is refused with a logged reason and never crashes the agent.
* **Presence.** A retained status with a birth message and a last will
  (MQTT 5 will delay: a short drop does not flap the kit offline), and a
  session counter that only grows.
* **systemd.** ``READY=1`` once running, ``WATCHDOG=1`` from the main loop,
  a clean offline status and disconnect on SIGTERM.

>>> agent = Agent.from_config(load_agent_config("/etc/jaranijo/kit.toml"))  # doctest: +SKIP
>>> agent.run()                                                              # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import paho.mqtt.client as mqtt
from nacl.signing import VerifyKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kit.config import KitConfig, load_config
from kit.store import Store
from kit.vault import Argon2Cost, PinVault
from sensors.errors import DeviceError
from sync import __version__
from sync import protocol as p
from sync.envelope import (
    fingerprint,
    read_key_file,
    read_secret_file,
)
from sync.errors import ConfigError, JaranIjoError
from sync.protocol import backoff_s

if TYPE_CHECKING:
    from sensors.battery import Battery
    from sensors.gnss import Gnss
    from sensors.modem import Modem

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


@dataclass
class AgentSettings:
    """The agent's timers and sizes: the ``[agent]`` table of the kit configuration.

    Defaults suit a kit on a paid mobile data plan; tests shorten the timers.
    """

    poll_s: float = 5.0                 # how often the devices are read
    interval_moving_s: float = 60.0     # report period while the kit moves
    interval_idle_s: float = 900.0      # report period while it stands still
    interval_low_battery_s: float = 300.0  # report period on a low, discharging battery
    min_interval_s: float = 30.0        # no report by exception closer together than this
    moving_speed_mps: float = 1.0       # faster than a slow walk counts as moving
    moving_distance_m: float = 250.0    # a position this far from the last one sent is news
    moving_hold_s: float = 180.0        # stay in "moving" this long after the last movement
    low_battery_percent: float = 20.0
    battery_step_percent: float = 5.0   # battery news: a change of this many points
    signal_step_db: float = 10.0        # network news: RSSI/RSRP moved this much
    track_min_distance_m: float = 100.0  # offline track: a point per this much movement
    track_max_points: int = 500
    chunk_bytes: int = 64 * 1024        # record upload chunk, at most 128 KiB
    upload_window: int = 4              # chunks sent ahead of the office's confirmation
    upload_stall_s: float = 60.0        # no word from the office this long: resend
    retry_base_s: float = 30.0          # first wait after the office refuses a record
    retry_max_s: float = 3600.0         # longest wait between tries of one record
    reconnect_min_s: float = 2.0
    reconnect_max_s: float = 300.0
    connect_timeout_s: float = 20.0
    # Each keepalive is a PINGREQ/PINGRESP pair, ~200 bytes with TCP/IP headers: 120 s costs
    # ~140 kB a day; a dead link is noticed after 1.5 x keepalive, then the will delay runs.
    keepalive_s: int = 120
    will_delay_s: int = 120             # offline only after this long without the kit
    session_expiry_s: int = 7 * 86400   # the broker keeps the kit's session and queue this long
    max_clock_skew_s: float = 300.0     # commands issued this far in the future still count
    command_max_lifetime_s: float = 7 * 86400

    def check(self, origin: str = "[agent]") -> None:
        problems = []
        if not 1024 <= self.chunk_bytes <= p.MAX_CHUNK_DATA:
            problems.append(("chunk_bytes", f"between 1024 and {p.MAX_CHUNK_DATA}"))
        if self.upload_window < 1:
            problems.append(("upload_window", "at least 1"))
        if self.track_max_points < 10 or self.track_max_points > p.MAX_TRACK_POINTS:
            problems.append(("track_max_points", f"between 10 and {p.MAX_TRACK_POINTS}"))
        if self.session_expiry_s < self.will_delay_s:
            problems.append(("session_expiry_s", "at least will_delay_s"))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value <= 0 and f.name not in ("will_delay_s",):
                problems.append((f.name, "above 0"))
        if problems:
            key, rule = problems[0]
            raise ConfigError(id=f"{origin}: nilai 'agent.{key}' tidak sah",
                              en=f"{origin}: value of 'agent.{key}' is not valid",
                              hint_id=f"Harus {rule}", hint_en=f"It must be {rule}")

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], origin: str = "[agent]") -> AgentSettings:
        """Settings from a TOML table, as strictly as :mod:`kit.config` reads its own."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                raise ConfigError(id=f"{origin}: kunci tidak dikenal 'agent.{key}'",
                                  en=f"{origin}: unknown key 'agent.{key}'",
                                  hint_id=f"Kunci yang dikenal: {', '.join(known)}",
                                  hint_en=f"Known keys: {', '.join(known)}")
            values[key] = _coerce_setting(key, known[key].type, value, origin)
        settings = cls(**values)
        settings.check(origin)
        return settings

    def with_changes(self, changes: dict[str, Any], origin: str) -> AgentSettings:
        return AgentSettings.from_mapping({**dataclasses.asdict(self), **changes}, origin)


def _coerce_setting(key: str, kind: Any, value: Any, origin: str) -> Any:
    wanted = {"float": float, "int": int}.get(str(kind), kind)
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            wanted is int and not isinstance(value, int)):
        raise ConfigError(id=f"{origin}: 'agent.{key}' harus angka",
                          en=f"{origin}: 'agent.{key}' must be a number",
                          hint_id="Perbaiki nilainya", hint_en="Correct the value")
    return float(value) if wanted is float else value


# What the office may change with a signed "config" command.
REMOTE_SETTINGS = ("poll_s", "interval_moving_s", "interval_idle_s", "interval_low_battery_s",
                   "min_interval_s", "moving_distance_m", "low_battery_percent",
                   "chunk_bytes", "upload_window", "retry_max_s")


def load_agent_config(path: str | Path) -> tuple[KitConfig, AgentSettings]:
    """The kit configuration and the agent's ``[agent]`` table, from one TOML file.

    :class:`kit.config.KitConfig` keeps ``[agent]`` as a table; its keys are
    checked here, by :class:`AgentSettings`.
    """
    path = Path(path)
    config = load_config(path)
    raw_agent: Any = config.agent
    if not isinstance(raw_agent, dict):
        raise ConfigError(id=f"{path}: 'agent' harus tabel", en=f"{path}: 'agent' must be a table",
                          hint_id="Tulis [agent] di baris tersendiri",
                          hint_en="Write [agent] on a line of its own")
    return config, AgentSettings.from_mapping(raw_agent, str(path))


# ---------------------------------------------------------------------------------------------
# Telemetry sources: what the agent needs from each device, and adapters to the drivers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerReading:
    percent: float | None
    voltage_v: float | None
    charging: bool
    state: int  # OwnTracks bs: 0 unknown, 1 on battery, 2 charging, 3 full
    minutes_left: float | None = None


@dataclass(frozen=True)
class NetworkReading:
    registered: bool | None
    operator: str | None = None
    access_tech: str | None = None
    rssi_dbm: float | None = None
    rsrp_dbm: float | None = None
    rsrq_db: float | None = None
    sinr_db: float | None = None


class PositionSource(Protocol):
    def read_position(self) -> tuple[p.Position, float] | None:
        """The latest fix and its age in seconds, or None without one."""

    def close(self) -> None: ...


class NetworkSource(Protocol):
    def read_network(self) -> NetworkReading | None: ...

    def close(self) -> None: ...


class PowerSource(Protocol):
    def read_power(self) -> PowerReading | None: ...

    def close(self) -> None: ...


class GnssPositions:
    """:class:`sensors.gnss.Gnss` as a position source."""

    def __init__(self, gnss: Gnss) -> None:
        self.gnss = gnss
        self.last_fix: Any = None  # the full sensors.gnss.GnssFix, shared with the kiosk

    def read_position(self) -> tuple[p.Position, float] | None:
        fix = self.gnss.fix(timeout=0.0)
        if fix is None:
            return None
        self.last_fix = fix
        speed = None if fix.speed_kmh is None else fix.speed_kmh / 3.6
        return p.Position(lat=fix.lat, lon=fix.lon, tst=int(fix.time_utc.timestamp()),
                          acc_m=fix.accuracy_m, alt_m=fix.altitude_m, speed_mps=speed,
                          course_deg=fix.course_deg), float(fix.age_s)

    def close(self) -> None:
        self.gnss.close()


class ModemNetwork:
    """:class:`sensors.modem.Modem` as a network source.

    A full status read is about eight AT commands; ``timeout`` bounds it so a
    hung modem delays only the next network report, not the agent.
    """

    def __init__(self, modem: Modem, timeout: float = 5.0) -> None:
        self.modem = modem
        self.timeout = timeout

    def read_network(self) -> NetworkReading | None:
        status = self.modem.status(timeout=self.timeout)

        def number(value: float | None) -> float | None:
            return float(value) if value is not None and math.isfinite(value) else None

        return NetworkReading(
            registered=status.registered,
            operator=status.operator[:32] if status.operator else None,
            access_tech=status.access_tech[:16] if status.access_tech else None,
            rssi_dbm=number(status.rssi_dbm), rsrp_dbm=number(status.rsrp_dbm),
            rsrq_db=number(status.rsrq_db), sinr_db=number(status.sinr_db))

    def close(self) -> None:
        self.modem.close()


class BatteryPower:
    """:class:`sensors.battery.Battery` as a power source."""

    def __init__(self, battery: Battery) -> None:
        self.battery = battery

    def read_power(self) -> PowerReading | None:
        status = self.battery.read()
        return PowerReading(percent=status.percent, voltage_v=status.voltage_v,
                            charging=status.charging, state=status.owntracks_bs,
                            minutes_left=status.minutes_left)

    def close(self) -> None:
        self.battery.close()


@dataclass
class Sources:
    position: PositionSource | None = None
    network: NetworkSource | None = None
    power: PowerSource | None = None

    def close(self) -> None:
        for source in (self.position, self.network, self.power):
            if source is not None:
                try:
                    source.close()
                except Exception as exc:  # a device failing on close must not stop shutdown
                    log.warning("closing %s failed: %s", type(source).__name__, exc)


def open_sources(config: KitConfig) -> Sources:
    """The kit's GNSS, modem and battery as configured; a device that cannot be opened is
    left out with a warning (the agent still reports the rest)."""
    sources = Sources()
    gnss_section = config.devices.gnss
    if gnss_section.enabled:
        try:
            from sensors.gnss import NmeaGnss

            sources.position = GnssPositions(NmeaGnss.from_config(gnss_section))
        except (JaranIjoError, DeviceError, OSError) as exc:
            log.warning("GNSS left out: %s", exc)
    modem_section = config.devices.modem
    if modem_section.enabled:
        try:
            from sensors.modem import AtModem

            sources.network = ModemNetwork(AtModem.from_config(modem_section))
        except (JaranIjoError, DeviceError, OSError) as exc:
            log.warning("modem left out: %s", exc)
    try:
        from sensors.battery import open_battery

        battery = open_battery(config.devices.battery)
        if battery is not None:
            sources.power = BatteryPower(battery)
    except (JaranIjoError, DeviceError, OSError) as exc:
        log.warning("battery left out: %s", exc)
    return sources


@dataclass(frozen=True)
class Snapshot:
    """The latest readings, and when each device last answered (monotonic seconds)."""

    position: p.Position | None = None
    fix_age_s: float | None = None
    network: NetworkReading | None = None
    power: PowerReading | None = None
    problems: tuple[str, ...] = ()


class Sampler:
    """Reads every source each ``poll_s`` seconds in its own thread; never raises."""

    def __init__(self, sources: Sources, poll_s: Callable[[], float],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sources = sources
        self._poll_s = poll_s
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot = Snapshot()
        self._fix_seen_at: float | None = None
        self._fix: tuple[p.Position, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples = 0

    def start(self) -> None:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="agent-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def snapshot(self) -> Snapshot:
        with self._lock:
            snap = self._snapshot
            if self._fix is not None and self._fix_seen_at is not None:
                # The fix ages between samples too.
                age = self._fix[1] + self._clock() - self._fix_seen_at
                snap = dataclasses.replace(snap, fix_age_s=age)
            return snap

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s()):
            self.sample()

    def sample(self) -> None:
        problems: list[str] = []

        def read(name: str, fn: Callable[[], Any]) -> Any:
            try:
                return fn()
            except (JaranIjoError, DeviceError) as exc:
                problems.append(f"{name}: {exc.code}")
            except Exception as exc:  # a driver bug must not stop the agent's reports
                log.exception("reading %s failed", name)
                problems.append(f"{name}: {exc.__class__.__name__}")
            return None

        src = self.sources
        fix = read("gnss", src.position.read_position) if src.position else None
        network = read("modem", src.network.read_network) if src.network else None
        power = read("battery", src.power.read_power) if src.power else None
        with self._lock:
            if fix is not None:
                self._fix, self._fix_seen_at = fix, self._clock()
            position = self._fix[0] if self._fix is not None else None
            self._snapshot = Snapshot(position=position, network=network, power=power,
                                      problems=tuple(problems))
            self.samples += 1


# ---------------------------------------------------------------------------------------------
# Reporting policy: what to send when (pure; the benchmark drives it with a simulated day)
# ---------------------------------------------------------------------------------------------


def distance_m(a: p.Position, b: p.Position) -> float:
    """Great-circle distance (haversine), metres."""
    r = 6_371_000.0
    la1, la2 = math.radians(a.lat), math.radians(b.lat)
    dla, dlo = la2 - la1, math.radians(b.lon - a.lon)
    h = math.sin(dla / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin(dlo / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(h)))


@dataclass
class TelemetryPolicy:
    """Decides when a location or health report is due (reports by exception and by timer)."""

    settings: AgentSettings
    last_location: p.Position | None = None
    last_location_at: float | None = None
    last_health: p.Health | None = None
    last_health_at: float | None = None
    moved_at: float | None = None

    def mode(self, snapshot: Snapshot, now: float) -> str:
        s = self.settings
        pos = snapshot.position
        if pos is not None:
            fast = pos.speed_mps is not None and pos.speed_mps >= s.moving_speed_mps
            far = self.last_location is not None and \
                distance_m(pos, self.last_location) >= s.moving_distance_m
            if fast or far:
                self.moved_at = now
        if self.moved_at is not None and now - self.moved_at < s.moving_hold_s:
            return "moving"
        power = snapshot.power
        if power is not None and power.percent is not None and not power.charging \
                and power.percent <= s.low_battery_percent:
            return "low_battery"
        return "idle"

    def interval(self, mode: str) -> float:
        s = self.settings
        return {"moving": s.interval_moving_s, "low_battery": s.interval_low_battery_s}.get(
            mode, s.interval_idle_s)

    def location_due(self, snapshot: Snapshot, now: float, mode: str) -> str | None:
        """The OwnTracks trigger for a location report due now, or None."""
        pos = snapshot.position
        if pos is None:
            return None
        if self.last_location_at is None:
            return "p"
        since = now - self.last_location_at
        if since >= self.interval(mode):
            return "t" if mode == "moving" else "p"
        if self.last_location is not None and since >= self.settings.min_interval_s \
                and distance_m(pos, self.last_location) >= self.settings.moving_distance_m:
            return "t"
        return None

    def health_due(self, health: p.Health, now: float, mode: str) -> bool:
        """Health follows its own timer: moving changes where the kit is, not how it is, so
        only a low battery makes it faster; changes are reported by exception."""
        if self.last_health_at is None or self.last_health is None:
            return True
        since = now - self.last_health_at
        if since >= self.interval("low_battery" if mode == "low_battery" else "idle"):
            return True
        return since >= self.settings.min_interval_s and self.is_news(self.last_health, health)

    def is_news(self, old: p.Health, new: p.Health) -> bool:
        """A change the office should hear about before the next timed report."""
        s = self.settings

        def moved(a: float | None, b: float | None, step: float) -> bool:
            return (a is None) != (b is None) or (a is not None and b is not None
                                                   and abs(a - b) >= step)

        charging = new.battery_state in (2, 3)
        return (
            old.battery_state != new.battery_state
            # Draining is news; filling up on the charger is not (its start and end are).
            or (not charging and moved(old.battery_percent, new.battery_percent,
                                       s.battery_step_percent))
            or old.registered != new.registered or old.access_tech != new.access_tech
            or old.operator != new.operator
            or moved(old.rssi_dbm, new.rssi_dbm, s.signal_step_db)
            or moved(old.rsrp_dbm, new.rsrp_dbm, s.signal_step_db)
            or old.outbox_count != new.outbox_count
            # "recording:photo" -> "recording:fingers" is not news; "idle" -> "recording" is.
            or (old.ui_state or "").split(":")[0] != (new.ui_state or "").split(":")[0]
            or (old.fix_age_s is None) != (new.fix_age_s is None)
            or (old.minutes_left is None) != (new.minutes_left is None)
        )

    def location_sent(self, pos: p.Position, now: float) -> None:
        self.last_location, self.last_location_at = pos, now

    def health_sent(self, health: p.Health, now: float) -> None:
        self.last_health, self.last_health_at = health, now


class Track:
    """The path driven while offline: bounded, thinned when full, persisted in kit_status."""

    STATUS_KEY = "agent_track"

    def __init__(self, max_points: int, min_distance_m: float) -> None:
        self.max_points = max_points
        self.min_distance_m = min_distance_m
        self.points: list[p.Position] = []
        self.dirty = False

    def add(self, pos: p.Position) -> bool:
        if self.points and (pos.tst <= self.points[-1].tst or
                            distance_m(pos, self.points[-1]) < self.min_distance_m):
            return False
        self.points.append(pos)
        if len(self.points) > self.max_points:
            # Keep the first and every other point after it; moving points spaced
            # twice as far keep the shape of the drive at half the resolution.
            self.points = self.points[::2]
            self.min_distance_m *= 2
        self.dirty = True
        return True

    def clear(self, base_distance_m: float) -> None:
        self.points = []
        self.min_distance_m = base_distance_m
        self.dirty = True

    def save(self, store: Store) -> None:
        if self.dirty:
            store.set_status(self.STATUS_KEY, {
                "min_distance_m": self.min_distance_m,
                "points": [[q.tst, q.lat, q.lon, q.acc_m] for q in self.points]})
            self.dirty = False

    def load(self, store: Store) -> None:
        data = store.status(self.STATUS_KEY)
        if not isinstance(data, dict):
            return
        try:
            self.points = [p.Position(lat=float(la), lon=float(lo), tst=int(t),
                                      acc_m=None if acc is None else float(acc))
                           for t, la, lo, acc in data.get("points", [])][-self.max_points:]
            self.min_distance_m = max(self.min_distance_m, float(data.get("min_distance_m", 0)))
        except (TypeError, ValueError):
            log.warning("stored offline track is damaged; starting a new one")
            self.points = []


# ---------------------------------------------------------------------------------------------
# Record upload
# ---------------------------------------------------------------------------------------------


@dataclass
class Upload:
    """One record being sent: the office holds ``have`` bytes; we have sent up to ``sent``."""

    record_id: str
    blob: bytes
    sha256: bytes
    have: int = 0
    sent: int = 0
    progress_at: float = 0.0
    rewound_to: int = -1
    persisted: int = -1

    @property
    def size(self) -> int:
        return len(self.blob)


class Uploader:
    """Sends the outbox, oldest first, and turns the office's receipts into ``mark_acked``."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.active: dict[str, Upload] = {}
        self.acked = 0
        self.rng = random.Random()
        self._next_scan = 0.0
        self.stalls = 0  # stalls in a row without a word from the office

    def stall_timeout(self) -> float:
        """Silence that counts as a stall: doubles with each stall in a row, so a kit whose
        office is silent (down, its queue at the broker full) does not resend forever."""
        s = self.settings
        return min(max(s.retry_max_s, s.upload_stall_s), s.upload_stall_s * 2.0 ** self.stalls)

    @property
    def settings(self) -> AgentSettings:
        return self.agent.settings

    def reset_for_new_connection(self, now: float) -> None:
        """After a reconnect, anything sent but unconfirmed is sent again from ``have``."""
        self.stalls = 0
        for up in self.active.values():
            up.sent = up.have
            up.progress_at = now
            up.rewound_to = -1
        self._next_scan = 0.0

    def office_back(self, now: float) -> None:
        self.stalls = 0
        for up in self.active.values():
            up.progress_at = now

    def in_flight(self) -> int:
        return sum(up.sent - up.have for up in self.active.values())

    def pump(self, now: float) -> None:
        """Send what the window allows. ``now`` is monotonic seconds."""
        if not self.agent.connected or self.agent.office_online is False:
            # The office said (retained status, or its last will) that it is down: the
            # broker would only queue what we send. Wait until it is back.
            return
        s = self.settings
        stalled = False
        for up in list(self.active.values()):
            waiting = up.sent > up.have or up.have >= up.size
            if waiting and now - up.progress_at > self.stall_timeout():
                log.info("no word from the office on record %s for %.0f s: resending from %d",
                         up.record_id, now - up.progress_at, up.have)
                up.sent = up.have if up.have < up.size else max(0, up.size - s.chunk_bytes)
                up.progress_at = now
                stalled = True
        if stalled:
            self.stalls += 1
        window = s.upload_window * s.chunk_bytes
        if len(self.active) < s.upload_window and now >= self._next_scan:
            self._refill(now)
        for up in list(self.active.values()):
            while up.sent < up.size and self.in_flight() < window:
                data = up.blob[up.sent:up.sent + s.chunk_bytes]
                chunk = p.Chunk(up.record_id, up.sha256, up.size, up.sent, data)
                if not self.agent.publish(self.agent.topics.up, p.encode_chunk(chunk), qos=1):
                    return
                up.sent += len(data)

    def _refill(self, now: float) -> None:
        store = self.agent.store
        for row in store.outbox():
            if len(self.active) >= self.settings.upload_window:
                return
            rid = row["record_id"]
            wall = self.agent.clock()
            # A wait longer than the longest backoff means the wall clock jumped back.
            due = row["next_attempt_at"] <= wall or \
                row["next_attempt_at"] - wall > self.settings.retry_max_s
            if rid in self.active or not due:
                continue
            blob = store.record_blob(rid)
            if blob is None:
                continue
            have = min(int(row["sent_bytes"]), len(blob))
            # All sent but no receipt heard: resend the last chunk, the office answers it
            # with the receipt again.
            sent = have if have < len(blob) else max(0, len(blob) - self.settings.chunk_bytes)
            up = Upload(rid, blob, bytes.fromhex(row["sha256"]), have=have, sent=sent,
                        progress_at=now, persisted=have)
            self.active[rid] = up
        # Nothing more is due: look again in a second, not on every turn of the loop.
        self._next_scan = now + 1.0

    def on_progress(self, progress: p.Progress, now: float) -> None:
        store = self.agent.store
        self.stalls = 0
        up = self.active.get(progress.record_id)
        record = store.record(progress.record_id)
        if record is None:
            log.info("office wrote about record %s, which this kit does not hold",
                     progress.record_id)
            return
        if progress.kind == "have":
            if up is None:
                return  # a late confirmation for a record not in flight now; harmless
            up.progress_at = now
            if progress.have > up.size:
                log.warning("office claims %d bytes of a %d-byte record %s", progress.have,
                            up.size, up.record_id)
                return
            up.have = progress.have
            if up.sent < up.have:
                up.sent = up.have
            elif progress.gap and up.rewound_to != up.have:
                # The office missed bytes (e.g. its queue at the broker overflowed).
                up.sent, up.rewound_to = up.have, up.have
        elif progress.kind == "done":
            try:
                p.verify_receipt(progress, self.agent.office_sign, self.agent.kit_id,
                                 bytes.fromhex(record.sha256))
            except p.ProtocolError as exc:
                log.warning("receipt for record %s refused: %s", progress.record_id, exc.reason)
                store.audit("receipt_refused", subject=progress.record_id, detail=exc.reason)
                return
            entry = store.outbox_entry(progress.record_id)
            if entry is not None and entry["state"] != "acked":
                store.mark_acked(progress.record_id)
                self.acked += 1
                log.info("record %s stored by the office; payload dropped", progress.record_id)
            self.active.pop(progress.record_id, None)
            self._next_scan = 0.0
        elif progress.kind == "reject":
            self.active.pop(progress.record_id, None)
            entry = store.outbox_entry(progress.record_id)
            if entry is None or entry["state"] == "acked":
                return
            wait = max(float(progress.retry_s),
                       backoff_s(int(entry["attempts"]) + 1, self.settings.retry_base_s,
                                 self.settings.retry_max_s, self.rng))
            store.outbox_failed(progress.record_id, progress.reason, self.agent.clock() + wait)
            log.warning("office refused record %s (%s); trying again in %.0f s",
                        progress.record_id, progress.reason, wait)
            store.audit("record_refused", subject=progress.record_id, detail=progress.reason)

    def persist(self) -> None:
        """Write how far each record got (best effort: a lost value only means resending)."""
        store = self.agent.store
        for up in self.active.values():
            if up.have != up.persisted:
                store.set_outbox_progress(up.record_id, up.have)
                up.persisted = up.have


# ---------------------------------------------------------------------------------------------
# The agent
# ---------------------------------------------------------------------------------------------


class Notifier:
    """sd_notify when run by systemd (``NOTIFY_SOCKET``); silent otherwise."""

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
    office_sign: VerifyKey
    kit_box_fingerprint: str | None


def load_agent_keys(config: KitConfig) -> AgentKeys:
    keys_dir = config.keys_dir
    office = VerifyKey(read_key_file(keys_dir / "office-sign.pub", "office-sign-public",
                                     secret=False))
    box_fp: str | None = None
    box_path = keys_dir / "kit-box.pub"
    if box_path.exists():
        box_fp = fingerprint(read_key_file(box_path, "kit-box-public", secret=False))
    return AgentKeys(office_sign=office, kit_box_fingerprint=box_fp)


def read_password(config: KitConfig) -> str | None:
    """The kit's broker password, from ``mqtt.password_file`` (None: log in without one)."""
    if not config.mqtt.password_file:
        return None
    return read_secret_file(Path(config.mqtt.password_file), "mqtt.password_file")


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
        self.office_online: bool | None = None  # unknown until its retained status arrives
        self._aliases: dict[str, int] = {}
        self._alias_max = 0
        self._slow_sent: dict[str, Any] = {}
        self._track_mid: int | None = None
        self._track_sent_len = 0
        self._next_housekeeping = 0.0
        self._next_telemetry = 0.0
        self._shared_fix: Any = None
        self._shared_network: Any = None
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
        """Run until :meth:`stop` (or SIGTERM via :func:`main`); returns an exit code."""
        self.track.load(self.store)
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
            self.track.save(self.store)
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
        self.session += 1
        self.store.set_status("mqtt_session", self.session)
        wall = self.clock()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.kit_id,
                             protocol=mqtt.MQTTv5, reconnect_on_failure=False)
        client.connect_timeout = min(self.settings.connect_timeout_s, 30.0)
        mqtt_cfg = self.config.mqtt
        if mqtt_cfg.username:
            client.username_pw_set(mqtt_cfg.username, self.password)
        if mqtt_cfg.tls:
            try:
                client.tls_set(ca_certs=mqtt_cfg.ca_file or None)
            except (OSError, ValueError) as exc:
                self._lost(f"TLS cannot be set up (check mqtt.ca_file {mqtt_cfg.ca_file!r}): "
                           f"{exc}")
                return
        will_props = Properties(PacketTypes.WILLMESSAGE)
        will_props.WillDelayInterval = int(self.settings.will_delay_s)
        client.will_set(self.topics.status, p.encode_status(p.Status(
            online=False, session=self.session, tst=int(wall), software=__version__,
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
        self.counters["connects"] += 1
        self._aliases = {}
        self._alias_max = int(getattr(properties, "TopicAliasMaximum", 0) or 0)
        self._slow_sent = {}
        self._track_mid = None
        log.info("connected to the broker as %s (session %d, broker kept our session: %s)",
                 self.kit_id, self.session, bool(getattr(flags, "session_present", False)))
        client.subscribe([(self.topics.rcpt, 1), (self.topics.assign, 1), (self.topics.cmd, 1),
                          (p.OFFICE_STATUS_TOPIC, 1)])
        self.publish(self.topics.status, p.encode_status(p.Status(
            online=True, session=self.session, tst=int(self.clock()), software=__version__)),
            qos=1, retain=True)
        self.uploader.reset_for_new_connection(time.monotonic())
        # What happened while offline: the track, then a fresh location and health at once.
        if self.track.points:
            info = client.publish(self.topics.track, p.encode_track(self.track.points), qos=1)
            self._track_mid, self._track_sent_len = info.mid, len(self.track.points)
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
        if command.name == "selftest":
            return p.CommandResult(cid, ok=True, result=self.self_test())
        if command.name == "config":
            return self._configure(cid, command.args)
        raise ValueError(f"command {command.name} has no handler")

    def _wipe(self, cid: str) -> p.CommandResult:
        """Crypto-erase: every officer slot and vault secret, every draft, every sealed inbox."""
        slots = len(self.store.key_slot_ids())
        PinVault(self.store, Argon2Cost()).crypto_erase()
        drafts = self.store.delete_drafts()
        inbox = self.store.clear_inbox()
        self.store.set_status("ui_lock", {"locked": True, "command": cid, "at": self.clock(),
                                          "wiped": True})
        self.store.audit("remote_wipe", subject=cid,
                         detail=f"slots={slots} drafts={drafts} inbox={inbox}")
        log.warning("office wiped this kit: %d officer slots, %d drafts, %d sealed assignments",
                    slots, drafts, inbox)
        return p.CommandResult(cid, ok=True, result={"slots": slots, "drafts": drafts,
                                                     "inbox": inbox})

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
        """The agent's share of the self-test; the kiosk tests camera and fingerprint sensor,
        which only it may open, when it sees ``selftest_request``."""
        snap = self.sampler.snapshot()
        result: dict[str, Any] = {"store": self.store.integrity_check()}
        result["gnss"] = "fix" if snap.fix_age_s is not None and snap.fix_age_s < 30 else (
            "absent" if self.sources.position is None else "no_fix")
        result["modem"] = "absent" if self.sources.network is None else (
            "registered" if snap.network and snap.network.registered else "not_registered")
        result["battery"] = "absent" if self.sources.power is None else (
            round(snap.power.percent) if snap.power and snap.power.percent is not None
            else "unreadable")
        result["disk_free_mib"] = self._disk_free_mib() or 0
        result["problems"] = ",".join(snap.problems)[:200]
        self.store.set_status("selftest_request", {"at": self.clock()})
        return result

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
        fix = getattr(self.sources.position, "last_fix", None)
        if fix is None or fix is self._shared_fix:
            return
        self._shared_fix = fix
        self.store.set_status("gnss_fix", {
            "lat": fix.lat, "lon": fix.lon, "accuracy_m": fix.accuracy_m,
            "altitude_m": fix.altitude_m, "satellites": fix.satellites, "hdop": fix.hdop,
            "time_utc": fix.time_utc.isoformat()})

    def _share_network(self, snap: Any) -> None:
        """Hand the kiosk's status bar the modem's view (it may not open the modem port)."""
        net = snap.network
        shared = None if net is None else {
            "operator": net.operator, "access_tech": net.access_tech,
            "rssi_dbm": net.rssi_dbm, "rsrp_dbm": net.rsrp_dbm, "registered": net.registered}
        if shared != self._shared_network:
            self._shared_network = shared
            self.store.set_status("modem", shared)

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
            if self.publish(self.topics.location, payload, qos=0, alias=True):
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
        self.track.save(self.store)
        self.store.forget_commands_before(self.clock() - self.settings.max_clock_skew_s - 86400)


def _uptime_s() -> int | None:
    try:
        return int(float(Path("/proc/uptime").read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


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
