"""``jaranijo demo``: the whole system on emulated devices, narrated step by step.

A throwaway office and kit in a temporary folder (or ``--keep DIR``): the
office makes its keys, the emulated devices come up on pseudo-terminals, a
real Mosquitto starts on loopback, a technician provisions the kit, the
office receiver and the kit agent connect (the office sees the kit's
location, battery and signal). Office staff take Desa Papungan's request
through the web app's pages as the SOP prescribes (:mod:`demo.office_flow`):
the letter registered and dispositioned, the village's target list imported
with its faulty rows refused, the targets verified, a visit scheduled, the
reply letter drafted, signed with a stand-in for BSrE and verified, the kit
handed out with its self-test, and the sealed, signed assignment sent. An
officer logs in and opens it (the office sees it opened), and the headless
driver walks a visit with three of the invented residents through the real
drivers: one recorded fully, one with two amputated fingers who cannot sign,
one who refuses. The agent uploads the sealed records, the office stores
them and sends receipts, opens them (the kit shows it cannot), the records
close their targets, the kit comes back, and the resident not recorded goes
on a later visit.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kit.provision import open_vault, provision_kit
from kit.scripted_visit import ScriptedVisits, Visit, VisitScript
from kit.store import Store
from kit.workflow import describe
from office.records import open_record
from sync.domain import Assignment
from sync.envelope import OfficeKeys, OfficePublicKeys, open_sealed, read_header
from sync.errors import JaranIjoError, VaultError

# Six digits behind the TPM; without one the kit asks for at least ten.
OFFICER, PIN, SOFTWARE_PIN = "P-0001", "482913", "4829135071"
KIT_ID = "blitar-kit-01"
# The agent's timers shortened so the demo shows a report every few seconds.
DEMO_AGENT = {"poll_s": 1.0, "interval_moving_s": 5.0, "interval_idle_s": 10.0,
              "min_interval_s": 1.0, "reconnect_min_s": 0.5, "reconnect_max_s": 2.0,
              "keepalive_s": 10, "will_delay_s": 5, "upload_stall_s": 5.0,
              "retry_base_s": 1.0, "retry_max_s": 5.0}
DEMO_BAUD = 115200  # the sensor set to its faster rate: 3.5 s per fingerprint image


class Narrator:
    def __init__(self) -> None:
        self.n = 0
        self.started = time.monotonic()

    def step(self, title: str) -> None:
        self.n += 1
        print(f"\n[{time.monotonic() - self.started:6.1f}s] {self.n}. {title}", flush=True)

    def say(self, text: str) -> None:
        print(textwrap.indent(text, "     "), flush=True)


@contextlib.contextmanager
def workspace(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="jaranijo-demo-") as tmp:
        yield Path(tmp)


def run_demo(*, headless: bool, keep: Path | None, lang: str) -> int:
    interactive = not headless and bool(os.environ.get("DISPLAY")
                                        or os.environ.get("WAYLAND_DISPLAY"))
    tell = Narrator()
    with workspace(keep) as root, contextlib.ExitStack() as stack:
        tell.step("Office: create the office's seal and sign key pairs")
        office_dir = root / "office" / "keys"
        office = OfficeKeys.generate()
        office.save(office_dir)
        tell.say(f"office keys in {office_dir}")

        tell.step("Emulated devices come up on pseudo-terminals")
        from sensors.emulated.rig import EmulatedRig

        rig = EmulatedRig(root / "devices", fingerprint_baud=DEMO_BAUD)
        rig.start()
        stack.callback(rig.stop)
        # A quicker drain than a real pack (0.25 %/min), so the office page shows it fall.
        rig.devices["battery"].control("rate", "2")
        for name, path in rig.paths.items():
            target = os.readlink(path) if path.is_symlink() else "(folder)"
            tell.say(f"{name:<12} {path} -> {target}")

        tell.step("Mosquitto starts on 127.0.0.1 with TLS: one user per kit, an ACL per kit")
        from office.broker import LocalBroker
        from sync import protocol as proto

        passwords = {KIT_ID: secrets.token_urlsafe(12), proto.OFFICE_USER:
                     secrets.token_urlsafe(12)}
        broker = LocalBroker(root / "broker", passwords)
        broker.start()
        stack.callback(broker.stop)
        tell.say(f"broker on port {broker.port}, users {', '.join(passwords)}")
        tell.say(f"TLS only (TLS 1.2 or newer): the office CA {broker.ca_file} signed the "
                 f"broker's certificate; kit and office trust that CA, so passwords and "
                 f"records never cross the link in clear")
        tpm = _start_tpm(tell, root, stack)
        return _visit(tell, root, office, rig, broker, passwords, stack, lang, interactive,
                      tpm, headless)


def _start_tpm(tell: Narrator, root: Path, stack: contextlib.ExitStack) -> str:
    """The kit's TPM: swtpm stands in for the SPI TPM module (``security.tpm``)."""
    import shutil

    from kit.tpm import SoftwareTpm

    tell.step("The kit's TPM 2.0 comes up (swtpm stands in for the SPI TPM module)")
    if shutil.which("swtpm") is None:
        tell.say("swtpm is not installed: the kit runs in the weaker software mode "
                 "(Argon2id slots, a PIN of 10 or more digits)")
        return "off"
    tpm = SoftwareTpm(root / "tpm")
    tpm.start()
    stack.callback(tpm.stop)
    tell.say(f"TPM at {tpm.tcti}: officers' PIN slots and the kit's unattended secrets will "
             f"be sealed in it, under its dictionary-attack lockout")
    return tpm.tcti


def _start_web(tell: Narrator, root: Path, office_db: Path,
               stack: contextlib.ExitStack, broker_dir: Path,
               tte_roots: Path | None = None) -> tuple[str, str]:
    """The office web app on the demo's office database, and a throwaway login for it."""
    from django.contrib.auth.models import Group, Permission, User

    from office.db import OfficeDb

    db = OfficeDb.open(office_db)
    password = secrets.token_urlsafe(12)
    user = User.objects.db_manager(db.alias).create_user("demo", password=password)
    head = Group.objects.using(db.alias).filter(name="head").first()
    if head is not None:
        user.groups.add(head)
    else:  # before the roles exist: what the fleet page needs
        user.user_permissions.add(*Permission.objects.using(db.alias).filter(
            content_type__app_label="office"))
    port = _free_port()
    web_log = root / "office" / "web.log"
    with open(web_log, "ab") as out:
        web = subprocess.Popen(
            [sys.executable, "-m", "sync.cli", "office", "web", "--db", str(office_db),
             "--data", str(root / "office" / "web"), "--listen", f"127.0.0.1:{port}",
             "--keys", str(root / "office" / "keys"), "--kits", str(root / "office" / "kits"),
             "--broker", str(broker_dir)],
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1",
                 **({"JARANIJO_TTE_ROOTS": str(tte_roots)} if tte_roots else {})})
    stack.callback(_stop_process, web)
    url = f"http://127.0.0.1:{port}/"
    _wait(lambda: _answers(url + "static/office.css"), 30, "the office web app")
    tell.step("The office web app is up: office staff watch the kit live")
    tell.say(f"open {url}")
    tell.say(f"demo login (made for this run only): demo / {password}")
    return url, password


class OfficeWeb:
    """The demo's office web app, used through its pages as Kepala Dinas would: a login
    (session and CSRF cookies) and form posts, over plain HTTP on loopback."""

    def __init__(self, url: str, username: str, password: str) -> None:
        import http.cookiejar
        import urllib.request

        self.url = url.rstrip("/")
        self.username, self.password = username, password
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.logged_in = False
        self.last_url = ""

    def _log_in(self) -> None:
        if not self.logged_in:
            self.logged_in = True
            self._open("/login/")  # the CSRF cookie
            self.post("/login/", {"username": self.username, "password": self.password,
                                  "next": "/"})

    def _open(self, path: str) -> str:
        return self.get_bytes(path, log_in=False).decode("utf-8")

    def get_bytes(self, path: str, *, log_in: bool = True) -> bytes:
        if log_in:
            self._log_in()
        with self.opener.open(self.url + path, timeout=60) as response:
            return bytes(response.read())

    def get(self, path: str) -> str:
        self._log_in()
        return self._open(path)

    def post(self, path: str, data: dict[str, str | list[str]],
             files: dict[str, tuple[str, bytes, str]] | None = None) -> str:
        """Post a form as the browser would (``files``: name -> (filename, bytes, type),
        sent as multipart); the page it lands on after redirects, and its address in
        :attr:`last_url`."""
        body_bytes, _ctype = self.post_bytes(path, data, files)
        return body_bytes.decode("utf-8", "replace")

    def post_bytes(self, path: str, data: dict[str, str | list[str]],
                   files: dict[str, tuple[str, bytes, str]] | None = None
                   ) -> tuple[bytes, str]:
        """:meth:`post`, the answer as bytes with its content type (a download: the
        export's ZIP)."""
        import urllib.error
        import urllib.parse
        import urllib.request

        self._log_in()
        csrf = next((c.value for c in self.jar if c.name == "csrftoken"), "")
        fields = [(k, v) for k, vs in {**data, "csrfmiddlewaretoken": csrf}.items()
                  for v in (vs if isinstance(vs, list) else [vs])]
        headers = {"X-CSRFToken": csrf or ""}
        if files:
            boundary = "jaranijo-" + secrets.token_hex(12)
            parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
                     f"{v}\r\n".encode() for k, v in fields]
            for name, (filename, content, ctype) in files.items():
                parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                             f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'
                             .encode() + content + b"\r\n")
            body = b"".join(parts) + f"--{boundary}--\r\n".encode()
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        else:
            body = urllib.parse.urlencode(fields).encode()
        request = urllib.request.Request(self.url + path, data=body, headers=headers)
        try:
            with self.opener.open(request, timeout=120) as response:
                self.last_url = str(response.geturl())
                return bytes(response.read()), str(response.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as refused:  # a form sent back with what to fix
            if refused.code >= 500:
                raise
            self.last_url = str(refused.geturl())
            return bytes(refused.read()), str(refused.headers.get("Content-Type", ""))


def _fleet_row(web: OfficeWeb) -> tuple[str, str] | None:
    """The kit's row on the fleet page ``/`` as the demo login gets it: (its presence
    class, its battery), or None while the row is missing or not yet online with one."""
    import re

    page = web.get("/")
    row = re.search(rf'<tr id="kit-{re.escape(KIT_ID)}" class="kit ([a-z]+)"(.*?)</tr>',
                    page, re.S)
    if row is None:
        return None
    battery = re.search(r'data-field="battery">(\d+) %<', row.group(2))
    if row.group(1) != "online" or battery is None:
        return None
    return row.group(1), battery.group(1)


def _fleet_from_the_page(tell: Narrator, web: OfficeWeb) -> None:
    """Issue 11, Done when: the office page shows the demo kit live. Read off the fleet
    page over HTTP as staff would open it, not off the database."""
    presence, battery = _wait(lambda: _fleet_row(web), 30,
                              f"{KIT_ID} online with its battery on the fleet page")
    tell.say(f"fleet page {web.url}/ (as {web.username}): {KIT_ID}'s row is on it, "
             f"{presence}, battery {battery} %")


def _folder_export(tell: Narrator, web: OfficeWeb) -> None:
    """Issue 12, Done when: "exports a worksheet and a folder". The per-resident folder
    archive from /export/ with no filter, as an operator clicks "Folder per penduduk
    (ZIP)"; its files counted and every manifest's SHA-256 checked here."""
    import hashlib
    import io
    import zipfile

    data, ctype = web.post_bytes("/export/", {"kind": "zip"})
    if not ctype.startswith("application/zip"):
        tell.say(f"folder export from /export/: no archive ({ctype}): "
                 f"{data[:300].decode('utf-8', 'replace')}")
        return
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        folders = {n.split("/", 1)[0] for n in names}
        checked = bad = 0
        for name in names:
            if name.endswith("/manifest.json"):
                folder = name.rsplit("/", 1)[0]
                for entry in json.loads(archive.read(name))["files"]:
                    checked += 1
                    digest = hashlib.sha256(archive.read(f"{folder}/{entry['name']}"))
                    bad += digest.hexdigest() != entry["sha256"]
    tell.say(f"folder export from /export/ (ZIP, per resident): {len(names)} files in "
             f"{len(folders)} resident folders, {len(data) // 1024} KiB; "
             f"{checked - bad}/{checked} files match their manifest's SHA-256")


# The office's low-battery alert fires below 20 %; the demo's battery starts near 76 % and
# falls 2 %/min, so the demo sets the threshold here to show an alert raised in minutes.
DEMO_LOW_BATTERY = 74


def _start_alerts(tell: Narrator, alias: str, stack: contextlib.ExitStack) -> None:
    """The alert watch beside the receiver, as ``office serve`` runs it (every 5 s here)."""
    from office.alerts import AlertWatch, current_settings

    settings = current_settings(alias)
    settings.battery_percent = DEMO_LOW_BATTERY
    settings.save(using=alias)
    stop = threading.Event()
    thread = threading.Thread(target=AlertWatch(alias).run, args=(stop, 5.0),
                              name="alert-watch", daemon=True)
    thread.start()
    stack.callback(thread.join, 10)
    stack.callback(stop.set)
    tell.say(f"alert watch running; for the demo the low-battery alert is set at "
             f"{DEMO_LOW_BATTERY} % (the office default is 20 %)")


def _alert_from_the_page(tell: Narrator, web: OfficeWeb, office_db: Path) -> None:
    """The low-battery alert the draining battery raised, acknowledged on the alerts page."""
    from office.alerts import detail_figures
    from office.db import OfficeDb

    tell.step("Office: the battery alert on the alerts page, acknowledged")
    db = OfficeDb.open(office_db)
    try:
        from office.models import Alert

        alert = _wait(lambda: Alert.objects.using(db.alias).filter(
            kit_id=KIT_ID, kind="low_battery", cleared_at__isnull=True).first(), 120,
            f"the battery to fall below {DEMO_LOW_BATTERY} %")
        figures = detail_figures(alert)
        tell.say(f"alert raised for {KIT_ID}: low battery, {figures.get('percent')} % "
                 f"(below {figures.get('threshold')} %)")
        web.post(f"/alerts/{alert.pk}/ack", {})
        alert.refresh_from_db(using=db.alias)
        tell.say(f"acknowledged by {alert.acked_by or '?'} on /alerts/ (written to the audit "
                 "log); it stays listed until the battery is charged again")
    finally:
        db.close()


def _records_from_the_pages(tell: Narrator, web: OfficeWeb, office_db: Path,
                            ids: list[str]) -> None:
    """An operator's day: the records with their images, one moved through review to
    "entered into SIAK", and the KTP-el deadline of each complete recording."""
    import re

    from office.db import OfficeDb

    tell.step("Office (operator): the records with their images, a review, the KTP-el clock")
    web.get("/records/")  # opens and indexes what arrived (in memory: the seal key is here)
    db = OfficeDb.open(office_db)
    try:
        from office.deadline import deadline
        from office.models import RecordReview
        from office.web.clock import load_calendar

        reviews = {r.record_id: r for r in RecordReview.objects.using(db.alias).filter(
            kit_id=KIT_ID, record_id__in=ids)}
        calendar = load_calendar(db.alias)
        complete = None
        for record_id in ids:
            review = reviews.get(record_id)
            if review is None:
                tell.say(f"record {record_id}: not indexed")
                continue
            page = web.get(f"/records/{KIT_ID}/{record_id}/")
            images = set(re.findall(r'/records/[^"]+/image/[a-z0-9-]+', page))
            state = "complete" if review.complete else (
                "not recorded" if review.missing.startswith("outcome:") and
                review.outcome != "partial" else f"partial (missing {review.missing})")
            line = f"record {record_id}: {review.outcome}, {state}, {len(images)} images"
            if review.complete and review.complete_on is not None:
                due = deadline(review.complete_on, calendar)
                line += f"; KTP-el due by {due:%A %d %B %Y} (14 working days)"
                complete = complete or record_id
            tell.say(line)
        if complete is not None:
            for state in ("checked", "entered"):
                web.post(f"/records/{KIT_ID}/{complete}/", {"state": state, "note": ""})
            review = RecordReview.objects.using(db.alias).get(kit_id=KIT_ID,
                                                              record_id=complete)
            tell.say(f"record {complete} reviewed on its page: now '{review.state}' "
                     f"(entered into SIAK) by {review.state_by}")
        if complete is not None:
            pdf = web.get_bytes(f"/export/record/{KIT_ID}/{complete}/worksheet.pdf")
            tell.say(f"its SIAK re-entry worksheet: a {len(pdf) // 1024} KiB PDF "
                     f"({'valid' if pdf.startswith(b'%PDF') else 'NOT a PDF'}); a CSV and a "
                     f"folder archive (PNG + WSQ fingers) for any filter are on "
                     f"{web.url}/export/")
        _folder_export(tell, web)
    finally:
        db.close()


def _commands_from_the_page(tell: Narrator, web: OfficeWeb, office_db: Path,
                            lang: str) -> None:
    """Ping and self-test from the kit page; the kit's answers as the page shows them."""
    from django.utils import translation

    from office.db import OfficeDb

    tell.step("Office (Kepala Dinas, on the kit page): a ping and a self-test to the kit")
    db = OfficeDb.open(office_db)
    try:
        from office.models import Command
        from office.web.commands import result_text

        for name in ("ping", "selftest"):
            web.post(f"/kits/{KIT_ID}/commands/{name}", {})
            command = Command.objects.using(db.alias).filter(kit_id=KIT_ID, name=name) \
                .order_by("-queued_at").first()
            if command is None:
                tell.say(f"{name}: the page did not queue it")
                continue
            answered = _wait(lambda c=command: Command.objects.using(db.alias).filter(
                command_id=c.command_id, result_at__isnull=False).first(), 30,
                f"the kit's answer to {name}")
            with translation.override(lang):
                answer = result_text(answered)
            tell.say(f"{name}: signed by the office, sent by the receiver, run by the agent: "
                     f"{answer}")
    finally:
        db.close()


def _revoke_from_the_page(tell: Narrator, web: OfficeWeb, office_db: Path,
                          config: Any) -> None:
    """The kit reported lost: revoked on its page; the broker drops it and refuses it."""
    from office.db import OfficeDb

    tell.step("The kit is reported lost: Kepala Dinas revokes it on its page")
    web.post(f"/kits/{KIT_ID}/revoke/", {
        "confirm": KIT_ID, "reason": "demo: dilaporkan hilang setelah kunjungan"})
    db = OfficeDb.open(office_db)
    try:
        row = db.conn.execute("SELECT broker_done_at, broker_error FROM revocations WHERE "
                              "kit_id = %s", (KIT_ID,)).fetchone()
    finally:
        db.close()
    if row is None:
        tell.say("the page did not record the revocation")
        return
    tell.say("broker login removed and the ACL denies it every topic; broker reloaded"
             if row["broker_done_at"] and not row["broker_error"] else
             f"broker: {row['broker_error'] or 'not done'}")
    _wait(lambda: "not authorised" in _broker_log(config), 30,
          "the broker to refuse the kit's reconnect")
    status = json.loads((_office_kit_status(office_db) or {}).get("status") or "{}")
    tell.say(f"the broker dropped {KIT_ID} and refuses its reconnects (not authorised); the "
             f"office shows it offline ({status.get('reason') or '?'}); anything it still "
             "uploads would be held in quarantine")


def _broker_log(config: Any) -> str:
    """The demo broker's log (beside the kit's folder in the demo's workspace)."""
    path = Path(config.data_dir).parent / "broker" / "mosquitto.log"
    return path.read_text(errors="replace") if path.exists() else ""


def _office_kit_status(db_path: Path) -> dict[str, Any] | None:
    from office.db import OfficeDb

    db = OfficeDb.open(db_path)
    try:
        return db.kit(KIT_ID)
    finally:
        db.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=1).close()
        return True
    except OSError:
        return False


def _visit(tell: Narrator, root: Path, office: OfficeKeys, rig: Any, broker: Any,
           passwords: dict[str, str], stack: contextlib.ExitStack, lang: str,
           interactive: bool, tpm: str = "off", headless: bool = True) -> int:
    from kit.devices import KitDevices
    from kit.records import load_assignment, open_inbox
    from office.db import OfficeDb
    from office.ingest import BrokerSettings, KitDirectory, OfficeKeysForLink, OfficeReceiver
    from sync import protocol as proto

    paths = rig.paths
    tell.step(f"Technician: provision kit {KIT_ID} (keys, store, first officer, broker login)")
    pin = PIN if tpm != "off" else SOFTWARE_PIN
    provisioned = provision_kit(
        kit_id=KIT_ID, data_dir=root / "kit", office_public=root / "office" / "keys",
        officer=OFFICER, pin=pin, broker_password=passwords[KIT_ID],
        settings={
            "kit": {"language": lang},
            "security": {"tpm": tpm},
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "username": KIT_ID,
                     "tls": True, "ca_file": str(broker.ca_file)},
            "devices": {
                "fingerprint": {"port": str(paths["fingerprint"]), "baud": DEMO_BAUD},
                "gnss": {"port": str(paths["gps"])},
                "modem": {"port": str(paths["modem"])},
                "battery": {"kind": "sysfs", "sysfs_dir": str(paths["power_supply"])},
                "camera": {"kind": "emulated"},
            },
            "agent": DEMO_AGENT,
        })
    tell.say("\n".join(provisioned.summary()))
    config = provisioned.config
    leaked = [f.name for f in config.data_dir.rglob("*") if f.is_file()
              and passwords[KIT_ID].encode() in f.read_bytes()]
    if leaked:
        tell.say(f"WARNING: the broker password is readable in {', '.join(leaked)}")
    else:
        tell.say("checked: the broker password is in no file of the kit (sealed in the TPM)"
                 if tpm != "off" else "the broker password is a 0600 file (no TPM)")
    tell.say("kit-sign and kit-box secret keys live under the officers' data key, not in files")
    kits_dir = root / "office" / "kits"
    provisioned.kit_keys.public.save(kits_dir / KIT_ID)
    tell.say(f"kit public keys registered at the office in {kits_dir / KIT_ID}")
    _selftest_at_checkout(tell, config, lang)
    _first_boot_of_a_second_kit(tell, root, broker, lang)

    tell.step("The office receiver and the kit agent connect")
    office_db = root / "office" / "office.db"
    receiver = OfficeReceiver(OfficeDb.open(office_db), OfficeKeysForLink.load(
        root / "office" / "keys"), KitDirectory(kits_dir), BrokerSettings(
        host="127.0.0.1", port=broker.port, password=passwords[proto.OFFICE_USER],
        tls=True, ca_file=str(broker.ca_file),
        reconnect_min_s=0.2, reconnect_max_s=2.0))
    thread = threading.Thread(target=receiver.serve, name="office", daemon=True)
    thread.start()
    stack.callback(thread.join, 10)
    stack.callback(receiver.stop)
    _start_alerts(tell, receiver.db.alias, stack)
    agent_log = root / "kit" / "agent.log"
    with open(agent_log, "ab") as log_file:
        agent = subprocess.Popen(
            [sys.executable, "-m", "sync.cli", "--config", str(config.source), "agent"],
            stdout=log_file, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    stack.callback(_stop_process, agent)
    _wait(lambda: receiver.connected, 15, "the office receiver to connect")
    tell.say(f"office receiver connected; agent running as pid {agent.pid} "
             f"(log {agent_log})")
    from demo.bsre import DemoAuthority

    bsre = DemoAuthority.create(root / "bsre")  # the office trusts its root for TTE
    web_url, web_password = _start_web(tell, root, office_db, stack, broker.directory,
                                       bsre.cert_file)
    web = OfficeWeb(web_url, "demo", web_password)
    seen = _wait(lambda: _office_kit(office_db, KIT_ID), 30,
                 "the kit's first location and health at the office")
    where, health = json.loads(seen["location"]), json.loads(seen["health"])
    tell.say(f"office sees {KIT_ID} {'online' if seen['online'] else 'offline'} at "
             f"{where['lat']:.5f}, {where['lon']:.5f} (OwnTracks location), battery "
             f"{where.get('batt')}%")
    tell.say("health: " + ", ".join(f"{k}={v}" for k, v in sorted(health.items())
                                    if v is not None))
    _fleet_from_the_page(tell, web)

    from demo.office_flow import DemoOfficeFlow

    flow = DemoOfficeFlow(web, receiver.db.alias, KIT_ID, tell.say, tell.step, root / "bsre")
    today = _wib_today()
    flow.register_and_import(today)
    flow.officers_and_kit(_wait)
    flow.schedule(today)
    flow.reply_letter(bsre)
    flow.checkout()
    assignment_id = flow.send_assignment(_wait)
    _wait(lambda: _inbox(config), 30, "the assignment in the kit's inbox")
    tell.say("the agent verified the office signature and kept it sealed in the inbox "
             "(it cannot open it without an officer)")

    with Store.open(config.store_path) as store:
        vault = open_vault(config, store)
        tell.step("Officer logs in: a wrong PIN first, then the right one")
        try:
            vault.unlock(OFFICER, "000000" if tpm != "off" else "0000000000")
        except VaultError as exc:
            tell.say(f"kiosk says: {exc.text(lang)}")
        key = vault.unlock(OFFICER, pin)
        tell.say("unlocked: the officers' data key is in memory")
        opened = open_inbox(store, key, vault, OfficePublicKeys.load(config.keys_dir))
        assignment = load_assignment(store, key, assignment_id)
        key.forget()
        tell.say(f"assignment {', '.join(opened)} opened and stored, every name, NIK and "
                 f"address encrypted under the data key: {len(assignment.targets)} targets, "
                 f"visit {assignment.visit_date}")
    flow.opened(_wait)

    tell.step("Kit devices open through their real drivers (the agent holds GNSS and modem)")
    devices = KitDevices.open(config, want=("camera", "fingerprint", "battery"))
    try:
        for name in ("camera", "fingerprint", "battery"):
            problem = devices.missing(lang).get(name)
            tell.say(f"{name:<12} {'ready' if problem is None else 'MISSING: ' + problem}")
        fix = devices.gnss_fix()
        if fix is not None:
            tell.say(f"GNSS fix from the agent: {fix.lat:.5f}, {fix.lon:.5f} "
                     f"+/- {fix.accuracy_m:.0f} m, {fix.satellites} satellites")
        if devices.battery is not None:
            status = devices.battery.read()
            tell.say(f"battery {status.percent:.0f}%, {status.status}")
        if devices.fingerprint is not None:
            tell.say(f"fingerprint sensor: {devices.identities()['fingerprint']}")

        if interactive:
            devices.close()
            tell.step("Bedside visits by touch: the kiosk opens on the emulated devices")
            tell.say(f"Log in as officer {OFFICER} with PIN {pin}, pick a resident and follow "
                     "the screens (the emulated resident places each finger by themself). "
                     "Close the window to let the office receive what you sealed.")
            from ui.launch import run_kiosk

            run_kiosk(config, lang=lang, emulator_control=rig.control_line)
            sealed = []
            return _after_visits(tell, config, office, provisioned, assignment, office_db,
                                 sealed, lang, pin, headless=headless, web=web, flow=flow)
        tell.step("Bedside visits (the headless driver drives the same API as the kiosk)")
        script = VisitScript(officer=OFFICER, pin=pin, assignment=assignment.id, visits=[
            # The first still is taken in the cluttered room; the photo check names the
            # background and its fix, the officer hangs the plain cloth, the next passes.
            Visit(target=1, photo_scene=["cluttered", "good"],
                  witness={"name": "Sulastri", "role": "perangkat desa", "consent": True}),
            Visit(target=2, exceptions={4: "amputated", 5: "amputated"},
                  cannot_sign="kedua tangan lemah (stroke)",
                  witness={"name": "Sunarti", "role": "anak kandung", "consent": True}),
            Visit(target=3, outcome="refused", note="keluarga menolak perekaman hari ini"),
        ])
        driver = ScriptedVisits(config, devices, tell.say, lang=lang,
                                emulator_control=rig.control_line)
        sealed = driver.run(script)
    finally:
        devices.close()
    return _after_visits(tell, config, office, provisioned, assignment, office_db, sealed, lang,
                         pin, headless=headless, web=web, flow=flow)


def _after_visits(tell: Narrator, config: Any, office: OfficeKeys, provisioned: Any,
                  assignment: Assignment, office_db: Path, sealed: list[Any],
                  lang: str, pin: str, headless: bool = True,
                  web: OfficeWeb | None = None, flow: Any = None) -> int:
    from kit.records import target_states
    from office.db import OfficeDb

    tell.step("What the kit holds now")
    with Store.open(config.store_path) as store:
        # Each target's status and outcome are encrypted: an officer's key reads them.
        key = open_vault(config, store).unlock(OFFICER, pin)
        states = target_states(store, key, assignment.id)
        key.forget()
        for n, target in enumerate(assignment.targets, start=1):
            status, outcome = states[target.id]
            reason = f" ({outcome})" if status == "not_recorded" else ""
            tell.say(f"resident {n}: {status}{reason}")
    # What a thief with a copy of the SD card would find: every file of the kit.
    files = [f for f in config.data_dir.rglob("*") if f.is_file()]
    kit_bytes = b"".join(f.read_bytes() for f in files)
    leaks = [t for t in assignment.targets for secret in (t.name, t.nik, t.id)
             if secret.encode() in kit_bytes]
    tell.say(f"byte search of all {len(files)} kit files (kit.db, its WAL, keys) for every "
             f"name, NIK and target id: {'FOUND ' + str(len(leaks)) if leaks else 'none found'}")

    tell.step("The agent uploads the sealed records; the office stores them and sends receipts")
    with Store.open(config.store_path) as store:
        ids = [s.id for s in sealed] or store.record_ids()
    _wait(lambda: _outbox_empty(config), 60, "the kit's outbox to empty")
    db = OfficeDb.open(office_db)
    try:
        for record_id in ids:
            row = db.record(KIT_ID, record_id)
            tell.say(f"record {record_id}: at the office ({row['size'] if row else '?'} bytes), "
                     f"receipt received, payload deleted from the kit")
        blobs = [db.record_blob(KIT_ID, record_id) for record_id in ids]
        kit_row = db.kit(KIT_ID) or {}
        security = json.loads(kit_row.get("status") or "{}").get("security") or "?"
        tell.say(f"the office's view of {KIT_ID}: keys "
                 f"{'sealed in its TPM' if security == 'tpm' else security + ' (no TPM!)'}")
    finally:
        db.close()

    tell.step("Office opens the sealed records; the kit cannot")
    kit_public = provisioned.kit_keys.public
    for blob in blobs:
        if blob is None:
            tell.say("a record is missing at the office")
            continue
        header = read_header(blob)
        _, recording = open_record(blob, office, lambda _kit: kit_public.sign)
        summary = describe(recording)
        tell.say(f"record {header['record_id']}: {summary['outcome']}; photo {summary['photo']}"
                 f", {summary['fingers_captured']} fingerprints, exceptions "
                 f"{summary['finger_exceptions'] or 'none'}, signature {summary['signature']}, "
                 f"GNSS {'yes' if recording.gnss else 'no'}")
        try:
            open_sealed(blob, recipient=provisioned.kit_keys.box, sender=kit_public.sign)
        except JaranIjoError as exc:
            tell.say(f"  with the kit's own key: {exc.text(lang)}")
    if web is not None:
        _records_from_the_pages(tell, web, office_db, ids)
        if flow is not None:
            flow.close_the_loop()
        _alert_from_the_page(tell, web, office_db)
        _commands_from_the_page(tell, web, office_db, lang)
        if headless:
            _revoke_from_the_page(tell, web, office_db, config)
        else:
            tell.say("on the kit page, 'Cabut kit (hilang)…' revokes a lost kit: try it last")
    if not headless:
        tell.step("The office keeps running: watch the kit in the web app; Ctrl-C ends the demo")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)
    tell.step("Done")
    return 0


def _wib_today() -> Any:
    """Today in Blitar (WIB): the day the office's pages think it is."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo("Asia/Jakarta")).date()


def _selftest_at_checkout(tell: Narrator, config: Any, lang: str) -> None:
    """What a technician runs before the kit leaves the office (SOP step 6): `jaranijo
    selftest`, as a command, while the agent and the kiosk do not hold the devices yet."""
    tell.step("Technician, at checkout: `jaranijo selftest` (every device, clock, disk, keys, "
              "store, broker)")
    tell.say("GPIO runs on gpiozero's mock pins here (this PC has no Raspberry Pi header)")
    done = subprocess.run(
        [sys.executable, "-m", "sync.cli", "--config", str(config.source), "--lang", lang,
         "selftest", "--finger-timeout", "20"],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONUNBUFFERED": "1"})
    for line in done.stdout.strip().splitlines():
        tell.say("  " + line)
    verdict = {0: "all required checks passed", 1: "a required check FAILED (see above)"}
    tell.say(f"exit code {done.returncode}: {verdict.get(done.returncode, done.stderr[-300:])}; "
             f"the result is kept on the kit for the checkout record "
             f"({config.data_dir / 'selftest-last.json'})")


def _first_boot_of_a_second_kit(tell: Narrator, root: Path, broker: Any, lang: str) -> None:
    """Issue 14's way to set a kit up: a file on the SD card's boot partition, read once at
    first boot (`jaranijo firstboot`), and the officer's own PIN chosen at first login."""
    from kit.config import load_config
    from kit.visit import VisitController

    kit_id, officer = "blitar-kit-02", "P-0002"
    tell.step(f"Technician: kit {kit_id} sets itself up at first boot from a file on its "
              f"SD card")
    boot = root / "kit-02-boot"  # stands in for the card's FAT partition (/boot/firmware)
    boot.mkdir()
    for name in ("office-seal.pub", "office-sign.pub"):
        (boot / name).write_bytes((root / "office" / "keys" / name).read_bytes())
    code = "".join(secrets.choice("0123456789") for _ in range(10))
    ca_pem = broker.ca_file.read_text().strip()
    file = boot / "jaranijo-provision.toml"
    file.write_text("\n".join([
        "[kit]", f'id = "{kit_id}"', f'language = "{lang}"', "",
        "[broker]", f'url = "mqtts://127.0.0.1:{broker.port}"',
        f'password = "{secrets.token_urlsafe(12)}"', f'ca_pem = """{ca_pem}"""', "",
        "[office]", 'seal_public_file = "office-seal.pub"', 'sign_public_file = "office-sign.pub"',
        "", "[[officers]]", f'id = "{officer}"', f'enrolment_code = "{code}"', "",
        "[settings.security]", 'tpm = "off"', ""]))
    tell.say(f"{file.name}: kit id, broker, the office CA and public keys, officer {officer} "
             f"with a one-time enrolment code (no PIN in the file)")
    data, config_path = root / "kit-02", root / "kit-02" / "kit.toml"
    done = subprocess.run([sys.executable, "-m", "sync.cli", "--config", str(config_path),
                           "firstboot", "--file", str(file), "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=120)
    for line in done.stdout.strip().splitlines():
        tell.say("  " + line)
    if done.returncode != 0:
        tell.say(f"first boot FAILED (exit {done.returncode}): {done.stderr[-400:]}")
        return
    tell.say(f"the file is {'still there (!)' if file.exists() else 'shredded and gone'}: it "
             f"held the broker password and the enrolment code")
    controller = VisitController(load_config(config_path))
    try:
        controller.login(officer, code)
        tell.say(f"officer {officer} logs in with the code: the kiosk asks for a PIN of their "
                 f"own first (must_set_pin={controller.must_set_pin})")
        try:
            controller.load_assignment()
        except JaranIjoError as exc:
            tell.say(f"anything else before that is refused: {exc.text(lang)}")
        pin = "".join(secrets.choice("0123456789") for _ in range(10))
        controller.set_pin(pin, pin)
        controller.session.logout()
        try:
            controller.login(officer, code)
            tell.say("WARNING: the enrolment code still opens the kit")
        except JaranIjoError:
            tell.say("PIN chosen (typed twice); the enrolment code no longer opens the kit")
    finally:
        controller.close()


def _wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise JaranIjoError(id=f"Demo: menunggu {what} terlalu lama",
                                en=f"Demo: gave up waiting for {what}", code="demo_timeout")
        time.sleep(0.2)


def _office_kit(db_path: Path, kit_id: str) -> dict[str, Any] | None:
    from office.db import OfficeDb

    db = OfficeDb.open(db_path)
    try:
        row = db.kit(kit_id)
    finally:
        db.close()
    return row if row and row.get("location") and row.get("health") else None


def _inbox(config: Any) -> bool:
    with Store.open(config.store_path, check=False) as store:
        return bool(store.inbox())


def _outbox_empty(config: Any) -> bool:
    with Store.open(config.store_path, check=False) as store:
        return not store.outbox()


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
