"""Export of received records for re-entry into SIAK (issue 12, item 3).

No public SIAK import format exists, so an operator types each resident into SIAK from
what this module makes, for a filtered list of records (:func:`filter_reviews`):

* :func:`worksheet_pdf`: a printable worksheet, one A4 page per resident (fpdf2): the
  resident's demographic fields as the recording's target carries them, the outcome,
  each finger (captured and its quality, the exception and its reason, or not
  captured), the photo, the signature or why there is none, witness, officers, kit,
  record id and date, and a box for the operator's initials and the SIAK entry date.
* :func:`records_csv`: the demographic and outcome fields, one row per record.
* :func:`resident_archive`: a ZIP with a folder per resident: the face photo, each
  finger at 500 ppi as PNG and as WSQ (the FBI's fingerprint codec, what AFIS/SIAK
  enrolment takes), the signature and a ``manifest.json`` with every file's SHA-256.

Everything is made in memory: decrypted images are never written to disk (the records
are opened by :class:`office.records.RecordBook` in memory too). The web page
(:mod:`office.web.export`) audits each export.

**Fonts.** The worksheet embeds DejaVu Sans (Debian's ``fonts-dejavu-core``): fpdf2's
core fonts only know Latin-1, and a glyph they lack would vanish from the page without a
word. Text is checked against the embedded font's character map; a character it cannot
draw is printed as ``?`` and counted in the log (never the text itself). Without DejaVu
the worksheet falls back to Helvetica, with every non-Latin-1 character folded to its
base letter (``é`` -> ``e``) or ``?`` (logged once).

**CSV.** UTF-8 with a byte-order mark, ``;`` between fields, CRLF line ends: Excel on an
Indonesian Windows (decimal comma, so its list separator is ``;``) opens it by double
click with every column in place and the letters right; without the BOM it would read
the file as Windows-1252. NIK and KK are written ``="3505..."``: Excel otherwise turns a
16-digit number into ``3,50511E+15`` and drops its last digit (it keeps 15 significant
digits). Text that Excel would take as a formula (starting ``=``, ``+``, ``-``, ``@``) is
prefixed with ``'``. Dates are ISO (``YYYY-MM-DD``), which Excel reads in any locale.

**WSQ.** The ``wsq`` package (IDEMIA's wrapper of NIST's NBIS codec, a Pillow plugin,
x86_64 wheels only) encodes each print at its default rate (about 13:1 on 256 x 288
prints); each file is decoded back at once and must have the print's size and a mean
absolute grey-level difference of at most :data:`WSQ_TOLERANCE`. Measured on the
emulated sensor's prints: 3.4-3.8 levels (maximum single pixel 23-29), so 8.0 leaves
room for real prints' texture and still catches a broken codec (a wrong image gives
40+). Without the codec (a Raspberry Pi, or any non-x86_64 machine) the archive holds
PNG only and each manifest says so.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import json
import logging
import re
import time
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from office.records import OpenedRecord, missing_parts
from sync.domain import FingerPosition, Outcome, Recording
from sync.errors import JaranIjoError, ValidationError

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from office.models import RecordReview

log = logging.getLogger(__name__)

WORKSHEET_TITLE = "Lembar kerja entri ulang SIAK"
PPI = 500
WSQ_TOLERANCE = 8.0  # mean absolute grey-level difference allowed after a WSQ round trip
MANIFEST_FORMAT = "jaranijo-siak-export/1"
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),)
CSV_DELIMITER = ";"

STATE_LABELS = {"received": "Diterima", "checked": "Sudah diperiksa",
                "entered": "Sudah dimasukkan ke SIAK", "problem": "Bermasalah"}
FILTER_FIELDS = ("date_from", "date_to", "village", "kecamatan", "kit", "officer", "outcome",
                 "state", "complete")


class NothingToExport(JaranIjoError):
    """An export asked for with no records in it: said so, and no empty file made."""

    code = "nothing_to_export"

    def __init__(self) -> None:
        super().__init__(
            id="Tidak ada rekaman yang cocok dengan saringan ini — tidak ada yang diekspor",
            en="No record matches this filter — nothing was exported",
            code="nothing_to_export")


class ExportError(JaranIjoError):
    """An export that cannot be made as asked (a codec that fails its read-back...)."""

    code = "export"


def software_version() -> str:
    from sync import __version__

    return __version__


# -- the filter --------------------------------------------------------------------------
def _day(value: Any, name: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError(id=f"Tanggal tidak valid pada '{name}': tulis TTTT-BB-HH",
                              en=f"Invalid date in '{name}': write YYYY-MM-DD",
                              code="filter_date") from None


def day_start(day: dt.date) -> float:
    """Unix time of the office's (WIB) midnight starting ``day``."""
    from django.utils import timezone

    return timezone.make_aware(dt.datetime.combine(day, dt.time.min)).timestamp()


def filter_reviews(params: Mapping[str, Any], *, using: str = "default"
                   ) -> QuerySet[RecordReview]:
    """The review rows (:class:`office.models.RecordReview`) matching ``params``, oldest
    visit first; for the export and the records list alike.

    ``params`` holds any of :data:`FILTER_FIELDS` (a form's ``cleaned_data`` or a plain
    ``request.GET``; empty values are ignored): ``date_from`` / ``date_to`` (visit day,
    WIB, both inclusive; ``date`` or ``YYYY-MM-DD``), ``village``, ``kecamatan``, ``kit``,
    ``officer`` (one officer id among the record's), ``outcome`` (an
    :class:`~sync.domain.Outcome` value), ``state`` (review state) and ``complete``
    (``complete`` or ``partial``; ``yes``/``no`` too). Bad values raise
    :class:`~sync.errors.ValidationError` naming the field. Rows whose record could not
    be opened are included: callers that need contents drop ``open_error`` rows."""
    from django.db.models import Q

    from office.models import RecordReview

    rows = RecordReview.objects.using(using).all()
    start, end = _day(params.get("date_from"), "date_from"), _day(params.get("date_to"),
                                                                    "date_to")
    if start and end and end < start:
        raise ValidationError(id="Tanggal akhir sebelum tanggal awal",
                              en="The end date is before the start date", code="filter_range")
    if start:
        rows = rows.filter(started_at__gte=day_start(start))
    if end:
        rows = rows.filter(started_at__lt=day_start(end + dt.timedelta(days=1)))
    for name in ("village", "kecamatan", "outcome", "state"):
        value = str(params.get(name) or "").strip()
        if value:
            rows = rows.filter(**{name: value})
    kit = str(params.get("kit") or "").strip()
    if kit:
        rows = rows.filter(kit_id=kit)
    officer = str(params.get("officer") or "").strip()
    if officer:
        rows = rows.filter(Q(officers=officer) | Q(officers__startswith=f"{officer},") |
                           Q(officers__endswith=f",{officer}") |
                           Q(officers__contains=f",{officer},"))
    complete = str(params.get("complete") or "").strip().lower()
    if complete in ("complete", "yes", "1", "true"):
        rows = rows.filter(complete=True)
    elif complete in ("partial", "no", "0", "false"):
        rows = rows.filter(complete=False).exclude(started_at=None)
    elif complete:
        raise ValidationError(id="Kelengkapan tidak dikenal", en="Unknown completeness value",
                              code="filter_complete")
    return rows.order_by("started_at", "kit_id", "record_id")


def describe_filter(params: Mapping[str, Any]) -> str:
    """The filter for the audit log (places, kits, officer ids and dates; no names)."""
    parts = [f"{k}={params[k]}" for k in FILTER_FIELDS if params.get(k) not in (None, "")]
    return " ".join(parts) or "all"


# -- what each recording says, in words --------------------------------------------------
def local_time(moment: dt.datetime) -> dt.datetime:
    from django.utils import timezone

    return timezone.localtime(moment)


def missing_text(code: str) -> str:
    """A ``missing`` code (:func:`office.records.missing_parts`) in Indonesian."""
    kind, _sep, value = code.partition(":")
    if kind == "photo":
        return "foto wajah"
    if kind == "signature":
        return "tanda tangan"
    if kind == "finger" and value.isdigit() and 1 <= int(value) <= 10:
        return FingerPosition(int(value)).label("id").lower()
    if kind == "outcome":
        if value == "partial":
            return "ditandai terekam sebagian"
        if value == "none":
            return "hasil belum dipilih"
        try:
            return f"hasil: {Outcome(value).label('id').lower()}"
        except ValueError:
            return code
    return code


def finger_status(recording: Recording, position: FingerPosition) -> tuple[str, str]:
    """(status, detail) of one finger: captured and its quality, the exception and its
    reason, or not captured."""
    finger = recording.fingers.get(position)
    outcome = recording.outcome
    if outcome is not None and not outcome.carries_biometrics:
        return "Tidak direkam", f"hasil kunjungan: {outcome.label('id').lower()}"
    if finger is None or not finger.settled:
        return "Tidak direkam", "tidak diambil (keputusan petugas / belum sempat)"
    if finger.captured:
        quality = "—" if finger.quality_score is None else str(finger.quality_score)
        extra = " (mutu rendah diterima)" if finger.low_quality_accepted else ""
        return "Terekam", f"mutu {quality}{extra}"
    assert finger.exception is not None
    reason = finger.exception.label("id")
    if finger.exception_note.strip():
        reason += f": {finger.exception_note.strip()}"
    return "Pengecualian", reason


def carries_biometrics(recording: Recording) -> bool:
    """A complete or partial recording holding a photo, a print or a signature: what goes
    into the archive (the others are in the CSV only)."""
    return recording.outcome is not None and recording.outcome.carries_biometrics and \
        recording.holds_biometrics


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "x"


def finger_file_stem(position: FingerPosition) -> str:
    """``finger-07-left-index``: ISO position number and the English label (ASCII)."""
    return f"finger-{int(position):02d}-{_slug(position.label('en'))}"


# -- the worksheet (PDF) -----------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _font_files() -> tuple[Path, Path] | None:
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    log.warning("DejaVu Sans not found in %s (Debian: fonts-dejavu-core): the SIAK "
                "worksheet uses Helvetica, Latin-1 only", ", ".join(map(str, FONT_DIRS)))
    return None


class _Sheet:
    """fpdf2 with the worksheet's font and text that never silently loses a character."""

    def __init__(self) -> None:
        from fpdf import FPDF

        self.pdf = FPDF(orientation="portrait", unit="mm", format="A4")
        self.pdf.set_auto_page_break(False)
        self.pdf.set_margins(14, 12, 14)
        self.pdf.set_title(WORKSHEET_TITLE)
        self.pdf.set_creator(f"Jaran Ijo {software_version()}")
        fonts = _font_files()
        self.unicode = fonts is not None
        if fonts is not None:
            self.pdf.add_font("DejaVu", "", str(fonts[0]))
            self.pdf.add_font("DejaVu", "B", str(fonts[1]))
            self.family = "DejaVu"
        else:
            self.family = "Helvetica"
        self.replaced = 0

    def font(self, size: float, bold: bool = False) -> None:
        self.pdf.set_font(self.family, "B" if bold else "", size)

    def safe(self, text: str) -> str:
        """``text`` as the current font can draw it: a missing glyph becomes ``?``."""
        if self.unicode:
            cmap = self.pdf.current_font.cmap
            out = []
            for ch in text:
                if ch in "\n\t" or ord(ch) in cmap:
                    out.append(ch)
                else:
                    out.append("?")
                    self.replaced += 1
            return "".join(out)
        out = []
        for ch in unicodedata.normalize("NFC", text):
            try:
                ch.encode("latin-1")
                out.append(ch)
            except UnicodeEncodeError:
                base = unicodedata.normalize("NFKD", ch).encode("latin-1", "ignore").decode(
                    "latin-1")
                out.append(base or "?")
                self.replaced += 1
        return "".join(out)

    def fit(self, text: str, width: float) -> str:
        """``text`` cut with an ellipsis to fit ``width`` mm in the current font."""
        text = self.safe(text)
        if self.pdf.get_string_width(text) <= width:
            return text
        ell = "…" if self.unicode else "..."
        while text and self.pdf.get_string_width(text + ell) > width:
            text = text[:-1]
        return text + ell

    def cell(self, w: float, h: float, text: str, *, border: int | str = 0,
             align: str = "L", fill: bool = False) -> None:
        self.pdf.cell(w, h, self.fit(text, w - 2), border=border, align=align, fill=fill)


def _thumbnail_jpeg(jpeg: bytes, box: tuple[int, int] = (480, 360)) -> io.BytesIO:
    with Image.open(io.BytesIO(jpeg)) as image:
        image = image.convert("RGB")
        image.thumbnail(box)
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=85)
    out.seek(0)
    return out


def _image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def _worksheet_page(sheet: _Sheet, opened: OpenedRecord, printed: dt.datetime) -> None:
    pdf = sheet.pdf
    r = opened.recording
    t = r.target
    pdf.add_page()
    left, width = pdf.l_margin, pdf.w - pdf.l_margin - pdf.r_margin
    # Header.
    sheet.font(15, bold=True)
    pdf.set_xy(left, 12)
    sheet.cell(width, 8, WORKSHEET_TITLE)
    pdf.ln(8)
    sheet.font(8.5)
    pdf.set_text_color(90)
    sheet.cell(width, 4.5, f"Jaran Ijo · perekaman KTP-el di rumah · ID rekaman {r.id} · "
                           f"kit {opened.kit_id}")
    pdf.set_text_color(0)
    pdf.ln(5)
    pdf.set_draw_color(120)
    pdf.line(left, pdf.get_y(), left + width, pdf.get_y())

    def section(title: str, y: float | None = None) -> None:
        if y is not None:
            pdf.set_y(y)
        pdf.ln(2.5)
        sheet.font(10.5, bold=True)
        pdf.set_x(left)
        pdf.set_fill_color(232, 240, 236)
        sheet.cell(width, 6, title, fill=True)
        pdf.ln(6.5)

    def rows(pairs: list[tuple[str, str]], label_w: float, value_w: float,
             x: float = left, h: float = 5.6) -> None:
        for label, value in pairs:
            pdf.set_x(x)
            sheet.font(9)
            pdf.set_text_color(70)
            sheet.cell(label_w, h, label)
            pdf.set_text_color(0)
            sheet.font(10, bold=label in ("NIK", "Nama lengkap"))
            sheet.cell(value_w, h, value or "—", border="B")
            pdf.ln(h)

    # The resident, as the recording's target carries it; the photo at the right.
    section("Data penduduk (sesuai data sasaran)")
    top = pdf.get_y()
    a = t.address
    resident = [
        ("NIK", t.nik), ("Nomor KK", t.kk), ("Nama lengkap", t.name),
        ("Tanggal lahir", f"{t.birth_date:%d-%m-%Y}"),
        ("Jenis kelamin", f"{t.sex.label('id')} ({t.sex.code})"),
        ("Alamat", a.street), ("RT / RW", f"{a.rt} / {a.rw}"), ("Dusun", a.dusun),
        ("Desa/Kelurahan", a.desa), ("Kecamatan", a.kecamatan),
        ("Kabupaten", a.kabupaten), ("Kategori", t.category.label("id")),
    ]
    photo_w, photo_h = 46.0, 34.5
    rows(resident, 34, width - 34 - photo_w - 6)
    after_rows = pdf.get_y()
    px = left + width - photo_w
    if r.photo is not None:
        pdf.image(_thumbnail_jpeg(r.photo.jpeg), x=px, y=top + 1, w=photo_w, h=photo_h,
                  keep_aspect_ratio=True)
        pdf.set_draw_color(160)
        pdf.rect(px, top + 1, photo_w, photo_h)
        sheet.font(8)
        pdf.set_xy(px, top + photo_h + 2)
        quality = f"mutu foto {r.photo.quality_score} (batas {r.photo.quality_threshold})"
        sheet.cell(photo_w, 4, quality, align="C")
        if r.photo.below_threshold_reason:
            pdf.set_xy(px, top + photo_h + 6)
            sheet.cell(photo_w, 4, f"alasan: {r.photo.below_threshold_reason}", align="C")
    else:
        pdf.set_draw_color(160)
        pdf.rect(px, top + 1, photo_w, photo_h)
        sheet.font(9)
        pdf.set_xy(px, top + photo_h / 2 - 2)
        sheet.cell(photo_w, 5, "Tanpa foto", align="C")
    pdf.set_y(after_rows)

    # The outcome.
    section("Hasil kunjungan")
    missing = missing_parts(r)
    outcome = "—" if r.outcome is None else r.outcome.label("id")
    if r.outcome_note.strip():
        outcome += f" — {r.outcome_note.strip()}"
    half = (width - 4) / 2
    y0 = pdf.get_y()
    rows([("Hasil", outcome)], 34, width - 34)
    y0 = pdf.get_y()
    started = local_time(r.started_at)
    duration = "—" if r.finished_at is None else \
        f"{int((r.finished_at - r.started_at).total_seconds() // 60)} menit"
    rows([("Kelengkapan", "Lengkap" if not missing else "Belum lengkap"),
          ("Tanggal rekam", f"{started:%d-%m-%Y %H.%M} WIB")], 34, half - 34)
    pdf.set_y(y0)
    rows([("Kekurangan", ", ".join(missing_text(m) for m in missing) or "tidak ada"),
          ("Lama perekaman", duration)], 30, half - 30, x=left + half + 4)

    # Fingers.
    section("Sidik jari (posisi ISO/IEC 19794-4)")
    widths = (10, 44, 32, width - 86)
    sheet.font(8.5, bold=True)
    pdf.set_fill_color(245)
    pdf.set_draw_color(170)
    for w, head in zip(widths, ("No.", "Jari", "Status", "Mutu / alasan"), strict=True):
        sheet.cell(w, 5.4, head, border=1, fill=True)
    pdf.ln(5.4)
    for position in FingerPosition:
        status, detail = finger_status(r, position)
        pdf.set_x(left)
        sheet.font(9)
        sheet.cell(widths[0], 5.4, str(int(position)), border=1, align="C")
        sheet.cell(widths[1], 5.4, position.label("id"), border=1)
        sheet.font(9, bold=status != "Terekam")
        sheet.cell(widths[2], 5.4, status, border=1)
        sheet.font(9)
        sheet.cell(widths[3], 5.4, detail, border=1)
        pdf.ln(5.4)

    # Signature and witness.
    section("Tanda tangan dan saksi")
    y0 = pdf.get_y()
    sig_w, sig_h = 62.0, 21.0
    signature = r.signature
    pdf.set_draw_color(160)
    pdf.rect(left, y0, sig_w, sig_h)
    if signature is not None and signature.image_png is not None:
        pdf.image(io.BytesIO(signature.image_png), x=left + 1, y=y0 + 1, w=sig_w - 2,
                  h=sig_h - 2, keep_aspect_ratio=True)
    else:
        sheet.font(9)
        pdf.set_xy(left + 1, y0 + sig_h / 2 - 5)
        reason = (signature.cannot_sign_reason if signature is not None else None) or \
            "tanda tangan tidak ada"
        pdf.multi_cell(sig_w - 2, 4.5, sheet.fit(f"Tidak bertanda tangan: {reason}",
                                                 2 * (sig_w - 4)), align="C")
    w = r.witness
    witness = "—" if w is None else f"{w.name} ({w.role})"
    consent = "—" if w is None else ("ya" if w.consent else "tidak")
    pdf.set_y(y0)
    x = left + sig_w + 5
    rows([("Saksi", witness), ("Persetujuan", consent),
          ("Petugas", ", ".join(r.officers) or "—")], 26, width - sig_w - 5 - 26, x=x)
    pdf.set_y(max(pdf.get_y(), y0 + sig_h))

    # Where it came from.
    section("Asal rekaman")
    y0 = pdf.get_y()
    received = local_time(dt.datetime.fromtimestamp(opened.received_at, tz=dt.UTC))
    wide = width * 0.58
    rows([("Kit", opened.kit_id), ("ID rekaman", r.id)], 22, wide - 22)
    pdf.set_y(y0)
    rows([("Diterima kantor", f"{received:%d-%m-%Y %H.%M} WIB"),
          ("Dicetak", f"{printed:%d-%m-%Y %H.%M} WIB")], 28, width - wide - 4 - 28,
         x=left + wide + 4)

    # The operator's box.
    pdf.ln(4)
    y0 = pdf.get_y()
    box_h = 24.0
    pdf.set_draw_color(40)
    pdf.set_line_width(0.5)
    pdf.rect(left, y0, width, box_h)
    pdf.set_line_width(0.2)
    sheet.font(9.5, bold=True)
    pdf.set_xy(left + 2, y0 + 1.5)
    sheet.cell(width - 4, 5, "Diisi operator setelah entri ke SIAK")
    sheet.font(9)
    for i, label in enumerate(("Paraf operator", "Tanggal entri SIAK", "Catatan")):
        bx = left + 3 + i * (width - 6) / 3
        pdf.set_xy(bx, y0 + 8)
        sheet.cell((width - 6) / 3 - 4, 5, label)
        pdf.line(bx, y0 + box_h - 4, bx + (width - 6) / 3 - 6, y0 + box_h - 4)
    sheet.font(7.5)
    pdf.set_text_color(110)
    pdf.set_xy(left, pdf.h - 11)
    sheet.cell(width, 4, "Dokumen ini berisi data pribadi dan biometrik: simpan di kantor, "
                         "hancurkan setelah entri ke SIAK selesai.", align="C")
    pdf.set_text_color(0)


def worksheet_pdf(opened_records: Iterable[OpenedRecord], *,
                  now: dt.datetime | None = None) -> bytes:
    """The SIAK re-entry worksheet: one A4 page per record, in the order given.
    :class:`NothingToExport` for none."""
    sheet = _Sheet()
    printed = local_time(now or dt.datetime.now(dt.UTC))
    pages = 0
    for opened in opened_records:
        _worksheet_page(sheet, opened, printed)
        pages += 1
    if not pages:
        raise NothingToExport()
    if sheet.replaced:
        log.warning("SIAK worksheet: %d character(s) the font cannot draw printed as '?'",
                    sheet.replaced)
    return bytes(sheet.pdf.output())


# -- the CSV -----------------------------------------------------------------------------
CSV_COLUMNS = ("id_rekaman", "kit", "tanggal_kunjungan", "nik", "no_kk", "nama",
               "tanggal_lahir", "jenis_kelamin", "alamat", "rt", "rw", "dusun",
               "desa_kelurahan", "kecamatan", "kabupaten", "kategori", "hasil", "lengkap",
               "kekurangan", "status_tinjauan")


@dataclass(frozen=True)
class CsvRow:
    """One line of the CSV: an opened record and its review state."""

    opened: OpenedRecord
    state: str = "received"


def _excel_number_text(digits: str) -> str:
    return f'="{digits}"' if digits.isdigit() else _excel_text(digits)


def _excel_text(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def unwrap_excel(value: str) -> str:
    """The text of a cell written by :func:`records_csv` (for programs reading it)."""
    if value.startswith('="') and value.endswith('"'):
        return value[2:-1]
    if value.startswith("'") and value[1:2] in ("=", "+", "-", "@", "\t", "\r"):
        return value[1:]
    return value


def records_csv(rows: Iterable[CsvRow | OpenedRecord]) -> bytes:
    """The demographic and outcome fields of each record, one line each (see the module
    doc for the format). :class:`NothingToExport` for none."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=CSV_DELIMITER, quoting=csv.QUOTE_MINIMAL,
                        lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for row in rows:
        item = row if isinstance(row, CsvRow) else CsvRow(row)
        r = item.opened.recording
        t, a = r.target, r.target.address
        missing = missing_parts(r)
        writer.writerow([
            r.id, item.opened.kit_id, f"{local_time(r.started_at):%Y-%m-%d}",
            _excel_number_text(t.nik), _excel_number_text(t.kk), _excel_text(t.name),
            t.birth_date.isoformat(), t.sex.code, _excel_text(a.street),
            _excel_number_text(a.rt), _excel_number_text(a.rw), _excel_text(a.dusun),
            _excel_text(a.desa), _excel_text(a.kecamatan), _excel_text(a.kabupaten),
            t.category.label("id"), "" if r.outcome is None else r.outcome.label("id"),
            "ya" if not missing else "tidak",
            _excel_text(", ".join(missing_text(m) for m in missing)),
            STATE_LABELS.get(item.state, item.state)])
        count += 1
    if not count:
        raise NothingToExport()
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# -- the archive (ZIP) -------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def wsq_codec() -> str | None:
    """The WSQ codec's name and version when the ``wsq`` package is importable here."""
    try:
        import wsq  # noqa: F401  (registers the Pillow plugin)
    except ImportError:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"wsq {version('wsq')} (NIST NBIS)"
    except PackageNotFoundError:
        return "wsq (NIST NBIS)"


def png_500ppi(png: bytes) -> tuple[bytes, Image.Image]:
    """The print as an 8-bit grey PNG whose pHYs says 500 ppi, and the image itself. The
    kit's own PNG is kept byte for byte when it is that already (the usual case: the
    sealed bytes, and no re-encoding, which is most of an archive's time); anything else
    is re-encoded so."""
    with Image.open(io.BytesIO(png)) as source:
        dpi = source.info.get("dpi")
        image = source.convert("L") if source.mode != "L" else source.copy()
        if source.mode == "L" and dpi is not None and all(round(float(v)) == PPI
                                                            for v in dpi):
            return png, image
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(PPI, PPI), optimize=False)
    return out.getvalue(), image


def wsq_round_trip(image: Image.Image) -> tuple[bytes, float]:
    """The print as WSQ, decoded back at once: (the WSQ bytes, mean absolute difference).
    :class:`ExportError` when the decoded image's size differs or it is further off than
    :data:`WSQ_TOLERANCE`."""
    if wsq_codec() is None:
        raise ExportError(id="Codec WSQ tidak tersedia di mesin ini",
                          en="The WSQ codec is not available on this machine", code="no_wsq")
    out = io.BytesIO()
    image.save(out, format="WSQ")
    data = out.getvalue()
    with Image.open(io.BytesIO(data)) as back:
        back.load()
        if back.size != image.size:
            raise ExportError(id=f"WSQ dibaca ulang berukuran {back.size}, bukan {image.size}",
                              en=f"WSQ read back as {back.size}, not {image.size}",
                              code="wsq_size")
        decoded = np.asarray(back.convert("L"), dtype=np.int16)
    mad = float(np.abs(decoded - np.asarray(image, dtype=np.int16)).mean())
    if mad > WSQ_TOLERANCE:
        raise ExportError(id=f"WSQ dibaca ulang terlalu berbeda (selisih rata-rata {mad:.1f})",
                          en=f"WSQ read back too different (mean difference {mad:.1f})",
                          code="wsq_tolerance")
    return data, mad


def folder_name(opened: OpenedRecord) -> str:
    """``<NIK>_<record-id-short>``: the NIK and the record id's last 12 hex digits (its
    random part; the first digits are a timestamp and repeat within a minute)."""
    nik = re.sub(r"[^0-9A-Za-z]", "", opened.recording.target.nik) or "tanpa-nik"
    return f"{nik}_{opened.record_id.replace('-', '')[-12:]}"


def _resident_files(opened: OpenedRecord) -> Iterator[tuple[str, bytes, dict[str, Any]]]:
    """(file name, bytes, what the manifest says of it) for one record's folder."""
    r = opened.recording
    if r.photo is not None:
        yield "photo.jpg", r.photo.jpeg, {"kind": "photo", "width": r.photo.width,
                                          "height": r.photo.height,
                                          "quality_score": r.photo.quality_score}
    codec = wsq_codec()
    for position in FingerPosition:
        finger = r.fingers.get(position)
        stem = finger_file_stem(position)
        if finger is not None and finger.image_png is not None:
            png, image = png_500ppi(finger.image_png)
            about = {"kind": "finger", "position": int(position),
                     "label": position.label("id"), "quality_score": finger.quality_score,
                     "width": image.width, "height": image.height, "ppi": PPI}
            yield f"{stem}.png", png, {**about, "format": "png"}
            if codec is not None:
                data, mad = wsq_round_trip(image)
                yield f"{stem}.wsq", data, {**about, "format": "wsq", "read_back": {
                    "size_equal": True, "mean_abs_diff": round(mad, 3),
                    "tolerance": WSQ_TOLERANCE}}
        if finger is not None and finger.exception_photo_jpeg is not None:
            yield f"{stem}-exception.jpg", finger.exception_photo_jpeg, {
                "kind": "finger_exception_photo", "position": int(position)}
    if r.signature is not None and r.signature.image_png is not None:
        yield "signature.png", r.signature.image_png, {"kind": "signature"}


def _fingers_manifest(r: Recording) -> list[dict[str, Any]]:
    out = []
    for position in FingerPosition:
        finger = r.fingers.get(position)
        entry: dict[str, Any] = {"position": int(position), "label": position.label("id")}
        if finger is not None and finger.captured:
            entry.update(status="captured", quality_score=finger.quality_score)
        elif finger is not None and finger.exception is not None:
            entry.update(status="exception", exception=finger.exception.value,
                         reason=finger.exception.label("id"), note=finger.exception_note)
        else:
            entry["status"] = "not_captured"
        out.append(entry)
    return out


def _put(archive: zipfile.ZipFile, name: str, data: bytes, stamp: tuple[int, ...],
         compress: int = zipfile.ZIP_STORED) -> None:
    """One member, dated with the export's office time (images are stored: PNG, JPEG
    and WSQ are compressed already)."""
    info = zipfile.ZipInfo(name, date_time=stamp)  # type: ignore[arg-type]
    info.compress_type = compress
    info.external_attr = 0o640 << 16
    archive.writestr(info, data)


def resident_archive(opened_records: Iterable[OpenedRecord], *,
                     now: dt.datetime | None = None) -> bytes:
    """A ZIP with one folder per record that carries biometrics (see
    :func:`carries_biometrics`; others are skipped): ``photo.jpg``, each finger as PNG at
    500 ppi and as WSQ (read back and checked), ``signature.png`` and ``manifest.json``.
    :class:`NothingToExport` when no record has biometrics."""
    exported = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    stamp = local_time(exported).timetuple()[:6]
    codec = wsq_codec()
    buffer = io.BytesIO()
    folders: set[str] = set()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for opened in opened_records:
            r = opened.recording
            if not carries_biometrics(r):
                continue
            folder = base = folder_name(opened)
            n = 2
            while folder in folders:
                folder, n = f"{base}-{n}", n + 1
            folders.add(folder)
            files = []
            for name, data, about in _resident_files(opened):
                _put(archive, f"{folder}/{name}", data, stamp)
                files.append({"name": name, "sha256": hashlib.sha256(data).hexdigest(),
                              "size": len(data), **about})
            signature = r.signature
            manifest = {
                "format": MANIFEST_FORMAT, "record_id": opened.record_id,
                "kit_id": opened.kit_id, "nik": r.target.nik,
                "exported_at": exported.isoformat(timespec="seconds"),
                "software_version": software_version(),
                "recording_software_version": r.software_version,
                "outcome": None if r.outcome is None else r.outcome.value,
                "complete": not missing_parts(r), "missing": missing_parts(r),
                "fingers": _fingers_manifest(r),
                "signature": "image" if signature is not None and signature.image_png else
                             {"cannot_sign_reason": None if signature is None
                              else signature.cannot_sign_reason},
                "wsq": {"available": codec is not None, "codec": codec,
                        "tolerance_mean_abs_diff": WSQ_TOLERANCE} if codec is not None else
                       {"available": False, "note": "codec WSQ tidak tersedia di mesin ini "
                        "(paket wsq hanya untuk x86_64): hanya PNG / WSQ codec not "
                        "available on this machine: PNG only"},
                "files": files,
            }
            _put(archive, f"{folder}/manifest.json",
                 (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode(), stamp,
                 zipfile.ZIP_DEFLATED)
    if not folders:
        raise NothingToExport()
    return buffer.getvalue()


def export_stamp(now: float | None = None) -> str:
    """``YYYYMMDD-HHMM`` in the office's time, for download file names."""
    moment = local_time(dt.datetime.fromtimestamp(time.time() if now is None else now,
                                                  tz=dt.UTC))
    return f"{moment:%Y%m%d-%H%M}"
