"""``jaranijo emulate``: every emulated device on pseudo-terminals, for a desk or a bench.

:mod:`sync.cli` finds :func:`register` through the ``jaranijo.commands``
entry points.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

_CONTROLS = "\0controls"  # stands for _epilog() until --help is printed


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Writes the fault controls' help only when help is shown: listing them imports the
    emulated devices (NumPy, OpenCV: ~40 MiB), and every ``jaranijo`` command -- the agent
    and the kiosk on a kit too -- registers ``emulate``."""

    def add_text(self, text: str | None) -> None:
        super().add_text(_epilog() if text == _CONTROLS else text)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``emulate`` to ``jaranijo``."""
    p = sub.add_parser(
        "emulate", help="run every emulated device on pseudo-terminals until interrupted",
        formatter_class=_HelpFormatter,
        description="Start the emulated fingerprint sensor, GNSS receiver, LTE modem and a\n"
                    "battery (power_supply tree) in DIR. Point the kit configuration at\n"
                    "DIR/fingerprint, DIR/gps, DIR/modem and DIR/power_supply.",
        epilog=_CONTROLS)
    p.add_argument("--dir", required=True, help="folder for the device links (created)")
    p.add_argument("--fingerprint-baud", type=int, default=57600,
                   help="the emulated sensor's line rate (57600 or 115200)")
    p.set_defaults(func=cmd_emulate)


def cmd_emulate(args: argparse.Namespace) -> int:
    from sensors.emulated.rig import EmulatedRig

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with EmulatedRig(Path(args.dir), fingerprint_baud=args.fingerprint_baud) as rig:
        for name, path in rig.paths.items():
            print(f"{name:<12} {path}")
        print(f"{'control':<12} {rig.control_path}  (echo 'fingerprint unplug' > it)")
        print("Running; Ctrl-C stops.", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


def _epilog() -> str:
    try:
        from sensors.emulated.rig import controls_help
    except ImportError:  # a broken install still gets the rest of --help
        return ""
    return ("Fault controls: write a line 'DEVICE CONTROL [ARGS]' to DIR/control, e.g.\n"
            "  echo 'fingerprint unplug' > DIR/control\n\n" + controls_help())
