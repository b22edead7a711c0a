"""Accounts, roles and the audit log, as office staff meet them: the real web server
(``jaranijo office web`` in its own process, :func:`running_web`) over a SQLite file, seen
in headless Chromium where a person looks at it and through plain HTTP (a cookie jar, the
CSRF token read from the login form) for the permission matrix. What the server wrote to
the audit log is read back from the same database through the models."""

from __future__ import annotations

import http.cookiejar
import re
import secrets
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from office.db import OfficeDb
from tests.browser import browser, screenshot  # noqa: F401  (the fixture)
from tests.office.web.server import running_web
from tests.postgres import PostgresServer

PASSWORD = "kuda-hijau-blitar-2026"
ROLES = ("viewer", "operator", "scheduler", "head", "admin")
# What each role may do, written out here rather than read from office.web.roles.
MAY: dict[str, set[str]] = {
    "viewer": {"office.view_fleet"},
    "operator": {"office.view_fleet", "office.view_personal", "office.export_records"},
    "scheduler": {"office.view_fleet", "office.schedule_visits", "office.register_requests",
                  "office.checkout_kits", "office.view_visit", "office.view_village",
                  "office.change_village"},
    "head": {"office.view_fleet", "office.view_personal", "office.export_records",
             "office.schedule_visits", "office.command_kit", "office.wipe_kit",
             "office.view_auditentry", "office.change_alertsettings",
             "office.add_workingdayoverride", "office.change_workingdayoverride",
             "office.delete_workingdayoverride", "office.view_workingdayoverride",
             "office.change_clocksettings", "office.register_requests",
             "office.disposition_requests", "office.checkout_kits", "office.view_visit",
             "office.view_village", "office.change_village"},
}
OFFICE_PERMS = {"office.view_fleet", "office.view_personal", "office.export_records",
                "office.schedule_visits", "office.command_kit", "office.wipe_kit",
                "office.view_auditentry"}
WIB = ZoneInfo("Asia/Jakarta")


@dataclass
class Site:
    url: str
    db: OfficeDb
    users: list[str] = field(default_factory=list)

    def add_user(self, name: str, role: str | None = None) -> str:
        from django.contrib.auth.models import Group, User

        user = User.objects.db_manager(self.db.alias).create_user(name, password=PASSWORD)
        if role:
            user.groups.add(Group.objects.using(self.db.alias).get(name=role))
        return name

    def entries(self, **filters: Any) -> list[Any]:
        from office.models import AuditEntry

        return list(AuditEntry.objects.using(self.db.alias).filter(**filters).order_by("id"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One office web server per test module, with one user in each role."""
    folder = tmp_path_factory.mktemp("office-web")
    db = OfficeDb.open(folder / "office.db")
    s = Site("", db)
    for role in ROLES:
        s.add_user(role, role)
    with running_web(folder / "office.db", folder / "data") as url:
        s.url = url
        yield s
    db.close()


# -- plain HTTP, as a browser would speak it --------------------------------------------
@dataclass
class Reply:
    status: int
    headers: Any
    body: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Client:
    """One browser session: a cookie jar, redirects not followed (so they can be seen)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)

    def request(self, method: str, path: str, data: dict[str, str] | None = None) -> Reply:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers={"Accept-Language": "id",
                                              "User-Agent": "jaranijo-test/1"})
        try:
            with self.opener.open(req, timeout=15) as resp:
                return Reply(resp.status, resp.headers, resp.read().decode())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.headers, exc.read().decode())

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def token(self, path: str = "/login/") -> str:
        page = self.get(path).body
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert match, page
        return match.group(1)

    def login(self, username: str, password: str = PASSWORD) -> Reply:
        return self.request("POST", "/login/", {
            "csrfmiddlewaretoken": self.token(), "username": username, "password": password})

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def set_cookie(self, name: str, value: str) -> None:
        host = urllib.parse.urlsplit(self.base).hostname or ""
        self.jar.set_cookie(http.cookiejar.Cookie(
            0, name, value, None, False, host, False, False, "/", True, False, None, False,
            None, None, {}))


# -- the login page in Chromium -----------------------------------------------------------
def _login_in_browser(driver: WebDriver, username: str, password: str) -> None:
    driver.find_element(By.ID, "id_username").clear()
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(password)
    button = driver.find_element(By.ID, "login-submit")
    button.click()
    # the next page has loaded. Asked mid-navigation, chromedriver may answer "Node with
    # given id does not belong to the document" (a WebDriverException, not a stale
    # element): that asks again, and the next answer is the stale element.
    WebDriverWait(driver, 10, ignored_exceptions=(WebDriverException,)).until(
        ec.staleness_of(button))


def test_login_wrong_password_login_and_logout_in_chromium(
        site: Site, browser: WebDriver) -> None:  # noqa: F811
    name = site.add_user("petugas-chrome", "viewer")
    browser.get(site.url + "/login/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Masuk ke kantor Jaran Ijo"
    assert browser.find_element(By.CSS_SELECTOR, "label[for=id_username]").text == "Nama pengguna"
    assert not browser.find_elements(By.ID, "first-user")  # users exist: no how-to
    screenshot(browser, "login")

    _login_in_browser(browser, name, "salah-sekali-123")
    error = WebDriverWait(browser, 10).until(
        ec.visibility_of_element_located((By.ID, "login-error")))
    assert error.text == "Nama pengguna atau kata sandi salah."
    assert browser.find_element(By.ID, "id_username").get_attribute("value") == name
    screenshot(browser, "login-wrong")

    _login_in_browser(browser, name, PASSWORD)
    WebDriverWait(browser, 10).until(lambda d: "/login/" not in d.current_url)
    assert browser.find_element(By.CSS_SELECTOR, "header .who").text == name
    assert not browser.find_elements(By.LINK_TEXT, "Log audit")  # a viewer has no audit link
    browser.find_element(By.XPATH, "//header//button[text()='Keluar']").click()
    WebDriverWait(browser, 10).until(lambda d: "/login/" in d.current_url)
    browser.get(site.url + "/audit/")
    assert urllib.parse.urlsplit(browser.current_url).path == "/login/"  # logged out

    failed = site.entries(username=name, action="login_failed")
    assert len(failed) == 1 and failed[0].ip == "127.0.0.1"
    assert "HeadlessChrome" in failed[0].user_agent or "Chrome" in failed[0].user_agent
    assert [e.action for e in site.entries(username=name)] == [
        "login_failed", "login", "logout"]
    login = site.entries(username=name, action="login")[0]
    assert login.roles == "viewer"
    for entry in site.entries(username=name):
        assert "salah-sekali" not in entry.detail and PASSWORD not in entry.detail


def test_lockout_after_five_wrong_passwords_even_the_right_one(
        site: Site, browser: WebDriver) -> None:  # noqa: F811
    name = site.add_user("petugas-kunci", "head")
    browser.get(site.url + "/login/")
    for _ in range(5):
        _login_in_browser(browser, name, "bukan-sandinya-42")
    started = datetime.now(WIB)
    _login_in_browser(browser, name, PASSWORD)  # the right one, now too late
    locked = WebDriverWait(browser, 10).until(
        ec.visibility_of_element_located((By.ID, "locked")))
    assert "dikunci" in locked.text
    shown = re.search(r"setelah pukul (\d\d):(\d\d) WIB", locked.text)
    assert shown, locked.text
    expected = started + timedelta(minutes=15)
    at = expected.replace(hour=int(shown[1]), minute=int(shown[2]), second=0, microsecond=0)
    assert abs((at - expected).total_seconds()) < 120, (locked.text, expected)
    screenshot(browser, "login-locked")
    browser.get(site.url + "/audit/")
    assert urllib.parse.urlsplit(browser.current_url).path == "/login/"  # not let in

    # Plain HTTP from the same address: still refused, with the right password too.
    reply = Client(site.url).login(name)
    assert reply.status == 429 and "dikunci" in reply.body
    actions = [e.action for e in site.entries(username=name)]
    assert "lockout" in actions and "login" not in actions
    assert actions.count("login_failed") >= 6


def test_english_switch_on_the_login_page(
        site: Site, browser: WebDriver) -> None:  # noqa: F811
    browser.get(site.url + "/login/")
    browser.find_element(By.XPATH, "//button[text()='English']").click()
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.TAG_NAME, "h1").text == "Log in to the Jaran Ijo office")
    _login_in_browser(browser, "nobody-here", "whatever-it-is-1")
    error = WebDriverWait(browser, 10).until(
        ec.visibility_of_element_located((By.ID, "login-error")))
    assert error.text == "Wrong user name or password."
    assert browser.find_element(By.XPATH, "//button[text()='Bahasa Indonesia']")
    screenshot(browser, "login-en")


def test_audit_page_and_refusal_page_in_chromium(
        site: Site, browser: WebDriver) -> None:  # noqa: F811
    viewer = site.add_user("pemantau-chrome", "viewer")
    browser.get(site.url + "/login/")
    _login_in_browser(browser, viewer, PASSWORD)
    browser.get(site.url + "/audit/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Akses ditolak"
    assert "Pemantau" in browser.find_element(By.ID, "forbidden").text  # the role, in words
    screenshot(browser, "forbidden")
    browser.find_element(By.XPATH, "//header//button[text()='Keluar']").click()
    WebDriverWait(browser, 10).until(lambda d: "/login/" in d.current_url)

    _login_in_browser(browser, "head", PASSWORD)
    browser.find_element(By.LINK_TEXT, "Log audit").click()  # the header links to it
    WebDriverWait(browser, 10).until(lambda d: "/audit/" in d.current_url)
    first = browser.find_element(By.CSS_SELECTOR, "#audit tbody tr")
    assert first.get_attribute("data-action") == "view_audit"  # newest first: this look
    Select(browser.find_element(By.ID, "f-action")).select_by_visible_text("Akses ditolak")
    browser.find_element(By.ID, "f-user").send_keys(viewer)
    browser.find_element(By.XPATH, "//form[@class='filters']/button").click()
    WebDriverWait(browser, 10).until(lambda d: "action=denied" in d.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "#audit tbody tr")
    assert [r.get_attribute("data-action") for r in rows] == ["denied"]
    assert "Pemantau" in rows[0].text and "/audit/" in rows[0].text
    screenshot(browser, "audit")


def test_with_no_user_the_login_page_names_the_command_and_offers_no_default(
        tmp_path: Path) -> None:
    with running_web(tmp_path / "empty.db", tmp_path / "data") as url:
        page = Client(url).get("/login/").body
    assert "Belum ada pengguna" in page
    assert "jaranijo office createadmin --db" in page
    assert "Tidak ada akun atau kata sandi bawaan" in page


# -- who may see what ---------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_each_role_has_exactly_its_permissions(site: Site, role: str) -> None:
    from django.contrib.auth.models import Permission

    # What the user's groups grant, read from this database (has_perm reads "default").
    perms = Permission.objects.using(site.db.alias).filter(group__user__username=role)
    have = {f"{p.content_type.app_label}.{p.codename}" for p in perms}
    if role == "admin":
        assert OFFICE_PERMS | {"auth.change_user", "auth.add_user"} <= have
        assert len(have) == Permission.objects.using(site.db.alias).count()
    else:
        assert have == MAY[role]


@pytest.mark.parametrize("role", ROLES)
def test_audit_page_for_head_and_admin_only(site: Site, role: str) -> None:
    client = Client(site.url)
    reply = client.login(role)
    assert reply.status == 302, reply.body
    page = client.get("/audit/")
    if role in ("head", "admin"):
        assert page.status == 200 and '<table id="audit">' in page.body
        assert "Log audit" in page.body
        assert site.entries(username=role, action="view_audit")
    else:
        assert page.status == 403
        assert "Akses ditolak" in page.body and "office.view_auditentry" in page.body
        assert "Log audit</a>" not in page.body  # and no link to it in the header
        denied = site.entries(username=role, action="denied")
        assert denied and denied[-1].subject == "/audit/"
        assert denied[-1].detail == "office.view_auditentry" and denied[-1].roles == role


def test_anonymous_is_sent_to_login(site: Site) -> None:
    reply = Client(site.url).get("/audit/?user=head")
    assert reply.status == 302
    assert reply.headers["Location"] == "/login/?next=/audit/%3Fuser%3Dhead"


def test_audit_page_newest_first_filtered_paginated_and_itself_audited(site: Site) -> None:
    from office.models import AuditEntry

    for i in range(60):
        AuditEntry(username="pengisi", action="view_personal", subject=f"rekaman-{i:02d}",
                   ip="10.0.0.9").save(using=site.db.alias)
    client = Client(site.url)
    client.login("head")
    page = client.get("/audit/?user=pengisi&action=view_personal")
    assert page.status == 200
    subjects = re.findall(r"<td>(rekaman-\d\d)</td>", page.body)
    assert subjects == [f"rekaman-{i:02d}" for i in range(59, 9, -1)]  # 50, newest first
    assert "Halaman 1 dari 2 (60 entri)" in page.body
    second = client.get("/audit/?user=pengisi&action=view_personal&page=2")
    assert re.findall(r"<td>(rekaman-\d\d)</td>", second.body) == [
        f"rekaman-{i:02d}" for i in range(9, -1, -1)]
    looked = site.entries(username="head", action="view_audit")
    assert looked[-1].detail == "user=pengisi action=view_personal page=2"
    assert looked[-1].ip == "127.0.0.1" and looked[-1].user_agent == "jaranijo-test/1"


# -- forged requests ------------------------------------------------------------------------
def test_post_without_csrf_token_is_refused_and_changes_nothing(site: Site) -> None:
    name = site.add_user("petugas-csrf", "head")
    client = Client(site.url)
    assert client.login(name).status == 302
    assert client.request("POST", "/logout/", {}).status == 403
    assert client.get("/audit/").status == 200  # still logged in
    assert client.get("/logout/").status == 405  # and a link cannot log out either
    assert client.get("/audit/").status == 200
    stranger = Client(site.url)
    stranger.get("/login/")  # has the cookie, not the form's token
    reply = stranger.request("POST", "/login/", {"username": name, "password": PASSWORD})
    assert reply.status == 403
    # Refused with a plain page in the user's language, and written to the audit log:
    # the user's refused logout under their name, the stranger's without one (the name
    # typed in a form that failed its check is not read), never the password.
    assert 'id="csrf-failure"' in reply.body and "Tidak ada yang diubah" in reply.body
    assert PASSWORD not in reply.body and name not in reply.body
    assert [e.action for e in site.entries(username=name)] == ["login", "csrf_failure",
                                                               "view_audit", "view_audit"]
    (mine,) = site.entries(username=name, action="csrf_failure")
    assert mine.subject == "/logout/" and "CSRF" in mine.detail
    theirs = site.entries(username="", action="csrf_failure", subject="/login/")
    assert theirs and all(PASSWORD not in e.detail and name not in e.detail for e in theirs)
    english = Client(site.url)
    english.get("/login/")
    req = urllib.request.Request(site.url + "/login/", data=b"username=x&password=y",
                                 method="POST", headers={"Accept-Language": "en"})
    for cookie in english.jar:
        req.add_header("Cookie", f"{cookie.name}={cookie.value}")
    try:
        english.opener.open(req, timeout=15)
        raise AssertionError("a POST without a token was taken")
    except urllib.error.HTTPError as exc:
        page = exc.read().decode()
        assert exc.code == 403 and "Nothing was changed" in page, page


def test_forged_session_cookie_is_anonymous(site: Site) -> None:
    client = Client(site.url)
    client.login("admin")
    real = client.cookie("sessionid")
    assert real and client.get("/audit/").status == 200
    before = len(site.entries(action="bad_session"))
    for forged in (real[:-1] + ("a" if real[-1] != "a" else "b"), secrets.token_hex(16)):
        other = Client(site.url)
        other.set_cookie("sessionid", forged)
        reply = other.get("/audit/")
        assert reply.status == 302 and reply.headers["Location"].startswith("/login/")
        # The answer deletes the bad cookie, so the browser does not send it again.
        assert 'sessionid=""' in reply.headers.get("Set-Cookie", "")
    # Each refused once, in the audit log, with no session key and no one's name.
    entries = site.entries(action="bad_session")[before:]
    assert [(e.username, e.subject) for e in entries] == [("", "/audit/"), ("", "/audit/")]
    assert all(real not in e.detail and "forged or expired" in e.detail for e in entries)
    # A real session is not: the logged-in client's next page adds no entry.
    assert client.get("/audit/").status == 200
    assert len(site.entries(action="bad_session")) == before + 2
    # A static file with a forged cookie is served and not looked at (no session needed).
    stale = Client(site.url)
    stale.set_cookie("sessionid", secrets.token_hex(16))
    assert stale.get("/static/office.css").status == 200
    assert len(site.entries(action="bad_session")) == before + 2


# -- the log itself ---------------------------------------------------------------------------
def test_audit_entries_cannot_be_changed_or_deleted(site: Site) -> None:
    from django.db import DatabaseError, connections

    from office.models import AuditEntry, AuditRefused

    entry = AuditEntry(username="x", action="login")
    entry.save(using=site.db.alias)
    entry.detail = "rewritten"
    with pytest.raises(AuditRefused):
        entry.save(using=site.db.alias)
    with pytest.raises(AuditRefused):
        entry.delete()
    entries = AuditEntry.objects.using(site.db.alias).filter(pk=entry.pk)
    with pytest.raises(AuditRefused):
        entries.update(detail="rewritten")
    with pytest.raises(AuditRefused):
        entries.delete()
    with connections[site.db.alias].cursor() as cur:  # and under the ORM, the database
        with pytest.raises(DatabaseError, match="never changed"):
            cur.execute("UPDATE audit SET detail = 'rewritten' WHERE id = %s", [entry.pk])
        with pytest.raises(DatabaseError, match="never deleted"):
            cur.execute("DELETE FROM audit WHERE id = %s", [entry.pk])
    assert AuditEntry.objects.using(site.db.alias).get(pk=entry.pk).detail == ""


def test_audit_entries_append_only_on_postgresql(postgres: PostgresServer) -> None:
    name = f"office_{secrets.token_hex(6)}"
    with psycopg.connect(postgres.conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    db = OfficeDb.open(f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{name}")
    try:
        db.conn.execute("INSERT INTO audit (at, username, roles, action, subject, ip, "
                        "user_agent, detail) VALUES (now(), 'x', '', 'login', '', '', '', '')")
        for sql in ("UPDATE audit SET detail = 'y'", "DELETE FROM audit",
                    "TRUNCATE audit"):
            with pytest.raises(Exception, match="never changed or deleted"), db.transaction():
                db.conn.execute(sql)
        assert db.conn.execute("SELECT count(*) FROM audit").fetchone()[0] == 1
        groups = db.conn.execute("SELECT name FROM auth_group ORDER BY name").fetchall()
        assert [g[0] for g in groups] == sorted(ROLES)
    finally:
        db.close()


# -- the first account, from the command line ------------------------------------------------
def _createadmin(db: Path, username: str, password: str,
                 *lang: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.cli", *lang, "office", "createadmin", "--db", str(db),
         "--username", username, "--password-stdin"],
        input=password + "\n", capture_output=True, text=True, timeout=60)


def test_createadmin_refuses_weak_passwords_and_duplicates(tmp_path: Path) -> None:
    db_path = tmp_path / "office.db"
    weak = _createadmin(db_path, "kepala", "pendek")
    assert weak.returncode == 2
    assert "Kata sandi ditolak" in weak.stderr and "terlalu pendek" in weak.stderr
    weak_en = _createadmin(db_path, "kepala", "1234567890", "--lang", "en")
    assert weak_en.returncode == 2
    assert "too common" in weak_en.stderr and "entirely numeric" in weak_en.stderr
    like_name = _createadmin(db_path, "kepaladinas", "kepaladinas1", "--lang", "en")
    assert like_name.returncode == 2 and "too similar" in like_name.stderr

    good = _createadmin(db_path, "kepala", PASSWORD)
    assert good.returncode == 0, good.stderr
    assert "kepala" in good.stdout and PASSWORD not in good.stdout + good.stderr
    again = _createadmin(db_path, "kepala", PASSWORD + "-lain")
    assert again.returncode == 2 and "sudah ada" in again.stderr

    from django.contrib.auth.models import User

    db = OfficeDb.open(db_path)
    try:
        users = User.objects.db_manager(db.alias)
        assert list(users.values_list("username", flat=True)) == ["kepala"]
        admin = users.get(username="kepala")
        assert admin.check_password(PASSWORD) and admin.password.startswith("argon2")
        assert [g.name for g in admin.groups.all()] == ["admin"]
        assert admin.is_superuser
    finally:
        db.close()
    with running_web(db_path, tmp_path / "data") as url:  # and the account works
        client = Client(url)
        assert client.login("kepala").status == 302
        assert client.get("/audit/").status == 200


# -- require() on an async view (live pages stream from async views) ---------------------
def test_require_guards_async_views_too() -> None:
    import asyncio

    from django.http import HttpResponse
    from django.test import RequestFactory

    from office.db import setup_django

    setup_django()
    from office.web.roles import require

    @require("office.view_fleet")
    async def page(request: Any) -> HttpResponse:
        return HttpResponse("ok")

    class User:
        def __init__(self, perms: set[str] | None) -> None:
            self.is_authenticated = perms is not None
            self.perms = perms or set()

        def has_perms(self, wanted: Any) -> bool:
            return set(wanted) <= self.perms

    def call(user: User) -> HttpResponse:
        request = RequestFactory().get("/armada/?kit=1")

        async def auser() -> User:
            return user

        request.auser = auser  # type: ignore[attr-defined]
        return asyncio.run(page(request))

    anonymous = call(User(None))
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/login/?next=/armada/%3Fkit%3D1"
    assert call(User({"office.view_fleet"})).content == b"ok"
