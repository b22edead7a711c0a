"""The test rig, one set for every suite: devices emulated by default, real ones on a bench.

Device fixtures (``fingerprint_device``, ``gps_device``, ``modem_device``)
give one device under test; ``kit_on_rig`` a provisioned kit with every
device emulated and an assignment loaded (its fingerprint sensor unpaced,
see :func:`unpaced`, unless the test is marked ``line_rate``).

On a bench, give the real ports and the same tests run against the hardware::

    pytest tests/sensors --fingerprint-port /dev/ttyUSB0 --gps-port /dev/ttyUSB1 \
        --modem-port /dev/ttyUSB2

or ``--bench-config bench.toml`` with a ``[ports]`` table (fingerprint, gps,
modem). Tests that need fault injection use the emulator's controls and are
skipped against real devices, which have no such controls.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kit.config import KitConfig
from kit.provision import open_vault, provision_kit
from kit.records import store_assignment
from kit.store import Store
from sync.domain import SAMPLE_ASSIGNMENT_PATH, Assignment
from sync.envelope import KitPublicKeys, OfficeKeys
from tests import OFFICER, PIN, TECHNICIAN_PIN

# Real PostgreSQL and real Chromium, for the office's tests (fixtures `postgres`, `browser`).
pytest_plugins = ["tests.postgres", "tests.browser"]
# The office's settings keep a secret key in their data folder: the tests' own, never
# /var/lib/jaranijo-office (subprocesses inherit it).
os.environ.setdefault("JARANIJO_OFFICE_DATA", tempfile.mkdtemp(prefix="jaranijo-office-"))

# Cheap Argon2id, and no TPM: the software key slots (tests/kit/test_tpm.py has the TPM).
FAST_ARGON2 = {"argon2_opslimit": 1, "argon2_memlimit_mib": 8, "tpm": "off"}


@dataclass
class KitOnRig:
    """A kit provisioned in a temp folder, its devices emulated, an assignment loaded."""

    root: Path
    config: KitConfig
    rig: object
    office: OfficeKeys
    kit_public: KitPublicKeys
    assignment: Assignment

    @property
    def control_fifo(self) -> Path:
        return self.root / "devices" / "control"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "line_rate: run kit_on_rig's fingerprint sensor paced at its baud rate "
                   "(the kiosk or workflow shows a download as slow as on the wire)")


@pytest.fixture
def kit_on_rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KitOnRig]:
    paced = request.node.get_closest_marker("line_rate") is not None
    with kit_rig(tmp_path, paced=paced) as kit:
        yield kit


@contextlib.contextmanager
def kit_rig(tmp_path: Path, *, paced: bool = True) -> Iterator[KitOnRig]:
    """A :class:`KitOnRig` under ``tmp_path``; ``paced=False`` unpaces its fingerprint sensor."""
    from sensors.emulated.rig import EmulatedRig

    office = OfficeKeys.generate()
    office.save(tmp_path / "office")
    rig = EmulatedRig(tmp_path / "devices", fingerprint_baud=115200)
    rig.start()
    if not paced:
        unpaced(rig.devices["fingerprint"])
    paths = rig.paths
    try:
        provisioned = provision_kit(
            kit_id="blitar-kit-01", data_dir=tmp_path / "kit",
            office_public=tmp_path / "office", officer=OFFICER, pin=PIN,
            technician_pin=TECHNICIAN_PIN,
            settings={"security": FAST_ARGON2, "devices": {
                "fingerprint": {"port": str(paths["fingerprint"]), "baud": 115200},
                "gnss": {"port": str(paths["gps"])},
                "modem": {"port": str(paths["modem"])},
                "battery": {"kind": "sysfs", "sysfs_dir": str(paths["power_supply"])},
                "camera": {"kind": "emulated"},
            }})
        assignment = Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))
        with Store.open(provisioned.config.store_path) as store:
            key = open_vault(provisioned.config, store).unlock(OFFICER, PIN)
            store_assignment(store, key, assignment)
        yield KitOnRig(tmp_path, provisioned.config, rig, office,
                       provisioned.kit_keys.public, assignment)
    finally:
        rig.stop()


def unpaced(emulator: Any) -> Any:
    """Let an emulated fingerprint sensor send as fast as the pty takes bytes.

    For tests about what arrives, not how fast: a 40 kB image then takes milliseconds
    instead of 3.5 s (115200 baud) or 7 s (57600). The sensor keeps its baud rate (the
    driver must still open the port at it), only the pacing of the wire goes, until the
    sensor next powers up (``power-cycle``, ``replug``). Tests about the line rate itself
    (progress during a download, a stall or an unplug mid-transfer, a new baud rate) stay
    paced.
    """
    emulator.port.baud = 0
    return emulator


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


def _device(request: pytest.FixtureRequest, name: str, make: Any, link: Path) -> Iterator[Device]:
    """The real device named on the command line or bench file, else ``make(link)``'s
    emulator started on a pty at ``link``."""
    port = real_port(request.config, name)
    if port:
        yield Device(port, None)
        return
    emulator = make(link)
    emulator.start()
    try:
        yield Device(str(link), emulator)
    finally:
        emulator.stop()


@pytest.fixture
def fingerprint_device(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Device]:
    from sensors.emulated.zfm import ZfmEmulator

    yield from _device(request, "fingerprint",
                       lambda link: ZfmEmulator(link, baud=57600, state_dir=tmp_path),
                       tmp_path / "fingerprint")


@pytest.fixture
def gps_device(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Device]:
    from sensors.emulated.gnss import GnssEmulator

    yield from _device(request, "gps", lambda link: GnssEmulator(link, baud=9600),
                       tmp_path / "gps")


@pytest.fixture
def modem_device(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Device]:
    from sensors.emulated.modem import ModemEmulator

    yield from _device(request, "modem", lambda link: ModemEmulator(link, baud=115200),
                       tmp_path / "modem")
