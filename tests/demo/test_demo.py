"""The README's first command: `jaranijo demo --headless` runs the whole story end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from office.broker import MOSQUITTO

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not Path(MOSQUITTO).exists(), reason="mosquitto is not installed")
def test_demo_runs_the_whole_visit(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sync.cli", "--lang", "en", "demo", "--headless",
         "--keep", str(tmp_path / "demo")],
        cwd=ROOT, capture_output=True, text=True, timeout=400)
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-2000:]
    assert "office sees blitar-kit-01 online" in out
    assert "opened and stored, every name, NIK and address encrypted" in out
    assert "resident 1: sealed" in out and "recorded, 10 fingers" in out
    assert "exceptions ['amputated', 'amputated'], signature cannot sign" in out
    assert "resident 3: not recorded (refused)" in out
    assert "none found" in out  # no name or NIK in clear in the kit's database
    assert out.count("receipt received, payload deleted from the kit") == 3
    assert out.count("Envelope cannot be opened with this key") == 3
    # The office web app, used through its pages (issues 11 and 12).
    assert "recorded, complete, 12 images; KTP-el due by" in out
    assert "now 'entered' (entered into SIAK) by demo" in out
    assert "SIAK re-entry worksheet: a" in out and "PDF (valid)" in out
    assert "alert raised for blitar-kit-01: low battery" in out
    assert "acknowledged by demo on /alerts/" in out
    assert "ping: signed by the office, sent by the receiver, run by the agent: the kit " \
           "answered" in out
    assert "selftest: signed by the office" in out and "store: ok" in out
    assert "refuses its reconnects (not authorised)" in out
    assert "the office shows it offline (revoked)" in out
    assert "Traceback" not in out + result.stderr
