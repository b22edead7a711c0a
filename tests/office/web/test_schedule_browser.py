"""Scheduling a visit in real headless Chromium, against ``jaranijo office web`` in its own
process (``--keys --kits``) over a real SQLite office database: the new-visit form with
its suggestions (date, start, recording point, team size and estimate) and a clash with
another visit that day; the visit page sending the assignment and its state refreshing
itself while the "kit" receives it; and the schedule list. Screenshots:
``schedule-new-visit``, ``schedule-visit``, ``schedule-list``.

The targets are the sample assignment's invented residents, sealed under the office's
index key as the import seals them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from office.db import setup_django
from sync.domain import SAMPLE_ASSIGNMENT_PATH
from sync.domain import Assignment as KitAssignment
from sync.envelope import KitKeys, OfficeKeys
from tests.browser import (  # noqa: F401  (browser: the fixture)
    browser,
    click_for_next_page,
    log_in,
    screenshot,
    text_of,
    wait,
)
from tests.office.records_helpers import KIT, RecordOffice
from tests.office.web.fleet_helpers import make_user, session_cookie, write_secret_key
from tests.office.web.server import running_web

setup_django()
from django.utils import timezone  # noqa: E402

from office import deadline as clock  # noqa: E402
from office import schedule as plan  # noqa: E402
from office import visits as flow  # noqa: E402
from office.models import (  # noqa: E402
    Assignment,
    Command,
    Kit,
    Officer,
    ReplyLetter,
    Target,
    Visit,
    VisitRequest,
)

OTHER = "blitar-kit-02"
SAMPLE = KitAssignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))


@dataclass
class Desk:
    office: RecordOffice
    url: str
    cookie: str
    vr: VisitRequest
    day: dt.date  # the suggested date

    @property
    def alias(self) -> str:
        return self.office.db.alias


def _request(alias: str, village: str, letter: str, today: dt.date) -> VisitRequest:
    return VisitRequest.objects.using(alias).create(
        letter_number=letter, letter_date=today - dt.timedelta(days=7),
        received_on=today - dt.timedelta(days=6), applicant_kind="village",
        kecamatan="Kanigoro", village=village, status="verified", created_at=time.time(),
        created_by="dafduk")


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    office = RecordOffice(tmp_path)
    KitKeys.generate().public.save(office.kits_dir / OTHER)
    alias = office.db.alias
    vault = flow.TargetVault(OfficeKeys.load(office.keys_dir))
    today = timezone.localdate()
    vr = _request(alias, "Papungan", "470/12/2026", today)
    for i, target in enumerate(SAMPLE.targets):
        Target.objects.using(alias).create(
            id=target.id, request=vr, sealed=vault.seal(target), category=target.category.value,
            place=target.place.value, village=target.address.desa, source_row=i + 2,
            verified=True, added_at=time.time(), added_by="dafduk")
    for oid, name in (("P-0001", "Sri Wahyuni"), ("P-0002", "Agus Priyanto"),
                      ("P-0003", "Dwi Lestari")):
        Officer.objects.using(alias).create(officer_id=oid, name=name)
    now = time.time()
    for kit in (KIT, OTHER, "blitar-kit-03"):
        Kit.objects.using(alias).create(kit_id=kit)
    for kit in (KIT, OTHER):
        Command.objects.using(alias).create(
            command_id=f"st-{kit}", kit_id=kit, name="selftest", args="{}", issued_at=int(now),
            expires_at=int(now) + 3600, payload=b"", queued_at=now, sent_at=now, result_ok=1,
            result='{"res": {"store": "ok", "keys": "tpm"}}', result_at=now)
    day = plan.next_visit_day(None, today, clock.WorkingCalendar())
    # Another village's visit that day, with officer P-0002 and the other kit.
    other = _request(alias, "Satreyan", "470/09/2026", today)
    Visit.objects.using(alias).create(
        request=other, visit_date=day, start_time=dt.time(9, 0),
        recording_point="village_office", officers="P-0002,P-0003", kit_id=OTHER,
        assignment_id="0190f7a0-0000-7000-8000-000000000001", created_at=now,
        created_by="dafduk", updated_at=now, updated_by="dafduk")
    key = write_secret_key(tmp_path / "web")
    user = make_user(office.db, "dafduk", perms=("view_fleet", "schedule_visits",
                                                 "change_village"))
    with running_web(tmp_path / "office.db", tmp_path / "web",
                     args=("--keys", str(office.keys_dir), "--kits",
                           str(office.kits_dir))) as url:
        yield Desk(office, url, session_cookie(office.db, user, key), vr, day)


def full_page_screenshot(driver: WebDriver, name: str) -> None:
    height = int(driver.execute_script("return document.documentElement.scrollHeight;"))
    driver.set_window_size(1280, max(800, height + 200))
    screenshot(driver, name)
    driver.set_window_size(1280, 800)


def test_a_scheduler_plans_a_visit_is_warned_of_a_clash_and_sends_the_assignment(
        desk: Desk, browser: WebDriver) -> None:  # noqa: F811
    log_in(browser, desk, desk.cookie)
    browser.get(f"{desk.url}/requests/{desk.vr.pk}/visits/new/")
    # The suggestions: the next working day, 08:00, house to house, 3 officers (an ODGJ).
    assert browser.find_element(By.ID, "id_visit_date").get_attribute("value") == \
        desk.day.isoformat()
    assert browser.find_element(By.ID, "id_start_time").get_attribute("value") == "08:00"
    assert Select(browser.find_element(By.ID, "id_recording_point")) \
        .first_selected_option.get_attribute("value") == "house_to_house"
    assert browser.find_element(By.ID, "id_team_size").get_attribute("value") == "3"
    assert "ada sasaran ODGJ" in text_of(browser, "#est-explain")
    assert "Sumirah Darmowiyono" in text_of(browser, "#targets")
    untested = browser.find_element(By.CSS_SELECTOR, "#id_kit_id option[value='blitar-kit-03']")
    assert untested.get_attribute("disabled") and "belum pernah uji mandiri" in untested.text

    for oid in ("P-0001", "P-0002"):
        browser.find_element(By.CSS_SELECTOR, f"input[name=officers][value='{oid}']").click()
    team = browser.find_element(By.ID, "id_team_size")
    team.clear()
    team.send_keys("2")
    Select(browser.find_element(By.ID, "id_kit_id")).select_by_value(KIT)
    browser.find_element(By.ID, "id_village_staff").send_keys("Sulastri\nKasun Krajan")
    click_for_next_page(browser, "#visit-submit")
    warning = text_of(browser, "#conflicts")
    assert "Bentrok dengan kunjungan lain hari itu" in warning
    assert "Satreyan" in warning and "petugas yang sama: Agus Priyanto" in warning
    assert not Visit.objects.using(desk.alias).filter(request=desk.vr).exists()
    full_page_screenshot(browser, "schedule-new-visit")

    browser.find_element(By.ID, "id_save_anyway").click()
    click_for_next_page(browser, "#visit-submit")
    visit = Visit.objects.using(desk.alias).get(request=desk.vr)
    assert browser.current_url.endswith(f"/visits/{visit.pk}/")
    assert text_of(browser, "#v-officers") == "Agus Priyanto, Sri Wahyuni"  # by name
    assert browser.find_element(By.ID, "send-assignment").get_attribute("disabled")
    assert "belum pernah dikirim" in text_of(browser, "#assignment-state")

    # The reply letter has gone to the village: the assignment can be sent.
    now = time.time()
    ReplyLetter.objects.using(desk.alias).create(
        visit=visit, number="470/88/409.20/2026", letter_date=timezone.localdate(), fields={},
        draft=b"%PDF-1.7", draft_sha256="0" * 64, drafted_at=now, drafted_by="dafduk",
        verified_at=now, sent_at=now, sent_by="dafduk")
    browser.refresh()
    click_for_next_page(browser, "#send-assignment")
    assert "antre di kantor" in text_of(browser, "#state-label")
    # The kit receives it (as `office serve` records it): the page shows it by itself.
    Assignment.objects.using(desk.alias).filter(kit_id=KIT).update(
        sent_at=time.time(), delivered_at=time.time())
    wait(browser, "document.querySelector('#state-label') && "
                  "document.querySelector('#state-label').textContent.includes('diterima kit')",
         timeout=15)
    steps = text_of(browser, f".sched-kit[data-kit='{KIT}'] .sched-steps")
    assert steps.count("WIB") == 3  # queued, sent, delivered; not opened yet
    full_page_screenshot(browser, "schedule-visit")

    browser.get(f"{desk.url}/schedule/")
    row = text_of(browser, f"#upcoming tr[data-visit='{visit.pk}']")
    assert "470/12/2026" in row and "Papungan" in row and "diterima kit" in row
    assert "Agus Priyanto, Sri Wahyuni" in row and KIT in row
    full_page_screenshot(browser, "schedule-list")


def test_the_village_terrain_and_officer_pages(desk: Desk, browser: WebDriver) -> None:  # noqa: F811
    log_in(browser, desk, desk.cookie)
    browser.get(f"{desk.url}/schedule/villages/")
    browser.find_element(By.ID, "id_kecamatan").send_keys("Kanigoro")
    browser.find_element(By.ID, "id_name").send_keys("Papungan")
    Select(browser.find_element(By.ID, "id_terrain")).select_by_value("remote")
    click_for_next_page(browser, "#village-submit")
    assert "terpencil" in text_of(browser, "#villages tbody")
    # A typo in the kecamatan is refused, saying what to fix.
    browser.find_element(By.ID, "id_kecamatan").send_keys("Kanigor0")
    browser.find_element(By.ID, "id_name").send_keys("Sawentar")
    click_for_next_page(browser, "#village-submit")
    assert "Kecamatan tidak ada di Kabupaten Blitar" in text_of(browser, "#error-kecamatan")
    full_page_screenshot(browser, "schedule-villages")
    # The estimate of Papungan's visit now counts remote terrain: a third officer.
    browser.get(f"{desk.url}/requests/{desk.vr.pk}/visits/new/")
    assert "medan terpencil" in text_of(browser, "#est-explain")

    browser.get(f"{desk.url}/schedule/officers/")
    browser.find_element(By.ID, "id_officer_id").send_keys("P-0004")
    browser.find_element(By.ID, "id_name").send_keys("Rina Kartikasari")
    click_for_next_page(browser, "#officer-submit")
    assert "Rina Kartikasari" in text_of(browser, "#officers")
    click_for_next_page(browser, "tr[data-officer='P-0003'] button")
    assert "nonaktif" in text_of(browser, "tr[data-officer='P-0003']")
    assert not Officer.objects.using(desk.alias).get(pk="P-0003").active
    full_page_screenshot(browser, "schedule-officers")
