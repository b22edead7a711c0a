"""The kit's battery: how full it is, whether it is charging, and how long it will last.

Two real drivers sit behind one :class:`Battery` interface, chosen by
``devices.battery.kind``:

* ``sysfs`` -- Linux power_supply class (``/sys/class/power_supply``): a
  fuel gauge or PMIC with a kernel driver reports ``capacity`` (percent),
  ``status`` and ``voltage_now`` (microvolts). The driver picks the supply
  whose ``type`` is ``Battery`` and whose ``scope`` is not ``Device`` (a
  Bluetooth mouse's battery is a power_supply too).
* ``ina219`` -- a Waveshare UPS HAT whose INA219 current/voltage monitor sits
  on I2C (0x42 for the 2-cell UPS HAT, 0x43 for the 1-cell UPS HAT (C)).
  The charge is estimated from the pack voltage, as Waveshare does:
  3.0 V per cell is empty and 4.2 V per cell is full, linearly in between,
  so a 2S pack gives ``(V - 6) / 2.4 * 100`` % and a 1S pack
  ``(V - 3) / 1.2 * 100`` %. Current into the pack (charging) reads positive.
* ``emulated`` -- the INA219 driver talking to
  :class:`sensors.emulated.battery.EmulatedIna219`, an emulated UPS HAT.

Time left is estimated from how fast the percentage has moved over the last
ten minutes (a least-squares slope, see :class:`ChargeRate`), so it works the
same for both drivers and needs no knowledge of the pack's capacity. It is
None until the battery has been watched for a minute and moved measurably.

>>> battery = SysfsBattery("/sys/class/power_supply")     # doctest: +SKIP
>>> status = battery.read()                               # doctest: +SKIP
>>> status.percent, status.status                         # doctest: +SKIP
(76.0, 'Discharging')
"""

from __future__ import annotations

import errno
import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sensors.errors import DeviceError

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

DEVICE = "battery"
STATUSES = ("Charging", "Discharging", "Full", "Not charging", "Unknown")


@dataclass(frozen=True)
class BatteryStatus:
    """One battery reading.

    * ``percent`` -- state of charge 0-100, or None if it could not be read;
    * ``voltage_v`` -- pack voltage in volts, or None;
    * ``charging`` -- True while current flows into the pack;
    * ``status`` -- one of ``Charging``, ``Discharging``, ``Full``,
      ``Not charging``, ``Unknown`` (the Linux power_supply words);
    * ``minutes_left`` -- minutes to empty while discharging, to full while
      charging, None when unknown;
    * ``current_a`` -- current into the pack in amperes (negative when the
      kit runs from it), None if the hardware does not say;
    * ``reason_id`` / ``reason_en`` -- why the reading is incomplete, empty
      when it is complete.
    """

    percent: float | None
    voltage_v: float | None
    charging: bool
    status: str
    minutes_left: float | None = None
    current_a: float | None = None
    source: str = ""
    reason_id: str = ""
    reason_en: str = ""

    @property
    def degraded(self) -> bool:
        """True when part of the reading was missing or garbage (see the reason)."""
        return bool(self.reason_en)

    @property
    def owntracks_bs(self) -> int:
        """OwnTracks battery state: 0 unknown, 1 unplugged, 2 charging, 3 full."""
        return {"Discharging": 1, "Not charging": 1, "Charging": 2, "Full": 3}.get(self.status, 0)


class ChargeRate:
    """How fast the charge moves, in percent per minute, over a sliding window.

    Each reading adds a (time, percent) sample; the rate is the least-squares
    slope of the samples in the last ``window_s`` seconds. A fitted slope
    rides over the 1 % steps of a fuel gauge and the load-dependent wobble of
    a voltage-based estimate better than the difference of two readings.
    The window restarts when charging starts or stops, because the old
    slope then points the wrong way.
    """

    def __init__(self, window_s: float = 600.0, min_span_s: float = 60.0) -> None:
        self.window_s = window_s
        self.min_span_s = min_span_s
        self._samples: deque[tuple[float, float]] = deque()
        self._charging: bool | None = None

    def add(self, t: float, percent: float, charging: bool) -> None:
        if charging != self._charging:
            self._samples.clear()
            self._charging = charging
        self._samples.append((t, percent))
        while self._samples and t - self._samples[0][0] > self.window_s:
            self._samples.popleft()

    def per_minute(self) -> float | None:
        """The slope in percent per minute, or None with too little history."""
        if len(self._samples) < 2:
            return None
        t0 = self._samples[0][0]
        if self._samples[-1][0] - t0 < self.min_span_s:
            return None
        n = len(self._samples)
        xs = [(t - t0) / 60.0 for t, _ in self._samples]
        ys = [p for _, p in self._samples]
        mean_x = sum(xs) / n
        mean_y = sum(ys) / n
        sxx = sum((x - mean_x) ** 2 for x in xs)
        if sxx == 0:
            return None
        return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx

    def minutes_left(self, percent: float, charging: bool) -> float | None:
        """Minutes to 0 % (discharging) or to 100 % (charging) at the current rate."""
        rate = self.per_minute()
        # Below 0.01 %/min (over 160 h for a full pack) the estimate is noise.
        if rate is None or abs(rate) < 0.01:
            return None
        if charging and rate > 0:
            return (100.0 - percent) / rate
        if not charging and rate < 0:
            return percent / -rate
        return None


class Battery(Protocol):
    """What the kit needs of a battery: a reading within a second, or DeviceError."""

    source: str

    def read(self) -> BatteryStatus: ...

    def close(self) -> None: ...


class BatteryBase(ABC):
    """What every battery driver shares: the charge-rate estimate of the time left."""

    source: str = ""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.rate = ChargeRate()

    @abstractmethod
    def read(self) -> BatteryStatus:
        """Read the battery now."""

    def close(self) -> None:  # noqa: B027 -- optional hook: a sysfs reader holds nothing open
        """Release the hardware (nothing to release by default)."""

    def _with_estimate(self, status: BatteryStatus) -> BatteryStatus:
        if status.percent is None:
            return status
        self.rate.add(self._clock(), status.percent, status.charging)
        left = self.rate.minutes_left(status.percent, status.charging)
        if status.status == "Full":
            left = None
        return replace(status, minutes_left=left)

    def __enter__(self) -> BatteryBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# Linux power_supply (sysfs)
# ---------------------------------------------------------------------------------------------


class SysfsBattery(BatteryBase):
    """A battery the Linux kernel reports under ``sysfs_dir`` (``/sys/class/power_supply``).

    ``name`` picks one supply (``BAT0``); None picks the first supply of type
    ``Battery`` that is not a peripheral's, looked up again on every read so
    a pack plugged in later is found.

    Files that are empty, unreadable or not numbers do not stop the kit: the
    reading comes back with that value None and the reason set. Only a
    missing battery, or a directory that does not exist, raises DeviceError.

    >>> SysfsBattery("/nonexistent").read()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sensors.errors.DeviceError: No battery information at /nonexistent. Set devices.battery.kind ...
    """

    def __init__(self, sysfs_dir: str | Path = "/sys/class/power_supply", name: str | None = None,
                 *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self.sysfs_dir = Path(sysfs_dir)
        self.name = name
        self.source = f"sysfs:{self.sysfs_dir}"

    def find_supply(self) -> Path:
        """The battery's directory, or DeviceError naming what was looked for."""
        try:
            entries = sorted(self.sysfs_dir.iterdir())
        except OSError:
            raise DeviceError(
                DEVICE, "find",
                id=f"Tidak ada informasi baterai di {self.sysfs_dir}",
                en=f"No battery information at {self.sysfs_dir}",
                hint_id="Atur devices.battery.kind (\"ina219\" untuk UPS HAT, \"none\" "
                        "tanpa baterai)",
                hint_en="Set devices.battery.kind (\"ina219\" for a UPS HAT, \"none\" "
                        "without a battery)", code="battery_missing") from None
        for entry in entries:
            if self.name is not None and entry.name != self.name:
                continue
            if _read_text(entry / "type") != "Battery":
                continue
            if _read_text(entry / "scope") == "Device":
                continue  # a peripheral's battery (mouse, headset), not the kit's
            if _read_text(entry / "present") == "0":
                continue
            return entry
        which = f"'{self.name}'" if self.name else "bertipe Battery"
        which_en = f"'{self.name}'" if self.name else "of type Battery"
        raise DeviceError(
            DEVICE, "find", id=f"Baterai {which} tidak ada di {self.sysfs_dir}",
            en=f"No battery {which_en} in {self.sysfs_dir}",
            hint_id="Pasang baterai atau periksa sambungannya; kit tetap jalan dengan listrik",
            hint_en="Fit the battery or check its connector; the kit keeps running on mains",
            code="battery_missing")

    def read(self) -> BatteryStatus:
        supply = self.find_supply()
        problems_id: list[str] = []
        problems_en: list[str] = []

        def note(file: str, text: str | None, what: str) -> None:
            shown = "kosong/tidak terbaca" if text in (None, "") else f"'{text[:20]}'"
            shown_en = "empty/unreadable" if text in (None, "") else f"'{text[:20]}'"
            problems_id.append(f"{file} {shown}")
            problems_en.append(f"{file} {shown_en} is not {what}")

        capacity_text = _read_text(supply / "capacity")
        percent = _parse_number(capacity_text)
        if percent is None or not 0 <= percent <= 100:
            note("capacity", capacity_text, "a percentage 0-100")
            percent = None

        voltage_text = _read_text(supply / "voltage_now")
        microvolts = _parse_number(voltage_text)
        voltage = None
        # Plausible for 1 to 6 lithium cells; a negative or absurd value is a driver bug.
        if microvolts is not None and 0.5e6 <= microvolts <= 30e6:
            voltage = round(microvolts / 1e6, 3)
        elif voltage_text is not None:
            note("voltage_now", voltage_text, "a voltage in microvolts")

        status_text = _read_text(supply / "status")
        status = status_text if status_text in STATUSES else "Unknown"
        if status_text is not None and status_text not in STATUSES:
            note("status", status_text, "a power_supply status")

        # current_now's sign differs between kernel drivers, so charging is
        # taken from status only; the current is reported as the driver gives it.
        current_text = _read_text(supply / "current_now")
        current_ua = _parse_number(current_text)
        current = round(current_ua / 1e6, 4) if current_ua is not None else None

        reading = BatteryStatus(
            percent=percent, voltage_v=voltage, charging=status == "Charging", status=status,
            current_a=current, source=f"sysfs:{supply.name}",
            reason_id=("Bacaan baterai tidak lengkap: " + "; ".join(problems_id))
            if problems_id else "",
            reason_en=("Incomplete battery reading: " + "; ".join(problems_en))
            if problems_en else "")
        if reading.degraded:
            log.warning("battery %s: %s", supply.name, reading.reason_en)
        return self._with_estimate(reading)


def _read_text(path: Path) -> str | None:
    """A sysfs attribute's text, stripped; None if absent or the driver refuses the read."""
    try:
        # Some fuel-gauge drivers answer EIO/ENODATA/EINVAL while the gauge is
        # busy or the pack is absent; that is "no value", not a crash.
        return path.read_text(encoding="ascii", errors="replace").strip()
    except (OSError, ValueError):
        return None


def _parse_number(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(int(text))
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# INA219 on a Waveshare UPS HAT
# ---------------------------------------------------------------------------------------------

INA219_CONFIG = 0x00
INA219_SHUNT_VOLTAGE = 0x01
INA219_BUS_VOLTAGE = 0x02
INA219_POWER = 0x03
INA219_CURRENT = 0x04
INA219_CALIBRATION = 0x05

INA219_POWER_ON_CONFIG = 0x399F  # datasheet default after reset
# 32 V bus range, shunt gain /8 (+-320 mV, +-3.2 A on 0.1 ohm), both ADCs
# averaging 32 samples (17 ms each), continuous shunt and bus conversion.
# Averaging steadies the percentage, which is computed from the voltage.
INA219_KIT_CONFIG = (1 << 13) | (3 << 11) | (0b1101 << 7) | (0b1101 << 3) | 0b111

BUS_VOLTAGE_LSB_V = 0.004
SHUNT_VOLTAGE_LSB_V = 10e-6
# Current below this (in amperes, either way) is the charger topping off or
# measurement noise, not charging or discharging.
IDLE_CURRENT_A = 0.05


class SMBusLike(Protocol):
    """The part of :class:`smbus2.SMBus` the INA219 driver uses."""

    def read_word_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int: ...

    def write_word_data(self, i2c_addr: int, register: int, value: int,
                        force: bool | None = None) -> None: ...

    def close(self) -> None: ...


def swap16(word: int) -> int:
    """Swap the two bytes of a 16-bit word.

    SMBus word transfers send the low byte first; the INA219 sends its
    registers high byte first, so every word read or written is swapped.
    """
    return ((word & 0xFF) << 8) | ((word >> 8) & 0xFF)


def _signed16(value: int) -> int:
    return value - 0x10000 if value & 0x8000 else value


def percent_from_voltage(voltage_v: float, cells: int) -> float:
    """Charge estimate of a lithium pack from its voltage: 3.0 V/cell empty, 4.2 V/cell full.

    >>> percent_from_voltage(7.2, 2)
    50.0
    >>> percent_from_voltage(3.9, 1)
    75.0
    """
    percent = (voltage_v - 3.0 * cells) / (1.2 * cells) * 100.0
    return round(min(100.0, max(0.0, percent)), 1)


class Ina219Battery(BatteryBase):
    """A Waveshare UPS HAT: an INA219 on I2C measuring the pack's voltage and current.

    ``bus`` is the I2C bus number (1 on a Raspberry Pi's header pins 3 and 5),
    ``address`` the INA219's address (0x42 on the UPS HAT, 0x43 on the UPS
    HAT (C)), ``cells`` the number of lithium cells in series (2 and 1
    respectively), ``shunt_ohms`` the current-sense resistor (0.1 ohm on
    both). ``bus_factory`` opens the bus: :class:`smbus2.SMBus` by default,
    an emulated bus in tests.

    The current comes straight from the shunt voltage register (10 uV per
    count), which needs no calibration register and so stays right after the
    chip browns out and resets. Positive current charges the pack.

    >>> battery = Ina219Battery(bus=1, address=0x42, cells=2)   # doctest: +SKIP
    >>> battery.read().percent                                  # doctest: +SKIP
    63.4
    """

    def __init__(self, bus: int = 1, address: int = 0x42, cells: int = 2, *,
                 shunt_ohms: float = 0.1,
                 bus_factory: Callable[[int], SMBusLike] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        if not 1 <= cells <= 6:
            raise DeviceError(DEVICE, "open", id=f"Jumlah sel baterai {cells} tidak masuk akal",
                              en=f"A pack of {cells} cells is not plausible",
                              hint_id="Atur devices.battery.cells ke 1 atau 2",
                              hint_en="Set devices.battery.cells to 1 or 2")
        self.bus_number = bus
        self.address = address
        self.cells = cells
        self.shunt_ohms = shunt_ohms
        self.source = f"ina219:i2c-{bus}@0x{address:02x}"
        if bus_factory is None:
            import smbus2

            bus_factory = smbus2.SMBus
        try:
            self._bus: SMBusLike | None = bus_factory(bus)
        except OSError as exc:
            raise DeviceError(
                DEVICE, "open", id=f"Bus I2C {bus} tidak dapat dibuka ({exc.strerror or exc})",
                en=f"I2C bus {bus} cannot be opened ({exc.strerror or exc})",
                hint_id="Aktifkan I2C (raspi-config > Interface Options > I2C) dan "
                        "tambahkan pengguna ke grup i2c",
                hint_en="Enable I2C (raspi-config > Interface Options > I2C) and add the "
                        "user to the i2c group", code="battery_bus") from exc
        try:
            self._configure()
        except DeviceError:
            self.close()
            raise

    def _transfer(self, operation: str, fn: Callable[[SMBusLike], int | None]) -> int | None:
        bus = self._bus
        if bus is None:
            raise DeviceError(DEVICE, operation, id="UPS HAT sudah ditutup",
                              en="The UPS HAT was closed",
                              hint_id="Buka ulang baterai", hint_en="Open the battery again")
        try:
            return fn(bus)
        except OSError as exc:
            gone = exc.errno in (errno.EREMOTEIO, errno.ENXIO, errno.EIO, errno.ETIMEDOUT)
            raise DeviceError(
                DEVICE, operation,
                id=f"UPS HAT tidak menjawab di I2C {self.bus_number} alamat "
                   f"0x{self.address:02x} ({exc.strerror or exc})",
                en=f"UPS HAT not answering on I2C bus {self.bus_number} at "
                   f"0x{self.address:02x} ({exc.strerror or exc})",
                hint_id="Periksa HAT terpasang rapat pada pin GPIO; cek dengan "
                        f"'i2cdetect -y {self.bus_number}'" if gone else "Coba lagi",
                hint_en="Check the HAT sits firmly on the GPIO pins; look with "
                        f"'i2cdetect -y {self.bus_number}'" if gone else "Try again",
                code="battery_i2c") from exc

    def _read_register(self, register: int, operation: str = "read") -> int:
        word = self._transfer(operation,
                              lambda bus: bus.read_word_data(self.address, register))
        assert word is not None
        return swap16(word)

    def _write_register(self, register: int, value: int, operation: str = "configure") -> None:
        self._transfer(operation,
                       lambda bus: bus.write_word_data(self.address, register, swap16(value)))

    def _configure(self) -> None:
        self._write_register(INA219_CONFIG, INA219_KIT_CONFIG)

    def read(self) -> BatteryStatus:
        config = self._read_register(INA219_CONFIG)
        if config != INA219_KIT_CONFIG:
            # A brown-out reset the chip to its power-on defaults; readings are
            # still valid, but put the averaging back.
            log.info("INA219 config was 0x%04x, writing 0x%04x again", config, INA219_KIT_CONFIG)
            self._configure()
        bus_raw = self._read_register(INA219_BUS_VOLTAGE)
        shunt_raw = _signed16(self._read_register(INA219_SHUNT_VOLTAGE))
        voltage = round((bus_raw >> 3) * BUS_VOLTAGE_LSB_V, 3)
        current = round(shunt_raw * SHUNT_VOLTAGE_LSB_V / self.shunt_ohms, 4)

        reason_id = reason_en = ""
        percent: float | None = percent_from_voltage(voltage, self.cells)
        if bus_raw & 0x1:
            # OVF: the chip's arithmetic overflowed; the current is out of range.
            current_reading: float | None = None
            reason_id = "Arus di luar jangkauan pengukur (INA219 overflow)"
            reason_en = "Current out of the monitor's range (INA219 overflow)"
        else:
            current_reading = current
        low, high = 2.5 * self.cells, 4.4 * self.cells
        if not low <= voltage <= high:
            percent = None
            reason_id = (f"Tegangan baterai {voltage:.2f} V tidak wajar untuk {self.cells} sel "
                         "— baterai terlepas?")
            reason_en = (f"Battery voltage {voltage:.2f} V is not plausible for {self.cells} "
                         "cell(s) — battery out of its holder?")

        if current_reading is not None and current_reading > IDLE_CURRENT_A:
            status = "Charging"
        elif current_reading is not None and current_reading < -IDLE_CURRENT_A:
            status = "Discharging"
        elif current_reading is None or percent is None:
            status = "Unknown"
        else:
            status = "Full" if percent >= 95 else "Not charging"
        if reason_en:
            log.warning("%s: %s", self.source, reason_en)
        return self._with_estimate(BatteryStatus(
            percent=percent, voltage_v=voltage, charging=status == "Charging", status=status,
            current_a=current_reading, source=self.source, reason_id=reason_id,
            reason_en=reason_en))

    def close(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            try:
                bus.close()
            except OSError as exc:
                log.debug("closing I2C bus: %s", exc)
