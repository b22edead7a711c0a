"""Fingerprint image capture through the driver, against the UART limit.

``python -m tests.bench.bench_fingerprint``. The emulated ZFM sensor sends
the image exactly as a real one does (4-bit pixels in 128-byte data
packets, 40,044 bytes with the ack) paced at the line rate, so the floor is
the UART limit: 10 bits per byte at 57600 or 115200 baud. Its packets follow
each other on the line back to back, as a real module's do (the emulated
port's line clock, :meth:`sensors.emulated.port.EmulatedPort.write`). The baseline,
measured in the same run, is a bare pyserial read of the same download
(command out, 40,044 bytes in, no parsing): what the pty and the
emulator's pacing cost. The driver's figure is the whole
:meth:`~sensors.fingerprint.ZfmFingerprintSensor.capture` (pyfingerprint's
packet reader parsing one byte per call, the pixels unpacked after the last
byte, and the sensor's feature extraction, ~0.12 s in the emulator, with the
PNG encoded while the sensor works). "CPU" is the
driver thread's processor time during the capture: what a Raspberry Pi
would spend, times its slower cores.

The breakdown (from :attr:`~sensors.fingerprint.ZfmFingerprintSensor.last_timings`)
says where the capture's time beyond the UART limit goes: the emulator's pacing
(raw read minus the limit: the pty and the emulator, not the driver), the
driver's parsing lag behind the wire (its download minus the raw read), the
work after the last byte (unpacking the pixels), and the sensor's convert
(command to reply; the PNG is encoded meanwhile, its time shown apart).
``ROUNDS`` rounds per rate, medians.

The emulated sensor runs in a process of its own, as a real sensor is a chip of its
own: in the bench's process its pacing thread and the driver's per-byte parsing
would take turns on one interpreter lock, and the sensor would seem to send slower
while the driver reads (``--same-process`` shows that). ``--baud 115200`` measures
one rate only. The load average is printed before and after: on a loaded
machine (2 cores, an image build running) the figures are noisy, and the
emulator's thread may be late onto the line; compare runs made at low load.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import serial

from sensors.emulated.zfm import ZfmEmulator, encode_packet
from sensors.fingerprint import ZfmFingerprintSensor, wire_bytes, wire_seconds

ROUNDS = 3
ADDRESS = 0xFFFFFFFF


def _serve(conn: Connection, link: str, where: str) -> None:
    """The emulated sensor in its own process, told what to do through ``conn``."""
    emulator = ZfmEmulator(Path(link), baud=57600, state_dir=where)
    emulator.start()
    try:
        conn.send(emulator.baud)
        while True:
            request = conn.recv()
            if request is None:
                return
            if request == ("wait_booted",):
                conn.send(emulator.wait_booted())
            else:
                conn.send(emulator.control(*request))
    finally:
        emulator.stop()


class SensorProcess:
    """A :class:`ZfmEmulator` in another process, with the two calls the bench needs."""

    def __init__(self, link: Path, where: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._proc = context.Process(target=_serve, args=(child, str(link), where),
                                     daemon=True)
        self._proc.start()
        self.baud: int = self._conn.recv()

    def control(self, *request: str) -> Any:
        self._conn.send(request)
        return self._conn.recv()

    def wait_booted(self) -> bool:
        self._conn.send(("wait_booted",))
        return bool(self._conn.recv())

    def stop(self) -> None:
        self._conn.send(None)
        self._proc.join(10)


def raw_download(url: str, baud: int, expected: int) -> float:
    """Seconds for the image download read straight off the port (no protocol parsing)."""
    with serial.serial_for_url(url, baudrate=baud, timeout=2.0) as port:
        port.reset_input_buffer()
        start = time.perf_counter()
        port.write(encode_packet(ADDRESS, 0x01, b"\x0a"))
        got = 0
        while got < expected:
            chunk = port.read(max(1, min(port.in_waiting, expected - got)))
            if not chunk:
                raise RuntimeError(f"download stopped after {got} of {expected} bytes")
            got += len(chunk)
        return time.perf_counter() - start


def measure(url: str, baud: int) -> dict[str, float]:
    """Medians over ROUNDS: raw read, capture (wall and CPU) and the capture's parts."""
    rounds: list[dict[str, float]] = []
    expected = wire_bytes(128)
    for _ in range(ROUNDS):
        with ZfmFingerprintSensor(url, baud) as sensor:
            sensor.wait_for_finger(timeout=10)  # the image is in the sensor's buffer now
            sensor.close()
            raw = raw_download(url, baud, expected)
            sensor.open()
            sensor.wait_for_finger(timeout=10)
            start, start_cpu = time.perf_counter(), time.thread_time()
            image = sensor.capture()
            wall = time.perf_counter() - start
            cpu = time.thread_time() - start_cpu
            assert image.pixels.shape == (288, 256)
            parts = sensor.last_timings
            assert parts is not None
            rounds.append({"raw": raw, "wall": wall, "cpu": cpu, "download": parts.download,
                           "unpack": parts.unpack, "convert": parts.convert,
                           "png": parts.png, "total": parts.total})
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_fingerprint")
    parser.add_argument("--baud", type=int, action="append",
                        help="57600 and/or 115200 (default both)")
    parser.add_argument("--same-process", action="store_true",
                        help="run the emulated sensor in the bench's own process")
    args = parser.parse_args([] if argv is None else argv)
    bauds = sorted(args.baud or (57600, 115200))
    where_runs = "the bench's process" if args.same_process else "a process of its own"
    print(f"image download: {wire_bytes(128)} bytes on the wire (128-byte packets), "
          f"median of {ROUNDS}; the emulated sensor runs in {where_runs}")
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"  {'baud':>7} {'UART limit':>11} {'raw read':>9} {'capture':>8} {'CPU':>6} "
          f"{'capture/limit':>14} {'capture/raw':>12}")
    breakdowns: list[tuple[int, float, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as where:
        link = Path(where) / "fingerprint"
        emulator: ZfmEmulator | SensorProcess
        if args.same_process:
            emulator = ZfmEmulator(link, baud=57600, state_dir=where)
            emulator.start()
        else:
            emulator = SensorProcess(link, where)
        try:
            for baud in bauds:
                if baud != emulator.baud:
                    with ZfmFingerprintSensor(str(link), emulator.baud) as sensor:
                        sensor.set_sensor_baud(baud)
                    emulator.control("power-cycle")
                    emulator.wait_booted()
                limit = wire_seconds(baud, 128)
                m = measure(str(link), baud)
                print(f"  {baud:>7} {limit:>10.3f}s {m['raw']:>8.3f}s {m['wall']:>7.3f}s "
                      f"{m['cpu']:>5.2f}s {m['wall'] / limit:>14.3f} "
                      f"{m['wall'] / m['raw']:>12.3f}", flush=True)
                breakdowns.append((baud, limit, m))
        finally:
            emulator.stop()
    print("load average after:  {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    for baud, limit, m in breakdowns:
        rest = m["wall"] - m["download"] - m["unpack"] - m["convert"]
        rows = [
            ("UART limit (the wire)", limit),
            ("emulator pacing (raw read - limit)", m["raw"] - limit),
            ("driver parsing lag (download - raw read)", m["download"] - m["raw"]),
            ("after the last byte: unpack the pixels", m["unpack"]),
            ("sensor convert (command to reply)", m["convert"]),
            ("the rest (readImage check, call overhead)", rest),
        ]
        print(f"\n  {baud} baud: where the capture's {m['wall']:.3f} s go "
              f"(x the UART limit {limit:.3f} s)")
        for name, seconds in rows:
            print(f"    {name:<44} {seconds * 1000:>8.1f} ms  {seconds / limit:>6.3f}x")
        print(f"    {'PNG encode (inside the convert, hidden)':<44} {m['png'] * 1000:>8.1f} ms")
        print(f"    {'capture / UART limit':<44} {m['wall'] / limit:>17.3f}x  (target 1.05x)")
        print(f"    {'capture without the convert / UART limit':<44} "
              f"{(m['wall'] - m['convert']) / limit:>17.3f}x")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
