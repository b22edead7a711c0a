"""Several fleet tabs in one browser share one live stream (real headless Chromium against
``jaranijo office web`` in its own process, kits reporting through the real receiver).

A browser opens at most six connections to a host over HTTP/1.1 and each event stream
holds one for good, so a seventh fleet tab would stall the browser. The tabs elect a
leader with a Web Lock; it alone holds the stream and passes each event on over a
BroadcastChannel. Each tab tells its part (``window.fleetStream``: its role and how many
streams it opened); the server's side is seen through them: one stream opened in all.
"""

from __future__ import annotations

from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import browser, screenshot  # noqa: F401  (the fixture)
from tests.office.web.test_fleet import (  # noqa: F401  (the fixture)
    LIVE,
    OLD,
    Office,
    cell,
    log_in,
    office,
    page_errors,
    wait,
)


def stream_of(driver: WebDriver, handle: str) -> dict[str, object]:
    """What the tab ``handle`` says of its stream (fleet.js: ``window.fleetStream``)."""
    driver.switch_to.window(handle)
    state = driver.execute_script(
        "var s = window.fleetStream; return s && {role: s.role, opened: s.opened, "
        "events: s.events, lastEventId: s.lastEventId, url: s.url, live: s.live};")
    assert isinstance(state, dict), handle
    return state


def open_tab(driver: WebDriver, site: Office) -> str:
    driver.switch_to.new_window("tab")
    driver.get(site.url + "/")
    wait(driver, "window.fleetStream && window.fleetStream.role !== 'starting' && "
                 "window.jaranijoFleet.markers.size === 2")
    return driver.current_window_handle


def battery_in_every_tab(driver: WebDriver, tabs: list[str], text: str) -> None:
    for handle in tabs:
        driver.switch_to.window(handle)
        wait(driver, f"document.querySelector('#kit-{LIVE} td.battery').textContent"
                     f".includes({text!r})", timeout=10)


def test_three_tabs_share_one_stream_and_a_new_leader_takes_over(
        office: Office, browser: WebDriver) -> None:  # noqa: F811
    fl = office.fleet
    fl.at(None).birth(LIVE)
    fl.health(LIVE, battery=76)
    fl.locate(LIVE, -8.09870, 112.16790)
    fl.birth(OLD)
    fl.health(OLD, battery=55)
    fl.locate(OLD, -8.13510, 112.22040)
    log_in(browser, office)
    browser.get(office.url + "/")
    wait(browser, "window.fleetStream && window.fleetStream.role === 'leader' && "
                  "document.getElementById('live').classList.contains('on')")
    first = browser.current_window_handle
    tabs = [first, open_tab(browser, office), open_tab(browser, office)]

    roles = {h: stream_of(browser, h) for h in tabs}
    assert [roles[h]["role"] for h in tabs] == ["leader", "follower", "follower"], roles
    assert sum(int(str(r["opened"])) for r in roles.values()) == 1, roles  # one stream in all
    for handle in tabs[1:]:  # the followers learn the leader's stream is on
        browser.switch_to.window(handle)
        wait(browser, "document.getElementById('live').classList.contains('on')")

    # A report: every tab shows it, the row swapped and the marker moved, no reload.
    for handle in tabs:
        browser.switch_to.window(handle)
        browser.execute_script("window.__samePage = 'yes';")
    fl.health(LIVE, battery=41)
    fl.locate(LIVE, -8.11210, 112.18830, moving=True)
    battery_in_every_tab(browser, tabs, "41 %")
    for handle in tabs:
        browser.switch_to.window(handle)
        wait(browser, f"window.jaranijoFleet.marker('{LIVE}').lat < -8.11", timeout=5)
        assert browser.execute_script("return window.__samePage === 'yes';")
        assert "daring" in cell(browser, LIVE, "presence")
    browser.switch_to.window(tabs[2])
    screenshot(browser, "fleet-tabs-follower")
    followers = [stream_of(browser, h) for h in tabs[1:]]
    assert all(int(str(f["events"])) > 0 and f["opened"] == 0 for f in followers), followers
    last_id = str(followers[0]["lastEventId"])

    # The leader's tab closes: one of the others takes the lock and opens the stream,
    # from the last event it saw; the last two tabs still hold one stream between them.
    browser.switch_to.window(first)
    browser.close()
    tabs = tabs[1:]

    def leader_of(driver: WebDriver) -> str | bool:
        for handle in tabs:
            if stream_of(driver, handle)["role"] == "leader":
                return handle
        return False

    leader = str(WebDriverWait(browser, 15, poll_frequency=0.2).until(
        leader_of, "no tab took over the stream"))
    now = {h: stream_of(browser, h) for h in tabs}
    assert sorted(str(s["role"]) for s in now.values()) == ["follower", "leader"], now
    assert now[leader]["opened"] == 1, now
    # From the last event it saw (more may have come since last_id was read), not from
    # when its page was drawn.
    resumed = float(str(now[leader]["url"]).rsplit("?since=", 1)[1])
    assert resumed >= float(last_id), (now, last_id)
    browser.switch_to.window(leader)
    wait(browser, "document.getElementById('live').classList.contains('on')")

    fl.health(LIVE, battery=39)
    battery_in_every_tab(browser, tabs, "39 %")
    browser.switch_to.window(leader)
    screenshot(browser, "fleet-tabs-new-leader")
    assert not page_errors(browser)


def test_without_web_locks_each_tab_keeps_its_own_stream(
        office: Office, browser: WebDriver) -> None:  # noqa: F811
    # A browser with no Web Locks API (older ones): fleet.js must not wait for a leader.
    fl = office.fleet
    fl.at(None).birth(LIVE)
    fl.health(LIVE, battery=76)
    fl.locate(LIVE, -8.09870, 112.16790)
    fl.birth(OLD)
    fl.locate(OLD, -8.13510, 112.22040)
    log_in(browser, office)
    tabs = []
    for n in range(2):
        if n:
            browser.switch_to.new_window("tab")
        browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
            "source": "Object.defineProperty(Navigator.prototype, 'locks', "
                      "{get: function () { return undefined; }});"})
        browser.get(office.url + "/")
        wait(browser, "window.fleetStream && window.fleetStream.live")
        tabs.append(browser.current_window_handle)
    states = [stream_of(browser, h) for h in tabs]
    assert [(s["role"], s["opened"]) for s in states] == [("alone", 1), ("alone", 1)], states
    fl.health(LIVE, battery=41)
    battery_in_every_tab(browser, tabs, "41 %")
    assert not page_errors(browser)
