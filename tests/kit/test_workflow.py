"""The recording workflow's rules, driven through its API with synthetic captures."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kit.records import store_assignment, target_states
from kit.store import Store
from kit.vault import Argon2Cost, PinVault
from kit.workflow import (
    KitContext,
    RecordingFlow,
    Step,
    WorkflowSettings,
    drafts,
    expire_drafts,
    preflight,
    require_storable,
)
from office.records import open_record
from sync.domain import (
    SAMPLE_ASSIGNMENT_PATH,
    Assignment,
    FingerException,
    FingerPosition,
    Outcome,
    PhotoCapture,
    TargetStatus,
)
from sync.envelope import KitKeys, OfficeKeys
from sync.errors import ValidationError

CHEAP = Argon2Cost(opslimit=1, memlimit=8 * 1024 * 1024)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def world(tmp_path: Path):
    store = Store.open(tmp_path / "kit.db")
    vault = PinVault(store, CHEAP)
    key = vault.initialise("P-0001", "4829135071")
    assignment = Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))
    store_assignment(store, key, assignment)
    office, kit = OfficeKeys.generate(), KitKeys.generate()
    clock = Clock()
    ctx = KitContext(store=store, data_key=key, signer=kit.sign, office=office.public,
                     kit_id="blitar-kit-01", officers=["P-0001"],
                     settings=WorkflowSettings(finger_attempts=3, finger_threshold=40),
                     devices=lambda: {"fingerprint": "ZFM emulated"}, clock=clock)
    yield ctx, assignment, office, kit, clock
    store.close()


def photo(score: int) -> PhotoCapture:
    return PhotoCapture(jpeg=b"\xff\xd8" + bytes([score]) * 3000, width=640, height=480,
                        quality_score=score, quality_threshold=50, below_threshold_reason=None,
                        captured_at=datetime.now(UTC))


def finger_png(position: int, attempt: int) -> bytes:
    return b"\x89PNG" + bytes([position, attempt]) * 500


def test_full_happy_path_seals_what_was_captured(world) -> None:
    ctx, assignment, office, kit, clock = world
    target = assignment.targets[0]
    flow = RecordingFlow.start(ctx, target)
    assert flow.step == Step.PHOTO
    flow.add_photo(photo(45))
    clock.tick(20)
    kept = flow.add_photo(photo(80))
    assert kept.quality_score == 80
    flow.add_photo(photo(60))  # worse: the best stays
    flow.accept_photo()
    flow.approve_photo(True)
    assert flow.step == Step.FINGERPRINTS
    while (position := flow.next_finger()) is not None:
        clock.tick(15)
        flow.add_finger(position, finger_png(position, 1), 70)
    flow.next()
    flow.sign([[(0.1, 0.1, 0.0), (0.2, 0.3, 0.1), (0.4, 0.2, 0.2)]], b"\x89PNGsig")
    flow.set_witness("Sulastri", "perangkat desa", consent=True)
    assert flow.step == Step.REVIEW
    stored = flow.seal()
    assert flow.step == Step.SEALED
    assert flow.recording.photo is None and flow.recording.fingers == {}  # plaintext dropped
    assert ctx.store.drafts() == []
    statuses = {tid: s for tid, (s, _) in
                target_states(ctx.store, ctx.data_key, assignment.id).items()}
    assert statuses[target.id] == str(TargetStatus.RECORDED)
    blob = ctx.store.record_blob(stored.id)
    _, opened = open_record(blob, office, lambda _k: kit.sign_public)
    assert opened.outcome == Outcome.RECORDED
    assert opened.photo is not None and opened.photo.quality_score == 80
    assert len(opened.fingers) == 10
    assert all(f.image_png == finger_png(int(p), 1) for p, f in opened.fingers.items())
    assert opened.step_durations["photo"] == pytest.approx(20.0)
    assert opened.step_durations["fingerprints"] == pytest.approx(150.0)
    assert opened.devices == {"fingerprint": "ZFM emulated"}
    assert opened.witness is not None and opened.witness.consent
    assert opened.officers == ["P-0001"] and opened.kit_id == "blitar-kit-01"


def test_low_quality_photo_needs_a_reason(world) -> None:
    ctx, assignment, *_ = world
    flow = RecordingFlow.start(ctx, assignment.targets[0])
    flow.add_photo(photo(30))
    with pytest.raises(ValidationError) as info:
        flow.accept_photo()
    assert info.value.code == "photo_reason"
    flow.accept_photo("warga tidak dapat duduk")
    assert flow.recording.photo is not None
    assert flow.recording.photo.below_threshold_reason == "warga tidak dapat duduk"


def test_photo_refused_by_family_goes_back(world) -> None:
    ctx, assignment, *_ = world
    flow = RecordingFlow.start(ctx, assignment.targets[0])
    flow.add_photo(photo(70))
    flow.accept_photo()
    flow.approve_photo(False)
    assert flow.step == Step.PHOTO


def test_finger_retries_keep_the_best_then_accept_with_a_flag(world) -> None:
    ctx, assignment, *_ = world
    flow = RecordingFlow.start(ctx, assignment.targets[0])
    flow.add_photo(photo(70))
    flow.accept_photo()
    flow.approve_photo(True)
    thumb = FingerPosition(1)
    flow.add_finger(thumb, finger_png(1, 1), 20)
    assert flow.next_finger() == thumb and flow.attempts_left(thumb) == 2
    flow.add_finger(thumb, finger_png(1, 2), 35)
    kept = flow.add_finger(thumb, finger_png(1, 3), 25)
    assert kept.image_png == finger_png(1, 2) and kept.quality_score == 35
    assert kept.low_quality_accepted and kept.attempts == 3
    assert flow.next_finger() == FingerPosition(2)  # never stuck on a poor finger


def test_exceptions_and_cannot_sign_and_invalid_transitions(world) -> None:
    ctx, assignment, office, kit, _ = world
    flow = RecordingFlow.start(ctx, assignment.targets[1])
    with pytest.raises(ValidationError) as info:
        flow.sign([[(0, 0, 0), (1, 1, 1)]], b"png")  # not at the signature step
    assert info.value.code == "wrong_step"
    with pytest.raises(ValidationError) as info:
        flow.go_to(Step.FINGERPRINTS)  # the photo is missing
    assert info.value.code == "step_incomplete"
    flow.add_photo(photo(70))
    flow.accept_photo()
    flow.approve_photo(True)
    flow.finger_exception(FingerPosition(4), FingerException.AMPUTATED)
    flow.finger_exception(FingerPosition(5), FingerException.AMPUTATED)
    with pytest.raises(ValidationError):
        flow.finger_exception(FingerPosition(6), FingerException.OTHER)  # needs a note
    while (position := flow.next_finger()) is not None:
        flow.add_finger(position, finger_png(position, 1), 66)
    flow.next()
    flow.go_to(Step.PHOTO)  # going back is allowed until sealing
    flow.go_to(Step.PHOTO_APPROVAL)
    flow.go_to(Step.FINGERPRINTS)
    flow.go_to(Step.SIGNATURE)
    with pytest.raises(ValidationError):
        flow.cannot_sign("   ")
    flow.cannot_sign("tangan gemetar (tremor)")
    flow.set_witness("Sunarti", "anak kandung", consent=True)
    stored = flow.seal()
    _, opened = open_record(ctx.store.record_blob(stored.id), office, lambda _k: kit.sign_public)
    assert opened.fingers[FingerPosition(4)].exception == FingerException.AMPUTATED
    assert opened.fingers[FingerPosition(4)].image_png is None
    assert opened.signature is not None and opened.signature.cannot_sign_reason
    assert opened.outcome == Outcome.RECORDED
    with pytest.raises(ValidationError) as info:
        flow.go_to(Step.PHOTO)
    assert info.value.code == "sealed"


def test_refusal_is_sealed_and_marks_the_target(world) -> None:
    ctx, assignment, office, kit, _ = world
    target = assignment.targets[2]
    flow = RecordingFlow.start(ctx, target)
    flow.add_photo(photo(70))  # started, then the family refused
    with pytest.raises(ValidationError):
        flow.not_recorded(Outcome.RECORDED)
    stored = flow.not_recorded(Outcome.REFUSED, "keluarga menolak")
    _, opened = open_record(ctx.store.record_blob(stored.id), office, lambda _k: kit.sign_public)
    assert opened.outcome == Outcome.REFUSED and opened.photo is None
    states = target_states(ctx.store, ctx.data_key, assignment.id)
    # The reason shows in the officer's list (encrypted in the store).
    assert states[target.id] == (str(TargetStatus.NOT_RECORDED), "refused")


def test_pause_resume_and_expiry(world) -> None:
    ctx, assignment, *_ = world
    clock = ctx.clock
    flow = RecordingFlow.start(ctx, assignment.targets[0])
    flow.add_photo(photo(75))
    flow.accept_photo()
    flow.approve_photo(True)
    flow.add_finger(FingerPosition(1), finger_png(1, 1), 20)
    flow.pause()
    live, soon = drafts(ctx.store, clock(), ctx.settings)
    assert [d.recording_id for d in live] == [flow.recording.id] and soon == []
    again = RecordingFlow.resume(ctx, flow.recording.id)
    assert again.step == Step.FINGERPRINTS
    assert again.photo_approved
    assert again.attempts_left(FingerPosition(1)) == 2
    assert again.recording.photo == flow.recording.photo
    clock.tick((ctx.settings.draft_lifetime_hours - 1) * 3600)
    assert [d.recording_id for d in drafts(ctx.store, clock(), ctx.settings)[1]] == [
        flow.recording.id]  # the warning before expiry
    clock.tick(2 * 3600)
    assert expire_drafts(ctx.store, clock()) == 1
    with pytest.raises(ValidationError):
        RecordingFlow.resume(ctx, flow.recording.id)


def test_preflight_warns_and_blocks_only_when_storing_is_impossible(tmp_path: Path) -> None:
    checks = preflight(tmp_path, battery_percent=12, devices={"camera": None,
                                                              "fingerprint": "tidak terhubung"})
    by_name = {c.name: c for c in checks}
    assert not by_name["battery"].ok and not by_name["battery"].blocking
    assert not by_name["device:fingerprint"].ok
    assert by_name["device:camera"].ok
    require_storable(checks)  # warnings do not block
    early = preflight(tmp_path, battery_percent=90, devices={},
                      now=datetime(2001, 1, 1, tzinfo=UTC).timestamp())
    assert not {c.name: c for c in early}["clock"].ok


# -- issue 15: "Ubah" on the review, the outcome, the words of refusals ------------------------
def _to_review(flow: RecordingFlow, fingers_png: bool = True) -> None:
    """Photo, approval, ten fingers (prints, or all bandaged), signature, witness."""
    flow.add_photo(photo(70))
    flow.accept_photo()
    flow.approve_photo(True)
    while (position := flow.next_finger()) is not None:
        if fingers_png:
            flow.add_finger(position, finger_png(position, 1), 70)
        else:
            flow.finger_exception(position, FingerException.BANDAGED)
    flow.next()
    flow.sign([[(0.1, 0.1, 0.0), (0.2, 0.3, 0.1)]], b"\x89PNGsig")
    flow.set_witness("Sulastri", "perangkat desa", consent=True)
    assert flow.step == Step.REVIEW


def test_change_from_the_review_returns_to_the_review(world) -> None:
    """Signature, fingerprints or witness changed from the review: finishing that step goes
    straight back to the review, not through the later steps that are still complete."""
    ctx, assignment, *_ = world
    flow = RecordingFlow.start(ctx, assignment.targets[0])
    _to_review(flow)
    flow.go_to(Step.SIGNATURE)
    flow.cannot_sign("tangan gemetar")
    assert flow.step == Step.REVIEW
    flow.go_to(Step.FINGERPRINTS)
    assert flow.next() == Step.REVIEW
    flow.go_to(Step.WITNESS)
    flow.set_witness("Sunarti", "anak kandung", consent=True)
    assert flow.step == Step.REVIEW
    # Unchanged photo: "Pakai foto ini" keeps the approval, straight back to the review.
    flow.go_to(Step.PHOTO)
    flow.accept_photo()
    assert flow.step == Step.REVIEW
    # Without a visit to the review, steps still go in order.
    flow.go_to(Step.SIGNATURE)
    flow.go_to(Step.FINGERPRINTS)
    assert flow.back_to_review  # still on the way back from the review
    flow.go_to(Step.REVIEW)
    assert not flow.back_to_review


def test_a_retaken_photo_needs_approval_again_then_returns_to_the_review(world) -> None:
    ctx, assignment, *_ = world
    flow = RecordingFlow.start(ctx, assignment.targets[0])
    _to_review(flow)
    flow.go_to(Step.PHOTO)
    flow.add_photo(photo(90))  # a better one: kept, and not yet seen by the resident
    assert not flow.photo_approved
    flow.accept_photo()
    assert flow.step == Step.PHOTO_APPROVAL
    with pytest.raises(ValidationError):
        flow.go_to(Step.REVIEW)  # not past the approval
    flow.approve_photo(False)  # refused: back to the camera, still on the way to the review
    assert flow.step == Step.PHOTO
    flow.add_photo(photo(95))
    flow.accept_photo()
    assert flow.step == Step.PHOTO_APPROVAL
    flow.approve_photo(True)
    assert flow.step == Step.REVIEW  # fingerprints, signature, witness still complete


def test_a_change_that_empties_a_later_step_stops_there(world) -> None:
    ctx, assignment, *_ = world
    flow = RecordingFlow.start(ctx, assignment.targets[0])
    _to_review(flow)
    flow.go_to(Step.FINGERPRINTS)
    flow.clear_finger(FingerPosition(3))
    with pytest.raises(ValidationError):
        flow.next()  # the finger is missing: not back to the review yet
    flow.add_finger(FingerPosition(3), finger_png(3, 2), 80)
    assert flow.next() == Step.REVIEW


def test_the_way_back_to_the_review_survives_a_pause_and_a_power_cut(world) -> None:
    ctx, assignment, *_ = world
    flow = RecordingFlow.start(ctx, assignment.targets[0])
    _to_review(flow)
    flow.go_to(Step.SIGNATURE)
    flow.pause()
    again = RecordingFlow.resume(ctx, flow.recording.id)
    assert again.step == Step.SIGNATURE and again.back_to_review
    again.cannot_sign("tangan gemetar")
    assert again.step == Step.REVIEW
    # A power cut: no pause, only the draft written at the step change.
    again.go_to(Step.WITNESS)
    cut = RecordingFlow.resume(ctx, flow.recording.id)
    assert cut.step == Step.WITNESS and cut.back_to_review


def test_a_draft_from_before_the_way_back_still_resumes(world) -> None:
    """Drafts written before ``back_to_review`` existed have no such field."""
    import cbor2

    from kit.records import target_ref
    from sync.envelope import canonical

    ctx, assignment, *_ = world
    flow = RecordingFlow.start(ctx, assignment.targets[0])
    flow.add_photo(photo(70))
    flow.accept_photo()
    old = {"recording": flow.recording.to_canonical(), "step": str(flow.step),
           "finger_attempts": {}, "photo_attempts": flow.photo_attempts,
           "photo_approved": False}
    ctx.store.put_draft(flow.recording.id, target_ref(ctx.data_key, flow.recording.target.id),
                        str(flow.step), ctx.data_key.encrypt(canonical(old),
                                                             f"draft:{flow.recording.id}"),
                        ctx.clock() + 3600)
    assert "back_to_review" not in cbor2.loads(ctx.data_key.decrypt(
        ctx.store.draft_payload(flow.recording.id), f"draft:{flow.recording.id}"))
    again = RecordingFlow.resume(ctx, flow.recording.id)
    assert again.step == Step.PHOTO_APPROVAL and not again.back_to_review
    again.approve_photo(True)
    assert again.step == Step.FINGERPRINTS


def test_ten_exceptions_and_no_print_is_not_recorded_complete(world) -> None:
    ctx, assignment, office, kit, _ = world
    flow = RecordingFlow.start(ctx, assignment.targets[0])
    _to_review(flow, fingers_png=False)
    assert flow.outcome() == Outcome.PARTIAL
    stored = flow.seal()
    _, opened = open_record(ctx.store.record_blob(stored.id), office, lambda _k: kit.sign_public)
    assert opened.outcome == Outcome.PARTIAL


def test_wrong_step_and_full_disk_messages_speak_to_the_officer(world, tmp_path: Path) -> None:
    """No internal step name in a refusal; a full disk says who can help, not 'free space'
    (the officer cannot)."""
    ctx, assignment, *_ = world
    flow = RecordingFlow.start(ctx, assignment.targets[0])
    _to_review(flow)
    flow.go_to(Step.FINGERPRINTS)
    with pytest.raises(ValidationError) as info:
        flow.sign([[(0, 0, 0), (1, 1, 1)]], b"png")
    assert "fingerprints" not in info.value.text("id") + info.value.text("en")
    assert "langkah Sidik jari" in info.value.text("id")
    assert "Fingerprints" in info.value.text("en")

    class Full:
        free = 1024 * 1024

    checks = preflight(tmp_path, battery_percent=90, devices={}, disk_usage=lambda _p: Full)
    with pytest.raises(Exception) as full:
        require_storable(checks)
    text_id, text_en = full.value.text("id"), full.value.text("en")
    assert "teknisi" in text_id and "aman" in text_id, text_id
    assert "technician" in text_en and "safe" in text_en, text_en
    assert "Kosongkan" not in text_id and "Free some space" not in text_en


def test_preflight_names_devices_as_the_officer_knows_them(tmp_path: Path) -> None:
    """An unplugged sensor's warning names "Sensor sidik jari", not the kit's key for it."""
    problem = "Sensor sidik jari, membuka sensor: sensor terputus. Periksa kabel USB sensor"
    checks = preflight(tmp_path, battery_percent=90,
                       devices={"fingerprint": problem, "camera": None, "gnss": "no fix"})
    by_name = {c.name: c for c in checks}
    assert by_name["device:fingerprint"].message("id") == problem
    assert by_name["device:camera"].message("id") == "Kamera: siap"
    assert by_name["device:camera"].message("en") == "Camera: ready"
    assert by_name["device:gnss"].message("en") == "GPS: no fix"
    for check in checks:
        for lang in ("id", "en"):
            assert not check.message(lang).startswith(("fingerprint", "camera", "gnss")), \
                check.message(lang)
