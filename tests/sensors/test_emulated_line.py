"""The emulated UART's line clock: replies sent as many writes stream back to back.

A real ZFM module sends an image as 288 data packets straight from its buffer,
one after the other on the wire. The emulator frames each packet in Python
between two port writes; these tests check that this framing costs no idle line
(each write queues behind the bytes still on the line), that bytes still never
go into the pty before a real 8N1 UART would start sending them, and that the
per-packet semantics survive: an armed fault hits exactly the next reply packet,
and an unplug, power cycle or stall mid-upload loses the rest.

No wall-clock timing is asserted: the port runs on a simulated clock
(:class:`SimulatedClock`: sleeping moves it on at once, the device's framing
work is charged explicitly), and the assertions are on the bytes that arrive
and on the schedule the port computed (:class:`sensors.emulated.port.Slice`).
"""

from __future__ import annotations

import itertools
import logging
import os
import select
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from sensors.emulated import fingerprints
from sensors.emulated.port import BITS_PER_BYTE, EmulatedPort, PortUnplugged, Slice
from sensors.emulated.zfm import (
    PACKET_SIZES,
    PID_ACK,
    PID_DATA,
    PID_END,
    ZfmEmulator,
    encode_packet,
)
from sensors.fingerprint import wire_bytes

ADDRESS = 0xFFFFFFFF
BAUD = 115200
PER_BYTE = BITS_PER_BYTE / BAUD
FRAMING = 0.0003  # simulated seconds the device spends framing each packet between writes


class SimulatedClock:
    """A clock for the port's pacing: ``sleep`` moves it on at once, ``work`` charges
    the device's own processing, nothing else moves it (so the schedule is exact)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    def work(self, seconds: float) -> None:
        self.now += seconds


def read_fd(fd: int, count: int, limit: float = 10.0) -> bytes:
    """Up to ``count`` bytes from a raw fd, as they come (``limit`` only stops a failure)."""
    got = bytearray()
    end = time.monotonic() + limit
    while len(got) < count and time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            got += os.read(fd, count - len(got))
    return bytes(got)


def nothing_more(fd: int) -> bool:
    """True if no further byte is waiting (the writes are done when this is asked)."""
    ready, _, _ = select.select([fd], [], [], 0.05)
    return not ready


def assert_one_unbroken_stream(slices: list[Slice], total: int, *, on_time: bool = True) -> None:
    """The slices follow each other on the line with no gap, and none went into the pty
    before its first byte starts on the line (never ahead of a real UART). ``on_time``:
    each went in exactly then, not behind either (no drift)."""
    assert sum(s.size for s in slices) == total
    for before, after in itertools.pairwise(slices):
        assert after.starts_at == pytest.approx(before.ends_at, abs=1e-9)
    for s in slices:
        assert s.written_at >= s.starts_at - 1e-9
        if on_time:
            assert s.written_at == pytest.approx(s.starts_at, abs=1e-9)
        assert s.ends_at - s.starts_at == pytest.approx(s.size * PER_BYTE, abs=1e-9)
    assert slices[-1].ends_at - slices[0].starts_at == pytest.approx(total * PER_BYTE,
                                                                     abs=1e-9)


# -- the port on its own --------------------------------------------------------------------
@pytest.fixture
def line(tmp_path: Path) -> Iterator[tuple[EmulatedPort, SimulatedClock, list[Slice], int]]:
    clock = SimulatedClock()
    port = EmulatedPort(tmp_path / "line", baud=BAUD, clock=clock, sleep=clock.sleep)
    slices: list[Slice] = []
    port.trace = slices.append
    reader = os.open(port.path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    yield port, clock, slices, reader
    os.close(reader)
    port.close()


def test_writes_made_while_the_line_is_busy_follow_back_to_back(
        line: tuple[EmulatedPort, SimulatedClock, list[Slice], int]) -> None:
    port, clock, slices, reader = line
    packets = [encode_packet(ADDRESS, PID_DATA, bytes([n]) * 128) for n in range(12)]
    total = sum(map(len, packets))
    first_call = clock() + FRAMING
    for packet in packets:
        clock.work(FRAMING)  # framing the packet: the previous one is still on the line
        port.write(packet)
    assert read_fd(reader, total) == b"".join(packets)
    assert nothing_more(reader)
    assert slices[0].starts_at == pytest.approx(first_call)  # the line was idle then
    assert_one_unbroken_stream(slices, total)
    assert len(slices) > len(packets)  # paced in slices, not whole packets at once


def test_queued_writes_made_late_keep_the_schedule_and_catch_up(
        line: tuple[EmulatedPort, SimulatedClock, list[Slice], int]) -> None:
    """The rest of one reply, already in the device's buffer, handed over late by a
    starved emulator thread: the line does not idle, the bytes are written late but
    never early, and the stream ends when the wire says."""
    port, clock, slices, reader = line
    packets = [encode_packet(ADDRESS, PID_DATA, bytes([n]) * 128) for n in range(12)]
    total = sum(map(len, packets))
    port.write(packets[0])
    for packet in packets[1:]:
        clock.work(0.02)  # the thread was descheduled for longer than a packet takes
        port.write(packet, queued=True)
    assert read_fd(reader, total) == b"".join(packets)
    assert nothing_more(reader)
    assert_one_unbroken_stream(slices, total, on_time=False)
    assert any(s.written_at > s.starts_at + 0.001 for s in slices)  # late, caught up


def test_a_write_after_the_line_went_idle_starts_when_it_is_made(
        line: tuple[EmulatedPort, SimulatedClock, list[Slice], int]) -> None:
    """A late device leaves the line idle: its bytes are not back-dated onto the old
    schedule (they would reach the application before the device sent them)."""
    port, clock, slices, reader = line
    port.write(b"A" * 100)
    idle_until = slices[-1].ends_at
    clock.work(0.5)
    called_at = clock()
    port.write(b"B" * 100)  # a reply to something new: not queued behind the last one
    assert read_fd(reader, 200) == b"A" * 100 + b"B" * 100
    assert nothing_more(reader)
    second = [s for s in slices if s.starts_at >= called_at - 1e-9]
    assert second[0].starts_at == pytest.approx(called_at)
    assert second[0].starts_at > idle_until
    assert sum(s.size for s in second) == 100


def test_a_replugged_cable_starts_with_an_idle_line(
        line: tuple[EmulatedPort, SimulatedClock, list[Slice], int]) -> None:
    port, clock, slices, _old_reader = line
    port.write(b"x" * 3000)  # ~0.26 s of line time queued
    port.unplug()
    with pytest.raises(PortUnplugged):
        port.write(b"lost")
    port.replug()
    slices.clear()
    called_at = clock()
    reader = os.open(port.path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        port.write(b"fresh")
        assert read_fd(reader, 5) == b"fresh"
    finally:
        os.close(reader)
    assert slices[0].starts_at == pytest.approx(called_at)  # not behind the old cable's bytes


# -- the emulated sensor's image upload -----------------------------------------------------
class Upload:
    """A ZFM emulator at 115200 baud on a simulated line clock, a host port on it, and
    a finger on the glass already imaged (readImage answered): ready for downloadImage.

    ``on_write(n)`` is called after the n-th port write of the download (0: the ack,
    1..288: the data packets); ``on_slice(slice)`` before each slice goes into the pty.
    """

    def __init__(self, where: Path) -> None:
        self.emulator = ZfmEmulator(where / "fingerprint", baud=BAUD, state_dir=where,
                                    work_scale=0)
        self.emulator.start()
        self.emulator.control("cooperative", "off")
        self.emulator.control("place", "warga-0042", "2")
        assert self.emulator.wait_booted()
        self.host = serial.serial_for_url(str(where / "fingerprint"), baudrate=BAUD,
                                          timeout=10.0)
        self.host.write(encode_packet(ADDRESS, 0x01, b"\x01"))  # readImage
        assert self.host.read(12) == encode_packet(ADDRESS, PID_ACK, b"\x00")
        port = self.emulator.port
        assert port is not None
        self.port = port
        self.clock = SimulatedClock()
        port.clock, port.sleep = self.clock, self.clock.sleep
        # The readImage ack went out on the real clock and was read whole: the line is
        # free. Without this the simulated schedule would start at the host's monotonic
        # time (days of uptime: 1e5 s and more), where 289 float sums drift by nanoseconds.
        port._line_free_at = 0.0
        self.slices: list[Slice] = []
        self.writes = 0
        self.queued: list[bool] = []
        self.framing = FRAMING
        self.on_write: Callable[[int], None] | None = None
        self.on_slice: Callable[[Slice], None] | None = None
        original = port.write

        def write(data: bytes, *, queued: bool = False) -> None:
            self.clock.work(self.framing)  # the emulator framed this packet (simulated)
            self.queued.append(queued)
            try:
                original(data, queued=queued)
            finally:
                self.writes += 1
            if self.on_write is not None:
                self.on_write(self.writes - 1)

        def trace(piece: Slice) -> None:
            if self.on_slice is not None:
                self.on_slice(piece)
            self.slices.append(piece)

        port.write = write  # type: ignore[method-assign]
        port.trace = trace

    def expected(self) -> list[bytes]:
        """The download as the module sends it: the ack, then the data packets."""
        capture = self.emulator.last_capture
        assert capture is not None
        data = fingerprints.pack_4bit(capture.pixels())
        size = PACKET_SIZES[self.emulator.flash.packet_code]
        packets = [encode_packet(ADDRESS, PID_END if offset + size >= len(data) else PID_DATA,
                                 data[offset : offset + size])
                   for offset in range(0, len(data), size)]
        return [encode_packet(ADDRESS, PID_ACK, b"\x00"), *packets]

    def download(self) -> None:
        self.writes = 0
        self.queued.clear()
        self.slices.clear()
        self.host.write(encode_packet(ADDRESS, 0x01, b"\x0a"))  # downloadImage

    def quiet(self, wait: float = 0.3) -> bytes:
        """Whatever else arrives (nothing, if the sensor is done)."""
        self.host.timeout = wait
        return self.host.read(100_000)

    def close(self) -> None:
        self.host.close()
        self.emulator.stop()


@pytest.fixture
def upload(tmp_path: Path) -> Iterator[Upload]:
    u = Upload(tmp_path)
    yield u
    u.close()


def test_an_image_upload_streams_back_to_back(upload: Upload) -> None:
    expected = upload.expected()
    total = wire_bytes(128)
    assert sum(map(len, expected)) == total
    upload.download()
    assert upload.host.read(total) == b"".join(expected)
    assert upload.quiet() == b""
    assert upload.writes == len(expected) == 289  # still one reply packet per write
    assert upload.queued == [False] + [True] * 288  # the ack answers; the data follows it
    assert_one_unbroken_stream(upload.slices, total)


def test_an_image_upload_from_a_late_emulator_thread_keeps_the_wire_schedule(
        upload: Upload) -> None:
    """Each packet framed 10 ms late (a loaded host): the image still takes exactly the
    wire time from the ack's first byte, and no byte went into the pty early."""
    upload.framing = 0.01
    expected = upload.expected()
    total = wire_bytes(128)
    upload.download()
    assert upload.host.read(total) == b"".join(expected)
    assert_one_unbroken_stream(upload.slices, total, on_time=False)


@pytest.mark.parametrize("fault", [("truncate",), ("corrupt-checksum",), ("noise", "5")])
def test_a_fault_armed_mid_upload_hits_exactly_the_next_packet(
        upload: Upload, fault: tuple[str, ...]) -> None:
    expected = upload.expected()
    armed_after = 20  # the fault is armed once data packet 20 is on its way

    def arm(n: int) -> None:
        if n == armed_after:
            upload.emulator.control(*fault)

    upload.on_write = arm
    hit = expected[armed_after + 1]
    before, after = b"".join(expected[: armed_after + 1]), b"".join(expected[armed_after + 2:])
    upload.download()
    if fault[0] == "noise":
        assert upload.host.read(len(before)) == before
        noise = upload.host.read(5)
        assert len(noise) == 5 and all(b < 0xEF for b in noise)  # never a start code
        assert upload.host.read(len(hit) + len(after)) == hit + after
    else:
        faulted = (hit[: len(hit) // 2] if fault[0] == "truncate"
                   else hit[:-1] + bytes([hit[-1] ^ 0x5A]))
        assert faulted != hit
        stream = before + faulted + after
        assert upload.host.read(len(stream)) == stream
    assert upload.quiet() == b""
    assert upload.writes == len(expected)


def test_an_unplug_mid_packet_loses_the_rest_of_the_upload(
        upload: Upload, caplog: pytest.LogCaptureFixture) -> None:
    """The cable comes out inside data packet 30: that slice and everything after it
    never go into the pty, no further packet is tried, and the sensor answers again
    once plugged back in."""
    expected = upload.expected()
    cut_at = sum(map(len, expected[:30])) + 60  # bytes into the pty before the cable goes
    sent = 0

    def pull(piece: Slice) -> None:
        nonlocal sent
        if sent <= cut_at < sent + piece.size and upload.port.plugged:
            upload.emulator.control("unplug")
        sent += piece.size

    upload.on_slice = pull
    with caplog.at_level(logging.INFO, logger="sensors.emulated.zfm"):
        upload.download()
        abandoned = [r for r in caplog.records if "transfer abandoned" in r.getMessage()]
        deadline = time.monotonic() + 10
        while not abandoned and time.monotonic() < deadline:
            time.sleep(0.02)
            abandoned = [r for r in caplog.records if "transfer abandoned" in r.getMessage()]
    assert abandoned, "the emulator gave the transfer up"
    assert upload.writes == 31  # the ack and data packets 1-30: packet 31 never tried
    went = sum(s.size for s in upload.slices) - upload.slices[-1].size  # the last was cut
    assert went <= cut_at < sum(map(len, expected))
    assert not upload.port.plugged
    upload.host.close()

    upload.emulator.control("replug")
    assert upload.emulator.wait_booted()
    with serial.serial_for_url(str(upload.emulator.link), baudrate=BAUD, timeout=5) as host:
        host.write(encode_packet(ADDRESS, 0x01, b"\x0f"))  # getSystemParameters
        reply = host.read(28)
    assert reply[:10] == encode_packet(ADDRESS, PID_ACK, b"\x00" + bytes(16))[:10]


@pytest.mark.parametrize("control", [("power-cycle",), ("stall", "0.5")])
def test_a_power_cycle_or_stall_mid_upload_ends_it_between_packets(
        upload: Upload, control: tuple[str, ...]) -> None:
    expected = upload.expected()
    stop_after = 40

    def interrupt(n: int) -> None:
        if n == stop_after:
            upload.emulator.control(*control)

    upload.on_write = interrupt
    upload.download()
    sent = b"".join(expected[: stop_after + 1])
    assert upload.host.read(len(sent)) == sent
    assert upload.quiet() == b""  # the rest is lost, not merely late
    assert upload.writes == stop_after + 1
    assert_one_unbroken_stream(upload.slices, len(sent))
