"""The bedside recording workflow (SOP step 10), free of UI and hardware.

The Kivy kiosk and the headless driver (``jaranijo record --script``) both
drive this API; neither holds a rule of its own. A recording moves through

    photo -> photo approval -> fingerprints -> signature -> witness -> review -> sealed

and may step back to any earlier step until it is sealed. Nothing ever
blocks the officer: a photo below the quality threshold is kept with the
officer's reason, a finger that cannot be captured gets an exception, a
finger still poor after the allowed attempts is accepted with a flag, and a
resident who cannot sign gets a reason (and a thumbprint) instead.

Every change is written at once as an encrypted draft (:meth:`Store.put_draft`
in one durable transaction), so a power cut at any moment loses at most the
capture in flight; on restart the draft is offered for resume. Sealing
stamps the fix, the kit, the officers, the timings and the device identities,
seals and signs, stores and queues the record in one commit, then drops
the plaintext biometrics from memory.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import cbor2
from nacl.signing import SigningKey

from kit.records import seal_recording, set_target_state, target_ref
from kit.store import Store, StoredRecord
from kit.vault import DataKey
from sensors.errors import DEVICE_LABELS
from sensors.fingerprint_quality import QUALITY_THRESHOLD
from sync import __version__
from sync.domain import (
    FingerCapture,
    FingerException,
    FingerPosition,
    Outcome,
    PhotoCapture,
    RecordedFix,
    Recording,
    SignatureCapture,
    Target,
    TargetStatus,
    Witness,
    uuid7,
)
from sync.envelope import OfficePublicKeys, canonical
from sync.errors import JaranIjoError, ValidationError

log = logging.getLogger(__name__)

NOT_RECORDED = (Outcome.REFUSED, Outcome.NOT_HOME, Outcome.DECEASED, Outcome.MOVED,
                Outcome.UNFIT, Outcome.NOT_FOUND, Outcome.OTHER)


class Step(StrEnum):
    PHOTO = "photo"
    PHOTO_APPROVAL = "photo_approval"
    FINGERPRINTS = "fingerprints"
    SIGNATURE = "signature"
    WITNESS = "witness"
    REVIEW = "review"
    SEALED = "sealed"


ORDER = list(Step)

# What each step is called where a message names it, and on the kiosk (ui/i18n.py takes
# its "step.*" texts from here).
STEP_LABELS: dict[Step, tuple[str, str]] = {
    Step.PHOTO: ("Foto wajah", "Face photo"),
    Step.PHOTO_APPROVAL: ("Persetujuan foto", "Photo approval"),
    Step.FINGERPRINTS: ("Sidik jari", "Fingerprints"),
    Step.SIGNATURE: ("Tanda tangan", "Signature"),
    Step.WITNESS: ("Saksi", "Witness"),
    Step.REVIEW: ("Periksa & segel", "Review & seal"),
    Step.SEALED: ("Tersegel", "Sealed"),
}


def refuse(code: str, id: str, en: str, hint_id: str = "", hint_en: str = "") -> ValidationError:
    return ValidationError(id=id, en=en, hint_id=hint_id, hint_en=hint_en, code=code)


@dataclass
class WorkflowSettings:
    """Tunables, from the kit configuration."""

    finger_attempts: int = 3
    # The sensor library's pass mark, so the kit has one value. A photo's pass mark
    # travels with each photo (PhotoCapture.quality_threshold, from sensors.photo_quality).
    finger_threshold: int = QUALITY_THRESHOLD
    draft_lifetime_hours: float = 72.0
    draft_warning_hours: float = 12.0


@dataclass
class KitContext:
    """What a recording needs from the kit: store, keys, who is recording, where."""

    store: Store
    data_key: DataKey
    signer: SigningKey
    office: OfficePublicKeys
    kit_id: str
    officers: list[str]
    settings: WorkflowSettings = field(default_factory=WorkflowSettings)
    gnss_fix: Callable[[], RecordedFix | None] = lambda: None
    devices: Callable[[], dict[str, str]] = dict
    clock: Callable[[], float] = time.time


class RecordingFlow:
    """One recording of one target. Create with :meth:`start` or :meth:`resume`.

    >>> flow = RecordingFlow.start(ctx, target)        # doctest: +SKIP
    >>> flow.add_photo(photo)                          # doctest: +SKIP
    """

    def __init__(self, ctx: KitContext, recording: Recording, step: Step,
                 finger_attempts: dict[int, int] | None = None,
                 photo_attempts: int = 0, step_started: float | None = None,
                 photo_approved: bool = False, back_to_review: bool = False) -> None:
        self.ctx = ctx
        self.photo_approved = photo_approved
        # Set when the officer stepped back from the review ("Ubah"): finishing that step
        # returns to the review over the later steps that are still complete.
        self.back_to_review = back_to_review
        self.recording = recording
        self.step = step
        self.finger_attempts: dict[int, int] = dict(finger_attempts or {})
        self.photo_attempts = photo_attempts
        self._step_started = step_started if step_started is not None else ctx.clock()

    # -- life cycle --------------------------------------------------------------------------
    @classmethod
    def start(cls, ctx: KitContext, target: Target) -> RecordingFlow:
        now = datetime.fromtimestamp(ctx.clock(), UTC)
        recording = Recording(
            id=uuid7(), target=target, officers=list(ctx.officers), kit_id=ctx.kit_id,
            started_at=now, finished_at=None, gnss=None, outcome=None, outcome_note="",
            photo=None, fingers={}, signature=None, witness=None, step_durations={},
            devices={}, software_version=__version__,
        )
        flow = cls(ctx, recording, Step.PHOTO)
        flow.save_draft()
        set_target_state(ctx.store, ctx.data_key, target.id, str(TargetStatus.IN_PROGRESS))
        ctx.store.audit("recording_started", actor=",".join(ctx.officers), subject=recording.id)
        return flow

    @classmethod
    def resume(cls, ctx: KitContext, recording_id: str) -> RecordingFlow:
        """Pick a paused (or power-cut) recording up where it stood."""
        payload = ctx.store.draft_payload(recording_id)
        if payload is None:
            raise refuse("draft_missing", "Draf rekaman tidak ditemukan",
                         "Recording draft not found")
        data = cbor2.loads(ctx.data_key.decrypt(payload, f"draft:{recording_id}"))
        recording = Recording.from_canonical(data["recording"])
        # Officers who resume take over the recording; the originals stay listed.
        officers = list(dict.fromkeys([*recording.officers, *ctx.officers]))
        recording = replace(recording, officers=officers)
        flow = cls(ctx, recording, Step(data["step"]),
                   {int(k): v for k, v in data["finger_attempts"].items()},
                   data["photo_attempts"], photo_approved=data["photo_approved"],
                   # drafts written before this field existed go on step by step
                   back_to_review=bool(data.get("back_to_review", False)))
        ctx.store.audit("recording_resumed", actor=",".join(ctx.officers), subject=recording_id)
        return flow

    def save_draft(self) -> None:
        data = {
            "recording": self.recording.to_canonical(),
            "step": str(self.step),
            "finger_attempts": {str(k): v for k, v in self.finger_attempts.items()},
            "photo_attempts": self.photo_attempts,
            "photo_approved": self.photo_approved,
            "back_to_review": self.back_to_review,
        }
        expires = self.ctx.clock() + self.ctx.settings.draft_lifetime_hours * 3600
        self.ctx.store.put_draft(
            self.recording.id, target_ref(self.ctx.data_key, self.recording.target.id),
            str(self.step),
            self.ctx.data_key.encrypt(canonical(data), f"draft:{self.recording.id}"), expires)

    def pause(self) -> None:
        """Keep everything so far as an encrypted draft and leave the recording."""
        self._close_step_timer()
        self.save_draft()
        self.ctx.store.audit("recording_paused", subject=self.recording.id)

    # -- navigation ----------------------------------------------------------------------------
    def go_to(self, step: Step) -> None:
        """Step back to any earlier step, or forward to the next one when this one is done."""
        self._not_sealed()
        target_index, here = ORDER.index(step), ORDER.index(self.step)
        if step == Step.SEALED:
            raise refuse("use_seal", "Gunakan tombol Segel", "Use Seal to finish")
        if target_index > here:
            for between in ORDER[here:target_index]:
                missing = self.missing(between)
                if missing:
                    raise refuse("step_incomplete", f"Langkah belum selesai: {missing[0][0]}",
                                 f"Step not finished: {missing[0][1]}")
        if self.step == Step.REVIEW and target_index < here:
            self.back_to_review = True
        self._enter(step)

    def next(self) -> Step:
        """Finish this step: on to the next one, or back to the review (see
        :meth:`after`) when the officer came here from it."""
        self.go_to(self.after(self.step))
        return self.step

    def after(self, step: Step) -> Step:
        """The step that follows a finished ``step``: the next one in order; but when the
        officer came back from the review, the review itself, unless the change left a
        later step incomplete (a retaken photo needs the resident's approval again), which
        then comes first."""
        following = ORDER[ORDER.index(step) + 1]
        if not self.back_to_review:
            return following
        for later in ORDER[ORDER.index(step) + 1:ORDER.index(Step.REVIEW)]:
            if self.missing(later):
                return later
        return Step.REVIEW

    def _enter(self, step: Step) -> None:
        self._close_step_timer()
        self.step = step
        if step == Step.REVIEW:
            self.back_to_review = False
        self.save_draft()

    def _close_step_timer(self) -> None:
        now = self.ctx.clock()
        spent = max(0.0, now - self._step_started)
        durations = dict(self.recording.step_durations)
        durations[str(self.step)] = round(durations.get(str(self.step), 0.0) + spent, 3)
        self.recording = replace(self.recording, step_durations=durations)
        self._step_started = now

    def _not_sealed(self) -> None:
        if self.step == Step.SEALED:
            raise refuse("sealed", "Rekaman sudah disegel dan tidak dapat diubah",
                         "The recording is sealed and cannot change")

    def _at(self, *steps: Step) -> None:
        self._not_sealed()
        if self.step not in steps:
            label_id, label_en = STEP_LABELS[self.step]
            raise refuse("wrong_step", f"Tidak dapat dilakukan pada langkah {label_id}",
                         f"Not possible at the step {label_en}",
                         "Kembali ke langkah yang sesuai", "Go back to the right step")

    def missing(self, step: Step) -> list[tuple[str, str]]:
        """What a step still needs, as (Indonesian, English) pairs; empty when done."""
        r = self.recording
        if step == Step.PHOTO and r.photo is None:
            return [("foto wajah", "face photo")]
        if step == Step.PHOTO_APPROVAL and not self.photo_approved:
            return [("persetujuan foto", "photo approval")]
        if step == Step.FINGERPRINTS:
            return [(f"jari {p.label('id')}", f"finger {p.label('en')}")
                    for p in FingerPosition if p not in r.fingers]
        if step == Step.SIGNATURE and r.signature is None:
            return [("tanda tangan", "signature")]
        if step == Step.WITNESS and r.witness is None:
            return [("saksi", "witness")]
        return []

    # -- photo ------------------------------------------------------------------------------------
    def add_photo(self, photo: PhotoCapture) -> PhotoCapture:
        """Keep the best photo so far (best of N); returns the one kept."""
        self._at(Step.PHOTO)
        self.photo_attempts += 1
        kept = self.recording.photo
        if kept is None or photo.quality_score > kept.quality_score:
            kept = photo
            # A new photo is not the one the resident approved: they must see it again.
            self.photo_approved = False
        self.recording = replace(self.recording, photo=kept)
        self.save_draft()
        return kept

    def accept_photo(self, reason: str | None = None) -> None:
        """Move on with the kept photo; below the threshold only with the officer's reason."""
        self._at(Step.PHOTO)
        photo = self.recording.photo
        if photo is None:
            raise refuse("no_photo", "Belum ada foto", "No photo taken yet",
                         "Ambil foto dulu", "Take a photo first")
        if photo.quality_score < photo.quality_threshold:
            if not reason or not reason.strip():
                raise refuse("photo_reason", "Mutu foto di bawah batas: beri alasan",
                             "Photo quality is below the threshold: give a reason",
                             "Mis. warga tidak dapat duduk", "E.g. the resident cannot sit up")
            self.recording = replace(self.recording,
                                     photo=replace(photo, below_threshold_reason=reason.strip()))
        self._enter(self.after(Step.PHOTO))

    def approve_photo(self, approved: bool) -> None:
        """The resident or family saw the photo: approved goes on, refused goes back."""
        self._at(Step.PHOTO_APPROVAL)
        self.photo_approved = approved
        self._enter(self.after(Step.PHOTO_APPROVAL) if approved else Step.PHOTO)

    # -- fingerprints ------------------------------------------------------------------------
    def next_finger(self) -> FingerPosition | None:
        """The next finger to capture, in standard order (1 right thumb ... 10 left little)."""
        for position in FingerPosition:
            if position not in self.recording.fingers:
                return position
            kept = self.recording.fingers[position]
            if self._needs_retry(kept):
                return position
        return None

    def remaining_fingers(self) -> list[FingerPosition]:
        """Every finger still to capture (none kept, or a poor one with attempts left), in
        standard order: what "all remaining" applies an exception to."""
        return [position for position in FingerPosition
                if position not in self.recording.fingers
                or self._needs_retry(self.recording.fingers[position])]

    def _needs_retry(self, kept: FingerCapture) -> bool:
        return (kept.exception is None and not kept.low_quality_accepted
                and (kept.quality_score or 0) < self.ctx.settings.finger_threshold
                and self.finger_attempts.get(int(kept.position), 0)
                < self.ctx.settings.finger_attempts)

    def finger_state(self, position: FingerPosition) -> str:
        """What the hand diagram shows for a finger: ``todo``, ``exception``, ``low`` (kept
        below the pass mark, or accepted as is) or ``done``."""
        kept = self.recording.fingers.get(FingerPosition(position))
        if kept is None:
            return "todo"
        if kept.exception is not None:
            return "exception"
        if kept.low_quality_accepted or \
                (kept.quality_score or 0) < self.ctx.settings.finger_threshold:
            return "low"
        return "done"

    def can_accept_as_is(self, position: FingerPosition) -> bool:
        """A poor capture the officer may keep now, flagged, instead of trying again."""
        kept = self.recording.fingers.get(FingerPosition(position))
        return (kept is not None and kept.image_png is not None
                and not kept.low_quality_accepted
                and (kept.quality_score or 0) < self.ctx.settings.finger_threshold)

    def attempts_left(self, position: FingerPosition) -> int:
        return max(0, self.ctx.settings.finger_attempts
                   - self.finger_attempts.get(int(position), 0))

    def add_finger(self, position: FingerPosition, image_png: bytes,
                   quality_score: int) -> FingerCapture:
        """One attempt at a finger; the best attempt is kept. After the last allowed attempt
        a poor finger is accepted with a flag, so the officer is never stuck."""
        self._at(Step.FINGERPRINTS)
        position = FingerPosition(position)
        attempts = self.finger_attempts.get(int(position), 0) + 1
        self.finger_attempts[int(position)] = attempts
        now = datetime.fromtimestamp(self.ctx.clock(), UTC)
        capture = FingerCapture(position=position, image_png=image_png,
                                quality_score=quality_score, attempts=attempts, exception=None,
                                exception_note="", exception_photo_jpeg=None,
                                low_quality_accepted=False, captured_at=now)
        kept = self.recording.fingers.get(position)
        if kept is None or kept.exception is not None or \
                (kept.quality_score or 0) < quality_score:
            kept = capture
        kept = replace(kept, attempts=attempts)
        if (kept.quality_score or 0) < self.ctx.settings.finger_threshold and \
                attempts >= self.ctx.settings.finger_attempts:
            kept = replace(kept, low_quality_accepted=True)
        fingers = dict(self.recording.fingers)
        fingers[position] = kept
        self.recording = replace(self.recording, fingers=fingers)
        self.save_draft()
        return kept

    def accept_finger_as_is(self, position: FingerPosition) -> None:
        """Keep the best attempt of a poor finger now, with the low-quality flag."""
        self._at(Step.FINGERPRINTS)
        kept = self.recording.fingers.get(FingerPosition(position))
        if kept is None or kept.image_png is None:
            raise refuse("no_finger", "Jari ini belum direkam", "This finger has no capture yet")
        fingers = dict(self.recording.fingers)
        fingers[kept.position] = replace(kept, low_quality_accepted=True)
        self.recording = replace(self.recording, fingers=fingers)
        self.save_draft()

    def finger_exception(self, position: FingerPosition, exception: FingerException,
                         note: str = "", photo_jpeg: bytes | None = None) -> None:
        """A finger that cannot be captured: amputated, bandaged, contracture, skin, tremor..."""
        self._at(Step.FINGERPRINTS)
        exception = FingerException(exception)
        if exception == FingerException.OTHER and not note.strip():
            raise refuse("exception_note", "Pengecualian 'lainnya' perlu keterangan",
                         "Exception 'other' needs a note")
        position = FingerPosition(position)
        fingers = dict(self.recording.fingers)
        fingers[position] = FingerCapture(
            position=position, image_png=None, quality_score=None,
            attempts=self.finger_attempts.get(int(position), 0), exception=exception,
            exception_note=note.strip(), exception_photo_jpeg=photo_jpeg,
            low_quality_accepted=False,
            captured_at=datetime.fromtimestamp(self.ctx.clock(), UTC))
        self.recording = replace(self.recording, fingers=fingers)
        self.save_draft()

    def clear_finger(self, position: FingerPosition) -> None:
        """Undo a finger (e.g. an exception chosen by mistake) to capture it again."""
        self._at(Step.FINGERPRINTS)
        fingers = dict(self.recording.fingers)
        fingers.pop(FingerPosition(position), None)
        self.finger_attempts.pop(int(position), None)
        self.recording = replace(self.recording, fingers=fingers)
        self.save_draft()

    # -- signature and witness ------------------------------------------------------------------
    def sign(self, strokes: list[list[tuple[float, float, float]]], image_png: bytes) -> None:
        self._at(Step.SIGNATURE)
        if not strokes or sum(len(s) for s in strokes) < 2:
            raise refuse("empty_signature", "Tanda tangan kosong", "The signature is empty",
                         "Minta warga menandatangani lagi", "Ask the resident to sign again")
        self.recording = replace(self.recording, signature=SignatureCapture(
            strokes=strokes, image_png=image_png, cannot_sign_reason=None))
        self._enter(self.after(Step.SIGNATURE))

    def cannot_sign(self, reason: str) -> None:
        """The resident cannot sign: a reason instead (the thumbprint stands in)."""
        self._at(Step.SIGNATURE)
        if not reason.strip():
            raise refuse("cannot_sign_reason", "Beri alasan tidak dapat tanda tangan",
                         "Give the reason the resident cannot sign")
        self.recording = replace(self.recording, signature=SignatureCapture(
            strokes=[], image_png=None, cannot_sign_reason=reason.strip()))
        self._enter(self.after(Step.SIGNATURE))

    def set_witness(self, name: str, role: str, consent: bool) -> None:
        self._at(Step.WITNESS)
        if not name.strip() or not role.strip():
            raise refuse("witness", "Nama dan peran saksi wajib diisi",
                         "The witness's name and role are required")
        self.recording = replace(self.recording, witness=Witness(name=name.strip(),
                                                                 role=role.strip(),
                                                                 consent=consent))
        self._enter(Step.REVIEW)

    # -- finishing ---------------------------------------------------------------------------------
    def outcome(self) -> Outcome:
        """Recorded when there is a photo and a signature (or the reason there is none) and
        every finger has a capture or an exception, with at least one print among them;
        otherwise partial: ten exceptions and no print are not a complete recording."""
        r = self.recording
        complete = (r.photo is not None and len(r.fingers) == len(FingerPosition)
                    and any(f.image_png for f in r.fingers.values())
                    and r.signature is not None)
        return Outcome.RECORDED if complete else Outcome.PARTIAL

    def seal(self, outcome: Outcome | None = None, note: str = "") -> StoredRecord:
        """Stamp, seal, sign, store and queue the recording; the draft goes."""
        self._at(Step.REVIEW)
        return self._seal(outcome or self.outcome(), note)

    def not_recorded(self, outcome: Outcome, note: str = "") -> StoredRecord:
        """Close without biometrics: refused, not home, deceased, moved, unfit, not found..."""
        self._not_sealed()
        outcome = Outcome(outcome)
        if outcome not in NOT_RECORDED:
            raise refuse("not_a_non_recording", "Hasil ini bukan alasan tidak direkam",
                         "This outcome is not a reason for no recording")
        self.recording = replace(self.recording, photo=None, fingers={}, signature=None,
                                 witness=None)
        return self._seal(outcome, note)

    def _seal(self, outcome: Outcome, note: str) -> StoredRecord:
        self._close_step_timer()
        self.recording = replace(
            self.recording, outcome=outcome, outcome_note=note.strip(),
            finished_at=datetime.fromtimestamp(self.ctx.clock(), UTC),
            gnss=self.ctx.gnss_fix(), devices=self.ctx.devices(),
            software_version=__version__)
        stored = seal_recording(self.ctx.store, self.ctx.signer, self.ctx.office,
                                self.recording, key=self.ctx.data_key,
                                actor=",".join(self.ctx.officers))
        self.step = Step.SEALED
        # Drop the plaintext biometrics: only the sealed copy remains.
        self.recording = replace(self.recording, photo=None, fingers={}, signature=None)
        log.info("recording sealed (%d bytes, outcome %s)", stored.size, outcome)
        return stored


# ---------------------------------------------------------------------------------------------
# Drafts and pre-flight checks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DraftInfo:
    recording_id: str
    target_id: str  # the target's reference in the store (kit.records.target_ref)
    step: str
    updated_at: float
    expires_at: float

    def expires_in(self, now: float) -> timedelta:
        return timedelta(seconds=self.expires_at - now)


def drafts(store: Store, now: float, settings: WorkflowSettings) -> tuple[list[DraftInfo],
                                                                         list[DraftInfo]]:
    """Drafts to offer for resume, and among them those about to expire (warn the officer)."""
    live, soon = [], []
    for row in store.drafts():
        info = DraftInfo(row["recording_id"], row["target_id"], row["step"],
                         row["updated_at"], row["expires_at"])
        if info.expires_at <= now:
            continue
        live.append(info)
        if info.expires_at - now <= settings.draft_warning_hours * 3600:
            soon.append(info)
    return live, soon


def expire_drafts(store: Store, now: float) -> int:
    """Delete drafts past their lifetime (their personal data goes with them)."""
    gone = [r["recording_id"] for r in store.drafts() if r["expires_at"] <= now]
    for recording_id in gone:
        store.delete_draft(recording_id)
        store.audit("draft_expired", subject=recording_id)
    return len(gone)


@dataclass(frozen=True)
class Check:
    """One pre-flight finding. ``blocking`` only when a recording could not be stored."""

    name: str
    ok: bool
    blocking: bool
    message_id: str
    message_en: str

    def message(self, lang: str = "id") -> str:
        return self.message_en if lang == "en" else self.message_id


MIN_FREE_BYTES = 200 * 1024 * 1024  # about 40 full recordings: below that, storing may fail


def preflight(data_dir: Path, *, battery_percent: float | None, devices: dict[str, str | None],
              now: float | None = None, gnss_time: datetime | None = None,
              disk_usage: Callable[[Path], Any] = shutil.disk_usage) -> list[Check]:
    """Free disk, battery, clock sanity, devices present: warnings, blocking only for disk.

    ``devices`` maps a device name to None when present, or to the reason it is missing.
    ``disk_usage`` measures the data disk (:func:`shutil.disk_usage`; a test may point it at
    a small, nearly full file system).
    """
    now = time.time() if now is None else now
    checks: list[Check] = []
    free = disk_usage(data_dir).free
    checks.append(Check(
        "disk", free >= MIN_FREE_BYTES, free < 20 * 1024 * 1024,
        f"Ruang kosong {free // (1024 * 1024)} MB",
        f"Free space {free // (1024 * 1024)} MB"))
    if battery_percent is None:
        checks.append(Check("battery", False, False, "Baterai tidak terbaca",
                            "Battery cannot be read"))
    else:
        checks.append(Check("battery", battery_percent >= 20, False,
                            f"Baterai {battery_percent:.0f}%", f"Battery {battery_percent:.0f}%"))
    clock = datetime.fromtimestamp(now, UTC)
    sane = clock.year >= 2025
    if gnss_time is not None:
        sane = sane and abs((clock - gnss_time).total_seconds()) < 300
    checks.append(Check("clock", sane, False, f"Jam kit {clock:%Y-%m-%d %H:%M} UTC",
                        f"Kit clock {clock:%Y-%m-%d %H:%M} UTC"))
    for name, problem in devices.items():
        # The officer reads the device's name, not the kit's key for it ("fingerprint").
        label_id, label_en = DEVICE_LABELS.get(name, (name, name))
        checks.append(Check(f"device:{name}", problem is None, False,
                            _device_line(label_id, "siap", problem),
                            _device_line(label_en, "ready", problem)))
    return checks


def _device_line(label: str, ready: str, problem: str | None) -> str:
    """"Kamera: siap", or the device's own message, which names it already
    ("Sensor sidik jari, membuka sensor: sensor terputus...")."""
    if problem is None:
        return f"{label}: {ready}"
    if problem.casefold().startswith(label.casefold()):
        return problem
    return f"{label}: {problem}"


def require_storable(checks: list[Check]) -> None:
    blocking = [c for c in checks if c.blocking and not c.ok]
    if blocking:
        raise JaranIjoError(
            id=f"Rekaman tidak dapat disimpan: {blocking[0].message_id}",
            en=f"A recording could not be stored: {blocking[0].message_en}",
            # The officer cannot free space on the kit: say who can, and that nothing
            # already recorded is at risk.
            hint_id="Hubungi teknisi; rekaman yang sudah tersimpan tetap aman",
            hint_en="Call the technician; the recordings already saved are safe",
            code="preflight")


def staff_witness(entry: str, default_role: str) -> tuple[str, str]:
    """The name and role of an assignment's village-staff entry: the office writes
    "Name (role)", e.g. "Lilik Maryati (kader posyandu lansia)"; an entry without a role
    in brackets is ``default_role``. The witness screen fills its two fields from this."""
    entry = entry.strip()
    if entry.endswith(")") and " (" in entry:
        name, role = entry[:-1].rsplit(" (", 1)
        if name.strip() and role.strip():
            return name.strip(), role.strip()
    return entry, default_role


def describe(recording: Recording) -> dict[str, Any]:
    """A summary without personal data: counts and flags only (for logs and the demo)."""
    fingers = recording.fingers.values()
    return {
        "outcome": str(recording.outcome),
        "photo": recording.photo is not None,
        "fingers_captured": sum(1 for f in fingers if f.image_png),
        "finger_exceptions": sorted(str(f.exception) for f in fingers if f.exception),
        "low_quality_fingers": sum(1 for f in fingers if f.low_quality_accepted),
        "signature": "cannot sign" if recording.signature and
                     recording.signature.cannot_sign_reason else bool(recording.signature),
    }
