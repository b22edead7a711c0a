"""The emulated rig: every emulated device of a kit, on stable paths in one folder.

``jaranijo emulate --dir DIR`` runs one; the demo and the tests start one
in-process. The serial devices appear as links a driver opens like real
ports::

    DIR/fingerprint   ZhianTec ZFM fingerprint sensor (pyfingerprint talks to it)
    DIR/gps           GNSS receiver, NMEA 0183 at 1 Hz
    DIR/modem         LTE modem, AT commands (SIM7600 or Quectel EC25)
    DIR/power_supply  a Linux power_supply tree with a discharging battery
    DIR/control       a FIFO: write "DEVICE CONTROL [ARGS]" lines to inject faults

Fault controls sit outside the wire protocol, as on a bench where a
technician pulls a cable: ``echo "fingerprint unplug" > DIR/control``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shlex
import threading
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Emulator(Protocol):
    CONTROLS: dict[str, str]

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def control(self, name: str, *args: str) -> str: ...


def device_classes() -> dict[str, Any]:
    """The emulated device classes by the name used in control lines."""
    from sensors.emulated.battery import EmulatedPowerSupply
    from sensors.emulated.gnss import GnssEmulator
    from sensors.emulated.modem import ModemEmulator
    from sensors.emulated.zfm import ZfmEmulator

    return {"fingerprint": ZfmEmulator, "gps": GnssEmulator, "modem": ModemEmulator,
            "battery": EmulatedPowerSupply}


def controls_help() -> str:
    """Every control of every device, for ``jaranijo emulate --help``."""
    lines = []
    for device, cls in device_classes().items():
        for name, text in cls.CONTROLS.items():
            text = text if text.startswith(name) else f"{name}: {text}"
            lines.append(f"  {device:<12} {text}")
    return "\n".join(lines)


class EmulatedRig:
    """Start every emulated device under ``directory``; stop them all with :meth:`stop`.

    >>> with EmulatedRig(tmp_path) as rig:              # doctest: +SKIP
    ...     rig.control("fingerprint", "unplug")
    """

    def __init__(self, directory: str | Path, *, fingerprint_baud: int = 57600,
                 control_fifo: bool = True) -> None:
        classes = device_classes()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        state = self.directory / "state"
        state.mkdir(exist_ok=True)
        self.devices: dict[str, Emulator] = {
            "fingerprint": classes["fingerprint"](self.directory / "fingerprint",
                                                  baud=fingerprint_baud, state_dir=state),
            "gps": classes["gps"](self.directory / "gps", baud=9600),
            "modem": classes["modem"](self.directory / "modem", baud=115200),
            "battery": classes["battery"](self.directory / "power_supply"),
        }
        self.control_path = self.directory / "control" if control_fifo else None
        self._fifo_thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def paths(self) -> dict[str, Path]:
        return {
            "fingerprint": self.directory / "fingerprint",
            "gps": self.directory / "gps",
            "modem": self.directory / "modem",
            "power_supply": self.directory / "power_supply",
        }

    def start(self) -> EmulatedRig:
        for device in self.devices.values():
            device.start()
        if self.control_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.control_path.unlink()
            os.mkfifo(self.control_path, 0o600)
            self._fifo_thread = threading.Thread(target=self._serve_fifo, name="rig-control",
                                                 daemon=True)
            self._fifo_thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self.control_path is not None and self._fifo_thread is not None:
            # Wake the reader blocked in open() so it can see the stop flag.
            with contextlib.suppress(OSError):
                fd = os.open(self.control_path, os.O_WRONLY | os.O_NONBLOCK)
                os.close(fd)
            self._fifo_thread.join(timeout=2)
            with contextlib.suppress(FileNotFoundError):
                self.control_path.unlink()
        for device in self.devices.values():
            device.stop()

    def __enter__(self) -> EmulatedRig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def control(self, device: str, name: str, *args: str) -> str:
        """Apply one control; ValueError with a reason for an unknown device or control."""
        if device not in self.devices:
            raise ValueError(f"unknown device '{device}' (known: {', '.join(self.devices)})")
        return str(self.devices[device].control(name, *args))

    def control_line(self, line: str) -> str:
        words = shlex.split(line)
        if len(words) < 2:
            raise ValueError("a control line is: DEVICE CONTROL [ARGS...]")
        return self.control(words[0], words[1], *words[2:])

    def _serve_fifo(self) -> None:
        assert self.control_path is not None
        while not self._stopping.is_set():
            try:
                with open(self.control_path, encoding="utf-8", errors="replace") as fifo:
                    for line in fifo:
                        if not line.strip() or line.lstrip().startswith("#"):
                            continue
                        try:
                            print(f"control: {line.strip()} -> {self.control_line(line)}",
                                  flush=True)
                        except ValueError as exc:
                            print(f"control: {line.strip()} -> refused: {exc}", flush=True)
            except OSError as exc:
                if exc.errno != errno.EINTR:
                    log.warning("control FIFO failed: %s", exc)
                    return
