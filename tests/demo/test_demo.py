"""The README's first command: `jaranijo demo --headless` runs the whole story end to end."""

from __future__ import annotations

import re
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
    # the cluttered room's still refused for its background, with the fix; then kept good
    assert re.search(r"photo: quality \d+/100 - Background not plain: hang a plain backdrop "
                     r"behind the head\n +photo: quality (\d+)/100\n +photo kept: quality \1/100",
                     out), out[:6000]
    assert "exceptions ['amputated', 'amputated'], signature cannot sign" in out
    assert "resident 3: not recorded (refused)" in out
    assert "none found" in out  # no name or NIK in clear in the kit's database
    assert out.count("receipt received, payload deleted from the kit") == 3
    assert out.count("Envelope cannot be opened with this key") == 3
    # The office web app, used through its pages (issues 11 and 12): its address and a
    # throwaway login on one line each, the fleet page showing the kit live, and an
    # operator's exports (a worksheet and a per-resident folder archive).
    url = re.search(r"^ +open (http://127\.0\.0\.1:\d+/)$", out, re.M)
    assert url, out[-3000:]
    assert re.search(r"^ +demo login \(made for this run only\): demo / \S{12,}$", out, re.M)
    fleet = re.search(rf"^ +fleet page {re.escape(url.group(1))} \(as demo\): blitar-kit-01's "
                      r"row is on it, online, battery (\d+) %$", out, re.M)
    assert fleet and 0 < int(fleet.group(1)) <= 100, out[-3000:]
    folder = re.search(r"folder export from /export/ \(ZIP, per resident\): (\d+) files in "
                       r"(\d+) resident folders, (\d+) KiB; (\d+)/(\d+) files match their "
                       r"manifest's SHA-256", out)
    assert folder, out[-3000:]
    files, folders, kib, good, listed = map(int, folder.groups())
    # Two residents carry biometrics (one complete, one partial): a folder each, with a
    # face, fingers, a signature or its reason, and a manifest that checks.
    assert folders == 2 and files > 2 * 5 and kib > 10 and good == listed > 0
    assert "recorded, complete, 12 images; KTP-el due by" in out
    assert "now 'entered' (entered into SIAK) by demo" in out
    assert "SIAK re-entry worksheet: a" in out and "PDF (valid)" in out
    assert "alert raised for blitar-kit-01: low battery" in out
    assert "acknowledged by demo on /alerts/" in out
    assert "ping: signed by the office, sent by the receiver, run by the agent: the kit " \
           "answered" in out
    assert "selftest: signed by the office" in out and "store: ok" in out
    # The SOP's visit flow through the pages (issue 13): a request with a faulty target
    # file becomes a schedule, a verified reply letter and an assignment opened on the kit;
    # the records close the targets.
    assert "report on the page: 9 rows: 4 accepted, 5 refused" in out
    for refusal in ("Row 6: Duplicate row", "Row 7: The birth date in the NIK",
                    "Row 8: A family card (KK) number must be exactly 16 digits",
                    "Row 9: No such kecamatan", "Row 10: The sex the NIK encodes"):
        assert refusal in out
    assert "confirmed: 4 targets imported (rows 2, 3, 4, 5)" in out
    assert "4 verified; status 'Targets verified'" in out
    assert "upload of a signed copy of an edited draft: refused (The signed document is " \
           "not this letter's draft" in out
    assert "upload of the signed draft: verified, signed by Drs. BAMBANG SUTRISNO" in out
    assert "marked sent (yes)" in out
    assert "blitar-kit-01 taken by P-0001, self-test passed" in out
    assert ": queued +0.0 s, sent +" in out and ", received by the kit +" in out
    assert "status 'Assigned to a kit'" in out
    assert "the visit page now says 'dibuka di kit'" in out
    assert "target on row 2: recorded" in out and "target on row 3: recorded" in out
    assert "target on row 4: not_recorded (refused)" in out
    assert "3/4 closed" in out and "1 targets still pending" in out
    assert "1 not recorded (the visit page offers" in out
    assert "refuses its reconnects (not authorised)" in out
    assert "the office shows it offline (revoked)" in out
    # issue 14: the self-test at checkout, and a kit that sets itself up at first boot
    assert "Result: PASSED" in out and "exit code 0: all required checks passed" in out
    for check in ("Fingerprint image", "Camera", "GPS fix", "Mobile network", "Battery",
                  "Button, LED, buzzer", "Clock", "Kit database", "MQTT login"):
        assert f"OK    {check}" in out
    assert "the file is shredded and gone" in out
    assert "asks for a PIN of their own first (must_set_pin=True)" in out
    assert "the enrolment code no longer opens the kit" in out
    assert "Traceback" not in out + result.stderr
