"""The visit flow's own rules (:mod:`office.visits`): targets kept sealed, the NIKs the
office already knows, and records closing their targets — the request done when every
verified target is closed, a better result never overwritten by a worse one, a target
not recorded moved to a later visit."""

from __future__ import annotations

import time
from datetime import date
from datetime import time as clock_time
from pathlib import Path

import pytest

from office.db import setup_django
from sync.domain import FingerException, Outcome
from tests.office.records_helpers import KIT, RecordOffice, recording, sample_assignment

setup_django()
from office import visits  # noqa: E402
from office.models import RequestEvent, Target, Visit, VisitRequest  # noqa: E402
from office.records import RecordBook  # noqa: E402


@pytest.fixture
def office(tmp_path: Path) -> RecordOffice:
    return RecordOffice(tmp_path)


def papungan(office: RecordOffice) -> tuple[VisitRequest, visits.TargetVault, Visit]:
    """A request of Desa Papungan with the sample's six targets, four verified, on a visit."""
    alias = office.db.alias
    request = VisitRequest.objects.using(alias).create(
        letter_number="140/27/409.31.4/2026", letter_date=date(2026, 11, 20),
        received_on=date(2026, 11, 23), applicant_kind="village", kecamatan="Kanigoro",
        village="Papungan", created_at=time.time(), created_by="tu")
    visits.move(request, "registered", "tu")
    visits.move(request, "dispositioned", "kadis", "segera")
    vault = visits.TargetVault(office.office_keys, office.kits_dir)
    visit = Visit.objects.using(alias).create(
        request=request, visit_date=date(2026, 12, 3), start_time=clock_time(8),
        recording_point="house_to_house", officers="ptg-0107,ptg-0112", kit_id=KIT,
        assignment_id=sample_assignment().id, created_at=time.time(), created_by="dafduk",
        updated_at=time.time(), updated_by="dafduk")
    for n, target in enumerate(sample_assignment().targets):
        row = visits.add_target(request, target, vault, "dafduk", source_row=n + 2)
        row.verified = n < 4
        row.visit = visit
        row.save(using=alias)
    visits.move(request, "assigned", "dafduk")
    return request, vault, visit


def test_targets_are_sealed_and_open_again(office: RecordOffice) -> None:
    request, vault, _visit = papungan(office)
    rows = list(Target.objects.using(office.db.alias).filter(request=request))
    first = sample_assignment().targets[0]
    row = next(r for r in rows if r.id == first.id)
    assert first.nik.encode() not in bytes(row.sealed)
    assert first.name.encode() not in bytes(row.sealed)
    assert vault.open(row.sealed) == first
    other = visits.TargetVault(type(office.office_keys).generate())
    with pytest.raises(visits.RecordUnavailable):
        other.open(row.sealed)  # another office's key opens nothing


def test_known_niks_name_the_open_request_and_the_recorded_residents(
        office: RecordOffice) -> None:
    request, vault, _visit = papungan(office)
    targets = sample_assignment().targets
    book = RecordBook(office.office_keys, office.kits_dir, using=office.db.alias)
    office.store(recording(0))
    book.index_new()
    known = visits.known_niks(vault, book=book, using=office.db.alias)
    assert known[targets[1].nik] == "permohonan 140/27/409.31.4/2026 (Papungan)"
    assert known[targets[0].nik].startswith("sudah terekam ")
    assert visits.known_niks(vault, exclude_request=request.pk, using=office.db.alias) == {}


def test_records_close_their_targets_and_finish_the_request(office: RecordOffice) -> None:
    request, _vault, _visit = papungan(office)
    alias = office.db.alias
    book = RecordBook(office.office_keys, office.kits_dir, using=alias)
    office.store(recording(0))
    office.store(recording(1, exceptions={4: FingerException.AMPUTATED}, missing_fingers=(9,),
                           cannot_sign="stroke"))
    office.store(recording(2, outcome=Outcome.REFUSED))
    book.index_new()
    targets = sample_assignment().targets
    rows = {r.id: r for r in Target.objects.using(alias).filter(request=request)}
    assert rows[targets[0].id].status == "recorded"
    assert (rows[targets[1].id].status, rows[targets[1].id].detail) == ("partial", "finger:9")
    assert (rows[targets[2].id].status, rows[targets[2].id].detail) == ("not_recorded",
                                                                        "refused")
    assert rows[targets[3].id].status == "pending"
    request.refresh_from_db(using=alias)
    assert request.status == "assigned"  # one verified target is still pending
    counts = visits.progress(request)
    assert (counts["total"], counts["closed"], counts["verified"]) == (6, 3, 4)

    # A refusal recorded later for the fully recorded resident does not undo the record.
    office.store(recording(0, outcome=Outcome.REFUSED))
    book.index_new()
    assert Target.objects.using(alias).get(id=targets[0].id).status == "recorded"

    office.store(recording(3))
    book.index_new()
    request.refresh_from_db(using=alias)
    assert request.status == "done"
    last = RequestEvent.objects.using(alias).filter(request=request).last()
    assert last is not None and last.by == "sistem"
    assert last.note == "2 terekam lengkap, 1 sebagian, 1 tidak terekam"


def test_a_target_not_recorded_goes_on_a_later_visit(office: RecordOffice) -> None:
    request, _vault, _visit = papungan(office)
    alias = office.db.alias
    book = RecordBook(office.office_keys, office.kits_dir, using=alias)
    office.store(recording(0))
    office.store(recording(2, outcome=Outcome.NOT_HOME))
    book.index_new()
    later = Visit.objects.using(alias).create(
        request=request, visit_date=date(2026, 12, 10), start_time=clock_time(8),
        recording_point="house_to_house", officers="ptg-0107", kit_id=KIT,
        assignment_id="0193a2c4-5e10-7c3a-9b41-2f6d8e0a1a99", created_at=time.time(),
        created_by="dafduk", updated_at=time.time(), updated_by="dafduk")
    targets = sample_assignment().targets
    missed = Target.objects.using(alias).filter(id=targets[2].id)
    assert visits.move_to_visit(missed, later, "dafduk") == 1
    moved = Target.objects.using(alias).get(id=targets[2].id)
    assert (moved.visit_id, moved.status) == (later.pk, "pending")
    with pytest.raises(visits.ValidationError):
        visits.move_to_visit(Target.objects.using(alias).filter(id=targets[0].id), later,
                             "dafduk")
    note = RequestEvent.objects.using(alias).filter(request=request).last()
    assert note is not None and note.note == "1 sasaran dipindah ke kunjungan 10-12-2026"
