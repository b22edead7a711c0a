"""The kit's devices opened together from the configuration, degraded when some are missing.

The kiosk (and the headless driver) holds the camera and the fingerprint
sensor; the agent holds the modem and the GNSS receiver (DESIGN.md s4). A
device that cannot be opened is recorded with the reason, in both
languages, and the kit carries on without it: the officer is told which
device is missing instead of meeting a dead screen.

>>> devices = KitDevices.open(config, want=("camera", "fingerprint"))   # doctest: +SKIP
>>> devices.missing()                                                  # doctest: +SKIP
{'fingerprint': 'fingerprint: sensor tidak menjawab ...'}
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kit.config import KitConfig
from sensors.errors import DeviceError
from sync import __version__
from sync.domain import GnssFix
from sync.errors import JaranIjoError

log = logging.getLogger(__name__)

ALL = ("camera", "fingerprint", "gnss", "battery")


@dataclass
class KitDevices:
    """Open devices (None where missing) and why each missing one is missing."""

    config: KitConfig
    camera: Any = None
    fingerprint: Any = None
    gnss: Any = None
    battery: Any = None
    camera_emulator: Any = None
    problems: dict[str, JaranIjoError | DeviceError] = field(default_factory=dict)

    @classmethod
    def open(cls, config: KitConfig, *, want: Iterable[str] = ALL,
             camera_emulator: Any = None) -> KitDevices:
        devices = cls(config, camera_emulator=camera_emulator)
        for name in want:
            try:
                setattr(devices, name, getattr(devices, f"_open_{name}")())
            except (JaranIjoError, DeviceError) as exc:
                devices.problems[name] = exc
                log.warning("%s unavailable: %s", name, exc.text("en"))
            except (OSError, ValueError) as exc:
                devices.problems[name] = DeviceError(
                    name, "open", id=f"{name} tidak dapat dibuka ({exc})",
                    en=f"{name} cannot be opened ({exc})",
                    hint_id="Periksa kabel dan konfigurasi", hint_en="Check the cable and the "
                    "configuration")
                log.warning("%s unavailable: %s", name, exc)
        return devices

    def _open_camera(self) -> Any:
        from sensors.camera import open_camera

        section = self.config.devices.camera
        if section.kind == "emulated" and self.camera_emulator is None:
            from sensors.emulated.camera import CameraEmulator

            self.camera_emulator = CameraEmulator(section.width, section.height,
                                                  fps=section.fps)
            self.camera_emulator.start()
        camera = open_camera(section, emulator=self.camera_emulator)
        camera.start()
        return camera

    def _open_fingerprint(self) -> Any:
        from sensors.fingerprint import fingerprint_sensor

        sensor = fingerprint_sensor(self.config.devices.fingerprint,
                                    runtime_dir=self.config.data_dir / "emulated-fingerprint")
        sensor.open()
        return sensor

    def _open_gnss(self) -> Any:
        from sensors.gnss import NmeaGnss

        section = self.config.devices.gnss
        if not section.enabled:
            raise _disabled("gnss")
        return NmeaGnss.from_config(section)

    def _open_battery(self) -> Any:
        from sensors.battery import open_battery

        battery = open_battery(self.config.devices.battery)
        if battery is None:
            raise _disabled("battery")
        return battery

    # -- what the workflow needs ---------------------------------------------------------------
    def missing(self, lang: str = "id") -> dict[str, str]:
        return {name: exc.text(lang) for name, exc in self.problems.items()}

    def gnss_fix(self, timeout: float = 2.0) -> GnssFix | None:
        """The latest fix as the domain keeps it in a record, or None without one.

        Waits up to ``timeout`` for a first fix (a receiver opened a moment ago
        needs one NMEA cycle); a fix older than 30 s is not the bedside's.
        """
        if self.gnss is None:
            return self._fix_from_agent()
        fix = self.gnss.fix(timeout=timeout, max_age_s=30.0)
        if fix is None or fix.hdop is None or fix.accuracy_m is None:
            return None
        return GnssFix(lat=fix.lat, lon=fix.lon, accuracy_m=float(fix.accuracy_m),
                       altitude_m=fix.altitude_m, time_utc=fix.time_utc,
                       satellites=int(fix.satellites or 0), hdop=float(fix.hdop))

    def _fix_from_agent(self, max_age_s: float = 30.0) -> GnssFix | None:
        """The fix the agent (which owns the GNSS port) last shared through the store."""
        from datetime import UTC, datetime

        from kit.store import Store

        try:
            with Store.open(self.config.store_path, create=False, check=False) as store:
                data = store.status("gnss_fix")
        except JaranIjoError:
            return None
        if not isinstance(data, dict):
            return None
        try:
            when = datetime.fromisoformat(data["time_utc"])
            if (datetime.now(UTC) - when).total_seconds() > max_age_s or \
                    data["accuracy_m"] is None or data["hdop"] is None:
                return None
            return GnssFix(lat=float(data["lat"]), lon=float(data["lon"]),
                           accuracy_m=float(data["accuracy_m"]),
                           altitude_m=data["altitude_m"], time_utc=when,
                           satellites=int(data["satellites"] or 0), hdop=float(data["hdop"]))
        except (KeyError, TypeError, ValueError):
            return None

    def battery_percent(self) -> float | None:
        if self.battery is None:
            return None
        try:
            return self.battery.read().percent
        except DeviceError:
            return None

    def identities(self) -> dict[str, str]:
        """Device identities and firmware for the record (no personal data)."""
        out = {"software": f"jaranijo {__version__}",
               "camera": self.config.devices.camera.kind}
        if self.fingerprint is not None:
            try:
                info = self.fingerprint.system_parameters()
                out["fingerprint"] = (f"ZFM system_id=0x{info.system_id:04x} "
                                      f"capacity={info.capacity} security={info.security_level}"
                                      f" packet={info.packet_size} baud={info.baud}")
            except DeviceError as exc:
                out["fingerprint"] = f"unavailable ({exc.code})"
        return out

    def close(self) -> None:
        for name in ALL:
            device = getattr(self, name)
            if device is None:
                continue
            closer = getattr(device, "stop" if name == "camera" else "close", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    closer()
        if self.camera_emulator is not None:
            with contextlib.suppress(Exception):
                self.camera_emulator.stop()


def _disabled(name: str) -> DeviceError:
    return DeviceError(name, "open", id=f"{name} dimatikan di konfigurasi",
                       en=f"{name} is disabled in the configuration",
                       code="disabled")
