"""The export for re-entry into SIAK (:mod:`office.export`): worksheet PDF, CSV, archive.

Records are real sealed recordings of the sample assignment's invented residents, stored
in a real office database and opened with :class:`office.records.RecordBook`, as the web
page does. The PDF is read back with :func:`pdf_pages_text` below (no PDF reader is a
dependency: it follows fpdf2's output, the fonts' ``ToUnicode`` maps and the pages'
``Tj`` strings), the CSV with the ``csv`` module, the ZIP with ``zipfile``, and the WSQ
files with the codec itself.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import re
import zipfile
import zlib
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from office.db import setup_django
from sync.domain import FingerException, FingerPosition, Outcome, Recording
from sync.envelope import OfficeKeys
from sync.errors import ValidationError
from tests.office.records_helpers import KIT, RecordOffice, recording

setup_django()
from office import export  # noqa: E402
from office.records import OpenedRecord, RecordBook  # noqa: E402

NOTHING = "Tidak ada rekaman yang cocok dengan saringan ini — tidak ada yang diekspor"


# -- reading a PDF back (fpdf2's output) ---------------------------------------------------
def _objects(pdf: bytes) -> dict[int, bytes]:
    """Object number -> its body (dictionary and, for a stream, the raw stream data)."""
    out: dict[int, bytes] = {}
    for m in re.finditer(rb"(?m)^(\d+) 0 obj\b", pdf):
        start = m.end()
        stream = pdf.find(b"stream", start)
        end = pdf.find(b"endobj", start)
        if 0 <= stream < end:
            length = int(re.search(rb"/Length (\d+)", pdf[start:stream]).group(1))  # type: ignore[union-attr]
            data_at = stream + len(b"stream") + (2 if pdf[stream + 6:stream + 8] == b"\r\n"
                                                 else 1)
            end = pdf.find(b"endobj", data_at + length)
        out[int(m.group(1))] = pdf[start:end]
    return out


def _stream(body: bytes) -> bytes:
    head, _sep, rest = body.partition(b"stream")
    data = rest[2:] if rest.startswith(b"\r\n") else rest[1:]
    length = int(re.search(rb"/Length (\d+)", head).group(1))  # type: ignore[union-attr]
    data = data[:length]
    return zlib.decompress(data) if b"/FlateDecode" in head else data


def _unescape(literal: bytes) -> bytes:
    out, i = bytearray(), 0
    simple = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("f"): 12}
    while i < len(literal):
        c = literal[i]
        if c == 0x5C and i + 1 < len(literal):  # backslash
            n = literal[i + 1]
            if n in simple:
                out.append(simple[n])
                i += 2
            elif 0x30 <= n <= 0x37:
                digits = re.match(rb"[0-7]{1,3}", literal[i + 1:i + 4]).group(0)  # type: ignore[union-attr]
                out.append(int(digits, 8) & 0xFF)
                i += 1 + len(digits)
            else:
                out.append(n)
                i += 2
        else:
            out.append(c)
            i += 1
    return bytes(out)


def _cmap(data: bytes) -> dict[int, str]:
    out: dict[int, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
        for code, uni in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            out[int(code, 16)] = bytes.fromhex(uni.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", data, re.S):
        for lo, hi, uni in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>",
                                      block):
            base = int(uni, 16)
            for k, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                out[code] = chr(base + k)
    return out


def pdf_pages_text(pdf: bytes) -> list[str]:
    """The text of each page, in page order (lines joined by newlines)."""
    objs = _objects(pdf)
    kids = re.search(rb"/Kids \[([^\]]*)\]", b"".join(objs.values()))
    assert kids is not None
    pages = [int(n) for n in re.findall(rb"(\d+) 0 R", kids.group(1))]
    texts = []
    for page in pages:
        body = objs[page]
        content = _stream(objs[int(re.search(rb"/Contents (\d+) 0 R", body).group(1))])  # type: ignore[union-attr]
        resources = objs[int(re.search(rb"/Resources (\d+) 0 R", body).group(1))]  # type: ignore[union-attr]
        fonts: dict[bytes, dict[int, str] | None] = {}
        for name, ref in re.findall(rb"/(F\d+) (\d+) 0 R", resources):
            font = objs[int(ref)]
            to_unicode = re.search(rb"/ToUnicode (\d+) 0 R", font)
            fonts[name] = _cmap(_stream(objs[int(to_unicode.group(1))])) if to_unicode \
                else None
        current: dict[int, str] | None = None
        lines = []
        for m in re.finditer(rb"/(F\d+) [\d.]+ Tf|\(((?:\\.|[^\\)])*)\) ?Tj", content, re.S):
            if m.group(1):
                current = fonts[m.group(1)]
                continue
            raw = _unescape(m.group(2))
            if current is None:  # a core font: Latin-1
                lines.append(raw.decode("latin-1"))
            else:
                lines.append("".join(current.get(int.from_bytes(raw[i:i + 2], "big"), "\ufffd")
                                     for i in range(0, len(raw), 2)))
        texts.append("\n".join(lines))
    return texts


# -- the records ---------------------------------------------------------------------------
@dataclasses.dataclass
class Stored:
    office: RecordOffice
    book: RecordBook
    full: str
    partial: str
    refused: str

    def open(self, *ids: str) -> list[OpenedRecord]:
        return [self.book.open(KIT, i) for i in ids]


@pytest.fixture
def stored(tmp_path: Path) -> Stored:
    office = RecordOffice(tmp_path)
    full = office.store(recording(0, started=datetime(2026, 11, 9, 2, 30, tzinfo=UTC)))
    partial = office.store(recording(
        1, outcome=Outcome.PARTIAL, exceptions={4: FingerException.AMPUTATED},
        missing_fingers=(9,), cannot_sign="stroke, tangan kanan lumpuh",
        started=datetime(2026, 11, 10, 3, 0, tzinfo=UTC)))
    refused = office.store(recording(2, outcome=Outcome.REFUSED,
                                     started=datetime(2026, 11, 11, 4, 0, tzinfo=UTC)))
    book = RecordBook(OfficeKeys.load(office.keys_dir), office.kits_dir, using=office.db.alias)
    book.index_new()
    return Stored(office, book, full, partial, refused)


def names(*indexes: int) -> list[str]:
    from tests.office.records_helpers import sample_assignment

    targets = sample_assignment().targets
    return [targets[i].name for i in indexes]


# -- the worksheet -------------------------------------------------------------------------
def test_the_worksheet_has_one_a4_page_per_resident_with_their_data_as_text(
        stored: Stored) -> None:
    pdf = export.worksheet_pdf(stored.open(stored.full, stored.partial, stored.refused))
    assert pdf.startswith(b"%PDF-")
    assert b"/MediaBox [0 0 595.28 841.89]" in pdf  # A4 in points
    pages = pdf_pages_text(pdf)
    assert len(pages) == 3
    targets = [r.recording.target for r in stored.open(stored.full, stored.partial,
                                                       stored.refused)]
    for page, target in zip(pages, targets, strict=True):
        assert "Lembar kerja entri ulang SIAK" in page
        assert target.name in page and target.nik in page and target.kk in page
        assert f"{target.birth_date:%d-%m-%Y}" in page
        assert target.address.desa in page and target.address.kecamatan in page
        assert "Paraf operator" in page and "Tanggal entri SIAK" in page
    full, partial, refused = pages
    assert "Terekam lengkap" in full and "mutu 63" in full and "Sulastri (perangkat desa)" in full
    assert "blitar-kit-01" in full and stored.full in full and "ptg-0107, ptg-0112" in full
    # The partial one: the exception and its reason, the finger not captured, no signature.
    assert "Terekam sebagian" in partial
    assert "Pengecualian" in partial and "Jari tidak ada (amputasi)" in partial
    assert "Tidak direkam" in partial and "jari manis kiri" in partial
    assert "Tidak bertanda tangan: stroke, tangan kanan lumpuh" in " ".join(partial.split())
    assert "Menolak direkam" in refused and "Tanpa foto" in refused
    assert refused.count("hasil kunjungan: menolak direkam") == 10


def _renamed(rec: Recording, name: str) -> Recording:
    return dataclasses.replace(rec, target=dataclasses.replace(rec.target, name=name))


def test_a_glyph_the_font_cannot_draw_is_shown_not_dropped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    office = RecordOffice(tmp_path)
    rid = office.store(_renamed(recording(0), "Sumirah Dârmowiyono 丁"))
    book = RecordBook(OfficeKeys.load(office.keys_dir), office.kits_dir, using=office.db.alias)
    opened = [book.open(KIT, rid)]
    (page,) = pdf_pages_text(export.worksheet_pdf(opened))
    assert "Sumirah Dârmowiyono ?" in page  # DejaVu has â, not the CJK character
    # Without DejaVu (fonts-dejavu-core not installed): Helvetica, Latin-1, same rule.
    monkeypatch.setattr(export, "FONT_DIRS", (tmp_path / "no-fonts",))
    export._font_files.cache_clear()
    try:
        pdf = export.worksheet_pdf(opened)
    finally:
        export._font_files.cache_clear()
    assert b"/BaseFont /Helvetica" in pdf
    (page,) = pdf_pages_text(pdf)
    assert "Sumirah Dârmowiyono ?" in page and "Lembar kerja entri ulang SIAK" in page


# -- the CSV -------------------------------------------------------------------------------
def test_the_csv_opens_in_indonesian_excel_and_parses_back(stored: Stored) -> None:
    opened = stored.open(stored.full, stored.partial, stored.refused)
    data = export.records_csv([export.CsvRow(opened[0], "entered"), export.CsvRow(opened[1]),
                               opened[2]])
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    text = data.decode("utf-8-sig")
    assert "\r\n" in text
    rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))
    assert list(rows[0]) == list(export.CSV_COLUMNS)
    assert len(rows) == 3
    targets = [o.recording.target for o in opened]
    for row, o, target in zip(rows, opened, targets, strict=True):
        assert row["id_rekaman"] == o.record_id and row["kit"] == KIT
        assert row["nik"] == f'="{target.nik}"'  # Excel keeps all 16 digits as text
        assert export.unwrap_excel(row["nik"]) == target.nik
        assert export.unwrap_excel(row["no_kk"]) == target.kk
        assert row["nama"] == target.name
        assert row["tanggal_lahir"] == target.birth_date.isoformat()
        assert row["jenis_kelamin"] == target.sex.code
        assert export.unwrap_excel(row["rt"]) == target.address.rt
        assert row["desa_kelurahan"] == target.address.desa
        assert row["kategori"] == target.category.label("id")
    assert [r["tanggal_kunjungan"] for r in rows] == ["2026-11-09", "2026-11-10", "2026-11-11"]
    assert [r["hasil"] for r in rows] == ["Terekam lengkap", "Terekam sebagian",
                                          "Menolak direkam"]
    assert [r["lengkap"] for r in rows] == ["ya", "tidak", "tidak"]
    assert rows[1]["kekurangan"] == "jari manis kiri"
    assert rows[2]["kekurangan"] == "hasil: menolak direkam"
    assert [r["status_tinjauan"] for r in rows] == ["Sudah dimasukkan ke SIAK", "Diterima",
                                                    "Diterima"]


def test_csv_text_that_excel_would_run_as_a_formula_is_defused(tmp_path: Path) -> None:
    office = RecordOffice(tmp_path)
    rid = office.store(_renamed(recording(0), "=HYPERLINK(\"x\")"))
    book = RecordBook(OfficeKeys.load(office.keys_dir), office.kits_dir, using=office.db.alias)
    (row,) = csv.DictReader(io.StringIO(export.records_csv([book.open(KIT, rid)]).decode(
        "utf-8-sig"), newline=""), delimiter=";")
    assert row["nama"] == "'=HYPERLINK(\"x\")"
    assert export.unwrap_excel(row["nama"]) == "=HYPERLINK(\"x\")"


# -- the archive ---------------------------------------------------------------------------
def _archive(stored: Stored) -> tuple[zipfile.ZipFile, dict[str, dict[str, object]]]:
    data = export.resident_archive(stored.open(stored.full, stored.partial, stored.refused))
    archive = zipfile.ZipFile(io.BytesIO(data))
    manifests = {name.split("/")[0]: json.loads(archive.read(name))
                 for name in archive.namelist() if name.endswith("/manifest.json")}
    return archive, manifests


def test_the_archive_has_a_folder_per_resident_with_every_file_and_true_hashes(
        stored: Stored) -> None:
    pytest.importorskip("wsq")
    archive, manifests = _archive(stored)
    full, partial, _refused = (o.recording for o in stored.open(
        stored.full, stored.partial, stored.refused))
    folder_full = f"{full.target.nik}_{stored.full.replace('-', '')[-12:]}"
    folder_partial = f"{partial.target.nik}_{stored.partial.replace('-', '')[-12:]}"
    assert set(manifests) == {folder_full, folder_partial}  # the refusal: CSV only
    stems = [export.finger_file_stem(p) for p in FingerPosition]
    assert stems[6] == "finger-07-left-index"
    expected_full = {"photo.jpg", "signature.png", "manifest.json",
                     *(f"{s}.{ext}" for s in stems for ext in ("png", "wsq"))}
    expected_partial = {"photo.jpg", "manifest.json",
                        *(f"{s}.{ext}" for i, s in enumerate(stems, 1) if i not in (4, 9)
                          for ext in ("png", "wsq"))}
    for folder, expected in ((folder_full, expected_full), (folder_partial, expected_partial)):
        inside = {n.split("/", 1)[1] for n in archive.namelist() if n.startswith(folder + "/")}
        assert inside == expected
        manifest = manifests[folder]
        assert {f["name"] for f in manifest["files"]} == expected - {"manifest.json"}  # type: ignore[attr-defined]
        for f in manifest["files"]:  # type: ignore[attr-defined]
            data = archive.read(f"{folder}/{f['name']}")
            assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["size"]
        assert manifest["kit_id"] == KIT and manifest["format"] == export.MANIFEST_FORMAT
        assert manifest["software_version"] == export.software_version()
        assert datetime.fromisoformat(str(manifest["exported_at"])).tzinfo is not None
        assert manifest["wsq"]["available"] is True  # type: ignore[index]
    assert manifests[folder_full]["record_id"] == stored.full
    fingers = {f["position"]: f for f in manifests[folder_partial]["fingers"]}  # type: ignore[attr-defined]
    assert fingers[4]["status"] == "exception" and fingers[4]["exception"] == "amputated"
    assert fingers[9]["status"] == "not_captured" and fingers[1]["status"] == "captured"
    assert manifests[folder_partial]["signature"] == {
        "cannot_sign_reason": "stroke, tangan kanan lumpuh"}
    # PNG at 500 ppi, 8-bit grey, the print itself.
    png = Image.open(io.BytesIO(archive.read(f"{folder_full}/{stems[0]}.png")))
    assert png.mode == "L" and tuple(round(v) for v in png.info["dpi"]) == (500, 500)
    original = Image.open(io.BytesIO(full.fingers[FingerPosition(1)].image_png or b""))
    assert np.array_equal(np.asarray(png), np.asarray(original))
    assert archive.read(f"{folder_full}/photo.jpg") == (full.photo.jpeg if full.photo else b"")


def test_wsq_files_decode_back_to_the_same_size_within_the_codecs_tolerance(
        stored: Stored) -> None:
    pytest.importorskip("wsq")
    archive, manifests = _archive(stored)
    checked = 0
    for folder in manifests:
        for name in archive.namelist():
            if not (name.startswith(folder + "/") and name.endswith(".wsq")):
                continue
            assert archive.read(name)[:2] == b"\xff\xa0"  # WSQ's start-of-image marker
            back = Image.open(io.BytesIO(archive.read(name)))
            back.load()
            png = Image.open(io.BytesIO(archive.read(name[:-4] + ".png")))
            assert back.size == png.size == (256, 288)
            diff = np.abs(np.asarray(back, dtype=np.int16) - np.asarray(png, dtype=np.int16))
            assert diff.mean() <= export.WSQ_TOLERANCE
            checked += 1
    assert checked == 18  # 10 + 8 prints
    # The tolerance tells prints apart: another finger's print is far outside it.
    a = Image.open(io.BytesIO(archive.read(next(n for n in archive.namelist()
                                                if n.endswith("finger-01-right-thumb.wsq")))))
    b = Image.open(io.BytesIO(archive.read(next(n for n in archive.namelist()
                                                if n.endswith("finger-02-right-index.png")))))
    other = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).mean()
    assert other > 3 * export.WSQ_TOLERANCE


def test_without_the_wsq_codec_the_archive_carries_png_only_and_says_so(
        stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "wsq_codec", lambda: None)
    archive, manifests = _archive(stored)
    assert not [n for n in archive.namelist() if n.endswith(".wsq")]
    assert len([n for n in archive.namelist() if n.endswith(".png") and "finger-" in n]) == 18
    for manifest in manifests.values():
        assert manifest["wsq"]["available"] is False  # type: ignore[index]
        assert "PNG only" in manifest["wsq"]["note"]  # type: ignore[index]


# -- nothing to export; the filter ---------------------------------------------------------
def test_an_export_of_nothing_says_so(stored: Stored) -> None:
    for make in (export.worksheet_pdf, export.records_csv, export.resident_archive):
        with pytest.raises(export.NothingToExport) as caught:
            make([])
        assert caught.value.text("id") == NOTHING
    # A refusal alone has no biometrics: no archive either.
    with pytest.raises(export.NothingToExport):
        export.resident_archive(stored.open(stored.refused))


def test_the_filter_selects_by_every_field(stored: Stored) -> None:
    alias = stored.office.db.alias

    def ids(**params: object) -> list[str]:
        return [r.record_id for r in export.filter_reviews(params, using=alias)]

    assert ids() == [stored.full, stored.partial, stored.refused]
    assert ids(complete="complete") == [stored.full]
    assert ids(complete="partial") == [stored.partial, stored.refused]
    assert ids(outcome="refused") == [stored.refused]
    assert ids(date_from="2026-11-10") == [stored.partial, stored.refused]
    assert ids(date_from=date(2026, 11, 9), date_to=date(2026, 11, 10)) == [stored.full,
                                                                            stored.partial]
    assert ids(village="Papungan", kecamatan="Kanigoro", kit=KIT, officer="ptg-0112",
               state="received") == [stored.full, stored.partial, stored.refused]
    assert ids(village="Kanigoro") == [] and ids(officer="ptg-01") == []
    assert ids(kit="blitar-kit-02") == [] and ids(state="entered") == []
    with pytest.raises(ValidationError) as caught:
        ids(date_from="10/11/2026")
    assert "date_from" in caught.value.text("en")
    with pytest.raises(ValidationError):
        ids(date_from="2026-11-10", date_to="2026-11-09")
    assert export.describe_filter({"village": "Papungan", "date_from": date(2026, 11, 9),
                                   "kit": ""}) == "date_from=2026-11-09 village=Papungan"


def test_a_print_without_500_ppi_in_its_png_is_re_encoded_with_it() -> None:
    grey = Image.fromarray(np.arange(256 * 288, dtype=np.uint32).reshape(288, 256)
                           .astype(np.uint8), mode="L")
    plain = io.BytesIO()
    grey.save(plain, format="PNG")  # no pHYs chunk
    png, image = export.png_500ppi(plain.getvalue())
    assert png != plain.getvalue() and image.size == (256, 288)
    back = Image.open(io.BytesIO(png))
    assert tuple(round(v) for v in back.info["dpi"]) == (500, 500)
    assert np.array_equal(np.asarray(back), np.asarray(grey))
    already = io.BytesIO()
    grey.save(already, format="PNG", dpi=(500, 500))
    assert export.png_500ppi(already.getvalue())[0] == already.getvalue()  # kept as sealed
