"""Garbage on the fingerprint sensor's line, from both ends.

* The emulated sensor's packet parser and command handling get random and
  mutated host packets: only the documented events come out, a valid
  packet after the garbage is still understood, and the running emulator
  keeps answering.
* The driver's reply handling (our line under pyfingerprint 1.5) gets
  random and mutated sensor replies through a scripted serial port: only
  :class:`~sensors.errors.DeviceError` escapes, and every call returns within
  its time budget.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
import serial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensors.emulated import fingerprints
from sensors.emulated.zfm import (
    COMMANDS,
    BadChecksum,
    Packet,
    PacketParser,
    Skipped,
    ZfmEmulator,
    encode_packet,
)
from sensors.errors import DeviceError
from sensors.fingerprint import IMAGE_BYTES, FingerImage, ZfmFingerprintSensor

pytestmark = pytest.mark.hil

ADDRESS = 0xFFFFFFFF
FUZZ = settings(deadline=None, max_examples=200,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
MAX_PENDING = 9 + 258  # one header and the longest packet a host may send

host_packets = st.builds(
    encode_packet,
    st.integers(0, 0xFFFFFFFF) | st.just(ADDRESS),
    st.sampled_from([0x01, 0x02, 0x08]),
    st.binary(min_size=1, max_size=64),
)


# -- the emulator's host-packet parser ------------------------------------------------------
@FUZZ
@given(data=st.binary(max_size=2048), cuts=st.lists(st.integers(0, 2048), max_size=8))
def test_parser_takes_any_bytes(data: bytes, cuts: list[int]) -> None:
    parser = PacketParser()
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    for start, end in itertools.pairwise(bounds):
        for event in parser.feed(data[start:end]):
            assert isinstance(event, Packet | BadChecksum | Skipped)
            if isinstance(event, Skipped):
                assert event.count > 0 and event.reason
        assert len(parser._buf) <= MAX_PENDING


@FUZZ
@given(garbage=st.binary(max_size=300).map(lambda b: b.replace(b"\xef", b"")),
       packet=host_packets, split=st.integers(0, 400))
def test_parser_finds_a_packet_after_garbage(garbage: bytes, packet: bytes, split: int) -> None:
    parser = PacketParser()
    stream = garbage + packet
    split = min(split, len(stream))
    events = parser.feed(stream[:split]) + parser.feed(stream[split:])
    found = [e for e in events if not isinstance(e, Skipped)]
    assert found == [Packet(int.from_bytes(packet[2:6], "big"), packet[6], packet[9:-2])]
    assert sum(e.count for e in events if isinstance(e, Skipped)) == len(garbage)
    assert not parser.pending


@FUZZ
@given(packet=host_packets, index=st.integers(0, 80), value=st.integers(0, 255),
       follow=host_packets)
def test_parser_recovers_from_a_mutated_packet(packet: bytes, index: int, value: int,
                                               follow: bytes) -> None:
    parser = PacketParser()
    mutated = bytearray(packet)
    where = index % len(mutated)
    mutated[where] = value
    events = parser.feed(bytes(mutated))
    assert all(isinstance(e, Packet | BadChecksum | Skipped) for e in events)
    if where >= 9 and value != packet[where]:
        # header intact, payload or checksum damaged: one byte always shows in the sum
        assert events == [BadChecksum(int.from_bytes(packet[2:6], "big"), packet[6],
                                      "checksum does not add up")]
    parser.reset()  # the sensor's inter-byte timeout before the next packet
    assert parser.feed(follow) == [
        Packet(int.from_bytes(follow[2:6], "big"), follow[6], follow[9:-2])]


# -- the running emulator -------------------------------------------------------------------
# setPassword and setAddress are left out: they would (rightly) lock the
# liveness check below out of the sensor.
SAFE_COMMANDS = sorted(set(COMMANDS) - {0x12, 0x15})


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZfmEmulator]:
    where = tmp_path_factory.mktemp("zfm-fuzz")
    emu = ZfmEmulator(where / "fingerprint", baud=115200, state_dir=where, work_scale=0)
    emu.start()
    emu.control("cooperative", "off")  # no image: downloads answer at once with 0x0F
    yield emu
    emu.stop()


def _drain(port: serial.Serial, quiet: float = 0.03, limit: float = 2.0) -> bytes:
    """Read what the sensor sends until the line has been quiet for ``quiet`` seconds."""
    got = bytearray()
    end = time.monotonic() + limit
    while time.monotonic() < end:
        time.sleep(quiet)
        if not port.in_waiting:
            break
        got += port.read(port.in_waiting)
    return bytes(got)


def _ask_parameters(port: serial.Serial) -> bytes:
    port.write(encode_packet(ADDRESS, 0x01, b"\x0f"))
    return port.read(12 + 16)


def _random_host_traffic() -> st.SearchStrategy[bytes]:
    command = st.builds(lambda code, args: bytes([code]) + args,
                        st.sampled_from(SAFE_COMMANDS), st.binary(max_size=8))
    good = st.builds(lambda payload: encode_packet(ADDRESS, 0x01, payload), command)
    bad_sum = good.map(lambda p: p[:-1] + bytes([p[-1] ^ 0xFF]))
    other = st.builds(lambda payload: encode_packet(0x01020304, 0x01, payload), command)
    noise = st.binary(max_size=40)
    return st.lists(good | bad_sum | other | noise | host_packets, max_size=6).map(b"".join)


@settings(FUZZ, max_examples=60)  # each example waits out the sensor's 0.2 s line timeout
@given(traffic=_random_host_traffic())
def test_emulator_keeps_answering_after_any_traffic(emulator: ZfmEmulator,
                                                    traffic: bytes) -> None:
    # Traffic ending in half a packet leaves the sensor waiting for the rest (its own
    # parser, fed the same bytes, says so): only then must the host wait out the 0.2 s
    # inter-byte timeout, as a real host would. Otherwise the next command goes at once.
    half_packet = PacketParser()
    half_packet.feed(traffic)
    with serial.serial_for_url(str(emulator.link), baudrate=115200, timeout=1.0) as port:
        port.write(traffic)
        _drain(port)
        if half_packet.pending:
            # The time under test: past the sensor's 0.2 s inter-byte timeout, with room for
            # the emulator's thread to have been scheduled late when the bytes came.
            time.sleep(0.3)
        _drain(port, quiet=0.05)
        reply = _ask_parameters(port)
    assert reply[:6] == b"\xef\x01\xff\xff\xff\xff" and reply[6] == 0x07
    assert reply[9] == 0x00, "getSystemParameters answered OK"
    assert int.from_bytes(reply[-2:], "big") == sum(reply[6:-2]) & 0xFFFF


def test_emulator_answers_bad_checksum_and_ignores_other_addresses(
        emulator: ZfmEmulator) -> None:
    with serial.serial_for_url(str(emulator.link), baudrate=115200, timeout=1.0) as port:
        _drain(port)
        good = encode_packet(ADDRESS, 0x01, b"\x1d")
        port.write(good[:-1] + bytes([good[-1] ^ 1]))
        assert port.read(12) == encode_packet(ADDRESS, 0x07, b"\x01")
        port.write(encode_packet(0x0000_0001, 0x01, b"\x1d"))
        assert _drain(port, quiet=0.2) == b""
        port.write(b"\x00\x13\x37" + good)  # line noise first, then a real command
        count = len(emulator.templates).to_bytes(2, "big")
        assert port.read(14) == encode_packet(ADDRESS, 0x07, b"\x00" + count)


# -- the driver's reply handling ------------------------------------------------------------
class ScriptedPort:
    """A serial port whose sensor answers each command with the next scripted reply.

    Bytes of a reply become readable only after the host writes its
    command (as on a wire); a read with nothing left waits ``timeout``
    and returns b'', as pyserial does.
    """

    def __init__(self, replies: list[bytes], timeout: float) -> None:
        self._replies = list(replies)
        self._rx = bytearray()
        self.timeout = timeout
        self.is_open = True

    def write(self, data: bytes) -> int:
        if self._replies:
            self._rx += self._replies.pop(0)
        return len(data)

    @property
    def in_waiting(self) -> int:
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        if not self._rx:
            time.sleep(self.timeout)  # what a serial port does: nothing came within its timeout
            return b""
        out = bytes(self._rx[:size])
        del self._rx[:size]
        return out

    def reset_input_buffer(self) -> None:
        self._rx.clear()

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False


REPLY_TIMEOUT = 0.01


def ack(payload: bytes) -> bytes:
    return encode_packet(ADDRESS, 0x07, payload)


OPEN_REPLIES = [
    ack(b"\x00"),  # verifyPassword
    ack(b"\x00" + bytes.fromhex("0004 0009 012c 0003 ffffffff 0002 0006")),  # parameters
]


def image_stream(pixels: np.ndarray, packet: int = 128, keep: int | None = None) -> bytes:
    """The sensor's reply to downloadImage; ``keep`` cuts the image data short (the last
    packet still marked end of data)."""
    data = fingerprints.pack_4bit(pixels)[:keep]
    chunks = [data[i : i + packet] for i in range(0, len(data), packet)]
    out = [ack(b"\x00")]
    out += [encode_packet(ADDRESS, 0x02, c) for c in chunks[:-1]]
    out.append(encode_packet(ADDRESS, 0x08, chunks[-1]))
    return b"".join(out)


def scripted_sensor(replies: list[bytes]) -> ZfmFingerprintSensor:
    return ZfmFingerprintSensor("scripted://", 57600, reply_timeout=REPLY_TIMEOUT,
                                serial_factory=lambda url, baud, t: ScriptedPort(replies, t))


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    for index, value in edits:
        out[index % len(out)] = value
    return bytes(out[:cut]) if cut is not None else bytes(out)


def test_scripted_port_delivers_a_real_capture() -> None:
    """The harness below is sound: a clean script gives the exact image."""
    pixels = fingerprints.synthesize("warga-0401", 4)
    sensor = scripted_sensor([*OPEN_REPLIES, ack(b"\x00"), image_stream(pixels), ack(b"\x00")])
    sensor.open()
    image = sensor.capture()
    assert isinstance(image, FingerImage) and image.sensor_code == 0
    assert np.array_equal(image.pixels, fingerprints.quantize_4bit(pixels))


@FUZZ
@given(stream=st.binary(max_size=600))
def test_driver_open_survives_random_replies(stream: bytes) -> None:
    sensor = scripted_sensor([stream])
    start = time.monotonic()
    try:
        sensor.open()
    except DeviceError as exc:
        assert exc.device == "fingerprint" and exc.operation == "open"
        assert exc.code in {"timeout", "garbled", "wrong_password", "password", "image_failed",
                            "flash", "bad_position"}
    assert time.monotonic() - start < 2 * 4 * REPLY_TIMEOUT + 1.0


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
       cut=st.none() | st.integers(0, 80), junk=st.binary(max_size=20))
def test_driver_open_survives_mutated_replies(edits: list[tuple[int, int]], cut: int | None,
                                              junk: bytes) -> None:
    replies = [junk + mutate(OPEN_REPLIES[0], edits, None),
               mutate(OPEN_REPLIES[1], edits[::-1], cut)]
    sensor = scripted_sensor(replies)
    start = time.monotonic()
    try:
        sensor.open()
        info = sensor.system_parameters()  # the script is spent: must time out cleanly
        pytest.fail(f"an empty line answered: {info}")
    except DeviceError as exc:
        assert exc.device == "fingerprint"
    assert time.monotonic() - start < 3 * 4 * REPLY_TIMEOUT + 1.0


PIXELS = fingerprints.synthesize("warga-0402", 6)
CLEAN_DOWNLOAD = image_stream(PIXELS)


@settings(deadline=None, max_examples=40)
@given(edits=st.lists(st.tuples(st.integers(0, len(CLEAN_DOWNLOAD) - 1),
                                st.integers(0, 255)), min_size=1, max_size=3),
       cut=st.none() | st.integers(0, len(CLEAN_DOWNLOAD)))
def test_driver_capture_survives_mutated_downloads(edits: list[tuple[int, int]],
                                                   cut: int | None) -> None:
    stream = mutate(CLEAN_DOWNLOAD, edits, cut)
    sensor = scripted_sensor([*OPEN_REPLIES, ack(b"\x00"), stream, ack(b"\x00")])
    sensor.open()
    start = time.monotonic()
    try:
        image = sensor.capture()
    except DeviceError as exc:
        assert exc.device == "fingerprint" and exc.operation == "capture"
        assert exc.code in {"timeout", "garbled", "image_failed"}
    else:
        # only edits that leave framing and checksums intact can get through,
        # e.g. a changed byte and its checksum changed to match: a valid image
        assert image.pixels.shape == (288, 256)
    assert time.monotonic() - start < 4 * REPLY_TIMEOUT + 2.0


class Trickle(ScriptedPort):
    """A sensor that answers with a header claiming 65,533 bytes, then dribbles them."""

    def __init__(self, timeout: float) -> None:
        super().__init__([], timeout)
        self._answering = False
        self._header = b"\xef\x01\xff\xff\xff\xff\x07\xff\xff"

    def write(self, data: bytes) -> int:
        self._answering = True
        return len(data)

    @property
    def in_waiting(self) -> int:
        return 1 if self._answering else 0

    def read(self, size: int = 1) -> bytes:
        if not self._answering:
            time.sleep(self.timeout)  # what a serial port does: nothing came within its timeout
            return b""
        time.sleep(0.0002)  # the dribble: one byte at a time, never quite silent
        if self._header:
            out, self._header = self._header[:1], self._header[1:]
            return out
        return os.urandom(1)


def test_a_never_ending_reply_is_cut_off() -> None:
    budget = 4 * 0.2  # the driver's default per-call budget for this reply timeout
    sensor = ZfmFingerprintSensor("trickle://", 57600, reply_timeout=0.2,
                                  serial_factory=lambda url, baud, t: Trickle(t))
    start = time.monotonic()
    with pytest.raises(DeviceError) as caught:
        sensor.open()
    assert caught.value.code == "timeout"
    assert time.monotonic() - start < 0.2 + budget + 0.5  # drain, then one budget


_WRITING: list[str] = []  # files opened for writing while a test listens
_LISTENING: list[bool] = []


def _note_writes(event: str, args: tuple[object, ...]) -> None:
    # An audit hook cannot be removed, so it stays installed and only listens
    # while a test says so.
    if _LISTENING and event == "open" and len(args) >= 2:
        mode = args[1]
        writes = (any(c in mode for c in "wax+") if isinstance(mode, str)
                  else isinstance(mode, int) and bool(mode & (os.O_WRONLY | os.O_RDWR)))
        if writes:
            _WRITING.append(str(args[0]))


sys.addaudithook(_note_writes)


def test_capture_writes_no_image_file() -> None:
    """A resident's print never lands in a file, not even on a RAM disk for a moment.

    pyfingerprint's own downloadImage saves a PNG through Pillow (after building it one
    pixel at a time, all after the last byte): the driver keeps the packets in memory
    and encodes the PNG itself while the sensor converts."""
    sensor = scripted_sensor([*OPEN_REPLIES, ack(b"\x00"), CLEAN_DOWNLOAD, ack(b"\x00")])
    sensor.open()
    _WRITING.clear()
    _LISTENING.append(True)
    try:
        image = sensor.capture()
    finally:
        _LISTENING.clear()
    assert _WRITING == []
    assert np.array_equal(image.pixels, fingerprints.quantize_4bit(PIXELS))
    decoded = cv2.imdecode(np.frombuffer(image.png, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(decoded, image.pixels)


def test_capture_reports_where_its_time_went() -> None:
    """The bench's breakdown comes from the driver: download, unpacking after the last
    byte, the sensor's convert (with the PNG encoded inside it), the whole call."""
    sensor = scripted_sensor([*OPEN_REPLIES, ack(b"\x00"), CLEAN_DOWNLOAD, ack(b"\x00")])
    sensor.open()
    assert sensor.last_timings is None
    sensor.capture()
    timings = sensor.last_timings
    assert timings is not None
    parts = (timings.download, timings.unpack, timings.convert)
    assert all(part >= 0 for part in (*parts, timings.png))
    assert sum(parts) <= timings.total


def test_a_download_short_of_an_image_is_garbled() -> None:
    """An end-of-data packet before 36,864 bytes is a garbled reply, not a smaller picture."""
    short = image_stream(PIXELS, keep=IMAGE_BYTES // 2)  # framed and checksummed
    sensor = scripted_sensor([*OPEN_REPLIES, ack(b"\x00"), short, ack(b"\x00")])
    sensor.open()
    with pytest.raises(DeviceError) as caught:
        sensor.capture()
    assert caught.value.code == "garbled"
