"""The kit's devices opened together from the configuration, degraded when some are missing.

The kiosk (and the headless driver) holds the camera and the fingerprint
sensor; the agent holds the modem and the GNSS receiver (DESIGN.md s4) and
shares what they say through the store (:mod:`kit.shared_readings`). Both
open their devices here. A device that cannot be opened is recorded with
the reason, in both languages, and the kit carries on without it: the
officer is told which device is missing instead of meeting a dead screen.

>>> devices = KitDevices.open(config, want=("camera", "fingerprint"))   # doctest: +SKIP
>>> devices.missing()                                                  # doctest: +SKIP
{'fingerprint': 'fingerprint: sensor tidak menjawab ...'}
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kit.config import KitConfig
from kit.keyring import AGENT_KEY, machine_secret
from kit.shared_readings import shared_gnss_fix
from kit.vault import DataKey
from sensors.errors import DeviceError
from sync import __version__
from sync.domain import RecordedFix
from sync.errors import JaranIjoError

if TYPE_CHECKING:
    from sensors.battery import Battery
    from sensors.camera import Camera
    from sensors.fingerprint import FingerprintSensor
    from sensors.gnss import Gnss, GnssFix
    from sensors.modem import Modem

log = logging.getLogger(__name__)

ALL = ("camera", "fingerprint", "gnss", "battery", "modem")
# What a visit uses, and so what KitDevices.open opens unless told otherwise; the modem is
# the agent's alone (the kiosk sees the modem's view through the store).
VISIT = ("camera", "fingerprint", "gnss", "battery")


@dataclass
class KitDevices:
    """Open devices (None where missing) and why each missing one is missing."""

    config: KitConfig
    camera: Camera | None = None
    fingerprint: FingerprintSensor | None = None
    gnss: Gnss | None = None
    battery: Battery | None = None
    modem: Modem | None = None
    camera_emulator: Any = None
    problems: dict[str, JaranIjoError | DeviceError] = field(default_factory=dict)
    # The agent's key for the fix it shares: read once (with a TPM, an unseal each time
    # would cost the status bar a TPM command every few seconds).
    place_key: DataKey | None = None
    place_key_failed: bool = False

    @classmethod
    def open(cls, config: KitConfig, *, want: Iterable[str] = VISIT,
             camera_emulator: Any = None) -> KitDevices:
        """Open the devices named in ``want`` (of :data:`ALL`); never raises for one that
        cannot be opened: it stays None and :meth:`missing` says why."""
        devices = cls(config, camera_emulator=camera_emulator)
        for name in want:
            try:
                setattr(devices, name, getattr(devices, f"_open_{name}")())
            except (JaranIjoError, DeviceError) as exc:
                devices.problems[name] = exc
                # A device switched off in the configuration is a choice, not a fault.
                level = logging.INFO if exc.code == "disabled" else logging.WARNING
                log.log(level, "%s unavailable: %s", name, exc.text("en"))
            except (OSError, ValueError) as exc:
                devices.problems[name] = DeviceError(
                    name, "open", id=f"{name} tidak dapat dibuka ({exc})",
                    en=f"{name} cannot be opened ({exc})",
                    hint_id="Periksa kabel dan konfigurasi", hint_en="Check the cable and the "
                    "configuration")
                log.warning("%s unavailable: %s", name, exc)
        return devices

    def _open_camera(self) -> Camera:
        from sensors.registry import open_camera

        section = self.config.devices.camera
        if section.kind == "emulated" and self.camera_emulator is None:
            from sensors.emulated.camera import CameraEmulator

            self.camera_emulator = CameraEmulator(section.width, section.height,
                                                  fps=section.fps)
            self.camera_emulator.start()
        camera = open_camera(section, emulator=self.camera_emulator)
        camera.start()
        return camera

    def _open_fingerprint(self) -> FingerprintSensor:
        from sensors.registry import open_fingerprint

        sensor = open_fingerprint(self.config.devices.fingerprint,
                                  runtime_dir=self.config.data_dir / "emulated-fingerprint")
        sensor.open()
        return sensor

    def _open_gnss(self) -> Gnss:
        from sensors.registry import open_gnss

        return open_gnss(self.config.devices.gnss)

    def _open_modem(self) -> Modem:
        from sensors.registry import open_modem

        return open_modem(self.config.devices.modem)

    def _open_battery(self) -> Battery:
        from sensors.registry import open_battery

        battery = open_battery(self.config.devices.battery)
        if battery is None:
            raise _disabled("battery")
        return battery

    # -- what the workflow needs ---------------------------------------------------------------
    def missing(self, lang: str = "id") -> dict[str, str]:
        return {name: exc.text(lang) for name, exc in self.problems.items()}

    def gnss_fix(self, timeout: float = 2.0) -> RecordedFix | None:
        """The latest fix as the domain keeps it in a record, or None without one.

        Waits up to ``timeout`` for a first fix (a receiver opened a moment ago
        needs one NMEA cycle); a fix older than 30 s is not the bedside's. Without a
        receiver of its own (the kiosk) it takes the fix the agent shared.
        """
        if self.gnss is None:
            fix = self._fix_from_agent()
        else:
            fix = self.gnss.fix(timeout=timeout, max_age_s=30.0)
        if fix is None or fix.hdop is None or fix.accuracy_m is None:
            return None
        return RecordedFix(lat=fix.lat, lon=fix.lon, accuracy_m=float(fix.accuracy_m),
                       altitude_m=fix.altitude_m, time_utc=fix.time_utc,
                       satellites=int(fix.satellites or 0), hdop=float(fix.hdop))

    def _fix_from_agent(self, max_age_s: float = 30.0) -> GnssFix | None:
        """The fix the agent (which owns the GNSS port) last shared through the store."""
        from kit.store import Store

        if self.place_key is None:
            try:
                raw = machine_secret(self.config, AGENT_KEY)
            except JaranIjoError as exc:  # e.g. the TPM cannot be opened: say so, once
                if not self.place_key_failed:
                    self.place_key_failed = True
                    log.warning("the agent's fix cannot be read: %s", exc.text("en"))
                return None
            if raw is None or len(raw) != 32:  # the agent has no key yet: no fix shared
                return None
            self.place_key = DataKey(raw)
        try:
            with Store.open(self.config.store_path, create=False, check=False) as store:
                return shared_gnss_fix(store, self.place_key, max_age_s=max_age_s)
        except (JaranIjoError, ValueError):
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
