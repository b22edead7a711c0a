"""Start the kiosk: ``jaranijo ui`` calls :func:`run_kiosk` with the kit's configuration.

On a Raspberry Pi it opens full screen on the 7-inch panel (SDL2 KMS/DRM from the console,
or under the kiosk's X/Wayland session) with the real camera, sensor and GPIO; on a desktop
it opens an 800x480 (or 720x1280) window and works against the emulated devices the same
configuration names. With an emulated rig already running (``jaranijo emulate --dir DIR``),
pass ``emulator_control=fifo_writer(DIR / "control")`` so the emulated sensor knows which
resident's finger is on the glass -- used only when the devices are emulated.

>>> from kit.config import load_config                        # doctest: +SKIP
>>> run_kiosk(load_config("/etc/jaranijo/kit.toml"), lang="id")  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kit.config import KitConfig

log = logging.getLogger(__name__)

LANDSCAPE = (800, 480)   # official 7-inch display, landscape
PORTRAIT = (720, 1280)   # 7-inch 720x1280 panels mounted upright


def configure(size: tuple[int, int] = LANDSCAPE, *, fullscreen: bool = False,
              virtual_keyboard: bool = True) -> None:
    """Set Kivy's Config; must run before anything imports ``kivy.core.window``."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")  # our command line is not Kivy's
    os.environ.setdefault("KIVY_NO_FILELOG", "1")  # logs go to stdout/journald only
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    from kivy.config import Config

    Config.set("graphics", "width", str(size[0]))
    Config.set("graphics", "height", str(size[1]))
    Config.set("graphics", "resizable", "0")
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("graphics", "show_cursor", "0" if fullscreen else "1")
    Config.set("kivy", "exit_on_escape", "0")
    # An on-screen keyboard docked at the bottom for the few typed fields (witness, note).
    Config.set("kivy", "keyboard_mode", "systemanddock" if virtual_keyboard else "system")
    # Mouse clicks act as single touches (no red multitouch dots on a desktop).
    Config.set("input", "mouse", "mouse,disable_multitouch")


def run_kiosk(config: KitConfig, *, lang: str | None = None,
              emulator_control: Callable[[str], str] | None = None,
              size: tuple[int, int] | None = None, fullscreen: bool | None = None,
              devices: Any = None, gpio: Any = None,
              disk_usage: Callable[[Path], Any] | None = None,
              on_start: Callable[[Any], None] | None = None) -> int:
    """Open the kiosk window and run until it is closed; returns an exit status.

    ``lang`` defaults to ``kit.language``; ``size`` to 800x480 (ignored full screen);
    ``fullscreen`` defaults to True on a console without X/Wayland (the Pi kiosk).
    ``devices`` (a :class:`kit.devices.KitDevices`) and ``gpio`` default to those the
    configuration names (GPIO absent off a Pi: the screen has the same buttons).
    ``on_start(app)`` runs once the window is up (tests drive the kiosk from it).
    """
    from kit.devices import KitDevices
    from kit.visit import VisitController
    from sensors.errors import DeviceError
    from sensors.registry import open_gpio
    from sync.errors import JaranIjoError

    if fullscreen is None:
        fullscreen = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    configure(size or LANDSCAPE, fullscreen=fullscreen)
    from ui.screens.technician import RecentLog

    recent = RecentLog()
    logging.getLogger().addHandler(recent)
    own_devices = devices is None
    if devices is None:
        # The agent owns the GNSS and modem ports (two readers of one serial port would
        # each get half the bytes); the kiosk gets the fix from it through the store.
        devices = KitDevices.open(config, want=("camera", "fingerprint", "battery"))
    own_gpio = gpio is None
    if gpio is None:
        gpio, problem = open_gpio(config.devices.gpio)
        if problem is not None:
            log.info("no GPIO: %s", problem.text("en"))
    try:
        kiosk = VisitController(config, devices=devices, disk_usage=disk_usage,
                      emulator_control=emulator_control if _emulated(config) else None)
    except (JaranIjoError, DeviceError) as exc:
        log.error("kiosk cannot start: %s", exc.text("en"))
        print(exc.text(lang or config.kit.language))
        return 2
    from kivy.clock import Clock

    from ui.app import KioskApp

    app = KioskApp(kiosk, lang=lang or config.kit.language, gpio=gpio, recent_log=recent)
    if on_start is not None:
        Clock.schedule_once(lambda _dt: on_start(app), 0.5)
    try:
        app.run()
    finally:
        kiosk.close()
        if own_gpio and gpio is not None:
            gpio.close()
        if own_devices:
            devices.close()
        logging.getLogger().removeHandler(recent)
    return 0


def _emulated(config: KitConfig) -> bool:
    """Emulated devices: the emulated camera, or a sensor port that is a pty link or
    ``emulated`` (a real sensor sits on /dev/ttyUSB*, /dev/jaranijo/* or socket://)."""
    port = config.devices.fingerprint.port
    if config.devices.camera.kind == "emulated" or port == "emulated":
        return True
    path = Path(port)
    return path.is_symlink() and os.readlink(path).startswith("/dev/pts/")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``ui`` to ``jaranijo`` (:mod:`sync.cli` finds this through its entry points)."""
    p = sub.add_parser("ui", help="start the kiosk touchscreen UI from the kit configuration")
    p.set_defaults(func=cmd_ui)


def cmd_ui(args: argparse.Namespace) -> int:
    from kit.cli import read_config

    return run_kiosk(read_config(args), lang=args.lang if args.lang_given else None)
