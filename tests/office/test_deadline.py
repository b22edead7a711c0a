"""The KTP-el clock's arithmetic (:mod:`office.deadline`) against deadlines counted by hand.

Day 1 is the first working day after the day the complete record arrived; the deadline is
the 14th. Each case lists the days as counted on a wall calendar: ``=k`` is the k-th
working day, ``off`` a day not counted and why. The holidays are those the installed
``holidays`` package lists for Indonesia (checked in :func:`test_the_package_lists_the_
holidays_the_hand_counts_assume`, so a package update that moves a date fails there first,
not in a confusing count).
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from office.deadline import (
    SLA_WORKING_DAYS,
    WorkingCalendar,
    add_working_days,
    deadline,
    is_overdue,
    is_working_day,
    working_days_between,
    working_days_left,
)

D = dt.date
DEFAULT = WorkingCalendar()  # cuti bersama off (the default), no office overrides


def test_the_package_lists_the_holidays_the_hand_counts_assume() -> None:
    cal = WorkingCalendar()
    days_2026 = {h.day: h.cuti_bersama for h in cal.holidays_of(2026)}
    days_2027 = {h.day: h.cuti_bersama for h in cal.holidays_of(2027)}
    # Nyepi and Idul Fitri 1447 H, with their cuti bersama (True), March 2026.
    assert {d: days_2026[d] for d in days_2026 if D(2026, 3, 17) <= d <= D(2026, 3, 25)} == {
        D(2026, 3, 18): True, D(2026, 3, 19): False, D(2026, 3, 20): True,
        D(2026, 3, 21): False, D(2026, 3, 22): False, D(2026, 3, 23): True,
        D(2026, 3, 24): True}
    assert days_2026[D(2026, 4, 3)] is False  # Good Friday
    assert days_2026[D(2026, 12, 24)] is True and days_2026[D(2026, 12, 25)] is False
    assert D(2026, 12, 31) not in days_2026
    assert days_2027[D(2027, 1, 1)] is False and days_2027[D(2027, 1, 5)] is False  # Isra Mikraj
    # Nyepi, Idul Fitri 1448 H and cuti bersama, March 2027; Good Friday and its cuti.
    assert {d: days_2027[d] for d in days_2027 if D(2027, 3, 5) <= d <= D(2027, 3, 31)} == {
        D(2027, 3, 8): False, D(2027, 3, 9): True, D(2027, 3, 10): False,
        D(2027, 3, 11): False, D(2027, 3, 12): True, D(2027, 3, 15): True,
        D(2027, 3, 25): True, D(2027, 3, 26): False, D(2027, 3, 28): False}
    assert not [d for d in days_2026 if D(2026, 11, 1) <= d <= D(2026, 11, 30)]
    names = {h.day: h.name for h in cal.holidays_of(2026)}
    assert "Idul Fitri" in names[D(2026, 3, 21)] and "Cuti Bersama" in names[D(2026, 3, 23)]


def test_lebaran_2026_from_the_last_working_day_before_it() -> None:
    # Complete on Tue 17 Mar 2026. 18 Wed off (cuti Nyepi), 19 Thu off (Nyepi), 20 Fri off
    # (cuti Idul Fitri), 21 Sat, 22 Sun off (Idul Fitri, weekend), 23 Mon, 24 Tue off (cuti
    # Idul Fitri); 25 Wed =1, 26 Thu =2, 27 Fri =3, 30 Mon =4, 31 Tue =5, 1 Apr Wed =6,
    # 2 Thu =7, 3 Fri off (Good Friday), 6 Mon =8, 7 Tue =9, 8 Wed =10, 9 Thu =11,
    # 10 Fri =12, 13 Mon =13, 14 Tue =14.
    assert deadline(D(2026, 3, 17), DEFAULT) == D(2026, 4, 14)


def test_lebaran_2026_arriving_on_the_thursday_before_it_a_holiday() -> None:
    # Complete on Thu 19 Mar 2026 (Nyepi: records still arrive over the network).
    # 20 Fri .. 24 Tue off as above; 25 Wed =1 .. 14 Apr Tue =14, the same count.
    assert deadline(D(2026, 3, 19), DEFAULT) == D(2026, 4, 14)
    assert not is_working_day(D(2026, 3, 19), DEFAULT)


def test_lebaran_2026_with_cuti_bersama_counted_as_working() -> None:
    cal = WorkingCalendar(cuti_bersama_off=False)
    # Complete on Tue 17 Mar 2026. 18 Wed =1 (cuti counted), 19 Thu off (Nyepi), 20 Fri =2,
    # 21 Sat, 22 Sun off, 23 Mon =3, 24 Tue =4, 25 Wed =5, 26 Thu =6, 27 Fri =7,
    # 30 Mon =8, 31 Tue =9, 1 Apr =10, 2 Apr =11, 3 Fri off (Good Friday), 6 Mon =12,
    # 7 Tue =13, 8 Wed =14.
    assert deadline(D(2026, 3, 17), cal) == D(2026, 4, 8)


def test_december_2026_across_christmas_and_new_year_2027() -> None:
    # Complete on Thu 17 Dec 2026. 18 Fri =1, 21 Mon =2, 22 Tue =3, 23 Wed =4, 24 Thu off
    # (cuti Natal), 25 Fri off (Natal), 28 Mon =5, 29 Tue =6, 30 Wed =7, 31 Thu =8,
    # 1 Jan 2027 Fri off (Tahun Baru), 4 Mon =9, 5 Tue off (Isra Mikraj), 6 Wed =10,
    # 7 Thu =11, 8 Fri =12, 11 Mon =13, 12 Tue =14.
    assert deadline(D(2026, 12, 17), DEFAULT) == D(2027, 1, 12)


def test_a_cancelled_cuti_bersama_is_a_working_day_again() -> None:
    cal = WorkingCalendar(overrides={D(2026, 12, 24): True})
    # Complete on Thu 17 Dec 2026. 18 =1, 21 =2, 22 =3, 23 =4, 24 Thu =5 (cuti cancelled),
    # 25 off, 28 =6, 29 =7, 30 =8, 31 =9, 1 Jan off, 4 =10, 5 off, 6 =11, 7 =12, 8 =13,
    # 11 Mon =14.
    assert deadline(D(2026, 12, 17), cal) == D(2027, 1, 11)
    # The same as turning the setting off (cuti bersama counted as working) here.
    assert deadline(D(2026, 12, 17), WorkingCalendar(cuti_bersama_off=False)) == D(2027, 1, 11)


def test_lebaran_2027() -> None:
    # Complete on Fri 5 Mar 2027. 8 Mon off (Nyepi), 9 Tue off (cuti), 10 Wed, 11 Thu off
    # (Idul Fitri), 12 Fri off (cuti), 13 Sat, 14 Sun off, 15 Mon off (cuti), 16 Tue =1,
    # 17 =2, 18 =3, 19 Fri =4, 22 Mon =5, 23 =6, 24 =7, 25 Thu off (cuti Jumat Agung),
    # 26 Fri off (Jumat Agung), 29 Mon =8, 30 =9, 31 =10, 1 Apr Thu =11, 2 Fri =12,
    # 5 Mon =13, 6 Tue =14.
    assert deadline(D(2027, 3, 5), DEFAULT) == D(2027, 4, 6)


def test_lebaran_2027_with_cuti_bersama_counted_as_working() -> None:
    cal = WorkingCalendar(cuti_bersama_off=False)
    # Complete on Fri 5 Mar 2027. 8 off (Nyepi), 9 Tue =1, 10, 11 off (Idul Fitri),
    # 12 Fri =2, 15 Mon =3, 16 =4, 17 =5, 18 =6, 19 =7, 22 =8, 23 =9, 24 =10, 25 Thu =11,
    # 26 off (Jumat Agung), 29 =12, 30 =13, 31 Wed =14.
    assert deadline(D(2027, 3, 5), cal) == D(2027, 3, 31)


def test_a_weekend_arrival_counts_from_monday() -> None:
    # November 2026 has no holidays. Complete on Sat 7 Nov: 8 Sun off, 9 Mon =1 .. 13 Fri =5,
    # 16 Mon =6 .. 20 Fri =10, 23 Mon =11, 24 =12, 25 =13, 26 Thu =14.
    for arrival in (D(2026, 11, 6), D(2026, 11, 7), D(2026, 11, 8)):  # Fri, Sat, Sun
        assert deadline(arrival, DEFAULT) == D(2026, 11, 26)


def test_an_office_added_day_off_moves_the_deadline_by_one() -> None:
    cal = WorkingCalendar(overrides={D(2026, 11, 10): False})
    # Complete on Fri 6 Nov 2026. 9 Mon =1, 10 Tue off (office decree), 11 =2, 12 =3,
    # 13 =4, 16 =5 .. 20 =9, 23 =10, 24 =11, 25 =12, 26 =13, 27 Fri =14.
    assert deadline(D(2026, 11, 6), cal) == D(2026, 11, 27)
    # A day off after the deadline changes nothing.
    later = WorkingCalendar(overrides={D(2026, 11, 30): False})
    assert deadline(D(2026, 11, 6), later) == D(2026, 11, 26)


def test_a_saturday_made_a_working_day() -> None:
    cal = WorkingCalendar(overrides={D(2026, 11, 21): True})
    # Complete on Fri 6 Nov 2026. 9 =1 .. 13 =5, 16 =6 .. 20 =10, 21 Sat =11 (decreed
    # working), 23 Mon =12, 24 =13, 25 Wed =14.
    assert deadline(D(2026, 11, 6), cal) == D(2026, 11, 25)


def test_working_days_left_and_overdue() -> None:
    due = D(2026, 4, 14)  # Tue
    # Fri 10 Apr: 13 Mon =1, 14 Tue =2 → 2 left.
    assert working_days_left(D(2026, 4, 10), due, DEFAULT) == 2
    assert working_days_left(D(2026, 4, 11), due, DEFAULT) == 2  # Sat: the same two
    assert working_days_left(due, due, DEFAULT) == 0  # due today
    assert not is_overdue(due, due)
    assert working_days_left(D(2026, 4, 15), due, DEFAULT) == -1  # Wed: 1 late
    assert working_days_left(D(2026, 4, 17), due, DEFAULT) == -3  # 15, 16, 17
    # Before Lebaran: Mon 16 Mar 2026 to that deadline: 17 =1, then 18-24 off, 25 =2 ..
    # 14 Apr =15.
    assert working_days_left(D(2026, 3, 16), due, DEFAULT) == 15
    friday = D(2026, 11, 27)
    # The Saturday after a Friday deadline is already late: -1; Monday 30 Nov the first
    # working day missed: -1; Tue 1 Dec: -2.
    assert is_overdue(D(2026, 11, 28), friday)
    assert working_days_left(D(2026, 11, 28), friday, DEFAULT) == -1
    assert working_days_left(D(2026, 11, 30), friday, DEFAULT) == -1
    assert working_days_left(D(2026, 12, 1), friday, DEFAULT) == -2


def test_edges_of_add_working_days() -> None:
    assert add_working_days(D(2026, 11, 6), 0, DEFAULT) == D(2026, 11, 6)
    assert add_working_days(D(2026, 11, 6), 1, DEFAULT) == D(2026, 11, 9)
    with pytest.raises(ValueError, match="0 or more"):
        add_working_days(D(2026, 11, 6), -1, DEFAULT)
    # A table that closes the office for two years is refused, not looped over.
    closed = WorkingCalendar(overrides={D(2026, 1, 1) + dt.timedelta(days=i): False
                                        for i in range(800)})
    with pytest.raises(ValueError, match="no working day"):
        deadline(D(2026, 1, 1), closed)


days = st.dates(min_value=D(2024, 1, 1), max_value=D(2028, 12, 31))


@settings(max_examples=150, deadline=None)
@given(start=days, cuti_off=st.booleans(),
       overrides=st.dictionaries(st.integers(min_value=-5, max_value=40), st.booleans(),
                                 max_size=12))
def test_the_deadline_is_a_working_day_exactly_14_working_days_after(
        start: dt.date, cuti_off: bool, overrides: dict[int, bool]) -> None:
    cal = WorkingCalendar(overrides={start + dt.timedelta(days=k): w
                                     for k, w in overrides.items()},
                          cuti_bersama_off=cuti_off)
    due = deadline(start, cal)
    assert due > start
    assert is_working_day(due, cal)
    assert working_days_between(start, due, cal) == SLA_WORKING_DAYS
    # Not one day earlier: the day before the deadline has only 13 counted.
    assert working_days_between(start, due - dt.timedelta(days=1), cal) == SLA_WORKING_DAYS - 1
    assert working_days_left(start, due, cal) == SLA_WORKING_DAYS
    assert working_days_left(due + dt.timedelta(days=1), due, cal) <= -1
