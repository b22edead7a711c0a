"""An emulated ZhianTec ZFM / R30x / AS608 fingerprint sensor on a pseudo-terminal.

The kit's driver (pyfingerprint 1.5 under :mod:`sensors.fingerprint`) opens
``DIR/fingerprint`` as it would open the USB-UART at ``/dev/ttyUSB0``. This
twin answers it byte for byte:

* **Framing** ``EF 01 | address(4) | PID | length(2) | payload | checksum(2)``,
  big-endian, checksum = PID + length bytes + payload, 16 bits. A packet for
  another address is ignored, garbage before a header is skipped, a packet
  with a bad checksum gets an ack with confirmation code 0x01, and a packet
  left unfinished for 0.2 s is dropped, as the sensor's UART firmware does.
* **Every command pyfingerprint 1.5 sends** (see :data:`COMMANDS`), with the
  codes of the R30x manual, including the system-parameter (0x0F) and
  template-index (0x1F) queries it makes before storing, searching, loading,
  deleting and uploading.
* **Flash**: password, address, baud rate, packet size, security level and
  the template library are kept in ``state_dir/zfm-flash.json``, so they
  survive a restart of the emulator. A new baud rate, as on the real module,
  takes effect at the next power-up (the ``power-cycle`` control).
* **Line rate**: replies are paced at 10 bits per byte for the sensor's baud
  rate, packets of one reply back to back with no idle line between them
  (the port's line clock), and the sensor only understands a host whose port is set to the same
  rate (it reads the rate the host set on the pty): a host at the wrong rate
  hears nothing, as with a real UART.
* **Images**: 256 x 288 pixels, sent as 4-bit data packets (two pixels a
  byte) of the configured packet size, the last one with PID 0x08; the
  picture is :func:`sensors.emulated.fingerprints.synthesize` for whoever is
  on the glass. As on the real module, converting an image to features
  (0x02) consumes the image buffer: download it *before* converting, or you
  get a black picture.
* **Features**: 512-byte character buffers holding the impression's feature
  points (:func:`encode_features`); the same finger matches, another does not.

Who is on the sensor, and when, is a :class:`Finger`: by default a
cooperative (fictional) person places the finger ``place_delay`` seconds
after the host starts polling with readImage, holds it ``hold`` seconds
after an image was taken, then lifts it; ``cooperative off`` leaves the
glass empty until the ``place`` control.

>>> sensor = ZfmEmulator(tmp_path / "fingerprint", baud=57600, state_dir=tmp_path)  # doctest: +SKIP
>>> sensor.start()                                                            # doctest: +SKIP
>>> sensor.control("person", "warga-0042")                                    # doctest: +SKIP
'person on the sensor: warga-0042'
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from sensors.emulated import fingerprints
from sensors.emulated.port import EmulatedPort, PortUnplugged
from sensors.fingerprint import ZfmFingerprintSensor

log = logging.getLogger(__name__)

# -- the wire protocol ----------------------------------------------------------------------
START = b"\xef\x01"
PID_COMMAND = 0x01
PID_DATA = 0x02
PID_ACK = 0x07
PID_END = 0x08
HOST_PIDS = (PID_COMMAND, PID_DATA, PID_END)
MAX_DATA = 256  # the largest packet size code (3)
PACKET_SIZES = (32, 64, 128, 256)
CHAR_BYTES = 512  # one character buffer, as on the real module
IMAGE_BYTES = fingerprints.WIDTH * fingerprints.HEIGHT // 2

# Confirmation codes (R30x manual).
OK = 0x00
ERR_COMMUNICATION = 0x01
ERR_NO_FINGER = 0x02
ERR_READ_IMAGE = 0x03
ERR_MESSY = 0x06
ERR_FEW_FEATURES = 0x07
ERR_NOT_MATCHING = 0x08
ERR_NOT_FOUND = 0x09
ERR_MERGE = 0x0A
ERR_BAD_POSITION = 0x0B
ERR_LOAD = 0x0C
ERR_UPLOAD_CHAR = 0x0D
ERR_RECEIVE_DATA = 0x0E
ERR_UPLOAD_IMAGE = 0x0F
ERR_DELETE = 0x10
ERR_CLEAR = 0x11
ERR_WRONG_PASSWORD = 0x13
ERR_INVALID_IMAGE = 0x15
ERR_FLASH = 0x18
ERR_BAD_REGISTER = 0x1A
ERR_VERIFY_PASSWORD_FIRST = 0x21

COMMANDS = {
    0x01: "readImage", 0x02: "convertImage", 0x03: "compareCharacteristics",
    0x04: "searchTemplate", 0x05: "createTemplate", 0x06: "storeTemplate",
    0x07: "loadTemplate", 0x08: "downloadCharacteristics", 0x09: "uploadCharacteristics",
    0x0A: "downloadImage", 0x0C: "deleteTemplate", 0x0D: "clearDatabase",
    0x0E: "setSystemParameter", 0x0F: "getSystemParameters", 0x12: "setPassword",
    0x13: "verifyPassword", 0x14: "generateRandomNumber", 0x15: "setAddress",
    0x1D: "getTemplateCount", 0x1F: "getTemplateIndex",
}

# The score a match must reach per security level 1-5 (the module's own setting).
MATCH_THRESHOLDS = {1: 40, 2: 50, 3: 60, 4: 80, 5: 100}


def checksum(pid: int, length: int, payload: bytes) -> int:
    return (pid + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF


def encode_packet(address: int, pid: int, payload: bytes) -> bytes:
    """One packet on the wire, header to checksum."""
    length = len(payload) + 2
    return (START + address.to_bytes(4, "big") + bytes([pid]) + length.to_bytes(2, "big")
            + payload + checksum(pid, length, payload).to_bytes(2, "big"))


# -- the host-packet parser -----------------------------------------------------------------
class Packet(NamedTuple):
    """A well-formed packet from the host."""

    address: int
    pid: int
    payload: bytes


class BadChecksum(NamedTuple):
    """A packet whose checksum does not add up (the sensor answers 0x01)."""

    address: int
    pid: int
    reason: str


class Skipped(NamedTuple):
    """Bytes thrown away while looking for a header: line noise or a broken header."""

    count: int
    reason: str


Event = Packet | BadChecksum | Skipped


class PacketParser:
    """Finds host packets in a byte stream, the way the sensor's UART firmware does.

    Feed it whatever arrived; it returns what it found. It never raises on
    bad input and never holds more than one packet's worth of bytes.

    >>> events = PacketParser().feed(b"junk" + encode_packet(0xFFFFFFFF, 1, b"\\x0f"))
    >>> events[0]
    Skipped(count=4, reason='no packet header')
    >>> events[1]
    Packet(address=4294967295, pid=1, payload=b'\\x0f')
    """

    HEADER = 9  # start code, address, PID, length

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending(self) -> bool:
        """True while part of a packet has arrived and the rest has not."""
        return bool(self._buf)

    def reset(self) -> Skipped | None:
        """Drop an unfinished packet (the sensor's inter-byte timeout)."""
        dropped = len(self._buf)
        self._buf.clear()
        return Skipped(dropped, "unfinished packet timed out") if dropped else None

    def feed(self, data: bytes) -> list[Event]:
        self._buf += data
        events: list[Event] = []
        while self._buf:
            start = self._buf.find(START)
            if start < 0:
                # Keep a trailing 0xEF: it may be the first half of a start code.
                keep = 1 if self._buf[-1] == START[0] else 0
                if len(self._buf) - keep:
                    events.append(Skipped(len(self._buf) - keep, "no packet header"))
                del self._buf[: len(self._buf) - keep]
                break
            if start:
                events.append(Skipped(start, "no packet header"))
                del self._buf[:start]
            if len(self._buf) < self.HEADER:
                break
            pid = self._buf[6]
            length = int.from_bytes(self._buf[7:9], "big")
            if pid not in HOST_PIDS or not 2 < length <= MAX_DATA + 2:
                reason = (f"unknown packet type 0x{pid:02x}" if pid not in HOST_PIDS
                          else f"impossible length {length}")
                events.append(Skipped(2, reason))
                del self._buf[:2]  # resynchronise on the next start code
                continue
            total = self.HEADER + length
            if len(self._buf) < total:
                break
            address = int.from_bytes(self._buf[2:6], "big")
            payload = bytes(self._buf[9 : total - 2])
            received = int.from_bytes(self._buf[total - 2 : total], "big")
            del self._buf[:total]
            if received != checksum(pid, length, payload):
                events.append(BadChecksum(address, pid, "checksum does not add up"))
            else:
                events.append(Packet(address, pid, payload))
        return events


# -- features and matching (the sensor's "firmware") ----------------------------------------
MAX_FEATURES = 84
_FEATURE_MARK = 0x03
_POINT = struct.Struct(">HHBB")  # x, y, direction / 2, kind


def encode_features(points: np.ndarray) -> bytes:
    """512 bytes: marker 0x03, count, 2 reserved, then x, y, direction/2, kind per point."""
    points = points[:MAX_FEATURES]
    out = bytearray(CHAR_BYTES)
    out[0] = _FEATURE_MARK
    out[1] = len(points)
    for i, (x, y, direction, kind) in enumerate(points):
        _POINT.pack_into(out, 4 + _POINT.size * i, round(float(x)) & 0xFFFF,
                         round(float(y)) & 0xFFFF, round(float(direction) / 2) % 180,
                         int(kind) & 1)
    return bytes(out)


def decode_features(buffer: bytes) -> np.ndarray:
    """(n, 4) points of a character buffer; none if it is not one of ours (uploaded junk)."""
    if len(buffer) < 4 or buffer[0] != _FEATURE_MARK:
        return np.zeros((0, 4))
    count = min(buffer[1], MAX_FEATURES, (len(buffer) - 4) // _POINT.size)
    rows = [_POINT.unpack_from(buffer, 4 + _POINT.size * i) for i in range(count)]
    points = np.array(rows, dtype=np.float64).reshape(-1, 4)
    points[:, 2] *= 2
    return points


def _angle_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    gap = np.abs(a - b) % 360
    return np.minimum(gap, 360 - gap)


def _turned(points: np.ndarray, degrees: float) -> np.ndarray:
    """The points turned about the image centre the way the picture turns."""
    if not degrees:
        return points
    rad = np.radians(degrees)
    cx, cy = fingerprints.WIDTH / 2, fingerprints.HEIGHT / 2
    x, y = points[:, 0] - cx, points[:, 1] - cy
    out = points.copy()
    out[:, 0] = cx + x * np.cos(rad) + y * np.sin(rad)
    out[:, 1] = cy - x * np.sin(rad) + y * np.cos(rad)
    out[:, 2] = (points[:, 2] - degrees) % 360
    return out


def _compatible(a: np.ndarray, b: np.ndarray, degrees: float) -> np.ndarray:
    return ((_angle_gap(a[:, None, 2], b[None, :, 2]) <= degrees)
            & (a[:, None, 3] == b[None, :, 3]))


def _align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """b moved onto a: the turn (within 4 degrees) and shift most pairs agree on."""
    best: tuple[int, np.ndarray] = (-1, b)
    for degrees in (-4.0, -2.0, 0.0, 2.0, 4.0):
        turned = _turned(b, degrees)
        similar = _compatible(a, turned, 15)
        if not similar.any():
            continue
        ox = (a[:, None, 0] - turned[None, :, 0])[similar]
        oy = (a[:, None, 1] - turned[None, :, 1])[similar]
        cells = np.round(ox / 4).astype(int) * 1000 + np.round(oy / 4).astype(int)
        values, counts = np.unique(cells, return_counts=True)
        if counts.max() > best[0]:
            chosen = cells == values[np.argmax(counts)]
            shift = np.array([np.median(ox[chosen]), np.median(oy[chosen]), 0.0, 0.0])
            best = (int(counts.max()), turned + shift)
    return best[1]


def _pairs(a: np.ndarray, b: np.ndarray) -> tuple[list[tuple[int, int]], np.ndarray]:
    """One-to-one pairs within 6 pixels and 20 degrees after alignment, and b aligned."""
    if len(a) == 0 or len(b) == 0:
        return [], b
    moved = _align(a, b)
    dist = np.hypot(a[:, None, 0] - moved[None, :, 0], a[:, None, 1] - moved[None, :, 1])
    ok = (dist <= 6) & _compatible(a, moved, 20)
    pairs: list[tuple[int, int]] = []
    used: set[int] = set()
    for i in np.argsort(dist.min(axis=1)):
        for j in np.argsort(dist[i]):
            if not ok[i, j]:
                break
            if int(j) not in used:
                used.add(int(j))
                pairs.append((int(i), int(j)))
                break
    return pairs, moved


def match_score(first: bytes, second: bytes) -> int:
    """How well two character buffers match, 0 .. 250 (same finger: well over 100)."""
    a, b = decode_features(first), decode_features(second)
    if len(a) < 3 or len(b) < 3:
        return 0
    return len(_pairs(a, b)[0]) * 500 // (len(a) + len(b))


def merge_features(first: bytes, second: bytes) -> bytes:
    """A template from two impressions: the first's points plus the second's unmatched ones."""
    a, b = decode_features(first), decode_features(second)
    pairs, moved = _pairs(a, b)
    matched = {j for _, j in pairs}
    extra = moved[[j for j in range(len(moved)) if j not in matched]]
    return encode_features(np.vstack([a, extra]) if len(extra) else a)


# -- the sensor -----------------------------------------------------------------------------
@dataclass
class Flash:
    """What the module keeps across power cycles."""

    password: int = 0x00000000
    address: int = 0xFFFFFFFF
    baud_n: int = 6  # 9600 x N
    packet_code: int = 2  # 128 bytes
    security: int = 3
    templates: dict[int, bytes] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({
            "password": self.password, "address": self.address, "baud_n": self.baud_n,
            "packet_code": self.packet_code, "security": self.security,
            "templates": {str(k): v.hex() for k, v in sorted(self.templates.items())},
        }, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Flash:
        raw = json.loads(text)
        return cls(password=int(raw["password"]), address=int(raw["address"]),
                   baud_n=int(raw["baud_n"]), packet_code=int(raw["packet_code"]),
                   security=int(raw["security"]),
                   templates={int(k): bytes.fromhex(v) for k, v in raw["templates"].items()})


@dataclass(frozen=True)
class Capture:
    """The picture in the sensor's image buffer and whose finger it shows."""

    person: str
    finger: int
    impression: int
    smudged: bool

    def pixels(self) -> np.ndarray:
        return fingerprints.synthesize(self.person, self.finger, self.impression, self.smudged)


@dataclass
class Finger:
    """Who is at the sensor and what their finger is doing."""

    person: str = "warga-0001"
    finger: int = 2  # right index, the finger most often asked for
    cooperative: bool = True
    on_glass: bool = False
    arrives_at: float | None = None  # a cooperative person is about to place the finger
    lifts_at: float | None = None  # ... or to lift it after an image was taken
    placements: int = 0  # impressions so far (each placement is a new one)


def _parse_on_off(args: tuple[str, ...]) -> bool:
    if len(args) != 1 or args[0] not in ("on", "off"):
        raise ValueError("expected 'on' or 'off'")
    return args[0] == "on"


def _host_baud(path: str) -> int | None:
    """The line rate the host set on its end of the pty (None if it cannot be read)."""
    tcgets2 = 0x802C542A  # struct termios2 carries the rate in plain numbers
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        buf = bytearray(44)
        fcntl.ioctl(fd, tcgets2, buf)
        return struct.unpack_from("4IB19s2I", buf)[-1]
    except OSError:
        return None
    finally:
        os.close(fd)


class ZfmEmulator:
    """A ZFM-family fingerprint sensor behind a pty linked at ``link``.

    ``baud`` is the factory rate used when ``state_dir`` holds no flash file
    yet; a flash file from an earlier run wins, as on a real module.
    ``capacity`` is the template library size (300 on an AS608, 1000 on an
    R307). ``place_delay`` and ``hold`` time the cooperative person;
    ``boot_time`` is how long the module ignores the line after power-up;
    ``work_scale`` multiplies the module's processing times (capture,
    feature extraction, search), 0 for none.
    """

    CONTROLS: ClassVar[dict[str, str]] = {
        "place": "place [PERSON] [FINGER]: put a finger on the glass now (default: current one)",
        "lift": "lift: take the finger off the glass",
        "cooperative": "cooperative on|off: on = the person places the finger shortly after "
                       "the sensor starts looking for it; off = only the 'place' control does",
        "person": "person ID: who is at the sensor (any fictional id, e.g. warga-0042)",
        "finger": "finger N: which finger, 1-10 (1 right thumb ... 6 left thumb ... 10 left "
                  "little)",
        "place-delay": "place-delay S: seconds a cooperative person takes to place the finger",
        "bad-image": "bad-image: the next capture is smudged (wet finger pressed off-centre); "
                     "converting it fails with 0x06",
        "corrupt-checksum": "corrupt-checksum: the next reply packet has a wrong checksum",
        "truncate": "truncate: the next reply packet is cut short (the rest never comes)",
        "noise": "noise [N]: N bytes of line noise (default 7) before the next reply",
        "stall": "stall S: the sensor stops answering for S seconds (a transfer in progress "
                 "is abandoned)",
        "unplug": "unplug: pull the USB cable (also mid-transfer)",
        "replug": "replug: plug the cable back in (the sensor powers up again)",
        "wrong-password": "wrong-password [on|off]: someone set another password on the "
                          "sensor (off restores the real one)",
        "power-cycle": "power-cycle: switch the sensor off and on (a new baud rate applies)",
    }

    def __init__(self, link: str | Path, baud: int = 57600, state_dir: str | Path | None = None,
                 *, capacity: int = 300, place_delay: float = 0.5, hold: float = 1.0,
                 boot_time: float = 0.3, work_scale: float = 1.0) -> None:
        if baud % 9600 or not 1 <= baud // 9600 <= 12:
            raise ValueError(f"baud must be 9600 x N for N 1-12, not {baud}")
        self.link = Path(link)
        self.capacity = capacity
        self.place_delay = place_delay
        self.hold = hold
        self.boot_time = boot_time
        self.work_scale = work_scale
        self._flash_path = Path(state_dir) / "zfm-flash.json" if state_dir else None
        self.flash = self._load_flash(Flash(baud_n=baud // 9600))
        self.baud = self.flash.baud_n * 9600  # the rate in effect since power-up
        self.port: EmulatedPort | None = None
        self.finger = Finger()
        self.last_capture: Capture | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._parser = PacketParser()
        self._last_rx = 0.0
        # Fingers whose ridges are being worked out (fingerprints.prepare), set when done.
        self._patterns: dict[tuple[str, int], threading.Event] = {}
        self._power_up()
        # faults, set by controls
        self._corrupt_next = False
        self._truncate_next = False
        self._noise_next = 0
        self._stalled_until = 0.0
        self._smudge_next = False
        self._real_password: int | None = None

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Run the sensor in a daemon thread, powered and ready (as if plugged in earlier)."""
        self._booted_at = 0.0
        self.port = EmulatedPort(self.link, self.baud)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="zfm-emulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Switch off and remove the link."""
        self._stop.set()
        if self.port is not None:
            self.port.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _power_up(self) -> None:
        self._generation = getattr(self, "_generation", 0) + 1  # ends transfers in flight
        self.baud = self.flash.baud_n * 9600
        if self.port is not None:
            self.port.baud = self.baud
        self._image: Capture | None = None
        self._image_consumed = False
        self._chars: dict[int, bytes] = {1: bytes(CHAR_BYTES), 2: bytes(CHAR_BYTES)}
        self._verified = False
        self._upload_to: int | None = None  # char buffer receiving host data packets
        self._upload = bytearray()
        self._booted_at = time.monotonic() + self.boot_time
        self._parser.reset()

    # -- flash ---------------------------------------------------------------------------------
    def _load_flash(self, default: Flash) -> Flash:
        if self._flash_path is None or not self._flash_path.exists():
            return default
        try:
            return Flash.from_json(self._flash_path.read_text())
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("flash file %s unreadable (%s): starting from factory settings",
                        self._flash_path, exc)
            return default

    def _save_flash(self) -> None:
        if self._flash_path is None:
            return
        tmp = self._flash_path.with_suffix(".tmp")
        tmp.write_text(self.flash.to_json())
        os.replace(tmp, self._flash_path)

    # -- controls ------------------------------------------------------------------------------
    def control(self, name: str, *args: str) -> str:
        """Apply one of :attr:`CONTROLS`; ValueError for an unknown control or bad arguments."""
        with self._lock:
            answer = self._control(name, args)
            who = self.finger.person, self.finger.finger
        if name == "place" and args:
            # A finger placed by hand (a test, the bench) is imaged at once: work out its
            # pattern now, outside the lock, before the host's next readImage.
            fingerprints.prepare(*who)
            with self._lock:
                self._patterns.setdefault((who[0], int(who[1])), threading.Event()).set()
        elif name in ("person", "finger"):
            # The kiosk's flows set the person while the host is polling: worked out on a
            # thread, and the cooperative person's finger arrives once it exists.
            self._pattern_ready(*who)
        return answer

    def _pattern_ready(self, person: str, finger: int) -> bool:
        """Whether this finger's pattern is worked out; if it is not begun, begin it on a
        thread of its own. A real finger exists before it touches the glass: its ~0.7 s of
        numpy (several seconds on a loaded host) must not fall inside a readImage, where it
        would push the answer past the host's 2 s reply timeout ("tidak menjawab")."""
        key = (person, int(finger))
        with self._lock:
            done = self._patterns.get(key)
            if done is None:
                done = self._patterns[key] = threading.Event()

                def work() -> None:
                    try:
                        fingerprints.prepare(*key)
                    finally:
                        done.set()

                threading.Thread(target=work, name=f"zfm-pattern-{person}-{finger}",
                                 daemon=True).start()
        return done.is_set()

    def _control(self, name: str, args: tuple[str, ...]) -> str:
        if name not in self.CONTROLS:
            raise ValueError(f"unknown control '{name}' (known: {', '.join(self.CONTROLS)})")
        f = self.finger
        if name == "place":
            if len(args) > 2:
                raise ValueError("place takes at most PERSON and FINGER")
            if args:
                f.person = self._person(args[0])
            if len(args) == 2:
                f.finger = self._finger_no(args[1])
            self._place()
            return f"finger {f.finger} of {f.person} on the glass"
        if name == "lift":
            self._no_args(name, args)
            f.on_glass, f.arrives_at, f.lifts_at = False, None, None
            return "finger lifted"
        if name == "cooperative":
            f.cooperative = _parse_on_off(args)
            f.arrives_at = f.lifts_at = None
            return f"cooperative {'on' if f.cooperative else 'off'}"
        if name == "person":
            if len(args) != 1:
                raise ValueError("person takes one id")
            f.person = self._person(args[0])
            return f"person on the sensor: {f.person}"
        if name == "finger":
            if len(args) != 1:
                raise ValueError("finger takes one position 1-10")
            f.finger = self._finger_no(args[0])
            return f"finger position {f.finger}"
        if name == "place-delay":
            self.place_delay = self._seconds(args)
            return f"a cooperative person places the finger after {self.place_delay:g} s"
        if name == "bad-image":
            self._no_args(name, args)
            self._smudge_next = True
            return "the next capture is smudged"
        if name == "corrupt-checksum":
            self._no_args(name, args)
            self._corrupt_next = True
            return "the next reply has a wrong checksum"
        if name == "truncate":
            self._no_args(name, args)
            self._truncate_next = True
            return "the next reply is cut short"
        if name == "noise":
            count = 7
            if args:
                try:
                    count = int(args[0])
                except ValueError:
                    raise ValueError("noise takes a number of bytes") from None
                if not 1 <= count <= 4096 or len(args) > 1:
                    raise ValueError("noise takes one number of bytes, 1-4096")
            self._noise_next = count
            return f"{count} bytes of noise before the next reply"
        if name == "stall":
            seconds = self._seconds(args)
            self._stalled_until = time.monotonic() + seconds
            return f"sensor silent for {seconds:g} s"
        if name == "unplug":
            self._no_args(name, args)
            if self.port is not None:
                self.port.unplug()
            return "cable pulled"
        if name == "replug":
            self._no_args(name, args)
            if self.port is not None and not self.port.plugged:
                self.port.replug()
                # The module is powered from the USB-UART: plugging in is a power-up.
                self._power_up()
                f.on_glass, f.arrives_at, f.lifts_at = False, None, None
            return "cable plugged in (sensor powered up)"
        if name == "wrong-password":
            on = _parse_on_off(args) if args else True
            if on and self._real_password is None:
                self._real_password = self.flash.password
                self.flash.password = (self.flash.password ^ 0x5EC2E7A1) or 0x1
            elif not on and self._real_password is not None:
                self.flash.password, self._real_password = self._real_password, None
            return f"sensor password {'changed' if on else 'restored'}"
        # power-cycle
        self._no_args(name, args)
        self._power_up()
        f.on_glass, f.arrives_at, f.lifts_at = False, None, None
        return f"sensor restarted at {self.baud} baud"

    @staticmethod
    def _no_args(name: str, args: tuple[str, ...]) -> None:
        if args:
            raise ValueError(f"{name} takes no arguments")

    @staticmethod
    def _person(text: str) -> str:
        if not text or len(text) > 64 or not text.isprintable():
            raise ValueError("person id must be 1-64 printable characters")
        return text

    @staticmethod
    def _finger_no(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise ValueError(f"finger must be a number 1-10, not '{text}'") from None
        if not 1 <= number <= 10:
            raise ValueError(f"finger must be 1-10, not {number}")
        return number

    @staticmethod
    def _seconds(args: tuple[str, ...]) -> float:
        try:
            if len(args) != 1:
                raise ValueError
            seconds = float(args[0])
        except ValueError:
            raise ValueError("expected one number of seconds") from None
        if not 0 <= seconds <= 3600:
            raise ValueError("seconds must be 0-3600")
        return seconds

    # -- the finger ---------------------------------------------------------------------------
    def _place(self) -> None:
        f = self.finger
        f.on_glass, f.arrives_at, f.lifts_at = True, None, None
        f.placements += 1

    def _finger_present(self, now: float) -> bool:
        """Move the cooperative person along, then say whether a finger is on the glass."""
        f = self.finger
        if f.on_glass and f.lifts_at is not None and now >= f.lifts_at:
            f.on_glass, f.lifts_at = False, None
            return False  # the sensor sees the lift before the next placement begins
        if not f.on_glass and f.cooperative:
            if f.arrives_at is None:
                f.arrives_at = now + self.place_delay
            # the finger arrives once it exists (its pattern, worked out on a thread)
            if now >= f.arrives_at and self._pattern_ready(f.person, f.finger):
                self._place()
        return f.on_glass

    # -- the device loop ----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            port = self.port
            if port is None or not port.plugged:
                time.sleep(0.02)
                continue
            try:
                data = port.read(4096, timeout=0.05)
            except PortUnplugged:
                continue
            now = time.monotonic()
            if not data:
                with self._lock:
                    if self._parser.pending and now - self._last_rx > 0.2:
                        self._parser.reset()  # the UART's inter-byte timeout
                continue
            self._last_rx = now
            with self._lock:
                if now < self._booted_at or now < self._stalled_until:
                    continue  # booting or hung: the bytes are lost
                host = _host_baud(port.path)
                if host is not None and host != self.baud:
                    self._parser.reset()
                    continue  # framing errors: nothing the sensor can decode
                events = self._parser.feed(data)
            for event in events:
                try:
                    self._handle(event)
                except Exception:  # a firmware bug must show, and not kill the device
                    log.exception("emulated ZFM failed on %s", type(event).__name__)

    def _handle(self, event: Event) -> None:
        if isinstance(event, Skipped):
            log.debug("skipped %d bytes: %s", event.count, event.reason)
            return
        if event.address != self.flash.address:
            return  # another module's packet: a real sensor stays silent
        if isinstance(event, BadChecksum):
            self._ack(ERR_COMMUNICATION)
            return
        if event.pid in (PID_DATA, PID_END):
            self._receive_data(event)
            return
        if self._upload_to is not None:  # a command before the data finished
            self._upload_to = None
        if not event.payload:
            self._ack(ERR_COMMUNICATION)
            return
        code, args = event.payload[0], event.payload[1:]
        name = COMMANDS.get(code)
        if name is None:
            self._ack(ERR_COMMUNICATION)
            return
        with self._lock:
            if self.flash.password and not self._verified and code != 0x13:
                self._ack(ERR_VERIFY_PASSWORD_FIRST)
                return
        getattr(self, "_cmd_" + name)(args)

    def _work(self, seconds: float) -> None:
        if self.work_scale > 0:
            time.sleep(seconds * self.work_scale)

    # -- replies ------------------------------------------------------------------------------
    def _send(self, pid: int, payload: bytes, *, queued: bool = False) -> bool:
        """Send one packet with whatever fault is armed; False if the line went away.

        ``queued``: the packet continues the reply before it on the line, back to
        back (see :meth:`EmulatedPort.write`).
        """
        with self._lock:
            packet = encode_packet(self.flash.address, pid, payload)
            if self._noise_next:
                noise = bytes(np.random.default_rng().integers(0, 0xEF, self._noise_next,
                                                               dtype=np.uint8))
                packet = noise + packet
                self._noise_next = 0
            if self._corrupt_next:
                packet = packet[:-1] + bytes([packet[-1] ^ 0x5A])
                self._corrupt_next = False
            if self._truncate_next:
                packet = packet[: max(1, len(packet) // 2)]
                self._truncate_next = False
            port = self.port
        if port is None or self._stop.is_set() or time.monotonic() < self._stalled_until:
            return False
        try:
            port.write(packet, queued=queued)
        except PortUnplugged:
            return False
        return True

    def _ack(self, code: int, extra: bytes = b"") -> bool:
        return self._send(PID_ACK, bytes([code]) + extra)

    def _send_data(self, data: bytes) -> None:
        """Data packets of the configured size, the last one marked end of data.

        One :meth:`_send` (one port write) per packet, so every packet is a
        reply packet of its own: a fault armed mid-transfer (noise, corrupt
        checksum, truncate) hits exactly the next packet framed, and a power
        cycle, stop, stall or unplug ends the transfer between two packets (an
        unplug also within one). On the line they still follow each other back
        to back, as a real module's UART streams its image buffer: each write is
        queued behind the bytes still on the line (the port's line clock,
        :meth:`EmulatedPort.write` with ``queued``), so framing the next packet,
        or this thread being late on a loaded host, costs no idle line time.
        """
        size = PACKET_SIZES[self.flash.packet_code]
        generation = self._generation
        for offset in range(0, len(data), size):
            last = offset + size >= len(data)
            if generation != self._generation or not self._send(
                    PID_END if last else PID_DATA, data[offset : offset + size],
                    queued=True):
                log.info("transfer abandoned after %d of %d bytes", offset, len(data))
                return

    # -- commands -----------------------------------------------------------------------------
    def _cmd_verifyPassword(self, args: bytes) -> None:
        if len(args) != 4:
            self._ack(ERR_COMMUNICATION)
            return
        with self._lock:
            good = int.from_bytes(args, "big") == self.flash.password
            self._verified = self._verified or good
        self._ack(OK if good else ERR_WRONG_PASSWORD)

    def _cmd_setPassword(self, args: bytes) -> None:
        if len(args) != 4:
            self._ack(ERR_COMMUNICATION)
            return
        with self._lock:
            self.flash.password = int.from_bytes(args, "big")
            self._real_password = None
            self._save_flash()
        self._ack(OK)

    def _cmd_setAddress(self, args: bytes) -> None:
        if len(args) != 4:
            self._ack(ERR_COMMUNICATION)
            return
        with self._lock:
            self.flash.address = int.from_bytes(args, "big")
            self._save_flash()
        self._ack(OK)  # already from the new address, as the R30x manual describes

    def _cmd_setSystemParameter(self, args: bytes) -> None:
        if len(args) != 2:
            self._ack(ERR_COMMUNICATION)
            return
        number, value = args
        limits = {4: (1, 12), 5: (1, 5), 6: (0, 3)}
        if number not in limits or not limits[number][0] <= value <= limits[number][1]:
            self._ack(ERR_BAD_REGISTER)
            return
        with self._lock:
            if number == 4:
                self.flash.baud_n = value  # in effect from the next power-up
            elif number == 5:
                self.flash.security = value
            else:
                self.flash.packet_code = value  # data packets from now on; acks are short
            self._save_flash()
        self._ack(OK)

    def _status_register(self) -> int:
        # bit 2: password verified; bit 3: a valid image in the image buffer
        return (0x04 if self._verified else 0) | (0x08 if self._image is not None else 0)

    def _cmd_getSystemParameters(self, args: bytes) -> None:
        with self._lock:
            f = self.flash
            body = struct.pack(">HHHHIHH", self._status_register(), 0x0009, self.capacity,
                               f.security, f.address, f.packet_code, self.baud // 9600)
        self._ack(OK, body)

    def _cmd_getTemplateIndex(self, args: bytes) -> None:
        if len(args) != 1 or args[0] > 3:
            self._ack(ERR_COMMUNICATION)
            return
        page = args[0]
        bits = bytearray(32)
        with self._lock:
            for position in self.flash.templates:
                index = position - page * 256
                if 0 <= index < 256:
                    bits[index // 8] |= 1 << (index % 8)
        self._ack(OK, bytes(bits))

    def _cmd_getTemplateCount(self, args: bytes) -> None:
        with self._lock:
            count = len(self.flash.templates)
        self._ack(OK, count.to_bytes(2, "big"))

    def _cmd_readImage(self, args: bytes) -> None:
        with self._lock:
            present = self._finger_present(time.monotonic())
            if present:
                f = self.finger
                smudged, self._smudge_next = self._smudge_next, False
                self._image = Capture(f.person, f.finger, max(0, f.placements - 1), smudged)
                self._image_consumed = False
                self.last_capture = self._image
                if f.cooperative and f.lifts_at is None:
                    f.lifts_at = time.monotonic() + self.hold
        started = time.monotonic()
        if present and self.last_capture is not None:
            self.last_capture.pixels()  # the picture is made now, during the exposure
        # exposure and readout take ~0.15 s with a finger, a quick look without
        spent = time.monotonic() - started
        self._work(max(0.0, (0.15 if present else 0.02) - spent))
        self._ack(OK if present else ERR_NO_FINGER)

    def _cmd_downloadImage(self, args: bytes) -> None:
        with self._lock:
            capture, consumed = self._image, self._image_consumed
        if capture is None:
            self._ack(ERR_UPLOAD_IMAGE)
            return
        # Feature extraction overwrites the image buffer: afterwards it reads all black.
        data = bytes(IMAGE_BYTES) if consumed else fingerprints.pack_4bit(capture.pixels())
        if self._ack(OK):
            self._send_data(data)

    def _cmd_convertImage(self, args: bytes) -> None:
        if len(args) != 1 or args[0] not in (1, 2):
            self._ack(ERR_COMMUNICATION)
            return
        with self._lock:
            capture, consumed = self._image, self._image_consumed
            self._image_consumed = True
        self._work(0.12)
        if capture is None or consumed:
            self._ack(ERR_INVALID_IMAGE)
            return
        if capture.smudged:
            self._ack(ERR_MESSY)
            return
        points = fingerprints.minutiae(capture.person, capture.finger, capture.impression)
        if len(points) < 8:
            self._ack(ERR_FEW_FEATURES)
            return
        with self._lock:
            self._chars[args[0]] = encode_features(points)
        self._ack(OK)

    def _threshold(self) -> int:
        return MATCH_THRESHOLDS[self.flash.security]

    def _cmd_createTemplate(self, args: bytes) -> None:
        with self._lock:
            first, second = self._chars[1], self._chars[2]
        if match_score(first, second) < self._threshold():
            self._ack(ERR_MERGE)
            return
        merged = merge_features(first, second)
        with self._lock:
            self._chars[1] = self._chars[2] = merged
        self._ack(OK)

    def _cmd_storeTemplate(self, args: bytes) -> None:
        if len(args) != 3 or args[0] not in (1, 2):
            self._ack(ERR_COMMUNICATION)
            return
        position = int.from_bytes(args[1:3], "big")
        if position >= self.capacity:
            self._ack(ERR_BAD_POSITION)
            return
        self._work(0.03)  # a flash page write
        with self._lock:
            self.flash.templates[position] = self._chars[args[0]]
            try:
                self._save_flash()
            except OSError as exc:
                log.warning("flash write failed: %s", exc)
                self.flash.templates.pop(position, None)
                code = ERR_FLASH
            else:
                code = OK
        self._ack(code)

    def _cmd_searchTemplate(self, args: bytes) -> None:
        if len(args) != 5 or args[0] not in (1, 2):
            self._ack(ERR_COMMUNICATION)
            return
        start = int.from_bytes(args[1:3], "big")
        count = int.from_bytes(args[3:5], "big")
        with self._lock:
            probe = self._chars[args[0]]
            library = [(p, t) for p, t in sorted(self.flash.templates.items())
                       if start <= p < start + count]
            threshold = self._threshold()
        self._work(0.05)
        best = max(((match_score(t, probe), p) for p, t in library), default=(0, -1))
        if best[0] >= threshold:
            self._ack(OK, best[1].to_bytes(2, "big") + best[0].to_bytes(2, "big"))
        else:
            self._ack(ERR_NOT_FOUND, bytes(4))

    def _cmd_loadTemplate(self, args: bytes) -> None:
        if len(args) != 3 or args[0] not in (1, 2):
            self._ack(ERR_COMMUNICATION)
            return
        position = int.from_bytes(args[1:3], "big")
        with self._lock:
            if position >= self.capacity:
                code = ERR_BAD_POSITION
            elif position not in self.flash.templates:
                code = ERR_LOAD
            else:
                self._chars[args[0]] = self.flash.templates[position]
                code = OK
        self._ack(code)

    def _cmd_deleteTemplate(self, args: bytes) -> None:
        if len(args) != 4:
            self._ack(ERR_COMMUNICATION)
            return
        position = int.from_bytes(args[0:2], "big")
        count = int.from_bytes(args[2:4], "big")
        if position >= self.capacity or position + count > self.capacity:
            self._ack(ERR_DELETE)
            return
        with self._lock:
            for slot in range(position, position + count):
                self.flash.templates.pop(slot, None)
            self._save_flash()
        self._ack(OK)

    def _cmd_clearDatabase(self, args: bytes) -> None:
        with self._lock:
            self.flash.templates.clear()
            self._save_flash()
        self._ack(OK)

    def _cmd_compareCharacteristics(self, args: bytes) -> None:
        with self._lock:
            score = match_score(self._chars[1], self._chars[2])
            threshold = self._threshold()
        self._ack(OK if score >= threshold else ERR_NOT_MATCHING,
                  min(score, 0xFFFF).to_bytes(2, "big"))

    def _cmd_downloadCharacteristics(self, args: bytes) -> None:
        if len(args) != 1 or args[0] not in (1, 2):
            self._ack(ERR_COMMUNICATION)
            return
        with self._lock:
            data = self._chars[args[0]]
        if self._ack(OK):
            self._send_data(data)

    def _cmd_uploadCharacteristics(self, args: bytes) -> None:
        if len(args) != 1 or args[0] not in (1, 2):
            self._ack(ERR_COMMUNICATION)
            return
        with self._lock:
            self._upload_to = args[0]
            self._upload = bytearray()
        self._ack(OK)

    def _receive_data(self, packet: Packet) -> None:
        """Data packets from the host after uploadCharacteristics; others are ignored."""
        with self._lock:
            if self._upload_to is None:
                return
            self._upload += packet.payload
            if len(self._upload) > CHAR_BYTES:
                self._upload_to = None  # more than a buffer holds: drop it
                return
            if packet.pid == PID_END:
                buffer = bytes(self._upload).ljust(CHAR_BYTES, b"\0")
                self._chars[self._upload_to] = buffer
                self._upload_to = None

    def _cmd_generateRandomNumber(self, args: bytes) -> None:
        self._ack(OK, os.urandom(4))

    # -- for tests and the technician -----------------------------------------------------------
    @property
    def templates(self) -> dict[int, bytes]:
        """A copy of the template library in flash (position -> 512 bytes)."""
        with self._lock:
            return dict(self.flash.templates)

    def wait_booted(self, timeout: float = 2.0) -> bool:
        """Block until the module accepts commands again after a power-up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < self._booted_at:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


class EmulatedZfmSensor(ZfmFingerprintSensor):
    """The real driver talking to :class:`sensors.emulated.zfm.ZfmEmulator` on a pty.

    For ``port = "emulated"``: a desk without the sensor, or a demo. The
    emulator runs until :meth:`close`.
    """

    def __init__(self, directory: str | Path, baud: int = 57600, **kwargs: Any) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.emulator = ZfmEmulator(directory / "fingerprint", baud=baud, state_dir=directory)
        self.emulator.start()
        super().__init__(str(directory / "fingerprint"), baud=baud, **kwargs)

    def close(self) -> None:
        super().close()
        self.emulator.stop()
