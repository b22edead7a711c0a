"""The export page: worksheets, a CSV and the folder archive for re-entry into SIAK.

``/export/`` (``export``, needs ``office.export_records``: operators and the head) has the
records list's filter (visit days, village, kecamatan, kit, officer, outcome, review
state, completeness; :func:`office.export.filter_reviews`) and three buttons: the
worksheet PDF (one page per resident), the CSV (one line per record) and the archive ZIP
(a folder per resident with photo, prints as PNG and WSQ, signature, manifest). Each is
a download named ``jaranijo-siak-YYYYMMDD-HHMM.<ext>``; only recordings that carry
biometrics (complete or partial) go into the archive, the others are in the CSV only.
A filter that matches nothing says so on the page, and no file is sent.

``/export/record/<kit>/<record>/worksheet.pdf`` (``export-worksheet``) is one record's
worksheet, for the record page to link to.

Records are indexed first (:meth:`office.records.RecordBook.index_new`) so a record that
has just arrived can be exported; they are opened with the office keys in memory only,
and the files are made in memory (:mod:`office.export`): nothing decrypted touches the
disk, and responses are ``Cache-Control: no-store``. Each export is written to the audit
log (``export_records``: what, the filter and the count; never a name or a NIK). The
filter is posted (with the CSRF token), so no link or prefetch can start an export.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _

from office import export
from office.models import RecordReview
from office.records import OpenedRecord, RecordBook, RecordUnavailable
from office.web.audit import audit
from office.web.records import FilterForm
from office.web.roles import require
from office.web.wib import lang as _lang
from sync.domain import Outcome
from sync.errors import ValidationError

log = logging.getLogger(__name__)

MAX_RECORDS = 500  # per worksheet PDF or CSV: a bigger export is a narrower filter away
MAX_ARCHIVE = 200  # per archive (about 0.55 MB a resident, built in memory)
NO_STORE = "no-store"
KINDS: dict[str, tuple[str, str, str]] = {  # kind -> (audit subject, extension, MIME type)
    "pdf": ("worksheet_pdf", "pdf", "application/pdf"),
    "csv": ("csv", "csv", "text/csv; charset=utf-8"),
    "zip": ("archive_zip", "zip", "application/zip"),
}


class ExportFilterForm(FilterForm):
    """The records list's filter (same field names, values and messages), without the
    name/NIK search: an export is chosen by its fields, never by a resident typed in."""

    q = None  # type: ignore[assignment]


def _book() -> tuple[RecordBook | None, str]:
    """The record book with every stored record indexed, or why there is none."""
    try:
        book = RecordBook.from_settings()
    except RecordUnavailable as exc:
        return None, _("Rekaman tidak bisa dibuka: %(why)s. Jalankan aplikasi web dengan "
                       "--keys dan --kits.") % {"why": exc.text(_lang())}
    while book.index_new() >= 500:  # index_new does 500 at a time
        pass
    return book, ""


def _opened(book: RecordBook, reviews: list[RecordReview], skipped: list[str]
            ) -> Iterator[OpenedRecord]:
    """Each review's record, opened one at a time (the export holds one in memory)."""
    for review in reviews:
        try:
            yield book.open(review.kit_id, review.record_id)
        except RecordUnavailable as exc:
            skipped.append(exc.code)
            log.warning("export: record %s/%s not opened (%s)", review.kit_id,
                        review.record_id, exc.code)


def download(data: bytes, kind: str, stamp: str) -> HttpResponse:
    """A download of ``data`` as ``jaranijo-siak-<stamp>.<ext>``, never cached."""
    _subject, ext, mime = KINDS[kind]
    response = HttpResponse(data, content_type=mime)
    response["Content-Disposition"] = f'attachment; filename="jaranijo-siak-{stamp}.{ext}"'
    response["Cache-Control"] = NO_STORE
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _make(kind: str, book: RecordBook, reviews: list[RecordReview],
          skipped: list[str]) -> bytes:
    opened = _opened(book, reviews, skipped)
    if kind == "pdf":
        return export.worksheet_pdf(opened)
    if kind == "csv":
        states = {(r.kit_id, r.record_id): r.state for r in reviews}
        return export.records_csv(export.CsvRow(o, states[(o.kit_id, o.record_id)])
                                  for o in opened)
    return export.resident_archive(opened)


@require("office.export_records")
def export_page(request: HttpRequest) -> HttpResponse:
    """The filter and the three buttons; a POST with ``kind`` makes that download."""
    book, problem = _book()
    form = ExportFilterForm(request.POST if request.method == "POST" else None)
    messages: list[str] = []
    status = 200
    if request.method == "POST":
        kind = request.POST.get("kind", "")
        if kind not in KINDS:
            messages.append(_("Pilih jenis ekspor: lembar kerja PDF, CSV atau arsip ZIP."))
            status = 400
        elif not form.is_valid():
            messages.append(_("Belum diekspor: perbaiki saringan yang ditandai."))
            status = 400
        elif book is None:
            messages.append(problem)
            status = 503
        else:
            result = _export(request, book, kind, form.cleaned_data)
            if isinstance(result, HttpResponse):
                return result
            messages.append(result)
    elif problem:
        messages.append(problem)
    indexed = RecordReview.objects.filter(open_error="").exclude(started_at=None).count()
    response = render(request, "export/index.html", {
        "form": form, "messages": messages, "indexed": indexed,
        "max_records": MAX_RECORDS, "max_archive": MAX_ARCHIVE}, status=status)
    response["Cache-Control"] = NO_STORE
    return response


def _export(request: HttpRequest, book: RecordBook, kind: str,
            data: dict[str, Any]) -> HttpResponse | str:
    """The download, or the sentence saying why there is none."""
    try:
        rows = export.filter_reviews(data).filter(open_error="").exclude(started_at=None)
    except ValidationError as exc:
        return exc.text(_lang())
    if kind == "zip":
        rows = rows.filter(outcome__in=[o.value for o in Outcome if o.carries_biometrics])
    reviews = list(rows)
    nothing = _("Tidak ada rekaman yang cocok dengan saringan ini — tidak ada yang diekspor.")
    if not reviews:
        if kind == "zip" and export.filter_reviews(data).filter(open_error="").exists():
            return _("Tidak ada rekaman dengan biometrik (terekam lengkap atau sebagian) yang "
                     "cocok dengan saringan ini — tidak ada yang diekspor. Rekaman lain ada "
                     "di CSV.")
        return nothing
    limit = MAX_ARCHIVE if kind == "zip" else MAX_RECORDS
    if len(reviews) > limit:
        return _("%(n)d rekaman cocok; satu ekspor paling banyak %(max)d. Persempit "
                 "saringan (misalnya rentang tanggal atau desa).") % {
                     "n": len(reviews), "max": limit}
    skipped: list[str] = []
    try:
        data_bytes = _make(kind, book, reviews, skipped)
    except export.NothingToExport:
        return nothing
    except export.ExportError as exc:
        log.error("export %s failed: %s", kind, exc.code)
        return _("Ekspor gagal: %(why)s") % {"why": exc.text(_lang())}
    count = len(reviews) - len(skipped)
    detail = f"{export.describe_filter(data)} count={count}"
    if skipped:
        detail += f" skipped={len(skipped)}"
    audit(request, "export_records", subject=KINDS[kind][0], detail=detail)
    log.info("export %s: %d record(s), %d skipped", kind, count, len(skipped))
    return download(data_bytes, kind, export.export_stamp())


@require("office.export_records")
def record_worksheet(request: HttpRequest, kit_id: str, record_id: str) -> HttpResponse:
    """One record's worksheet (the record page links here)."""
    book, problem = _book()
    status, message = 503, problem
    if book is not None:
        try:
            opened = book.open(kit_id, record_id)
        except RecordUnavailable as exc:
            status = 404 if exc.code == "not_found" else 409
            message = _("Rekaman tidak bisa dibuka: %(why)s") % {"why": exc.text(_lang())}
        else:
            data = export.worksheet_pdf([opened])
            audit(request, "export_records", subject=f"{kit_id}/{record_id}",
                  detail="worksheet_pdf count=1")
            return download(data, "pdf", export.export_stamp())
    response = render(request, "export/unavailable.html", {"message": message},
                      status=status)
    response["Cache-Control"] = NO_STORE
    return response


urlpatterns: list[URLPattern] = [
    path("export/", export_page, name="export"),
    path("export/record/<str:kit_id>/<str:record_id>/worksheet.pdf", record_worksheet,
         name="export-worksheet"),
]
