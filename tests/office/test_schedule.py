"""The planning rules of :mod:`office.schedule`: the time estimate and team size with their
figures, the weekly cadence over the office's working days (holidays of the ``holidays``
package, cuti bersama, the office's own table), which kits can go on a day and why not,
and which other visits clash.

The database rules run on the test process's own office database (``default``, in the
temp folder tests/conftest.py gives), each test inside a transaction rolled back after it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator

import pytest

from office.db import setup_django, use_database

setup_django()
from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402

from office import deadline as clock  # noqa: E402
from office import schedule as plan  # noqa: E402
from office.models import Command, Kit, KitCheckout, Revocation, Visit, VisitRequest  # noqa: E402

DAY = dt.date(2026, 12, 8)  # a Tuesday, a working day


@pytest.fixture
def db() -> Iterator[None]:
    assert use_database(settings.DATABASES["default"]["NAME"]) == "default"
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def request_row(village: str = "Papungan", kecamatan: str = "Kanigoro",
                letter: str = "470/12/2026") -> VisitRequest:
    return VisitRequest.objects.create(
        letter_number=letter, letter_date=DAY - dt.timedelta(days=10),
        received_on=DAY - dt.timedelta(days=9), applicant_kind="village", kecamatan=kecamatan,
        village=village, status="verified", created_at=time.time(), created_by="tester")


def visit_row(vr: VisitRequest, day: dt.date, *, kit: str = "blitar-kit-01",
              officers: str = "P-0001,P-0002", state: str = "planned",
              start: dt.time = dt.time(8, 0)) -> Visit:
    now = time.time()
    return Visit.objects.create(
        request=vr, visit_date=day, start_time=start, recording_point="house_to_house",
        officers=officers, kit_id=kit, state=state,
        assignment_id=f"a-{vr.pk}-{day}-{kit}-{state}-{start}", created_at=now,
        created_by="tester", updated_at=now, updated_by="tester")


def selftest(kit: str, *, ok: bool = True, problems: str = "", at: float | None = None,
             command_id: str | None = None) -> None:
    res = {"store": "ok", "keys": "tpm", **({"problems": problems} if problems else {})}
    now = at or time.time()
    Command.objects.create(
        command_id=command_id or f"st-{kit}-{now}", kit_id=kit, name="selftest", args="{}",
        issued_at=int(now) - 10, expires_at=int(now) + 3600, payload=b"", queued_at=now - 10,
        sent_at=now - 5, result_ok=1 if ok else 0,
        result=json.dumps({"res": res} if ok else {"why": "store corrupt"}), result_at=now)


# -- the estimate ---------------------------------------------------------------------------


def test_a_small_flat_house_to_house_visit_counts_the_sops_30_minutes() -> None:
    est = plan.estimate({"lansia": 3}, 3, "flat", "house_to_house")
    assert est.recording_minutes == 3 * 30
    assert est.coordination_minutes == 30
    assert est.between_minutes == 3 * 10
    assert est.trip_minutes == 45
    assert est.travel_minutes == 30 + 45
    assert est.total_minutes == 90 + 30 + 75 == 195
    assert est.days == 1 and est.team_size == 2 and est.team_reasons == ()
    assert est.total_text == "3 jam 15 menit"
    assert "3 lansia × 30 menit = 90 menit" in est.explanation
    assert "3 rumah × 10 menit = 30 menit" in est.explanation
    assert "Tim 2 petugas (bawaan)" in est.explanation


def test_each_condition_has_its_own_figure() -> None:
    est = plan.estimate({"odgj": 1, "sakit": 1, "disabilitas": 1, "lansia": 1, "lainnya": 1},
                        0, "flat", "hospital")
    assert est.recording_minutes == 45 + 40 + 40 + 30 + 30
    assert [c for c, _n, _m in est.by_category][:1] == ["odgj"]  # the longest first
    assert est.explanation.startswith("Perekaman: 1 ODGJ × 45 menit, 1 disabilitas × 40")
    assert est.between_minutes == 0  # one place: no travel between houses
    assert est.travel_minutes == 45
    assert est.team_size == 3 and est.team_reasons == ("ada sasaran ODGJ",)


@pytest.mark.parametrize(("terrain", "house", "trip"),
                         [("flat", 10, 45), ("hilly", 20, 75), ("remote", 35, 120)])
def test_terrain_sets_travel_between_houses_and_the_trip_out(
        terrain: str, house: int, trip: int) -> None:
    est = plan.estimate({"lansia": 2}, 2, terrain, "house_to_house")
    assert (est.between_minutes, est.trip_minutes) == (2 * house, trip)
    assert f"2 rumah × {house} menit" in est.explanation
    assert est.team_size == (3 if terrain == "remote" else 2)
    at_office = plan.estimate({"lansia": 2}, 2, terrain, "village_office")
    assert at_office.between_minutes == 0 and at_office.trip_minutes == trip


def test_more_than_eight_residents_need_three_officers_and_an_unknown_terrain_is_flat() -> None:
    eight = plan.estimate({"lansia": 8}, 8, "flat", "care_home")
    nine = plan.estimate({"lansia": 9}, 9, "swamp", "care_home")
    assert eight.team_size == 2
    assert nine.team_size == 3 and nine.team_reasons == ("lebih dari 8 sasaran",)
    assert nine.terrain == "flat" and nine.trip_minutes == 45


def test_a_visit_over_six_hours_says_how_many_days_it_needs() -> None:
    # 10 ODGJ on remote terrain, house to house: 450 + 30 + 350 = 830 min of work; a day
    # holds 360 - 120 (the trip out) = 240 of it, so 4 days, each with its trip.
    est = plan.estimate({"odgj": 10}, 10, "remote", "house_to_house")
    assert est.recording_minutes + est.coordination_minutes + est.between_minutes == 830
    assert est.days == 4
    assert est.trip_minutes == 4 * 120
    assert est.total_minutes == 830 + 480
    assert "perlu 4 hari kunjungan" in est.explanation
    assert set(est.team_reasons) == {"ada sasaran ODGJ", "medan terpencil",
                                     "lebih dari 8 sasaran"}
    one_day = plan.estimate({"lansia": 6}, 6, "flat", "house_to_house")  # 180+30+60 = 270
    assert one_day.days == 1 and one_day.total_minutes == 270 + 45


def test_the_recording_point_follows_the_targets_places() -> None:
    assert plan.recording_point_for(["home", "home", "hospital"]) == "house_to_house"
    assert plan.recording_point_for(["hospital", "hospital", "home"]) == "hospital"
    assert plan.recording_point_for(["care_home"]) == "care_home"
    assert plan.recording_point_for([]) == "house_to_house"


# -- the weekly cadence ---------------------------------------------------------------------


def test_next_visit_a_week_after_the_last_skips_cuti_bersama_christmas_and_the_weekend() -> None:
    cal = clock.WorkingCalendar()
    today = dt.date(2026, 12, 10)
    last = dt.date(2026, 12, 17)  # a Thursday; +7 = 24 Dec, cuti bersama; 25 Christmas
    assert plan.next_visit_day(last, today, cal) == dt.date(2026, 12, 28)
    # With cuti bersama counted as working, the 24th itself.
    assert plan.next_visit_day(last, today, clock.WorkingCalendar(cuti_bersama_off=False)) \
        == dt.date(2026, 12, 24)
    # An office decree adds the 28th as a day off: the 29th.
    decree = clock.WorkingCalendar(overrides={dt.date(2026, 12, 28): False})
    assert plan.next_visit_day(last, today, decree) == dt.date(2026, 12, 29)


def test_with_no_earlier_visit_or_a_long_ago_one_the_next_working_day_after_today() -> None:
    cal = clock.WorkingCalendar()
    friday = dt.date(2026, 12, 4)
    assert plan.next_visit_day(None, friday, cal) == dt.date(2026, 12, 7)  # Monday
    assert plan.next_visit_day(dt.date(2026, 10, 1), friday, cal) == dt.date(2026, 12, 7)
    assert plan.next_visit_day(None, dt.date(2026, 12, 23), cal) == dt.date(2026, 12, 28)


def test_suggest_date_looks_at_the_villages_last_visit_not_cancelled(db: None) -> None:
    cal = clock.WorkingCalendar()
    today = dt.date(2026, 12, 1)
    vr = request_row()
    assert plan.suggest_date(vr, today, cal) == dt.date(2026, 12, 2)
    earlier = request_row(letter="470/11/2026")  # another letter from the same village
    visit_row(earlier, dt.date(2026, 12, 17))
    visit_row(earlier, dt.date(2026, 12, 30), state="cancelled")  # does not count
    visit_row(request_row("Satreyan"), dt.date(2027, 1, 20))  # another village
    assert plan.suggest_date(vr, today, cal) == dt.date(2026, 12, 28)


# -- kits -----------------------------------------------------------------------------------


def test_available_kits_lists_every_kit_with_the_reason_it_cannot_go(db: None) -> None:
    for kit in ("kit-ok", "kit-lost", "kit-out", "kit-booked", "kit-untested", "kit-failed",
                "kit-fixed", "kit-desk-failed"):
        Kit.objects.create(kit_id=kit)
    for kit in ("kit-ok", "kit-lost", "kit-out", "kit-booked"):
        selftest(kit)
    Revocation.objects.create(kit_id="kit-lost", revoked_at=time.time(), revoked_by="kepala",
                              reason="hilang")
    other = visit_row(request_row("Satreyan"), DAY + dt.timedelta(days=1), kit="kit-out")
    KitCheckout.objects.create(kit_id="kit-out", visit=other, taken_by="P-0003",
                               out_at=time.time(), out_by="gudang", due_on=DAY)
    visit_row(request_row("Sawentar"), DAY, kit="kit-booked")
    selftest("kit-failed", ok=False)
    selftest("kit-fixed", ok=False, at=time.time() - 3600, command_id="old")
    selftest("kit-fixed", at=time.time(), command_id="new")  # the newer one passed
    selftest("kit-desk-failed", at=time.time() - 7200)
    KitCheckout.objects.create(kit_id="kit-desk-failed", taken_by="P-0001",
                               out_at=time.time() - 7000, out_by="gudang", due_on=DAY,
                               out_selftest_ok=True, returned_at=time.time() - 60,
                               return_selftest_ok=False, returned_by="gudang")
    choices = {c.kit_id: c for c in plan.available_kits(DAY)}
    assert {k for k, c in choices.items() if c.available} == {"kit-ok", "kit-fixed"}
    assert choices["kit-lost"].reason == "dicabut (dilaporkan hilang)"
    assert choices["kit-out"].reason == "sedang dibawa untuk kunjungan lain"
    assert choices["kit-booked"].reason == "sudah dipakai kunjungan Sawentar hari itu"
    assert choices["kit-untested"].reason == "belum pernah uji mandiri"
    assert choices["kit-failed"].reason == "uji mandiri terakhir gagal"
    assert choices["kit-desk-failed"].reason == "uji mandiri terakhir gagal"
    # Usable kits are listed first.
    assert [c.kit_id for c in plan.available_kits(DAY)][:2] == ["kit-fixed", "kit-ok"]
    # A failed device in a passed answer is a failure too (as the fleet alert judges it).
    selftest("kit-ok", problems="fingerprint_missing", at=time.time() + 1, command_id="dev")
    assert not {c.kit_id: c for c in plan.available_kits(DAY)}["kit-ok"].available
    # The visit that holds the kit itself may keep it: its own booking and checkout.
    assert {c.kit_id: c for c in plan.available_kits(DAY, exclude_visit=other)}[
        "kit-out"].available
    # Another day, the booked kit is free.
    assert {c.kit_id: c for c in plan.available_kits(DAY + dt.timedelta(days=2))}[
        "kit-booked"].available


# -- clashes --------------------------------------------------------------------------------


def test_conflicts_are_other_visits_that_day_with_the_same_kit_or_an_officer(db: None) -> None:
    vr = request_row()
    same_kit = visit_row(request_row("Satreyan"), DAY, kit="kit-a", officers="P-0009")
    same_officer = visit_row(request_row("Sawentar"), DAY, kit="kit-b",
                             officers="P-0002,P-0007", start=dt.time(13, 0))
    visit_row(request_row("Jatinom"), DAY, kit="kit-a", officers="P-0001", state="cancelled")
    visit_row(request_row("Banggle"), DAY + dt.timedelta(days=1), kit="kit-a",
              officers="P-0001")
    visit_row(request_row("Minggirsari"), DAY, kit="kit-c", officers="P-0005")
    mine = visit_row(vr, DAY, kit="kit-a", officers="P-0001,P-0002")
    found = plan.conflicts(DAY, ["P-0001", "P-0002"], "kit-a", mine)
    assert [(c.visit.pk, c.same_kit, c.officers) for c in found] == [
        (same_kit.pk, True, ()), (same_officer.pk, False, ("P-0002",))]
    # Without excluding it, the visit clashes with itself.
    assert mine.pk in {c.visit.pk for c in plan.conflicts(DAY, ["P-0001"], "kit-a", None)}
    assert plan.conflicts(DAY, ["P-0042"], "kit-z", None) == []
