"""The SOP's visit flow at the office (issue 13): a request letter, its target list, the
schedule, the assignment on a kit, and the records that close each target.

The web pages (``office.web.requests``, ``office.web.schedule``, ``office.web.replies``,
``office.web.checkout``) and the demo all go through these functions, so what a page does
and what a test or the demo does are the same thing.

**Where a request stands.** :data:`REQUEST_STATES` in flow order; :func:`move` sets one and
writes a :class:`~office.models.RequestEvent` (who, when, why) in the same transaction.

**Targets are sealed.** A target's personal data (NIK, KK, name, birth date, address) are
kept as :class:`sync.domain.Target` canonical CBOR under the office's index key
(:func:`office.records.index_key`, derived from the seal key), like a record's index row:
the ``targets`` table alone names nobody. :class:`TargetVault` seals and opens them in
memory; a page that shows them needs the office keys (``office web --keys``).

**The assignment.** :func:`send_assignment` builds the kit's :class:`sync.domain.Assignment`
from a visit and its *verified* targets, seals it to the kit's box key and signs it
(:func:`office.outbound.seal_assignment`), and queues it for ``office serve``. A change
re-seals the same assignment id (the kit keeps the newest ``sealed_at``); a cancellation
seals it with ``cancelled`` and no targets; a visit moved to another kit is cancelled on
the old one. :func:`assignment_state` reads back queued / sent / delivered / opened.

**Closing the loop.** :func:`close_target` is called for every record the office indexes
(:meth:`office.records.RecordBook.index`): the record's target id closes its target as
``recorded`` (complete), ``partial`` (what is missing) or ``not_recorded`` (the outcome). A
better result is never overwritten by a worse one from another record.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cbor2
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox
from nacl.signing import SigningKey

from office.records import Person, RecordUnavailable, index_key
from sync.domain import Assignment, Target
from sync.envelope import KitPublicKeys, OfficeKeys
from sync.errors import JaranIjoError, KeyFileError, ValidationError

if TYPE_CHECKING:
    from office import models

# -- where a request stands -----------------------------------------------------------------

REQUEST_STATES: dict[str, Any] = {
    "registered": _("Tercatat"),
    "dispositioned": _("Didisposisi ke Bidang Dafduk"),
    "declined": _("Tidak dilanjutkan"),
    "verified": _("Sasaran diverifikasi"),
    "scheduled": _("Dijadwalkan"),
    "letter_sent": _("Surat balasan terkirim"),
    "assigned": _("Ditugaskan ke kit"),
    "done": _("Selesai"),
}
"""Every status a request can have, in flow order, with its label."""

OPEN_STATES = ("registered", "dispositioned", "verified", "scheduled", "letter_sent",
               "assigned")
"""A request in one of these is still being worked on (its targets count as 'open')."""

TARGET_STATUSES: dict[str, Any] = {
    "pending": _("Belum direkam"),
    "recorded": _("Terekam lengkap"),
    "partial": _("Terekam sebagian"),
    "not_recorded": _("Tidak terekam"),
}

_RANK = {"pending": 0, "not_recorded": 1, "partial": 2, "recorded": 3}


def state_label(status: str) -> str:
    return str(REQUEST_STATES.get(status, status))


def move(request: models.VisitRequest, status: str, by: str, note: str = "") -> None:
    """Put ``request`` in ``status`` and write who moved it, when and why (one transaction).
    ``note`` must not name a resident (it is shown in the history to every reader)."""
    from office.models import RequestEvent

    if status not in REQUEST_STATES:
        raise ValueError(f"unknown request status {status!r}")
    using = request._state.db or "default"
    with transaction.atomic(using=using):
        request.status = status
        request.version += 1
        request.save(update_fields=["status", "version"])
        RequestEvent.objects.using(using).create(request=request, at=time.time(), by=by,
                                                 status=status, note=note[:500])


def note_event(request: models.VisitRequest, by: str, note: str) -> None:
    """A history line that does not change the status (a target list imported, a visit
    changed)."""
    from office.models import RequestEvent

    RequestEvent.objects.using(request._state.db or "default").create(
        request=request, at=time.time(), by=by, status=request.status, note=note[:500])


def progress(request: models.VisitRequest) -> dict[str, int]:
    """How many of the request's targets stand where: ``total``, each status, and
    ``verified`` / ``unverified`` / ``refused`` (not verified, with a reason)."""
    from django.db.models import Count

    counts = {s: 0 for s in TARGET_STATUSES}
    for row in request.targets.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    counts["total"] = sum(counts[s] for s in TARGET_STATUSES)
    counts["verified"] = request.targets.filter(verified=True).count()
    counts["refused"] = request.targets.filter(verified=False).count()
    counts["unverified"] = counts["total"] - counts["verified"] - counts["refused"]
    counts["closed"] = counts["recorded"] + counts["partial"] + counts["not_recorded"]
    return counts


# -- the sealed targets ---------------------------------------------------------------------


class TargetVault:
    """Seals and opens targets' personal data under the office's index key, in memory."""

    def __init__(self, office: OfficeKeys, kits_dir: Path | None = None) -> None:
        self.office = office
        self.kits_dir = kits_dir
        self._box = SecretBox(index_key(office))

    @classmethod
    def from_settings(cls) -> TargetVault:
        """From the web app's settings; :class:`RecordUnavailable` saying what is missing."""
        from django.conf import settings

        keys, kits = getattr(settings, "OFFICE_KEYS_DIR", ""), getattr(settings, "KITS_DIR", "")
        if not keys:
            raise RecordUnavailable(
                id="Kunci kantor tidak diatur (office web --keys): data sasaran tersegel "
                   "dengan kunci itu", en="The office keys are not set (office web --keys): "
                   "the targets' data are sealed with them", code="no_keys")
        try:
            return cls(OfficeKeys.load(Path(keys)), Path(kits) if kits else None)
        except KeyFileError as exc:
            raise RecordUnavailable(id=exc.text("id"), en=exc.text("en"),
                                    code="no_keys") from exc

    def seal(self, target: Target) -> bytes:
        return bytes(self._box.encrypt(cbor2.dumps(target.to_canonical(), canonical=True)))

    def open(self, sealed: bytes | memoryview) -> Target:
        """The target from its sealed bytes; :class:`RecordUnavailable` when they are not
        ours (another office's key, damaged)."""
        try:
            return Target.from_canonical(cbor2.loads(self._box.decrypt(bytes(sealed))))
        except (CryptoError, ValueError, cbor2.CBORDecodeError, JaranIjoError) as exc:
            raise RecordUnavailable(id="Data sasaran tidak dapat dibuka dengan kunci kantor ini",
                                    en="The target's data cannot be opened with this office's "
                                       "key", code="target_sealed") from exc

    def seal_bytes(self, data: bytes) -> bytes:
        """Any personal bytes (an uploaded target list between the import's steps) sealed
        the same way, so nothing personal is written to disk in clear."""
        return bytes(self._box.encrypt(data))

    def open_bytes(self, sealed: bytes) -> bytes:
        try:
            return bytes(self._box.decrypt(sealed))
        except CryptoError as exc:
            raise RecordUnavailable(id="Berkas sementara tidak dapat dibuka dengan kunci ini",
                                    en="The temporary file cannot be opened with this key",
                                    code="upload_sealed") from exc

    def kit_keys(self, kit_id: str) -> KitPublicKeys:
        if self.kits_dir is None:
            raise RecordUnavailable(id="Folder kunci kit tidak diatur (office web --kits)",
                                    en="The kits' key folder is not set (office web --kits)",
                                    code="no_keys")
        try:
            return KitPublicKeys.load(self.kits_dir / kit_id)
        except KeyFileError as exc:
            raise RecordUnavailable(id=f"Kunci publik kit {kit_id} tidak ada",
                                    en=f"No public keys for kit {kit_id}",
                                    code="kit_unknown") from exc


def add_target(request: models.VisitRequest, target: Target, vault: TargetVault, by: str,
               *, source_row: int | None = None) -> models.Target:
    """Keep one checked target on ``request`` (sealed). The caller has validated it."""
    from office.models import Target as TargetRow

    return TargetRow.objects.using(request._state.db or "default").create(
        id=target.id, request=request, sealed=vault.seal(target),
        category=target.category.value, place=target.place.value,
        village=target.address.desa, source_row=source_row, added_at=time.time(),
        added_by=by)


def known_niks(vault: TargetVault, *, book: Any = None, exclude_request: int | None = None,
               exclude_target: str | None = None, using: str = "default") -> dict[str, str]:
    """NIKs the office already knows, with what they are in words a user understands:
    on an open request ("permohonan 12/2026 (Desa Papungan)"), or already recorded
    ("sudah terekam 03-12-2026"). For the import's duplicate check. Opens every open
    target and every record index row in memory (a few thousand rows: milliseconds)."""
    from office.models import RecordReview
    from office.models import Target as TargetRow

    known: dict[str, str] = {}
    rows = TargetRow.objects.using(using).filter(
        request__status__in=OPEN_STATES).select_related("request")
    if exclude_request is not None:
        rows = rows.exclude(request_id=exclude_request)
    if exclude_target is not None:
        rows = rows.exclude(id=exclude_target)
    for row in rows.only("sealed", "request__letter_number", "request__village",
                         "request__agency"):
        try:
            nik = vault.open(row.sealed).nik
        except RecordUnavailable:
            continue
        who = row.request.village or row.request.agency
        known.setdefault(nik, f"permohonan {row.request.letter_number} ({who})")
    if book is not None:
        for review in RecordReview.objects.using(using).exclude(sealed=None).only(
                "sealed", "started_at", "village"):
            person: Person | None = book.person(review.sealed)
            if person is None or not person.nik:
                continue
            when = ""
            if review.started_at:
                from office.records import local_day

                when = " " + local_day(review.started_at).strftime("%d-%m-%Y")
            known[person.nik] = f"sudah terekam{when}"
    return known


def open_targets(vault: TargetVault, rows: Iterable[models.Target]
                 ) -> list[tuple[models.Target, Target | None]]:
    """Each row with its opened target (None when it cannot be opened here)."""
    out: list[tuple[models.Target, Target | None]] = []
    for row in rows:
        try:
            out.append((row, vault.open(row.sealed)))
        except RecordUnavailable:
            out.append((row, None))
    return out


# -- the assignment -------------------------------------------------------------------------


def assignment_for(visit: models.Visit, vault: TargetVault, *,
                   cancelled: bool = False) -> Assignment:
    """The kit's assignment for ``visit``: its verified targets not yet fully recorded."""
    request = visit.request
    targets: list[Target] = []
    if not cancelled:
        rows = visit.targets.filter(verified=True).exclude(status="recorded").order_by(
            "source_row", "added_at", "id")
        for _row, target in open_targets(vault, rows):
            if target is not None:
                targets.append(target)
    return Assignment(
        id=visit.assignment_id, visit_date=visit.visit_date,
        village=request.village or request.agency, kecamatan=request.kecamatan,
        officers=[o for o in visit.officers.split(",") if o],
        kit_id=visit.kit_id,
        village_staff=[s.strip() for s in visit.village_staff.splitlines() if s.strip()],
        targets=targets, cancelled=cancelled)


def _queue(kit_id: str, assignment: Assignment, vault: TargetVault, sign: SigningKey,
           using: str) -> None:
    from office.models import Assignment as Queued
    from office.outbound import seal_assignment

    envelope, sealed_at = seal_assignment(assignment.to_canonical(), assignment.id, kit_id,
                                          vault.kit_keys(kit_id), sign)
    Queued.objects.using(using).update_or_create(
        kit_id=kit_id, assignment_id=assignment.id,
        defaults={"sealed_at": sealed_at, "envelope": envelope, "queued_at": time.time(),
                  "sent_at": None, "delivered_at": None, "opened_at": None, "error": ""})


def send_assignment(visit: models.Visit, vault: TargetVault, by: str, *,
                    cancel: bool = False) -> Assignment:
    """Seal, sign and queue the visit's assignment for its kit (or its cancellation).

    Validated with the kit's own rules first (:meth:`Assignment.validate`): what the kit
    would refuse is refused here, with the same reasons. If the visit's kit changed since
    it was last sent, the old kit gets a cancellation of the same id."""
    from office.models import Assignment as Queued

    assignment = assignment_for(visit, vault, cancelled=cancel)
    assignment.validate()
    sign = vault.office.sign
    using = visit._state.db or "default"
    with transaction.atomic(using=using):
        for old in Queued.objects.using(using).filter(
                assignment_id=visit.assignment_id).exclude(kit_id=visit.kit_id):
            stale = assignment_for(visit, vault, cancelled=True)
            stale.kit_id = old.kit_id
            _queue(old.kit_id, stale, vault, sign, using)
        _queue(visit.kit_id, assignment, vault, sign, using)
        visit.state = "cancelled" if cancel else "assigned"
        visit.assigned_at = time.time()
        visit.updated_at, visit.updated_by = time.time(), by
        visit.version += 1
        visit.save()
    return assignment


@dataclass(frozen=True)
class AssignmentState:
    """Where a visit's assignment is on its way to the kit."""

    code: str  # "none" | "queued" | "sent" | "delivered" | "opened" | "refused"
    at: float | None = None
    error: str = ""

    @property
    def label(self) -> str:
        return str(ASSIGNMENT_STATES.get(self.code, self.code))


ASSIGNMENT_STATES: dict[str, Any] = {
    "none": _("belum dikirim"),
    "queued": _("antre di kantor"),
    "sent": _("terkirim, menunggu kit"),
    "delivered": _("diterima kit"),
    "opened": _("dibuka di kit"),
    "refused": _("ditolak kit"),
}


def assignment_state(visit: models.Visit) -> AssignmentState:
    from office.models import Assignment as Queued

    row = Queued.objects.using(visit._state.db or "default").filter(
        kit_id=visit.kit_id, assignment_id=visit.assignment_id).only(
        "queued_at", "sent_at", "delivered_at", "opened_at", "error").first()
    if row is None:
        return AssignmentState("none")
    if row.opened_at is not None:
        return AssignmentState("opened", row.opened_at)
    if row.delivered_at is not None:
        return AssignmentState("delivered", row.delivered_at)
    if row.error:
        return AssignmentState("refused", row.queued_at, row.error)
    if row.sent_at is not None:
        return AssignmentState("sent", row.sent_at)
    return AssignmentState("queued", row.queued_at)


# -- closing the loop -----------------------------------------------------------------------


def close_target(review: models.RecordReview, person: Person | None, *,
                 using: str = "default") -> models.Target | None:
    """Close the target ``review``'s record is about (if the office has it): recorded,
    partial (with what is missing) or not recorded (with the outcome). A better result
    already there (from another record of the same resident) is kept."""
    from office.models import Target as TargetRow

    if person is None or not person.target_id or review.open_error:
        return None
    row = TargetRow.objects.using(using).filter(id=person.target_id).first()
    if row is None:
        return None
    if review.complete:
        status, detail = "recorded", ""
    elif review.outcome in ("recorded", "partial"):
        status, detail = "partial", review.missing
    else:
        status, detail = "not_recorded", review.outcome or "outcome:none"
    same_record = (row.record_kit, row.record_id) == (review.kit_id, review.record_id)
    if not same_record and _RANK[status] < _RANK.get(row.status, 0):
        return row
    row.status, row.detail = status, detail[:300]
    row.record_kit, row.record_id = review.kit_id, review.record_id
    row.closed_at = time.time()
    row.version += 1
    row.save(update_fields=["status", "detail", "record_kit", "record_id", "closed_at",
                            "version"])
    _maybe_done(row.request)
    return row


def _maybe_done(request: models.VisitRequest) -> None:
    """A request whose every verified target is closed is done (history says so)."""
    if request.status not in ("assigned", "letter_sent", "scheduled"):
        return
    open_left = request.targets.filter(verified=True, status="pending").exists()
    if not open_left and request.targets.filter(verified=True).exists():
        counts = progress(request)
        move(request, "done", "sistem",
             f"{counts['recorded']} terekam lengkap, {counts['partial']} sebagian, "
             f"{counts['not_recorded']} tidak terekam")


def move_to_visit(rows: Iterable[models.Target], visit: models.Visit, by: str) -> int:
    """Put targets that were not (fully) recorded on a later visit: pending again there
    (the earlier outcome stays in the request's history)."""
    moved = 0
    with transaction.atomic(using=visit._state.db or "default"):
        for row in rows:
            if row.status == "recorded":
                raise ValidationError(
                    id="Sasaran yang sudah terekam lengkap tidak perlu dijadwalkan lagi",
                    en="A target already fully recorded need not be scheduled again",
                    code="target_recorded")
            row.visit = visit
            row.status, row.detail = "pending", ""
            row.version += 1
            row.save(update_fields=["visit", "status", "detail", "version"])
            moved += 1
        if moved:
            note_event(visit.request, by, f"{moved} sasaran dipindah ke kunjungan "
                                          f"{visit.visit_date:%d-%m-%Y}")
    return moved
