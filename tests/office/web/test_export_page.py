"""The export page in real headless Chromium: an operator picks a filter and downloads the
worksheet PDF, the CSV and the archive ZIP; a filter that matches nothing says so and
sends no file; a viewer gets none of it; every export is in the audit log.

The web app runs in its own process (``office web --keys --kits``) on a real SQLite
office database holding real sealed records (``tests/office/records_helpers.py``), which
the page indexes itself before exporting. Chromium saves the downloads into a folder of
the test (``Browser.setDownloadBehavior``); the per-record worksheet is fetched over HTTP
with the operator's session cookie. Page 1 of the downloaded worksheet is rendered by
Chromium's own PDF viewer into ``artefacts/web/export-worksheet-page1.png``.
"""

from __future__ import annotations

import csv
import io
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from office.db import setup_django
from sync.domain import FingerException, Outcome
from tests.browser import (  # noqa: F401  (browser: the fixture)
    browser,
    log_in,
    screenshot,
    text_of,
)
from tests.office.records_helpers import KIT, RecordOffice, recording, sample_assignment
from tests.office.test_export import pdf_pages_text
from tests.office.web.fleet_helpers import make_user, session_cookie, write_secret_key
from tests.office.web.server import running_web

setup_django()

NOTHING = "Tidak ada rekaman yang cocok dengan saringan ini — tidak ada yang diekspor."
OPERATOR_PERMS = ("view_fleet", "view_personal", "export_records")


@dataclass
class Office:
    records: RecordOffice
    url: str
    operator: str  # session cookies
    viewer: str
    full: str
    partial: str
    refused: str


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    records = RecordOffice(tmp_path)
    full = records.store(recording(0, started=datetime(2026, 11, 9, 2, 30, tzinfo=UTC)))
    partial = records.store(recording(
        1, outcome=Outcome.PARTIAL, exceptions={4: FingerException.AMPUTATED},
        missing_fingers=(9,), cannot_sign="stroke", started=datetime(2026, 11, 10, 3, 0,
                                                                     tzinfo=UTC)))
    refused = records.store(recording(2, outcome=Outcome.REFUSED,
                                      started=datetime(2026, 11, 11, 4, 0, tzinfo=UTC)))
    key = write_secret_key(tmp_path / "web")
    operator = make_user(records.db, "operator.siak", perms=OPERATOR_PERMS)
    viewer = make_user(records.db, "pemantau")
    with running_web(tmp_path / "office.db", tmp_path / "web",
                     args=("--keys", str(records.keys_dir), "--kits",
                           str(records.kits_dir))) as url:
        yield Office(records, url, session_cookie(records.db, operator, key),
                     session_cookie(records.db, viewer, key), full, partial, refused)



def downloads_into(driver: WebDriver, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(folder)})


def wait_for_file(folder: Path, suffix: str, timeout: float = 60) -> Path:
    """The one finished download ending in ``suffix`` (Chromium writes ``.crdownload``
    first and renames it when done)."""
    found: list[Path] = []

    def done(_driver: object) -> bool:
        found[:] = [p for p in folder.iterdir() if p.name.endswith(suffix)]
        return len(found) == 1 and not list(folder.glob("*.crdownload"))

    WebDriverWait(None, timeout, poll_frequency=0.1).until(done, f"a {suffix} download")
    return found[0]



def fetch(url: str, cookie: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Cookie": f"sessionid={cookie}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def audit_rows(office: Office) -> list[tuple[str, str, str, str]]:
    rows = office.records.db.conn.execute(
        "SELECT username, action, subject, detail FROM audit WHERE action = 'export_records' "
        "ORDER BY id").fetchall()
    return [(r["username"], r["action"], r["subject"], r["detail"]) for r in rows]


def test_an_operator_filters_and_downloads_each_kind_and_each_is_audited(
        office: Office, browser: WebDriver, tmp_path: Path) -> None:  # noqa: F811
    folder = tmp_path / "downloads"
    log_in(browser, office, office.operator)
    downloads_into(browser, folder)
    browser.get(office.url + "/export/")
    assert "3 rekaman siap diekspor" in text_of(browser, ".export-intro")  # indexed on open
    Select(browser.find_element(By.ID, "id_complete")).select_by_value("partial")
    Select(browser.find_element(By.ID, "id_kit")).select_by_value(KIT)
    screenshot(browser, "export")
    names = [t.name for t in sample_assignment().targets]

    browser.find_element(By.ID, "export-pdf").click()
    pdf = wait_for_file(folder, ".pdf")
    assert pdf.name.startswith("jaranijo-siak-") and len(pdf.stem) == len(
        "jaranijo-siak-20261109-0930")
    pages = pdf_pages_text(pdf.read_bytes())
    assert len(pages) == 2 and names[1] in pages[0] and names[2] in pages[1]
    assert names[0] not in "".join(pages)  # the complete one is filtered out

    # The form keeps the filter after a download (the page stays as it was).
    assert Select(browser.find_element(By.ID, "id_complete")).first_selected_option \
        .get_attribute("value") == "partial"
    browser.find_element(By.ID, "export-csv").click()
    csv_file = wait_for_file(folder, ".csv")
    rows = list(csv.DictReader(io.StringIO(csv_file.read_bytes().decode("utf-8-sig"),
                                           newline=""), delimiter=";"))
    assert [r["id_rekaman"] for r in rows] == [office.partial, office.refused]
    assert [r["nama"] for r in rows] == names[1:3]

    browser.find_element(By.ID, "export-zip").click()
    zip_file = wait_for_file(folder, ".zip")
    archive = zipfile.ZipFile(zip_file)
    folders = {n.split("/")[0] for n in archive.namelist()}
    assert len(folders) == 1 and next(iter(folders)).endswith(
        office.partial.replace("-", "")[-12:])  # the refusal has no biometrics
    assert any(n.endswith("/manifest.json") for n in archive.namelist())

    # Page 1 of the worksheet as Chromium's PDF viewer draws it.
    browser.set_window_size(900, 1280)
    browser.get(pdf.as_uri() + "#toolbar=0&view=Fit")
    time.sleep(3)  # the viewer draws asynchronously; nothing in the DOM says when
    screenshot(browser, "export-worksheet-page1")

    audited = audit_rows(office)
    assert [(u, s) for u, _a, s, _d in audited] == [
        ("operator.siak", "worksheet_pdf"), ("operator.siak", "csv"),
        ("operator.siak", "archive_zip")]
    assert [d for *_rest, d in audited] == [f"kit={KIT} complete=partial count=2"] * 2 + [
        f"kit={KIT} complete=partial count=1"]
    for *_rest, detail in audited:
        assert not any(n in detail for n in names)


def test_a_filter_that_matches_nothing_says_so_and_sends_no_file(
        office: Office, browser: WebDriver, tmp_path: Path) -> None:  # noqa: F811
    folder = tmp_path / "downloads"
    log_in(browser, office, office.operator)
    downloads_into(browser, folder)
    browser.get(office.url + "/export/")
    browser.execute_script("document.getElementById('id_date_from').value = '2027-01-01';")
    browser.find_element(By.ID, "export-zip").click()
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.ID, "export-message"))
    assert text_of(browser, "#export-message") == NOTHING
    screenshot(browser, "export-nothing")
    # A filter that cannot be: said what to fix, nothing exported.
    browser.execute_script("document.getElementById('id_date_from').value = '2026-11-10';"
                           "document.getElementById('id_date_to').value = '2026-11-09';")
    browser.find_element(By.ID, "export-csv").click()
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.ID, "export-errors"))
    assert "Tanggal akhir sebelum tanggal awal" in text_of(browser, "#field-date_to")
    time.sleep(0.5)  # a download, had one started, would show in the folder by now
    assert not folder.exists() or not list(folder.iterdir())
    assert audit_rows(office) == []


def test_one_records_worksheet_for_an_operator_and_nothing_for_a_viewer(
        office: Office) -> None:
    url = f"{office.url}/export/record/{KIT}/{office.full}/worksheet.pdf"
    status, headers, body = fetch(url, office.operator)
    assert status == 200 and headers["Content-Type"] == "application/pdf"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Disposition"].startswith('attachment; filename="jaranijo-siak-')
    (page,) = pdf_pages_text(body)
    name = sample_assignment().targets[0].name
    assert name in page
    assert audit_rows(office) == [("operator.siak", "export_records", f"{KIT}/{office.full}",
                                   "worksheet_pdf count=1")]
    status, _headers, body = fetch(f"{office.url}/export/record/{KIT}/0190-none/worksheet.pdf",
                                   office.operator)
    assert status == 404 and "Rekaman tidak ada" in body.decode()
    # A viewer gets the 403 page, with no name, for the page and the worksheet.
    for path in ("/export/", f"/export/record/{KIT}/{office.full}/worksheet.pdf"):
        status, _headers, body = fetch(office.url + path, office.viewer)
        assert status == 403 and name.encode() not in body and not body.startswith(b"%PDF")
    denied = office.records.db.conn.execute(
        "SELECT username FROM audit WHERE action = 'denied'").fetchall()
    assert [r["username"] for r in denied] == ["pemantau", "pemantau"]
    assert len(audit_rows(office)) == 1


def test_without_the_office_keys_the_page_says_what_is_missing(tmp_path: Path) -> None:
    records = RecordOffice(tmp_path)
    records.store(recording(0))
    key = write_secret_key(tmp_path / "web")
    operator = session_cookie(records.db, make_user(records.db, "operator.siak",
                                                    perms=OPERATOR_PERMS), key)
    with running_web(tmp_path / "office.db", tmp_path / "web") as url:  # no --keys/--kits
        status, _headers, body = fetch(url + "/export/", operator)
        page = body.decode()
        assert status == 200 and 'id="export-message"' in page
        assert "Kunci kantor atau folder kunci kit tidak diatur" in page
        assert "--keys dan --kits" in page
        status, _headers, body = fetch(f"{url}/export/record/{KIT}/x/worksheet.pdf", operator)
        assert status == 503 and "tidak diatur" in body.decode()
