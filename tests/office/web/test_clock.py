"""The KTP-el clock pages in real headless Chromium, against ``jaranijo office web`` in its
own process (``--keys --kits``) over a real SQLite office database holding real sealed,
signed records of the invented residents (:mod:`tests.office.records_helpers`).

The records are indexed here (as the page would) and their ``complete_on`` set to chosen
past days, so one is overdue, one due within 3 working days, one on time and one already
handed over. An operator sees the names in the right lists, marks one printed and handed
over and it moves to done; a bad date is refused in Indonesian; Kepala Dinas adds an
office day off and a deadline moves; malformed table entries are refused with the reason;
a viewer gets 403 and no names. The header's overdue count (:func:`overdue_count`) and
its context processor are tested directly.
"""

from __future__ import annotations

import datetime as dt
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from office.db import OfficeDb, setup_django
from sync.envelope import OfficeKeys
from tests.browser import (  # noqa: F401  (browser: the fixture)
    browser,
    click_for_next_page,
    log_in,
    screenshot,
    text_of,
    wait,
)
from tests.office.records_helpers import RecordOffice, recording, sample_assignment
from tests.office.web.fleet_helpers import make_user, session_cookie, write_secret_key
from tests.office.web.server import running_web

setup_django()
from django.db import connections  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from office import deadline as clock  # noqa: E402
from office.models import AuditEntry, RecordReview  # noqa: E402
from office.records import RecordBook  # noqa: E402
from office.web import clock as clock_web  # noqa: E402

TARGETS = sample_assignment().targets
OVERDUE, SOON, ON_TIME, DONE = 0, 1, 2, 3  # target index of each case


def role_user(db: OfficeDb, username: str, role: str) -> int:
    """A user whose only permissions are its role's (the groups the migrations made)."""
    from django.contrib.auth.models import Group, User

    user_id = make_user(db, username, perms=())
    User.objects.db_manager(db.alias).get(pk=user_id).groups.add(
        Group.objects.using(db.alias).get(name=role))
    return user_id


def soon_arrival(today: dt.date, cal: clock.WorkingCalendar) -> dt.date:
    """An arrival day whose deadline is 0-3 working days from today (walking back)."""
    day = today
    while True:
        day -= dt.timedelta(days=1)
        left = clock.working_days_left(today, clock.deadline(day, cal), cal)
        if 0 <= left <= clock.DUE_SOON_WORKING_DAYS:
            return day


@dataclass
class Clock:
    office: RecordOffice
    url: str
    today: dt.date
    records: dict[int, str]  # target index → record id
    arrived: dict[int, dt.date]
    operator: str  # session cookies by role
    head: str
    viewer: str

    @property
    def alias(self) -> str:
        return self.office.db.alias

    def review(self, target: int) -> RecordReview:
        return RecordReview.objects.using(self.alias).get(record_id=self.records[target])


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Clock]:
    ro = RecordOffice(tmp_path)
    records = {i: ro.store(recording(i)) for i in (OVERDUE, SOON, ON_TIME, DONE)}
    ro.store(recording(4, missing_fingers=(9,)))  # partial: not on the clock
    book = RecordBook(OfficeKeys.load(ro.keys_dir), ro.kits_dir, using=ro.db.alias)
    assert book.index_new() == 5
    today = timezone.localdate()
    cal = clock.WorkingCalendar()
    arrived = {OVERDUE: today - dt.timedelta(days=40), SOON: soon_arrival(today, cal),
               ON_TIME: today, DONE: today - dt.timedelta(days=30)}
    for target, day in arrived.items():
        RecordReview.objects.using(ro.db.alias).filter(record_id=records[target]).update(
            complete_on=day)
    RecordReview.objects.using(ro.db.alias).filter(record_id=records[DONE]).update(
        printed_on=arrived[DONE] + dt.timedelta(days=3),
        handed_over_on=arrived[DONE] + dt.timedelta(days=5))
    key = write_secret_key(tmp_path / "web")
    users = {role: role_user(ro.db, name, role) for role, name in
             (("operator", "operator.rekam"), ("head", "kepala.dinas"), ("viewer", "pemantau"))}
    with running_web(tmp_path / "office.db", tmp_path / "web",
                     args=("--keys", str(ro.keys_dir), "--kits", str(ro.kits_dir))) as url:
        yield Clock(ro, url, today, records, arrived,
                    *(session_cookie(ro.db, users[r], key) for r in ("operator", "head",
                                                                      "viewer")))





def names_in(driver: WebDriver, section: str) -> list[str]:
    return [str(n) for n in driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' td.person .name'))"
        ".map(e => e.textContent.trim());", f"#clock-{section}")]


def set_date(driver: WebDriver, field_id: str, value: str) -> None:
    """Fill a date input as a person picking the day would (the value is ISO)."""
    driver.execute_script("document.getElementById(arguments[0]).value = arguments[1];",
                          field_id, value)


def mark_ids(office: Clock, target: int) -> tuple[str, str]:
    prefix = f"id_m-{office.records[target]}"
    return f"{prefix}-printed_on", f"{prefix}-handed_over_on"


def get(office: Clock, path: str, cookie: str, lang: str = "id") -> tuple[int, str]:
    request = urllib.request.Request(office.url + path, headers={
        "Cookie": f"sessionid={cookie}", "Accept-Language": lang})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def test_an_operator_sees_the_lists_and_marks_a_ktp_el_done(
        office: Clock, browser: WebDriver) -> None:  # noqa: F811
    log_in(browser, office, office.operator)
    browser.get(office.url + "/clock/")
    wait(browser, "document.getElementById('clock-overdue')")
    assert names_in(browser, "overdue") == [TARGETS[OVERDUE].name]
    assert names_in(browser, "soon") == [TARGETS[SOON].name]
    assert names_in(browser, "on-time") == [TARGETS[ON_TIME].name]
    assert names_in(browser, "done") == [TARGETS[DONE].name]
    assert TARGETS[4].name not in browser.page_source  # partial: no clock
    row = text_of(browser, f"#row-{office.records[OVERDUE]}")
    assert f"NIK {TARGETS[OVERDUE].nik}" in row and "Papungan" in row
    assert "blitar-kit-01" in row and "terlambat" in row
    cal = clock.WorkingCalendar()
    soon_due = clock.deadline(office.arrived[SOON], cal)
    soon_row = browser.find_element(By.ID, f"row-{office.records[SOON]}")
    assert soon_row.get_attribute("data-due") == soon_due.isoformat()
    left = clock.working_days_left(office.today, soon_due, cal)
    assert text_of(browser, f"#row-{office.records[SOON]} td.left") == (
        "batas hari ini" if left == 0 else f"sisa {left} hari kerja")
    assert text_of(browser, "#count-overdue") == "1" and text_of(browser, "#count-done") == "1"
    screenshot(browser, "clock-lists")

    # Handed over without a printing date: refused, in Indonesian, nothing saved.
    printed_id, handed_id = mark_ids(office, SOON)
    set_date(browser, handed_id, office.today.isoformat())
    click_for_next_page(browser, f"#mark-{office.records[SOON]} .mark-button",
                        f"document.querySelector('#row-{office.records[SOON]}.has-error')")
    assert "Isi tanggal cetak dulu: KTP-el diserahkan sesudah dicetak." in text_of(
        browser, f"#row-{office.records[SOON]}")
    # A printing date in the future: refused with today's date in the message.
    set_date(browser, printed_id, (office.today + dt.timedelta(days=2)).isoformat())
    click_for_next_page(browser, f"#mark-{office.records[SOON]} .mark-button",
                        f"document.querySelector('#row-{office.records[SOON]}.has-error')")
    assert "Tanggal tidak boleh sesudah hari ini" in text_of(
        browser, f"#row-{office.records[SOON]}")
    screenshot(browser, "clock-mark-refused")
    review = office.review(SOON)
    assert review.printed_on is None and review.handed_over_on is None

    # Printed two days ago, handed over today: the overdue one moves to done.
    printed_id, handed_id = mark_ids(office, OVERDUE)
    printed = office.today - dt.timedelta(days=2)
    set_date(browser, printed_id, printed.isoformat())
    set_date(browser, handed_id, office.today.isoformat())
    browser.find_element(By.CSS_SELECTOR,
                         f"#mark-{office.records[OVERDUE]} .mark-button").click()
    wait(browser, "document.getElementById('clock-saved')")
    assert names_in(browser, "overdue") == []
    assert sorted(names_in(browser, "done")) == sorted([TARGETS[OVERDUE].name,
                                                        TARGETS[DONE].name])
    assert "dicetak terlambat" in text_of(browser, f"#row-{office.records[OVERDUE]} td.left")
    review = office.review(OVERDUE)
    assert (review.printed_on, review.handed_over_on) == (printed, office.today)
    screenshot(browser, "clock-marked-done")

    entries = AuditEntry.objects.using(office.alias).order_by("id")
    assert [e.subject for e in entries.filter(action="ktp_issued")] == [
        f"blitar-kit-01/{office.records[OVERDUE]}"]
    views = entries.filter(action="view_personal", subject="/clock/")
    assert views.count() >= 4 and {e.username for e in views} == {"operator.rekam"}
    # No resident's data in the log's details.
    for e in entries:
        for t in TARGETS:
            assert t.name not in e.detail and t.nik not in e.detail


def test_a_head_adds_an_office_day_off_and_a_deadline_moves(
        office: Clock, browser: WebDriver) -> None:  # noqa: F811
    log_in(browser, office, office.head)
    browser.get(office.url + "/clock/")
    wait(browser, "document.getElementById('clock-on-time')")
    row = browser.find_element(By.ID, f"row-{office.records[ON_TIME]}")
    before = dt.date.fromisoformat(str(row.get_attribute("data-due")))
    cal = clock.WorkingCalendar()
    assert before == clock.deadline(office.today, cal)
    day_off = clock.add_working_days(office.today, 1, cal)  # the next working day

    browser.find_element(By.ID, "clock-days-link").click()
    wait(browser, "document.getElementById('override-form')")
    holidays = text_of(browser, "#package-holidays")
    assert "Tahun Baru" in holidays or "Natal" in holidays or "Idul Fitri" in holidays
    # Malformed: the note missing.
    set_date(browser, "id_day", day_off.isoformat())
    browser.find_element(By.ID, "id_working_0").click()  # libur tambahan
    click_for_next_page(browser, "#override-submit", "document.getElementById('override-errors')")
    assert "Isi keterangan" in text_of(browser, "#error-note")
    # Malformed: a "working" override on a day that already is one.
    set_date(browser, "id_day", day_off.isoformat())
    browser.find_element(By.ID, "id_working_1").click()
    browser.find_element(By.ID, "id_note").send_keys("SE Bupati Blitar")
    click_for_next_page(browser, "#override-submit", "document.getElementById('override-errors')")
    assert "sudah hari kerja" in text_of(browser, "#error-working")
    # Malformed: a date that does not exist (typed into a plain text field, as a script
    # or an old browser would send it).
    browser.execute_script("var f = document.getElementById('id_day');"
                           "f.type = 'text'; f.value = '2026-02-30';")
    browser.find_element(By.ID, "id_working_0").click()
    click_for_next_page(browser, "#override-submit", "document.getElementById('override-errors')")
    assert "Tanggal tidak valid: tulis TTTT-BB-HH" in text_of(browser, "#error-day")
    screenshot(browser, "clock-days-refused")

    # A good entry: the next working day off by decree.
    set_date(browser, "id_day", day_off.isoformat())
    browser.find_element(By.ID, "id_working_0").click()
    note = browser.find_element(By.ID, "id_note")
    note.clear()
    note.send_keys("SE Bupati Blitar: libur daerah")
    click_for_next_page(browser, "#override-submit", "document.getElementById('days-saved')")
    assert "libur daerah" in text_of(browser, f"#override-{day_off.isoformat()}")
    # The same day again: refused as a duplicate.
    set_date(browser, "id_day", day_off.isoformat())
    browser.find_element(By.ID, "id_working_0").click()
    browser.find_element(By.ID, "id_note").send_keys("lagi")
    click_for_next_page(browser, "#override-submit", "document.getElementById('override-errors')")
    assert "sudah ada di tabel" in text_of(browser, "#error-day")
    screenshot(browser, "clock-days-table")

    browser.get(office.url + "/clock/")
    wait(browser, "document.getElementById('clock-on-time')")
    row = browser.find_element(By.ID, f"row-{office.records[ON_TIME]}")
    after = dt.date.fromisoformat(str(row.get_attribute("data-due")))
    moved = clock.WorkingCalendar(overrides={day_off: False})
    assert after == clock.deadline(office.today, moved) == clock.add_working_days(before, 1, moved)
    assert after > before
    (entry,) = AuditEntry.objects.using(office.alias).filter(action="clock_days")
    assert entry.username == "kepala.dinas" and entry.subject == day_off.isoformat()

    # Cuti bersama counted as working: the package's cuti rows say so; then the office's
    # day is deleted again. Both audited.
    browser.get(office.url + "/clock/days/?year=2026")
    wait(browser, "document.getElementById('clock-settings')")
    box = browser.find_element(By.ID, "id_cuti_bersama_off")
    assert box.is_selected()
    box.click()
    browser.find_element(By.ID, "settings-submit").click()
    wait(browser, "document.getElementById('days-saved')")
    browser.get(office.url + "/clock/days/?year=2026")
    assert "hari kerja (pengaturan cuti bersama)" in text_of(
        browser, "#package-holidays tr[data-day='2026-03-23']")  # cuti Idul Fitri
    assert text_of(browser, "#package-holidays tr[data-day='2026-03-19'] td:last-child") == \
        "libur"  # Nyepi itself
    browser.get(office.url + f"/clock/days/?year={day_off.year}")
    browser.find_element(By.CSS_SELECTOR, f"#override-{day_off.isoformat()} a.edit").click()
    wait(browser, "document.getElementById('override-form')")
    note = browser.find_element(By.ID, "id_note")
    assert note.get_attribute("value") == "SE Bupati Blitar: libur daerah"
    note.clear()
    note.send_keys("SE Bupati Blitar No. 7")
    click_for_next_page(browser, "#override-submit", "document.getElementById('days-saved')")
    assert "No. 7" in text_of(browser, f"#override-{day_off.isoformat()}")
    click_for_next_page(browser, f"#override-{day_off.isoformat()} button.delete",
                        "document.getElementById('days-saved')")
    assert not browser.find_elements(By.ID, f"override-{day_off.isoformat()}")
    details = [e.detail for e in AuditEntry.objects.using(office.alias).filter(
        action="clock_days").order_by("id")]
    assert details[1:] == [
        "cuti_bersama_off: True -> False",
        f"change {day_off}: day off (SE Bupati Blitar: libur daerah) -> {day_off}: day off "
        "(SE Bupati Blitar No. 7)",
        f"delete {day_off}: day off (SE Bupati Blitar No. 7)"]


def test_a_viewer_gets_403_and_no_names(office: Clock) -> None:
    for path in ("/clock/", "/clock/days/"):
        status, body = get(office, path, office.viewer)
        assert status == 403, path
        for t in TARGETS:
            assert t.name not in body and t.nik not in body
    # An operator sees the clock but not the head's table.
    assert get(office, "/clock/days/", office.operator)[0] == 403
    status, body = get(office, "/clock/", office.operator)
    assert status == 200 and TARGETS[OVERDUE].name in body
    # In English too (holiday names from the package's English calendar).
    status, body = get(office, "/clock/", office.operator, lang="en")
    assert status == 200 and TARGETS[OVERDUE].name in body
    status, body = get(office, "/clock/days/?year=2026", office.head, lang="en")
    assert status == 200 and "Eid al-Fitr" in body


def test_without_the_office_keys_the_page_says_why(tmp_path: Path) -> None:
    ro = RecordOffice(tmp_path)
    ro.store(recording(0))
    key = write_secret_key(tmp_path / "web")
    operator = session_cookie(ro.db, role_user(ro.db, "operator.rekam", "operator"), key)
    with running_web(tmp_path / "office.db", tmp_path / "web") as url:
        office = Clock(ro, url, timezone.localdate(), {}, {}, operator, "", "")
        status, body = get(office, "/clock/", operator)
    assert status == 200 and 'id="clock-keys-error"' in body
    assert "Kunci kantor atau folder kunci kit tidak diatur" in body


class _User:
    is_authenticated = True

    def __init__(self, *perms: str) -> None:
        self.perms = set(perms)

    def has_perm(self, perm: str) -> bool:
        return perm in self.perms


class _Request:
    def __init__(self, user: Any) -> None:
        self.user = user


def test_the_overdue_count_and_the_header_context(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ro = RecordOffice(tmp_path)
    ids = [ro.store(recording(i)) for i in range(3)]
    RecordBook(OfficeKeys.load(ro.keys_dir), ro.kits_dir, using=ro.db.alias).index_new()
    rows = RecordReview.objects.using(ro.db.alias)
    # Complete on Thu 17 Dec 2026 (deadline Tue 12 Jan 2027, test_deadline.py), twice;
    # once on Mon 11 Jan 2027 (deadline later).
    rows.filter(record_id__in=ids[:2]).update(complete_on=dt.date(2026, 12, 17))
    rows.filter(record_id=ids[2]).update(complete_on=dt.date(2027, 1, 11))
    clock_web.forget_count()
    assert clock_web.overdue_count(ro.db.alias, today=dt.date(2027, 1, 12)) == 0  # due today
    clock_web.forget_count()
    assert clock_web.overdue_count(ro.db.alias, today=dt.date(2027, 1, 13)) == 2
    # Cached: a handover is not seen until the cache is dropped (as the views do).
    rows.filter(record_id=ids[0]).update(printed_on=dt.date(2027, 1, 13),
                                         handed_over_on=dt.date(2027, 1, 13))
    assert clock_web.overdue_count(ro.db.alias, today=dt.date(2027, 1, 13)) == 2
    clock_web.forget_count()
    assert clock_web.overdue_count(ro.db.alias, today=dt.date(2027, 1, 13)) == 1

    # The context processor: nothing and no query for a user without view_fleet.
    with CaptureQueriesContext(connections["default"]) as default_q, \
            CaptureQueriesContext(connections[ro.db.alias]) as office_q:
        assert clock_web.clock_counts(_Request(_User("office.view_personal"))) == {}
        assert clock_web.clock_counts(_Request(type("Anon", (), {
            "is_authenticated": False})())) == {}
    assert len(default_q) == 0 and len(office_q) == 0
    monkeypatch.setattr(clock_web, "overdue_count",
                        lambda using="default", **kw: 1 if using == "default" else -1)
    assert clock_web.clock_counts(_Request(_User("office.view_fleet"))) == {"ktp_overdue": 1}


def test_the_mark_form_says_what_is_wrong_with_each_date() -> None:
    from django.utils import translation

    review = RecordReview(kit_id="blitar-kit-01", record_id="r1",
                          complete_on=dt.date(2026, 11, 16))
    today = dt.date(2026, 12, 1)
    p, h = "m-r1-printed_on", "m-r1-handed_over_on"

    def errors(data: dict[str, str]) -> dict[str, list[str]]:
        form = clock_web.MarkForm(data, review=review, today=today)
        assert not form.is_valid()
        return {k: [str(m) for m in v] for k, v in form.errors.items()}

    with translation.override("id"):
        assert errors({p: "2026-11-13"}) == {"printed_on": [
            "Tanggal tidak boleh sebelum rekaman lengkap diterima (Sen, 16 Nov 2026)."]}
        assert errors({p: "2026-12-02"}) == {"printed_on": [
            "Tanggal tidak boleh sesudah hari ini (Sel, 1 Des 2026)."]}
        assert errors({p: "2026-11-30", h: "2026-11-27"}) == {"handed_over_on": [
            "Tanggal serah tidak boleh sebelum tanggal cetak (Sen, 30 Nov 2026)."]}
        assert errors({p: "30-11-2026"}) == {"printed_on": [
            "Tanggal tidak valid: tulis TTTT-BB-HH, mis. 2026-12-31."]}
        assert errors({}) == {"__all__": ["Tidak ada yang berubah: isi atau ubah tanggalnya."]}
        form = clock_web.MarkForm({p: "2026-11-16", h: "2026-12-01"}, review=review, today=today)
        assert form.is_valid(), form.errors
        assert form.cleaned_data == {"printed_on": dt.date(2026, 11, 16),
                                     "handed_over_on": dt.date(2026, 12, 1)}
