"""Kiosk figures: live preview rate, touch-to-response time, memory of the UI process.

Runs the real kiosk (Kivy window under Xvfb if there is no display) against an emulated
rig, drives it by touch, and prints:

* preview frames per second on the photo screen, against the emulated camera's own
  frame rate (the baseline: the UI cannot show more than the camera delivers);
* time from a touch being released to the screen showing the result (the language
  switch, which relabels every widget), against one bare frame of the event loop;
* the UI process's resident memory with the camera preview running.

    .venv/bin/python -m tests.bench.bench_ui
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
from pathlib import Path


def main() -> None:
    import tests.conftest as shared
    from tests.ui import conftest as ui

    root = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    display_gen = ui.display.__wrapped__()
    display = next(display_gen)
    try:
        with shared.kit_rig(root) as kit:
            out = ui.run_scenario(display, kit, "bench")["findings"]
    finally:
        with contextlib.suppress(StopIteration):
            next(display_gen)
    lat = sorted(out["latencies"])
    frame = statistics.median(out["frame"])
    print("kiosk UI bench (800x480, emulated devices, Xvfb + llvmpipe)")
    print(f"  preview: {out['preview_fps']:.1f} frames/s shown; camera delivers "
          f"{out['camera_fps']:.1f} -> ratio {out['preview_fps'] / out['camera_fps']:.2f}")
    print(f"  touch to visible response: median {statistics.median(lat) * 1000:.1f} ms, "
          f"worst {lat[-1] * 1000:.1f} ms over {len(lat)} touches; one bare frame "
          f"{frame * 1000:.1f} ms -> {statistics.median(lat) / frame:.1f} frames")
    print(f"  UI process memory (RSS, preview running): {out['rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
