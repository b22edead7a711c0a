"""Fleet monitor figures: the home page with 1,000 kits, and how fast a change reaches it.

Runs ``jaranijo office web`` (uvicorn, its own process) over a SQLite office database of
1,000 kits written as the ingest writes them, and prints:

* server time of ``/`` (median of several requests, over HTTP on localhost), against a
  baseline of the same queries without rendering (the ``kits`` and ``assignments`` reads
  the view makes), and the Python time of judging the rows (staleness, ages);
* time until headless Chromium has drawn the page, from navigation start (median of
  several loads, 2 s apart so that a load does not meet the previous page's stream
  opening). "Drawn" is the later of DOMContentLoaded's end and the page's own
  ``fleet-drawn`` performance mark, which ``fleet.js`` sets in the second animation frame
  after placing every marker on the map's canvas: by then a frame with all the markers and
  the table laid out has been painted. The parts are printed too (server's answer, HTML
  received, parsed, scripts run);
* live update delay: from a health report handed to the real receiver (committed as the
  ingest commits) to the new battery value in a page's row, median and worst over several
  reports, (a) with 20 tabs of one Chromium open, which share one event stream (one tab
  leads and passes the events on), every tab's delay counted; (b) with one Chromium page
  and 19 more office PCs' streams (plain HTTP readers: 20 Chromiums would be 20 PCs' worth
  of work on this one machine), 20 streams at the server.

    .venv/bin/python -m tests.bench.bench_fleet_page

Before the canvas markers, grid rows and the shared stream (2026-12-01, same machine):
GET / 146 ms; drawn 3.0-8.3 s; live delay 381 ms median, worst 3.7 s, 20 pages.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

KITS = 1000
REQUESTS = 9
PAGES = 20
UPDATES = 12
LOADS = 7


def kit_id(i: int) -> str:
    return f"blitar-kit-{i:04d}"


def fill(db: object, now: float) -> None:
    """1,000 kits: birth, health and location as :mod:`office.ingest` stores them."""
    from office.db import OfficeDb

    assert isinstance(db, OfficeDb)
    with db.transaction():
        for i in range(KITS):
            ago = 0 if i % 5 else 3000  # every fifth kit last heard 50 minutes ago
            at = now - ago - i % 60
            status = {"online": i % 7 != 0, "session": 3, "tst": int(at), "software": "0.3.1",
                      "reason": "" if i % 7 else "lost",
                      "security": "software" if i % 50 == 0 else "tpm"}
            health = {"tst": int(at), "session": 3, "battery_percent": 20 + i % 80,
                      "battery_state": 1 + i % 3, "registered": True, "access_tech": "LTE",
                      "operator": "Telkomsel", "rssi_dbm": -70, "rsrp_dbm": -80 - i % 40,
                      "sinr_db": 9.5, "fix_age_s": 4, "outbox_count": i % 4,
                      "outbox_oldest_s": 60 * (i % 4) or None, "software": "0.3.1"}
            location = {"_type": "location", "tid": f"{i % 100:02d}", "tst": int(at),
                        "lat": round(-8.25 + (i % 40) * 0.01, 5),
                        "lon": round(112.0 + (i // 40) * 0.016, 5), "acc": 6, "batt": 20 + i % 80,
                        "bs": 1, "conn": "m", "t": "p"}
            db.set_kit(kit_id(i), online=int(status["online"]), session=3,
                       status=json.dumps(status), status_at=at, health=json.dumps(health),
                       health_at=at, location=json.dumps(location), location_at=at,
                       last_seen=at)


class Stream(threading.Thread):
    """Another office PC's page: its event stream, read as it comes; notes when the row of
    the kit it is told to expect arrives with the expected battery."""

    def __init__(self, url: str, cookie: str) -> None:
        super().__init__(daemon=True)
        self.url, self.cookie = url, cookie
        self.open = False
        self.seen: float | None = None
        self.sent = 0.0
        self._want: tuple[str, str] = ("", "")
        self._stop = threading.Event()

    def expect(self, kit: str, battery: int) -> None:
        self.seen = None
        self.sent = time.time()
        self._want = (f'id="kit-{kit}"', f'data-field="battery">{battery} %')

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        host, port = self.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        conn.request("GET", f"/fleet/events?since={time.time():.3f}",
                     headers={"Cookie": f"sessionid={self.cookie}",
                              "Accept": "text/event-stream"})
        response = conn.getresponse()
        self.open = response.status == 200
        current = ""
        while not self._stop.is_set():
            line = response.readline().decode()
            if not line:
                break
            if 'id="kit-' in line:
                current = line
            kit, battery = self._want
            if self.seen is None and kit and kit in current and battery in line:
                self.seen = time.time()
        conn.close()


# fleet.js's marks and the browser's navigation timing, read once the page is drawn.
DRAWN_JS = """
    var done = arguments[arguments.length - 1];
    (function check() {
      var s = window.jaranijoFleet, n = performance.getEntriesByType('navigation')[0];
      var mark = performance.getEntriesByName('fleet-drawn')[0];
      if (s && mark && n && n.domContentLoadedEventEnd > 0) {
        done({drawn: Math.max(mark.startTime, n.domContentLoadedEventEnd),
              request: n.requestStart, response: n.responseStart, received: n.responseEnd,
              parsed: n.domInteractive, dcl: n.domContentLoadedEventEnd,
              markers: s.markers.size,
              rows: document.querySelectorAll('#fleet-rows tr').length});
      } else { setTimeout(check, 10); }
    })();"""

# Each row the page swaps in (or appends) for a kit the bench will report on, with when.
WATCH_JS = """
    var ids = new Set(arguments[0]);
    window.__rows = [];
    new MutationObserver(function (records) {
      var t = performance.timeOrigin + performance.now();
      records.forEach(function (r) { r.addedNodes.forEach(function (n) {
        if (n.id && ids.has(n.id)) {
          var b = n.querySelector('td.battery .value');
          window.__rows.push([n.id, b ? b.textContent.trim() : '', t]);
        }
      }); });
    }).observe(document.getElementById('fleet-rows'), {childList: true});"""


def seen_at(rows: list[list[object]], kit: str, battery: int, sent: float) -> float | None:
    """When a page's log shows ``kit``'s row with ``battery``, reported at ``sent``."""
    for row_id, text, t in rows:
        if row_id == f"kit-{kit}" and text == f"{battery} %" and float(str(t)) / 1000 >= sent:
            return float(str(t)) / 1000 - sent
    return None


def summary(delays: list[float], asked: int) -> str:
    if not delays:
        return "none seen within 20 s"
    return (f"median {statistics.median(delays) * 1000:.0f} ms, worst {max(delays) * 1000:.0f}"
            f" ms ({len(delays)} of {asked} seen)")


def hover_and_look(driver: object) -> str:
    """Screenshots of the page with 1,000 kits (artefacts/web/): a marker hovered, and the
    table scrolled to its middle (rows drawn as they come on screen). The label shown."""
    from selenium.webdriver.chrome.webdriver import WebDriver
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from tests.browser import screenshot

    assert isinstance(driver, WebDriver)
    x, y = driver.execute_script(
        "var s = window.jaranijoFleet, p = s.map.latLngToContainerPoint("
        "s.markers.get(arguments[0]).getLatLng()), r = document.getElementById('fleet-map')"
        ".getBoundingClientRect(); return [p.x - r.width / 2, p.y - r.height / 2];",
        kit_id(KITS // 2 + 20))
    ActionChains(driver).move_to_element_with_offset(
        driver.find_element(By.ID, "fleet-map"), int(x), int(y)).perform()
    label = ""
    deadline = time.monotonic() + 5
    while not label and time.monotonic() < deadline:
        label = str(driver.execute_script(
            "var t = document.querySelector('.leaflet-tooltip.kit-label');"
            "return t ? t.textContent : '';"))
        time.sleep(0.05)
    screenshot(driver, "fleet-1000")
    driver.execute_script("document.getElementById('kit-' + arguments[0]).scrollIntoView();",
                          kit_id(KITS // 2))
    time.sleep(0.3)
    screenshot(driver, "fleet-1000-table")
    driver.execute_script("window.scrollTo(0, 0);")
    return label


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    os.environ["JARANIJO_OFFICE_DB"] = str(root / "office.db")  # this process reads it too
    os.environ["JARANIJO_OFFICE_DATA"] = str(root / "web")
    from office.db import setup_django

    setup_django()
    from selenium.webdriver.chrome.webdriver import WebDriver

    from office.models import Assignment, Kit
    from office.web import fleet as f
    from tests.browser import open_chromium
    from tests.office.web.fleet_helpers import (
        Fleet,
        make_user,
        session_cookie,
        write_secret_key,
    )
    from tests.office.web.server import running_web

    bench = Fleet(root)
    key = write_secret_key(root / "web")
    fill(bench.db, time.time())
    cookie = session_cookie(bench.db, make_user(bench.db, "bench"), key)

    # Baseline: the view's queries, no rendering; and the rows judged, still no template.
    def queries() -> None:
        list(Kit.objects.order_by("kit_id"))
        list(Assignment.objects.filter(delivered_at__isnull=True).defer("envelope"))

    base, judge = [], []
    for _ in range(REQUESTS):
        t = time.perf_counter()
        queries()
        base.append(time.perf_counter() - t)
        t = time.perf_counter()
        f.fleet_views(time.time())
        judge.append(time.perf_counter() - t)

    def report(driver: WebDriver, updates: list[tuple[str, int]], tabs: list[str],
               settle: float) -> list[float]:
        """Send each health report, wait until the current tab shows it (and ``settle``
        seconds more for the others), then read every tab's log: the delays."""
        sent_at: list[float] = []
        for kit, battery in updates:
            sent = time.time()
            bench.health(kit, battery=battery)
            sent_at.append(sent)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and seen_at(
                    driver.execute_script("return window.__rows;"), kit, battery, sent) is None:
                time.sleep(0.02)
            time.sleep(settle)
        out: list[float] = []
        for handle in tabs:
            driver.switch_to.window(handle)
            rows = driver.execute_script("return window.__rows;")
            for (kit, battery), sent in zip(updates, sent_at, strict=True):
                delay = seen_at(rows, kit, battery, sent)
                if delay is not None:
                    out.append(delay)
        return out

    watched = [f"kit-{kit_id(i)}" for i in range(KITS)]
    tab_updates = [(kit_id(1 + n * 37 % (KITS - 1)), 1 + n) for n in range(UPDATES)]
    pc_updates = [(kit_id(500 + n * 41 % (KITS - 501)), 1 + n) for n in range(UPDATES)]
    with running_web(root / "office.db", root / "web") as url:
        served, size = [], 0
        for i in range(REQUESTS + 1):
            request = urllib.request.Request(url + "/", headers={"Cookie": f"sessionid={cookie}"})
            t = time.perf_counter()
            with urllib.request.urlopen(request, timeout=60) as r:
                body = r.read()
            if i:  # the first warms the server's imports and templates
                served.append(time.perf_counter() - t)
            size = len(body)
        with open_chromium() as driver:
            driver.set_script_timeout(60)
            driver.get(url + "/static/office.css")
            driver.add_cookie({"name": "sessionid", "value": cookie, "path": "/"})
            loads = []
            for n in range(LOADS):
                if n:  # the last page's stream has opened, and the server sent its rows
                    time.sleep(2)
                driver.get(url + "/")
                load = driver.execute_async_script(DRAWN_JS)
                assert load["markers"] == KITS and load["rows"] == KITS, load
                loads.append(load)
            hovered = hover_and_look(driver)

            # (a) 20 tabs of this Chromium: one stream between them.
            tabs = [driver.current_window_handle]
            driver.execute_script(WATCH_JS, watched)
            for _ in range(PAGES - 1):
                driver.switch_to.new_window("tab")
                driver.get(url + "/")
                driver.execute_async_script(DRAWN_JS)
                driver.execute_script(WATCH_JS, watched)
                tabs.append(driver.current_window_handle)
            roles: list[str] = []
            opened = 0
            for handle in tabs:
                driver.switch_to.window(handle)
                driver.execute_async_script("""
                    var done = arguments[arguments.length - 1];
                    (function check() {
                      var s = window.fleetStream;
                      if (s && s.role !== 'starting' && (s.role === 'follower' || s.live)) {
                        done(true); } else { setTimeout(check, 20); }
                    })();""")
                state = driver.execute_script("return [window.fleetStream.role, "
                                              "window.fleetStream.opened];")
                roles.append(state[0])
                opened += int(state[1])
            time.sleep(1)
            tab_delays = report(driver, tab_updates, tabs, settle=1.0)
            for handle in tabs[1:]:
                driver.switch_to.window(handle)
                driver.close()
            driver.switch_to.window(tabs[0])

            # (b) One Chromium page and 19 other office PCs' streams: 20 at the server.
            others = [Stream(url, cookie) for _ in range(PAGES - 1)]
            for other in others:
                other.start()
            driver.get(url + "/")
            driver.execute_async_script(DRAWN_JS)
            driver.execute_script(WATCH_JS, watched)
            driver.execute_async_script("""
                var done = arguments[arguments.length - 1];
                (function check() {
                  if (window.fleetStream && window.fleetStream.live) { done(true); }
                  else { setTimeout(check, 20); }
                })();""")
            deadline = time.monotonic() + 30
            while not all(o.open for o in others) and time.monotonic() < deadline:
                time.sleep(0.05)
            delays: list[float] = []
            streamed: list[float] = []
            missed = 0
            for kit, battery in pc_updates:
                for other in others:
                    other.expect(kit, battery)
                delays += report(driver, [(kit, battery)], [tabs[0]], settle=0.5)
                streamed += [o.seen - o.sent for o in others if o.seen is not None]
                missed += sum(o.seen is None for o in others)
            for other in others:
                other.stop()

    ms = 1000
    drawn = sorted(load["drawn"] for load in loads)
    mid = min(loads, key=lambda load: abs(load["drawn"] - statistics.median(drawn)))
    print(f"fleet monitor bench ({KITS} kits, SQLite, uvicorn on localhost, headless Chromium)")
    print(f"  GET / : median {statistics.median(served) * ms:.0f} ms over {len(served)} requests "
          f"({size / 1024:.0f} KiB of HTML); baseline, the same queries without rendering: "
          f"{statistics.median(base) * ms:.1f} ms; rows judged (staleness, ages), no template: "
          f"{statistics.median(judge) * ms:.1f} ms")
    print(f"  Chromium, navigation start to drawn (table laid out, {KITS} markers on the canvas,"
          f" painted): median {statistics.median(drawn):.0f} ms over {len(drawn)} loads "
          f"(of {', '.join(f'{d:.0f}' for d in drawn)})")
    print(f"    the median load's parts: server answered {mid['response'] - mid['request']:.0f} "
          f"ms, HTML received {mid['received']:.0f} ms, parsed {mid['parsed']:.0f} ms, "
          f"scripts and DOMContentLoaded {mid['dcl']:.0f} ms, drawn {mid['drawn']:.0f} ms")
    client = sorted(load["drawn"] - load["received"] for load in loads)
    print(f"    in the browser alone (HTML received to drawn): median "
          f"{statistics.median(client):.0f} ms (of {', '.join(f'{d:.0f}' for d in client)})")
    print(f"    a marker hovered shows: {hovered!r} (screenshots: artefacts/web/fleet-1000*.png)")
    print(f"  live update, health report into the receiver -> row changed (poll every "
          f"{f.POLL_S:.1f} s):")
    print(f"    (a) {PAGES} tabs of one Chromium ({roles.count('leader')} leader, "
          f"{roles.count('follower')} followers, {opened} stream opened in all), every tab: "
          f"{summary(tab_delays, len(tab_updates) * len(tabs))}")
    print(f"    (b) one Chromium page, {PAGES - 1} more PCs' streams ({PAGES} at the server): "
          f"the page {summary(delays, len(pc_updates))}")
    print(f"        at the other {PAGES - 1} streams: {summary(streamed, len(streamed) + missed)}")


if __name__ == "__main__":
    main()
