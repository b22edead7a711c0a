"""Emulated batteries: a Linux power_supply tree on disk, and a UPS HAT's INA219 on I2C.

:class:`EmulatedPowerSupply` writes the files a kernel fuel-gauge driver
shows under ``/sys/class/power_supply`` into an ordinary directory, and keeps
them moving as a battery drains or charges; point
:class:`sensors.battery.SysfsBattery` (``devices.battery.sysfs_dir``) at it
and the real driver reads it::

    DIR/AC/type            Mains
    DIR/AC/online          1 while the charger is plugged in
    DIR/BAT0/type          Battery
    DIR/BAT0/status        Charging | Discharging | Full | Not charging | Unknown
    DIR/BAT0/capacity      0-100
    DIR/BAT0/voltage_now   microvolts
    DIR/BAT0/current_now   microamperes, negative while discharging

:class:`EmulatedIna219` is the register file of a Texas Instruments INA219
as a Waveshare UPS HAT carries it, behind an object with smbus2's
``read_word_data`` / ``write_word_data``. The chip keeps its 16-bit
registers most significant byte first while SMBus sends words least
significant byte first, so a word read through smbus2 has its bytes
swapped -- exactly as on the real bus, so a driver that forgets the swap
reads nonsense here too.

>>> hat = EmulatedIna219(0x42, cells=2, voltage_v=7.2, current_a=0.0, drift=False)
>>> hat.start()
>>> bus = hat.open_bus(1)
>>> hex(bus.read_word_data(0x42, 0x02))    # 7.2 V = 1800 x 4 mV, << 3, CNVR: 0x3842 swapped
'0x4238'
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import ClassVar

log = logging.getLogger(__name__)

STATUSES = ("Charging", "Discharging", "Full", "Not charging", "Unknown")


def _voltage_for(percent: float, cells: int) -> float:
    """Pack voltage for a charge, on the same straight line the UPS HAT's percentage uses."""
    return cells * (3.0 + 1.2 * percent / 100.0)


def _join(args: tuple[str, ...]) -> str:
    return " ".join(args)


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number, not {text!r}") from None


class EmulatedPowerSupply:
    """A battery and a mains adapter as the Linux power_supply class shows them, under ``root``.

    ``percent`` and ``status`` are where it starts; while it runs (after
    :meth:`start`) the charge moves by ``rate_per_min`` percent per minute,
    down while discharging and up while charging, and the status turns to
    ``Full`` at 100 %. ``cells`` sets the voltage scale (1 for a single
    lithium cell, 3.0-4.2 V). ``rate_per_min=0`` freezes it, for tests.

    >>> supply = EmulatedPowerSupply(tmp_path / "power_supply")   # doctest: +SKIP
    >>> supply.start()                                            # doctest: +SKIP
    >>> supply.control("status", "Charging")                      # doctest: +SKIP
    'status Charging'
    """

    CONTROLS: ClassVar[dict[str, str]] = {
        "percent": "percent N: set the state of charge, 0-100",
        "status": "status S: Charging, Discharging, Full, Not charging or Unknown",
        "rate": "rate N: how fast the charge moves, percent per minute (0 freezes it)",
        "charger": "charger on|off: plug in or pull the mains adapter (status follows)",
        "garbage": "garbage FILE [TEXT]: make BAT0/FILE read TEXT (empty if none) until 'clear'",
        "clear": "clear: undo every 'garbage'",
        "remove": "remove: take the battery out (its directory disappears)",
        "insert": "insert: put the battery back",
    }

    def __init__(self, root: str | Path, *, name: str = "BAT0", percent: float = 76.0,
                 status: str = "Discharging", cells: int = 1, rate_per_min: float = 0.25,
                 current_a: float = 1.2, tick_s: float = 1.0) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        self.root = Path(root)
        self.name = name
        self.cells = cells
        self.rate_per_min = rate_per_min
        self.current_a = current_a  # magnitude; the sign follows the status
        self.tick_s = tick_s
        self._percent = float(percent)
        self._status = status
        self._garbage: dict[str, str] = {}
        self._present = True
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._made_root = False

    @property
    def battery_dir(self) -> Path:
        return self.root / self.name

    @property
    def percent(self) -> float:
        return self._percent

    @property
    def status(self) -> str:
        return self._status

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Write the tree and let the charge move in a daemon thread."""
        if not self.root.exists():
            self.root.mkdir(parents=True)
            self._made_root = True
        with self._lock:
            self._write_all()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="power-supply-emulator",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the clock and remove the files this emulator wrote."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        for supply in (self.battery_dir, self.root / "AC"):
            shutil.rmtree(supply, ignore_errors=True)
        if self._made_root:
            with contextlib.suppress(OSError):
                self.root.rmdir()

    # -- controls ---------------------------------------------------------------------------
    def control(self, name: str, *args: str) -> str:
        """Apply a control from :attr:`CONTROLS`; ValueError for an unknown one or bad args."""
        with self._lock:
            reply = self._control(name, args)
            self._write_all()
        return reply

    def _control(self, name: str, args: tuple[str, ...]) -> str:
        if name == "percent":
            if len(args) != 1:
                raise ValueError("usage: percent N")
            value = _number(args[0], "N")
            if not 0 <= value <= 100:
                raise ValueError("N must be between 0 and 100")
            self._percent = value
            return f"percent {value:g}"
        if name == "status":
            status = _join(args)
            if status not in STATUSES:
                raise ValueError(f"status must be one of {', '.join(STATUSES)}")
            self._status = status
            return f"status {status}"
        if name == "rate":
            if len(args) != 1:
                raise ValueError("usage: rate N")
            self.rate_per_min = abs(_number(args[0], "N"))
            return f"rate {self.rate_per_min:g} %/min"
        if name == "charger":
            if args not in (("on",), ("off",)):
                raise ValueError("usage: charger on|off")
            if args[0] == "on":
                self._status = "Full" if self._percent >= 100 else "Charging"
            else:
                self._status = "Discharging"
            return f"charger {args[0]}"
        if name == "garbage":
            if not args:
                raise ValueError("usage: garbage FILE [TEXT]")
            file = args[0]
            if "/" in file or file in ("", ".", ".."):
                raise ValueError("FILE is a name inside the battery directory, e.g. capacity")
            self._garbage[file] = _join(args[1:])
            return f"{file} now reads {self._garbage[file]!r}"
        if name == "clear":
            if args:
                raise ValueError("'clear' takes no arguments")
            self._garbage.clear()
            return "garbage cleared"
        if name == "remove":
            if args:
                raise ValueError("'remove' takes no arguments")
            self._present = False
            return "battery removed"
        if name == "insert":
            if args:
                raise ValueError("'insert' takes no arguments")
            self._present = True
            return "battery inserted"
        raise ValueError(f"unknown control '{name}' (known: {', '.join(self.CONTROLS)})")

    # -- the files ----------------------------------------------------------------------------
    def _values(self) -> dict[str, str]:
        charging = self._status == "Charging"
        current = 0.0
        if self._status in ("Charging", "Discharging"):
            current = self.current_a if charging else -self.current_a
        return {
            "type": "Battery",
            "present": "1",
            "technology": "Li-ion",
            "status": self._status,
            "capacity": str(round(self._percent)),
            "voltage_now": str(round(_voltage_for(self._percent, self.cells) * 1e6)),
            "current_now": str(round(current * 1e6)),
        }

    def _write_all(self) -> None:
        """Rewrite the tree from the state (caller holds the lock)."""
        if not self.root.exists():
            return  # stopped
        ac = self.root / "AC"
        ac.mkdir(exist_ok=True)
        online = "1" if self._status in ("Charging", "Full", "Not charging") else "0"
        _write(ac / "type", "Mains")
        _write(ac / "online", online)
        if not self._present:
            shutil.rmtree(self.battery_dir, ignore_errors=True)
            return
        self.battery_dir.mkdir(exist_ok=True)
        values = self._values()
        values.update(self._garbage)
        uevent = "".join(f"POWER_SUPPLY_{k.upper()}={v}\n" for k, v in values.items()
                         if k != "type")
        values["uevent"] = f"POWER_SUPPLY_NAME={self.name}\n{uevent}"
        for file, text in values.items():
            # An empty garbage value is an empty file, as a crashed driver leaves it.
            _write(self.battery_dir / file, f"{text}\n" if text else "")

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            with self._lock:
                step = self.rate_per_min * self.tick_s / 60.0
                if self._status == "Charging":
                    self._percent = min(100.0, self._percent + step)
                    if self._percent >= 100.0:
                        self._status = "Full"
                elif self._status == "Discharging":
                    self._percent = max(0.0, self._percent - step)
                try:
                    self._write_all()
                except OSError as exc:  # the directory was removed under us
                    log.debug("power supply tree not written: %s", exc)


def _write(path: Path, text: str) -> None:
    # Replace the file in one step: a reader never sees it half written,
    # as with a real sysfs attribute.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="ascii")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# INA219 (Waveshare UPS HAT)
# ---------------------------------------------------------------------------------------------

REG_CONFIG = 0x00
REG_SHUNT_VOLTAGE = 0x01
REG_BUS_VOLTAGE = 0x02
REG_POWER = 0x03
REG_CURRENT = 0x04
REG_CALIBRATION = 0x05
POWER_ON_CONFIG = 0x399F


def _swap16(word: int) -> int:
    return ((word & 0xFF) << 8) | ((word >> 8) & 0xFF)


class EmulatedIna219:
    """The INA219 of a UPS HAT at ``address`` on I2C bus ``bus``, measuring a ``cells`` pack.

    The pack is at ``voltage_v`` with ``current_a`` flowing into it
    (negative while the kit runs from it). With ``drift`` the charge moves
    with the current as time passes (a ``capacity_mah`` pack), so the voltage
    creeps as on a real kit; without it readings stay put for tests.

    Registers behave as the datasheet says: bus voltage in bits 15-3 at 4 mV
    per count with CNVR (bit 1) and OVF (bit 0); shunt voltage signed at
    10 uV per count, clipped to the gain's range; current = shunt x
    calibration / 4096; power = current x bus / 5000; writing bit 15 of the
    configuration resets every register. Reads of the undefined registers
    0x06-0xFF return 0.
    """

    CONTROLS: ClassVar[dict[str, str]] = {
        "voltage": "voltage V: the pack voltage in volts",
        "percent": "percent N: set the pack voltage for N % on the UPS HAT's scale",
        "current": "current A: amperes into the pack (negative = the kit runs from it)",
        "unplug": "lift the HAT off the pins: every I2C transfer fails (Remote I/O error)",
        "replug": "seat the HAT again",
        "brownout": "the chip resets: configuration and calibration back to power-on values",
        "overflow": "overflow on|off: force the math-overflow flag (OVF) in the bus register",
    }

    def __init__(self, address: int = 0x42, *, bus: int = 1, cells: int = 2,
                 voltage_v: float | None = None, current_a: float = -0.9,
                 shunt_ohms: float = 0.1, capacity_mah: float = 2600.0,
                 drift: bool = True) -> None:
        self.address = address
        self.bus = bus
        self.cells = cells
        self.shunt_ohms = shunt_ohms
        self.capacity_mah = capacity_mah
        self.drift = drift
        self.voltage_v = voltage_v if voltage_v is not None else _voltage_for(80.0, cells)
        self.current_a = current_a
        self.force_overflow = False
        self.plugged = True
        self.transfers = 0
        self._powered = False
        self._last = time.monotonic()
        self._lock = threading.Lock()
        self._config = POWER_ON_CONFIG
        self._calibration = 0

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Power the HAT on. An I2C chip only acts when addressed: no thread is needed."""
        with self._lock:
            self._powered = True
            self._last = time.monotonic()
            self._reset()

    def stop(self) -> None:
        with self._lock:
            self._powered = False

    def open_bus(self, bus: int) -> EmulatedSMBus:
        """What ``smbus2.SMBus(bus)`` would return on a Pi with this HAT: the factory to inject."""
        if bus != self.bus:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", f"/dev/i2c-{bus}")
        return EmulatedSMBus(self)

    # -- controls ---------------------------------------------------------------------------
    def control(self, name: str, *args: str) -> str:
        """Apply a control from :attr:`CONTROLS`; ValueError for an unknown one or bad args."""
        with self._lock:
            self._advance()
            if name in ("voltage", "percent", "current"):
                if len(args) != 1:
                    raise ValueError(f"usage: {name} N")
                value = _number(args[0], "N")
                if name == "voltage":
                    if not 0 <= value <= 26:
                        raise ValueError("V must be between 0 and 26 volts")
                    self.voltage_v = value
                    return f"voltage {value:g} V"
                if name == "percent":
                    if not 0 <= value <= 100:
                        raise ValueError("N must be between 0 and 100")
                    self.voltage_v = _voltage_for(value, self.cells)
                    return f"percent {value:g} ({self.voltage_v:.3f} V)"
                if not -3.2 <= value <= 3.2:
                    raise ValueError("A must be between -3.2 and 3.2 amperes")
                self.current_a = value
                return f"current {value:g} A"
            if name in ("unplug", "replug", "brownout"):
                if args:
                    raise ValueError(f"'{name}' takes no arguments")
                if name == "brownout":
                    self._reset()
                    return "INA219 reset to power-on values"
                self.plugged = name == "replug"
                return "HAT seated" if self.plugged else "HAT lifted off the pins"
            if name == "overflow":
                if args not in (("on",), ("off",)):
                    raise ValueError("usage: overflow on|off")
                self.force_overflow = args[0] == "on"
                return f"overflow {args[0]}"
        raise ValueError(f"unknown control '{name}' (known: {', '.join(self.CONTROLS)})")

    # -- the chip ---------------------------------------------------------------------------
    def _reset(self) -> None:
        self._config = POWER_ON_CONFIG
        self._calibration = 0

    def _advance(self) -> None:
        """Move the pack's charge on by the time passed (caller holds the lock)."""
        now = time.monotonic()
        if self.drift and self._powered and self.capacity_mah > 0:
            hours = (now - self._last) / 3600.0
            percent_moved = self.current_a * 1000.0 * hours / self.capacity_mah * 100.0
            self.voltage_v += percent_moved * 1.2 * self.cells / 100.0
            self.voltage_v = min(4.2 * self.cells, max(3.0 * self.cells, self.voltage_v))
        self._last = now

    def _shunt_counts(self) -> tuple[int, bool]:
        gain = (self._config >> 11) & 0x3
        limit = 4000 * (1 << gain)  # 40 mV x gain in 10 uV counts
        counts = round(self.current_a * self.shunt_ohms / 10e-6)
        clipped = max(-limit, min(limit, counts))
        return clipped, clipped != counts

    def register(self, register: int) -> int:
        """The register's 16-bit value as the chip holds it (most significant byte first)."""
        with self._lock:
            self._advance()
            shunt, shunt_overflow = self._shunt_counts()
            full_scale_v = 32.0 if self._config & (1 << 13) else 16.0
            bus_counts = min(round(self.voltage_v / 0.004), round(full_scale_v / 0.004), 0x1FFF)
            current = max(-32768, min(32767, shunt * self._calibration // 4096))
            overflow = shunt_overflow or self.force_overflow
            if register == REG_CONFIG:
                return self._config
            if register == REG_SHUNT_VOLTAGE:
                return shunt & 0xFFFF
            if register == REG_BUS_VOLTAGE:
                return (bus_counts << 3) | 0x2 | (1 if overflow else 0)
            if register == REG_POWER:
                return min(0xFFFF, abs(current) * bus_counts // 5000)
            if register == REG_CURRENT:
                return current & 0xFFFF
            if register == REG_CALIBRATION:
                return self._calibration
            return 0

    def set_register(self, register: int, value: int) -> None:
        with self._lock:
            if register == REG_CONFIG:
                if value & 0x8000:
                    self._reset()  # RST self-clears
                else:
                    self._config = value & 0x7FFF
            elif register == REG_CALIBRATION:
                self._calibration = value & 0xFFFE  # bit 0 is not implemented
            # The data registers are read-only: the chip ignores writes to them.

    def _check(self, i2c_addr: int) -> None:
        self.transfers += 1
        if not self.plugged or not self._powered or i2c_addr != self.address:
            # Nobody acknowledges the address: the kernel reports EREMOTEIO.
            raise OSError(errno.EREMOTEIO, "Remote I/O error")


class EmulatedSMBus:
    """The bus handle :meth:`EmulatedIna219.open_bus` returns; smbus2.SMBus's word calls."""

    def __init__(self, chip: EmulatedIna219) -> None:
        self._chip: EmulatedIna219 | None = chip

    def _alive(self) -> EmulatedIna219:
        if self._chip is None:
            raise OSError(errno.EBADF, "Bad file descriptor")
        return self._chip

    def read_word_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        chip = self._alive()
        chip._check(i2c_addr)
        # SMBus read word: the first byte on the wire is the low byte of the
        # result; the INA219 sends its most significant byte first.
        return _swap16(chip.register(register))

    def write_word_data(self, i2c_addr: int, register: int, value: int,
                        force: bool | None = None) -> None:
        chip = self._alive()
        chip._check(i2c_addr)
        if not 0 <= value <= 0xFFFF:
            raise ValueError("a word is 0-65535")
        chip.set_register(register, _swap16(value))

    def close(self) -> None:
        self._chip = None

    def __enter__(self) -> EmulatedSMBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
