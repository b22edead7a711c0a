"""A viewer (fleet only) gets no personal data from any page, export or API (issue 12,
Tests; issue 11, "each role sees exactly what it may").

Every URL pattern of ``office/web/urls.py`` is resolved (path parameters filled from the
fixtures: stored records with images, a quarantined record, a visit request with its
scan and targets, a visit, a kit checkout, an alert, a working-day entry) and requested
from the real web server (``office web`` in its own process) as a logged-in viewer: GET,
and POST with a valid CSRF token. Each answer is a refusal, a redirect, or a page that
names none of the fixture residents and holds none of their NIKs or image bytes; the SSE
stream is read for a while as a browser would. A URL pattern added later without a value
for its parameters fails here until it is added to :data:`VALUES`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from office import visits as flow
from sync.domain import Outcome
from tests.office.records_helpers import (
    KIT,
    RecordOffice,
    face_jpeg,
    finger_png,
    recording,
    sample_assignment,
    signature_png,
)
from tests.office.web.fleet_helpers import PASSWORD, write_secret_key
from tests.office.web.server import running_web

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
# Answers that hold nothing of a page (binary answers are flagged apart, below).
REFUSED = {302, 400, 403, 404, 405}
SSE_READ_S = 3.0


@dataclass
class Site:
    url: str
    values: dict[str, str]
    names: list[str]
    niks: list[str]
    images: list[bytes]
    cookies: dict[str, str]
    token: str


def _request(site: Site, method: str, where: str, data: dict[str, str] | None = None,
             *, stream: bool = False) -> tuple[int, str, bytes]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    cookie = "; ".join(f"{k}={v}" for k, v in site.cookies.items())
    req = urllib.request.Request(site.url + where, data=body, method=method, headers={
        "Cookie": cookie, "Accept-Language": "id", "User-Agent": "jaranijo-test/1"})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=15) as resp:
            if not stream:
                return int(resp.status), str(resp.headers.get("Content-Type", "")), resp.read()
            got, until = b"", time.monotonic() + SSE_READ_S
            while time.monotonic() < until:
                chunk = resp.read1(65536)
                if not chunk:
                    break
                got += chunk
            return int(resp.status), str(resp.headers.get("Content-Type", "")), got
    except urllib.error.HTTPError as exc:
        return int(exc.code), str(exc.headers.get("Content-Type", "")), exc.read()
    except TimeoutError:
        return 200, "text/event-stream", b""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _login(url: str) -> tuple[dict[str, str], str]:
    """Sign in as the viewer through the login form: session and CSRF cookies, and the
    form token every POST carries."""
    opener = urllib.request.build_opener(_NoRedirect)
    with opener.open(url + "/login/", timeout=15) as resp:
        page = resp.read().decode()
        cookies = _set_cookies(resp.headers.get_all("Set-Cookie") or [])
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, page
    req = urllib.request.Request(url + "/login/", data=urllib.parse.urlencode({
        "csrfmiddlewaretoken": token.group(1), "username": "pemantau",
        "password": PASSWORD}).encode(), method="POST", headers={
        "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
    try:
        opener.open(req, timeout=15)
    except urllib.error.HTTPError as exc:
        assert exc.code == 302, exc.read()[:2000]
        cookies.update(_set_cookies(exc.headers.get_all("Set-Cookie") or []))
    assert "sessionid" in cookies, cookies
    # Signing in rotates the CSRF secret: the token comes from a page after it.
    req = urllib.request.Request(url + "/", headers={
        "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
    with opener.open(req, timeout=15) as resp:
        fresh = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', resp.read().decode())
        cookies.update(_set_cookies(resp.headers.get_all("Set-Cookie") or []))
    assert fresh, "no form on the fleet page"
    return cookies, fresh.group(1)


def _set_cookies(headers: list[str]) -> dict[str, str]:
    return {h.split("=", 1)[0]: h.split("=", 1)[1].split(";", 1)[0] for h in headers}


def _fixtures(office: RecordOffice) -> dict[str, str]:
    """Everything a page can show, on the office database: the values of every path
    parameter of the URL patterns."""
    from django.contrib.auth.models import Group, User

    from office.models import (
        Alert,
        KitCheckout,
        Officer,
        Village,
        Visit,
        VisitRequest,
        WorkingDayOverride,
    )

    alias = office.db.alias
    now = time.time()
    today = dt.date.today()
    full = recording(0)
    partial = recording(1, outcome=Outcome.PARTIAL, missing_fingers=(9,))
    rid = office.store(full)
    office.store(partial)
    blob = office.seal(recording(2))
    office.db.quarantine_record(KIT, rid, "ab" * 32, blob, "2026-12-01T00:00:00Z")
    office.db.set_kit(KIT, online=1, session=1, status="{}", status_at=now, last_seen=now)
    alert = Alert.objects.using(alias).create(kit_id=KIT, kind="battery", raised_at=now,
                                              detail="12%")
    day = WorkingDayOverride.objects.using(alias).create(
        day=today + dt.timedelta(days=30), working=False, note="cuti bersama (SK)",
        created_at=now)
    vr = VisitRequest.objects.using(alias).create(
        letter_number="470/12/2026", letter_date=today - dt.timedelta(days=7),
        received_on=today - dt.timedelta(days=6), applicant_kind="village",
        kecamatan="Kanigoro", village="Papungan", status="verified", scan=PDF,
        scan_name="surat.pdf", scan_type="application/pdf", created_at=now,
        created_by="dafduk")
    vault = flow.TargetVault(office.office_keys, office.kits_dir)
    targets = [flow.add_target(vr, t, vault, "dafduk", source_row=i + 2)
               for i, t in enumerate(sample_assignment().targets)]
    officer = Officer.objects.using(alias).create(officer_id="P-0001", name="Sri Wahyuni")
    village = Village.objects.using(alias).create(kecamatan="Kanigoro", name="Papungan")
    visit = Visit.objects.using(alias).create(
        request=vr, visit_date=today, start_time=dt.time(8), recording_point="house_to_house",
        officers="P-0001", kit_id=KIT, assignment_id="0193a2c4-0000-7000-8000-00000000a551",
        created_at=now, created_by="dafduk", updated_at=now, updated_by="dafduk")
    for target in targets:
        target.visit = visit
        target.save(using=alias)
    checkout = KitCheckout.objects.using(alias).create(
        kit_id=KIT, visit=visit, taken_by="P-0001", out_at=now, out_by="dafduk", due_on=today)
    viewer = User.objects.db_manager(alias).create_user("pemantau", password=PASSWORD)
    viewer.groups.add(Group.objects.using(alias).get(name="viewer"))
    sha = office.db.quarantined(KIT)[0]["sha256"]
    return {"kit_id": KIT, "record_id": rid, "sha256": sha, "part": "photo", "name": "ping",
            "alert_id": str(alert.pk), "override_id": str(day.pk), "request_id": str(vr.pk),
            "target_id": targets[0].id, "village_id": str(village.pk),
            "officer_id": officer.officer_id, "visit_id": str(visit.pk),
            "checkout_id": str(checkout.pk), "path": "office.css"}


def every_url(values: dict[str, str]) -> list[str]:
    """Every route of the web app, its parameters filled from ``values``."""
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> Iterator[str]:
        for pattern in patterns:
            text = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, text)
            else:
                yield text

    urls = []
    for route in walk(get_resolver().url_patterns, ""):
        if route.startswith("^static/"):
            urls.append("static/" + values["path"])
            continue
        names = re.findall(r"<(?:\w+:)?(\w+)>", route)
        missing = [n for n in names if n not in values]
        assert not missing, f"{route}: give the sweep a value for {missing}"
        urls.append(re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], route))
    return urls


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("sweep")
    office = RecordOffice(root)
    values = _fixtures(office)
    write_secret_key(root / "web")
    people = [recording(i).target for i in range(3)] + list(sample_assignment().targets)
    images = [face_jpeg()[0], finger_png(recording(0).target.nik, 1), signature_png()]
    with running_web(root / "office.db", root / "web",
                     args=("--keys", str(office.keys_dir), "--kits",
                           str(office.kits_dir))) as url:
        cookies, token = _login(url)
        yield Site(url, values, sorted({t.name for t in people}),
                   sorted({t.nik for t in people}), images, cookies, token)


def leaks(site: Site, body: bytes) -> list[str]:
    text = body.decode("utf-8", "replace")
    found = [n for n in site.names if n in text or n.upper() in text]
    found += [nik for nik in site.niks if nik in text]
    found += [f"image bytes {i}" for i, image in enumerate(site.images)
              if image[200:264] in body]
    for magic, what in ((b"\x89PNG", "a PNG"), (b"\xff\xd8\xff", "a JPEG"),
                        (b"%PDF", "a PDF"), (b"PK\x03\x04", "a ZIP")):
        if magic in body:
            found.append(what)
    return found


def test_a_viewer_gets_no_personal_data_from_any_url(site: Site) -> None:
    urls = every_url(site.values)
    assert len(urls) >= 60, urls  # every module's routes, not a few
    checked = 0
    for where in urls:
        if where.startswith("static/"):
            status, _type, body = _request(site, "GET", "/" + where)
            assert status == 200 and not leaks(site, body)
            continue
        stream = where == "fleet/events"
        # (POST /logout/ would end the viewer's session: the rest would only redirect)
        for method in ("GET",) if where == "logout/" else ("GET", "POST"):
            data = {"csrfmiddlewaretoken": site.token} if method == "POST" else None
            status, ctype, body = _request(site, method, "/" + where, data, stream=stream)
            problems = leaks(site, body)
            assert not problems, f"{method} /{where} ({status}) shows {problems}"
            # A refusal, a redirect, or a plain page (checked above): never a file.
            assert status in REFUSED or (status == 200 and ctype.startswith(
                ("text/html", "text/event-stream"))), f"{method} /{where}: {status} {ctype}"
            assert b'id="csrf-failure"' not in body, f"{method} /{where}: the token refused"
        checked += 1
    # The token is good (a refused CSRF check would make every POST above a 403): the
    # language switch, open to all, takes it.
    status, _type, _body = _request(site, "POST", "/i18n/setlang/",
                                    {"csrfmiddlewaretoken": site.token, "language": "id"})
    assert status == 302
    # Still signed in (so every answer above was the viewer's), and the two pages that must
    # answer a viewer do: the fleet page and its live stream, with the kit.
    status, _type, body = _request(site, "GET", "/")
    assert status == 200 and KIT in body.decode()
    status, ctype, body = _request(site, "GET", "/fleet/events?since=0", stream=True)
    assert status == 200 and ctype.startswith("text/event-stream") and b"retry:" in body
    assert KIT.encode() in body and not leaks(site, body)  # every row since 0, as a reconnect
    assert checked == len(urls) - 1


def test_the_sweep_sees_what_an_operator_would(site: Site) -> None:
    """The detector is not blind: it finds a resident's name and NIK as a page would
    show them, and an image's bytes."""
    fake = dataclasses.replace(site)
    sample = sample_assignment().targets[0]
    assert leaks(fake, f"<td>{sample.name}</td><td>{sample.nik}</td>".encode())
    assert leaks(fake, b"xx" + site.images[0] + b"yy")
