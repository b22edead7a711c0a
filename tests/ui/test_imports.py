"""What the kiosk and the agent load before they need it (issue 15: both within 250 MB).

OpenCV (about 16 MiB resident), the TPM library (tpm2_pytss with cffi and cryptography,
about 20 MiB), gpiozero and pyfingerprint are imported where they are used, not when the
modules that mention them are: each test runs in a fresh interpreter, since this test
process has them all loaded already. ``tests/bench/bench_memory.py`` has the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.ui.conftest import ROOT


def loaded_after(code: str, watch: tuple[str, ...]) -> list[str]:
    """Which of ``watch`` are in ``sys.modules`` once ``code`` has run in a fresh
    interpreter."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps([m for m in {watch!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, check=True,
                         env=dict(os.environ, GPIOZERO_PIN_FACTORY="mock")).stdout
    return list(json.loads(out.splitlines()[-1]))


def test_the_kiosk_start_path_imports_neither_opencv_nor_the_tpm_library() -> None:
    """What ui.launch imports before the window opens (the kit, its store and vault, the
    visit logic, the device registry): no OpenCV until a photo or a finger is checked,
    no TSS until a TPM is opened."""
    code = ("import ui.launch, kit.devices, kit.visit, kit.workflow, kit.keyring, kit.vault, "
            "kit.provision, kit.tpm, sensors.registry, sensors.fingerprint_quality")
    assert loaded_after(code, ("cv2", "tpm2_pytss", "cryptography")) == []


def test_the_agent_loads_none_of_the_kiosks_drivers() -> None:
    """The agent opens the GNSS, the modem and the battery; the fingerprint sensor's
    library (pyfingerprint, PIL), gpiozero, OpenCV and Kivy belong to the kiosk. Nor
    does it load numpy (11 MiB), which sqlite-utils would import for its types."""
    code = ("import kit.agent.service, kit.devices, kit.keyring, sensors.registry\n"
            "from sensors.registry import open_battery, open_gnss, open_modem\n"
            "from sensors.settings import BatterySection, GnssSection, ModemSection\n"
            "open_battery(BatterySection(kind='none'))\n"
            "open_gnss(GnssSection(port='/dev/null'))\n"
            "open_modem(ModemSection(port='/dev/null'))")
    assert loaded_after(code, ("gpiozero", "pyfingerprint", "PIL", "cv2", "kivy",
                               "tpm2_pytss", "numpy", "pandas")) == []


def test_the_store_without_numpy_still_stores_and_numpy_loads_after_it(
        tmp_path: Path) -> None:
    """sqlite-utils is imported with numpy hidden, then numpy is shown again: the store
    writes and reads a row through sqlite-utils, and ``import numpy`` afterwards (what
    the kiosk's OpenCV does) gives the real module."""
    code = ("import sys, kit.store\nassert 'numpy' not in sys.modules\n"
            "import sqlite_utils.db\nassert sqlite_utils.db.np is None\n"
            f"db = kit.store.Database({str(tmp_path / 'x.db')!r})\n"
            "db['t'].insert({'id': 1, 'v': 'ok'}, pk='id')\n"
            "assert db['t'].get(1) == {'id': 1, 'v': 'ok'}\n"
            "import numpy\nassert numpy.zeros(3).sum() == 0")
    assert loaded_after(code, ("numpy", "sqlite_utils")) == ["numpy", "sqlite_utils"]


def test_the_kiosks_test_pilot_imports_no_pytest() -> None:
    """The scenarios and the driver run inside the kiosk's process (the memory bench
    measures it): pytest, which a kit does not carry, must not be loaded there."""
    code = "import tests.ui.scenarios, tests.ui.driver"
    assert loaded_after(code, ("pytest", "_pytest")) == []


def test_the_tpm_library_loads_on_the_first_tpm_operation() -> None:
    """kit.tpm imports tpm2_pytss when a Tpm is opened (or a blob read): the names the
    module uses are then the library's own."""
    code = ("import kit.tpm, sys\nassert 'tpm2_pytss' not in sys.modules\n"
            "kit.tpm._load_tss()\nimport tpm2_pytss, tpm2_pytss.types\n"
            "assert kit.tpm.ESAPI is tpm2_pytss.ESAPI\n"
            "assert kit.tpm.TPM2B_PUBLIC is tpm2_pytss.types.TPM2B_PUBLIC\n"
            "assert kit.tpm.TSS2_Exception is tpm2_pytss.TSS2_Exception")
    assert loaded_after(code, ("tpm2_pytss",)) == ["tpm2_pytss"]


# Runs in the kiosk process: which screens exist at start, then asks for two more.
KIOSK = """
import json, sys
from pathlib import Path
from kit.config import load_config
from ui.launch import run_kiosk

seen = {}

def start(app):
    seen["built"] = [s.name for s in app.screens.screens]
    seen["modules"] = sorted(m for m in sys.modules if m.startswith("ui.screens."))
    seen["tss"] = "tpm2_pytss" in sys.modules
    seen["has"] = app.screens.has_screen("fingerprints")
    seen["asked"] = app.root_screen("fingerprints").name
    app.screens.current = "technician"  # through Kivy's on_current, not root_screen
    seen["current"] = app.screens.current_screen.name
    seen["after"] = sorted(s.name for s in app.screens.screens)
    app.stop()

run_kiosk(load_config(sys.argv[1]), size=(800, 480), fullscreen=False, on_start=start)
Path(sys.argv[2]).write_text(json.dumps(seen))
"""


def test_the_kiosk_builds_a_screen_when_it_is_first_asked_for(display: str, kit_on_rig: Any,
                                                               tmp_path: Path) -> None:
    """At start only the login screen exists (its module the only screen module loaded,
    with those it imports); any other is built when asked for, by name or by making it
    current, and is then the one screen of that name."""
    result = tmp_path / "screens.json"
    env = dict(os.environ, DISPLAY=display, GPIOZERO_PIN_FACTORY="mock", KIVY_NO_ARGS="1",
               KIVY_HOME=str(kit_on_rig.root / "kivy"))
    proc = subprocess.run([sys.executable, "-c", KIOSK, kit_on_rig.config.source,
                           str(result)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert result.exists(), proc.stderr[-3000:]
    seen = json.loads(result.read_text(encoding="utf-8"))
    assert seen["built"] == ["login"]
    assert "ui.screens.login" in seen["modules"]
    # (ui.screens.technician is imported at start for its RecentLog, not its screen)
    for lazy in ("fingerprints", "photo_approval", "signature", "review", "witness"):
        assert f"ui.screens.{lazy}" not in seen["modules"]
    assert seen["tss"] is False  # the rig's kit has no TPM: nothing loads the TSS
    assert seen["has"] is True
    assert seen["asked"] == "fingerprints"
    assert seen["current"] == "technician"
    assert seen["after"] == ["fingerprints", "login", "technician"]
