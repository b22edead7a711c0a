"""The kit's fingerprint sensor, and whether a fingerprint image is good enough to keep.

The sensor is a ZhianTec ZFM / R30x / AS608 module on a USB-UART (or on a
bench, a serial-over-TCP server), driven through pyfingerprint 1.5.
:class:`FingerprintSensor` is what the kit relies on;
:class:`ZfmFingerprintSensor` is the driver; :func:`fingerprint_sensor`
builds one from the ``[devices.fingerprint]`` section of the kit
configuration (``port`` a path, a pyserial URL such as
``socket://bench:4001``, or ``emulated`` for the twin in
:mod:`sensors.emulated.zfm`).

>>> sensor = ZfmFingerprintSensor("/dev/jaranijo/fingerprint")  # doctest: +SKIP
>>> sensor.open()                                               # doctest: +SKIP
>>> if sensor.wait_for_finger(timeout=20):                      # doctest: +SKIP
...     image = sensor.capture(progress=lambda got, total: print(got, "/", total))
...     sensor.quality(image).ok

**Residents' templates never go into the sensor.** A resident's finger is
captured as an image (which goes, sealed, into the record); the only calls
that write the sensor's template library are the officer-login ones
(:meth:`~ZfmFingerprintSensor.enroll_officer`,
:meth:`~ZfmFingerprintSensor.delete_officer`). There is no call that stores
or uploads a template the kit was given, so no code path can put a
resident's fingerprint into the sensor's flash.

**pyfingerprint 1.5, and how this module lives with it** (without forking it):

* It opens ``serial.Serial(port=...)`` itself, which cannot open a pyserial
  URL. We open the port ourselves with ``serial.serial_for_url`` and hand
  the library a :class:`_Line` through its name-mangled private attribute
  ``_PyFingerprint__serial`` (see :meth:`ZfmFingerprintSensor._attach`).
* It reads one byte per call and treats an empty read (a timeout) as a byte:
  a silent sensor becomes "The received packet do not begin with a valid
  header!" after twelve 2-second timeouts, i.e. 24 s, or a TypeError in the
  middle of a packet. :class:`_Line` raises :class:`_NoReply` on the first
  empty read instead, so every call returns within ``reply_timeout`` of the
  sensor going quiet, and the fault is reported as the timeout it is.
* It raises bare ``Exception`` with English text for protocol faults; those
  texts (pinned by ``pyfingerprint==1.5``) are mapped to
  :class:`~sensors.errors.DeviceError` with Indonesian and English messages that
  name the device, the operation and what to do next.
* Its image download saves a file through Pillow. The file goes to a private
  directory in RAM (``/dev/shm`` or ``$XDG_RUNTIME_DIR``), never to the SD
  card, and is deleted at once: a resident's fingerprint must not linger
  on disk outside a sealed record.

After a disconnection, a timeout or a garbled reply the next call closes
and reopens the port and verifies the password again, so the sensor is
usable again as soon as the cable is back.

**Quality score** (:func:`fingerprint_quality`). NFIQ 2 would be the
standard, but its only Python binding (nbis-python) needs glibc 2.38 and
Raspberry Pi OS Bookworm has 2.36, so the kit scores images itself. The
image (256 x 288 pixels, ~500 dpi) is high-pass filtered (the grey level
minus a 4-pixel Gaussian blur), which keeps ridges (period 7-12 pixels) and
drops smudges, shadows and the background, then cut into 16 x 16 blocks:

* **coverage** -- the share of blocks with ridge-valley contrast (standard
  deviation of the filtered block above 8 grey levels). A whole fingertip
  pressed flat covers 0.6-0.75 of the image; full credit from 0.55, none
  below 0.15.
* **clarity** -- the mean orientation coherence of those blocks (from the
  gradient structure tensor, 1 = parallel ridges, 0 = no direction). Clear
  ridges give 0.9 and more; full credit from 0.85, none below 0.40.
* **contrast** -- the median ridge-valley standard deviation of those
  blocks, full credit from 30 grey levels, none below 6 (dry or very wet
  fingers).

``score = 100 x coverage x sqrt(clarity) x sqrt(contrast)`` (each part
0..1), so a finger that covers too little fails whatever its ridges look
like, and the reason shown is the weakest part. The sensor's own feature
extraction has the last word: if it said 0x06 (too messy), 0x07 (too few
features) or 0x15 (invalid image) the score is capped below the threshold
with that reason.

Limits: the bands above were set on the emulator's synthetic prints and on
the published behaviour of optical ZFM sensors, not on a labelled set of
real captures; the score does not see minutiae, pores, scars or a
partially rolled finger, and it cannot tell a latent print or a fake from a
finger. It says whether the picture is usable, not whether a matcher will
find the person: treat it as a capture-time hint for the officer, and
re-calibrate the bands on real bench captures before relying on the exact
figures.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import cv2
import numpy as np
import serial
from pyfingerprint.pyfingerprint import PyFingerprint

from sensors import Quality
from sensors.errors import DeviceError

if TYPE_CHECKING:
    from sensors.settings import FingerprintSection

log = logging.getLogger(__name__)

DEVICE = "fingerprint"
WIDTH, HEIGHT = 256, 288
IMAGE_BYTES = WIDTH * HEIGHT // 2  # 4 bits a pixel over the UART
PACKET_OVERHEAD = 11  # start code, address, PID, length, checksum
ACK_BYTES = 12
PACKET_SIZES = (32, 64, 128, 256)
QUALITY_THRESHOLD = 40

# Confirmation codes of the sensor's feature extraction (convertImage).
CONVERT_OK = 0x00
CONVERT_MESSY = 0x06
CONVERT_FEW_FEATURES = 0x07
CONVERT_INVALID = 0x15


def wire_bytes(packet_size: int = 128) -> int:
    """Bytes on the wire for one image download: the ack plus the data packets."""
    return ACK_BYTES + (IMAGE_BYTES // packet_size) * (packet_size + PACKET_OVERHEAD)


def wire_seconds(baud: int, packet_size: int = 128) -> float:
    """The UART limit for one image download (10 bits per byte: start, 8 data, stop)."""
    return wire_bytes(packet_size) * 10 / baud


# -- results --------------------------------------------------------------------------------
@dataclass(frozen=True)
class FingerImage:
    """One captured fingerprint: 288 x 256 grey pixels (8 bit, 16 levels), and its PNG.

    ``sensor_code`` is the sensor's verdict on the image when it extracted
    features from it: 0x00 usable, 0x06 too messy, 0x07 too few features,
    0x15 invalid; None if it was not asked.
    """

    pixels: np.ndarray
    png: bytes
    sensor_code: int | None = None


@dataclass(frozen=True)
class SensorInfo:
    """What the sensor says about itself (kept with records as device identity)."""

    status: int
    system_id: int
    capacity: int
    security_level: int
    address: int
    packet_size: int
    baud: int
    templates: int


@runtime_checkable
class FingerprintSensor(Protocol):
    """What the kit needs from a fingerprint sensor."""

    def open(self) -> None: ...

    def close(self) -> None: ...

    def wait_for_finger(self, timeout: float | None = None,
                        cancel: threading.Event | None = None) -> bool: ...

    def capture(self, progress: Callable[[int, int], None] | None = None) -> FingerImage: ...

    def quality(self, image: FingerImage) -> Quality: ...

    def system_parameters(self) -> SensorInfo: ...

    def enroll_officer(self, slot_hint: int | None = None, *, timeout: float | None = None,
                       cancel: threading.Event | None = None,
                       prompt: Callable[[str], None] | None = None) -> int: ...

    def identify_officer(self, *, timeout: float | None = None,
                         cancel: threading.Event | None = None) -> tuple[int, int] | None: ...

    def delete_officer(self, position: int) -> None: ...


# -- errors ---------------------------------------------------------------------------------
# What each operation is called in a message (DeviceError.operation keeps the short name).
_OPERATIONS = {
    "open": ("membuka sensor", "opening the sensor"),
    "wait_for_finger": ("menunggu jari", "waiting for a finger"),
    "capture": ("mengambil gambar sidik jari", "capturing the fingerprint"),
    "system_parameters": ("membaca data sensor", "reading the sensor's details"),
    "set_baud": ("mengubah kecepatan sensor", "changing the sensor's baud rate"),
    "enroll_officer": ("mendaftarkan sidik jari petugas", "enrolling the officer's finger"),
    "identify_officer": ("mengenali petugas", "identifying the officer"),
    "delete_officer": ("menghapus sidik jari petugas", "deleting the officer's finger"),
    "officer_positions": ("membaca daftar petugas", "listing enrolled officers"),
    "configure": ("menyiapkan sensor", "setting up the sensor"),
}


def _error(operation: str, code: str, id: str, en: str, hint_id: str, hint_en: str
           ) -> DeviceError:
    op_id, op_en = _OPERATIONS.get(operation, (operation, operation))
    return DeviceError(DEVICE, operation, id=f"Sensor sidik jari, {op_id}: {id}",
                       en=f"Fingerprint sensor, {op_en}: {en}",
                       hint_id=hint_id, hint_en=hint_en, code=code)


def _timeout(operation: str) -> DeviceError:
    return _error(operation, "timeout", "tidak menjawab", "no answer",
                  "Periksa kabel sensor lalu coba lagi; jika tetap diam, cabut dan pasang "
                  "kembali sensor atau periksa pengaturan baud",
                  "Check the sensor cable and retry; if it stays silent, unplug and replug "
                  "the sensor or check the baud rate setting")


def _disconnected(operation: str) -> DeviceError:
    return _error(operation, "disconnected", "sensor terputus", "sensor disconnected",
                  "Periksa kabel USB sensor lalu coba lagi",
                  "Check the sensor's USB cable, then retry")


def _garbled(operation: str) -> DeviceError:
    return _error(operation, "garbled", "jawaban rusak", "garbled reply",
                  "Coba lagi; jika sering terjadi, ganti kabel USB atau periksa pengaturan baud",
                  "Retry; if it keeps happening, replace the USB cable or check the baud rate")


def _cancelled(operation: str) -> DeviceError:
    return _error(operation, "cancelled", "dibatalkan", "cancelled",
                  "Mulai lagi bila siap", "Start again when ready")


# pyfingerprint 1.5's exception texts for replies that are not what it expects
_GARBLED_TEXTS = {
    "The received packet do not begin with a valid header!",
    "The received packet is corrupted (the checksum is wrong)!",
    "The received packet is no ack packet!",
    "The received packet is no data packet!",
    "Communication error",  # the sensor's 0x01: it did not understand our packet
}
_CONVERT_TEXTS = {
    "The image is too messy": CONVERT_MESSY,
    "The image contains too few feature points": CONVERT_FEW_FEATURES,
    "The image is invalid": CONVERT_INVALID,
}
_SENSOR_FAULTS: dict[str, tuple[str, str, str, str, str]] = {
    # text: (code, id, en, hint_id, hint_en)
    "Could not read image": (
        "image_failed", "gambar gagal dibaca", "could not read the image",
        "Bersihkan kaca sensor dan coba lagi", "Clean the sensor glass and retry"),
    "Could not download image": (
        "image_failed", "gambar gagal dikirim", "could not send the image",
        "Ambil ulang sidik jari", "Capture the finger again"),
    "Error writing to flash": (
        "flash", "memori sensor gagal ditulis", "the sensor's memory could not be written",
        "Coba lagi; bila berulang, laporkan ke teknisi",
        "Retry; if it happens again, report it to the technician"),
    "Could not store template in that position": (
        "bad_position", "posisi templat tidak sah", "invalid template position",
        "Pilih posisi lain", "Choose another position"),
    "Invalid position": (
        "bad_position", "posisi templat tidak sah", "invalid template position",
        "Pilih posisi lain", "Choose another position"),
    "The given position number is invalid!": (
        "bad_position", "tidak ada posisi templat yang bebas atau sah",
        "no free or valid template position",
        "Hapus petugas yang tidak aktif dari sensor, atau pilih posisi lain",
        "Delete officers no longer active from the sensor, or choose another position"),
    "Unknown error 0x21": (
        "password", "sensor meminta kata sandi lagi", "the sensor asks for its password again",
        "Coba lagi; kit akan menyambung ulang", "Retry; the kit reconnects"),
}


class _NoReply(Exception):
    """The sensor went quiet (or took longer than the operation may take)."""


# -- the line pyfingerprint talks through ---------------------------------------------------
class _Line:
    """A serial port as pyfingerprint uses it, with our timing and byte counting.

    pyfingerprint writes and reads one byte per call. Writes are collected
    and sent in one piece before the next read (the sensor sees the same
    bytes, with fewer system calls); reads are served from chunks of
    whatever has arrived. An empty read means the sensor said nothing for
    ``reply_timeout`` seconds: raise instead of handing pyfingerprint the
    ``b''`` it mistakes for a byte.
    """

    def __init__(self, port: Any) -> None:
        self.port = port
        self._tx = bytearray()
        self._rx = b""
        self._pos = 0
        self.deadline = float("inf")
        self.received = 0
        self.expected = 0
        self.progress: Callable[[int, int], None] | None = None
        self._next_report = 0

    # called by pyfingerprint
    def write(self, data: bytes) -> int:
        self._tx += data
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if self._tx:
            self.port.write(bytes(self._tx))
            self._tx.clear()
        if self._pos >= len(self._rx):
            if time.monotonic() > self.deadline:
                raise _NoReply("operation took too long")
            waiting = self.port.in_waiting
            chunk = self.port.read(min(max(1, waiting), 4096))
            if not chunk:
                raise _NoReply("no byte within the reply timeout")
            self._rx, self._pos = chunk, 0
            self.received += len(chunk)
            self._report()
        out = self._rx[self._pos : self._pos + size]
        self._pos += len(out)
        return out

    def isOpen(self) -> bool:  # pyfingerprint calls it by this name
        return bool(self.port.is_open)

    def open(self) -> None:
        self.port.open()

    def close(self) -> None:
        self.port.close()

    # used by the driver
    def begin(self, budget: float, expected: int = 0,
              progress: Callable[[int, int], None] | None = None) -> None:
        """Start an operation: drop stale bytes, set its time budget and progress report."""
        self._tx.clear()
        self._rx, self._pos = b"", 0
        self.port.reset_input_buffer()
        self.deadline = time.monotonic() + budget
        self.received = 0
        self.expected = expected
        self.progress = progress
        self._next_report = 0

    def drain(self, quiet: float, limit: float) -> None:
        """Swallow what the sensor is still sending (the tail of an abandoned reply)
        until the line has been quiet for ``quiet`` seconds, or ``limit`` passed."""
        self._rx, self._pos = b"", 0
        self.port.reset_input_buffer()
        end = time.monotonic() + limit
        while time.monotonic() < end:
            time.sleep(quiet)
            waiting = self.port.in_waiting
            if not waiting:
                return
            self.port.read(waiting)

    def end(self) -> None:
        self.progress = None
        self.deadline = float("inf")

    def _report(self) -> None:
        if self.progress is None or self.received < self._next_report:
            return
        self._next_report = self.received + 1024
        try:
            self.progress(min(self.received, self.expected), self.expected)
        except Exception:  # a broken progress bar must not break the capture
            log.exception("fingerprint progress callback failed")


def _private_dir() -> Path:
    """A directory in RAM, readable only by us, for pyfingerprint's image file."""
    for base in ("/dev/shm", os.environ.get("XDG_RUNTIME_DIR", "")):
        if base and os.path.isdir(base) and os.access(base, os.W_OK):
            return Path(tempfile.mkdtemp(prefix="jaranijo-fp-", dir=base))
    log.warning("no RAM disk for the image transfer; using the default temporary directory")
    return Path(tempfile.mkdtemp(prefix="jaranijo-fp-"))


# -- the driver -----------------------------------------------------------------------------
SerialFactory = Callable[[str, int, float], Any]


def _open_serial(url: str, baud: int, timeout: float) -> Any:
    return serial.serial_for_url(url, baudrate=baud, bytesize=serial.EIGHTBITS,
                                 timeout=timeout, write_timeout=timeout)


class ZfmFingerprintSensor:
    """A ZFM / R30x / AS608 fingerprint sensor on a serial port.

    Plug the sensor's USB-UART in (the kit's udev rule names it
    ``/dev/jaranijo/fingerprint``); ``port`` may also be a pyserial URL.
    ``baud`` must be the rate the sensor is set to (57600 from the factory;
    115200 halves the image transfer where the module allows it).
    ``address`` and ``password`` are the module's (factory 0xFFFFFFFF and 0).
    ``finger_timeout`` is how long to wait for a finger by default;
    ``reply_timeout`` how long the sensor may stay silent in a reply (2 s,
    as pyfingerprint uses).

    >>> with ZfmFingerprintSensor("/dev/jaranijo/fingerprint") as sensor:  # doctest: +SKIP
    ...     sensor.system_parameters().capacity
    300
    """

    def __init__(self, port: str, baud: int = 57600, *, address: int = 0xFFFFFFFF,
                 password: int = 0x00000000, finger_timeout: float = 20.0,
                 reply_timeout: float = 2.0, poll_interval: float = 0.1,
                 serial_factory: SerialFactory | None = None) -> None:
        if baud % 9600 or not 1 <= baud // 9600 <= 12:
            raise ValueError(f"baud must be 9600 x N for N 1-12 (57600 or 115200), not {baud}")
        if not 0 <= address <= 0xFFFFFFFF or not 0 <= password <= 0xFFFFFFFF:
            raise ValueError("address and password are 32-bit numbers")
        self.port = port
        self.baud = baud
        self.address = address
        self.password = password
        self.finger_timeout = finger_timeout
        self.reply_timeout = reply_timeout
        self.poll_interval = poll_interval
        self._serial_factory = serial_factory or _open_serial
        self._lock = threading.RLock()
        self._line: _Line | None = None
        self._finger: PyFingerprint | None = None
        self._reconnect = False
        self._image_ready = False
        self._packet_size = 128
        self._capacity = 0

    # -- connection ---------------------------------------------------------------------------
    def __enter__(self) -> ZfmFingerprintSensor:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Open the port and verify the sensor's password."""
        with self._lock:
            self._close_port()
            self._connect("open")

    def close(self) -> None:
        """Close the port (the sensor keeps its templates)."""
        with self._lock:
            self._close_port()
            self._reconnect = False

    @property
    def is_open(self) -> bool:
        return self._finger is not None

    def _close_port(self) -> None:
        line, self._line, self._finger = self._line, None, None
        self._image_ready = False
        if line is not None:
            with contextlib.suppress(Exception):
                line.close()

    def _attach(self, line: _Line) -> PyFingerprint:
        # pyfingerprint 1.5's constructor opens serial.Serial(port=...) itself,
        # which understands neither pyserial URLs nor our timing. Build the
        # object without running the constructor and give it our line through
        # its name-mangled attributes; the rest of the library only uses
        # write(), read(), isOpen() and close() on it. Pinned to ==1.5.
        finger = PyFingerprint.__new__(PyFingerprint)
        finger._PyFingerprint__address = self.address  # type: ignore[attr-defined]
        finger._PyFingerprint__password = self.password  # type: ignore[attr-defined]
        finger._PyFingerprint__serial = line  # type: ignore[attr-defined]
        return finger

    def _connect(self, operation: str) -> None:
        try:
            port = self._serial_factory(self.port, self.baud, self.reply_timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            log.warning("fingerprint port %s: %s", self.port, exc)
            self._reconnect = True
            raise _disconnected(operation) from exc
        line = _Line(port)
        try:
            line.drain(quiet=min(0.05, self.reply_timeout), limit=self.reply_timeout)
        except (serial.SerialException, OSError, termios.error) as exc:
            self._reconnect = True
            with contextlib.suppress(Exception):
                port.close()
            raise _disconnected(operation) from exc
        finger = self._attach(line)
        self._line, self._finger = line, finger
        self._reconnect = False
        try:
            verified = self._run(operation, finger.verifyPassword)
            if verified:
                params = self._run(operation, finger.getSystemParameters)
                self._capacity = int(params[2])
                self._packet_size = PACKET_SIZES[int(params[5]) & 3]
        except DeviceError:
            self._close_port()
            self._reconnect = True
            raise
        if not verified:
            self._close_port()
            raise _error(operation, "wrong_password", "kata sandi sensor salah",
                         "the sensor's password is wrong",
                         "Samakan devices.fingerprint.password di konfigurasi kit dengan "
                         "sensor, atau hubungi teknisi",
                         "Make devices.fingerprint.password in the kit configuration match "
                         "the sensor, or call the technician")
        log.info("fingerprint sensor open on %s at %d baud", self.port, self.baud)

    def _ready(self, operation: str) -> PyFingerprint:
        """The open sensor; reopen it first if the last call hit a transport fault."""
        if self._finger is None or self._reconnect:
            self._close_port()
            self._connect(operation)
        assert self._finger is not None
        return self._finger

    def _run(self, operation: str, call: Callable[[], Any], *, budget: float | None = None,
             expected: int = 0, progress: Callable[[int, int], None] | None = None) -> Any:
        """One pyfingerprint call, bounded in time, with its faults as DeviceError."""
        line = self._line
        assert line is not None
        try:
            line.begin(budget if budget is not None else 4 * self.reply_timeout,
                       expected, progress)
            return call()
        except _NoReply as exc:
            self._reconnect = True
            raise _timeout(operation) from exc
        except (serial.SerialException, OSError, termios.error) as exc:
            # termios.error: the port's flush or settings failed, the USB-UART is gone
            self._reconnect = True
            raise _disconnected(operation) from exc
        except Exception as exc:
            # pyfingerprint raises bare Exception for protocol faults, and
            # TypeError / IndexError / struct.error on replies it misparses.
            raise self._translate(operation, exc) from exc
        finally:
            line.end()

    def _translate(self, operation: str, exc: Exception) -> DeviceError:
        text = str(exc)
        fault = _SENSOR_FAULTS.get(text)
        if fault is not None:
            code, id_, en, hint_id, hint_en = fault
            if code == "password":
                self._reconnect = True
            return _error(operation, code, id_, en, hint_id, hint_en)
        log.warning("fingerprint %s: garbled reply (%s: %s)", operation,
                    type(exc).__name__, text[:80])
        self._reconnect = True  # resynchronise: reopen, flush, verify again
        return _garbled(operation)

    # -- fingers ------------------------------------------------------------------------------
    def _read_image(self, operation: str) -> bool:
        finger = self._ready(operation)
        return bool(self._run(operation, finger.readImage))

    def wait_for_finger(self, timeout: float | None = None,
                        cancel: threading.Event | None = None) -> bool:
        """Wait until a finger is on the glass: True when it is, False if ``cancel`` was set.

        Raises DeviceError (code ``no_finger``) when ``timeout`` seconds
        (default ``finger_timeout``) pass without a finger. Returns within
        ``timeout`` plus one reply timeout.
        """
        limit = self.finger_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        with self._lock:
            while True:
                if cancel is not None and cancel.is_set():
                    return False
                if self._read_image("wait_for_finger"):
                    self._image_ready = True
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _error("wait_for_finger", "no_finger",
                                 f"tidak ada jari dalam {limit:g} detik",
                                 f"no finger within {limit:g} s",
                                 "Minta warga meletakkan jari rata di kaca sensor, lalu coba lagi",
                                 "Ask the resident to lay the finger flat on the glass, then "
                                 "retry")
                pause = min(self.poll_interval, remaining)
                if cancel is not None:
                    cancel.wait(pause)
                else:
                    time.sleep(pause)

    def _wait_for_lift(self, operation: str, timeout: float,
                       cancel: threading.Event | None) -> None:
        deadline = time.monotonic() + timeout
        while self._read_image(operation):
            if cancel is not None and cancel.is_set():
                raise _cancelled(operation)
            if time.monotonic() > deadline:
                raise _error(operation, "finger_not_lifted", "jari belum diangkat",
                             "the finger was not lifted", "Angkat jari lalu letakkan lagi",
                             "Lift the finger, then place it again")
            time.sleep(self.poll_interval)
        self._image_ready = False

    # -- capture ------------------------------------------------------------------------------
    def capture(self, progress: Callable[[int, int], None] | None = None) -> FingerImage:
        """Download the image of the finger on the glass, then let the sensor judge it.

        Call after :meth:`wait_for_finger` (or with a finger already on the
        glass). ``progress(received, expected)`` is called with byte counts
        about every kilobyte of the multi-second transfer (6.95 s at 57600
        baud, 3.47 s at 115200 with the default 128-byte packets).
        """
        operation = "capture"
        with self._lock:
            finger = self._ready(operation)
            if not self._image_ready and not self._run(operation, finger.readImage):
                raise _error(operation, "no_finger", "tidak ada jari di sensor",
                             "no finger on the sensor", "Letakkan jari di kaca sensor",
                             "Place a finger on the sensor glass")
            self._image_ready = False  # the download below uses it up either way
            expected = wire_bytes(self._packet_size)
            budget = self.reply_timeout + 1.5 * expected * 10 / self.baud
            workdir = _private_dir()
            try:
                path = workdir / "finger.png"
                # Download before converting: convertImage overwrites the
                # sensor's image buffer (the download would then be black).
                self._run(operation, lambda: finger.downloadImage(str(path)), budget=budget,
                          expected=expected, progress=progress)
                png = path.read_bytes()
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            if progress is not None:
                progress(expected, expected)
            pixels = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
            if pixels is None or pixels.shape != (HEIGHT, WIDTH):
                raise _garbled(operation)
            code = self._convert(operation, finger, 1)
            return FingerImage(pixels=pixels, png=png, sensor_code=code)

    def _convert(self, operation: str, finger: PyFingerprint, buffer: int) -> int:
        """The sensor's feature extraction on its image buffer: its confirmation code."""

        def convert() -> int:
            try:
                finger.convertImage(buffer)
            except Exception as exc:
                code = _CONVERT_TEXTS.get(str(exc))
                if code is None:
                    raise
                return code
            return CONVERT_OK

        return int(self._run(operation, convert))

    def quality(self, image: FingerImage) -> Quality:
        """The image's score (see the module docstring) and the sensor's verdict, combined."""
        return fingerprint_quality(image.pixels, image.sensor_code)

    # -- identity -----------------------------------------------------------------------------
    def system_parameters(self) -> SensorInfo:
        """The sensor's status, identity and settings, and how many templates it holds."""
        operation = "system_parameters"
        with self._lock:
            finger = self._ready(operation)
            params = self._run(operation, finger.getSystemParameters)
            count = self._run(operation, finger.getTemplateCount)
        return SensorInfo(status=int(params[0]), system_id=int(params[1]),
                          capacity=int(params[2]), security_level=int(params[3]),
                          address=int(params[4]), packet_size=PACKET_SIZES[int(params[5]) & 3],
                          baud=int(params[6]) * 9600, templates=int(count))

    def set_sensor_baud(self, baud: int) -> None:
        """Store a new line rate in the sensor; it applies from the sensor's next power-up.

        Afterwards set ``devices.fingerprint.baud`` to the same value and
        power the sensor off and on (unplug it).
        """
        if baud % 9600 or not 1 <= baud // 9600 <= 12:
            raise ValueError(f"baud must be 9600 x N for N 1-12, not {baud}")
        operation = "set_baud"
        with self._lock:
            finger = self._ready(operation)
            self._run(operation, lambda: finger.setBaudRate(baud))
        log.info("fingerprint sensor set to %d baud from its next power-up", baud)

    # -- officer login ------------------------------------------------------------------------
    def enroll_officer(self, slot_hint: int | None = None, *, timeout: float | None = None,
                       cancel: threading.Event | None = None,
                       prompt: Callable[[str], None] | None = None) -> int:
        """Enrol an officer's finger for login: two impressions, one template in the sensor.

        ``prompt`` is told what to ask the officer: ``"place"``, ``"lift"``,
        ``"place-again"``. ``slot_hint`` is the template position to use
        (default: the first free one). Returns the position.
        """
        operation = "enroll_officer"
        limit = self.finger_timeout if timeout is None else timeout
        tell = prompt or (lambda step: None)
        with self._lock:
            finger = self._ready(operation)
            if slot_hint is not None and not 0 <= slot_hint < self._capacity:
                raise _error(operation, "bad_position", f"posisi {slot_hint} tidak ada",
                             f"there is no position {slot_hint}",
                             f"Pilih posisi 0-{self._capacity - 1}",
                             f"Choose a position 0-{self._capacity - 1}")
            for buffer, step in ((1, "place"), (2, "place-again")):
                if buffer == 2:
                    tell("lift")
                    self._wait_for_lift(operation, limit, cancel)
                tell(step)
                if not self.wait_for_finger(limit, cancel):
                    raise _cancelled(operation)
                self._image_ready = False
                code = self._convert(operation, finger, buffer)
                if code != CONVERT_OK:
                    raise _poor_capture(operation, code)
            if not self._run(operation, finger.createTemplate):
                raise _error(operation, "mismatch", "dua tempelan jari tidak cocok",
                             "the two impressions do not match",
                             "Ulangi pendaftaran dengan jari yang sama",
                             "Enrol again with the same finger")
            position = -1 if slot_hint is None else slot_hint
            stored = self._run(operation, lambda: finger.storeTemplate(position, 1),
                               budget=12 * self.reply_timeout)
        log.info("officer template stored at position %d", stored)
        return int(stored)

    def identify_officer(self, *, timeout: float | None = None,
                         cancel: threading.Event | None = None) -> tuple[int, int] | None:
        """Find the officer whose finger is placed: (position, score), or None if unknown."""
        operation = "identify_officer"
        limit = self.finger_timeout if timeout is None else timeout
        with self._lock:
            finger = self._ready(operation)
            if not self.wait_for_finger(limit, cancel):
                raise _cancelled(operation)
            self._image_ready = False
            code = self._convert(operation, finger, 1)
            if code != CONVERT_OK:
                raise _poor_capture(operation, code)
            position, score = self._run(operation, finger.searchTemplate)
        if position < 0:
            return None
        return int(position), int(score)

    def delete_officer(self, position: int) -> None:
        """Remove an officer's template from the sensor."""
        operation = "delete_officer"
        with self._lock:
            finger = self._ready(operation)
            if not 0 <= position < self._capacity:
                raise _error(operation, "bad_position", f"posisi {position} tidak ada",
                             f"there is no position {position}",
                             f"Pilih posisi 0-{self._capacity - 1}",
                             f"Choose a position 0-{self._capacity - 1}")
            if not self._run(operation, lambda: finger.deleteTemplate(position)):
                raise _error(operation, "delete_failed", "templat gagal dihapus",
                             "the template could not be deleted", "Coba lagi", "Retry")

    def officer_positions(self) -> list[int]:
        """Template positions in use (officers enrolled on this sensor)."""
        operation = "officer_positions"
        used: list[int] = []
        with self._lock:
            finger = self._ready(operation)
            for page in range(4):
                if page * 256 >= self._capacity:
                    break
                index = self._run(operation, lambda p=page: finger.getTemplateIndex(p))
                used += [page * 256 + i for i, on in enumerate(index)
                         if on and page * 256 + i < self._capacity]
        return used


def _poor_capture(operation: str, code: int) -> DeviceError:
    reason = _SENSOR_REASONS.get(code, _SENSOR_REASONS[CONVERT_INVALID])
    return _error(operation, "poor_capture", reason[0], reason[1], reason[2], reason[3])


# -- quality ---------------------------------------------------------------------------------
_SENSOR_REASONS = {
    CONVERT_MESSY: ("gambar sidik jari terlalu kotor", "the fingerprint image is too messy",
                    "Bersihkan dan keringkan jari serta kaca sensor, lalu ulangi",
                    "Clean and dry the finger and the glass, then retry"),
    CONVERT_FEW_FEATURES: ("ciri sidik jari terlalu sedikit", "too few fingerprint features",
                           "Tekan jari lebih rata dan sedikit lebih kuat",
                           "Press the finger flatter and a little firmer"),
    CONVERT_INVALID: ("gambar sidik jari tidak sah", "invalid fingerprint image",
                      "Letakkan jari di tengah kaca lalu ulangi",
                      "Place the finger in the middle of the glass and retry"),
}
_PART_REASONS = {
    "coverage": ("Jari kurang menempel: letakkan ujung jari rata di tengah kaca",
                 "The finger covers too little: lay the fingertip flat in the middle"),
    "clarity": ("Alur sidik jari kabur: bersihkan jari dan kaca, jangan digeser",
                "The ridges are blurred: clean the finger and glass, do not slide"),
    "contrast": ("Kontras rendah: jari terlalu kering atau basah",
                 "Low contrast: the finger is too dry or too wet"),
}
_BLOCK = 16


@dataclass(frozen=True)
class ImageMeasures:
    """The three measures the fingerprint score is made of (see the module docstring)."""

    coverage: float  # share of blocks with ridges, 0..1
    clarity: float  # mean orientation coherence of those blocks, 0..1
    contrast: float  # median ridge-valley standard deviation, grey levels


def measure(pixels: np.ndarray) -> ImageMeasures:
    """Coverage, ridge clarity and contrast of a grey fingerprint image."""
    if pixels.ndim != 2 or min(pixels.shape) < _BLOCK:
        raise ValueError("a fingerprint image is a 2-D grey array at least 16 x 16")
    grey = pixels.astype(np.float32)
    ridges = grey - cv2.GaussianBlur(grey, (0, 0), 4.0)
    gx = cv2.Sobel(ridges, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(ridges, cv2.CV_32F, 0, 1, ksize=3)
    hb, wb = ridges.shape[0] // _BLOCK, ridges.shape[1] // _BLOCK

    def blocks(a: np.ndarray) -> np.ndarray:
        return a[: hb * _BLOCK, : wb * _BLOCK].reshape(hb, _BLOCK, wb, _BLOCK)

    gxx = blocks(gx * gx).sum(axis=(1, 3))
    gyy = blocks(gy * gy).sum(axis=(1, 3))
    gxy = blocks(gx * gy).sum(axis=(1, 3))
    coherence = np.sqrt((gxx - gyy) ** 2 + 4 * gxy**2) / (gxx + gyy + 1e-6)
    spread = blocks(ridges).std(axis=(1, 3))
    fg = spread > 8.0
    if not fg.any():
        return ImageMeasures(0.0, 0.0, 0.0)
    return ImageMeasures(coverage=float(fg.mean()), clarity=float(coherence[fg].mean()),
                         contrast=float(np.median(spread[fg])))


def _band(value: float, low: float, high: float) -> float:
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


def fingerprint_quality(pixels: np.ndarray, sensor_code: int | None = None,
                        threshold: int = QUALITY_THRESHOLD) -> Quality:
    """A 0-100 score for a fingerprint image, the pass mark, and what to fix first.

    >>> blank = np.full((288, 256), 230, np.uint8)
    >>> q = fingerprint_quality(blank)
    >>> q.score, q.ok, q.reason_en.split(":")[0]
    (0, False, 'The finger covers too little')
    """
    m = measure(pixels)
    parts = {
        "coverage": _band(m.coverage, 0.15, 0.55),
        "clarity": _band(m.clarity, 0.40, 0.85),
        "contrast": _band(m.contrast, 6.0, 30.0),
    }
    score = round(100 * parts["coverage"] * parts["clarity"] ** 0.5 * parts["contrast"] ** 0.5)
    if sensor_code not in (None, CONVERT_OK):
        reason = _SENSOR_REASONS.get(int(sensor_code), _SENSOR_REASONS[CONVERT_INVALID])
        return Quality(min(score, threshold - 1), threshold,
                       f"{reason[0][0].upper()}{reason[0][1:]}: {reason[2].lower()}",
                       f"{reason[1][0].upper()}{reason[1][1:]}: {reason[3].lower()}")
    if score >= threshold:
        return Quality(score, threshold, "Sidik jari jelas", "Clear fingerprint")
    # what to fix first: the part that costs the most, coverage counting double
    weakest = min(parts, key=lambda k: parts[k] if k == "coverage" else parts[k] ** 0.5)
    reason_id, reason_en = _PART_REASONS[weakest]
    return Quality(score, threshold, reason_id, reason_en)


# -- from the configuration ------------------------------------------------------------------
class EmulatedZfmSensor(ZfmFingerprintSensor):
    """The real driver talking to :class:`sensors.emulated.zfm.ZfmEmulator` on a pty.

    For ``port = "emulated"``: a desk without the sensor, or a demo. The
    emulator runs until :meth:`close`.
    """

    def __init__(self, directory: str | Path, baud: int = 57600, **kwargs: Any) -> None:
        from sensors.emulated.zfm import ZfmEmulator

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.emulator = ZfmEmulator(directory / "fingerprint", baud=baud, state_dir=directory)
        self.emulator.start()
        super().__init__(str(directory / "fingerprint"), baud=baud, **kwargs)

    def close(self) -> None:
        super().close()
        self.emulator.stop()


def fingerprint_sensor(section: FingerprintSection, *, runtime_dir: str | Path | None = None
                       ) -> ZfmFingerprintSensor:
    """The sensor ``[devices.fingerprint]`` describes (not yet opened).

    ``port = "emulated"`` starts the emulated twin in ``runtime_dir`` (its
    template library is kept there).
    """
    if not section.enabled:
        raise _error("configure", "disabled", "sensor dinonaktifkan di konfigurasi",
                     "the sensor is disabled in the configuration",
                     "Aktifkan devices.fingerprint.enabled bila sensor terpasang",
                     "Set devices.fingerprint.enabled when the sensor is fitted")
    common: dict[str, Any] = {"address": section.address, "password": section.password,
                              "finger_timeout": section.finger_timeout_s}
    if section.port == "emulated":
        where = Path(runtime_dir) if runtime_dir else Path(tempfile.mkdtemp(prefix="zfm-"))
        return EmulatedZfmSensor(where, baud=section.baud, **common)
    return ZfmFingerprintSensor(section.port, baud=section.baud, **common)
