"""Record page figures: one complete 10-finger record opened by an operator.

Runs ``jaranijo office web --keys --kits`` (uvicorn, its own process) over a SQLite office
database holding one record sealed and signed as a kit seals it (face 640 x 480 JPEG, ten
256 x 288 prints at 500 ppi, a signature, a GNSS fix), and prints, each the median of 20
over HTTP on localhost:

* the record page's HTML (``/records/<kit>/<record>/``: verify + decrypt + render);
* the whole page as the browser asks for it: the HTML and its 12 thumbnails (photo, ten
  fingers, signature), fetched one after the other, each a verify + decrypt + Pillow
  scale in memory (nothing is cached between requests, by design);
* one thumbnail request alone;
* as an HTTP baseline, a static file from the same server;

against baselines measured in this same run, in this process: the time to just verify
and decrypt the stored record (:meth:`office.records.RecordBook.open`, what every one of
those requests does first) and the time to scale its twelve images with Pillow.

    .venv/bin/python -m tests.bench.bench_record_page
"""

from __future__ import annotations

import os
import statistics
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.bench import timings

RUNS = 20


def median_ms(fn: Callable[[], object], runs: int = RUNS) -> float:
    return statistics.median(timings(fn, runs)[0]) * 1e3


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-records-"))
    os.environ["JARANIJO_OFFICE_DATA"] = str(root / "web")
    from office.db import setup_django

    setup_django()
    from office.records import RecordBook
    from office.web.records import image_bytes, thumbnail
    from sync.domain import RecordedFix
    from sync.envelope import OfficeKeys
    from tests.office.records_helpers import KIT, RecordOffice, recording
    from tests.office.web.fleet_helpers import make_user, session_cookie, write_secret_key
    from tests.office.web.server import running_web

    office = RecordOffice(root)
    rec = recording(0)
    rec.gnss = RecordedFix(lat=-8.1178, lon=112.2241, accuracy_m=6.5, altitude_m=None,
                           time_utc=rec.started_at, satellites=9, hdop=0.9)
    record_id = office.store(rec)
    size = len(office.seal(rec))
    key = write_secret_key(root / "web")
    cookie = session_cookie(office.db, make_user(office.db, "operator.bench", perms=(
        "view_fleet", "view_personal")), key)

    book = RecordBook(OfficeKeys.load(office.keys_dir), office.kits_dir, using=office.db.alias)
    parts = ["photo", *(f"finger-{n}" for n in range(1, 11)), "signature"]
    t_open = median_ms(lambda: book.open(KIT, record_id))
    opened = book.open(KIT, record_id).recording

    def scale_all() -> None:
        for part in parts:
            found = image_bytes(opened, part)
            assert found is not None
            thumbnail(*found)

    t_scale = median_ms(scale_all)

    def fetch(url: str) -> bytes:
        request = urllib.request.Request(url, headers={"Cookie": f"sessionid={cookie}"})
        with urllib.request.urlopen(request, timeout=30) as r:
            assert r.status == 200, url
            return bytes(r.read())

    with running_web(root / "office.db", root / "web",
                     args=("--keys", str(office.keys_dir), "--kits",
                           str(office.kits_dir))) as url:
        page = f"{url}/records/{KIT}/{record_id}/"
        html = fetch(page)  # the first opening indexes it; then warm
        assert b"finger-10?thumb=1" in html
        fetch(f"{url}/records/")
        t_static = median_ms(lambda: fetch(f"{url}/static/office.css"))
        t_html = median_ms(lambda: fetch(page))
        t_thumb = median_ms(lambda: fetch(page + "image/finger-1?thumb=1"))

        def whole_page() -> None:
            fetch(page)
            for part in parts:
                fetch(f"{page}image/{part}?thumb=1")

        t_page = median_ms(whole_page)

    print(f"record: 10 fingers, photo 640x480, signature; sealed {size / 1024:.0f} KiB")
    print(f"baseline: verify + decrypt (RecordBook.open)  {t_open:8.1f} ms  (in process)")
    print(f"baseline: scale 12 images with Pillow         {t_scale:8.1f} ms  (in process)")
    print(f"baseline: GET /static/office.css (HTTP)       {t_static:8.1f} ms")
    print(f"GET record page HTML                          {t_html:8.1f} ms  (median of {RUNS})")
    print(f"GET one thumbnail                             {t_thumb:8.1f} ms")
    print(f"record page + 12 thumbnails, one by one       {t_page:8.1f} ms  "
          f"= {t_page / max(t_open, 1e-9):.1f} x one decrypt")


if __name__ == "__main__":
    main()
