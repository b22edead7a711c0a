"""The request pages (:mod:`office.web.requests`) through Django's test client, in this
process: registering a letter (its scan checked by its bytes), the head's disposition, the
target-list import in three steps with every kind of bad row, an XLSX list, editing a
target with a stale version, and the verification that moves the request on.

Each test runs inside one transaction on the settings' database that is rolled back at
its end (as Django's ``TestCase`` does), with the office keys of a temporary folder
(``OFFICE_KEYS_DIR``) and a temporary data folder for the sealed uploads. Every resident
is invented; their NIKs follow the rules for Kabupaten Blitar (35.05), made by
:func:`nik` as in ``tests/office/test_target_import.py``.
"""

from __future__ import annotations

import io
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import openpyxl
import pytest

from office.db import setup_django, use_database

setup_django()
from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from office import visits  # noqa: E402
from office.models import AuditEntry, RecordReview, RequestEvent, VisitRequest  # noqa: E402
from office.models import Target as TargetRow  # noqa: E402
from office.records import RecordBook  # noqa: E402
from office.web import requests as pages  # noqa: E402
from sync.domain import Address, Category, Place, Sex, Target, uuid7  # noqa: E402
from sync.envelope import OfficeKeys  # noqa: E402

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
HTML = b"<!doctype html><script>alert(1)</script>"


def nik(district: int, born: date, sex: str, serial: int = 7) -> str:
    """A made-up NIK that follows the rules: 3505, district, birth date (+40 for women)."""
    day = born.day + (40 if sex == "P" else 0)
    return f"3505{district:02d}{day:02d}{born.month:02d}{born.year % 100:02d}{serial:04d}"


def kk(serial: int = 31) -> str:
    return f"350510210711{serial:04d}"


def target(name: str, born: date, sex: str, serial: int) -> Target:
    return Target(id=uuid7(), nik=nik(10, born, sex, serial), kk=kk(serial), name=name,
                  birth_date=born, sex=Sex.FEMALE if sex == "P" else Sex.MALE,
                  address=Address(street="", rt="002", rw="001", dusun="Krajan",
                                  desa="Papungan", kecamatan="Kanigoro"),
                  category=Category.LANSIA, place=Place.HOME)


@dataclass
class Office:
    root: Path
    keys: OfficeKeys
    vault: visits.TargetVault
    staff: Client  # Bidang Dafduk (scheduler role)
    head: Client  # Kepala Dinas

    def book(self) -> RecordBook:
        return RecordBook.from_settings()


def _client(username: str, role: str) -> Client:
    user = User.objects.create_user(username, password="kuda-hijau-blitar-2026")
    user.groups.add(Group.objects.get(name=role))
    client = Client(HTTP_ACCEPT_LANGUAGE="id")
    client.force_login(user)
    return client


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    use_database(settings.DATABASES["default"]["NAME"])  # migrated once per process
    keys = OfficeKeys.generate()
    keys.save(tmp_path / "keys")
    (tmp_path / "kits").mkdir()
    with override_settings(OFFICE_KEYS_DIR=str(tmp_path / "keys"),
                           KITS_DIR=str(tmp_path / "kits"), DATA_DIR=tmp_path / "data",
                           ALLOWED_HOSTS=["testserver"]), transaction.atomic():
        yield Office(tmp_path, keys, visits.TargetVault.from_settings(),
                     _client("dafduk.staf", "scheduler"), _client("kadis", "head"))
        transaction.set_rollback(True)


def letter(office: Office, **changes: object) -> dict[str, object]:
    today = timezone.localdate()
    data: dict[str, object] = {
        "letter_number": "470/112/409.21.5/2026", "letter_date": str(today - timedelta(days=3)),
        "received_on": str(today), "applicant_kind": "village", "kecamatan": "Kanigoro",
        "village": "Papungan", "summary": "Mohon perekaman KTP-el 12 warga lansia",
        "scan": SimpleUploadedFile("surat.pdf", PDF, content_type="application/pdf")}
    data.update(changes)
    return data


def register(office: Office, **changes: object) -> VisitRequest:
    reply = office.staff.post("/requests/new/", letter(office, **changes))
    assert reply.status_code == 302, reply.content.decode()[:3000]
    return VisitRequest.objects.latest("id")


def dispositioned(office: Office, **changes: object) -> VisitRequest:
    req = register(office, **changes)
    reply = office.head.post(f"/requests/{req.pk}/disposition/", {"decision": "forward",
                                                      "note": "Segera dijadwalkan"})
    assert reply.status_code == 302
    req.refresh_from_db()
    assert req.status == "dispositioned"
    return req


# -- registering --------------------------------------------------------------------------
def test_a_scan_that_is_not_a_pdf_jpeg_or_png_is_refused_whatever_its_name(
        office: Office) -> None:
    reply = office.staff.post("/requests/new/", letter(office, scan=SimpleUploadedFile(
        "surat.pdf", HTML, content_type="application/pdf")))
    assert reply.status_code == 200
    page = reply.content.decode()
    assert "bukan PDF, JPEG atau PNG" in page and 'id="error-scan"' in page
    assert not VisitRequest.objects.exists()


def test_a_scan_over_10_mib_is_refused_with_the_limit(office: Office) -> None:
    big = PDF + b"0" * (pages.SCAN_MAX + 1)
    reply = office.staff.post("/requests/new/", letter(office, scan=SimpleUploadedFile(
        "besar.pdf", big, content_type="application/pdf")))
    assert "Pindaian terlalu besar (maks. 10 MiB)" in reply.content.decode()
    assert not VisitRequest.objects.exists()


def test_dates_and_applicant_fields_are_checked_in_indonesian(office: Office) -> None:
    today = timezone.localdate()
    reply = office.staff.post("/requests/new/", letter(
        office, letter_date=str(today + timedelta(days=1)), received_on=str(today),
        village=""))
    page = reply.content.decode()
    assert "Tanggal surat tidak boleh di masa depan." in page
    assert "Isi nama desa/kelurahan pemohon." in page
    reply = office.staff.post("/requests/new/", letter(
        office, letter_date=str(today - timedelta(days=2)),
        received_on=str(today - timedelta(days=5)), applicant_kind="agency", agency=""))
    page = reply.content.decode()
    assert "Tanggal terima tidak boleh sebelum tanggal surat." in page
    assert "Isi nama instansi pemohon." in page
    assert "Pilih alasan permohonan instansi" in page
    assert not VisitRequest.objects.exists()


def test_a_good_pdf_registers_the_letter_and_is_served_inline_not_as_html(
        office: Office) -> None:
    req = register(office)
    assert (req.status, req.scan_type, bytes(req.scan)) == ("registered", "application/pdf",
                                                            PDF)
    assert list(req.events.values_list("status", "by")) == [("registered", "dafduk.staf")]
    reply = office.staff.get(f"/requests/{req.pk}/scan/")
    assert reply["Content-Type"] == "application/pdf"
    assert reply["Content-Disposition"].startswith("inline;")
    assert reply["X-Content-Type-Options"] == "nosniff" and reply.content == PDF
    listing = office.staff.get("/requests/").content.decode()
    assert "470/112/409.21.5/2026" in listing and "Desa Papungan, Kec. Kanigoro" in listing
    assert "0/0 sasaran" in listing and "Tercatat" in listing
    assert AuditEntry.objects.filter(action="register_request",
                                     subject=f"request {req.pk}").exists()
    # A request not yet dispositioned has no import.
    page = office.staff.get(f"/requests/{req.pk}/").content.decode()
    assert "setelah surat ini didisposisi" in page and 'id="import-link"' not in page
    assert office.staff.get(f"/requests/{req.pk}/import/").status_code == 409


def test_an_agency_letter_lists_the_agency_and_its_reason(office: Office) -> None:
    register(office, applicant_kind="agency", agency="RSUD Ngudi Waluyo Wlingi",
             agency_reason="medical", village="", kecamatan="")
    assert "RSUD Ngudi Waluyo Wlingi (Medis)" in office.staff.get("/requests/").content.decode()


# -- disposition --------------------------------------------------------------------------
def test_the_head_dispositions_and_a_scheduler_cannot(office: Office) -> None:
    req = register(office)
    to = f"/requests/{req.pk}/disposition/"
    assert office.staff.post(to, {"decision": "forward"}).status_code == 403
    req.refresh_from_db()
    assert req.status == "registered"
    assert 'id="disposition-form"' not in office.staff.get(f"/requests/{req.pk}/").content.decode()
    assert 'id="disposition-form"' in office.head.get(f"/requests/{req.pk}/").content.decode()
    reply = office.head.post(to, {"decision": "decline", "note": ""})
    assert reply.status_code == 400
    assert "Tulis alasan mengapa permohonan tidak dilanjutkan." in reply.content.decode()
    office.head.post(to, {"decision": "forward", "note": "Prioritas"})
    req.refresh_from_db()
    assert req.status == "dispositioned" and req.disposition_note == "Prioritas"
    history = office.staff.get(f"/requests/{req.pk}/").content.decode()
    assert "Didisposisi ke Bidang Dafduk" in history and "Prioritas" in history
    declined = register(office, letter_number="2/2026")
    office.head.post(f"/requests/{declined.pk}/disposition/", {"decision": "decline",
                                                   "note": "Bukan warga Kabupaten Blitar"})
    declined.refresh_from_db()
    assert declined.status == "declined"
    only = office.staff.get("/requests/?status=declined").content.decode()
    assert "2/2026" in only and "470/112/409.21.5/2026" not in only
    assert "Tidak dilanjutkan" in only
    assert office.staff.get(f"/requests/{declined.pk}/import/").status_code == 409


# -- the import ---------------------------------------------------------------------------
HEADERS = ["NO", "NIK", "No. KK", "NAMA LENGKAP", "TGL LAHIR", "JK", "ALAMAT", "RT", "RW",
           "DUSUN", "DESA", "KEC", "GOL. SASARAN", "KETERANGAN"]


def row(no: int, nik_: str, kk_: str, name: str, born: str, sex: str, **more: str) -> list[str]:
    return [str(no), nik_, kk_, name, born, sex, more.get("street", ""), "2", "1", "Krajan",
            "Papungan", "Kanigoro", more.get("category", "lansia"), ""]


def cp1252_csv(rows: list[list[str]]) -> bytes:
    return ("\r\n".join(";".join(r) for r in [HEADERS, *rows]) + "\r\n").encode("cp1252")


@dataclass
class Residents:
    other_request: Target
    recorded: Target


def known_elsewhere(office: Office) -> Residents:
    """A NIK on another open request, and one of a resident already recorded."""
    other = VisitRequest.objects.create(
        letter_number="7/2026", letter_date=date(2026, 11, 2), received_on=date(2026, 11, 3),
        applicant_kind="village", kecamatan="Kanigoro", village="Papungan",
        status="dispositioned", created_at=time.time(), created_by="x")
    on_other = target("MARTINAH", date(1941, 3, 9), "P", 51)
    visits.add_target(other, on_other, office.vault, "x")
    recorded = target("SAMIDI", date(1938, 8, 17), "L", 52)
    RecordReview.objects.create(
        kit_id="blitar-kit-01", record_id=uuid7(), indexed_at=time.time(),
        started_at=time.time() - 86400, complete=True,
        sealed=office.book().seal_person(types.SimpleNamespace(target=recorded)))
    return Residents(on_other, recorded)


def bad_rows_csv(office: Office) -> tuple[bytes, dict[str, int]]:
    elsewhere = known_elsewhere(office)
    twin = nik(10, date(1946, 5, 1), "L", 61)
    rows = [
        row(1, nik(10, date(1939, 11, 4), "P", 7), kk(31), "SUMIRAH DARMOWIYONO",
            "04-11-1939", "P"),
        row(2, nik(10, date(1950, 7, 15), "P", 21), kk(44), "RENÉ SOEDARSONO",
            "15/07/1950", "Perempuan", category="disabilitas"),
        row(3, nik(10, date(1944, 2, 20), "L", 12), kk(18), "KASMIRAN", "21-02-1944", "L"),
        row(4, nik(10, date(1948, 1, 5), "L", 13), "350599210711", "SUKIRNO", "05-01-1948",
            "L"),
        row(5, twin, kk(19), "PAIMO", "01-05-1946", "L"),
        row(6, twin, kk(20), "PAIMIN", "01-05-1946", "L"),
        [str(7), elsewhere.other_request.nik, kk(51), "MARTINAH", "09-03-1941", "P", "", "2",
         "1", "Krajan", "Papungan", "Kanigoro", "lansia", ""],
        [str(8), elsewhere.recorded.nik, kk(52), "SAMIDI", "17-08-1938", "L", "", "2", "1",
         "Krajan", "Papungan", "Kanigoro", "sakit", ""],
        row(9, nik(10, date(1936, 12, 24), "L", 33), kk(33), "DJOKO SUMITRO", "24-12-1936",
            "L", category="sakit"),
    ]
    # File rows: the header is row 1, so data row k is file row k + 1.
    return cp1252_csv(rows), {"sumirah": 2, "rene": 3, "mismatch": 4, "bad_kk": 5,
                              "twin_a": 6, "twin_b": 7, "other": 8, "recorded": 9,
                              "djoko": 10}


def upload(office: Office, req: VisitRequest, data: bytes, name: str) -> str:
    reply = office.staff.post(f"/requests/{req.pk}/import/", {
        "action": "upload", "file": SimpleUploadedFile(name, data)})
    assert reply.status_code == 302, reply.content.decode()[:2000]
    assert reply["Location"].endswith("?step=map")
    return office.staff.get(reply["Location"]).content.decode()


def mapping_post(table_headers: list[str], **extra: str) -> dict[str, str]:
    """The mapping form as suggested for these headers, with ``extra`` on top."""
    from office.target_import import suggest_mapping

    suggestion = suggest_mapping(table_headers)
    data = {"action": "map", **{f"col-{k}": str(v) for k, v in suggestion.columns.items()}}
    data.update(extra)
    return data


def test_a_file_that_is_no_table_shows_its_reason_and_nothing_else(office: Office) -> None:
    req = dispositioned(office)
    reply = office.staff.post(f"/requests/{req.pk}/import/", {
        "action": "upload", "file": SimpleUploadedFile("sasaran.csv", PDF)})
    assert reply.status_code == 400
    page = reply.content.decode()
    assert 'id="upload-error"' in page and "PDF" in page
    assert not list((office.root / "data" / "uploads").iterdir())
    assert not req.targets.exists()


def test_import_reports_every_kind_of_bad_row_and_imports_only_the_ticked_ones(
        office: Office) -> None:
    req = dispositioned(office)
    data, rows = bad_rows_csv(office)
    page = upload(office, req, data, "sasaran papungan.csv")
    # Nothing personal on disk in clear: the upload is sealed.
    stored = list((office.root / "data" / "uploads").iterdir())
    assert len(stored) == 1 and b"SUMIRAH" not in stored[0].read_bytes()
    assert office.vault.open_bytes(stored[0].read_bytes()) == data
    assert "Windows-1252" in page and "titik koma" in page
    assert "GOL. SASARAN" in page and 'id="unknown-columns"' in page
    # The unknown column is needed: without it the category is missing.
    reply = office.staff.post(f"/requests/{req.pk}/import/", mapping_post(HEADERS))
    assert reply.status_code == 400
    assert "Kategori belum dipetakan ke kolom mana pun" in reply.content.decode()
    reply = office.staff.post(f"/requests/{req.pk}/import/", mapping_post(
        HEADERS, **{"col-category": str(HEADERS.index("GOL. SASARAN"))}))
    assert reply.status_code == 302 and reply["Location"].endswith("?step=report")
    report = office.staff.get(reply["Location"]).content.decode()
    assert "9 baris: 3 diterima, 6 ditolak" in report
    assert "RENÉ SOEDARSONO" in report  # Windows-1252 read right
    assert "Tanggal lahir pada NIK (angka ke-7 s.d. ke-12) tidak sama" in report
    assert "Kode wilayah pada nomor KK" in report or "Nomor KK harus tepat 16 angka" in report
    assert f"NIK yang sama ada juga di baris {rows['twin_b']}" in report
    assert "NIK sudah terdaftar: permohonan 7/2026 (Papungan)" in report
    assert "NIK sudah terdaftar: sudah terekam" in report
    for name in ("sumirah", "rene", "djoko"):
        assert f'name="row" value="{rows[name]}" checked' in report
    for name in ("mismatch", "bad_kk", "twin_a", "twin_b", "other", "recorded"):
        assert f'name="row" value="{rows[name]}"' not in report
    # A refused row smuggled into the confirmation imports nothing.
    reply = office.staff.post(f"/requests/{req.pk}/import/", {
        "action": "confirm", "row": [str(rows["sumirah"]), str(rows["mismatch"])]})
    assert reply.status_code == 409 and not req.targets.exists()
    # Someone else adds René to another open request meanwhile: the re-check refuses her.
    other = VisitRequest.objects.get(letter_number="7/2026")
    rene = target("RENÉ SOEDARSONO", date(1950, 7, 15), "P", 21)
    visits.add_target(other, rene, office.vault, "orang.lain")
    reply = office.staff.post(f"/requests/{req.pk}/import/", {
        "action": "confirm", "row": [str(rows["sumirah"]), str(rows["rene"])]})
    assert reply.status_code == 409 and not req.targets.exists()
    assert "data berubah sejak laporan dibuat" in reply.content.decode()
    # Only the ticked accepted rows (Djoko ticked, Sumirah not) are imported.
    reply = office.staff.post(f"/requests/{req.pk}/import/", {
        "action": "confirm", "row": [str(rows["djoko"])]})
    assert reply.status_code == 302
    imported = list(req.targets.all())
    assert [(r.source_row, office.vault.open(r.sealed).name) for r in imported] == [
        (rows["djoko"], "DJOKO SUMITRO")]
    assert imported[0].category == "sakit" and imported[0].village == "Papungan"
    note = req.events.latest("id").note
    assert note == "1 sasaran diimpor dari sasaran papungan.csv (7 ditolak)"
    entry = AuditEntry.objects.filter(action="import_targets").latest("id")
    assert entry.detail == "imported=1 refused=7 rows=9"
    assert not list((office.root / "data" / "uploads").iterdir())  # deleted on confirm
    again = office.staff.post(f"/requests/{req.pk}/import/", {
        "action": "confirm", "row": [str(rows["sumirah"])]}, follow=True)
    assert "Berkas unggahan tidak ada lagi" in again.content.decode()
    assert req.targets.count() == 1
    page = office.staff.get(f"/requests/{req.pk}/").content.decode()
    assert "DJOKO SUMITRO" in page and "24-12-1936" in page and "Belum direkam" in page


def test_an_xlsx_list_with_fixed_values_imports(office: Office) -> None:
    req = dispositioned(office)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["NIK", "NAMA", "No KK", "Tanggal Lahir", "L/P", "RT", "RW"])
    born = [date(1940, 4, 2), date(1952, 9, 30)]
    sheet.append([nik(10, born[0], "L", 71), "KARTO SENTONO", kk(71), born[0], "L", "3", "2"])
    sheet.append([nik(10, born[1], "P", 72), "WAGIYEM", kk(72), born[1], "P", "3", "2"])
    for cells in sheet.iter_rows(min_row=2, max_col=3):
        for cell in cells:
            cell.number_format = "@"
    out = io.BytesIO()
    book.save(out)
    page = upload(office, req, out.getvalue(), "sasaran.xlsx")
    assert "XLSX" in page
    assert 'name="fix-desa" id="fix-desa" value="Papungan"' in page  # from the letter
    headers = ["NIK", "NAMA", "No KK", "Tanggal Lahir", "L/P", "RT", "RW"]
    reply = office.staff.post(f"/requests/{req.pk}/import/", mapping_post(
        headers, **{"fix-desa": "Papungan", "fix-kecamatan": "Kanigoro",
                    "fix-category": "lansia", "fix-place": "home"}))
    assert reply.status_code == 302, reply.content.decode()[:3000]
    report = office.staff.get(reply["Location"]).content.decode()
    assert "2 baris: 2 diterima, 0 ditolak" in report
    office.staff.post(f"/requests/{req.pk}/import/", {"action": "confirm", "row": ["2", "3"]})
    opened = [office.vault.open(r.sealed) for r in req.targets.order_by("source_row")]
    assert [(t.name, t.birth_date, t.address.rt) for t in opened] == [
        ("KARTO SENTONO", born[0], "003"), ("WAGIYEM", born[1], "003")]


def test_old_sealed_uploads_are_swept_and_cancel_deletes(office: Office) -> None:
    req = dispositioned(office)
    data, _rows = bad_rows_csv(office)
    upload(office, req, data, "a.csv")
    folder = office.root / "data" / "uploads"
    stale = folder / "0123456789abcdef"
    stale.write_bytes(b"x")
    old = time.time() - pages.UPLOAD_TTL_S - 10
    import os

    os.utime(stale, (old, old))
    assert pages.sweep_uploads() == 1 and len(list(folder.iterdir())) == 1
    office.staff.post(f"/requests/{req.pk}/import/", {"action": "cancel"})
    assert not list(folder.iterdir())


# -- by hand ------------------------------------------------------------------------------
def target_post(t: Target, version: int | None = None, **changes: str) -> dict[str, str]:
    a = t.address
    data = {"nik": t.nik, "kk": t.kk, "name": t.name, "birth_date": str(t.birth_date),
            "sex": t.sex.code, "street": a.street, "rt": a.rt, "rw": a.rw, "dusun": a.dusun,
            "desa": a.desa, "kecamatan": a.kecamatan, "category": t.category.value,
            "place": t.place.value, "notes": t.notes}
    if version is not None:
        data["version"] = str(version)
    data.update(changes)
    return data


def test_a_target_by_hand_is_checked_at_each_field(office: Office) -> None:
    req = dispositioned(office)
    t = target("SUPINAH", date(1945, 6, 12), "P", 81)
    reply = office.staff.post(f"/requests/{req.pk}/targets/new/", target_post(
        t, nik=nik(10, date(1945, 6, 13), "P", 81), rt="0", kk="12345"))
    assert reply.status_code == 400
    page = reply.content.decode()
    assert 'id="error-nik"' in page and "Tanggal lahir pada NIK" in page
    assert 'id="error-rt"' in page and "RT harus 1 sampai 3 angka" in page
    assert 'id="error-kk"' in page and "Nomor KK harus tepat 16 angka" in page
    assert not req.targets.exists()
    # An empty NIK does not hide the other faults.
    page = office.staff.post(f"/requests/{req.pk}/targets/new/", target_post(
        t, nik="", rw="12345")).content.decode()
    assert "Isi NIK (16 angka) dari KTP-el atau KK." in page
    assert 'id="error-rw"' in page and "RW harus 1 sampai 3 angka" in page
    reply = office.staff.post(f"/requests/{req.pk}/targets/new/", target_post(
        t, name="SUPINAH binti KASAN"))
    assert reply.status_code == 302
    assert office.vault.open(req.targets.get().sealed).name == "SUPINAH binti KASAN"
    reply = office.staff.post(f"/requests/{req.pk}/targets/new/", target_post(t))
    assert "NIK sudah terdaftar: sudah ada di permohonan ini" in reply.content.decode()


def test_editing_with_a_stale_version_is_refused_and_shows_theirs(office: Office) -> None:
    req = dispositioned(office)
    t = target("SUPINAH", date(1945, 6, 12), "P", 81)
    row = visits.add_target(req, t, office.vault, "x", source_row=2)
    page = office.staff.get(f"/targets/{row.pk}/edit/").content.decode()
    assert 'name="version" value="1"' in page and "SUPINAH" in page
    # Someone else saves first.
    assert office.head.post(f"/targets/{row.pk}/edit/", target_post(
        t, 1, notes="Rumah di belakang masjid")).status_code == 302
    reply = office.staff.post(f"/targets/{row.pk}/edit/", target_post(t, 1, rt="004"))
    assert reply.status_code == 409
    page = reply.content.decode()
    assert "sudah diubah orang lain" in page and "Rumah di belakang masjid" in page
    assert 'name="version" value="2"' in page
    stored = office.vault.open(TargetRow.objects.get(pk=row.pk).sealed)
    assert (stored.address.rt, stored.notes) == ("002", "Rumah di belakang masjid")
    # Saved again knowingly, on their version: accepted.
    assert office.staff.post(f"/targets/{row.pk}/edit/", target_post(
        t, 2, rt="004", notes="Rumah di belakang masjid")).status_code == 302
    assert office.vault.open(TargetRow.objects.get(pk=row.pk).sealed).address.rt == "004"
    # A recorded target cannot be edited any more.
    TargetRow.objects.filter(pk=row.pk).update(status="recorded")
    assert office.staff.get(f"/targets/{row.pk}/edit/").status_code == 409


# -- verification -------------------------------------------------------------------------
def test_verification_moves_the_request_when_every_target_is_decided(office: Office) -> None:
    req = dispositioned(office)
    rows = [visits.add_target(req, target(n, date(1940, 1, 10 + i), "L", 90 + i), office.vault,
                              "x", source_row=i + 2)
            for i, n in enumerate(["KARSO", "SURAT", "PONIRAN"])]
    reply = office.staff.post(f"/requests/{req.pk}/verify/", {"one": f"{rows[0].pk}:no"})
    assert reply.status_code == 400
    assert "Tulis alasan mengapa sasaran ini tidak diverifikasi." in reply.content.decode()
    office.staff.post(f"/requests/{req.pk}/verify/", {
        "one": f"{rows[0].pk}:no", f"note-{rows[0].pk}": "Sudah pindah ke Kota Blitar"})
    office.staff.post(f"/requests/{req.pk}/verify/", {"bulk": "1", "picked": [rows[1].pk]})
    req.refresh_from_db()
    assert req.status == "dispositioned"  # one still undecided
    office.staff.post(f"/requests/{req.pk}/verify/", {"bulk": "1", "picked": [rows[2].pk]})
    req.refresh_from_db()
    assert req.status == "verified"
    assert req.events.latest("id").note == "2 terverifikasi, 1 tidak"
    decided = {r.pk: (r.verified, r.verify_note, r.verified_by) for r in req.targets.all()}
    assert decided[rows[0].pk] == (False, "Sudah pindah ke Kota Blitar", "dafduk.staf")
    assert decided[rows[1].pk][0] is True and decided[rows[2].pk][0] is True
    page = office.staff.get(f"/requests/{req.pk}/").content.decode()
    assert "Sasaran diverifikasi" in page and "Sudah pindah ke Kota Blitar" in page
    assert RequestEvent.objects.filter(request=req, status="verified").count() == 1


def test_a_row_verified_with_htmx_comes_back_alone_with_the_counts(office: Office) -> None:
    req = dispositioned(office)
    rows = [visits.add_target(req, target(n, date(1940, 1, 10 + i), "L", 90 + i), office.vault,
                              "x", source_row=i + 2)
            for i, n in enumerate(["KARSO", "SURAT"])]
    to = f"/requests/{req.pk}/verify/"
    reply = office.staff.post(to, {"one": f"{rows[0].pk}:no"}, HTTP_HX_REQUEST="true")
    page = reply.content.decode()
    assert reply.status_code == 200 and page.startswith("<tr") and "v-error" in page
    reply = office.staff.post(to, {"one": f"{rows[0].pk}:yes"}, HTTP_HX_REQUEST="true")
    page = reply.content.decode()
    assert f'id="target-{rows[0].pk}"' in page and f'id="target-{rows[1].pk}"' not in page
    assert 'id="progress" hx-swap-oob="true"' in page
    assert "1 terverifikasi, 0 tidak, 1 belum diperiksa" in " ".join(page.split())
    reply = office.staff.post(to, {"one": f"{rows[1].pk}:yes"}, HTTP_HX_REQUEST="true")
    assert reply["HX-Refresh"] == "true"
    req.refresh_from_db()
    assert req.status == "verified"


def test_without_the_office_keys_the_page_says_so_instead_of_crashing(office: Office) -> None:
    req = dispositioned(office)
    with override_settings(OFFICE_KEYS_DIR=""):
        reply = office.staff.get(f"/requests/{req.pk}/")
        assert reply.status_code == 200
        assert 'id="targets-problem"' in reply.content.decode()
        assert "Kunci kantor tidak diatur" in reply.content.decode()
