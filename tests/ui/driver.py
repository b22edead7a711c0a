"""Run one UI scenario in its own process: ``python -m tests.ui.driver ...``.

Kivy's window is a singleton per process, so each scenario (and each display size) gets
a process of its own. The kiosk runs against an emulated rig the parent test started,
told who is on the fingerprint sensor through the rig's control FIFO -- the same way the
demo runs it against ``jaranijo emulate``. The scenario's findings go to ``--result``
as JSON; a failed check exits with status 1 and the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import threading
import traceback
from pathlib import Path
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--size", default="800x480")
    parser.add_argument("--control", required=True, help="the rig's control FIFO")
    parser.add_argument("--result", required=True)
    parser.add_argument("--shots", required=True)
    parser.add_argument("--disk", default="", help="measure free space here (full-disk test)")
    parser.add_argument("--lang", default="id")
    args = parser.parse_args()
    os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

    from kit.config import load_config
    from kit.scripted_visit import fifo_writer
    from ui.launch import run_kiosk

    width, height = (int(v) for v in args.size.split("x"))
    outcome: dict[str, Any] = {"ok": False}

    def start(app: Any) -> None:
        # Imported only now: the pilot imports Kivy's window, which must not exist before
        # run_kiosk has set the window size.
        from tests.ui import scenarios, screen_checks
        from tests.ui.pilot import Pilot

        name = f"scenario_{args.scenario}"
        scenario = getattr(scenarios, name, None) or getattr(screen_checks, name)
        tag = f"{width}x{height}-{args.scenario}" + ("" if args.lang == "id" else
                                                       f"-{args.lang}")

        def run() -> None:
            pilot = Pilot(app, Path(args.shots), tag,
                          control=fifo_writer(Path(args.control)))
            try:
                outcome["findings"] = scenario(pilot) or {}
                outcome["ok"] = True
            except BaseException:
                outcome["error"] = traceback.format_exc()
                with contextlib.suppress(Exception):
                    pilot.shot("failure")
            outcome["overflows"] = pilot.overflows
            outcome["screens"] = pilot.screens_seen
            outcome["messages"] = list(app.errors_shown)
            from kivy.clock import Clock

            Clock.schedule_once(lambda _dt: app.stop(), 0.2)

        threading.Thread(target=run, name="scenario", daemon=True).start()

    disk = Path(args.disk) if args.disk else None
    run_kiosk(load_config(args.config), lang=args.lang, size=(width, height),
              fullscreen=False, emulator_control=fifo_writer(Path(args.control)),
              disk_usage=(lambda _p: shutil.disk_usage(disk)) if disk else None,
              on_start=start)
    Path(args.result).write_text(json.dumps(outcome, indent=1), encoding="utf-8")
    if not outcome["ok"]:
        print(outcome.get("error", "scenario did not finish"), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
