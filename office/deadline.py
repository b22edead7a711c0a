"""The KTP-el clock's arithmetic: working days, and the 14-working-day issuance deadline.

The SOP of Dinas Dukcapil Kabupaten Blitar: "Jangka waktu penerbitan KTP-el paling lambat
14 (empat belas) hari kerja **sejak** berkas persyaratan diterima lengkap dan telah
melakukan perekaman." The office reads *sejak* the way Indonesian administrative periods
are read: the day of the event itself is not counted (it is usually part-spent, and a
record that arrives at 16.55 has not had a working day of processing). **Day 1 is the
first working day after the day the complete record arrived**, and the deadline is the
14th such day; the KTP-el is on time if issued on or before it. A record arriving on a
Saturday therefore has the same deadline as one arriving on the Friday before: both
start counting on Monday.

A day is a working day (:func:`is_working_day`) unless it is a Saturday or Sunday, a
public holiday of the ``holidays`` package's Indonesian calendar (``holidays.ID``, its
PUBLIC category), or, when the office's setting says so (the default), a *cuti bersama*
day (its GOVERNMENT category). The office's own table overrides both: a decree that adds
a day off (``working=False``) or cancels one, even a weekend made a working day
(``working=True``); decrees change mid-year, the package does not.

Everything here is pure (no Django, no database): the web app builds a
:class:`WorkingCalendar` from its table and setting (:mod:`office.web.clock`) and passes
it in, so the arithmetic is tested against hand-counted cases on its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import holidays

SLA_WORKING_DAYS = 14  # the SOP's "paling lambat 14 (empat belas) hari kerja"
DUE_SOON_WORKING_DAYS = 3  # the "due within 3 working days" list
# No real calendar goes this long without a working day; a table that makes it so (an
# override per day for years) is a mistake, and the arithmetic stops instead of looping.
MAX_DAYS_OFF_IN_A_ROW = 400

PUBLIC = "public"
GOVERNMENT = "government"  # the package's name for cuti bersama


@dataclass(frozen=True)
class Holiday:
    """One day of the package's calendar, for the page that shows it beside the table."""

    day: dt.date
    name: str
    cuti_bersama: bool  # the GOVERNMENT category (else PUBLIC)


@dataclass
class WorkingCalendar:
    """Which days the office works: weekends and ``holidays.ID`` off, *cuti bersama* off
    when ``cuti_bersama_off``, and ``overrides`` (day → working?) over all of that.

    The package's calendars are made per year on first use and kept (``holidays`` expands
    its years lazily), so one calendar serves any range of dates."""

    overrides: Mapping[dt.date, bool] = field(default_factory=dict)
    cuti_bersama_off: bool = True
    language: str = "id"  # the holiday names' language (the package has "id" and "en_US")
    _off: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        categories = (PUBLIC, GOVERNMENT) if self.cuti_bersama_off else (PUBLIC,)
        self._off = holidays.ID(categories=categories, language=self.language)

    def package_off(self, day: dt.date) -> bool:
        """Whether the package (with the setting), before the office's table, has ``day``
        off: a weekend or a holiday."""
        return day.weekday() >= 5 or day in self._off

    def holidays_of(self, year: int) -> list[Holiday]:
        """The package's holidays of ``year``, public and cuti bersama, by date (whatever
        the setting: the page shows which it counts)."""
        out: dict[dt.date, Holiday] = {}
        for category in (PUBLIC, GOVERNMENT):  # a day in both stays a public holiday
            cal = holidays.ID(years=year, categories=(category,), language=self.language)
            for day, name in cal.items():
                if day.year == year and day not in out:
                    out[day] = Holiday(day, str(name), category == GOVERNMENT)
        return [out[d] for d in sorted(out)]


def is_working_day(day: dt.date, calendar: WorkingCalendar) -> bool:
    """Whether the office works on ``day``: the office's table first, then the package."""
    override = calendar.overrides.get(day)
    if override is not None:
        return bool(override)
    return not calendar.package_off(day)


def working_days_between(after: dt.date, until: dt.date, calendar: WorkingCalendar) -> int:
    """How many working days there are in ``(after, until]``: after ``after``, up to and
    including ``until``; 0 when ``until`` is not later than ``after``."""
    n = 0
    day = after + dt.timedelta(days=1)
    while day <= until:
        n += is_working_day(day, calendar)
        day += dt.timedelta(days=1)
    return n


def _days_after(start: dt.date) -> Iterator[dt.date]:
    day = start
    while True:
        day += dt.timedelta(days=1)
        yield day


def add_working_days(start: dt.date, n: int, calendar: WorkingCalendar) -> dt.date:
    """The ``n``-th working day after ``start`` (``start`` itself never counts; ``n`` = 0
    gives ``start``). ``ValueError`` for a negative ``n``, or a table that leaves no
    working day for :data:`MAX_DAYS_OFF_IN_A_ROW` days."""
    if n < 0:
        raise ValueError(f"n must be 0 or more, not {n}")
    if n == 0:
        return start
    off_in_a_row = 0
    for day in _days_after(start):
        if is_working_day(day, calendar):
            n -= 1
            off_in_a_row = 0
            if n == 0:
                return day
        else:
            off_in_a_row += 1
            if off_in_a_row > MAX_DAYS_OFF_IN_A_ROW:
                raise ValueError(f"no working day in {MAX_DAYS_OFF_IN_A_ROW} days after "
                                 f"{day - dt.timedelta(days=off_in_a_row)}")
    raise AssertionError("unreachable")  # pragma: no cover  (the loop is endless)


def deadline(complete_on: dt.date, calendar: WorkingCalendar) -> dt.date:
    """The last day the KTP-el may be issued: the 14th working day after ``complete_on``,
    the day the complete record arrived (which does not count; see the module doc)."""
    return add_working_days(complete_on, SLA_WORKING_DAYS, calendar)


def working_days_left(today: dt.date, due: dt.date, calendar: WorkingCalendar) -> int:
    """Working days left until ``due``, signed, as the lists show it.

    On or before the deadline: the working days after today up to and including ``due``
    (0: due today; 3: due on the 3rd working day from now). After it: minus the working
    days late, counted the same way from the day after ``due`` through today, and at
    least 1: the Saturday after a Friday deadline is already late (-1), as is the Monday
    (-1, the first working day missed); the Tuesday is -2."""
    if today <= due:
        return working_days_between(today, due, calendar)
    return -max(1, working_days_between(due, today, calendar))


def is_overdue(today: dt.date, due: dt.date) -> bool:
    """Past the deadline: today is later than the last day allowed."""
    return today > due
