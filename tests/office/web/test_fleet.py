"""The fleet monitor in real headless Chromium, against ``jaranijo office web`` in its own
process over a real SQLite office database, fed by the real receiver (no broker) while the
page is open: rows and markers change live without a reload, an old report is greyed with
its age, a kit going silent turns grey by itself, and the page needs ``view_fleet``."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from office.db import setup_django
from tests.browser import (  # noqa: F401  (browser: the fixture)
    browser,
    log_in,
    screenshot,
    wait,
)
from tests.office.web.fleet_helpers import (
    Fleet,
    make_user,
    session_cookie,
    write_secret_key,
)
from tests.office.web.server import running_web

setup_django()
from office import presence  # noqa: E402  (needs Django set up)
from office.web import fleet as f  # noqa: E402

NOW = 1_795_468_800.0


# -- the staleness rules, as a function ----------------------------------------------------
def kit(**kw: object) -> presence.KitData:
    base: dict[str, object] = dict(kit_id="blitar-kit-01", status_online=True, status={},
                                   status_at=NOW - 10, health={}, health_at=NOW - 10,
                                   location={}, location_at=NOW - 10, last_seen=NOW - 10)
    base.update(kw)
    return presence.KitData(**base)  # type: ignore[arg-type]


def test_presence_needs_an_online_status_and_a_recent_report() -> None:
    assert presence.staleness(kit(), NOW).presence == "online"
    assert presence.staleness(kit(status_online=False), NOW).presence == "offline"
    # An idle kit is heard from once per 900 s: still online at 1,199 s, silent after.
    assert presence.PRESENCE_S == 900 + 120 * 1.5 + 120
    assert presence.staleness(kit(last_seen=NOW - 1199), NOW).presence == "online"
    assert presence.staleness(kit(last_seen=NOW - 1201), NOW).presence == "silent"
    assert presence.staleness(kit(status_at=None, last_seen=None), NOW).presence == "unknown"


def test_a_field_is_stale_past_its_period_times_1_5_plus_margin() -> None:
    idle = presence.staleness(kit(health_at=NOW - 1379, location_at=NOW - 1381), NOW)
    assert (idle.health_stale, idle.location_stale) == (False, True)  # 900 x 1.5 + 30 = 1380
    moving = presence.staleness(kit(location={"t": "t"}, location_at=NOW - 121), NOW)
    assert moving.location_period_s == 60 and moving.location_stale  # 60 x 1.5 + 30 = 120
    low = kit(health={"battery_percent": 15, "battery_state": 1}, health_at=NOW - 481)
    judged = presence.staleness(low, NOW)
    assert judged.health_period_s == 300 and judged.health_stale
    charging = kit(health={"battery_percent": 15, "battery_state": 2}, health_at=NOW - 481)
    assert not presence.staleness(charging, NOW).health_stale
    # Nothing is live about a kit that is not there.
    gone = presence.staleness(kit(status_online=False), NOW)
    assert gone.health_stale and gone.location_stale


def test_ages_read_as_staff_say_them() -> None:
    from django.utils import translation

    with translation.override("id"):
        assert [f.age_text(s) for s in (3, 47, 185, 7300, 200_000)] == [
            "baru saja", "40 dtk lalu", "3 mnt lalu", "2 jam lalu", "2 hari lalu"]
    assert f.signal_bars(-80, None) == 4 and f.signal_bars(-110, None) == 1
    assert f.signal_bars(None, -70) == 4 and f.signal_bars(None, None) is None


def test_an_event_stream_frames_every_line() -> None:
    assert f.sse_event("rows", "<tr>\n</tr>") == "event: rows\ndata: <tr>\ndata: </tr>\n\n"


# -- the pages, as staff meet them -----------------------------------------------------------
@dataclass
class Office:
    fleet: Fleet
    url: str
    cookie: str
    cookie_no_perm: str


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    fleet = Fleet(tmp_path)
    key = write_secret_key(tmp_path / "web")
    staff = make_user(fleet.db, "staf.dafduk")
    other = make_user(fleet.db, "tamu", perms=())
    with running_web(tmp_path / "office.db", tmp_path / "web") as url:
        yield Office(fleet, url, session_cookie(fleet.db, staff, key),
                     session_cookie(fleet.db, other, key))


def get(url: str, cookie: str | None = None) -> tuple[int, str]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    request = urllib.request.Request(url)
    if cookie:
        request.add_header("Cookie", f"sessionid={cookie}")
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as r:
            return r.status, r.headers.get("Location", "")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location", "")


def test_the_fleet_needs_a_login_and_view_fleet(office: Office) -> None:
    for page in ("/", "/fleet/events", "/kits/blitar-kit-01/"):
        status, location = get(office.url + page)
        assert status == 302 and location.startswith("/login/"), (page, status, location)
        assert get(office.url + page, office.cookie_no_perm)[0] == 403, page
    assert get(office.url + "/", office.cookie)[0] == 200
    assert get(office.url + "/kits/no-such-kit/", office.cookie)[0] == 404




def cell(driver: WebDriver, kit_id: str, column: str) -> str:
    return str(driver.execute_script(
        "var c = document.querySelector(arguments[0]); return c ? c.className + '|' + "
        "c.textContent.replace(/\\s+/g, ' ').trim() : '';", f"#kit-{kit_id} td.{column}"))


def marker(driver: WebDriver, kit_id: str) -> dict[str, object]:
    """A kit's marker as the page drew it on the map's canvas (fleet.js tells)."""
    state = driver.execute_script("return window.jaranijoFleet.marker(arguments[0]);", kit_id)
    assert isinstance(state, dict), f"no marker for {kit_id}"
    return state


def colour(driver: WebDriver, name: str) -> str:
    """One colour of the office palette (office.css custom properties)."""
    return str(driver.execute_script(
        "return getComputedStyle(document.documentElement).getPropertyValue(arguments[0])"
        ".trim();", name))


def page_errors(driver: WebDriver) -> list[str]:
    """Script errors and Content Security Policy refusals in the browser's console (a
    missing favicon is not the page's)."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "favicon" not in e["message"]]


LIVE, OLD, NOTPM = "blitar-kit-01", "blitar-kit-07", "blitar-kit-12"


def test_rows_and_markers_change_live_and_old_reports_are_grey(office: Office,
                                                              browser: WebDriver) -> None:  # noqa: F811
    fl = office.fleet
    now = time.time()
    fl.at(None).birth(LIVE)
    fl.health(LIVE, battery=76, outbox=3, oldest=1500)
    fl.locate(LIVE, -8.09870, 112.16790)
    # Reported 50 minutes ago, then the broker published its will.
    fl.at(now - 3000).birth(OLD)
    fl.health(OLD, battery=55, rsrp=-108)
    fl.locate(OLD, -8.13510, 112.22040)
    fl.at(now - 2900).will(OLD)
    fl.at(None).birth(NOTPM, security="software")
    fl.health(NOTPM, battery=18, state=2, rsrp=-101, sinr=3)
    fl.locate(NOTPM, -8.06200, 112.14500)
    log_in(browser, office)
    browser.get(office.url + "/")
    wait(browser, "window.jaranijoFleet && window.jaranijoFleet.markers.size === 3")
    assert "41 %" not in cell(browser, LIVE, "battery")
    assert "76 %" in cell(browser, LIVE, "battery")
    assert "stale" not in cell(browser, LIVE, "battery").split("|")[0]
    old_battery = cell(browser, OLD, "battery")
    assert "stale" in old_battery.split("|")[0] and "mnt lalu" in old_battery, old_battery
    assert "stale" in cell(browser, OLD, "location").split("|")[0]
    assert "luring" in cell(browser, OLD, "presence")
    assert "tanpa TPM" in cell(browser, NOTPM, "kit-id")
    # The markers are drawn on a canvas: the page tells what each one is drawn as.
    assert marker(browser, OLD)["stale"] and marker(browser, OLD)["fill"] == colour(browser,
                                                                                    "--stale")
    assert not marker(browser, LIVE)["stale"]
    assert marker(browser, LIVE)["fill"] == colour(browser, "--ok")
    assert marker(browser, NOTPM)["presence"] == "online"
    assert marker(browser, OLD)["ring"] == colour(browser, "--bad")  # offline, in its ring
    wait(browser, "document.getElementById('live').classList.contains('on')")
    screenshot(browser, "fleet")
    # Remember this page: a reload would make a new map, new markers and drop the mark.
    browser.execute_script("window.__samePage = 'yes'; window.__marker = "
                           "window.jaranijoFleet.markers.get(arguments[0]);", LIVE)
    before = browser.execute_script(
        "var p = window.__marker.getLatLng(); return [p.lat, p.lng];")
    fl.health(LIVE, battery=41, outbox=0)
    fl.locate(LIVE, -8.11210, 112.18830, moving=True)
    wait(browser, f"document.querySelector('#kit-{LIVE} td.battery').textContent"
                  ".includes('41 %')", timeout=5)
    wait(browser, "window.__marker.getLatLng().lat < -8.11", timeout=5)
    assert browser.execute_script(
        "return window.__samePage === 'yes' && window.__marker === "
        "window.jaranijoFleet.markers.get(arguments[0]) && window.jaranijoFleet.updates > 0;",
        LIVE)
    assert before != browser.execute_script(
        "var p = window.__marker.getLatLng(); return [p.lat, p.lng];")
    # A kit that was never on the page gets a row and a marker too.
    fl.birth("blitar-kit-20")
    fl.locate("blitar-kit-20", -8.0801, 112.2002)
    wait(browser, "document.getElementById('kit-blitar-kit-20') && "
                  "window.jaranijoFleet.markers.size === 4", timeout=5)
    assert marker(browser, "blitar-kit-20")["fill"] == colour(browser, "--ok")
    assert browser.execute_script(
        "return document.querySelectorAll('#fleet-rows tr#kit-blitar-kit-20').length;") == 1
    screenshot(browser, "fleet-live")
    assert not page_errors(browser)
    # A marker is a link to its kit's page, as the kit's name in the row is.
    assert str(browser.find_element(By.CSS_SELECTOR, f"#kit-{LIVE} td.kit-id a").get_attribute(
        "href")).endswith(f"/kits/{LIVE}/")
    x, y = browser.execute_script(
        "var s = window.jaranijoFleet, p = s.map.latLngToContainerPoint("
        "s.markers.get(arguments[0]).getLatLng()), r = document.getElementById('fleet-map')"
        ".getBoundingClientRect(); return [p.x - r.width / 2, p.y - r.height / 2];", NOTPM)
    ActionChains(browser).move_to_element_with_offset(
        browser.find_element(By.ID, "fleet-map"), int(x), int(y)).click().perform()
    wait(browser, f"window.location.pathname === '/kits/{NOTPM}/'")


def test_a_kit_that_goes_quiet_turns_grey_without_reload(office: Office,
                                                         browser: WebDriver) -> None:  # noqa: F811
    fl = office.fleet
    # Health and location 6 s short of stale (900 x 1.5 + 30 s), presence fresh.
    stale_after = presence.INTERVAL_IDLE_S * presence.STALE_FACTOR + presence.STALE_MARGIN_S
    fl.at(time.time() - stale_after + 6)
    fl.health(LIVE, battery=64)
    fl.locate(LIVE, -8.09870, 112.16790)
    fl.at(None).birth(LIVE)
    fl.at(time.time() - 3000).birth(OLD)
    fl.health(OLD, battery=80)
    fl.locate(OLD, -8.1351, 112.2204)
    log_in(browser, office)
    browser.get(office.url + "/")
    wait(browser, "window.jaranijoFleet && window.jaranijoFleet.markers.size === 2")
    assert "stale" not in cell(browser, LIVE, "battery").split("|")[0]
    assert "diam" in cell(browser, OLD, "presence")  # online by its status, unheard for 50 min
    browser.execute_script("window.__samePage = 'yes';")
    wait(browser, f"document.querySelector('#kit-{LIVE} td.battery').classList"
                  ".contains('stale')", timeout=6 + f.TICK_S + 5)
    assert "mnt lalu" in cell(browser, LIVE, "battery")
    assert browser.execute_script("return window.__samePage === 'yes';")
    wait(browser, "window.jaranijoFleet.marker('blitar-kit-01').stale", timeout=3)
    assert marker(browser, LIVE)["fill"] == colour(browser, "--stale")
    screenshot(browser, "fleet-stale")


def test_the_kit_page_shows_the_days_track_health_and_events(office: Office,
                                                             browser: WebDriver) -> None:  # noqa: F811
    fl = office.fleet
    now = int(time.time())
    # The page shows the day since WIB midnight: just after it, the last hour is yesterday,
    # so the story below is squeezed into what of today there is (a minute at least).
    since_midnight = now - int(presence.day_start(now))
    if since_midnight < 180:
        time.sleep(180 - since_midnight)
        now, since_midnight = int(time.time()), 180
    k = min(1.0, (since_midnight - 90) / 3600)

    def ago(seconds: int) -> int:
        return now - int(seconds * k)

    fl.at(None).birth(LIVE)
    fl.locate(LIVE, -8.0950, 112.1600, tst=ago(3600))
    fl.locate(LIVE, -8.0990, 112.1650, tst=ago(3000))
    # Then two hours in a dead zone: the track it drove comes on reconnect.
    fl.track(LIVE, [(-8.1020 - i * 0.002, 112.1700 + i * 0.003, ago(2400 - i * 300))
                    for i in range(6)])
    fl.locate(LIVE, -8.1150, 112.1890, tst=now - 60 if k == 1.0 else ago(60))
    for i, battery in enumerate((71, 66, 60)):  # earlier reports: the chart's history
        fl.at(ago(2400 - i * 600)).health(LIVE, battery=battery, rsrp=-95 - 5 * i)
    fl.at(None).health(LIVE, battery=52, outbox=2, oldest=600)
    log_in(browser, office)
    browser.get(office.url + f"/kits/{LIVE}/")
    wait(browser, "window.jaranijoKit && window.jaranijoKit.points === 9")
    assert browser.execute_script(
        "return document.querySelectorAll('#kit-map path.track.offline').length;") == 1
    assert browser.execute_script(
        "return document.querySelectorAll('#kit-map path.track.live').length;") == 2
    assert browser.execute_script(
        "return document.querySelectorAll('#kit-map path.track-point.offline').length;") == 6
    text = browser.find_element(By.TAG_NAME, "main").text
    assert "Telkomsel" in text and "52" in text
    assert "6 titik jejak luring hari ini" in text
    assert browser.execute_script(
        "return document.querySelectorAll('#health-chart polyline.battery').length;") == 1
    assert "4 laporan" in text
    assert "Status: daring" in text
    screenshot(browser, "kit")
    browser.execute_script("document.getElementById('health-chart').scrollIntoView();")
    screenshot(browser, "kit-history")
