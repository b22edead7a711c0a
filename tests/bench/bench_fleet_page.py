"""Fleet monitor figures: the home page with 1,000 kits, and how fast a change reaches it.

Runs ``jaranijo office web`` (uvicorn, its own process) over a SQLite office database of
1,000 kits written as the ingest writes them, and prints:

* server time of ``/`` (median of several requests, over HTTP on localhost), against a
  baseline of the same queries without rendering (the ``kits`` and ``assignments`` reads
  the view makes), and the Python time of judging the rows (staleness, ages);
* time until headless Chromium has drawn the page (table and 1,000 markers, one frame
  painted after), from navigation start;
* live update delay: from a health report handed to the real receiver (committed as the
  ingest commits) to the new battery value in the page's row, with 20 pages open (tabs
  of one Chromium, each with its own event stream), median and worst of several.

    .venv/bin/python -m tests.bench.bench_fleet_page
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
        self._want: tuple[str, str] = ("", "")
        self._stop = threading.Event()

    def expect(self, kit: str, battery: int) -> None:
        self.seen = None
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


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    os.environ["JARANIJO_OFFICE_DB"] = str(root / "office.db")  # this process reads it too
    os.environ["JARANIJO_OFFICE_DATA"] = str(root / "web")
    from office.db import setup_django

    setup_django()
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
            drawn = []
            for _ in range(3):
                driver.get(url + "/")
                drawn.append(driver.execute_async_script("""
                    var done = arguments[arguments.length - 1], n = arguments[0];
                    (function check() {
                      var s = window.jaranijoFleet;
                      if (s && s.markers.size === n && document.querySelectorAll(
                          '#fleet-rows tr').length === n) {
                        requestAnimationFrame(function () { requestAnimationFrame(function () {
                          done(performance.now()); }); });
                      } else { setTimeout(check, 10); }
                    })();""", KITS))
            # One browser holds at most 6 connections to a host (HTTP/1.1), so 20 pages
            # are 20 office PCs: this one measured in Chromium, 19 more as plain streams.
            others = [Stream(url, cookie) for _ in range(PAGES - 1)]
            for other in others:
                other.start()
            driver.get(url + "/")
            driver.execute_async_script("""
                var done = arguments[arguments.length - 1];
                (function check() {
                  var l = document.getElementById('live');
                  if (l && l.classList.contains('on')) { done(true); }
                  else { setTimeout(check, 20); }
                })();""")
            deadline = time.monotonic() + 30
            while not all(o.open for o in others) and time.monotonic() < deadline:
                time.sleep(0.05)
            delays: list[float] = []
            streamed: list[float] = []
            missed = 0
            for n in range(UPDATES):
                kit = kit_id(1 + n * 37 % (KITS - 1))
                battery = 1 + n  # a value no kit shows yet
                driver.execute_script("""
                    window.__seen = null;
                    var want = arguments[1] + ' %';
                    var id = arguments[0];
                    window.__obs && window.__obs.disconnect();
                    window.__obs = new MutationObserver(function () {
                      var c = document.querySelector('#kit-' + id + ' td.battery');
                      if (c && c.textContent.indexOf(want) >= 0 && window.__seen === null) {
                        window.__seen = performance.timeOrigin + performance.now();
                      }
                    });
                    window.__obs.observe(document.getElementById('fleet-rows'),
                                         {childList: true, subtree: true, characterData: true});
                    """, kit, battery)
                for other in others:
                    other.expect(kit, battery)
                sent = time.time()
                bench.health(kit, battery=battery)
                seen = None
                deadline = time.monotonic() + 20
                while seen is None and time.monotonic() < deadline:
                    time.sleep(0.02)
                    seen = driver.execute_script("return window.__seen;")
                if seen is not None:
                    delays.append(seen / 1000 - sent)
                time.sleep(0.5)
                streamed += [o.seen - sent for o in others if o.seen is not None]
                missed += sum(o.seen is None for o in others)
            for other in others:
                other.stop()
    ms = 1000
    print(f"fleet monitor bench ({KITS} kits, SQLite, uvicorn on localhost, headless Chromium)")
    print(f"  GET / : median {statistics.median(served) * ms:.0f} ms over {len(served)} requests "
          f"({size / 1024:.0f} KiB of HTML); baseline, the same queries without rendering: "
          f"{statistics.median(base) * ms:.1f} ms; rows judged (staleness, ages), no template: "
          f"{statistics.median(judge) * ms:.1f} ms")
    print(f"  Chromium, navigation to table and {KITS} markers drawn: median "
          f"{statistics.median(drawn):.0f} ms (of {', '.join(f'{d:.0f}' for d in drawn)})")
    if delays:
        print(f"  live update, health report into the receiver -> row changed, {PAGES} pages "
              f"open: median {statistics.median(delays) * ms:.0f} ms, worst "
              f"{max(delays) * ms:.0f} ms over {len(delays)} of {UPDATES} updates "
              f"(poll every {f.POLL_S:.1f} s)")
    else:
        print("  live update: no change seen within 20 s")
    if streamed:
        print(f"  the same, at the other {PAGES - 1} pages' event streams: median "
              f"{statistics.median(streamed) * ms:.0f} ms, worst {max(streamed) * ms:.0f} ms "
              f"({missed} not seen within 0.5 s of the Chromium page)")


if __name__ == "__main__":
    main()
