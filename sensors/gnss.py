"""Where the kit is: a GNSS receiver that speaks NMEA 0183 over a serial port.

The LTE modem's GNSS engine (SIM7600: the "NMEA" USB port, usually
``/dev/ttyUSB1``) or a separate u-blox style receiver sends one burst of
text sentences per second. Four of them carry everything the kit needs:

* ``GGA`` -- time, position, fix quality, satellites used, HDOP, altitude;
* ``RMC`` -- time, date, valid/invalid flag, position, speed and course;
* ``GSA`` -- 2D/3D fix and the dilutions of precision;
* ``GSV`` -- satellites in view (how many the antenna can see at all).

The bytes are cut into lines and each line is checked before it is
believed: it must start with ``$``, be printable ASCII, end in a correct
``*HH`` checksum and hold sensible values. Anything else -- noise on the
line, a sentence cut short by a reset, a wrong baud rate -- is skipped and
counted (:class:`NmeaCounters`), never raised. :class:`NmeaStream` does
that framing and checking on bytes alone, without a port, so tests and the
fuzzer feed it directly; :func:`parse_sentence` checks one line.

Accuracy. A receiver reports HDOP, the geometry factor, not metres. The
horizontal error is estimated as ``accuracy_m = UERE_M * hdop`` with a user
equivalent range error of 5 m, a typical figure for a single-frequency
consumer receiver with no differential corrections. It is a rough one-sigma
estimate, good enough to tell "on the doorstep" (HDOP 1 -> 5 m) from "under
a tin roof" (HDOP 6 -> 30 m); it is not a statistic the receiver measured.

>>> with NmeaGnss("/dev/jaranijo/gps", baud=9600) as gnss:    # doctest: +SKIP
...     fix = gnss.require_fix(timeout=30)
...     print(f"{fix.lat:.5f} {fix.lon:.5f} +-{fix.accuracy_m:.0f} m")
-8.13012 112.21811 +-5 m
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import TYPE_CHECKING, Any, Protocol

import pynmea2
import serial

from sensors.errors import DeviceError

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

DEVICE = "gnss"
UERE_M = 5.0  # user equivalent range error of a consumer single-frequency receiver, metres
KNOT_KMH = 1.852
# NMEA 0183 caps a sentence at 82 characters including "$" and CR LF; some
# receivers overrun it (long GSV, proprietary sentences), so allow some slack.
MAX_SENTENCE = 120
READ_TIMEOUT_S = 0.2  # how long one read may block; bounds how fast close() returns


# ---------------------------------------------------------------------------------------------
# What the receiver says, sentence by sentence
# ---------------------------------------------------------------------------------------------


class NmeaError(ValueError):
    """A line that is not a usable NMEA sentence, and why.

    ``kind`` is one of ``garbage`` (not NMEA at all), ``checksum`` (the
    ``*HH`` does not match), ``truncated`` (a sentence cut short),
    ``invalid`` (well formed but a value makes no sense) or ``unsupported``
    (a good sentence of a type the kit does not use). This is the only
    error :func:`parse_sentence` raises; :class:`NmeaStream` never raises.
    """

    KINDS = ("garbage", "checksum", "truncated", "invalid", "unsupported")

    def __init__(self, kind: str, reason: str) -> None:
        assert kind in self.KINDS
        self.kind = kind
        self.reason = reason
        super().__init__(f"{kind}: {reason}")


@dataclass(frozen=True)
class Gga:
    """Global positioning fix data: the receiver's main position report."""

    talker: str
    time: dtime | None
    fix_quality: int  # 0 none, 1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, 6 dead reckoning...
    lat: float | None
    lon: float | None
    satellites: int | None
    hdop: float | None
    altitude_m: float | None


@dataclass(frozen=True)
class Rmc:
    """Recommended minimum data: valid flag, position, speed, course and date."""

    talker: str
    time: dtime | None
    valid: bool
    lat: float | None
    lon: float | None
    speed_kmh: float | None
    course_deg: float | None
    date: date | None


@dataclass(frozen=True)
class Gsa:
    """Satellites used and dilution of precision."""

    talker: str
    fix_type: int  # 1 none, 2 2D, 3 3D
    used: tuple[int, ...]
    pdop: float | None
    hdop: float | None
    vdop: float | None


@dataclass(frozen=True)
class Gsv:
    """One part of the satellites-in-view report."""

    talker: str
    messages: int
    number: int
    in_view: int


Sentence = Gga | Rmc | Gsa | Gsv

_ADDRESS = re.compile(r"^\$[A-Z]{2}[A-Z]{3},")
_FRAME = re.compile(
    r"^\$(?P<body>(?P<talker>[A-Z]{2})(?P<type>[A-Z]{3}),[^$*]*)\*(?P<cs>[0-9A-Fa-f]{2})$"
)
_PROPRIETARY = re.compile(r"^\$(?P<body>P[A-Z0-9]{3}[^$*]*)\*(?P<cs>[0-9A-Fa-f]{2})$")
_TIME = re.compile(r"^(\d{2})(\d{2})(\d{2})(\.\d{1,4})?$")
_LAT = re.compile(r"^(\d{2})(\d{2}\.\d{1,8})$")
_LON = re.compile(r"^(\d{3})(\d{2}\.\d{1,8})$")
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)$")
_INTEGER = re.compile(r"^\d{1,3}$")
_DATE = re.compile(r"^(\d{2})(\d{2})(\d{2})$")


def nmea_checksum(body: str) -> int:
    """XOR of every character between ``$`` and ``*``."""
    value = 0
    for char in body:
        value ^= ord(char)
    return value


def parse_sentence(line: str) -> Sentence:
    """Check one NMEA line (with or without CR LF) and return what it says.

    Raises :class:`NmeaError` -- and nothing else -- for anything that is
    not a correct GGA, RMC, GSA or GSV sentence.

    >>> parse_sentence("$GPGSV,1,1,01,07,45,123,40*4A").in_view
    1
    """
    text = line.rstrip("\r\n")
    if not text.startswith("$"):
        raise NmeaError("garbage", "does not start with '$'")
    if len(text) + 2 > MAX_SENTENCE:
        raise NmeaError("garbage", f"longer than {MAX_SENTENCE} characters")
    if any(not 32 <= ord(char) < 127 for char in text):
        raise NmeaError("garbage", "holds a byte that is not printable ASCII")
    star = text.rfind("*")
    if star < 0 or len(text) - star < 3:
        if _ADDRESS.match(text) or text.startswith("$P"):
            raise NmeaError("truncated", "cut short before its checksum")
        raise NmeaError("garbage", "no checksum and no sentence address")
    match = _FRAME.match(text) or _PROPRIETARY.match(text)
    if match is None:
        raise NmeaError("garbage", "not an NMEA sentence (address, '$' or '*' misplaced)")
    sent, computed = int(match.group("cs"), 16), nmea_checksum(match.group("body"))
    if sent != computed:
        raise NmeaError("checksum", f"checksum {sent:02X} but the text adds up to {computed:02X}")
    kind = match.groupdict().get("type")
    parser = _PARSERS.get(kind or "")
    if parser is None:
        raise NmeaError("unsupported", f"sentence type {match.group('body')[:5]} is not used")
    try:
        # pynmea2 does the field split and names; values are checked below
        # because pynmea2 hands back the raw text when a conversion fails.
        message = pynmea2.parse(text, check=True)
    except pynmea2.ParseError as exc:
        raise NmeaError("garbage", f"pynmea2 refused it: {exc.args[0][0]}") from None
    return parser(message, match.group("talker"))


def _raw(message: Any, name: str) -> str:
    index = type(message).name_to_idx[name]
    return str(message.data[index]).strip() if index < len(message.data) else ""


def _time(text: str, what: str) -> dtime | None:
    if not text:
        return None
    match = _TIME.match(text)
    if not match:
        raise NmeaError("invalid", f"{what} time '{text}' is not hhmmss.ss")
    hour, minute, second = int(match[1]), int(match[2]), int(match[3])
    if hour > 23 or minute > 59 or second > 60:
        raise NmeaError("invalid", f"{what} time '{text}' is out of range")
    micro = round(float(match[4]) * 1e6) if match[4] else 0
    # A leap second (ss = 60) is folded onto :59.999999 so datetime accepts it.
    if second == 60:
        second, micro = 59, 999_999
    return dtime(hour, minute, second, min(micro, 999_999), tzinfo=UTC)


def _coordinate(value: str, hemisphere: str, what: str, latitude: bool) -> float | None:
    if not value and not hemisphere:
        return None
    pattern, limit, signs = (_LAT, 90, "NS") if latitude else (_LON, 180, "EW")
    match = pattern.match(value)
    if not match or hemisphere not in signs or len(hemisphere) != 1:
        axis = "latitude" if latitude else "longitude"
        raise NmeaError("invalid",
                        f"{what} {axis} '{value},{hemisphere}' is not d..mm.mmmm,{signs}")
    degrees, minutes = int(match[1]), float(match[2])
    result = degrees + minutes / 60.0
    if minutes >= 60 or result > limit:
        raise NmeaError("invalid", f"{what} coordinate '{value}' is out of range")
    return -result if hemisphere in "SW" else result


def _number(text: str, what: str, low: float, high: float) -> float | None:
    if not text:
        return None
    if not _NUMBER.match(text):
        raise NmeaError("invalid", f"{what} '{text}' is not a number")
    value = float(text)
    if not low <= value <= high:
        raise NmeaError("invalid", f"{what} {value} is outside {low}..{high}")
    return value


def _integer(text: str, what: str, low: int, high: int) -> int | None:
    if not text:
        return None
    if not _INTEGER.match(text):
        raise NmeaError("invalid", f"{what} '{text}' is not a whole number")
    value = int(text)
    if not low <= value <= high:
        raise NmeaError("invalid", f"{what} {value} is outside {low}..{high}")
    return value


def _parse_gga(message: Any, talker: str) -> Gga:
    quality = _integer(_raw(message, "gps_qual"), "GGA fix quality", 0, 8)
    if quality is None:
        raise NmeaError("invalid", "GGA has no fix quality")
    moment = _time(_raw(message, "timestamp"), "GGA")
    lat = _coordinate(_raw(message, "lat"), _raw(message, "lat_dir"), "GGA", True)
    lon = _coordinate(_raw(message, "lon"), _raw(message, "lon_dir"), "GGA", False)
    if quality > 0 and (lat is None or lon is None or moment is None):
        raise NmeaError("invalid", "GGA reports a fix without time or position")
    altitude = _number(_raw(message, "altitude"), "GGA altitude", -1000.0, 20000.0)
    if altitude is not None and _raw(message, "altitude_units") not in ("M", ""):
        raise NmeaError("invalid", "GGA altitude is not in metres")
    return Gga(
        talker=talker,
        time=moment,
        fix_quality=quality,
        lat=lat if quality else None,
        lon=lon if quality else None,
        satellites=_integer(_raw(message, "num_sats"), "GGA satellites", 0, 99),
        hdop=_number(_raw(message, "horizontal_dil"), "GGA HDOP", 0.0, 99.99),
        altitude_m=altitude if quality else None,
    )


def _parse_rmc(message: Any, talker: str) -> Rmc:
    status = _raw(message, "status")
    if status not in ("A", "V"):
        raise NmeaError("invalid", f"RMC status '{status}' is neither A nor V")
    mode = _raw(message, "mode_indicator")
    # NMEA 2.3 adds a mode letter; "N" (data not valid) overrides status A.
    valid = status == "A" and mode != "N"
    moment = _time(_raw(message, "timestamp"), "RMC")
    lat = _coordinate(_raw(message, "lat"), _raw(message, "lat_dir"), "RMC", True)
    lon = _coordinate(_raw(message, "lon"), _raw(message, "lon_dir"), "RMC", False)
    if valid and (lat is None or lon is None or moment is None):
        raise NmeaError("invalid", "RMC is marked valid without time or position")
    knots = _number(_raw(message, "spd_over_grnd"), "RMC speed", 0.0, 1000.0)
    day = None
    text = _raw(message, "datestamp")
    if text:
        match = _DATE.match(text)
        if not match:
            raise NmeaError("invalid", f"RMC date '{text}' is not ddmmyy")
        try:
            day = date(2000 + int(match[3]), int(match[2]), int(match[1]))
        except ValueError:
            raise NmeaError("invalid", f"RMC date '{text}' does not exist") from None
    return Rmc(
        talker=talker,
        time=moment,
        valid=valid,
        lat=lat if valid else None,
        lon=lon if valid else None,
        speed_kmh=None if knots is None else knots * KNOT_KMH,
        course_deg=_number(_raw(message, "true_course"), "RMC course", 0.0, 360.0),
        date=day,
    )


def _parse_gsa(message: Any, talker: str) -> Gsa:
    if _raw(message, "mode") not in ("A", "M"):
        raise NmeaError("invalid", "GSA mode is neither A nor M")
    fix_type = _integer(_raw(message, "mode_fix_type"), "GSA fix type", 1, 3)
    if fix_type is None:
        raise NmeaError("invalid", "GSA has no fix type")
    used = []
    for index in range(1, 13):
        prn = _integer(_raw(message, f"sv_id{index:02d}"), "GSA satellite", 1, 999)
        if prn is not None:
            used.append(prn)
    return Gsa(
        talker=talker,
        fix_type=fix_type,
        used=tuple(used),
        pdop=_number(_raw(message, "pdop"), "GSA PDOP", 0.0, 99.99),
        hdop=_number(_raw(message, "hdop"), "GSA HDOP", 0.0, 99.99),
        vdop=_number(_raw(message, "vdop"), "GSA VDOP", 0.0, 99.99),
    )


def _parse_gsv(message: Any, talker: str) -> Gsv:
    messages = _integer(_raw(message, "num_messages"), "GSV message count", 1, 9)
    number = _integer(_raw(message, "msg_num"), "GSV message number", 1, 9)
    in_view = _integer(_raw(message, "num_sv_in_view"), "GSV satellites in view", 0, 99)
    if messages is None or number is None or in_view is None or number > messages:
        raise NmeaError("invalid", "GSV counts are missing or inconsistent")
    return Gsv(talker=talker, messages=messages, number=number, in_view=in_view)


_PARSERS: dict[str, Callable[[Any, str], Sentence]] = {
    "GGA": _parse_gga,
    "RMC": _parse_rmc,
    "GSA": _parse_gsa,
    "GSV": _parse_gsv,
}


# ---------------------------------------------------------------------------------------------
# Bytes to sentences
# ---------------------------------------------------------------------------------------------


@dataclass
class NmeaCounters:
    """What came over the wire, line by line.

    ``sentences`` were used; ``ignored`` were correct but of a type the kit
    does not use; the rest were rejected. ``reconnects`` and
    ``read_errors`` count port trouble (filled in by :class:`NmeaGnss`).
    """

    bytes: int = 0
    sentences: int = 0
    ignored: int = 0
    checksum_errors: int = 0
    truncated: int = 0
    garbage: int = 0
    invalid: int = 0
    reconnects: int = 0
    read_errors: int = 0

    @property
    def rejected(self) -> int:
        return self.checksum_errors + self.truncated + self.garbage + self.invalid

    def copy(self) -> NmeaCounters:
        return replace(self)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_COUNTER_FOR_KIND = {"garbage": "garbage", "checksum": "checksum_errors",
                     "truncated": "truncated", "invalid": "invalid", "unsupported": "ignored"}


class NmeaStream:
    """Turns a byte stream into checked sentences, counting what it rejects.

    Feed it whatever the port delivers, in pieces of any size; a line is
    judged when its CR or LF arrives. A ``$`` in the middle of a line starts
    a new sentence (the one before it was cut short). A line longer than
    :data:`MAX_SENTENCE` is dropped without waiting for its end. ``feed``
    never raises.

    >>> stream = NmeaStream()
    >>> stream.feed(b"noise\\r\\n$GPGSV,1,1,01,07,45,123,40*4A\\r\\n")[0].in_view
    1
    >>> stream.counters.garbage
    1
    """

    def __init__(self) -> None:
        self.counters = NmeaCounters()
        self.last_rejection = ""
        self._buffer = bytearray()
        self._dropping = False
        self._skip_first = False

    def resync(self) -> None:
        """Forget any partial line: the next bytes come from a port just opened.

        The first line after opening usually starts mid-sentence; it is
        skipped without being counted as garbage.
        """
        self._buffer.clear()
        self._dropping = False
        self._skip_first = True

    def feed(self, data: bytes) -> list[Sentence]:
        self.counters.bytes += len(data)
        out: list[Sentence] = []
        self._buffer += data
        while True:
            if self._dropping:
                if not self._drop_overlong():
                    break
                continue
            end = _first_terminator(self._buffer)
            if end < 0:
                if len(self._buffer) > MAX_SENTENCE:
                    self._reject("garbage", f"no line end within {MAX_SENTENCE} bytes")
                    self._skip_first = False
                    self._dropping = True
                    del self._buffer[:1]  # so a '$' at the very start does not keep it alive
                    continue
                break
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            self._line(line, out)
        return out

    def _drop_overlong(self) -> bool:
        """Discard up to the next '$' or line end; False when more bytes are needed."""
        dollar = self._buffer.find(b"$")
        end = _first_terminator(self._buffer)
        if dollar >= 0 and (end < 0 or dollar < end):
            del self._buffer[:dollar]
            self._dropping = False
            return True
        if end >= 0:
            del self._buffer[: end + 1]
            self._dropping = False
            return True
        self._buffer.clear()
        return False

    def _line(self, line: bytes, out: list[Sentence]) -> None:
        if not line.strip():
            return
        first, self._skip_first = self._skip_first, False
        parts = line.split(b"$")
        # Right after opening, text before the first '$' is the tail of a
        # sentence the port caught half-way through, not noise.
        if parts[0].strip() and not first:
            self._reject("garbage", "text that is not a sentence")
        sentences = [b"$" + part for part in parts[1:]]
        for cut in sentences[:-1]:
            kind = "truncated" if _ADDRESS.match(cut.decode("latin-1")) else "garbage"
            self._reject(kind, "cut short by the next '$'")
        if not sentences:
            return
        try:
            out.append(parse_sentence(sentences[-1].decode("latin-1")))
            self.counters.sentences += 1
        except NmeaError as exc:
            self._reject(exc.kind, exc.reason)

    def _reject(self, kind: str, reason: str) -> None:
        name = _COUNTER_FOR_KIND[kind]
        setattr(self.counters, name, getattr(self.counters, name) + 1)
        if kind != "unsupported":
            self.last_rejection = f"{kind}: {reason}"
            log.debug("NMEA line rejected (%s)", self.last_rejection)


def _first_terminator(buffer: bytearray) -> int:
    cr, lf = buffer.find(b"\r"), buffer.find(b"\n")
    if cr < 0:
        return lf
    if lf < 0:
        return cr
    return min(cr, lf)


# ---------------------------------------------------------------------------------------------
# Sentences to a fix
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GnssFix:
    """One position the receiver was sure of.

    * ``lat``, ``lon`` -- WGS84 degrees, south and west negative;
    * ``accuracy_m`` -- estimated horizontal error, ``UERE_M x hdop`` (None
      without HDOP);
    * ``altitude_m`` -- above mean sea level (GGA), None if not reported;
    * ``speed_kmh``, ``course_deg`` -- over ground, true north (RMC);
    * ``satellites`` -- used in the fix; ``hdop`` -- horizontal dilution;
    * ``fix_quality`` -- the GGA indicator (1 GPS, 2 DGPS...); 1 when only
      RMC was received;
    * ``time_utc`` -- the receiver's time of the fix;
    * ``age_s`` -- seconds since the kit received it.
    """

    lat: float
    lon: float
    accuracy_m: float | None
    altitude_m: float | None
    speed_kmh: float | None
    course_deg: float | None
    satellites: int | None
    hdop: float | None
    fix_quality: int
    time_utc: datetime
    age_s: float = 0.0


@dataclass
class _Epoch:
    time: dtime | None
    gga: Gga | None = None
    rmc: Rmc | None = None
    published: bool = False


class FixTracker:
    """Joins the GGA and RMC of one second into a :class:`GnssFix`.

    A receiver sends GGA and RMC for the same instant; the fix is published
    once both have arrived, or at once when the receiver has not sent the
    other kind for three seconds (some send only one). A second whose other
    half was lost to noise is published, half-complete, when the next
    second starts. When the receiver
    says it has no fix (GGA quality 0, RMC status V), nothing is published
    and the last fix ages. Pure logic: time comes from ``clock``.
    """

    OTHER_KIND_S = 3.0

    def __init__(self, uere_m: float = UERE_M, clock: Callable[[], float] = time.monotonic,
                 utc_now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.uere_m = uere_m
        self._clock = clock
        self._utc_now = utc_now
        self.latest: GnssFix | None = None
        self.latest_at: float | None = None
        self.receiver_has_fix: bool | None = None
        self.status_at: float | None = None
        self._epoch: _Epoch | None = None
        self._seen: dict[str, float] = {}
        self._epochs = {"gga": 0, "rmc": 0}
        self._in_view: dict[str, tuple[int, float]] = {}
        self._gsa_hdop: float | None = None

    def satellites_in_view(self) -> int | None:
        """Satellites the antenna sees (GSV), summed over constellations heard lately."""
        now = self._clock()
        recent = [n for n, at in self._in_view.values() if now - at <= self.OTHER_KIND_S]
        return sum(recent) if recent else None

    def update(self, sentence: Sentence) -> GnssFix | None:
        """Take one sentence; return the fix it completed, if any."""
        now = self._clock()
        if isinstance(sentence, Gsv):
            self._in_view[sentence.talker] = (sentence.in_view, now)
            return None
        if isinstance(sentence, Gsa):
            self._gsa_hdop = sentence.hdop
            return None
        kind = "gga" if isinstance(sentence, Gga) else "rmc"
        self._seen[kind] = now
        self._epochs[kind] += 1
        has_fix = sentence.fix_quality > 0 if isinstance(sentence, Gga) else sentence.valid
        self.receiver_has_fix = has_fix
        self.status_at = now
        epoch, flushed = self._epoch, None
        if epoch is None or sentence.time is None or epoch.time != sentence.time:
            flushed = self._flush()
            self._epoch = epoch = _Epoch(time=sentence.time)
        return self._publish_epoch(epoch, sentence, kind, now) or flushed

    def _publish_epoch(self, epoch: _Epoch, sentence: Sentence, kind: str,
                       now: float) -> GnssFix | None:
        setattr(epoch, kind, sentence)
        other = "rmc" if kind == "gga" else "gga"
        if getattr(epoch, other) is None:
            if now - self._seen.get(other, -math.inf) <= self.OTHER_KIND_S:
                return None  # the other half of this second is on its way
            if self._epochs[kind] < 2:
                return None  # too early to tell whether the receiver sends the other kind
        return self._publish(epoch, now)

    def _flush(self) -> GnssFix | None:
        """Publish a half-complete second whose other half never came (lost to noise)."""
        epoch = self._epoch
        if epoch is None or epoch.published:
            return None
        return self._publish(epoch, self._clock())

    def _publish(self, epoch: _Epoch, now: float) -> GnssFix | None:
        gga, rmc = epoch.gga, epoch.rmc
        if gga is not None and gga.fix_quality == 0:
            return None
        if rmc is not None and not rmc.valid:
            return None
        source = gga if gga is not None else rmc
        if source is None or source.lat is None or source.lon is None or source.time is None:
            return None
        hdop = gga.hdop if gga is not None and gga.hdop is not None else self._gsa_hdop
        fix = GnssFix(
            lat=source.lat,
            lon=source.lon,
            accuracy_m=None if hdop is None else round(self.uere_m * hdop, 2),
            altitude_m=gga.altitude_m if gga is not None else None,
            speed_kmh=rmc.speed_kmh if rmc is not None else None,
            course_deg=rmc.course_deg if rmc is not None else None,
            satellites=gga.satellites if gga is not None else None,
            hdop=hdop,
            fix_quality=gga.fix_quality if gga is not None else 1,
            time_utc=self._datetime(source.time, rmc.date if rmc is not None else None),
        )
        epoch.published = True
        self.latest, self.latest_at = fix, now
        return fix

    def _datetime(self, moment: dtime, day: date | None) -> datetime:
        if day is not None:
            return datetime.combine(day, moment)
        # GGA carries no date: take the one that puts the fix nearest the
        # system clock, so a fix at 23:59:59 read at 00:00:01 keeps yesterday.
        now = self._utc_now()
        candidates = [datetime.combine(now.date() + timedelta(days=d), moment) for d in (-1, 0, 1)]
        return min(candidates, key=lambda c: abs((c - now).total_seconds()))

    def current(self, max_age_s: float | None = None) -> GnssFix | None:
        """The latest fix with its age filled in, or None if none / too old."""
        if self.latest is None or self.latest_at is None:
            return None
        age = max(0.0, self._clock() - self.latest_at)
        if max_age_s is not None and age > max_age_s:
            return None
        return replace(self.latest, age_s=round(age, 3))


# ---------------------------------------------------------------------------------------------
# The device
# ---------------------------------------------------------------------------------------------


class Gnss(Protocol):
    """A satellite positioning receiver.

    ``fix()`` answers at once (or within its ``timeout``) from what the
    receiver last said; ``problem()`` says why there is no fresh fix, as a
    :class:`DeviceError` ready to show; ``require_fix()`` combines them.
    """

    @abstractmethod
    def fix(self, timeout: float = 0.0, max_age_s: float | None = None) -> GnssFix | None:
        """The latest fix, waiting up to ``timeout`` s for one no older than ``max_age_s``.

        Returns None if there is none by then. A stale fix (``max_age_s``
        None) is still returned, with ``age_s`` saying how stale.
        """

    @abstractmethod
    def problem(self) -> DeviceError | None:
        """Why the receiver is not delivering fixes right now, or None if it is."""

    @abstractmethod
    def counters(self) -> NmeaCounters:
        """A copy of the line counters."""

    def require_fix(self, timeout: float = 5.0, max_age_s: float = 2.0) -> GnssFix:
        """A fix at most ``max_age_s`` old, or DeviceError after ``timeout`` s saying why."""
        fix = self.fix(timeout=timeout, max_age_s=max_age_s)
        if fix is not None:
            return fix
        problem = self.problem()
        if problem is not None:
            raise problem
        raise DeviceError(
            DEVICE, "fix", code="gnss_no_fix",
            id=f"Belum ada posisi GPS dalam {timeout:g} detik",
            en=f"No GPS position within {timeout:g} s",
            hint_id="Bawa kit ke tempat terbuka lalu coba lagi",
            hint_en="Take the kit into the open and try again",
        )

    @abstractmethod
    def close(self) -> None:
        """Stop reading and release the port."""

    def __enter__(self) -> Gnss:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NmeaGnss(Gnss):
    """A GNSS receiver on a serial port (a path or a pyserial URL) sending NMEA 0183.

    ``port`` is where the receiver is (``/dev/jaranijo/gps``,
    ``socket://bench:4001``); ``baud`` its line speed (9600 for most
    receivers). A daemon thread reads and parses; if the port vanishes -- the
    USB cable pulled, the modem rebooting -- it is reopened every
    ``reopen_interval_s`` until it is back. ``silence_s`` is how long
    without data (or without one readable sentence) counts as a fault; a
    1 Hz receiver that is quiet for 3 s has stopped.

    >>> gnss = NmeaGnss("/dev/jaranijo/gps")        # doctest: +SKIP
    >>> gnss.fix(timeout=2.0)                         # doctest: +SKIP
    GnssFix(lat=-8.13012, lon=112.21811, ...)
    """

    def __init__(self, port: str, baud: int = 9600, *, silence_s: float = 3.0,
                 uere_m: float = UERE_M, reopen_interval_s: float = 0.5,
                 start: bool = True) -> None:
        self.port = port
        self.baud = baud
        self.silence_s = silence_s
        self.reopen_interval_s = reopen_interval_s
        self._clock = time.monotonic
        self._cond = threading.Condition()
        self._stream = NmeaStream()
        self._tracker = FixTracker(uere_m=uere_m, clock=self._clock)
        self._serial: Any = None
        self._ever_opened = False
        self._open_error = ""
        self._started_at = self._clock()
        self._last_byte_at = self._started_at
        self._last_readable_at = self._started_at
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._open()  # at once, so problem() is right from the first call
        self._thread = threading.Thread(target=self._run, name="gnss-reader", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=READ_TIMEOUT_S + 2.0)
        self._close_port()

    @property
    def reading(self) -> bool:
        """True while the reader thread runs."""
        return self._thread is not None and self._thread.is_alive()

    # -- what callers ask -----------------------------------------------------------------------
    def fix(self, timeout: float = 0.0, max_age_s: float | None = None) -> GnssFix | None:
        deadline = self._clock() + max(0.0, timeout)
        with self._cond:
            while True:
                fix = self._tracker.current(max_age_s)
                if fix is not None:
                    return fix
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def counters(self) -> NmeaCounters:
        with self._cond:
            return self._stream.counters.copy()

    def satellites_in_view(self) -> int | None:
        with self._cond:
            return self._tracker.satellites_in_view()

    def problem(self) -> DeviceError | None:
        with self._cond:
            now = self._clock()
            if self._serial is None:
                return self._disconnected_error()
            quiet = now - self._last_byte_at
            if quiet > self.silence_s:
                return DeviceError(
                    DEVICE, "read", code="gnss_silent",
                    id=f"Penerima GPS diam selama {quiet:.0f} detik",
                    en=f"The GPS receiver has been silent for {quiet:.0f} s",
                    hint_id="Cabut lalu pasang lagi modem/GPS, atau mulai ulang kit",
                    hint_en="Unplug and replug the modem/GPS, or restart the kit",
                )
            if now - self._last_readable_at > self.silence_s:
                counters = self._stream.counters
                return DeviceError(
                    DEVICE, "read", code="gnss_garbled",
                    id=f"Data GPS tidak terbaca ({counters.rejected} baris ditolak)",
                    en=f"GPS data is unreadable ({counters.rejected} lines rejected)",
                    hint_id=(f"Periksa kecepatan port di devices.gnss (baud {self.baud}) "
                             "dan kabelnya"),
                    hint_en=(f"Check the port speed in devices.gnss (baud {self.baud}) "
                             "and the cable"),
                )
            waited = now - self._started_at > self.silence_s
            if self._tracker.receiver_has_fix is False or (
                self._tracker.receiver_has_fix is None and waited
            ):
                seen = self._tracker.satellites_in_view()
                count_id = f"{seen} satelit terlihat" if seen is not None else "belum ada satelit"
                count_en = f"{seen} satellites in view" if seen is not None else "no satellites yet"
                return DeviceError(
                    DEVICE, "fix", code="gnss_no_fix",
                    id=f"Belum ada posisi GPS ({count_id})",
                    en=f"No GPS position yet ({count_en})",
                    hint_id=("Bawa kit ke tempat terbuka, jauh dari atap dan tembok, "
                             "lalu tunggu sampai satu menit"),
                    hint_en=("Take the kit into the open, away from roofs and walls, "
                             "and wait up to a minute"),
                )
            return None

    def _disconnected_error(self) -> DeviceError:
        reason = f" ({self._open_error})" if self._open_error else ""
        operation = "read" if self._ever_opened else "open"
        return DeviceError(
            DEVICE, operation, code="gnss_disconnected",
            id=f"Penerima GPS tidak terhubung di {self.port}{reason}",
            en=f"The GPS receiver is not connected at {self.port}{reason}",
            hint_id="Periksa kabel USB modem/GPS; kit menyambung ulang sendiri begitu terpasang",
            hint_en="Check the modem/GPS USB cable; the kit reconnects by itself once it is back",
        )

    # -- the reader thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            if self._serial is None and not self._open():
                self._stop.wait(self.reopen_interval_s)
                continue
            try:
                port = self._serial
                data = port.read(max(1, min(port.in_waiting, 4096)))
            except (OSError, AttributeError) as exc:
                # AttributeError: the port was closed under us by close().
                if self._stop.is_set():
                    break
                self._lost(str(exc))
                continue
            if data:
                self._consume(data)

    def _open(self) -> bool:
        try:
            port = serial.serial_for_url(self.port, baudrate=self.baud, timeout=READ_TIMEOUT_S)
            port.reset_input_buffer()  # bytes queued while nobody listened are stale
        except (OSError, ValueError) as exc:
            with self._cond:
                if self._open_error != str(exc):
                    log.warning("GNSS port %s cannot be opened: %s", self.port, exc)
                self._open_error = str(exc)
            return False
        with self._cond:
            if self._ever_opened:
                self._stream.counters.reconnects += 1
                log.info("GNSS port %s is back", self.port)
            self._serial = port
            self._ever_opened = True
            self._open_error = ""
            self._last_byte_at = self._last_readable_at = self._clock()
            self._stream.resync()
        return True

    def _lost(self, reason: str) -> None:
        log.warning("GNSS port %s lost: %s", self.port, reason)
        with self._cond:
            self._stream.counters.read_errors += 1
            self._open_error = reason
        self._close_port()

    def _close_port(self) -> None:
        with self._cond:
            port, self._serial = self._serial, None
        if port is not None:
            with contextlib.suppress(OSError):  # the device is already gone
                port.close()

    def _consume(self, data: bytes) -> None:
        with self._cond:
            now = self._clock()
            self._last_byte_at = now
            before = self._stream.counters.sentences + self._stream.counters.ignored
            published = False
            for sentence in self._stream.feed(data):
                if self._tracker.update(sentence) is not None:
                    published = True
            if self._stream.counters.sentences + self._stream.counters.ignored > before:
                self._last_readable_at = now
            if published:
                self._cond.notify_all()
