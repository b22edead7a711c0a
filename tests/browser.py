"""Headless Chromium for the office web app's browser tests, from Debian's packages.

``browser`` (a pytest fixture, one browser per test) and :func:`open_chromium`
(the same as a context manager) give a Selenium 4 ``webdriver.Chrome`` driving
Debian's ``/usr/bin/chromium`` through Debian's ``/usr/bin/chromedriver``::

    from tests.browser import browser, screenshot  # noqa: F401  (the fixture)

    def test_map(browser: WebDriver) -> None:
        browser.get(url)
        screenshot(browser, "map")  # -> artefacts/web/map.png

Both paths are given explicitly, so Selenium Manager is skipped and never
downloads a browser or a driver (``SE_OFFLINE=true`` is set as well, in case a
future Selenium calls it anyway). The flags keep Chromium off the network: the
machines this runs on have none, and without ``--disable-background-networking``
and friends Chromium keeps trying to reach Google. Each browser gets a fresh,
empty profile (``--user-data-dir`` in a temp folder), removed when it quits, and
Indonesian as its language (``--lang=id``, ``Accept-Language: id``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPO_ROOT = Path(__file__).resolve().parents[1]
ARTEFACTS = REPO_ROOT / "artefacts" / "web"
WINDOW_SIZE = (1280, 800)
LANGUAGE = "id"
MISSING = "install Debian's chromium and chromium-driver: ./bootstrap does"

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root (CI) has no usable sandbox; harmless as a normal user
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--no-default-browser-check",
    "--disable-default-apps",
    "--disable-extensions",
)


def chromium_options(user_data_dir: Path) -> webdriver.ChromeOptions:
    """The options for one headless Chromium with its profile in ``user_data_dir``."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.add_argument(f"--window-size={WINDOW_SIZE[0]},{WINDOW_SIZE[1]}")
    options.add_argument(f"--lang={LANGUAGE}")
    options.add_experimental_option("prefs", {"intl.accept_languages": LANGUAGE})
    return options


def _check_installed() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not found: {MISSING}", pytrace=False)


@contextlib.contextmanager
def open_chromium() -> Iterator[WebDriver]:
    """A headless Chromium with a fresh profile, quit and its profile removed on exit."""
    _check_installed()
    os.environ.setdefault("SE_OFFLINE", "true")
    profile = Path(tempfile.mkdtemp(prefix="jaranijo-chromium-"))
    try:
        driver = webdriver.Chrome(
            options=chromium_options(profile),
            service=Service(executable_path=str(CHROMEDRIVER)),
        )
        try:
            yield driver
        finally:
            driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """A headless Chromium for one test (see :func:`open_chromium`)."""
    with open_chromium() as driver:
        yield driver


def screenshot(driver: WebDriver, name: str) -> Path:
    """Save the visible page as ``artefacts/web/<name>.png`` and return its path."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ValueError(f"screenshot name must be a plain file stem, not {name!r}")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    if not driver.save_screenshot(str(path)):
        raise RuntimeError(f"Chromium could not save a screenshot to {path}")
    return path


# -- what every page test does -----------------------------------------------------------------
def log_in(driver: WebDriver, site: object, cookie: str | None = None) -> None:
    """Give the browser the session cookie ``cookie`` (default ``site.cookie``) for the web
    app at ``site.url``: a static file first, so the cookie has a page of that origin."""
    url = str(site.url)  # type: ignore[attr-defined]
    driver.get(url + "/static/office.css")
    driver.add_cookie({"name": "sessionid", "value": cookie or str(site.cookie),  # type: ignore[attr-defined]
                       "path": "/", "sameSite": "Strict"})


def wait(driver: WebDriver, what: str, timeout: float = 20) -> None:
    """Until the JavaScript expression ``what`` is truthy on the page."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: d.execute_script(f"return Boolean({what});"), what)


def click_for_next_page(driver: WebDriver, selector: str, then: str = "true",
                        timeout: float = 20) -> None:
    """Click the element the CSS ``selector`` finds (scrolled into view) and wait until a
    *new* page has loaded on which ``then`` holds.

    Waiting on ``then`` alone is a race when the page already on screen satisfies it (a
    second refused form over a first: the old ``#errors`` answers before the new page
    arrives); the page is tagged first and the tag must be gone."""
    element = driver.find_element("css selector", selector)
    driver.execute_script("window.__jaranijo_old_page = true; arguments[0].scrollIntoView();",
                          element)
    element.click()
    wait(driver, f"!window.__jaranijo_old_page && document.readyState === 'complete' && ({then})",
         timeout)


def text_of(driver: WebDriver, selector: str) -> str:
    """The text of the first element matching ``selector``, whitespace folded ("" if none)."""
    return str(driver.execute_script(
        "var e = document.querySelector(arguments[0]);"
        "return e ? e.textContent.replace(/\\s+/g, ' ').trim() : '';", selector))
