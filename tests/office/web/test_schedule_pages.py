"""The scheduling pages (:mod:`office.web.schedule`) through Django's test client, in this
process, on the test process's own office database (each test in a transaction rolled back
after it), with real office and kit keys in a temp folder (``OFFICE_KEYS_DIR``,
``KITS_DIR``) so that the assignment a page queues is sealed and signed for real: the test
opens it with the kit's box key, as the kit would, and reads what it carries.

The targets are the invented residents of the sample assignment (Desa Papungan), sealed
under the office's index key as the import seals them; one of them is not verified and
must never reach a kit.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from office.db import setup_django, use_database
from sync.domain import SAMPLE_ASSIGNMENT_PATH
from sync.domain import Assignment as KitAssignment
from sync.envelope import KitKeys, OfficeKeys, open_sealed

setup_django()
from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Permission, User  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from office import schedule as plan  # noqa: E402
from office import visits as flow  # noqa: E402
from office.models import (  # noqa: E402
    Assignment,
    AuditEntry,
    Command,
    Kit,
    Officer,
    ReplyLetter,
    RequestEvent,
    Target,
    Visit,
    VisitRequest,
)
from office.web.clock import load_calendar  # noqa: E402

KIT, OTHER = "blitar-kit-01", "blitar-kit-02"
SAMPLE = KitAssignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))
UNVERIFIED = 5  # the index of the sample target Dafduk did not verify


@dataclass
class Desk:
    client: Client
    other: Client  # a second scheduler
    office_keys: OfficeKeys
    kits: dict[str, KitKeys]
    vr: VisitRequest
    vault: flow.TargetVault
    today: dt.date
    day: dt.date  # the date suggested before any visit (every form uses it unless told)

    @property
    def verified_ids(self) -> set[str]:
        return {t.id for i, t in enumerate(SAMPLE.targets) if i != UNVERIFIED}

    def form(self, **changes: Any) -> dict[str, Any]:
        """A complete, valid visit form (what the page prefills, filled in)."""
        data: dict[str, Any] = {
            "visit_date": self.day.isoformat(),
            "start_time": "08:00", "recording_point": "house_to_house",
            "officers": ["P-0001", "P-0002"], "kit_id": KIT,
            "village_staff": "Sulastri\nKasun Krajan", "team_size": "2",
            "targets": sorted(self.verified_ids)}
        data.update(changes)
        return data

    def new_visit(self, **changes: Any) -> Visit:
        reply = self.client.post(f"/requests/{self.vr.pk}/visits/new/", self.form(**changes))
        assert reply.status_code == 302, reply.content.decode()[:3000]
        return Visit.objects.order_by("-pk").first()  # type: ignore[return-value]

    def letter_sent(self, visit: Visit) -> None:
        now = time.time()
        ReplyLetter.objects.create(
            visit=visit, number="470/88/409.20/2026", letter_date=self.today, fields={},
            draft=b"%PDF-1.7 draft", draft_sha256="0" * 64, drafted_at=now - 600,
            drafted_by="dafduk", verified_at=now - 300, sent_at=now - 60, sent_by="dafduk")

    def opened(self, kit_id: str, visit: Visit) -> tuple[KitAssignment, str]:
        """The queued assignment for ``kit_id`` opened as that kit opens it."""
        row = Assignment.objects.get(kit_id=kit_id, assignment_id=visit.assignment_id)
        opened = open_sealed(bytes(row.envelope), recipient=self.kits[kit_id].box,
                             sender=self.office_keys.sign.verify_key)
        return KitAssignment.from_canonical(opened.content), row.sealed_at


def scheduler(name: str) -> User:
    user = User.objects.create_user(name, password="kuda-hijau-blitar-2026")
    for codename in ("schedule_visits", "view_fleet", "change_village"):
        user.user_permissions.add(Permission.objects.get(codename=codename,
                                                         content_type__app_label="office"))
    return user


def selftest_passed(kit: str) -> None:
    now = time.time()
    Command.objects.create(command_id=f"st-{kit}", kit_id=kit, name="selftest", args="{}",
                           issued_at=int(now), expires_at=int(now) + 3600, payload=b"",
                           queued_at=now, sent_at=now, result_ok=1,
                           result='{"res": {"store": "ok", "keys": "tpm"}}', result_at=now)


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    assert use_database(settings.DATABASES["default"]["NAME"]) == "default"
    office_keys = OfficeKeys.generate()
    office_keys.save(tmp_path / "keys")
    kits = {k: KitKeys.generate() for k in (KIT, OTHER)}
    for kit_id, keys in kits.items():
        keys.public.save(tmp_path / "kits" / kit_id)
    with override_settings(OFFICE_KEYS_DIR=str(tmp_path / "keys"),
                           KITS_DIR=str(tmp_path / "kits"),
                           ALLOWED_HOSTS=["testserver"]), transaction.atomic():
        vault = flow.TargetVault.from_settings()
        today = timezone.localdate()
        vr = VisitRequest.objects.create(
            letter_number="470/12/2026", letter_date=today - dt.timedelta(days=7),
            received_on=today - dt.timedelta(days=6), applicant_kind="village",
            kecamatan="Kanigoro", village="Papungan", status="verified",
            created_at=time.time(), created_by="dafduk")
        for i, target in enumerate(SAMPLE.targets):
            row = flow.add_target(vr, target, vault, "dafduk", source_row=i + 2)
            row.verified = i != UNVERIFIED
            row.save()
        for oid, name in (("P-0001", "Sri Wahyuni"), ("P-0002", "Agus Priyanto"),
                          ("P-0003", "Dwi Lestari")):
            Officer.objects.create(officer_id=oid, name=name)
        for kit in (KIT, OTHER):
            Kit.objects.create(kit_id=kit)
            selftest_passed(kit)
        client, other = Client(), Client()
        client.force_login(scheduler("dafduk"))
        other.force_login(scheduler("dafduk2"))
        yield Desk(client, other, office_keys, kits, vr, vault, today,
                   plan.suggest_date(vr, today, load_calendar()))
        transaction.set_rollback(True)


def page(reply: Any) -> str:
    return " ".join(reply.content.decode().split())


# -- a new visit ----------------------------------------------------------------------------


def test_a_new_visit_is_prefilled_and_saved_from_a_verified_request(desk: Desk) -> None:
    reply = desk.client.get(f"/requests/{desk.vr.pk}/visits/new/")
    assert reply.status_code == 200
    html = page(reply)
    suggested = plan.suggest_date(desk.vr, desk.today, load_calendar())
    assert f'value="{suggested.isoformat()}"' in html
    assert 'value="08:00"' in html
    assert '<option value="house_to_house" selected>' in html
    # Five verified targets offered (names: the keys are here), the unverified one not.
    for i, target in enumerate(SAMPLE.targets):
        assert (target.name in html) == (i != UNVERIFIED)
    # An ODGJ target among them: three officers suggested, and why (the user may override).
    assert "Tim 3 petugas (ada sasaran ODGJ)" in html
    assert 'name="team_size" value="3"' in html
    assert "1 ODGJ × 45 menit" in html and "1 sakit × 40 menit" in html
    assert "3 rumah × 10 menit = 30 menit" in html  # three of the five are at home

    visit = desk.new_visit()
    assert visit.kit_id == KIT and visit.officers == "P-0001,P-0002"
    assert visit.village_staff == "Sulastri\nKasun Krajan"
    assert visit.minutes > 0 and visit.state == "planned" and len(visit.assignment_id) == 36
    assert set(visit.targets.values_list("id", flat=True)) == desk.verified_ids
    desk.vr.refresh_from_db()
    assert desk.vr.status == "scheduled"
    assert RequestEvent.objects.filter(request=desk.vr, status="scheduled").exists()
    entry = AuditEntry.objects.get(action="schedule_visit")
    assert entry.username == "dafduk" and entry.subject == f"visit {visit.pk}"
    assert not any(t.name.split()[0] in entry.detail for t in SAMPLE.targets)

    # The visit page: its facts, names, the assignment not yet sent, the letter first.
    html = page(desk.client.get(f"/visits/{visit.pk}/"))
    assert "Sri Wahyuni, Agus Priyanto" in html
    assert "belum dikirim" in html and f"/visits/{visit.pk}/letter/" in html
    assert 'id="send-assignment" disabled' in html
    # The schedule lists it with its state.
    html = page(desk.client.get("/schedule/"))
    assert "470/12/2026" in html and "Papungan" in html and "belum dikirim" in html


def test_every_form_fault_is_said_in_indonesian_and_nothing_is_saved(desk: Desk) -> None:
    reply = desk.client.post(f"/requests/{desk.vr.pk}/visits/new/", desk.form(
        visit_date=(desk.today - dt.timedelta(days=1)).isoformat(), start_time="8 pagi",
        officers=[], kit_id="", targets=[], team_size="9"))
    assert reply.status_code == 400
    html = page(reply)
    for text in ("Tanggal kunjungan sudah lewat", "Jam mulai tidak valid",
                 "Pilih minimal satu petugas", "Pilih kit yang dibawa petugas",
                 "Pilih minimal satu sasaran", "Ukuran tim paling banyak 6"):
        assert text in html, text
    reply = desk.client.post(f"/requests/{desk.vr.pk}/visits/new/",
                             desk.form(team_size="3"))
    assert "Tim 3 petugas: pilih 3 petugas" in page(reply)
    assert not Visit.objects.exists()


def test_an_unusable_kit_is_shown_disabled_with_its_reason_and_refused(desk: Desk) -> None:
    Kit.objects.create(kit_id="blitar-kit-03")  # never self-tested
    html = page(desk.client.get(f"/requests/{desk.vr.pk}/visits/new/"))
    assert ('<option value="blitar-kit-03" disabled>blitar-kit-03 — belum pernah uji '
            'mandiri</option>') in html
    reply = desk.client.post(f"/requests/{desk.vr.pk}/visits/new/",
                             desk.form(kit_id="blitar-kit-03"))
    assert reply.status_code == 400
    assert "Kit blitar-kit-03 tidak dapat dipakai tanggal itu: belum pernah uji mandiri" \
        in page(reply)


def test_a_request_not_yet_verified_gets_no_visit(desk: Desk) -> None:
    desk.vr.status = "dispositioned"
    desk.vr.save()
    reply = desk.client.get(f"/requests/{desk.vr.pk}/visits/new/")
    assert reply.status_code == 400
    assert "sesudah sasarannya diverifikasi" in page(reply)


def test_a_clash_with_another_visit_is_warned_and_saved_only_when_confirmed(desk: Desk) -> None:
    first = desk.new_visit(targets=sorted(desk.verified_ids)[:2])
    reply = desk.client.post(f"/requests/{desk.vr.pk}/visits/new/",
                             desk.form(targets=sorted(desk.verified_ids)[2:],
                                       kit_id=OTHER, officers=["P-0002", "P-0003"],
                                       start_time="13:00"))
    assert reply.status_code == 409
    html = page(reply)
    assert "Bentrok dengan kunjungan lain hari itu" in html
    assert "petugas yang sama: Agus Priyanto" in html
    assert 'name="save_anyway"' in html
    assert Visit.objects.count() == 1
    second = desk.new_visit(targets=sorted(desk.verified_ids)[2:], kit_id=OTHER,
                            officers=["P-0002", "P-0003"], start_time="13:00",
                            save_anyway="on")
    assert second.pk != first.pk and Visit.objects.count() == 2
    # The same kit the same day is not offered any more: booked by the first visit.
    html = page(desk.client.get(f"/visits/{second.pk}/edit/"))
    assert f'<option value="{KIT}" disabled>{KIT} — sudah dipakai kunjungan Papungan' in html


# -- changing a visit -----------------------------------------------------------------------


def test_a_stale_edit_is_refused_with_who_saved_first_and_nothing_is_overwritten(
        desk: Desk) -> None:
    visit = desk.new_visit()
    opened_version = visit.version
    # Another scheduler saves first.
    reply = desk.other.post(f"/visits/{visit.pk}/edit/", desk.form(
        start_time="09:30", version=str(opened_version)))
    assert reply.status_code == 302
    # The first scheduler, with the version the form was opened with.
    reply = desk.client.post(f"/visits/{visit.pk}/edit/", desk.form(
        start_time="10:00", village_staff="Orang lain", version=str(opened_version)))
    assert reply.status_code == 409
    html = page(reply)
    assert "sudah diubah oleh dafduk2" in html and "Tidak ada yang ditimpa" in html
    assert 'value="09:30"' in html  # the values now stored are shown
    visit.refresh_from_db()
    assert visit.start_time == dt.time(9, 30) and visit.updated_by == "dafduk2"
    assert visit.village_staff == "Sulastri\nKasun Krajan"
    assert visit.version == opened_version + 1


# -- the assignment -------------------------------------------------------------------------


def test_sending_is_refused_until_the_reply_letter_has_gone(desk: Desk) -> None:
    visit = desk.new_visit()
    reply = desk.client.post(f"/visits/{visit.pk}/send/")
    assert reply.status_code == 400
    html = page(reply)
    assert "surat balasan kunjungan ini belum dikirim ke desa" in html
    assert f'href="/visits/{visit.pk}/letter/"' in html
    assert not Assignment.objects.exists()
    visit.refresh_from_db()
    assert visit.state == "planned"


def test_the_assignment_is_sealed_to_the_kit_with_only_verified_targets_then_changed_moved_and_cancelled(  # noqa: E501
        desk: Desk) -> None:
    visit = desk.new_visit()
    desk.letter_sent(visit)
    reply = desk.client.post(f"/visits/{visit.pk}/send/")
    assert reply.status_code == 302, page(reply)[:2000]
    row = Assignment.objects.get(kit_id=KIT, assignment_id=visit.assignment_id)
    assert row.sent_at is None and row.delivered_at is None  # queued for `office serve`
    sent, first_sealed = desk.opened(KIT, visit)
    assert {t.id for t in sent.targets} == desk.verified_ids
    assert SAMPLE.targets[UNVERIFIED].id not in {t.id for t in sent.targets}
    assert sent.officers == ["P-0001", "P-0002"] and sent.kit_id == KIT
    assert sent.village_staff == ["Sulastri", "Kasun Krajan"] and not sent.cancelled
    visit.refresh_from_db()
    desk.vr.refresh_from_db()
    assert visit.state == "assigned" and desk.vr.status == "assigned"
    state = page(desk.client.get(f"/visits/{visit.pk}/state/"))
    assert "antre di kantor" in state and 'hx-trigger="every 3s"' in state

    # The kit got it and opened it: the state says so, and stops polling.
    now = time.time()
    Assignment.objects.filter(pk=row.pk).update(sent_at=now - 20, delivered_at=now - 10,
                                                opened_at=now - 5)
    state = page(desk.client.get(f"/visits/{visit.pk}/state/"))
    assert "dibuka di kit" in state and "every 3s" not in state

    # A change re-seals the same id for the kit, newer, queued again.
    time.sleep(0.002)  # sealed_at has millisecond precision
    reply = desk.client.post(f"/visits/{visit.pk}/edit/", desk.form(
        start_time="09:00", version=str(visit.version)))
    assert reply.status_code == 302, page(reply)[:2000]
    row = Assignment.objects.get(kit_id=KIT, assignment_id=visit.assignment_id)
    changed, sealed = desk.opened(KIT, visit)
    assert sealed > first_sealed and row.sent_at is None and row.opened_at is None
    assert {t.id for t in changed.targets} == desk.verified_ids

    # The kit changes: the old kit gets a cancellation, the new one the assignment.
    visit.refresh_from_db()
    reply = desk.client.post(f"/visits/{visit.pk}/edit/", desk.form(
        kit_id=OTHER, version=str(visit.version)))
    assert reply.status_code == 302, page(reply)[:2000]
    old, _ = desk.opened(KIT, visit)
    new, _ = desk.opened(OTHER, visit)
    assert old.cancelled and old.targets == [] and old.kit_id == KIT
    assert not new.cancelled and {t.id for t in new.targets} == desk.verified_ids
    html = page(desk.client.get(f"/visits/{visit.pk}/"))
    assert "kit sebelumnya: pembatalan" in html

    # Cancelling seals a cancellation for the kit; pending targets are free again.
    visit.refresh_from_db()
    reply = desk.client.post(f"/visits/{visit.pk}/cancel/", {"reason": "ab",
                                                             "version": visit.version})
    assert reply.status_code == 400 and "Alasan terlalu singkat" in page(reply)
    reply = desk.client.post(f"/visits/{visit.pk}/cancel/", {
        "reason": "jalan desa tertutup longsor", "version": visit.version})
    assert reply.status_code == 302, page(reply)[:2000]
    off, _ = desk.opened(OTHER, visit)
    assert off.cancelled and off.targets == []
    visit.refresh_from_db()
    assert visit.state == "cancelled" and not visit.targets.exists()
    assert RequestEvent.objects.filter(request=desk.vr,
                                       note__contains="dibatalkan").exists()
    desk.vr.refresh_from_db()  # its only visit cancelled: the request waits for a schedule
    assert desk.vr.status == "verified"
    details = " ".join(AuditEntry.objects.filter(
        action__in=("send_assignment", "change_visit", "cancel_visit")).values_list(
        "detail", flat=True))
    assert "longsor" not in details
    assert not any(t.name.split()[0] in details for t in SAMPLE.targets)


def test_targets_not_recorded_move_to_a_new_visit(desk: Desk) -> None:
    visit = desk.new_visit()
    ids = sorted(desk.verified_ids)
    Target.objects.filter(pk=ids[0]).update(status="not_recorded", detail="not_home")
    Target.objects.filter(pk=ids[1]).update(status="partial", detail="finger:9")
    Target.objects.filter(pk=ids[2]).update(status="recorded")
    html = page(desk.client.get(f"/visits/{visit.pk}/"))
    assert 'id="move-form"' in html
    reply = desk.client.post(f"/visits/{visit.pk}/move/", {"targets": ids[:3], "dest": "new"})
    assert reply.status_code == 302 and f"from={visit.pk}" in reply["Location"]
    form = page(desk.client.get(reply["Location"]))
    assert SAMPLE.targets[[t.id for t in SAMPLE.targets].index(ids[0])].name in form
    later = plan.suggest_date(desk.vr, desk.today, load_calendar())
    assert later >= desk.day + dt.timedelta(days=7)  # the weekly cadence
    assert f'value="{later.isoformat()}"' in form
    reply = desk.client.post(reply["Location"], desk.form(
        visit_date=later.isoformat(), targets=ids[:2], save_anyway="on"))
    assert reply.status_code == 302, page(reply)[:2000]
    new = Visit.objects.order_by("-pk").first()
    assert new is not None and new.pk != visit.pk
    assert set(new.targets.values_list("id", flat=True)) == set(ids[:2])
    assert set(new.targets.values_list("status", flat=True)) == {"pending"}
    assert Target.objects.get(pk=ids[2]).visit_id == visit.pk  # recorded: stays


# -- villages and officers ------------------------------------------------------------------


def test_village_terrain_and_officers_are_kept_and_checked(desk: Desk) -> None:
    reply = desk.client.post("/schedule/villages/", {"kecamatan": "Kanigro", "name": "",
                                                     "terrain": "cliff"})
    assert reply.status_code == 400
    html = page(reply)
    assert "Kecamatan tidak ada di Kabupaten Blitar" in html
    assert "Isi nama desa/kelurahan" in html and "Pilih medan dari daftar" in html
    reply = desk.client.post("/schedule/villages/", {"kecamatan": "kanigoro",
                                                     "name": "Papungan", "terrain": "hilly"})
    assert reply.status_code == 302
    reply = desk.client.post("/schedule/villages/", {"kecamatan": "Kanigoro",
                                                     "name": "papungan", "terrain": "flat"})
    assert "Desa ini sudah ada" in page(reply)
    html = page(desk.client.get(f"/requests/{desk.vr.pk}/visits/new/"))
    assert "medan berbukit" in html and "× 20 menit" in html

    reply = desk.client.post("/schedule/officers/", {"officer_id": "P 9", "name": ""})
    assert reply.status_code == 400
    assert "Kode petugas hanya huruf" in page(reply) and "Isi nama petugas" in page(reply)
    assert "sudah dipakai" in page(desk.client.post("/schedule/officers/", {
        "officer_id": "P-0001", "name": "Siapa"}))
    reply = desk.client.post("/schedule/officers/active/".replace(
        "officers/", "officers/P-0003/"), {"active": "0"})
    assert reply.status_code == 302 and not Officer.objects.get(pk="P-0003").active
    assert "Dwi Lestari" not in page(desk.client.get(f"/requests/{desk.vr.pk}/visits/new/"))


def test_a_user_without_the_permission_is_refused(desk: Desk) -> None:
    viewer = Client()
    viewer.force_login(User.objects.create_user("pemantau", password="x-y-z-1234567"))
    assert viewer.get("/schedule/").status_code == 403
    assert viewer.post(f"/requests/{desk.vr.pk}/visits/new/", desk.form()).status_code == 403
    assert not Visit.objects.exists()


def test_the_kits_refusal_shows_on_the_visit_and_polling_stops(desk: Desk) -> None:
    visit = desk.new_visit()
    desk.letter_sent(visit)
    assert desk.client.post(f"/visits/{visit.pk}/send/").status_code == 302
    Assignment.objects.filter(kit_id=KIT).update(sent_at=time.time(),
                                                 error="stale: sealed too long ago")
    state = page(desk.client.get(f"/visits/{visit.pk}/state/"))
    assert "ditolak kit" in state and "Kit menolak penugasan ini: stale" in state
    assert "every 3s" not in state


def test_targets_move_to_a_later_visit_of_the_same_request_which_is_re_sent(
        desk: Desk) -> None:
    ids = sorted(desk.verified_ids)
    first = desk.new_visit(targets=ids[:3])
    later_day = desk.day + dt.timedelta(days=7)
    later = desk.new_visit(targets=ids[3:], visit_date=later_day.isoformat(),
                           save_anyway="on")
    desk.letter_sent(later)
    assert desk.client.post(f"/visits/{later.pk}/send/").status_code == 302
    Target.objects.filter(pk=ids[0]).update(status="not_recorded", detail="not_home")
    html = page(desk.client.get(f"/visits/{first.pk}/"))
    assert f'<option value="{later.pk}">' in html
    reply = desk.client.post(f"/visits/{first.pk}/move/", {"targets": [ids[0], ids[1]],
                                                           "dest": str(later.pk)})
    # Only the target not recorded moves (the other is pending on a visit yet to come).
    assert reply.status_code == 302 and reply["Location"] == f"/visits/{later.pk}/"
    assert Target.objects.get(pk=ids[0]).visit_id == later.pk
    assert Target.objects.get(pk=ids[0]).status == "pending"
    assert Target.objects.get(pk=ids[1]).visit_id == first.pk
    resent, _ = desk.opened(KIT, later)
    assert {t.id for t in resent.targets} == {ids[0], *ids[3:]}
    reply = desk.client.post(f"/visits/{first.pk}/move/", {"targets": [ids[1]],
                                                           "dest": str(later.pk)})
    assert reply.status_code == 400 and "Pilih sasaran yang akan dipindah" in page(reply)
