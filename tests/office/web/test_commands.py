"""Commands from the kit page in real headless Chromium: ping, self-test, lock, wipe (with
its confirmation and the head's role) and revoking a lost kit.

The web app runs in its own process (``office web --keys --broker``) on a real SQLite
office database fed by the real receiver (no broker, :class:`Fleet`); what the page queues
is checked as the kit would check it (:func:`sync.protocol.verify_command` with the
office's public key), and the kit's answer goes back through the receiver while the page
is open. Revocation runs against a real Mosquitto (:class:`office.broker.LocalBroker`):
the kit's live connection is dropped and it cannot log in again.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from office.broker import LocalBroker
from sync import protocol as p
from tests.browser import (  # noqa: F401  (browser: the fixture)
    browser,
    log_in,
    screenshot,
    text_of,
    wait,
)
from tests.office.web.fleet_helpers import Fleet, make_user, session_cookie, write_secret_key
from tests.office.web.server import running_web

KIT, OTHER = "blitar-kit-01", "blitar-kit-02"
KIT_PASSWORD, OTHER_PASSWORD = "kata-sandi-kit-01", "kata-sandi-kit-02"


@dataclass
class Office:
    fleet: Fleet
    url: str
    broker: LocalBroker
    head: str  # session cookies by role
    viewer: str


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    fleet = Fleet(tmp_path)
    key = write_secret_key(tmp_path / "web")
    head = make_user(fleet.db, "kepala.dinas", perms=("view_fleet", "command_kit", "wipe_kit"))
    viewer = make_user(fleet.db, "pemantau")
    broker = LocalBroker(tmp_path / "broker", {KIT: KIT_PASSWORD, OTHER: OTHER_PASSWORD})
    broker.start()
    try:
        with running_web(tmp_path / "office.db", tmp_path / "web",
                         args=("--keys", str(tmp_path / "keys"),
                               "--broker", str(broker.directory))) as url:
            yield Office(fleet, url, broker, session_cookie(fleet.db, head, key),
                         session_cookie(fleet.db, viewer, key))
    finally:
        broker.stop()





def queued(office: Office) -> list[p.Command]:
    """The commands the page queued, checked as the kit checks them."""
    rows = office.fleet.db.conn.execute(
        "SELECT payload FROM commands ORDER BY queued_at").fetchall()
    return [p.verify_command(bytes(r["payload"]), office.fleet.office_keys.sign.verify_key,
                             kit_id=KIT, now=time.time()) for r in rows]


def answer(office: Office, command: p.Command, **result: object) -> None:
    office.fleet.send(p.KitTopics(KIT).result, p.encode_result(
        p.CommandResult(command.command_id, ok=True, result=dict(result))))


def test_ping_and_selftest_reach_the_kit_signed_and_their_answers_show_live(
        office: Office, browser: WebDriver) -> None:  # noqa: F811
    office.fleet.birth(KIT)
    log_in(browser, office, office.head)
    browser.get(office.url + f"/kits/{KIT}/")
    browser.find_element(By.ID, "cmd-ping").click()
    wait(browser, "document.querySelector('#command-list tr.cmd.pending[data-command=ping]')")
    assert "diantrekan" in text_of(browser, "#commands ul.messages")
    (ping,) = queued(office)
    assert ping.name == "ping" and ping.expires_at - ping.issued_at == 3600
    assert "menunggu kit daring" in text_of(browser, "#command-list tbody")
    assert "kepala.dinas" in text_of(browser, "#command-list tbody")
    # The kit answers; the list (polled while an answer is awaited) shows it without reload.
    answer(office, ping, pong=int(time.time()), session=1, outbox=2)
    wait(browser, "document.querySelector('#command-list tr.cmd.ok[data-command=ping]')")
    assert "kit menjawab; 2 rekaman menunggu" in text_of(browser, "#command-list tbody")

    browser.find_element(By.ID, "cmd-selftest").click()
    wait(browser, "document.querySelector('#command-list tr.cmd.pending[data-command=selftest]')")
    selftest = queued(office)[-1]
    assert selftest.name == "selftest"
    answer(office, selftest, store="ok", gnss="fix", modem="registered", battery=81,
           disk_free_mib=5120, keys="tpm", problems="")
    wait(browser, "document.querySelector('#command-list tr.cmd.ok[data-command=selftest]')")
    row = text_of(browser, "#command-list tr.cmd.ok[data-command=selftest]")
    assert "baterai: 81" in row and "GNSS: fix" in row and "kunci: tpm" in row
    screenshot(browser, "kit-commands")
    # The event log has both answers (after a reload: it is the day's record).
    browser.get(office.url + f"/kits/{KIT}/")
    events = text_of(browser, "#event-log")
    assert "Perintah ping berhasil: kit menjawab; 2 rekaman menunggu" in events
    assert "Perintah selftest berhasil" in events
    audit = office.fleet.db.conn.execute(
        "SELECT username, action, subject, detail FROM audit ORDER BY id").fetchall()
    assert [(a["username"], a["action"], a["subject"]) for a in audit
            if a["action"] == "command_kit"] == [("kepala.dinas", "command_kit", KIT)] * 2


def test_a_wipe_needs_the_kit_id_typed_again_and_the_heads_role(
        office: Office, browser: WebDriver) -> None:  # noqa: F811
    office.fleet.birth(KIT)
    log_in(browser, office, office.head)
    browser.get(office.url + f"/kits/{KIT}/")
    browser.find_element(By.ID, "cmd-wipe").click()
    field = browser.find_element(By.ID, "id_confirm")
    field.send_keys("blitar-kit-10")
    browser.find_element(By.ID, "wipe-submit").click()
    error = browser.find_element(By.ID, "confirm-error").text
    assert "Kode kit tidak cocok. Ketik persis: blitar-kit-01" in error
    assert queued(office) == []
    screenshot(browser, "kit-wipe-refused")
    field = browser.find_element(By.ID, "id_confirm")
    field.clear()
    field.send_keys(KIT)
    browser.find_element(By.ID, "wipe-submit").click()
    wait(browser, "document.querySelector('#command-list tr.cmd[data-command=wipe]')")
    (wipe,) = queued(office)
    assert wipe.name == "wipe" and wipe.expires_at - wipe.issued_at == 7 * 86400
    answer(office, wipe, slots=2, drafts=1, inbox=1)
    wait(browser, "document.querySelector('#command-list tr.cmd.ok[data-command=wipe]')")
    assert "dihapus: 2 slot PIN, 1 draf, 1 penugasan" in text_of(browser, "#command-list")


def post(url: str, cookie: str, data: dict[str, str], *, csrf: str | None = None) -> int:
    headers = {"Cookie": f"sessionid={cookie}" + (f"; csrftoken={csrf}" if csrf else "")}
    if csrf:
        headers["X-CSRFToken"] = csrf
    request = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode(),
                                     headers=headers, method="POST")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_a_viewer_gets_no_buttons_and_no_command_through(
        office: Office, browser: WebDriver) -> None:  # noqa: F811
    office.fleet.birth(KIT)
    log_in(browser, office, office.viewer)
    browser.get(office.url + f"/kits/{KIT}/")
    wait(browser, "document.getElementById('command-list')")
    assert browser.find_elements(By.CSS_SELECTOR, "#commands button, #commands a.button") == []
    csrf = str(browser.get_cookie("csrftoken")["value"])  # type: ignore[index]
    for path in (f"/kits/{KIT}/commands/ping", f"/kits/{KIT}/wipe/", f"/kits/{KIT}/revoke/"):
        assert post(office.url + path, office.viewer, {"confirm": KIT, "reason": "x" * 20},
                    csrf=csrf) == 403, path
    # The head without a CSRF token: refused as well.
    assert post(office.url + f"/kits/{KIT}/commands/ping", office.head, {}) == 403
    assert queued(office) == []
    assert office.fleet.db.conn.execute(
        "SELECT COUNT(*) FROM audit WHERE action = 'denied' AND username = 'pemantau'"
    ).fetchone()[0] == 3


def connect(broker: LocalBroker, user: str, password: str) -> tuple[mqtt.Client, list[object]]:
    """A kit's MQTT session: the reason codes of its connects and disconnects, in order."""
    events: list[object] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=user,
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    client.tls_set(ca_certs=str(broker.ca_file))
    client.on_connect = lambda c, u, f, reason, props: events.append(("connect", str(reason)))
    client.on_disconnect = lambda c, u, f, reason, props: events.append(
        ("disconnect", str(reason)))
    client.reconnect_delay_set(0.2, 0.5)
    client.connect("127.0.0.1", broker.port, keepalive=30)
    client.loop_start()
    return client, events


def until(check: object, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_revoking_a_lost_kit_drops_its_broker_login_and_holds_its_uploads(
        office: Office, browser: WebDriver) -> None:  # noqa: F811
    office.fleet.birth(KIT)
    kit, kit_events = connect(office.broker, KIT, KIT_PASSWORD)
    other, other_events = connect(office.broker, OTHER, OTHER_PASSWORD)
    try:
        until(lambda: ("connect", "Success") in kit_events and
              ("connect", "Success") in other_events)
        log_in(browser, office, office.head)
        browser.get(office.url + f"/kits/{KIT}/")
        browser.find_element(By.ID, "cmd-revoke").click()
        browser.find_element(By.ID, "id_confirm").send_keys(KIT)
        browser.find_element(By.ID, "id_reason").send_keys("hilang")
        browser.find_element(By.ID, "revoke-submit").click()
        assert "Alasan terlalu singkat" in browser.find_element(By.ID, "reason-error").text
        screenshot(browser, "kit-revoke-refused")
        browser.find_element(By.ID, "id_reason").send_keys(
            " di Desa Sumberagung, laporan polisi LP/123/XII/2026")
        browser.find_element(By.ID, "revoke-submit").click()
        wait(browser, "document.getElementById('revoked')")
        assert "Login broker dihapus" in text_of(browser, "#revoked")
        assert "kepala.dinas" in text_of(browser, "#revoked")
        assert browser.find_elements(By.ID, "cmd-ping") == []  # no more commands
        screenshot(browser, "kit-revoked")
        # The broker dropped the kit and refuses it from now on; the other kit stays.
        until(lambda: any(e[0] == "disconnect" for e in kit_events))
        until(lambda: any(e[0] == "connect" and e[1] != "Success" for e in kit_events))
        assert [e for e in kit_events if e[0] == "connect"][-1] == ("connect", "Not authorized")
        assert other_events == [("connect", "Success")]
        assert other.is_connected()
        assert f"\nuser {KIT}\ntopic deny {p.ROOT}/#" in (
            office.broker.directory / "acl").read_text()
        assert not any(line.startswith(f"{KIT}:") for line in
                       (office.broker.directory / "passwd").read_text().splitlines())
    finally:
        for client in (kit, other):
            client.loop_stop()
            client.disconnect()
    row = office.fleet.db.conn.execute(
        "SELECT revoked_by, broker_done_at, broker_error FROM revocations WHERE kit_id = %s",
        (KIT,)).fetchone()
    assert row["revoked_by"] == "kepala.dinas" and row["broker_done_at"] is not None
    assert row["broker_error"] == ""
    # Shown offline ("dicabut") at once: its will cannot reach the office through the ACL.
    kit_row = office.fleet.db.kit(KIT)
    assert kit_row is not None and kit_row["online"] == 0
    assert '"reason": "revoked"' in kit_row["status"]


def test_an_unanswered_command_past_its_expiry_is_not_awaited_any_more() -> None:
    from office.db import setup_django

    setup_django()
    from office.models import Command
    from office.web.commands import result_text

    now = time.time()

    def command(**kw: object) -> Command:
        base: dict[str, object] = dict(command_id="c-1", kit_id=KIT, name="ping", args="{}",
                                       issued_at=int(now) - 7200, expires_at=int(now) + 60,
                                       payload=b"", queued_at=now - 7200)
        return Command(**{**base, **kw})

    assert result_text(command()) == "menunggu kit daring"
    assert result_text(command(sent_at=now - 60)) == "terkirim, menunggu jawaban"
    assert result_text(command(expires_at=int(now) - 1)) == "kedaluwarsa sebelum terkirim"
    assert result_text(command(sent_at=now - 3600, expires_at=int(now) - 1)) == \
        "kedaluwarsa tanpa jawaban"
