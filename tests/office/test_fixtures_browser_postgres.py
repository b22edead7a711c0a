"""The browser and PostgreSQL fixtures, with the real parts: Debian's Chromium and server.

(a) A page served by Python's http.server loads the vendored htmx, its SSE
extension and Leaflet (office/web/static/vendor/), draws a map with a marker
and swaps in a fragment with htmx; Chromium shows it (artefacts/web/fixture-smoke.png).
(b) psycopg 3 stores and reads back a bytea in the fixture's server, with fsync on.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import browser, screenshot  # noqa: F401  (browser is a fixture)
from tests.postgres import PostgresServer, postgres  # noqa: F401  (postgres is a fixture)

VENDOR = Path(__file__).resolve().parents[2] / "office" / "web" / "static" / "vendor"

PAGE = """\
<!doctype html>
<html lang="id">
<head>
<meta charset="utf-8">
<title>Jaran Ijo: fixture smoke</title>
<script>
  window.loadErrors = [];
  window.addEventListener("error", (e) => {
    window.loadErrors.push(e.message || (e.target && (e.target.src || e.target.href)) || "?");
  }, true);
</script>
<link rel="stylesheet" href="/static/vendor/leaflet/leaflet.css">
<script src="/static/vendor/htmx/htmx.min.js"></script>
<script src="/static/vendor/htmx/sse.js"></script>
<script src="/static/vendor/leaflet/leaflet.js"></script>
<style>
  body { font-family: sans-serif; margin: 16px; }
  #map { width: 900px; height: 560px; border: 1px solid #888; background: #e8efe4; }
</style>
</head>
<body hx-ext="sse">
<h1>Jaran Ijo &mdash; fixture smoke</h1>
<button id="ping" hx-get="/fragment.html" hx-target="#out" hx-swap="innerHTML">Periksa</button>
<span id="out">(belum)</span>
<div id="map"></div>
<script>
  const kit = [-7.2575, 112.7521];
  const map = L.map("map").setView(kit, 13);
  L.marker(kit).addTo(map).bindTooltip("Kit JI-0001", {permanent: true});
</script>
</body>
</html>
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 at a free port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_chromium_draws_vendored_htmx_and_leaflet(browser: WebDriver, tmp_path: Path) -> None:  # noqa: F811
    site = tmp_path / "site"
    shutil.copytree(VENDOR, site / "static" / "vendor")
    (site / "index.html").write_text(PAGE)
    (site / "fragment.html").write_text("<b id='pong'>htmx berjalan</b>")

    with serve(site) as base:
        browser.get(f"{base}/index.html")
        wait = WebDriverWait(browser, 10)
        marker = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".leaflet-marker-icon"))
        # The icon's PNG came from images/ next to leaflet.css (Leaflet finds it through the CSS).
        wait.until(lambda d: d.execute_script("return arguments[0].naturalWidth > 0", marker))
        assert "/static/vendor/leaflet/images/marker-icon.png" in marker.get_attribute("src")

        assert browser.execute_script("return typeof window.htmx") == "object"
        assert browser.execute_script("return typeof window.L") == "object"
        assert browser.execute_script("return htmx.version").startswith("2.")
        assert browser.execute_script("return L.version").startswith("1.9.")

        browser.find_element(By.ID, "ping").click()  # htmx really swaps a fragment in
        pong = wait.until(lambda d: d.find_element(By.ID, "pong"))
        assert pong.text == "htmx berjalan"

        assert browser.execute_script("return navigator.language") == "id"
        assert browser.execute_script("return window.loadErrors") == []
        assert browser.get_window_size()["width"] == 1280
        path = screenshot(browser, "fixture-smoke")

    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_postgres_stores_bytea_with_fsync_on(postgres: PostgresServer) -> None:  # noqa: F811
    blob = bytes(range(256)) * 4 + b"\x00 Jaran Ijo \xff"
    with psycopg.connect(postgres.conninfo()) as conn:
        assert conn.execute("SHOW fsync").fetchone() == ("on",)
        assert conn.execute("SELECT current_database()").fetchone() == ("jaranijo_test",)
        conn.execute("CREATE TABLE smoke (id serial PRIMARY KEY, body bytea NOT NULL)")
        (row_id,) = conn.execute(
            "INSERT INTO smoke (body) VALUES (%s) RETURNING id", (blob,)
        ).fetchone() or (None,)
        conn.commit()

    # A second connection, over the unix socket this time, reads it back.
    with psycopg.connect(
        host=str(postgres.socket_dir), port=postgres.port, user=postgres.user,
        dbname=postgres.dbname,
    ) as conn:  # fmt: skip
        read = conn.execute("SELECT body FROM smoke WHERE id = %s", (row_id,)).fetchone()
        assert read == (blob,)
        conn.execute("DROP TABLE smoke")

    settings = postgres.django_settings()
    assert settings == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "jaranijo_test",
        "USER": postgres.user,
        "HOST": "127.0.0.1",
        "PORT": str(postgres.port),
    }
    assert postgres.start_seconds < 10, f"PostgreSQL took {postgres.start_seconds:.1f} s to start"
