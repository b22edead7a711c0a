"""The office opens stored records in memory and indexes them (:mod:`office.records`)."""

from __future__ import annotations

from pathlib import Path

from office.db import setup_django
from sync.domain import FingerException, Outcome
from tests.office.records_helpers import KIT, RecordOffice, recording

setup_django()
from office.models import RecordReview  # noqa: E402
from office.records import RecordBook, missing_parts  # noqa: E402


def test_a_stored_record_opens_and_is_indexed_without_names_in_clear(tmp_path: Path) -> None:
    office = RecordOffice(tmp_path)
    full = office.store(recording(0))
    partial = office.store(recording(1, exceptions={4: FingerException.AMPUTATED},
                                     missing_fingers=(9,), cannot_sign="stroke"))
    refused = office.store(recording(2, outcome=Outcome.REFUSED))
    book = RecordBook(type(office.office_keys).load(office.keys_dir), office.kits_dir,
                      using=office.db.alias)
    assert book.index_new() == 3
    assert book.index_new() == 0
    rows = {r.record_id: r for r in RecordReview.objects.using(office.db.alias).all()}
    assert rows[full].complete and rows[full].missing == "" and rows[full].complete_on
    assert not rows[partial].complete and rows[partial].missing == "finger:9"
    assert rows[refused].missing == "outcome:refused" and rows[refused].complete_on is None
    target = recording(0).target
    assert rows[full].village == target.address.desa
    sealed = bytes(rows[full].sealed)
    assert target.name.encode() not in sealed and target.nik.encode() not in sealed
    person = book.person(sealed)
    assert person is not None and (person.name, person.nik) == (target.name, target.nik)
    opened = book.open(KIT, full)
    assert opened.recording.photo is not None and len(opened.recording.fingers) == 10


def test_what_keeps_a_recording_from_being_complete() -> None:
    assert missing_parts(recording(0)) == []
    assert missing_parts(recording(0, missing_fingers=(2, 7))) == ["finger:2", "finger:7"]
    assert missing_parts(recording(0, outcome=Outcome.NOT_HOME)) == ["outcome:not_home"]
    assert missing_parts(recording(0, outcome=Outcome.PARTIAL)) == ["outcome:partial"]
