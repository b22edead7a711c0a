"""Hardware-in-the-loop fixtures: emulated devices by default, real ones on a bench.

On a bench, give the real ports and the same tests run against the hardware::

    pytest tests/hil --fingerprint-port /dev/ttyUSB0 --gps-port /dev/ttyUSB1 \
        --modem-port /dev/ttyUSB2

or ``--bench-config bench.toml`` with a ``[ports]`` table (fingerprint, gps,
modem). Tests that need fault injection use the emulator's controls and are
skipped against real devices, which have no such controls.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DEVICES = ("fingerprint", "gps", "modem")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware-in-the-loop bench")
    for name in DEVICES:
        group.addoption(f"--{name}-port", default=None,
                        help=f"serial port or URL of a real {name} device (default: emulated)")
    group.addoption("--bench-config", default=None,
                    help="TOML file with a [ports] table naming real devices")


@dataclass
class Device:
    """A device under test: where to open it, and its emulator when it is one."""

    url: str
    emulator: Any | None

    @property
    def emulated(self) -> bool:
        return self.emulator is not None

    def require_emulator(self) -> Any:
        if self.emulator is None:
            pytest.skip("fault injection needs the emulated device")
        return self.emulator


def real_port(config: pytest.Config, name: str) -> str | None:
    port = config.getoption(f"--{name}-port")
    if port:
        return str(port)
    bench = config.getoption("--bench-config")
    if bench:
        with open(bench, "rb") as fh:
            return tomllib.load(fh).get("ports", {}).get(name)
    return None


@pytest.fixture
def fingerprint_device(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Device]:
    port = real_port(request.config, "fingerprint")
    if port:
        yield Device(port, None)
        return
    from sensors.emulated.zfm import ZfmEmulator

    emulator = ZfmEmulator(tmp_path / "fingerprint", baud=57600, state_dir=tmp_path)
    emulator.start()
    try:
        yield Device(str(tmp_path / "fingerprint"), emulator)
    finally:
        emulator.stop()


@pytest.fixture
def gps_device(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Device]:
    port = real_port(request.config, "gps")
    if port:
        yield Device(port, None)
        return
    from sensors.emulated.gnss import GnssEmulator

    emulator = GnssEmulator(tmp_path / "gps", baud=9600)
    emulator.start()
    try:
        yield Device(str(tmp_path / "gps"), emulator)
    finally:
        emulator.stop()


@pytest.fixture
def modem_device(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Device]:
    port = real_port(request.config, "modem")
    if port:
        yield Device(port, None)
        return
    from sensors.emulated.modem import ModemEmulator

    emulator = ModemEmulator(tmp_path / "modem", baud=115200)
    emulator.start()
    try:
        yield Device(str(tmp_path / "modem"), emulator)
    finally:
        emulator.stop()
