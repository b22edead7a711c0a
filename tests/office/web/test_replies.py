"""The reply letter page (SOP step 4) over HTTP, against ``jaranijo office web`` in its own
process on a real SQLite office database.

The head's TTE is played by a test certificate authority standing in for BSrE and
pyHanko's signer (the approach of ``tests/office/test_letters.py``, whose helpers are
reused): the draft downloaded from the page is signed as BSrE's service would sign it
and uploaded back. What is checked is what the office relies on: the draft handed out is
byte for byte the stored one; only that draft, signed by a holder of a certificate under
the configured root and left unchanged, is accepted; every refusal says why in Bahasa
Indonesia; the letter cannot be marked sent without a verified copy (the server refuses,
whatever the page shows); and the draft looks right (rendered to PNG with pdftoppm).

The helpers at the top (a desk with users, a scheduled visit, an HTTP session that posts
forms and files) are shared with ``test_checkout.py`` and the browser test.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import http.cookiejar
import json
import re
import secrets
import shutil
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from office.db import setup_django
from tests.browser import ARTEFACTS
from tests.office.test_letters import HEAD, Authority, make_authority, sign
from tests.office.web.fleet_helpers import Fleet, make_user, session_cookie, write_secret_key
from tests.office.web.server import running_web

setup_django()
from office.models import (  # noqa: E402  (needs Django set up)
    AuditEntry,
    Officer,
    ReplyLetter,
    RequestEvent,
    Target,
    Visit,
    VisitRequest,
)

WIB = zoneinfo.ZoneInfo("Asia/Jakarta")
KIT = "blitar-kit-01"
NIP = "197001011990031001"


def today() -> dt.date:
    return dt.datetime.now(WIB).date()


# -- the desk: a database, users, a visit --------------------------------------------------------
def add_visit(alias: str, *, village: str = "Kemloko", kit_id: str = KIT,
              day: dt.date | None = None, officers: tuple[str, ...] = ("ptg-0101", "ptg-0102"),
              verified: int = 3, refused: int = 1, status: str = "scheduled",
              agency: str = "") -> Visit:
    """A request (village or agency) with targets, and its scheduled visit. The targets'
    sealed data are placeholders: these pages count targets, they never open them."""
    now = time.time()
    day = day or today() + dt.timedelta(days=7)
    for officer in officers:
        Officer.objects.using(alias).get_or_create(
            officer_id=officer, defaults={"name": f"Petugas {officer[-3:]}"})
    number = f"470/{secrets.randbelow(900) + 100}/409.112.03/{day.year}"
    req = VisitRequest.objects.using(alias).create(
        letter_number=number, letter_date=today() - dt.timedelta(days=10),
        received_on=today() - dt.timedelta(days=8),
        applicant_kind="agency" if agency else "village", kecamatan="Nglegok",
        village=village, agency=agency, agency_reason="medical" if agency else "",
        status=status, created_at=now, created_by="staf.dafduk")
    visit = Visit.objects.using(alias).create(
        request=req, visit_date=day, start_time=dt.time(8, 30), end_time=dt.time(12, 0),
        recording_point="hospital" if agency else "house_to_house",
        officers=",".join(officers), kit_id=kit_id, assignment_id=secrets.token_hex(8),
        created_at=now, created_by="staf.dafduk", updated_at=now, updated_by="staf.dafduk")
    for i in range(verified + refused):
        Target.objects.using(alias).create(
            id=secrets.token_hex(16), request=req, visit=visit, sealed=b"\0" * 32,
            category="elderly", place="home", village=village, source_row=i + 1,
            verified=i < verified, added_at=now, added_by="staf.dafduk")
    return visit


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Session:
    """A logged-in browser session over plain HTTP: its cookie jar (session and CSRF
    cookies), forms posted with the page's CSRF token, redirects not followed."""

    def __init__(self, base: str, cookie: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        host = urllib.parse.urlsplit(base).hostname or ""
        self.jar.set_cookie(http.cookiejar.Cookie(
            0, "sessionid", cookie, None, False, host, False, False, "/", True, False, None,
            False, None, None, {}))
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)
        self.csrf = ""

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str = "") -> Reply:
        headers = {"Accept-Language": "id", "User-Agent": "jaranijo-test/1"}
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers=headers)
        try:
            with self.opener.open(req, timeout=60) as resp:
                reply = Reply(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as exc:
            reply = Reply(exc.code, exc.headers, exc.read())
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', reply.body)
        if match:
            self.csrf = match.group(1).decode()
        return reply

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, data: dict[str, str], *, page: str | None = None) -> Reply:
        """POST ``data`` as a form, with the CSRF token of ``page`` (default: ``path``)."""
        self.get(page or path)
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": self.csrf, **data}).encode()
        return self.request("POST", path, body, "application/x-www-form-urlencoded")

    def upload(self, path: str, name: str, filename: str, data: bytes, *, page: str) -> Reply:
        """POST one file as ``multipart/form-data`` (as the browser's file input does)."""
        self.get(page)
        boundary = "----jaranijo" + secrets.token_hex(8)
        parts = [
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrfmiddlewaretoken\""
            f"\r\n\r\n{self.csrf}\r\n".encode(),
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/pdf\r\n\r\n".encode()
            + data + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
        return self.request("POST", path, b"".join(parts),
                            f"multipart/form-data; boundary={boundary}")


@dataclass
class Desk:
    """The office web app with a scheduler (Bidang Dafduk) and a viewer logged in."""

    fleet: Fleet
    url: str
    staff: Session
    viewer: Session
    alias: str
    bsre: Authority | None
    folder: Path
    cookies: dict[str, str] = field(default_factory=dict)


def start_desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *,
               roots: bool = True) -> Iterator[Desk]:
    """The desk, its web app started with ``JARANIJO_TTE_ROOTS`` pointing at the test
    CA's root (or unset, ``roots=False``) and the office keys (commands can be signed)."""
    fleet = Fleet(tmp_path)
    key = write_secret_key(tmp_path / "web")
    staff = make_user(fleet.db, "staf.dafduk",
                      perms=("view_fleet", "schedule_visits", "checkout_kits"))
    viewer = make_user(fleet.db, "pemantau")
    bsre = make_authority(tmp_path / "ca", "Uji BSrE Root CA") if roots else None
    if bsre is not None:
        monkeypatch.setenv("JARANIJO_TTE_ROOTS", str(bsre.cert_file))
    else:
        monkeypatch.delenv("JARANIJO_TTE_ROOTS", raising=False)
    cookies = {"staff": session_cookie(fleet.db, staff, key),
               "viewer": session_cookie(fleet.db, viewer, key)}
    with running_web(tmp_path / "office.db", tmp_path / "web",
                     args=("--keys", str(tmp_path / "keys"))) as url:
        yield Desk(fleet, url, Session(url, cookies["staff"]), Session(url, cookies["viewer"]),
                   fleet.db.alias, bsre, tmp_path, cookies)


@pytest.fixture
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    yield from start_desk(tmp_path, monkeypatch)


def letter_form(session: Session, visit: Visit, **changes: str) -> dict[str, str]:
    """The letter form's fields as the page prefilled them, with ``changes``."""
    page = session.get(f"/visits/{visit.pk}/letter/").text
    values: dict[str, str] = {}
    for name in ("number", "letter_date", "addressee", "addressee_place", "request_number",
                 "request_date", "visit_date", "visit_start", "visit_end", "recording_point",
                 "residents", "officers", "accompaniment", "head_name", "head_title",
                 "head_nip"):
        match = re.search(rf'name="{name}"[^>]*?value="([^"]*)"', page)
        values[name] = match.group(1) if match else ""
    copies = re.search(r'<textarea name="copies"[^>]*>\n?(.*?)</textarea>', page, re.S)
    values["copies"] = copies.group(1) if copies else ""
    values = {k: html.unescape(v) for k, v in values.items()}
    values.update(changes)
    return values


HEAD_FIELDS = {"head_name": HEAD, "head_title": "Pembina Utama Muda (IV/c)", "head_nip": NIP}


def make_draft(desk: Desk, visit: Visit, **changes: str) -> bytes:
    """Fill the form as staff would (number and head), make the draft, download it."""
    data = letter_form(desk.staff, visit, number=f"400.12.3.3/{visit.pk}/409.112/2026",
                       **{**HEAD_FIELDS, **changes})
    reply = desk.staff.post(f"/visits/{visit.pk}/letter/", data)
    assert reply.status == 302, reply.text[-2000:]
    download = desk.staff.get(f"/visits/{visit.pk}/letter/draft.pdf")
    assert download.status == 200
    return download.body


def letter_of(desk: Desk, visit: Visit) -> ReplyLetter:
    return ReplyLetter.objects.using(desk.alias).get(visit_id=visit.pk)


def upload(desk: Desk, visit: Visit, signed: bytes) -> Reply:
    return desk.staff.upload(f"/visits/{visit.pk}/letter/signed/", "signed", "surat-ttd.pdf",
                             signed, page=f"/visits/{visit.pk}/letter/")


def audit_actions(desk: Desk) -> list[tuple[str, str, str]]:
    return [(e.action, e.subject, e.detail) for e in
            AuditEntry.objects.using(desk.alias).order_by("id")
            if e.action.startswith("reply_")]


# -- the tests ----------------------------------------------------------------------------------
def test_the_form_is_prefilled_from_the_visit_and_says_what_to_fix(desk: Desk) -> None:
    visit = add_visit(desk.alias)
    data = letter_form(desk.staff, visit)
    req = visit.request
    assert data["addressee"] == "Kepala Desa Kemloko"
    assert data["request_number"] == req.letter_number
    assert data["letter_date"] == today().isoformat()
    assert data["visit_date"] == visit.visit_date.isoformat()
    assert (data["visit_start"], data["visit_end"]) == ("08:30", "12:00")
    assert data["recording_point"] == "rumah ke rumah di Desa Kemloko"
    assert (data["residents"], data["officers"]) == ("3", "2")  # verified targets only
    assert data["accompaniment"] == "perangkat desa/kelurahan setempat"
    # Wrong fields: each says what to fix at its place, in Indonesian; nothing stored.
    bad = {**data, "number": "", "head_name": HEAD, "head_title": "IV/c", "head_nip": "1970",
           "visit_end": "08:00", "residents": "0"}
    reply = desk.staff.post(f"/visits/{visit.pk}/letter/", bad)
    assert reply.status == 400
    errors = dict(re.findall(r'id="error-(\w+)">([^<]*)<', reply.text))
    assert errors["number"].strip() == "Isi kolom ini."
    assert errors["head_nip"].strip() == "NIP harus 18 angka"
    assert errors["visit_end"].strip() == "Jam selesai harus setelah jam mulai"
    assert errors["residents"].strip() == "Jumlah sasaran minimal 1 orang"
    assert not ReplyLetter.objects.using(desk.alias).exists()
    early = upload(desk, visit, b"%PDF-1.7\n")  # a signed copy before any draft
    assert early.status == 400 and 'id="upload-problem"' in early.text
    assert "Buat draf surat dulu" in early.text
    # An agency's letter goes to the agency, and its recording point is the agency.
    hospital = add_visit(desk.alias, agency="RSUD Ngudi Waluyo Wlingi", village="Wlingi")
    other = letter_form(desk.staff, hospital)
    assert other["addressee"] == "RSUD Ngudi Waluyo Wlingi"
    assert other["recording_point"] == "RSUD Ngudi Waluyo Wlingi"


def test_draft_kept_byte_for_byte_signed_copy_verified_then_sent(desk: Desk) -> None:
    assert desk.bsre is not None
    visit = add_visit(desk.alias)
    draft = make_draft(desk, visit)
    row = letter_of(desk, visit)
    assert draft == bytes(row.draft)
    assert row.draft_sha256 == hashlib.sha256(draft).hexdigest()
    assert row.fields["head_nip"] == NIP and row.drafted_by == "staf.dafduk"
    head = desk.staff.get(f"/visits/{visit.pk}/letter/draft.pdf").headers
    assert head["Content-Type"] == "application/pdf"
    assert head["Content-Disposition"] == (
        f'attachment; filename="surat-balasan-kunjungan-{visit.pk}-'
        f'{visit.visit_date:%Y%m%d}.pdf"')

    # Not yet signed: marking it sent is refused by the server, whatever the page shows.
    refused = desk.staff.post(f"/visits/{visit.pk}/letter/sent", {},
                              page=f"/visits/{visit.pk}/letter/")
    assert refused.status == 409
    assert "Surat belum dapat ditandai terkirim" in refused.text
    assert letter_of(desk, visit).sent_at is None

    signer = desk.bsre.issue(desk.folder / "head", HEAD)
    signed = sign(draft, signer)
    assert upload(desk, visit, signed).status == 302
    row = letter_of(desk, visit)
    assert bytes(row.signed) == signed and row.verified_at is not None
    assert row.signed_sha256 == hashlib.sha256(signed).hexdigest()
    assert row.verification["ok"] is True and row.verification["reasons"] == []
    assert row.verification["signer_name"] == HEAD
    assert row.verification["certificate_serial"] == format(
        signer.signing_cert.serial_number, "X")
    assert "Uji BSrE Root CA" in row.verification["certificate_issuer"]
    page = desk.staff.get(f"/visits/{visit.pk}/letter/").text
    assert "Tanda tangan sah" in page and HEAD in page and 'id="mark-sent"' in page
    assert desk.staff.get(f"/visits/{visit.pk}/letter/signed.pdf").body == signed

    assert desk.staff.post(f"/visits/{visit.pk}/letter/sent", {},
                           page=f"/visits/{visit.pk}/letter/").status == 302
    row = letter_of(desk, visit)
    assert row.sent_at is not None and row.sent_by == "staf.dafduk"
    req = VisitRequest.objects.using(desk.alias).get(pk=visit.request_id)
    assert req.status == "letter_sent"
    notes = [e.note for e in RequestEvent.objects.using(desk.alias).filter(request=req)]
    assert any("terkirim" in n for n in notes)
    assert [a for a, _s, _d in audit_actions(desk)] == ["reply_draft", "reply_signed",
                                                        "reply_sent"]
    assert all(s == f"visit {visit.pk}" for _a, s, _d in audit_actions(desk))

    # The head's fields are remembered for the next letter.
    second = add_visit(desk.alias, village="Satreyan")
    remembered = letter_form(desk.staff, second)
    assert (remembered["head_name"], remembered["head_nip"]) == (HEAD, NIP)


def test_every_wrong_copy_is_refused_with_its_reason_and_cannot_be_sent(
        desk: Desk, tmp_path: Path) -> None:
    assert desk.bsre is not None
    visit = add_visit(desk.alias)
    draft = make_draft(desk, visit)
    signer = desk.bsre.issue(desk.folder / "head", HEAD)

    # A copy signed over another draft (another visit's letter).
    other_visit = add_visit(desk.alias, village="Satreyan")
    other_draft = make_draft(desk, other_visit)
    tampered = bytearray(sign(draft, signer))
    at = tampered.index(b"stream", 200) + 40  # inside page 1's content stream
    tampered[at] ^= 0x01
    stranger = make_authority(tmp_path / "other-ca", "Bukan BSrE Root CA").issue(
        tmp_path / "stranger", HEAD)
    cases = {
        "not_draft": (sign(other_draft, signer), "bukan draf surat ini"),
        "signature_broken": (bytes(tampered), "Tanda tangan elektronik rusak"),
        "untrusted_signer": (sign(draft, stranger), "tidak diterbitkan oleh otoritas"),
    }
    for code, (copy, words) in cases.items():
        assert upload(desk, visit, copy).status == 302
        row = letter_of(desk, visit)
        assert row.verified_at is None and row.verification["ok"] is False
        assert [r["code"] for r in row.verification["reasons"]] == [code]
        page = desk.staff.get(f"/visits/{visit.pk}/letter/").text
        assert "Salinan bertanda tangan ditolak" in page and words in page, code
        assert 'id="mark-sent"' not in page
        refused = desk.staff.post(f"/visits/{visit.pk}/letter/sent", {},
                                  page=f"/visits/{visit.pk}/letter/")
        assert refused.status == 409 and letter_of(desk, visit).sent_at is None

    # Neither a file that is not a PDF, nor one over 10 MiB.
    assert upload(desk, visit, b"bukan pdf").status == 302
    assert "Berkas bukan PDF" in desk.staff.get(f"/visits/{visit.pk}/letter/").text
    big = upload(desk, visit, b"%PDF-1.7\n" + b"0" * (10 * 1024 * 1024))  # just over
    assert big.status == 400 and "paling besar 10 MiB" in big.text
    huge = upload(desk, visit, b"%PDF-1.7\n" + b"0" * (11 * 1024 * 1024))
    assert huge.status == 413 and "paling besar 10 MiB" in huge.text
    assert VisitRequest.objects.using(desk.alias).get(pk=visit.request_id).status == "scheduled"
    for _action, _subject, detail in audit_actions(desk):
        assert HEAD not in detail  # not even the (staff) signer's name: codes and digests


def test_remaking_the_draft_needs_a_tick_and_drops_the_signed_copy(desk: Desk) -> None:
    assert desk.bsre is not None
    visit = add_visit(desk.alias)
    draft = make_draft(desk, visit)
    signer = desk.bsre.issue(desk.folder / "head", HEAD)
    upload(desk, visit, sign(draft, signer))
    assert letter_of(desk, visit).verified_at is not None
    page = desk.staff.get(f"/visits/{visit.pk}/letter/").text
    assert "menghapus salinan bertanda tangan" in page  # the warning before the button

    data = letter_form(desk.staff, visit, accompaniment="Kepala Dusun dan perangkat desa")
    untick = desk.staff.post(f"/visits/{visit.pk}/letter/", data)
    assert untick.status == 400 and "Centang dulu" in untick.text
    assert letter_of(desk, visit).draft_sha256 == hashlib.sha256(draft).hexdigest()

    assert desk.staff.post(f"/visits/{visit.pk}/letter/", {**data, "replace": "on"}).status == 302
    row = letter_of(desk, visit)
    assert row.draft_sha256 != hashlib.sha256(draft).hexdigest()
    assert row.signed is None and row.verification is None and row.verified_at is None
    assert desk.staff.get(f"/visits/{visit.pk}/letter/signed.pdf").status == 404
    # The old signed copy no longer fits the new draft.
    upload(desk, visit, sign(draft, signer))
    assert [r["code"] for r in letter_of(desk, visit).verification["reasons"]] == ["not_draft"]


def test_a_viewer_gets_no_letter(desk: Desk) -> None:
    visit = add_visit(desk.alias)
    make_draft(desk, visit)
    assert desk.viewer.get(f"/visits/{visit.pk}/letter/").status == 403
    assert desk.viewer.get(f"/visits/{visit.pk}/letter/draft.pdf").status == 403


def test_without_a_trust_root_the_page_refuses_to_verify(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for desk in start_desk(tmp_path, monkeypatch, roots=False):
        visit = add_visit(desk.alias)
        draft = make_draft(desk, visit)
        page = desk.staff.get(f"/visits/{visit.pk}/letter/").text
        assert "Sertifikat akar TTE (BSrE) belum diatur" in page
        assert 'id="upload-form"' not in page
        ca = make_authority(tmp_path / "ca", "Uji BSrE Root CA")
        reply = upload(desk, visit, sign(draft, ca.issue(tmp_path / "head", HEAD)))
        assert reply.status == 400 and "belum diatur" in reply.text
        assert letter_of(desk, visit).signed is None


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


@pytest.mark.skipif(shutil.which("pdftoppm") is None,
                    reason="poppler-utils is not installed (apt-get install poppler-utils)")
def test_the_draft_made_on_the_page_renders_to_an_a4_image(desk: Desk, tmp_path: Path) -> None:
    """The draft the page made, as PNG in artefacts/web/reply-letter-draft.png (to look
    at): one A4 page at 100 dpi (827 x 1170 px)."""
    visit = add_visit(desk.alias)
    draft = make_draft(desk, visit)
    pdf = tmp_path / "draft.pdf"
    pdf.write_bytes(draft)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "100", "-singlefile", str(pdf),
                    str(ARTEFACTS / "reply-letter-draft")], check=True, timeout=60)
    png = (ARTEFACTS / "reply-letter-draft.png").read_bytes()
    assert png_size(png) == (827, 1170)  # 595 x 842 pt at 100/72, rounded up
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, timeout=60,
                          capture_output=True, text=True).stdout
    assert "\f" not in text.rstrip("\f")  # one page
    for part in ("Kepala Desa Kemloko", visit.request.letter_number, "3 (tiga) orang",
                 "rumah ke rumah di Desa Kemloko", "08.30 WIB s.d. 12.00", HEAD,
                 f"NIP. {NIP}"):
        assert part in text, part
    assert json.dumps(letter_of(desk, visit).fields)  # the fields are plain JSON
