"""What the agent reads from the kit's devices: GNSS position, network and power.

The devices are opened by :class:`kit.devices.KitDevices` (the kit's one factory,
which records why a missing device is missing); here each is wrapped as a
*source* that gives the agent only what it reports, and :class:`Sampler`
reads them all every ``poll_s`` in a thread of its own (a serial read may
block for a second) into the latest :class:`Snapshot`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from kit.devices import KitDevices
from sensors.errors import DeviceError
from sync import protocol as p
from sync.errors import JaranIjoError

if TYPE_CHECKING:
    from kit.config import KitConfig
    from sensors.battery import Battery
    from sensors.gnss import Gnss, GnssFix
    from sensors.modem import Modem

log = logging.getLogger(__name__)

# The devices the agent holds (DESIGN.md s4: only it opens the modem and GNSS ports).
AGENT_DEVICES = ("gnss", "modem", "battery")


@dataclass(frozen=True)
class PowerReading:
    """The battery as the agent reports it (health ``b``, ``bs``, ``mv``, ``ml``)."""

    percent: float | None
    voltage_v: float | None
    charging: bool
    state: int  # OwnTracks bs: 0 unknown, 1 on battery, 2 charging, 3 full
    minutes_left: float | None = None


@dataclass(frozen=True)
class NetworkReading:
    """The modem's view of the network as the agent reports it (health ``reg``, ``op``,
    ``at``, ``rssi``, ``rsrp``, ``rsrq``, ``sinr``); None where the modem did not say."""

    registered: bool | None
    operator: str | None = None
    access_tech: str | None = None
    rssi_dbm: float | None = None
    rsrp_dbm: float | None = None
    rsrq_db: float | None = None
    sinr_db: float | None = None


class PositionSource(Protocol):
    """Where the kit is; ``last_fix`` is the receiver's full reading, for the kiosk."""

    last_fix: GnssFix | None

    def read_position(self) -> tuple[p.Position, float] | None:
        """The latest fix and its age in seconds, or None without one."""

    def close(self) -> None: ...


class NetworkSource(Protocol):
    """The network the kit is on."""

    def read_network(self) -> NetworkReading | None: ...

    def close(self) -> None: ...


class PowerSource(Protocol):
    """The kit's battery."""

    def read_power(self) -> PowerReading | None: ...

    def close(self) -> None: ...


class GnssPositions:
    """:class:`sensors.gnss.Gnss` as a position source."""

    def __init__(self, gnss: Gnss) -> None:
        self.gnss = gnss
        self.last_fix: GnssFix | None = None  # the latest full reading, shared with the kiosk

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
    """The sources the agent reads, None for a device the kit is without."""

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
    """The kit's GNSS, modem and battery as configured, as sources. A device that cannot be
    opened is left out (:class:`kit.devices.KitDevices` logs why); the agent reports the rest."""
    devices = KitDevices.open(config, want=AGENT_DEVICES)
    return Sources(
        position=None if devices.gnss is None else GnssPositions(devices.gnss),
        network=None if devices.modem is None else ModemNetwork(devices.modem),
        power=None if devices.battery is None else BatteryPower(devices.battery))


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

