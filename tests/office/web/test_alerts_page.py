"""The alerts page in real headless Chromium, against ``jaranijo office web`` in its own
process over a real SQLite office database fed by the real receiver: a kit's battery drops
below the threshold while the page is open, the evaluator runs, the alert appears without a
reload; Kepala Dinas acknowledges it and the row says who, on a colleague's open page too;
the audit log has it; a POST without the CSRF token is refused; the settings form refuses
bad input saying what to fix, and a viewer may not open it."""

from __future__ import annotations

import http.cookiejar
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from office.db import OfficeDb, setup_django
from tests.browser import (  # noqa: F401  (browser: the fixture)
    browser,
    log_in,
    open_chromium,
    screenshot,
    wait,
)
from tests.office.receiver import KIT
from tests.office.web.fleet_helpers import Fleet, make_user, session_cookie, write_secret_key
from tests.office.web.server import running_web

setup_django()
from office import alerts  # noqa: E402  (needs Django set up)
from office.models import Alert, AlertSettings, AuditEntry  # noqa: E402

WEAK = "blitar-kit-12"


def role_user(db: OfficeDb, username: str, role: str) -> int:
    """A user whose only permissions are its role's (the groups the migrations made)."""
    from django.contrib.auth.models import Group, User

    user_id = make_user(db, username, perms=())
    User.objects.db_manager(db.alias).get(pk=user_id).groups.add(
        Group.objects.using(db.alias).get(name=role))
    return user_id


@dataclass
class Office:
    fleet: Fleet
    url: str
    head: str  # session cookies
    viewer: str

    @property
    def alias(self) -> str:
        return self.fleet.db.alias

    def evaluate(self) -> alerts.Summary:
        """The evaluator, as ``office serve`` runs it every 30 s."""
        return alerts.evaluate(time.time(), using=self.alias)


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    fleet = Fleet(tmp_path)
    key = write_secret_key(tmp_path / "web")
    head = role_user(fleet.db, "kepala.dinas", "head")
    viewer = role_user(fleet.db, "pemantau", "viewer")
    with running_web(tmp_path / "office.db", tmp_path / "web") as url:
        yield Office(fleet, url, session_cookie(fleet.db, head, key),
                     session_cookie(fleet.db, viewer, key))




def row_text(driver: WebDriver, kind: str) -> str:
    return str(driver.execute_script(
        "var r = document.querySelector('#alerts-open tr[data-kind=\"' + arguments[0] + '\"]');"
        "return r ? r.textContent.replace(/\\s+/g, ' ').trim() : '';", kind))


def call(office: Office, path: str, cookie: str | None, data: dict[str, str] | None = None,
         jar: http.cookiejar.CookieJar | None = None) -> tuple[int, str, str]:
    """A plain request (no redirects followed): status, Location, body."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    body = None if data is None else urllib.parse.urlencode(data).encode()
    request = urllib.request.Request(office.url + path, data=body)
    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPCookieProcessor(
        jar if jar is not None else http.cookiejar.CookieJar()))
    if cookie:
        request.add_header("Cookie", f"sessionid={cookie}")
    try:
        with opener.open(request, timeout=10) as r:
            return r.status, r.headers.get("Location", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location", ""), e.read().decode(errors="replace")


def test_an_alert_appears_live_and_is_acknowledged(office: Office,
                                                   browser: WebDriver) -> None:  # noqa: F811
    fl = office.fleet
    fl.birth(KIT)
    fl.health(KIT, battery=64)
    assert office.evaluate().raised == []
    log_in(browser, office, office.head)
    browser.get(office.url + "/alerts/")
    wait(browser, "document.querySelector('#alerts-open tr.none')")
    assert browser.find_element(By.ID, "nav-alerts").text.strip() == "Peringatan"
    browser.execute_script("window.__samePage = 'yes';")
    with open_chromium() as colleague:  # the viewer's page, open all along
        log_in(colleague, office, office.viewer)
        colleague.get(office.url + "/alerts/")
        wait(colleague, "document.querySelector('#alerts-open tr.none')")
        assert not colleague.find_elements(By.ID, "alert-settings-link")
        colleague.execute_script("window.__samePage = 'yes';")

        # The battery drops below 20 %; the evaluator runs; the page shows it by itself.
        fl.health(KIT, battery=14)
        assert office.evaluate().raised == [f"{KIT}:low_battery"]
        wait(browser, "document.querySelector('#alerts-open tr.unacked[data-kind=low_battery]')",
             timeout=12)
        text = row_text(browser, "low_battery")
        assert KIT in text and "Baterai lemah" in text and "14 % (ambang 20 %)" in text, text
        assert "Akui" in text
        wait(browser, "document.getElementById('nav-alerts-count').textContent.trim() === '(1)'")
        assert browser.execute_script("return window.__samePage === 'yes';")
        assert browser.find_element(
            By.CSS_SELECTOR, "#alerts-open tr[data-kind=low_battery] td.kit-id a"
        ).get_attribute("href").endswith(f"/kits/{KIT}/")
        screenshot(browser, "alerts")

        browser.find_element(By.CSS_SELECTOR,
                             "#alerts-open tr[data-kind=low_battery] button.ack-button").click()
        wait(browser, "document.querySelector('#alerts-open tr.acked[data-kind=low_battery]')",
             timeout=5)
        text = row_text(browser, "low_battery")
        assert "oleh kepala.dinas" in text and "Akui" not in text, text
        assert browser.find_element(By.ID, "nav-alerts-count").text.strip() == ""
        assert browser.execute_script("return window.__samePage === 'yes';")
        screenshot(browser, "alerts-acked")
        # The colleague's page shows the acknowledgement too, without a reload.
        wait(colleague, "document.querySelector('#alerts-open tr.acked[data-kind=low_battery]')",
             timeout=12)
        assert "oleh kepala.dinas" in row_text(colleague, "low_battery")
        assert colleague.execute_script("return window.__samePage === 'yes';")

    (alert,) = Alert.objects.using(office.alias).all()
    assert alert.acked_by == "kepala.dinas" and alert.acked_at is not None
    assert alert.cleared_at is None  # acknowledged is not cleared: the battery is still low
    entry = AuditEntry.objects.using(office.alias).get(action="ack_alert")
    assert (entry.username, entry.roles, entry.subject) == (
        "kepala.dinas", "head", f"{KIT}:low_battery")

    # Charged again: the alert clears and moves to today's cleared list.
    fl.health(KIT, battery=80, state=2)
    assert office.evaluate().cleared == [f"{KIT}:low_battery"]
    wait(browser, "document.querySelector('#alerts-cleared tr[data-kind=low_battery]')",
         timeout=12)
    assert browser.execute_script("return window.__samePage === 'yes';")
    assert browser.find_element(By.CSS_SELECTOR, "#alerts-open tr.none")
    screenshot(browser, "alerts-cleared")


def test_a_viewer_sees_the_page_and_a_post_without_csrf_is_refused(office: Office) -> None:
    office.fleet.birth(WEAK, security="software")
    assert office.evaluate().raised == [f"{WEAK}:no_tpm"]
    alert = Alert.objects.using(office.alias).get()
    status, _loc, body = call(office, "/alerts/", office.viewer)
    assert status == 200 and "Tanpa TPM (mode lebih lemah)" in body and WEAK in body
    assert 'id="nav-alerts-count"> (1)</span>' in body
    assert call(office, "/alerts/list", office.viewer)[0] == 200
    status, _loc, body = call(office, f"/alerts/{alert.pk}/ack", office.viewer, data={})
    assert status == 403 and 'id="csrf-failure"' in body  # the office's refusal page
    assert AuditEntry.objects.using(office.alias).filter(
        action="csrf_failure", username="pemantau", subject=f"/alerts/{alert.pk}/ack").exists()
    assert Alert.objects.using(office.alias).get().acked_at is None
    assert not AuditEntry.objects.using(office.alias).filter(action="ack_alert").exists()
    # With the page's token (and its cookie), the same viewer may acknowledge.
    jar = http.cookiejar.CookieJar()
    _s, _l, page = call(office, "/alerts/", office.viewer, jar=jar)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    cookies = "; ".join(f"{c.name}={c.value}" for c in jar)
    status, location, _b = call(office, f"/alerts/{alert.pk}/ack",
                                f"{office.viewer}; {cookies}",
                                data={"csrfmiddlewaretoken": token.group(1)})
    assert (status, location) == (302, "/alerts/")
    assert Alert.objects.using(office.alias).get().acked_by == "pemantau"
    # Anonymous: to the login page; the settings: not for a viewer.
    status, location, _b = call(office, "/alerts/", None)
    assert status == 302 and location.startswith("/login/")
    assert call(office, "/alerts/settings", office.viewer)[0] == 403
    assert call(office, f"/alerts/{alert.pk}/ack", office.viewer)[0] == 405


def test_the_settings_form_says_what_to_fix(office: Office,
                                            browser: WebDriver) -> None:  # noqa: F811
    log_in(browser, office, office.head)
    browser.get(office.url + "/alerts/")
    browser.find_element(By.ID, "alert-settings-link").click()
    wait(browser, "document.getElementById('alert-settings')")

    def fill(**values: str) -> None:
        for name, value in values.items():
            field = browser.find_element(By.NAME, name)
            field.clear()
            field.send_keys(value)
        browser.find_element(By.ID, "settings-submit").click()

    fill(battery_percent="95", visit_start_hour="16", visit_end_hour="9", no_fix_minutes="")
    wait(browser, "document.getElementById('settings-errors')")
    errors = {e.get_attribute("id"): e.text for e in
              browser.find_elements(By.CSS_SELECTOR, ".field.has-error")}
    assert "Ambang baterai harus 1–90 %, atau 0 untuk mematikan." in errors[
        "field-battery_percent"]
    assert "Jam selesai harus sesudah jam mulai (16): isi 17 atau lebih." in errors[
        "field-visit_end_hour"]
    assert "Isi kolom ini." in errors["field-no_fix_minutes"]
    assert set(errors) == {"field-battery_percent", "field-visit_end_hour",
                           "field-no_fix_minutes"}
    screenshot(browser, "alerts-settings-error")
    assert not AlertSettings.objects.using(office.alias).exists()  # nothing saved

    fill(battery_percent="25", visit_start_hour="7", visit_end_hour="16", no_fix_minutes="45")
    wait(browser, "document.getElementById('settings-saved')")
    s = AlertSettings.objects.using(office.alias).get(pk=1)
    assert (s.battery_percent, s.no_fix_minutes, s.visit_end_hour) == (25, 45, 16)
    entry = AuditEntry.objects.using(office.alias).get(action="alert_settings")
    assert entry.username == "kepala.dinas"
    assert entry.detail == ("battery_percent: 20 → 25, no_fix_minutes: 30 → 45, "
                            "visit_end_hour: 17 → 16")
    assert alerts.current_settings(office.alias).battery_percent == 25


def test_the_settings_form_bounds_every_field_and_says_how() -> None:
    from django.utils import translation

    from office.web.alerts import AlertSettingsForm

    good = {"battery_percent": "20", "no_fix_minutes": "30", "waiting_hours": "24",
            "visit_start_hour": "7", "visit_end_hour": "17", "offline_during_visit": "on"}
    wrong = {
        "battery_percent": ("91", "Ambang baterai harus 1–90 %, atau 0 untuk mematikan."),
        "no_fix_minutes": ("1441", "Isi 1–1440 menit (24 jam), atau 0 untuk mematikan."),
        "waiting_hours": ("-1", "Isi 1–168 jam (7 hari), atau 0 untuk mematikan."),
        "visit_start_hour": ("24", "Jam mulai harus 0–23."),
        "visit_end_hour": ("7", "Jam selesai harus sesudah jam mulai (7): isi 8 atau lebih."),
    }
    with translation.override("id"):
        form = AlertSettingsForm(good)
        assert form.is_valid(), form.errors
        assert form.cleaned_data["failed_selftest"] is False  # an unticked box: off
        for zero in ("battery_percent", "no_fix_minutes", "waiting_hours"):
            assert AlertSettingsForm({**good, zero: "0"}).is_valid()  # 0 turns it off
        assert AlertSettingsForm({**good, "visit_end_hour": "24"}).is_valid()  # midnight
        for field, (value, message) in wrong.items():
            errors = AlertSettingsForm({**good, field: value}).errors
            assert errors == {field: [message]}, (field, errors)
        assert AlertSettingsForm({**good, "waiting_hours": "2,5"}).errors == {
            "waiting_hours": ["Isi dengan bilangan bulat, tanpa koma atau satuan."]}
    with translation.override("en"):
        assert AlertSettingsForm({**good, "battery_percent": "95"}).errors == {
            "battery_percent": ["The battery threshold must be 1–90 %, or 0 to turn it off."]}
