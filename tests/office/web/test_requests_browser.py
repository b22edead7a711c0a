"""The request flow in real headless Chromium, against ``jaranijo office web --keys --kits``
in its own process over a real SQLite office database: Kepala Dinas registers a village's
letter with its scanned PDF, dispositions it, imports the target list (a Windows-1252 CSV
with ``;`` and a column the office does not know, mapped by hand), reads the report,
confirms, sees the targets table and verifies every target; the request is then
"Sasaran diverifikasi". Screenshots go to ``artefacts/web/`` (requests-list,
request-import-report, request-detail).

Every resident is invented; the NIKs follow the rules for Kabupaten Blitar (35.05).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.browser import (  # noqa: F401  (browser: the fixture)
    browser,
    log_in,
    screenshot,
    text_of,
    wait,
)
from tests.office.records_helpers import RecordOffice
from tests.office.web.fleet_helpers import make_user, session_cookie, write_secret_key
from tests.office.web.server import running_web

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
HEADERS = ["NO", "NIK", "No. KK", "NAMA LENGKAP", "TGL LAHIR", "JK", "ALAMAT", "RT", "RW",
           "DUSUN", "DESA", "KEC", "GOL. SASARAN", "KETERANGAN"]


def nik(born: date, sex: str, serial: int) -> str:
    day = born.day + (40 if sex == "P" else 0)
    return f"350510{day:02d}{born.month:02d}{born.year % 100:02d}{serial:04d}"


def kk(serial: int) -> str:
    return f"350510210711{serial:04d}"


ROWS = [
    ["1", nik(date(1939, 11, 4), "P", 7), kk(31), "SUMIRAH DARMOWIYONO", "04-11-1939", "P",
     "", "2", "1", "Krajan", "Papungan", "Kanigoro", "lansia", "Tidak bisa berjalan"],
    ["2", nik(date(1950, 7, 15), "P", 21), kk(44), "RENÉ SOEDARSONO", "15/07/1950",
     "Perempuan", "Jl. Melati 5", "3", "1", "Ngrejo", "Papungan", "Kanigoro", "disabilitas",
     ""],
    ["3", nik(date(1944, 2, 20), "L", 12), kk(18), "KASMIRAN HADIWIJOYO", "20-02-1944", "L",
     "", "4", "2", "Krajan", "Papungan", "Kanigoro", "sakit", "Terbaring sejak 2024"],
    ["4", nik(date(1936, 12, 24), "L", 33), kk(33), "DJOKO SUMITRO", "24-12-1936", "L", "",
     "2", "1", "Krajan", "Papungan", "Kanigoro", "lansia", ""],
]


@dataclass
class Site:
    url: str
    cookie: str
    root: Path


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    office = RecordOffice(tmp_path)  # sets Django up on its database
    from django.contrib.auth.models import Group, User

    key = write_secret_key(tmp_path / "web")
    head = make_user(office.db, "kadis", perms=())
    User.objects.db_manager(office.db.alias).get(pk=head).groups.add(
        Group.objects.db_manager(office.db.alias).get(name="head"))
    with running_web(tmp_path / "office.db", tmp_path / "web",
                     args=("--keys", str(office.keys_dir), "--kits",
                           str(office.kits_dir))) as url:
        yield Site(url, session_cookie(office.db, head, key), tmp_path)


def set_value(driver: WebDriver, element_id: str, value: str) -> None:
    driver.execute_script("document.getElementById(arguments[0]).value = arguments[1];",
                          element_id, value)


def submit(driver: WebDriver, element_id: str, then: str) -> None:
    driver.find_element(By.ID, element_id).click()
    wait(driver, then)


def full_page_screenshot(driver: WebDriver, name: str) -> None:
    height = int(driver.execute_script("return document.documentElement.scrollHeight;"))
    driver.set_window_size(1366, max(800, height + 160))
    screenshot(driver, name)
    driver.set_window_size(1366, 800)


def test_register_import_with_mapping_confirm_and_verify(site: Site,
                                                         browser: WebDriver) -> None:  # noqa: F811
    browser.set_window_size(1366, 800)
    scan = site.root / "surat-permohonan.pdf"
    scan.write_bytes(PDF)
    listing = site.root / "data sasaran papungan.csv"
    bad = ["5", nik(date(1948, 1, 5), "L", 13), kk(19), "SUKIRNO", "06-01-1948", "L", "", "2",
           "1", "Krajan", "Papungan", "Kanigoro", "lansia", ""]
    listing.write_bytes(("\r\n".join(";".join(r) for r in [HEADERS, *ROWS, bad]) + "\r\n")
                        .encode("cp1252"))
    log_in(browser, site)

    # 1. Register the letter.
    browser.get(site.url + "/requests/")
    submit(browser, "request-new", "document.getElementById('request-form')")
    assert not browser.find_element(By.ID, "id_agency").is_displayed()  # a village's letter
    browser.find_element(By.CSS_SELECTOR, "input[name=applicant_kind][value=agency]").click()
    assert browser.find_element(By.ID, "id_agency").is_displayed()
    browser.find_element(By.CSS_SELECTOR, "input[name=applicant_kind][value=village]").click()
    set_value(browser, "id_letter_number", "470/112/409.21.5/2026")
    set_value(browser, "id_letter_date", "2026-11-27")
    Select(browser.find_element(By.ID, "id_kecamatan")).select_by_value("Kanigoro")
    set_value(browser, "id_village", "Papungan")
    set_value(browser, "id_summary", "Mohon perekaman KTP-el 5 warga lansia dan disabilitas")
    browser.find_element(By.ID, "id_scan").send_keys(str(scan))
    full_page_screenshot(browser, "request-new")
    submit(browser, "request-submit", "document.getElementById('letter')")
    assert text_of(browser, "#req-status") == "Tercatat"
    assert "setelah surat ini didisposisi" in text_of(browser, "#not-workable")

    # 2. Disposition to Bidang Dafduk.
    browser.find_element(By.CSS_SELECTOR, "input[name=decision][value=forward]").click()
    set_value(browser, "id_note", "Mohon dijadwalkan minggu depan")
    submit(browser, "disposition-submit", "document.getElementById('import-link')")
    assert text_of(browser, "#req-status") == "Didisposisi ke Bidang Dafduk"

    # 3. Import: upload, map the unknown column, read the report.
    submit(browser, "import-link", "document.getElementById('upload-form')")
    browser.find_element(By.ID, "id_file").send_keys(str(listing))
    submit(browser, "upload-submit", "document.getElementById('map-form')")
    assert "Windows-1252" in text_of(browser, "#table-description")
    assert "GOL. SASARAN" in text_of(browser, "#unknown-columns")
    submit(browser, "map-submit", "document.getElementById('map-errors')")
    assert "Kategori belum dipetakan" in text_of(browser, "#map-error-category")
    full_page_screenshot(browser, "request-import-mapping")
    Select(browser.find_element(By.ID, "col-category")).select_by_visible_text("GOL. SASARAN")
    submit(browser, "map-submit", "document.getElementById('report')")
    assert text_of(browser, "#report-summary") == "5 baris: 4 diterima, 1 ditolak"
    assert "Tanggal lahir pada NIK" in text_of(browser, "#row-6")
    assert "RENÉ SOEDARSONO" in text_of(browser, "#row-3")
    full_page_screenshot(browser, "request-import-report")
    submit(browser, "confirm-submit", "document.getElementById('targets')")
    assert "4 sasaran diimpor (1 baris ditolak)" in text_of(browser, "ul.messages")

    # 4. The targets table, then the verification.
    names = browser.execute_script(
        "return Array.from(document.querySelectorAll('#targets td.name'))"
        ".map(function (c) { return c.textContent.trim(); });")
    assert names == [r[3] for r in ROWS]
    first = browser.find_element(By.CSS_SELECTOR, "#targets tr.target")
    assert "04-11-1939" in first.text and "Belum direkam" in first.text
    rene = browser.find_elements(By.CSS_SELECTOR, "#targets tr.target")[1]
    rene.find_element(By.CSS_SELECTOR, "input[type=text]").send_keys(
        "Sudah direkam di RSUD bulan lalu")
    rene.find_element(By.CSS_SELECTOR, "button.v-no").click()  # htmx: the row in place
    wait(browser, "document.querySelector('#targets tr.refused')")
    assert "0 terverifikasi, 1 tidak, 3 belum diperiksa" in text_of(browser, "#progress")
    assert text_of(browser, "#req-status") == "Didisposisi ke Bidang Dafduk"
    boxes = browser.find_elements(By.CSS_SELECTOR, "#targets input[name=picked]")
    assert len(boxes) == 3
    for box in boxes[:2]:
        box.click()
    submit(browser, "verify-bulk", "document.querySelectorAll('#targets tr.verified')"
                                   ".length === 2")
    assert "2 sasaran diverifikasi." in text_of(browser, "ul.messages")
    # The last one by its own button: every target is decided, the page reloads.
    last = browser.find_elements(By.CSS_SELECTOR, "#targets tr.target")[3]
    last.find_element(By.CSS_SELECTOR, "button.v-yes").click()
    wait(browser, "document.getElementById('req-status').textContent.trim() === "
                  "'Sasaran diverifikasi'")
    assert "3 terverifikasi, 1 tidak, 0 belum diperiksa" in text_of(browser, "#progress")
    assert "3 terverifikasi, 1 tidak" in text_of(browser, "#events")
    assert "Sudah direkam di RSUD" in text_of(browser, "#targets tr.refused")
    full_page_screenshot(browser, "request-detail")

    # 5. The list.
    browser.get(site.url + "/requests/")
    wait(browser, "document.getElementById('requests')")
    assert "Sasaran diverifikasi" in text_of(browser, "#requests tr.request")
    assert "0/4 sasaran" in text_of(browser, "#requests tr.request")
    screenshot(browser, "requests-list")
