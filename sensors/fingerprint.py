"""The kit's fingerprint sensor: a ZhianTec ZFM / R30x / AS608 module on a USB-UART.

Driven through pyfingerprint 1.5 (unmodified) on a port opened from a URL: a
path, a pyserial URL such as ``socket://bench:4001`` (a bench), or a pty of
the emulated twin (:mod:`sensors.emulated.zfm`). :class:`FingerprintSensor`
is what the kit relies on; :class:`ZfmFingerprintSensor` is the driver;
:func:`sensors.registry.open_fingerprint` builds one from ``[devices.fingerprint]``.
Residents' templates never go into the sensor: only officers' do. How the
driver lives with pyfingerprint, and why: ``sensors/README.md``. Whether an
image is good enough to keep: :mod:`sensors.fingerprint_quality`.

>>> sensor = ZfmFingerprintSensor("/dev/jaranijo/fingerprint")  # doctest: +SKIP
>>> sensor.open()                                               # doctest: +SKIP
>>> if sensor.wait_for_finger(timeout=20):                      # doctest: +SKIP
...     image = sensor.capture(progress=lambda got, total: print(got, "/", total))
...     sensor.quality(image).ok
"""

from __future__ import annotations

import contextlib
import logging
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import serial
from pyfingerprint.pyfingerprint import (
    FINGERPRINT_ACKPACKET,
    FINGERPRINT_COMMANDPACKET,
    FINGERPRINT_DATAPACKET,
    FINGERPRINT_DOWNLOADIMAGE,
    FINGERPRINT_ENDDATAPACKET,
    FINGERPRINT_ERROR_COMMUNICATION,
    FINGERPRINT_ERROR_DOWNLOADIMAGE,
    FINGERPRINT_OK,
    PyFingerprint,
)

from sensors import Quality
from sensors.errors import DeviceError

# sensors.fingerprint_quality (the score, the sensor's codes and their reasons) and
# OpenCV are imported where they are used, not with this module: both cost ~16 MiB
# resident together, and the agent imports this module (through the device
# registry) without ever capturing a finger.

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

DEVICE = "fingerprint"
WIDTH, HEIGHT = 256, 288
IMAGE_BYTES = WIDTH * HEIGHT // 2  # 4 bits a pixel over the UART
PACKET_OVERHEAD = 11  # start code, address, PID, length, checksum
ACK_BYTES = 12
PACKET_SIZES = (32, 64, 128, 256)


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
class CaptureTimings:
    """Where one :meth:`ZfmFingerprintSensor.capture` spent its time (seconds).

    ``download``: from the command out to the last data packet parsed (the
    wire, plus whatever the parsing lags behind it). ``unpack``: the 4-bit
    pixels to an 8-bit picture, after the last byte. ``convert``: the
    sensor's feature extraction, command to reply. ``png``: encoding the
    PNG, done while the sensor converts (hidden in ``convert`` unless it is
    slower). ``total``: the whole call, as the caller waits for it.
    """

    download: float
    unpack: float
    convert: float
    png: float
    total: float


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
_CONVERT_TEXTS = {  # text: the name of the code in sensors.fingerprint_quality
    "The image is too messy": "CONVERT_MESSY",
    "The image contains too few feature points": "CONVERT_FEW_FEATURES",
    "The image is invalid": "CONVERT_INVALID",
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


_CONVERT_OK = FINGERPRINT_OK  # the sensor's "done": sensors.fingerprint_quality.CONVERT_OK


class _SensorSaid(Exception):
    """A protocol fault in the image download, worded as pyfingerprint 1.5 words it
    (so :meth:`ZfmFingerprintSensor._translate` maps it like the library's own)."""


def _download_image(finger: PyFingerprint) -> bytes:
    """The sensor's image buffer as sent: 36,864 bytes of 4-bit pixel pairs.

    pyfingerprint 1.5's own ``downloadImage`` frames and checks the packets
    with the same ``__writePacket`` / ``__readPacket`` used here, but then,
    after the last byte, builds the picture one pixel at a time through
    Pillow and saves a PNG file: ~45 ms on a PC, several times that on the
    Pi, all on top of the wire time (and a resident's print in a file).
    Here each packet's payload is kept as it is parsed, while the wire is
    still busy, and the picture is made by :func:`unpack_4bit` in one step.
    """
    write = finger._PyFingerprint__writePacket  # type: ignore[attr-defined]
    read = finger._PyFingerprint__readPacket  # type: ignore[attr-defined]
    write(FINGERPRINT_COMMANDPACKET, (FINGERPRINT_DOWNLOADIMAGE,))
    kind, payload = read()
    if kind != FINGERPRINT_ACKPACKET:
        raise _SensorSaid("The received packet is no ack packet!")
    if payload[0] == FINGERPRINT_ERROR_COMMUNICATION:
        raise _SensorSaid("Communication error")
    if payload[0] == FINGERPRINT_ERROR_DOWNLOADIMAGE:
        raise _SensorSaid("Could not download image")
    if payload[0] != FINGERPRINT_OK:
        raise _SensorSaid("Unknown error " + hex(payload[0]))
    data = bytearray()
    while kind != FINGERPRINT_ENDDATAPACKET:
        kind, payload = read()
        if kind not in (FINGERPRINT_DATAPACKET, FINGERPRINT_ENDDATAPACKET):
            raise _SensorSaid("The received packet is no data packet!")
        data += bytes(payload)
    return bytes(data)


def unpack_4bit(data: bytes) -> np.ndarray:
    """288 x 256 8-bit pixels from the sensor's 4-bit pairs (high nibble = even x),
    each level times 17 so 0x0 is black and 0xF white, as pyfingerprint draws them."""
    packed = np.frombuffer(data, np.uint8).reshape(HEIGHT, WIDTH // 2)
    pixels = np.empty((HEIGHT, WIDTH), np.uint8)
    pixels[:, 0::2] = (packed >> 4) * 17
    pixels[:, 1::2] = (packed & 0x0F) * 17
    return pixels


def encode_png(pixels: np.ndarray) -> bytes:
    """The PNG kept in the record (lossless: the quality score and the office see the
    same pixels). OpenCV is imported here, on first use, not with the module."""
    import cv2

    ok, png = cv2.imencode(".png", pixels)
    if not ok:
        raise ValueError("OpenCV could not encode the fingerprint PNG")
    return png.tobytes()


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
        self.last_timings: CaptureTimings | None = None  # the last capture's (for benches)

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
            started = time.perf_counter()
            # Download before converting: convertImage overwrites the
            # sensor's image buffer (the download would then be black).
            data = self._run(operation, lambda: _download_image(finger), budget=budget,
                             expected=expected, progress=progress)
            downloaded = time.perf_counter()
            if progress is not None:
                progress(expected, expected)
            if len(data) != IMAGE_BYTES:
                log.warning("fingerprint capture: %d image bytes, not %d", len(data),
                            IMAGE_BYTES)
                self._reconnect = True
                raise _garbled(operation)
            pixels = unpack_4bit(data)
            unpacked = time.perf_counter()
            # The sensor needs ~0.1-0.5 s to extract features and the line is
            # idle meanwhile: encode the PNG then (OpenCV lets go of the GIL,
            # and this thread waits on the port) instead of after the reply.
            encoded: list[bytes] = []
            png_seconds: list[float] = []

            def encode() -> None:
                t0 = time.perf_counter()
                encoded.append(encode_png(pixels))
                png_seconds.append(time.perf_counter() - t0)

            encoder = threading.Thread(target=encode, name="fingerprint-png", daemon=True)
            encoder.start()
            try:
                code = self._convert(operation, finger, 1)
            finally:
                converted = time.perf_counter()
                encoder.join()
            if not encoded:
                raise _garbled(operation)
            done = time.perf_counter()
            self.last_timings = CaptureTimings(
                download=downloaded - started, unpack=unpacked - downloaded,
                convert=converted - unpacked, png=png_seconds[0], total=done - started)
            return FingerImage(pixels=pixels, png=encoded[0], sensor_code=code)

    def _convert(self, operation: str, finger: PyFingerprint, buffer: int) -> int:
        """The sensor's feature extraction on its image buffer: its confirmation code."""
        from sensors import fingerprint_quality as rules

        def convert() -> int:
            try:
                finger.convertImage(buffer)
            except Exception as exc:
                name = _CONVERT_TEXTS.get(str(exc))
                if name is None:
                    raise
                return int(getattr(rules, name))
            return rules.CONVERT_OK

        return int(self._run(operation, convert))

    def quality(self, image: FingerImage) -> Quality:
        """The image's score (see the module docstring) and the sensor's verdict, combined."""
        from sensors.fingerprint_quality import fingerprint_quality

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
                if code != _CONVERT_OK:
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
            if code != _CONVERT_OK:
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
    from sensors.fingerprint_quality import CONVERT_INVALID, SENSOR_REASONS

    reason = SENSOR_REASONS.get(code, SENSOR_REASONS[CONVERT_INVALID])
    return _error(operation, "poor_capture", reason[0], reason[1], reason[2], reason[3])
