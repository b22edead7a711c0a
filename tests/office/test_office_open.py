"""``jaranijo office open`` as a technician runs it (a subprocess, as on the office PC): a
record file sealed and signed as a kit seals it, opened with the office's keys; what each
finger, the photo and the signature hold; ``--out`` writes the images as captured."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from PIL import Image

from sync.domain import FingerException, Outcome
from sync.envelope import KitKeys
from tests.office.records_helpers import (
    KIT,
    RecordOffice,
    face_jpeg,
    finger_png,
    recording,
    signature_png,
)


def office_open(office: RecordOffice, record_file: Path, *extra: str, lang: str = "id",
                kit_public: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.cli", "--lang", lang, "office", "open", str(record_file),
         "--keys", str(office.keys_dir), "--kit-public", str(kit_public or office.kits_dir / KIT),
         *extra],
        capture_output=True, text=True, timeout=60)


def test_a_partial_record_says_per_finger_what_was_captured_and_what_is_missing(
        tmp_path: Path) -> None:
    office = RecordOffice(tmp_path)
    rec = recording(1, outcome=Outcome.PARTIAL, missing_fingers=(9,),
                    exceptions={4: FingerException.AMPUTATED, 7: FingerException.OTHER},
                    cannot_sign="tangan kanan lumpuh (stroke)")
    rec.fingers[next(p for p in rec.fingers if int(p) == 7)].exception_note = "luka bakar"
    record_file = tmp_path / "record.bin"
    record_file.write_bytes(office.seal(rec))
    done = office_open(office, record_file)
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())  # the finger table's columns as single spaces
    assert f"Rekaman {rec.id} dari kit {KIT}: tanda tangan kit sah" in out
    assert "Hasil: Terekam sebagian" in out
    assert "1 Ibu jari kanan direkam, mutu 63, 1 kali percobaan" in out
    assert "4 Jari manis kanan pengecualian: Jari tidak ada (amputasi)" in out
    assert "7 Telunjuk kiri pengecualian: Lainnya (luka bakar)" in out
    assert "9 Jari manis kiri tidak direkam" in out
    assert "Foto wajah: 640x480 JPEG, mutu 81 (batas 60), memenuhi batas" in out
    assert "Tanda tangan: tidak dapat tanda tangan: tangan kanan lumpuh (stroke)" in out
    assert "Saksi: perangkat desa, menyetujui perekaman" in out
    assert "Belum lengkap: Jari manis kiri belum" in out
    assert "kunjungan berikutnya" in out
    # The terminal names nobody: the resident by target id only, the witness by role.
    assert rec.target.name not in out and rec.target.nik not in out and "Sulastri" not in out
    assert rec.target.id in out
    # In English, and as JSON for scripts (the old summary's header kept).
    english = " ".join(office_open(office, record_file, lang="en").stdout.split())
    assert "9 Left ring not captured" in english
    assert "Missing: Left ring" in english
    summary = json.loads(office_open(office, record_file, "--json").stdout)
    assert summary["header"]["record_id"] == rec.id and summary["outcome"] == "partial"
    assert summary["fingers"]["9"] == {"state": "not_captured"}
    assert summary["fingers"]["4"]["reason"] == "amputated"
    assert summary["missing"] == ["finger:9"]


def test_out_writes_the_images_as_captured_and_only_for_the_owner(tmp_path: Path) -> None:
    office = RecordOffice(tmp_path)
    rec = recording(0)
    record_file = tmp_path / "record.bin"
    record_file.write_bytes(office.seal(rec))
    folder = tmp_path / "images"
    done = office_open(office, record_file, "--out", str(folder))
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(["photo.jpg", "signature.png",
                            *(f"finger-{n}.png" for n in range(1, 11))])
    assert (folder / "photo.jpg").read_bytes() == face_jpeg()[0]
    assert (folder / "finger-3.png").read_bytes() == finger_png(rec.target.id, 3)
    assert (folder / "signature.png").read_bytes() == signature_png()
    with Image.open(folder / "finger-3.png") as image:
        assert image.mode == "L" and image.size == (256, 288)
        assert round(image.info["dpi"][0]) == 500
    assert stat.S_IMODE((folder / "finger-3.png").stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert f"Ditulis ke {folder}" in done.stdout and "hapus foldernya" in done.stdout
    assert "Lengkap" in done.stdout


def test_a_record_signed_by_another_kit_is_refused_and_nothing_written(tmp_path: Path) -> None:
    office = RecordOffice(tmp_path)
    record_file = tmp_path / "record.bin"
    record_file.write_bytes(office.seal(recording(0)))
    impostor = tmp_path / "impostor"
    KitKeys.generate().public.save(impostor)
    folder = tmp_path / "images"
    done = office_open(office, record_file, "--out", str(folder), kit_public=impostor)
    assert done.returncode == 2
    assert done.stderr.startswith("jaranijo: ") and "Traceback" not in done.stderr
    assert not folder.exists()
    missing = office_open(office, tmp_path / "nope.bin")
    assert missing.returncode == 2 and "tidak dapat dibaca" in missing.stderr
