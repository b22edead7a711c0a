"""Fingerprint image capture through the driver, against the UART limit.

``python -m tests.bench.bench_fingerprint``. The emulated ZFM sensor sends
the image exactly as a real one does (4-bit pixels in 128-byte data
packets, 40,044 bytes with the ack) paced at the line rate, so the floor is
the UART limit: 10 bits per byte at 57600 or 115200 baud. The baseline,
measured in the same run, is a bare pyserial read of the same download
(command out, 40,044 bytes in, no parsing): what the pty and the
emulator's pacing cost. The driver's figure is the whole
:meth:`~sensors.fingerprint.ZfmFingerprintSensor.capture` (pyfingerprint
parsing one byte per call, the PNG it writes, decoding it, and the
sensor's feature extraction, ~0.12 s in the emulator). "CPU" is the
driver thread's processor time during the capture: what a Raspberry Pi
would spend, times its slower cores.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import serial

from sensors.emulated.zfm import ZfmEmulator, encode_packet
from sensors.fingerprint import ZfmFingerprintSensor, wire_bytes, wire_seconds

ROUNDS = 2
ADDRESS = 0xFFFFFFFF


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


def measure(url: str, baud: int) -> tuple[float, float, float]:
    """(raw seconds, driver seconds, driver CPU seconds), medians over ROUNDS."""
    raw, wall, cpu = [], [], []
    expected = wire_bytes(128)
    for _ in range(ROUNDS):
        with ZfmFingerprintSensor(url, baud) as sensor:
            sensor.wait_for_finger(timeout=10)  # the image is in the sensor's buffer now
            sensor.close()
            raw.append(raw_download(url, baud, expected))
            sensor.open()
            sensor.wait_for_finger(timeout=10)
            start, start_cpu = time.perf_counter(), time.thread_time()
            image = sensor.capture()
            wall.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)
            assert image.pixels.shape == (288, 256)
    return statistics.median(raw), statistics.median(wall), statistics.median(cpu)


def main() -> None:
    print(f"image download: {wire_bytes(128)} bytes on the wire (128-byte packets), "
          f"median of {ROUNDS}")
    print(f"  {'baud':>7} {'UART limit':>11} {'raw read':>9} {'capture':>8} {'CPU':>6} "
          f"{'capture/limit':>14} {'capture/raw':>12}")
    with tempfile.TemporaryDirectory() as where:
        link = Path(where) / "fingerprint"
        emulator = ZfmEmulator(link, baud=57600, state_dir=where)
        emulator.start()
        try:
            for baud in (57600, 115200):
                if baud != emulator.baud:
                    with ZfmFingerprintSensor(str(link), emulator.baud) as sensor:
                        sensor.set_sensor_baud(baud)
                    emulator.control("power-cycle")
                    emulator.wait_booted()
                limit = wire_seconds(baud, 128)
                raw, wall, cpu = measure(str(link), baud)
                print(f"  {baud:>7} {limit:>10.2f}s {raw:>8.2f}s {wall:>7.2f}s {cpu:>5.2f}s "
                      f"{wall / limit:>14.3f} {wall / raw:>12.3f}")
        finally:
            emulator.stop()


if __name__ == "__main__":
    main()
