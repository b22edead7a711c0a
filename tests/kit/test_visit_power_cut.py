"""The bedside workflow against the emulated devices, through `jaranijo record`.

A power cut is a SIGKILL of the recording process at each step; on restart
the draft is resumed and sealed, and the kit holds exactly one record of
the resident with everything that was captured. What is under test is crash
safety, not the UART: the fingerprint sensor runs unpaced (``kit_on_rig``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kit.store import Store
from office.records import open_record
from sync.domain import FingerException, FingerPosition, Outcome
from tests.conftest import OFFICER, PIN, KitOnRig, unpaced

ROOT = Path(__file__).resolve().parents[2]


PIN_ENV = "JARANIJO_TEST_OFFICER_PIN"


def script(path: Path, body: str) -> Path:
    path.write_text(f'officer = "{OFFICER}"\npin_env = "{PIN_ENV}"\n{body}', encoding="utf-8")
    return path


def record(kit: KitOnRig, script_path: Path, *, kill_after: str | None = None
           ) -> tuple[int, list[str]]:
    """Run `jaranijo record`; with ``kill_after``, SIGKILL it once a line contains that text."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", **{PIN_ENV: PIN})
    proc = subprocess.Popen(
        [sys.executable, "-m", "sync.cli", "--lang", "en", "--config", str(kit.config.source),
         "record", "--script", str(script_path), "--emulator-control", str(kit.control_fifo)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line.rstrip())
        if kill_after is not None and kill_after in line:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.stdout.close()
    return proc.wait(timeout=120), lines


def records_of(kit: KitOnRig, target_id: str) -> list[bytes]:
    # A record does not name its target on the kit: the office's key tells.
    with Store.open(kit.config.store_path) as store:
        blobs = [store.record_blob(rid) for rid in store.record_ids()]
    return [b for b in blobs if b is not None and open_record(
        b, kit.office, lambda _k: kit.kit_public.sign)[1].target.id == target_id]


VISIT = """
[[visit]]
target = 1
fingers = [1, 6]
exceptions = { 4 = "amputated", 5 = "bandaged" }
witness = { name = "Sulastri", role = "perangkat desa", consent = true }
"""


@pytest.mark.parametrize("kill_after", [
    "at step photo_approval",
    "at step fingerprints",
    "finger 1 (Right thumb)",
    "at step signature",
    "at step witness",
])
def test_power_cut_at_each_step_then_resume_gives_one_record(kit_on_rig: KitOnRig,
                                                             tmp_path: Path,
                                                             kill_after: str) -> None:
    kit = kit_on_rig
    target = kit.assignment.targets[0]
    code, lines = record(kit, script(tmp_path / "visit.toml", VISIT), kill_after=kill_after)
    assert code == -signal.SIGKILL, lines
    assert records_of(kit, target.id) == []
    # Starting afresh is refused while the draft waits; resuming finishes it.
    code, lines = record(kit, script(tmp_path / "again.toml", VISIT))
    assert code == 2 and any("draft" in line for line in lines), lines
    code, lines = record(kit, script(tmp_path / "resume.toml",
                                     VISIT.replace("target = 1", "target = 1\nresume = true")))
    assert code == 0, "\n".join(lines[-12:])  # the end says why it stopped
    assert any("resumed at step" in line for line in lines)
    blobs = records_of(kit, target.id)
    assert len(blobs) == 1
    _, opened = open_record(blobs[0], kit.office, lambda _k: kit.kit_public.sign)
    assert opened.outcome == Outcome.RECORDED
    assert opened.photo is not None and opened.photo.jpeg.startswith(b"\xff\xd8")
    captured = {int(p) for p, f in opened.fingers.items() if f.image_png}
    assert captured == {1, 6}
    assert opened.fingers[FingerPosition(4)].exception == FingerException.AMPUTATED
    assert opened.fingers[FingerPosition(5)].exception == FingerException.BANDAGED
    assert opened.witness is not None and opened.witness.name == "Sulastri"
    assert opened.devices["fingerprint"].startswith("ZFM")
    assert opened.gnss is not None and -9 < opened.gnss.lat < -7
    with Store.open(kit.config.store_path) as store:
        assert store.drafts() == []


def test_sensor_unplugged_mid_capture_then_retry(kit_on_rig: KitOnRig, tmp_path: Path) -> None:
    """The sensor is pulled during a finger: a clear error, the draft keeps what was done."""
    kit = kit_on_rig
    target = kit.assignment.targets[0]
    body = VISIT
    code, lines = record(kit, script(tmp_path / "v.toml", body), kill_after="at step fingerprints")
    kit.rig.control("fingerprint", "unplug")  # type: ignore[attr-defined]
    code, lines = record(kit, script(tmp_path / "r.toml",
                                     body.replace("target = 1", "target = 1\nresume = true")))
    assert code == 2
    assert any("fingerprint" in line.lower() for line in lines), lines
    assert "Traceback" not in "\n".join(lines)
    kit.rig.control("fingerprint", "replug")  # type: ignore[attr-defined]
    unpaced(kit.rig.devices["fingerprint"])  # type: ignore[attr-defined] # powered up paced
    code, lines = record(kit, script(tmp_path / "r2.toml",
                                     body.replace("target = 1", "target = 1\nresume = true")))
    assert code == 0, lines
    assert len(records_of(kit, target.id)) == 1


def test_the_photo_check_names_the_backdrop_and_the_fixed_scene_is_kept(
        kit_on_rig: KitOnRig, tmp_path: Path) -> None:
    """A script's scenes, one still each: the cluttered room is refused for its background
    with the fix, the plain backdrop hung after it passes, and the good still is kept."""
    kit = kit_on_rig
    target = kit.assignment.targets[0]
    body = VISIT.replace("target = 1", 'target = 1\nphoto_scene = ["cluttered", "good"]')
    code, lines = record(kit, script(tmp_path / "v.toml", body))
    assert code == 0, "\n".join(lines[-12:])
    photos = [line for line in lines if line.strip().startswith("photo:")]
    assert len(photos) == 2, lines
    assert "Background not plain: hang a plain backdrop behind the head" in photos[0]
    assert " - " not in photos[1], photos  # nothing failed: no reason after the score
    blobs = records_of(kit, target.id)
    assert len(blobs) == 1
    _, opened = open_record(blobs[0], kit.office, lambda _k: kit.kit_public.sign)
    assert opened.photo is not None and opened.photo.quality_score >= 60


@pytest.mark.parametrize("scene", ['""', "[]", '["good", 3]'])  # as written in the TOML
def test_a_script_with_no_usable_photo_scene_is_refused(tmp_path: Path, scene: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from kit.scripted_visit import load_script
    from sync.errors import ValidationError

    path = script(tmp_path / "s.toml", f'[[visit]]\ntarget = 1\nphoto_scene = {scene}\n')
    monkeypatch.setenv(PIN_ENV, PIN)
    with pytest.raises(ValidationError) as refused:
        load_script(path)
    assert "visit 1: photo_scene must name a scene or list scenes" in refused.value.text("en")
