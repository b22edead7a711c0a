"""Battery drivers against an emulated power_supply tree and an emulated INA219 UPS HAT."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.config import config_from_dict
from sensors.battery import (
    INA219_KIT_CONFIG,
    BatteryStatus,
    ChargeRate,
    Ina219Battery,
    SysfsBattery,
    percent_from_voltage,
    swap16,
)
from sensors.emulated.battery import (
    REG_BUS_VOLTAGE,
    REG_CALIBRATION,
    REG_CONFIG,
    EmulatedIna219,
    EmulatedPowerSupply,
)
from sensors.errors import DeviceError
from sensors.registry import open_battery
from tests.waiting import wait_until


class Clock:
    """A clock the test moves by hand, so time-left estimates need no waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def supply(tmp_path: Path) -> Iterator[EmulatedPowerSupply]:
    ps = EmulatedPowerSupply(tmp_path / "power_supply", rate_per_min=0)
    ps.start()
    try:
        yield ps
    finally:
        ps.stop()


# -- sysfs ------------------------------------------------------------------------------------


def test_sysfs_discharging(supply: EmulatedPowerSupply) -> None:
    status = SysfsBattery(supply.root).read()
    assert status.percent == 76
    assert status.status == "Discharging" and not status.charging
    assert status.voltage_v == pytest.approx(3.912, abs=0.001)  # 1 cell at 76 %
    assert status.current_a is not None and status.current_a < 0
    assert status.source == "sysfs:BAT0"
    assert not status.degraded and status.minutes_left is None
    assert status.owntracks_bs == 1


def test_sysfs_charging_and_full(supply: EmulatedPowerSupply) -> None:
    battery = SysfsBattery(supply.root)
    supply.control("charger", "on")
    charging = battery.read()
    assert charging.status == "Charging" and charging.charging and charging.owntracks_bs == 2
    supply.control("percent", "100")
    supply.control("status", "Full")
    full = battery.read()
    assert full.status == "Full" and not full.charging
    assert full.percent == 100 and full.owntracks_bs == 3
    supply.control("status", "Not", "charging")  # as typed on a command line
    assert battery.read().status == "Not charging"


def test_sysfs_picks_the_kits_battery_not_a_peripherals(tmp_path: Path) -> None:
    root = tmp_path / "power_supply"
    ps = EmulatedPowerSupply(root, name="max17048", percent=41, rate_per_min=0)
    ps.start()
    try:
        mouse = root / "hidpp_battery_0"  # sorts before max17048
        mouse.mkdir()
        for name, text in {"type": "Battery", "scope": "Device", "capacity": "5",
                           "status": "Discharging"}.items():
            (mouse / name).write_text(text + "\n")
        status = SysfsBattery(root).read()
        assert status.source == "sysfs:max17048" and status.percent == 41
        assert SysfsBattery(root, name="max17048").read().percent == 41
    finally:
        ps.stop()


@pytest.mark.parametrize(
    ("file", "text", "field"),
    [
        ("capacity", "", "percent"),
        ("capacity", "seventy", "percent"),
        ("capacity", "150", "percent"),
        ("capacity", "7\x00\x00", "percent"),
        ("voltage_now", "-5", "voltage_v"),
        ("voltage_now", "3.9V", "voltage_v"),
    ],
)
def test_sysfs_garbage_gives_a_degraded_reading(supply: EmulatedPowerSupply, file: str,
                                                text: str, field: str) -> None:
    supply.control("garbage", file, text)
    status = SysfsBattery(supply.root).read()
    assert getattr(status, field) is None
    assert status.degraded
    assert file in status.reason_en and file in status.reason_id
    assert status.status == "Discharging"  # the rest of the reading still stands


def test_sysfs_garbage_status_is_unknown(supply: EmulatedPowerSupply) -> None:
    supply.control("garbage", "status", "Chargin")
    status = SysfsBattery(supply.root).read()
    assert status.status == "Unknown" and not status.charging
    assert status.degraded and "status" in status.reason_en
    assert status.percent == 76
    supply.control("clear")
    assert not SysfsBattery(supply.root).read().degraded


def test_sysfs_missing_file_is_degraded_not_a_crash(tmp_path: Path) -> None:
    ps = EmulatedPowerSupply(tmp_path / "ps", rate_per_min=0, tick_s=3600)  # no rewrites
    ps.start()
    try:
        (ps.battery_dir / "capacity").unlink()
        status = SysfsBattery(ps.root).read()
        assert status.percent is None and status.degraded and "capacity" in status.reason_en
        assert status.voltage_v == pytest.approx(3.912, abs=0.001)
    finally:
        ps.stop()


def test_sysfs_missing_battery(supply: EmulatedPowerSupply, tmp_path: Path) -> None:
    battery = SysfsBattery(supply.root)
    supply.control("remove")
    with pytest.raises(DeviceError) as missing:
        battery.read()
    assert missing.value.device == "battery" and missing.value.code == "battery_missing"
    assert "mains" in missing.value.text("en") and "listrik" in missing.value.text("id")
    supply.control("insert")
    assert battery.read().percent == 76
    with pytest.raises(DeviceError) as nowhere:
        SysfsBattery(tmp_path / "no-such-dir").read()
    assert nowhere.value.code == "battery_missing"
    assert "devices.battery.kind" in nowhere.value.text("en")


def test_sysfs_time_left_from_the_rate_of_change(supply: EmulatedPowerSupply) -> None:
    clock = Clock()
    battery = SysfsBattery(supply.root, clock=clock)
    for minute, percent in enumerate((80, 79, 78)):
        clock.now = 1000.0 + 60 * minute
        supply.control("percent", str(percent))
        status = battery.read()
    assert status.minutes_left == pytest.approx(78.0)  # 78 % at 1 %/min
    supply.control("charger", "on")  # the old slope points the wrong way now
    assert battery.read().minutes_left is None
    for minute, percent in enumerate((79, 80, 81), start=3):
        clock.now = 1000.0 + 60 * minute
        supply.control("percent", str(percent))
        status = battery.read()
    assert status.charging and status.minutes_left == pytest.approx(19.0)  # to 100 %


def test_emulated_supply_drains_while_running(tmp_path: Path) -> None:
    ps = EmulatedPowerSupply(tmp_path / "ps", percent=50, rate_per_min=600, tick_s=0.02)
    ps.start()
    try:
        battery = SysfsBattery(ps.root)
        wait_until(lambda: (battery.read().percent or 50) < 49, 3, "the charge to fall below 49 %")
    finally:
        ps.stop()
    assert not (tmp_path / "ps").exists()  # stop() removes what start() wrote


def test_power_supply_controls_refuse_nonsense(supply: EmulatedPowerSupply) -> None:
    with pytest.raises(ValueError, match="unknown control"):
        supply.control("explode")
    with pytest.raises(ValueError, match="between 0 and 100"):
        supply.control("percent", "101")
    with pytest.raises(ValueError, match="status must be"):
        supply.control("status", "Sleeping")
    with pytest.raises(ValueError, match="FILE"):
        supply.control("garbage", "../etc")


def test_charge_rate_needs_a_minute_of_history() -> None:
    rate = ChargeRate(window_s=600, min_span_s=60)
    rate.add(0, 80, False)
    rate.add(30, 79, False)
    assert rate.per_minute() is None
    rate.add(90, 78.5, False)
    assert rate.per_minute() == pytest.approx(-1.0, abs=0.1)
    rate.add(2000, 40, False)  # older samples fall out of the 10-minute window
    assert rate.per_minute() is None


# -- INA219 -----------------------------------------------------------------------------------


def hat_battery(address: int, cells: int, voltage: float, current: float = -0.9,
                **kwargs: object) -> tuple[EmulatedIna219, Ina219Battery]:
    hat = EmulatedIna219(address, cells=cells, voltage_v=voltage, current_a=current,
                         drift=False)
    hat.start()
    return hat, Ina219Battery(1, address, cells, bus_factory=hat.open_bus, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("voltage", "percent"),
                         [(6.0, 0.0), (6.6, 25.0), (7.2, 50.0), (7.8, 75.0), (8.4, 100.0),
                          (8.6, 100.0), (5.9, 0.0)])
def test_ina219_two_cell_ups_hat(voltage: float, percent: float) -> None:
    _, battery = hat_battery(0x42, 2, voltage)
    status = battery.read()
    assert status.voltage_v == pytest.approx(voltage, abs=0.004)  # one 4 mV count
    assert status.percent == pytest.approx(percent, abs=0.2)
    assert status.source == "ina219:i2c-1@0x42"


@pytest.mark.parametrize(("voltage", "percent"),
                         [(3.0, 0.0), (3.3, 25.0), (3.6, 50.0), (3.9, 75.0), (4.2, 100.0)])
def test_ina219_one_cell_ups_hat_c(voltage: float, percent: float) -> None:
    _, battery = hat_battery(0x43, 1, voltage)
    assert battery.read().percent == pytest.approx(percent, abs=0.4)


def test_percent_formula_matches_waveshare() -> None:
    for volts in (6.5, 7.0, 7.7, 8.1):
        assert percent_from_voltage(volts, 2) == pytest.approx((volts - 6) / 2.4 * 100, abs=0.05)
    for volts in (3.2, 3.7, 4.0):
        assert percent_from_voltage(volts, 1) == pytest.approx((volts - 3) / 1.2 * 100, abs=0.05)


def test_ina219_byte_order_both_ways() -> None:
    hat, battery = hat_battery(0x42, 2, 7.2)
    # The driver's configuration arrives in the chip the right way round ...
    assert hat.register(REG_CONFIG) == INA219_KIT_CONFIG == 0x3EEF
    # ... and a word read over SMBus comes low byte first: 7.2 V is 1800 counts
    # of 4 mV, shifted left 3, with the conversion-ready bit: 0x3842 in the chip.
    assert hat.register(REG_BUS_VOLTAGE) == 0x3842
    bus = hat.open_bus(1)
    assert bus.read_word_data(0x42, REG_BUS_VOLTAGE) == 0x4238
    bus.write_word_data(0x42, REG_CALIBRATION, swap16(4096))
    assert hat.register(REG_CALIBRATION) == 4096
    assert battery.read().voltage_v == 7.2


@pytest.mark.parametrize(("current", "status"),
                         [(0.8, "Charging"), (-0.9, "Discharging"), (0.01, "Not charging")])
def test_ina219_current_sign_gives_charging(current: float, status: str) -> None:
    _, battery = hat_battery(0x42, 2, 7.4, current)
    reading = battery.read()
    assert reading.status == status
    assert reading.charging is (status == "Charging")
    assert reading.current_a == pytest.approx(current, abs=0.001)


def test_ina219_full_when_idle_at_the_top() -> None:
    _, battery = hat_battery(0x42, 2, 8.35, 0.0)
    assert battery.read().status == "Full"


def test_ina219_overflow_and_implausible_voltage_are_degraded() -> None:
    hat, battery = hat_battery(0x42, 2, 7.4)
    hat.control("overflow", "on")
    overflowed = battery.read()
    assert overflowed.current_a is None and overflowed.degraded
    assert "overflow" in overflowed.reason_en and overflowed.status == "Unknown"
    assert overflowed.percent is not None
    hat.control("overflow", "off")
    hat.control("voltage", "1.2")
    gone = battery.read()
    assert gone.percent is None and gone.degraded and "1.20 V" in gone.reason_en


def test_ina219_brownout_is_repaired(caplog: pytest.LogCaptureFixture) -> None:
    hat, battery = hat_battery(0x42, 2, 7.2)
    hat.control("brownout")
    assert hat.register(REG_CONFIG) == 0x399F
    assert battery.read().percent == pytest.approx(50, abs=0.2)
    assert hat.register(REG_CONFIG) == INA219_KIT_CONFIG


def test_ina219_unplugged_hat_names_the_bus_and_address() -> None:
    hat, battery = hat_battery(0x42, 2, 7.2)
    hat.control("unplug")
    with pytest.raises(DeviceError) as lifted:
        battery.read()
    assert lifted.value.code == "battery_i2c" and lifted.value.device == "battery"
    assert "0x42" in lifted.value.text("en") and "i2cdetect -y 1" in lifted.value.text("en")
    assert "i2cdetect -y 1" in lifted.value.text("id")
    hat.control("replug")
    assert battery.read().percent == pytest.approx(50, abs=0.2)


def test_ina219_wrong_address_or_bus() -> None:
    hat = EmulatedIna219(0x42, cells=2, drift=False)
    hat.start()
    with pytest.raises(DeviceError) as nobody:
        Ina219Battery(1, 0x43, 1, bus_factory=hat.open_bus)
    assert nobody.value.code == "battery_i2c"
    with pytest.raises(DeviceError) as no_bus:
        Ina219Battery(3, 0x42, 2, bus_factory=hat.open_bus)
    assert no_bus.value.code == "battery_bus" and "raspi-config" in no_bus.value.text("en")


def test_ina219_real_smbus2_without_the_bus() -> None:
    if Path("/dev/i2c-97").exists():
        pytest.skip("this machine has an I2C bus 97")
    with pytest.raises(DeviceError) as no_bus:
        Ina219Battery(97, 0x42, 2)  # smbus2.SMBus itself, failing on /dev/i2c-97
    assert no_bus.value.code == "battery_bus" and "i2c" in no_bus.value.text("en").lower()


def test_ina219_time_left_while_the_pack_drains() -> None:
    clock = Clock()
    hat, battery = hat_battery(0x42, 2, 7.8, -1.0, clock=clock)
    for minute in range(4):
        clock.now = 1000.0 + 60 * minute
        hat.control("percent", str(75 - 2 * minute))  # 2 %/min
        status = battery.read()
    assert status.status == "Discharging"
    assert status.minutes_left == pytest.approx(69 / 2, abs=0.5)


def test_ina219_drift_follows_the_current() -> None:
    hat = EmulatedIna219(0x42, cells=2, voltage_v=7.8, current_a=-3.0, capacity_mah=1.0)
    hat.start()
    battery = Ina219Battery(1, 0x42, 2, bus_factory=hat.open_bus)
    first = battery.read().percent
    assert first is not None
    # 3 A from a 1 mAh pack: about 8 % in 0.1 s, so more than 2 % well within half a second.
    wait_until(lambda: (later := battery.read().percent) is not None and later < first - 2,
               0.5, "the charge to follow the 3 A current")


def test_ina219_controls_refuse_nonsense() -> None:
    hat = EmulatedIna219(0x42, drift=False)
    with pytest.raises(ValueError, match="unknown control"):
        hat.control("melt")
    with pytest.raises(ValueError, match="between"):
        hat.control("current", "9")
    with pytest.raises(ValueError, match="number"):
        hat.control("voltage", "high")
    with pytest.raises(ValueError, match="overflow on"):
        hat.control("overflow", "maybe")


def test_open_battery_from_config(tmp_path: Path) -> None:
    none = config_from_dict({"devices": {"battery": {"kind": "none"}}})
    assert open_battery(none.devices.battery) is None
    sysfs = config_from_dict({"devices": {"battery": {"kind": "sysfs",
                                                      "sysfs_dir": str(tmp_path)}}})
    assert isinstance(open_battery(sysfs.devices.battery), SysfsBattery)
    emulated = config_from_dict({"devices": {"battery": {"kind": "emulated"}}})
    battery = open_battery(emulated.devices.battery)
    assert isinstance(battery, Ina219Battery)
    with battery:
        status = battery.read()
    assert isinstance(status, BatteryStatus)
    assert status.status == "Discharging" and 70 < (status.percent or 0) < 90
