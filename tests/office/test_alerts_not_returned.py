"""The fleet alert ``not_returned`` (office/alerts.py): a kit handed out for a visit and
not back by the day its checkout was due raises it from the next day (WIB), with the due
date and the days overdue; it clears when the kit is returned; a kit the office never
heard from raises it too (it is about the kit lent out, not its link).

The rule is tested as a function; ``evaluate`` on a real SQLite office database fed by
the real receiver, its clock set by the test (as in ``test_alerts.py``)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pytest

from office.db import setup_django
from tests.office.receiver import KIT
from tests.office.web.fleet_helpers import Fleet

setup_django()
from office import alerts as a  # noqa: E402  (needs Django set up)
from office.models import Alert, AlertSettings, KitCheckout  # noqa: E402
from office.presence import KitData  # noqa: E402
from office.web import alerts as page  # noqa: E402

WIB = zoneinfo.ZoneInfo("Asia/Jakarta")
DAY = dt.date(2026, 11, 30)
T = dt.datetime(2026, 11, 30, 10, 0, tzinfo=WIB).timestamp()  # 10.00 WIB on DAY
NEVER_SEEN = "blitar-kit-08"


def at(day: dt.date, hour: int, minute: int = 0) -> float:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=WIB).timestamp()


# -- the rule, as a function -------------------------------------------------------------------
def test_not_out_or_not_yet_due_holds_nothing() -> None:
    assert a.not_returned(None, T) is None
    assert a.not_returned(DAY, T) is None  # due today: it may still come back tonight
    assert a.not_returned(DAY + dt.timedelta(days=2), T) is None


def test_overdue_from_the_next_wib_day_with_the_days_counted() -> None:
    assert a.not_returned(DAY, at(DAY, 23, 59)) is None
    # 00.30 WIB next day is still the 30th in UTC: the office's day decides.
    assert a.not_returned(DAY, at(DAY + dt.timedelta(days=1), 0, 30)) == {
        "due_on": "2026-11-30", "days": 1}
    assert a.not_returned(DAY - dt.timedelta(days=3), T) == {"due_on": "2026-11-27", "days": 3}


def test_conditions_include_it_even_before_first_contact_and_with_no_setting() -> None:
    silent = KitData(NEVER_SEEN, False, {}, None, {}, None, {}, None, None)
    assert a.conditions(silent, T, AlertSettings(), due_on=DAY - dt.timedelta(days=1)) == {
        a.NOT_RETURNED: {"due_on": "2026-11-29", "days": 1}}
    assert a.conditions(silent, T, AlertSettings()) == {}
    # Every other kind can be switched off; this one stays on.
    off = AlertSettings(battery_percent=0, no_fix_minutes=0, waiting_hours=0,
                        offline_during_visit=False, failed_selftest=False, no_tpm=False)
    assert set(a.conditions(silent, T, off, due_on=DAY - dt.timedelta(days=2))) == {
        a.NOT_RETURNED}
    assert a.NOT_RETURNED in a.KINDS


def test_the_alerts_page_names_it_and_says_the_figures() -> None:
    assert page.kind_label(a.NOT_RETURNED) == "Kit belum dikembalikan"
    assert page.detail_text(a.NOT_RETURNED, {"due_on": "2026-11-27", "days": 3}) == (
        "seharusnya kembali 27-11-2026, terlambat 3 hari")


# -- evaluate, on a real database --------------------------------------------------------------
class Office:
    def __init__(self, tmp_path: Path) -> None:
        self.fleet = Fleet(tmp_path, now=T)
        self.alias = self.fleet.db.alias

    def checkout(self, kit_id: str, due_on: dt.date) -> KitCheckout:
        return KitCheckout.objects.using(self.alias).create(
            kit_id=kit_id, visit=None, taken_by="ptg-0101", out_at=T - 86400 * 3,
            out_by="penjaga.gudang", due_on=due_on)

    def give_back(self, row: KitCheckout, when: float) -> None:
        KitCheckout.objects.using(self.alias).filter(pk=row.pk).update(returned_at=when)

    def open(self) -> dict[str, dict[str, object]]:
        return {f"{x.kit_id}:{x.kind}": a.detail_figures(x) for x in Alert.objects.using(
            self.alias).filter(cleared_at__isnull=True)}


@pytest.fixture
def office(tmp_path: Path) -> Office:
    return Office(tmp_path)


def test_raised_the_day_after_due_and_cleared_on_return(office: Office) -> None:
    office.fleet.birth(KIT)
    office.fleet.health(KIT, battery=80)
    row = office.checkout(KIT, DAY)
    assert a.evaluate(T, using=office.alias).raised == []  # due today
    assert a.evaluate(at(DAY, 23, 59), using=office.alias).raised == []
    next_day = at(DAY + dt.timedelta(days=1), 8)
    assert a.evaluate(next_day, using=office.alias).raised == [f"{KIT}:not_returned"]
    assert office.open() == {f"{KIT}:not_returned": {"due_on": "2026-11-30", "days": 1}}
    # A day later the figures grow on the same alert (one line, not a new one).
    a.evaluate(next_day + 86400, using=office.alias)
    assert office.open() == {f"{KIT}:not_returned": {"due_on": "2026-11-30", "days": 2}}
    assert Alert.objects.using(office.alias).count() == 1
    office.give_back(row, next_day + 86400 + 60)
    summary = a.evaluate(next_day + 86400 + 90, using=office.alias)
    assert summary.cleared == [f"{KIT}:not_returned"]
    assert office.open() == {}


def test_a_kit_never_heard_from_is_judged_and_cleared_too(office: Office) -> None:
    row = office.checkout(NEVER_SEEN, DAY - dt.timedelta(days=2))
    summary = a.evaluate(T, using=office.alias)
    assert summary.raised == [f"{NEVER_SEEN}:not_returned"]
    assert office.open() == {f"{NEVER_SEEN}:not_returned": {"due_on": "2026-11-28",
                                                            "days": 2}}
    office.give_back(row, T + 60)
    assert a.evaluate(T + 120, using=office.alias).cleared == [f"{NEVER_SEEN}:not_returned"]
    # Nothing else is ever raised for it: it has no kits row, no report.
    assert a.evaluate(T + 3600, using=office.alias).raised == []


def test_a_returned_checkout_and_one_not_yet_due_raise_nothing(office: Office) -> None:
    office.fleet.birth(KIT)
    old = office.checkout(KIT, DAY - dt.timedelta(days=5))
    office.give_back(old, T - 86400 * 4)
    office.checkout(KIT, DAY + dt.timedelta(days=1))
    for step in range(5):
        assert a.evaluate(T + step * 3600, using=office.alias).raised == []
    assert office.open() == {}
