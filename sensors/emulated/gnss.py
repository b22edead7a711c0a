"""An emulated GNSS receiver: NMEA 0183 at 1 Hz on a pseudo-terminal, riding through Blitar.

It behaves like the GNSS port of a SIM7600 or a u-blox receiver: every
second, on the UTC second, it sends ``RMC``, ``GGA``, ``GSA`` and three
``GSV`` sentences with correct checksums, paced at the configured baud
(about 0.4 s of line time at 9600 baud). The times in the sentences are
the real UTC clock, so a kit that sets its clock from GPS sees sane time.

The receiver rides a motorbike at 30 km/h back and forth along the road
Kanigoro - Garum - Talun - Wlingi in Kabupaten Blitar (village centres,
coordinates approximate to a few hundred metres) -- the kind of trip an
officer makes between the regency office and a target's house.

Fault controls (``CONTROLS``) act outside the wire, as a technician would:
cover the antenna (``fix-loss``), power-cycle (``cold-start``), pull the
cable (``unplug``), or corrupt the line (``garbage``).

>>> gps = GnssEmulator(tmp_path / "gps", baud=9600)    # doctest: +SKIP
>>> gps.start(); gps.control("position", "-8.1", "112.2")   # doctest: +SKIP
'holding position -8.100000, 112.200000'
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from sensors.emulated.port import EmulatedPort, PortUnplugged
from sensors.gnss import KNOT_KMH, nmea_checksum

log = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_371_000.0
GEOID_SEPARATION_M = 27.0  # EGM96 geoid above the ellipsoid around Blitar, roughly
COLD_START_S = 35.0  # typical time to first fix from cold for a consumer receiver

# (name, latitude, longitude, altitude above sea level in metres), approximate.
ROUTE: tuple[tuple[str, float, float, float], ...] = (
    ("Kanigoro", -8.1300, 112.2180, 165.0),
    ("Garum", -8.0760, 112.2280, 215.0),
    ("Talun", -8.0880, 112.2800, 235.0),
    ("Wlingi", -8.0780, 112.3260, 300.0),
)
SPEED_KMH = 30.0

# A plausible GPS sky: PRN, elevation, azimuth, carrier-to-noise (dB-Hz).
SKY: tuple[tuple[int, int, int, int], ...] = (
    (2, 67, 41, 44), (5, 52, 310, 42), (7, 34, 122, 39), (9, 21, 255, 35),
    (13, 71, 190, 45), (15, 18, 80, 31), (18, 40, 15, 41), (20, 27, 148, 37),
    (25, 8, 290, 24), (29, 12, 210, 27),
)
USED_MIN_ELEVATION = 15
HDOP, PDOP, VDOP = 0.9, 1.6, 1.3


# ---------------------------------------------------------------------------------------------
# Sentences
# ---------------------------------------------------------------------------------------------


def sentence(body: str) -> str:
    """``$body*HH`` with CR LF, the checksum computed."""
    return f"${body}*{nmea_checksum(body):02X}\r\n"


def _dm(value: float, degree_digits: int) -> str:
    # Round the minutes first so 59.999996' becomes the next whole degree, not "60.00000".
    minutes_total = round(abs(value) * 60.0, 5)
    degrees = int(minutes_total // 60)
    minutes = minutes_total - degrees * 60
    return f"{degrees:0{degree_digits}d}{minutes:08.5f}"


def lat_field(lat: float) -> str:
    return f"{_dm(lat, 2)},{'S' if lat < 0 else 'N'}"


def lon_field(lon: float) -> str:
    return f"{_dm(lon, 3)},{'W' if lon < 0 else 'E'}"


def _hms(moment: datetime) -> str:
    return f"{moment:%H%M%S}.{moment.microsecond // 10000:02d}"


def gga(moment: datetime, lat: float | None, lon: float | None, *, quality: int = 1,
        satellites: int = 8, hdop: float = HDOP, altitude_m: float = 0.0,
        talker: str = "GP") -> str:
    """A GGA sentence; quality 0 (or no position) leaves the position fields empty."""
    if quality == 0 or lat is None or lon is None:
        return sentence(f"{talker}GGA,{_hms(moment)},,,,,0,00,99.99,,M,,M,,")
    return sentence(
        f"{talker}GGA,{_hms(moment)},{lat_field(lat)},{lon_field(lon)},{quality},"
        f"{satellites:02d},{hdop:.1f},{altitude_m:.1f},M,{GEOID_SEPARATION_M:.1f},M,,"
    )


def rmc(moment: datetime, lat: float | None, lon: float | None, *, valid: bool = True,
        speed_kmh: float = 0.0, course_deg: float = 0.0, talker: str = "GP") -> str:
    """An RMC sentence (NMEA 2.3, with the mode letter)."""
    day = f"{moment:%d%m%y}"
    if not valid or lat is None or lon is None:
        return sentence(f"{talker}RMC,{_hms(moment)},V,,,,,,,{day},,,N")
    knots = speed_kmh / KNOT_KMH
    return sentence(
        f"{talker}RMC,{_hms(moment)},A,{lat_field(lat)},{lon_field(lon)},"
        f"{knots:.3f},{course_deg:.2f},{day},,,A"
    )


def gsa(used: list[int], *, fix_type: int = 3, pdop: float = PDOP, hdop: float = HDOP,
        vdop: float = VDOP, talker: str = "GP") -> str:
    prns = [f"{p:02d}" for p in used[:12]] + [""] * (12 - min(12, len(used)))
    if fix_type == 1:
        return sentence(f"{talker}GSA,A,1,{','.join([''] * 12)},99.99,99.99,99.99")
    return sentence(f"{talker}GSA,A,{fix_type},{','.join(prns)},{pdop:.1f},{hdop:.1f},{vdop:.1f}")


def gsv(sky: list[tuple[int, int, int, int | None]], talker: str = "GP") -> list[str]:
    """The satellites-in-view report, four satellites per sentence."""
    if not sky:
        return [sentence(f"{talker}GSV,1,1,00")]
    groups = [sky[i : i + 4] for i in range(0, len(sky), 4)]
    out = []
    for number, group in enumerate(groups, start=1):
        fields = []
        for prn, elevation, azimuth, snr in group:
            level = "" if snr is None else f"{snr:02d}"  # empty: in view but not tracked
            fields.append(f"{prn:02d},{elevation:02d},{azimuth:03d},{level}")
        out.append(sentence(f"{talker}GSV,{len(groups)},{number},{len(sky):02d},{','.join(fields)}"))
    return out


# ---------------------------------------------------------------------------------------------
# The road
# ---------------------------------------------------------------------------------------------


def _offset_m(lat1: float, lon1: float, lat2: float, lon2: float) -> tuple[float, float]:
    """East and north metres from point 1 to point 2 (flat earth: fine over a few km)."""
    mid = math.radians((lat1 + lat2) / 2)
    east = math.radians(lon2 - lon1) * math.cos(mid) * EARTH_RADIUS_M
    north = math.radians(lat2 - lat1) * EARTH_RADIUS_M
    return east, north


class Route:
    """A polyline ridden back and forth; ``at(s)`` gives the point ``s`` metres along."""

    def __init__(self, points: tuple[tuple[str, float, float, float], ...] = ROUTE) -> None:
        self.points = points
        self.legs: list[float] = []
        for (_, la1, lo1, _), (_, la2, lo2, _) in itertools.pairwise(points):
            east, north = _offset_m(la1, lo1, la2, lo2)
            self.legs.append(math.hypot(east, north))
        self.length = sum(self.legs)

    def at(self, s: float) -> tuple[float, float, float, float]:
        """(lat, lon, altitude, course) ``s`` metres into an out-and-back ride."""
        s %= 2 * self.length
        backwards = s > self.length
        if backwards:
            s = 2 * self.length - s
        for index, leg in enumerate(self.legs):
            if s <= leg or index == len(self.legs) - 1:
                f = min(1.0, s / leg) if leg else 0.0
                _, la1, lo1, al1 = self.points[index]
                _, la2, lo2, al2 = self.points[index + 1]
                east, north = _offset_m(la1, lo1, la2, lo2)
                course = math.degrees(math.atan2(east, north)) % 360.0
                if backwards:
                    course = (course + 180.0) % 360.0
                return (la1 + f * (la2 - la1), lo1 + f * (lo2 - lo1), al1 + f * (al2 - al1),
                        course)
            s -= leg
        raise AssertionError("unreachable: the last leg takes the remainder")


@dataclass(frozen=True)
class Truth:
    """What the emulated receiver sent for one instant: the answer a driver should find."""

    time_utc: datetime
    fix: bool
    lat: float
    lon: float
    altitude_m: float
    speed_kmh: float
    course_deg: float
    satellites: int
    hdop: float
    in_view: int


# ---------------------------------------------------------------------------------------------
# The receiver
# ---------------------------------------------------------------------------------------------


class GnssEmulator:
    """A GNSS receiver on a pty linked at ``link``; ``baud`` paces its output.

    ``rate_hz`` is the navigation rate (1 Hz like most receivers; at 9600
    baud one epoch takes ~0.43 s of line time, so 2 Hz is the most that fits).
    """

    CONTROLS: ClassVar[dict[str, str]] = {
        "fix-loss": "fix-loss <seconds>: antenna covered - no fix (GGA quality 0, RMC V)",
        "cold-start": f"cold-start [seconds]: restart from cold, no fix while it searches "
                      f"(default {COLD_START_S:.0f} s)",
        "garbage": "garbage [seconds] [only]: junk lines, bad checksums and cut sentences "
                   "(default 3 s; 'only' sends nothing valid, like a wrong baud rate)",
        "stop-moving": "stop-moving: the officer stops; speed 0, position held",
        "move": "move: ride on along the Kanigoro-Garum-Talun-Wlingi road",
        "unplug": "unplug: pull the cable; the port disappears",
        "replug": "replug: plug the cable back in",
        "stall": "stall <seconds>: the receiver hangs and sends nothing",
        "position": "position <lat> <lon> [altitude_m]: jump there and stay "
                    "(degrees, south/west negative)",
    }

    def __init__(self, link: str | Path, baud: int = 9600, *, rate_hz: float = 1.0,
                 speed_kmh: float = SPEED_KMH, seed: int = 1) -> None:
        if not 0 < rate_hz <= 10:
            raise ValueError("rate_hz must be in (0, 10]")
        self.link = Path(link)
        self.baud = baud
        self.rate_hz = rate_hz
        self.route = Route()
        self.speed_kmh = speed_kmh
        self._port: EmulatedPort | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._random = random.Random(seed)
        # state, guarded by _lock
        self._distance_m = 0.0
        self._moving = True
        self._held: tuple[float, float, float] | None = None
        self._last_epoch: float | None = None
        self._course = self.route.at(0.0)[3]
        self._no_fix_until = 0.0
        self._cold_from = 0.0
        self._cold_until = 0.0
        self._garbage_until = 0.0
        self._garbage_only = False
        self._stall_until = 0.0
        self._history: OrderedDict[datetime, Truth] = OrderedDict()

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._port = EmulatedPort(self.link, self.baud)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gnss-emulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._port is not None:
            self._port.close()  # wakes a paced write blocked on a full pty
        if self._thread is not None:
            self._thread.join(timeout=3)

    def __enter__(self) -> GnssEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- controls -------------------------------------------------------------------------------
    def control(self, name: str, *args: str) -> str:
        """Apply one of :attr:`CONTROLS`; ValueError with the reason if it is not one."""
        now = time.monotonic()
        if name not in self.CONTROLS:
            raise ValueError(f"unknown control '{name}' (known: {', '.join(self.CONTROLS)})")
        with self._lock:
            if name == "fix-loss":
                seconds = _seconds(args, name)
                self._no_fix_until = now + seconds
                return f"no fix for {seconds:g} s"
            if name == "cold-start":
                seconds = _seconds(args, name, default=COLD_START_S)
                self._cold_from, self._cold_until = now, now + seconds
                return f"cold start: searching for {seconds:g} s"
            if name == "garbage":
                only = bool(args) and args[-1] == "only"
                rest = args[:-1] if only else args
                seconds = _seconds(rest, name, default=3.0)
                self._garbage_until, self._garbage_only = now + seconds, only
                return f"garbage for {seconds:g} s" + (" (nothing valid)" if only else "")
            if name == "stop-moving":
                _no_args(args, name)
                self._moving = False
                return "stopped"
            if name == "move":
                _no_args(args, name)
                self._moving, self._held = True, None
                return f"moving at {self.speed_kmh:g} km/h"
            if name == "stall":
                seconds = _seconds(args, name)
                self._stall_until = now + seconds
                return f"stalled for {seconds:g} s"
            if name == "position":
                if len(args) not in (2, 3):
                    raise ValueError("position needs <lat> <lon> [altitude_m]")
                lat, lon = _float(args[0], "lat", -90, 90), _float(args[1], "lon", -180, 180)
                alt = _float(args[2], "altitude_m", -500, 9000) if len(args) == 3 else 170.0
                self._held, self._moving = (lat, lon, alt), False
                return f"holding position {lat:.6f}, {lon:.6f}"
        port = self._port
        if port is None:
            raise ValueError("the emulator is not started")
        _no_args(args, name)
        if name == "unplug":
            port.unplug()
            return "unplugged"
        port.replug()
        return f"plugged in at {port.path}"

    # -- what the tests compare against -------------------------------------------------------
    def truth_at(self, moment: datetime) -> Truth | None:
        """What was sent for the epoch at ``moment`` (kept for the last two minutes)."""
        with self._lock:
            return self._history.get(moment)

    def last_truth(self) -> Truth | None:
        with self._lock:
            return next(reversed(self._history.values()), None)

    # -- the receiver loop ----------------------------------------------------------------------
    def _run(self) -> None:
        period = 1.0 / self.rate_hz
        next_tick = math.floor(time.time() / period + 1) * period
        while not self._stop.is_set():
            delay = next_tick - time.time()
            if delay > 0 and self._stop.wait(delay):
                break
            tick = next_tick
            next_tick += period
            if next_tick < time.time():  # fell behind (a long paced write): skip, like a receiver
                next_tick = math.floor(time.time() / period + 1) * period
            payload = self._epoch(tick)
            port = self._port
            if payload is None or port is None or not port.plugged:
                continue
            try:
                port.write(payload)
            except PortUnplugged:
                continue

    def _epoch(self, tick: float) -> bytes | None:
        moment = datetime.fromtimestamp(round(tick, 2), UTC)
        now = time.monotonic()
        with self._lock:
            lat, lon, alt, speed, course = self._advance(tick)
            cold = now < self._cold_until
            fix = not cold and now >= self._no_fix_until
            if cold:
                progress = (now - self._cold_from) / max(1e-6, self._cold_until - self._cold_from)
                sky = [(p, e, a, None) for p, e, a, _ in SKY[: int(progress * len(SKY))]]
            else:
                sky = [(p, e, a, max(0, s + self._random.randint(-2, 2))) for p, e, a, s in SKY]
            used = [p for p, e, _, _ in SKY if e >= USED_MIN_ELEVATION] if fix else []
            truth = Truth(moment, fix, lat, lon, alt, speed, course, len(used), HDOP, len(sky))
            self._history[moment] = truth
            while len(self._history) > 120 * self.rate_hz:
                self._history.popitem(last=False)
            stalled = now < self._stall_until
            garbage = now < self._garbage_until
            only = self._garbage_only
        if stalled:
            return None
        if fix:
            lines = [
                rmc(moment, lat, lon, speed_kmh=speed, course_deg=course),
                gga(moment, lat, lon, satellites=len(used), altitude_m=alt),
                gsa(used),
            ]
        else:
            lines = [rmc(moment, None, None, valid=False), gga(moment, None, None, quality=0),
                     gsa([], fix_type=1)]
        lines += gsv(sky)
        if garbage:
            lines = self._corrupt(lines, only)
        return "".join(lines).encode("latin-1")  # junk may hold bytes above 0x7F

    def _advance(self, tick: float) -> tuple[float, float, float, float, float]:
        """Move along the road to ``tick``; (lat, lon, altitude, speed, course)."""
        if self._last_epoch is not None and self._moving and self._held is None:
            self._distance_m += (tick - self._last_epoch) * self.speed_kmh / 3.6
        self._last_epoch = tick
        if self._held is not None:
            lat, lon, alt = self._held
            return lat, lon, alt, 0.0, self._course
        lat, lon, alt, course = self.route.at(self._distance_m)
        self._course = course
        return lat, lon, alt, (self.speed_kmh if self._moving else 0.0), course

    def _corrupt(self, lines: list[str], only: bool) -> list[str]:
        """Noise as a bad cable or a receiver reset produces it."""
        rnd = self._random
        junk = "".join(chr(rnd.choice([*range(32, 127), 0x00, 0x7F, 0xB5, 0xFF]))
                       for _ in range(rnd.randint(5, 40))).replace("$", "#")
        bad = list(lines[1].rstrip("\r\n"))
        position = rnd.randrange(bad.index(",") + 1, bad.index("*"))
        bad[position] = "7" if bad[position] != "7" else "8"  # one flipped character
        cut = lines[2][: rnd.randint(8, len(lines[2]) - 6)]  # a sentence cut by the next one
        noise = [junk + "\r\n", "".join(bad) + "\r\n", lines[0][:20] + "\r\n"]
        if only:
            return [*noise, cut + "\r\n"]
        return [noise[0], noise[1], *lines[:2], cut + lines[2], *lines[3:], noise[2]]


def _seconds(args: tuple[str, ...], name: str, default: float | None = None) -> float:
    if not args:
        if default is None:
            raise ValueError(f"{name} needs <seconds>")
        return default
    if len(args) != 1:
        raise ValueError(f"{name} takes one number of seconds")
    return _float(args[0], "seconds", 0.0, 86400.0, low_open=True)


def _float(text: str, what: str, low: float, high: float, low_open: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} '{text}' is not a number") from None
    if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
        raise ValueError(f"{what} {text} is outside {low:g}..{high:g}")
    return value


def _no_args(args: tuple[str, ...], name: str) -> None:
    if args:
        raise ValueError(f"{name} takes no arguments")
