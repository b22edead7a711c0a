"""The record pages in real headless Chromium: the list with its filters and search, one
record with every image drawn, the review state one by one and in bulk, and what a
viewer (fleet only) gets: nothing personal.

The web app runs in its own process (``office web --keys --kits``) on a real SQLite office
database holding records sealed and signed as a kit seals them
(:class:`tests.office.records_helpers.RecordOffice`): the pages open them with the office's
keys exactly as in the office.
"""

from __future__ import annotations

import dataclasses
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from sync.domain import FingerException, Outcome, RecordedFix, Recording
from tests.browser import (  # noqa: F401  (browser: the fixture)
    browser,
    log_in,
    screenshot,
    text_of,
)
from tests.office.records_helpers import KIT, RecordOffice, face_jpeg, recording
from tests.office.web.fleet_helpers import make_user, session_cookie, write_secret_key
from tests.office.web.server import running_web

STRANGER_KIT = "blitar-kit-09"  # its public keys are not in the office's kits folder


@dataclass
class Desk:
    office: RecordOffice
    url: str
    operator: str  # session cookies
    viewer: str
    ids: dict[str, str]  # what each stored record is → its id
    names: list[str]  # every resident's name in the stored records


def with_place(rec: Recording) -> Recording:
    rec.gnss = RecordedFix(lat=-8.1178, lon=112.2241, accuracy_m=6.5, altitude_m=170.0,
                           time_utc=rec.started_at, satellites=9, hdop=0.9)
    return rec


def in_village(rec: Recording, desa: str) -> Recording:
    rec.target = dataclasses.replace(
        rec.target, address=dataclasses.replace(rec.target.address, desa=desa))
    return rec


def store_all(office: RecordOffice) -> dict[str, str]:
    today = datetime.now(UTC) - timedelta(hours=1)
    earlier = today - timedelta(days=3)
    partial = with_place(recording(1, outcome=Outcome.PARTIAL, missing_fingers=(9,),
                                   exceptions={4: FingerException.AMPUTATED},
                                   started=today))
    amputated = next(c for p, c in partial.fingers.items() if int(p) == 4)
    amputated.exception_photo_jpeg = face_jpeg()[0]
    ids = {
        "full": office.store(with_place(recording(0, started=today))),
        "partial": office.store(partial),
        "refused": office.store(recording(2, outcome=Outcome.REFUSED, started=today)),
        "earlier": office.store(in_village(recording(3, started=earlier), "Satreyan")),
        "nosign": office.store(recording(4, cannot_sign="tangan kanan lumpuh (stroke)",
                                         started=today)),
        "other_officer": office.store(_officers(recording(5, started=today), ["ptg-0201"])),
        "stranger": office.store(recording(5, started=today, kit_id=STRANGER_KIT)),
    }
    blob = office.seal(recording(0, started=today))
    office.db.quarantine_record(KIT, ids["full"], "ab" * 32, blob, "2026-12-01T00:00:00Z")
    return ids


def _officers(rec: Recording, officers: list[str]) -> Recording:
    rec.officers = officers
    return rec


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    office = RecordOffice(tmp_path)
    ids = store_all(office)
    key = write_secret_key(tmp_path / "web")
    operator = make_user(office.db, "operator.rekam",
                         perms=("view_fleet", "view_personal", "export_records"))
    viewer = make_user(office.db, "pemantau")
    names = [recording(i).target.name for i in range(6)]
    with running_web(tmp_path / "office.db", tmp_path / "web",
                     args=("--keys", str(office.keys_dir), "--kits",
                           str(office.kits_dir))) as url:
        yield Desk(office, url, session_cookie(office.db, operator, key),
                   session_cookie(office.db, viewer, key), ids, names)




def listed(driver: WebDriver) -> list[str]:
    """The record ids of the list's rows, in order."""
    return [str(k).split("/", 1)[1] for k in driver.execute_script(
        "return Array.from(document.querySelectorAll('#records tr.record'))"
        ".map(function (r) { return r.dataset.key; });")]


def filter_by(driver: WebDriver, desk: Desk, **fields: str) -> None:
    driver.get(desk.url + "/records/")
    for name, value in fields.items():
        element = driver.find_element(By.ID, f"id_{name}")
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            driver.execute_script("arguments[0].value = arguments[1];", element, value)
    driver.find_element(By.ID, "filter-submit").click()
    WebDriverWait(driver, 10).until(lambda d: "/records/?" in d.current_url and d.execute_script(
        "return document.readyState === 'complete';"))


def wait_for(driver: WebDriver, selector: str) -> None:
    """Until the page (after a form was sent) has ``selector``."""
    WebDriverWait(driver, 10, poll_frequency=0.1).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, selector), selector)


def full_page_screenshot(driver: WebDriver, name: str) -> None:
    height = int(driver.execute_script("return document.documentElement.scrollHeight;"))
    driver.set_window_size(1280, max(800, height + 160))
    screenshot(driver, name)
    driver.set_window_size(1280, 800)


def audit_rows(desk: Desk, action: str) -> list[tuple[str, str, str]]:
    return [(r["username"], r["subject"], r["detail"]) for r in desk.office.db.conn.execute(
        "SELECT username, subject, detail FROM audit WHERE action = %s ORDER BY id",
        (action,)).fetchall()]


def test_an_operator_filters_searches_opens_a_record_and_sets_its_state(
        desk: Desk, browser: WebDriver) -> None:  # noqa: F811
    ids = desk.ids
    log_in(browser, desk, desk.operator)
    browser.get(desk.url + "/records/")
    rows = listed(browser)
    assert set(rows) == set(ids.values())
    assert text_of(browser, "#records-count").endswith("(7 rekaman)")
    # Every resident is named on the list (the index opened each arrival).
    body = text_of(browser, "#records tbody")
    for name in desk.names:
        assert name in body
    # The record from an unknown kit is listed with the reason, never as good.
    bad = text_of(browser, f"#records tr.unopenable[data-key='{STRANGER_KIT}/{ids['stranger']}']")
    assert "Tidak dapat dibuka" in bad and "kit_unknown" in bad
    assert "kunci publik kit ini tidak ada di kantor" in bad
    assert "Jari manis kiri belum" in text_of(
        browser, f"#records tr[data-key='{KIT}/{ids['partial']}']")
    quarantine = text_of(browser, "#quarantine tbody")
    assert ids["full"] in quarantine and "ID sama dengan rekaman tersimpan" in quarantine
    screenshot(browser, "records-list")

    filter_by(browser, desk, outcome="refused")
    assert listed(browser) == [ids["refused"]]
    filter_by(browser, desk, village="Satreyan")
    assert listed(browser) == [ids["earlier"]]
    filter_by(browser, desk, officer="ptg-0201")
    assert listed(browser) == [ids["other_officer"]]
    filter_by(browser, desk, complete="partial")
    assert set(listed(browser)) == {ids["partial"], ids["refused"]}
    # The "earlier" visit's own day in WIB (the office's day, whatever the hour here).
    three_days_ago = (datetime.now(UTC) - timedelta(hours=1, days=3)).astimezone(
        ZoneInfo("Asia/Jakarta")).date()
    filter_by(browser, desk, date_from=three_days_ago.isoformat(),
              date_to=(three_days_ago + timedelta(days=1)).isoformat())
    assert listed(browser) == [ids["earlier"]]
    filter_by(browser, desk, date_from="2026-12-05", date_to="2026-12-01")
    wait_for(browser, "#date_to-error")
    assert "Tanggal akhir sebelum tanggal awal" in text_of(browser, "#date_to-error")
    # Search: a name in any case and in part; a NIK by its first digits.
    filter_by(browser, desk, q="kasmiran HADI")
    assert listed(browser) == [ids["partial"]]
    nik = recording(2).target.nik
    filter_by(browser, desk, q=nik[:12])
    assert listed(browser) == [ids["refused"]]
    filter_by(browser, desk, q=nik[4:])  # not a prefix: no match
    assert listed(browser) == []
    # The search text never reaches the audit log (it may be a name or a NIK).
    lists = audit_rows(desk, "view_personal")
    assert any("search=name" in d for _u, s, d in lists if s == "records list")
    assert not any("kasmiran" in d.casefold() or nik[:12] in d for _u, _s, d in lists)

    # The partial record: every image drawn, each finger as it was recorded.
    filter_by(browser, desk, q="Kasmiran")
    browser.find_element(By.CSS_SELECTOR, "#records td.name a").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.ID, "fingers"))
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(
        "return Array.from(document.images).every(function (i) { return i.complete; });"))
    images = browser.execute_script(
        "return Array.from(document.querySelectorAll('img.capture'))"
        ".map(function (i) { return [i.getAttribute('src'), i.naturalWidth]; });")
    assert len(images) == 1 + 8 + 1 + 1  # photo, 8 prints, the amputation photo, signature
    assert all(width > 0 for _src, width in images), images
    target = recording(1).target
    assert text_of(browser, "#r-name") == target.name
    assert text_of(browser, "#r-nik") == target.nik and text_of(browser, "#r-kk") == target.kk
    assert "Ds. Papungan" in text_of(browser, "#r-address")
    assert text_of(browser, "#r-outcome").startswith("Terekam sebagian")
    assert text_of(browser, "#r-missing") == "Jari manis kiri belum"
    assert "kunjungan berikutnya" in text_of(browser, "#r-later")
    assert "Jari tidak ada (amputasi)" in text_of(browser, "#finger-4")
    assert text_of(browser, "#finger-9").endswith("tidak direkam")
    assert "Mutu 63" in text_of(browser, "#finger-1")
    assert "Mutu 81 (batas 60)" in text_of(browser, "#photo")
    assert "Sulastri (perangkat desa)" in text_of(browser, "#r-witness")
    assert "menyetujui" in text_of(browser, "#r-witness")
    assert text_of(browser, "#r-officers") == "ptg-0107, ptg-0112"
    assert text_of(browser, "#r-duration") == "14 mnt 0 dtk"
    assert browser.execute_script(
        "return Boolean(window.jaranijoRecordMap && "
        "document.querySelector('#record-map .leaflet-interactive'));")
    full_page_screenshot(browser, "record-page")
    browser.execute_script("document.getElementById('fingers').scrollIntoView();")
    screenshot(browser, "record-page-fingers")

    # "Bermasalah" without a note is refused; with one it is saved, with who and when.
    Select(browser.find_element(By.ID, "id_state")).select_by_value("problem")
    browser.find_element(By.ID, "state-submit").click()
    wait_for(browser, "#note-error")
    assert "Status \"Bermasalah\" perlu catatan" in text_of(browser, "#note-error")
    Select(browser.find_element(By.ID, "id_state")).select_by_value("problem")
    browser.find_element(By.ID, "id_note").send_keys("Jari manis kiri perlu direkam ulang")
    browser.find_element(By.ID, "state-submit").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.ID, "r-state-by"))
    assert text_of(browser, "#r-state") == "Bermasalah"
    assert "operator.rekam" in text_of(browser, "#r-state-by")
    row = desk.office.db.conn.execute(
        "SELECT state, note, state_by, state_at FROM record_reviews WHERE record_id = %s",
        (ids["partial"],)).fetchone()
    assert (row["state"], row["note"], row["state_by"]) == (
        "problem", "Jari manis kiri perlu direkam ulang", "operator.rekam")
    assert row["state_at"] is not None
    assert audit_rows(desk, "review_record") == [
        ("operator.rekam", f"{KIT}/{ids['partial']}", "problem")]
    # Every opening is in the audit log: the page, and each of its images.
    opened = [(s, d) for u, s, d in audit_rows(desk, "view_personal")
              if s == f"{KIT}/{ids['partial']}"]
    assert sum(d == "record page" for _s, d in opened) >= 1
    assert {d for _s, d in opened if d.startswith("image")} >= {
        "image photo thumb", "image signature thumb", "image finger-1 thumb",
        "image exception-4 thumb"}


def test_a_record_without_signature_or_place_says_why(
        desk: Desk, browser: WebDriver) -> None:  # noqa: F811
    log_in(browser, desk, desk.operator)
    browser.get(desk.url + f"/records/{KIT}/{desk.ids['nosign']}/")
    assert "tangan kanan lumpuh (stroke)" in text_of(browser, "#no-signature")
    assert "tanpa GNSS" in text_of(browser, "#no-gnss")
    assert text_of(browser, "#r-complete") == "Lengkap"
    browser.get(desk.url + f"/records/{STRANGER_KIT}/{desk.ids['stranger']}/")
    assert "tidak dapat dibuka dan tidak dianggap sah" in text_of(browser, "#open-error")
    assert browser.find_elements(By.CSS_SELECTOR, "img.capture") == []


def test_three_records_go_to_checked_at_once(
        desk: Desk, browser: WebDriver) -> None:  # noqa: F811
    ids = desk.ids
    log_in(browser, desk, desk.operator)
    filter_by(browser, desk, complete="complete")
    chosen = [ids["full"], ids["earlier"], ids["nosign"]]
    assert set(chosen) <= set(listed(browser))
    for record_id in chosen:
        browser.find_element(
            By.CSS_SELECTOR, f"tr[data-key='{KIT}/{record_id}'] input[name='bulk-picked']").click()
    # "problem" without a note: refused, the ticks kept.
    Select(browser.find_element(By.ID, "id_bulk-state")).select_by_value("problem")
    browser.find_element(By.ID, "bulk-submit").click()
    wait_for(browser, "#bulk-note-error")
    assert "perlu catatan" in text_of(browser, "#bulk-note-error")
    assert len(browser.find_elements(By.CSS_SELECTOR, "input[name='bulk-picked']:checked")) == 3
    Select(browser.find_element(By.ID, "id_bulk-state")).select_by_value("checked")
    screenshot(browser, "records-bulk-before")
    browser.find_element(By.ID, "bulk-submit").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "ul.messages"))
    assert "Status 3 rekaman diubah menjadi \"Sudah diperiksa\"" in text_of(
        browser, "ul.messages")
    for record_id in chosen:
        assert text_of(browser, f"tr[data-key='{KIT}/{record_id}'] td.state").startswith(
            "Sudah diperiksa")
    screenshot(browser, "records-bulk-done")
    states = dict(desk.office.db.conn.execute(
        "SELECT record_id, state FROM record_reviews").fetchall())
    assert {k for k, v in states.items() if v == "checked"} == set(chosen)
    assert sorted(s for _u, s, _d in audit_rows(desk, "review_record")) == sorted(
        f"{KIT}/{r}" for r in chosen)
    # Nothing ticked: said so.
    browser.find_element(By.ID, "bulk-submit").click()
    wait_for(browser, "#picked-error")
    assert "Centang dulu rekaman" in text_of(browser, "#picked-error")


def get(url: str, cookie: str) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Cookie": f"sessionid={cookie}"})
    try:
        with urllib.request.urlopen(request, timeout=15) as r:
            return int(r.status), r.read().decode("utf-8", "replace"), \
                str(r.headers.get("Cache-Control", ""))
    except urllib.error.HTTPError as e:
        return int(e.code), e.read().decode("utf-8", "replace"), ""


def test_a_viewer_gets_no_names_no_pages_and_no_images(desk: Desk) -> None:
    full = f"/records/{KIT}/{desk.ids['full']}/"
    paths = ("/records/", full, full + "image/photo", full + "image/finger-1",
             full + "image/signature?thumb=1")
    for where in paths:
        status, body, _cache = get(desk.url + where, desk.viewer)
        assert status == 403, where
        assert not any(name in body for name in desk.names), where
        assert recording(0).target.nik not in body
    assert len([a for a in audit_rows(desk, "denied") if a[0] == "pemantau"]) == len(paths)
    # The operator's images come from memory and are never cached by the browser.
    status, _body, cache = get(desk.url + full + "image/finger-1?thumb=1", desk.operator)
    assert (status, cache) == (200, "no-store")
    status, _body, cache = get(desk.url + full, desk.operator)
    assert (status, cache) == (200, "no-store")
    assert get(desk.url + full + "image/finger-11", desk.operator)[0] == 404


def test_without_keys_the_list_says_how_to_start_the_web_app(tmp_path: Path) -> None:
    office = RecordOffice(tmp_path)
    office.store(recording(0))
    key = write_secret_key(tmp_path / "web")
    operator = session_cookie(office.db, make_user(office.db, "operator.rekam", perms=(
        "view_fleet", "view_personal")), key)
    with running_web(tmp_path / "office.db", tmp_path / "web") as url:
        status, body, _cache = get(url + "/records/", operator)
    assert status == 200
    assert "office web --keys" in body and "--kits" in body
    assert recording(0).target.name not in body
