"""Where each device is and how it is set up: the ``[devices.*]`` tables of the kit's TOML.

Plain dataclasses with a default for every value, so a device library user
(the kit, a bench script, a test) can build them in code; the kit reads them
strictly from ``kit.toml`` (:mod:`kit.config`). ``kind`` and ``port`` say
which implementation :mod:`sensors.registry` opens: the real driver, or the
emulated twin.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SerialDevice:
    # "emulated" picks the twin in sensors/emulated; otherwise a path or a
    # pyserial URL such as socket://bench-host:4001.
    port: str = ""
    baud: int = 0
    enabled: bool = True


@dataclass
class FingerprintSection(SerialDevice):
    port: str = "/dev/jaranijo/fingerprint"
    baud: int = 57600
    address: int = 0xFFFFFFFF
    password: int = 0x00000000
    finger_timeout_s: float = 20.0


@dataclass
class GnssSection(SerialDevice):
    port: str = "/dev/jaranijo/gps"
    baud: int = 9600


@dataclass
class ModemSection(SerialDevice):
    port: str = "/dev/jaranijo/modem"
    baud: int = 115200


@dataclass
class BatterySection:
    # "sysfs" (Linux power_supply), "ina219" (UPS HAT over I2C), "emulated" (the
    # real INA219 driver on an emulated HAT) or "none".
    kind: str = "sysfs"
    sysfs_dir: str = "/sys/class/power_supply"
    i2c_bus: int = 1
    i2c_address: int = 0x42
    cells: int = 2
    shunt_ohms: float = 0.1


@dataclass
class CameraSection:
    # "picamera2", "opencv" (USB/V4L2) or "emulated".
    kind: str = "picamera2"
    device: int = 0
    width: int = 640
    height: int = 480
    fps: float = 15.0


@dataclass
class GpioSection:
    capture_button: int = 17
    status_led: int = 27
    buzzer: int = 22
    repeat_guard_s: float = 0.4


@dataclass
class DevicesSection:
    fingerprint: FingerprintSection = field(default_factory=FingerprintSection)
    gnss: GnssSection = field(default_factory=GnssSection)
    modem: ModemSection = field(default_factory=ModemSection)
    battery: BatterySection = field(default_factory=BatterySection)
    camera: CameraSection = field(default_factory=CameraSection)
    gpio: GpioSection = field(default_factory=GpioSection)
