"""Personal data on the kit: encrypted at rest, sealed for the office, never in clear on disk."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kit.records import load_assignment, seal_recording, store_assignment, target_states
from kit.store import Store
from kit.vault import Argon2Cost, PinVault
from office.records import open_record
from sync.domain import (
    SAMPLE_ASSIGNMENT_PATH,
    Assignment,
    FingerCapture,
    FingerPosition,
    Outcome,
    PhotoCapture,
    Recording,
    SignatureCapture,
    TargetStatus,
    Witness,
    uuid7,
)
from sync.envelope import KitKeys, OfficeKeys

CHEAP = Argon2Cost(opslimit=1, memlimit=8 * 1024 * 1024)


@pytest.fixture
def sample() -> Assignment:
    return Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))


def full_recording(assignment: Assignment, kit_id: str = "blitar-kit-01") -> Recording:
    target = assignment.targets[0]
    now = datetime.now(UTC)
    fingers = {
        position: FingerCapture(position=position, image_png=b"\x89PNG" + bytes([position]) * 900,
                                quality_score=70, attempts=1, exception=None, exception_note="",
                                exception_photo_jpeg=None, low_quality_accepted=False,
                                captured_at=now)
        for position in FingerPosition
    }
    return Recording(
        id=uuid7(), target=target, officers=list(assignment.officers), kit_id=kit_id,
        started_at=now, finished_at=now, gnss=None, outcome=Outcome.RECORDED, outcome_note="",
        photo=PhotoCapture(jpeg=b"\xff\xd8" + b"face" * 5000, width=640, height=480,
                           quality_score=82, quality_threshold=50, below_threshold_reason=None,
                           captured_at=now),
        fingers=fingers,
        signature=SignatureCapture(strokes=[[(0.1, 0.2, 0.0), (0.3, 0.4, 0.05)]],
                                   image_png=b"\x89PNGsig", cannot_sign_reason=None),
        witness=Witness(name="Sulastri", role="perangkat desa", consent=True),
        step_durations={"photo": 40.0}, devices={"fingerprint": "emulated"},
        software_version="test",
    )


def test_no_name_or_nik_in_clear_in_the_database_or_wal(tmp_path: Path,
                                                        sample: Assignment) -> None:
    db = tmp_path / "kit.db"
    office, kit = OfficeKeys.generate(), KitKeys.generate()
    store = Store.open(db)
    key = PinVault(store, CHEAP).initialise("P-0001", "4829135071")
    store_assignment(store, key, sample)
    seal_recording(store, kit.sign, office.public, full_recording(sample), key=key)
    # Read the files while the connection is open, so the WAL still holds the writes.
    wal = Path(f"{db}-wal")
    assert wal.exists() and wal.stat().st_size > 0
    contents = db.read_bytes() + wal.read_bytes()
    secrets = []
    for target in sample.targets:
        secrets += [target.name, target.nik, target.kk, target.address.street]
        secrets += target.name.split()
    for secret in secrets:
        if len(secret) >= 4:
            for encoding in ("utf-8", "utf-16-le"):
                assert secret.encode(encoding) not in contents, "personal data in clear"
    store.close()


def test_assignment_round_trip_needs_the_key(tmp_path: Path, sample: Assignment) -> None:
    with Store.open(tmp_path / "kit.db") as store:
        key = PinVault(store, CHEAP).initialise("P-0001", "4829135071")
        store_assignment(store, key, sample)
        assert load_assignment(store, key, sample.id) == sample
        assert [s for s, _ in target_states(store, key, sample.id).values()] == \
            ["pending"] * len(sample.targets)


def test_sealed_recording_opens_at_the_office_exactly(tmp_path: Path,
                                                      sample: Assignment) -> None:
    office, kit = OfficeKeys.generate(), KitKeys.generate()
    recording = full_recording(sample)
    with Store.open(tmp_path / "kit.db") as store:
        key = PinVault(store, CHEAP).initialise("P-0001", "4829135071")
        store_assignment(store, key, sample)
        stored = seal_recording(store, kit.sign, office.public, recording, key=key)
        blob = store.record_blob(stored.id)
        assert blob is not None
        statuses = {tid: s for tid, (s, _) in target_states(store, key, sample.id).items()}
        assert statuses[recording.target.id] == str(TargetStatus.RECORDED)
    header, opened = open_record(blob, office, lambda kit_id: kit.sign_public)
    assert header["kit_id"] == "blitar-kit-01"
    assert opened == recording
    assert opened.photo is not None and recording.photo is not None
    assert opened.photo.jpeg == recording.photo.jpeg


def test_refusal_is_sealed_like_a_record(tmp_path: Path, sample: Assignment) -> None:
    office, kit = OfficeKeys.generate(), KitKeys.generate()
    target = sample.targets[1]
    now = datetime.now(UTC)
    refusal = Recording(
        id=uuid7(), target=target, officers=list(sample.officers), kit_id="blitar-kit-01",
        started_at=now, finished_at=now, gnss=None, outcome=Outcome.REFUSED,
        outcome_note="keluarga menolak", photo=None, fingers={}, signature=None, witness=None,
        step_durations={}, devices={}, software_version="test",
    )
    with Store.open(tmp_path / "kit.db") as store:
        key = PinVault(store, CHEAP).initialise("P-0001", "4829135071")
        store_assignment(store, key, sample)
        stored = seal_recording(store, kit.sign, office.public, refusal, key=key)
        statuses = {tid: s for tid, (s, _) in target_states(store, key, sample.id).items()}
        assert statuses[target.id] == str(TargetStatus.NOT_RECORDED)
        blob = store.record_blob(stored.id)
    assert blob is not None
    assert open_record(blob, office, lambda _k: kit.sign_public)[1].outcome == Outcome.REFUSED
