"""The reply letter and the kit checkout pages in real headless Chromium, against
``jaranijo office web`` in its own process (the desk of ``test_replies.py``).

The letter: the draft made on the page, signed by the test CA's head certificate, the
signed PDF chosen in the page's file input and uploaded; the page then shows the signer
in green and offers "Tandai terkirim". The checkout form: a self-test requested with the
button (htmx), answered by the kit through the receiver while the section polls, then the
kit handed out. The list: a kit overdue marked in red. Screenshots ``reply-letter``,
``checkout-form`` and ``checkout-list`` in artefacts/web/.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from office.db import setup_django
from tests.browser import (  # noqa: F401  (browser: the fixture)
    browser,
    log_in,
    screenshot,
    text_of,
    wait,
)
from tests.office.test_letters import HEAD, sign
from tests.office.web.test_checkout import answer, selftest
from tests.office.web.test_replies import KIT, Desk, add_visit, make_draft, start_desk, today

setup_django()
from office.models import Command, KitCheckout, ReplyLetter, VisitRequest  # noqa: E402


@pytest.fixture
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    yield from start_desk(tmp_path, monkeypatch)


def no_overflow(driver: WebDriver, selector: str) -> list[str]:
    """Elements inside ``selector`` whose content is wider than their box (text cut off
    or spilling over a neighbour)."""
    return list(driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' *'))"
        ".filter(function (e) { return e.scrollWidth > e.clientWidth + 1 &&"
        " getComputedStyle(e).overflowX === 'visible' && e.clientWidth > 0 &&"
        " !['INPUT', 'SELECT', 'TEXTAREA'].includes(e.tagName); })"
        ".map(function (e) { return e.tagName + '#' + e.id + '.' + e.className; });",
        selector))


def test_the_letter_page_after_a_verified_upload(desk: Desk, browser: WebDriver,  # noqa: F811
                                                 tmp_path: Path) -> None:
    assert desk.bsre is not None
    visit = add_visit(desk.alias)
    draft = make_draft(desk, visit)
    signed = tmp_path / "surat-ttd.pdf"
    signed.write_bytes(sign(draft, desk.bsre.issue(tmp_path / "head", HEAD)))

    log_in(browser, desk, desk.cookies["staff"])
    browser.get(desk.url + f"/visits/{visit.pk}/letter/")
    assert browser.find_element(By.ID, "id_addressee").get_attribute("value") == (
        "Kepala Desa Kemloko")
    assert "Dapat ditandai terkirim setelah" in text_of(browser, "#send-blocked")
    browser.find_element(By.ID, "id_signed").send_keys(str(signed))
    browser.find_element(By.ID, "upload-signed").click()
    wait(browser, "document.querySelector('#verdict.ok')")
    verdict = text_of(browser, "#verdict")
    assert "Tanda tangan sah" in verdict and HEAD in verdict and "Uji BSrE Root CA" in verdict
    assert "Tanda tangan elektronik sah" in text_of(browser, "ul.messages")
    assert browser.find_element(By.ID, "mark-sent").is_displayed()
    assert no_overflow(browser, "#letter-state") == []
    assert no_overflow(browser, "#letter-form") == []
    browser.execute_script("window.scrollTo(0, 0);")  # the heading and the verdict
    screenshot(browser, "reply-letter")

    browser.find_element(By.ID, "mark-sent").click()
    wait(browser, "document.querySelector('#sent')")
    assert "ditandai oleh staf.dafduk" in text_of(browser, "#sent")
    assert ReplyLetter.objects.using(desk.alias).get(visit_id=visit.pk).sent_at is not None
    assert VisitRequest.objects.using(desk.alias).get(
        pk=visit.request_id).status == "letter_sent"


def test_the_checkout_form_requests_a_selftest_and_hands_the_kit_out(
        desk: Desk, browser: WebDriver) -> None:  # noqa: F811
    desk.fleet.birth(KIT)
    visit = add_visit(desk.alias, day=today())
    log_in(browser, desk, desk.cookies["staff"])
    browser.get(desk.url + "/checkout/")
    browser.find_element(By.ID, f"hand-out-{visit.pk}").click()
    wait(browser, "document.querySelector('#selftest[data-state=none]')")
    assert "Belum ada hasil uji mandiri" in text_of(browser, "#selftest-warning")

    browser.find_element(By.ID, "request-selftest").click()
    wait(browser, "document.querySelector('#selftest[data-state=pending]')")
    (command,) = Command.objects.using(desk.alias).filter(kit_id=KIT, name="selftest")
    answer(desk, command.command_id, gnss="fix", modem="registered", disk_free_mib=5120)
    wait(browser, "document.querySelector('#selftest[data-state=ok]')")  # by the 3-s poll
    assert "LULUS" in text_of(browser, "#selftest-result")
    assert not browser.find_elements(By.ID, "selftest-warning")  # went with the answer

    Select(browser.find_element(By.ID, "id_taken_by")).select_by_value("ptg-0102")
    browser.find_element(By.ID, "id_condition_note").send_keys("lengkap, tas bersih")
    assert browser.find_element(By.ID, "id_due_on").get_attribute("value") == (
        visit.visit_date.isoformat())
    assert no_overflow(browser, "#checkout-form") == []
    assert no_overflow(browser, "#checkout-side") == []
    browser.execute_script("document.getElementById('f-due_on').scrollIntoView();")
    screenshot(browser, "checkout-form")
    # The warning shown was for the missing self-test, which has now passed: no tick needed.
    browser.find_element(By.ID, "submit-checkout").click()
    wait(browser, "document.querySelector('#kits-out tr.checkout')")
    row = KitCheckout.objects.using(desk.alias).get(kit_id=KIT)
    assert row.taken_by == "ptg-0102" and row.out_selftest_ok is True
    assert row.out_selftest["command_id"] == command.command_id
    assert row.out_condition == "baik: lengkap, tas bersih"

    # Back at the office with one record still on the kit and every target pending.
    desk.fleet.health(KIT, battery=55, outbox=1, oldest=1800)
    browser.find_element(By.ID, f"return-{row.pk}").click()
    wait(browser, "document.querySelector('#waiting-records')")
    assert "1 rekaman belum terkirim" in text_of(browser, "#waiting-records .co-flag.bad")
    assert text_of(browser, "#pending-targets .co-flag.bad") == "3"
    assert "3 sasaran kunjungan ini belum direkam" in text_of(browser, "#warnings")
    assert no_overflow(browser, "main") == []
    screenshot(browser, "checkout-return")
    browser.find_element(By.ID, "submit-checkout").click()  # no tick: refused, says why
    wait(browser, "document.querySelector('#error-confirm')")
    browser.find_element(By.ID, "id_confirm").click()
    browser.find_element(By.ID, "submit-checkout").click()
    wait(browser, "document.querySelector('#kits-out') && "
                  "!document.querySelector('#kits-out tr.checkout')")
    row.refresh_from_db(using=desk.alias)
    assert (row.waiting_records, row.pending_targets) == (1, 3)


def test_the_checkout_list_marks_an_overdue_kit(desk: Desk, browser: WebDriver) -> None:  # noqa: F811
    desk.fleet.birth(KIT)
    selftest(desk)
    late = add_visit(desk.alias, day=today() - dt.timedelta(days=3), village="Satreyan")
    KitCheckout.objects.using(desk.alias).create(
        kit_id=KIT, visit=late, taken_by="ptg-0101", out_at=time.time() - 3 * 86400,
        out_by="staf.dafduk", out_selftest_ok=True, out_condition="baik",
        due_on=late.visit_date)
    KitCheckout.objects.using(desk.alias).create(
        kit_id="blitar-kit-02", visit=None, taken_by="ptg-0102", out_at=time.time() - 3600,
        out_by="staf.dafduk", out_selftest_ok=None, out_condition="baik", due_on=today())
    add_visit(desk.alias, day=today() + dt.timedelta(days=1), kit_id="blitar-kit-03",
              village="Kemloko")
    add_visit(desk.alias, day=today() + dt.timedelta(days=2), village="Sumberasri")  # KIT busy

    log_in(browser, desk, desk.cookies["staff"])
    browser.get(desk.url + "/checkout/")
    overdue = browser.find_elements(By.CSS_SELECTOR, "#kits-out tr.checkout.overdue")
    assert [r.get_attribute("data-kit") for r in overdue] == [KIT]
    assert "terlambat 3 hari" in overdue[0].text
    assert "(1 terlambat)" in text_of(browser, "#kits-out h2")
    color = browser.execute_script(
        "return getComputedStyle(document.querySelector('tr.overdue td.due')).color;")
    assert color == "rgb(180, 35, 24)"  # var(--bad)
    upcoming = text_of(browser, "#upcoming tbody")
    assert "kit masih dibawa untuk kunjungan lain" in upcoming and "blitar-kit-03" in upcoming
    assert no_overflow(browser, "main") == []
    screenshot(browser, "checkout-list")
