"""UI tests: a real Kivy window under Xvfb, one kiosk process per scenario and size.

A session fixture starts ``Xvfb`` when no display is set (so ``python -m pytest`` works
in CI as it is); each scenario runs in ``tests.ui.driver`` against the ``kit_on_rig``
emulated rig, and screenshots land in ``artefacts/screens/`` (gitignored).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artefacts" / "screens"


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        pytest.skip("no display and no Xvfb to make one")
    # -displayfd makes Xvfb pick a free display number and tell us which.
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1280x24",
                             "-nolisten", "tcp"], pass_fds=(write,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    number = bytearray()

    def told() -> bool:
        """Xvfb wrote its display number and a newline (or closed the pipe: it died)."""
        if select.select([read], [], [], 0.1)[0]:
            chunk = os.read(read, 16)
            if not chunk:
                return True
            number.extend(chunk)
        return number.endswith(b"\n")

    try:
        wait_until(told, 10, "Xvfb to tell its display number")
    except AssertionError:
        proc.kill()
        raise
    finally:
        os.close(read)
    if not number.strip():
        proc.kill()
        pytest.fail("Xvfb did not start")
    name = f":{number.decode().strip()}"
    try:
        yield name
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run_scenario(display: str, kit: Any, scenario: str, size: str = "800x480", *,
                 disk: Path | None = None, timeout: float = 180,
                 lang: str = "id") -> dict[str, Any]:
    """Run ``scenario`` in a kiosk process against ``kit`` (a KitOnRig) with the kiosk in
    ``lang``; its findings."""
    result = kit.root / f"ui-{scenario}-{size}-{lang}.json"
    env = dict(os.environ, DISPLAY=display, GPIOZERO_PIN_FACTORY="mock",
               KIVY_NO_ARGS="1", KIVY_HOME=str(kit.root / "kivy"))
    cmd = [sys.executable, "-m", "tests.ui.driver", "--config", kit.config.source,
           "--scenario", scenario, "--size", size, "--control", str(kit.control_fifo),
           "--result", str(result), "--shots", str(SHOTS), "--lang", lang]
    if disk is not None:
        cmd += ["--disk", str(disk)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if not result.exists():
        pytest.fail(f"kiosk process died (status {proc.returncode}):\n{proc.stderr[-4000:]}")
    outcome = json.loads(result.read_text(encoding="utf-8"))
    if not outcome["ok"]:
        pytest.fail(f"scenario {scenario} at {size} failed:\n{outcome.get('error')}\n"
                    f"stderr:\n{proc.stderr[-3000:]}")
    return outcome
