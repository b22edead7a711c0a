"""The one `jaranijo` command line: what every subcommand costs before it runs."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("cv2", "numpy", "PIL", "kivy", "django", "tpm2_pytss", "scipy", "skimage",
         "weasyprint")


def test_the_command_line_loads_nothing_heavy_to_register_its_commands() -> None:
    """The agent and the kiosk on a kit start through `jaranijo`, which registers every
    subcommand first (demo, emulate, office...): registering must not import OpenCV, NumPy,
    the TPM library or Django, which cost tens of MiB of a 250 MB budget (issue 15). Run in
    a fresh interpreter: this test process has them all loaded already."""
    code = ("import json, sys\nfrom sync.cli import build_parser\nbuild_parser()\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == []
