"""One place that turns the kit's ``[devices.*]`` settings into device objects.

Each function picks the implementation from configuration -- the real driver,
or its emulated twin (``kind = "emulated"``, ``port = "emulated"``) -- so no
driver knows about emulation and a caller never picks a class itself:

>>> from sensors.settings import CameraSection
>>> camera = open_camera(CameraSection(kind="emulated"))
>>> camera.kind
'emulated'

A function raises :class:`~sensors.errors.DeviceError` for a setting it cannot
honour (an unknown kind, a device disabled in the configuration); opening the
port or the bus happens on first use, as each driver documents.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sensors.errors import DeviceError

# Each driver is imported by the function that opens it, not here: the agent opens the
# GNSS, the modem and the battery and never the fingerprint sensor (pyfingerprint, PIL)
# or the GPIO (gpiozero), and the kiosk the other way round (issue 15: resident memory).
if TYPE_CHECKING:
    from sensors.battery import Battery, SMBusLike
    from sensors.camera import Camera
    from sensors.fingerprint import ZfmFingerprintSensor
    from sensors.gnss import NmeaGnss
    from sensors.gpio import KitGpio
    from sensors.modem import AtModem
    from sensors.settings import (
        BatterySection,
        CameraSection,
        FingerprintSection,
        GnssSection,
        GpioSection,
        ModemSection,
    )

log = logging.getLogger(__name__)


def _disabled(device: str, key: str) -> DeviceError:
    return DeviceError(device, "configure", id=f"{device} dimatikan di konfigurasi",
                       en=f"{device} is disabled in the configuration",
                       hint_id=f"Setel {key} = true bila perangkat terpasang",
                       hint_en=f"Set {key} = true when the device is fitted", code="disabled")


def open_camera(section: CameraSection, *, emulator: Any = None) -> Camera:
    """The camera ``devices.camera`` names (not yet started)."""
    from sensors.camera import OpenCvCamera, Picamera2Camera

    if section.kind == "picamera2":
        return Picamera2Camera(section.width, section.height)
    if section.kind == "opencv":
        return OpenCvCamera(section.device, section.width, section.height)
    if section.kind == "emulated":
        from sensors.emulated.camera import EmulatedCamera

        return EmulatedCamera(section.width, section.height, emulator=emulator)
    raise DeviceError("camera", "open", id=f"Jenis kamera tidak dikenal: {section.kind!r}",
                      en=f"Unknown camera kind: {section.kind!r}",
                      hint_id='Pakai "picamera2", "opencv" atau "emulated"',
                      hint_en='Use "picamera2", "opencv" or "emulated"')


def open_fingerprint(section: FingerprintSection, *, runtime_dir: str | Path | None = None
                       ) -> ZfmFingerprintSensor:
    """The sensor ``[devices.fingerprint]`` describes (not yet opened).

    ``port = "emulated"`` starts the emulated twin in ``runtime_dir`` (its
    template library is kept there).
    """
    from sensors.fingerprint import ZfmFingerprintSensor

    if not section.enabled:
        raise _disabled("fingerprint", "devices.fingerprint.enabled")
    common: dict[str, Any] = {"address": section.address, "password": section.password,
                              "finger_timeout": section.finger_timeout_s}
    if section.port == "emulated":
        where = Path(runtime_dir) if runtime_dir else Path(tempfile.mkdtemp(prefix="zfm-"))
        from sensors.emulated.zfm import EmulatedZfmSensor

        return EmulatedZfmSensor(where, baud=section.baud, **common)
    return ZfmFingerprintSensor(section.port, baud=section.baud, **common)


def open_gnss(section: GnssSection) -> NmeaGnss:
    """The GNSS receiver ``[devices.gnss]`` names (not yet started)."""
    from sensors.gnss import NmeaGnss

    if not section.enabled:
        raise _disabled("gnss", "devices.gnss.enabled")
    return NmeaGnss(section.port, section.baud)


def open_modem(section: ModemSection) -> AtModem:
    """The LTE modem's AT port ``[devices.modem]`` names (opened on the first command)."""
    from sensors.modem import AtModem

    if not section.enabled:
        raise _disabled("modem", "devices.modem.enabled")
    return AtModem(section.port, section.baud)


def open_battery(section: BatterySection, *,
                 bus_factory: Callable[[int], SMBusLike] | None = None) -> Battery | None:
    """The battery ``devices.battery`` names, or None for ``kind = "none"``.

    ``emulated`` is the INA219 driver on an emulated UPS HAT (2 cells unless
    ``cells`` says otherwise), so the real driver code runs.
    """
    from sensors.battery import Ina219Battery, SysfsBattery

    if section.kind == "none":
        return None
    if section.kind == "sysfs":
        return SysfsBattery(section.sysfs_dir)
    if section.kind == "ina219":
        return Ina219Battery(section.i2c_bus, section.i2c_address, section.cells,
                             bus_factory=bus_factory)
    if section.kind == "emulated":
        from sensors.emulated.battery import EmulatedIna219

        hat = EmulatedIna219(section.i2c_address, cells=section.cells)
        hat.start()
        return Ina219Battery(section.i2c_bus, section.i2c_address, section.cells,
                             bus_factory=bus_factory or hat.open_bus)
    raise DeviceError("battery", "open", id=f"Jenis baterai tidak dikenal: {section.kind!r}",
                      en=f"Unknown battery kind: {section.kind!r}",
                      hint_id='Pakai "sysfs", "ina219", "emulated" atau "none"',
                      hint_en='Use "sysfs", "ina219", "emulated" or "none"')


def open_gpio(section: GpioSection, *,
              pin_factory: Any = None) -> tuple[KitGpio | None, DeviceError | None]:
    """Open button, LED and buzzer on the pins ``devices.gpio`` names.

    Returns ``(parts, None)``, or ``(None, error)`` when any part cannot be
    opened (the ones already open are closed again), so the caller can log
    the reason, show it to a technician, and carry on without GPIO.
    """
    from sensors.gpio import Buzzer, CaptureButton, KitGpio, StatusLed

    opened: list[Any] = []
    try:
        button = CaptureButton(section.capture_button, repeat_guard=section.repeat_guard_s,
                               pin_factory=pin_factory)
        opened.append(button)
        led = StatusLed(section.status_led, pin_factory=pin_factory)
        opened.append(led)
        buzzer = Buzzer(section.buzzer, pin_factory=pin_factory)
    except DeviceError as exc:
        for part in opened:
            part.close()
        log.warning("running without GPIO: %s", exc.text("en"))
        return None, exc
    return KitGpio(button, led, buzzer), None
