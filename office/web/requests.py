"""The request letters and their target lists (issue 13; SOP steps 1-3).

``/requests/`` (``requests``) lists every request letter with where it stands and how
many of its targets are closed; ``/requests/new/`` registers one (the letter's scan is
checked by its first bytes: PDF, JPEG or PNG, at most 10 MiB); ``/requests/<id>/``
(``request``) shows the letter, its history (every :class:`~office.models.RequestEvent`),
the head's disposition form (forward to Bidang Dafduk or decline), and the target list,
opened in memory with :class:`office.visits.TargetVault` (the ``targets`` table alone
names nobody). Everything needs ``office.register_requests``; the disposition
``office.disposition_requests`` (Kepala Dinas); the verification of targets (SOP step 3)
``office.schedule_visits``.

**Import** (``/requests/<id>/import/``) has three steps: the upload is read with
:func:`office.target_import.read_table`; its bytes wait between the steps sealed with
:meth:`TargetVault.seal_bytes` in ``DATA_DIR/uploads/<token>`` (the token in the
session; deleted on confirm or cancel, and any left older than an hour), so no target
list lies on disk in clear. Uploads are read into memory only (:class:`MemoryUpload`):
Django's default handler would spill a large file to a temporary file in clear. The
mapping step pre-fills :func:`suggest_mapping`'s guesses; the report shows every row's
verdict from :func:`check_rows` (duplicates against open requests, this request's own
targets and residents already recorded). Confirming checks the file again, because the
office may have learnt a NIK meanwhile, and imports exactly the ticked accepted rows.

**By hand** (``targets/new/``, ``/targets/<id>/edit/``): every field of a
:class:`sync.domain.Target`, checked with :meth:`Target.problems` (the kit's rules, each
fault at its field) and for duplicates; editing carries the row's ``version`` so a
change saved meanwhile by someone else is shown, never overwritten.

No NIK, name or address goes to a log line or an audit detail: counts, request ids and
row numbers only.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import F, Min, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from office import target_import as ti
from office import visits
from office.models import Target as TargetRow
from office.models import VisitRequest
from office.records import RecordBook, RecordUnavailable
from office.web.audit import audit
from office.web.records import missing_label, outcome_label
from office.web.roles import require
from office.web.wib import lang as _lang
from office.web.wib import local as _local
from sync import regions
from sync.domain import Address, Category, FieldError, Place, Sex, Target, uuid7
from sync.errors import ValidationError

log = logging.getLogger(__name__)

PAGE_SIZE = 50
SCAN_MAX = 10 * 1024 * 1024  # a scanned letter: a few pages at 200 dpi is well under this
UPLOAD_TTL_S = 3600.0  # a sealed upload left behind (tab closed) is deleted after this
SESSION_KEY = "requests.import"
SCAN_TYPES = {"application/pdf": "PDF", "image/jpeg": "JPEG", "image/png": "PNG"}
WORKABLE = ("dispositioned", "verified", "scheduled", "letter_sent", "assigned")
"""A request's targets can be imported, added, edited and verified in these states."""

AGENCY_REASONS: dict[str, Any] = {
    "medical": gettext_lazy("Medis"),
    "social": gettext_lazy("Sosial"),
    "emergency": gettext_lazy("Darurat"),
}
APPLICANT_KINDS: dict[str, Any] = {
    "village": gettext_lazy("Desa/kelurahan di Kabupaten Blitar"),
    "agency": gettext_lazy("Instansi lain (rumah sakit, dinas sosial, ...)"),
}
DATE_ERRORS = {
    "invalid": gettext_lazy("Tanggal tidak valid: tulis TTTT-BB-HH, mis. 2026-12-01."),
    "required": gettext_lazy("Isi tanggal (TTTT-BB-HH)."),
}


def _date_field(label: Any, *, required: bool = True, **kwargs: Any) -> forms.DateField:
    return forms.DateField(label=label, required=required, input_formats=["%Y-%m-%d"],
                           error_messages=DATE_ERRORS,
                           widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
                           **kwargs)


def _required(text: Any) -> dict[str, Any]:
    return {"required": text}


def scan_type(data: bytes) -> str | None:
    """The content type of a scanned letter from its first bytes (never its name)."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


def applicant_text(req: VisitRequest) -> str:
    """Who sent the letter, as the list shows it."""
    where = ", ".join(p for p in (f"Desa {req.village}" if req.village else "",
                                  f"Kec. {req.kecamatan}" if req.kecamatan else "") if p)
    if req.applicant_kind == "agency":
        reason = str(AGENCY_REASONS.get(req.agency_reason, req.agency_reason))
        return f"{req.agency} ({reason})" + (f" · {where}" if where else "")
    return where


def workable(req: VisitRequest) -> bool:
    return req.status in WORKABLE


def _not_workable_text(req: VisitRequest) -> str:
    if req.status == "registered":
        return _("Sasaran baru dapat diimpor, ditambah dan diverifikasi setelah surat ini "
                 "didisposisi Kepala Dinas ke Bidang Dafduk.")
    return _("Permohonan ini berstatus \"%(status)s\": daftar sasarannya tidak dapat diubah "
             "lagi.") % {"status": visits.state_label(req.status)}


# -- uploads kept in memory -----------------------------------------------------------------
class MemoryUpload(FileUploadHandler):
    """Keep an uploaded file in memory, up to ``limit`` bytes; a larger one is dropped
    and :attr:`too_large` set, so the page can say so. Django's default handlers write a
    file over 2.5 MB to a temporary file, in clear: a target list must never be."""

    def __init__(self, request: HttpRequest, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.too_large = False
        self._buffer = io.BytesIO()
        self._skipping = False

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self._buffer = io.BytesIO()
        self._skipping = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        if self._skipping:
            return None
        if self._buffer.tell() + len(raw_data) > self.limit:
            self.too_large, self._skipping = True, True
            self._buffer = io.BytesIO()
            raise SkipFile()
        self._buffer.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> InMemoryUploadedFile | None:
        if self._skipping:
            return None
        self._buffer.seek(0)
        return InMemoryUploadedFile(self._buffer, self.field_name, self.file_name,
                                    self.content_type, file_size, self.charset,
                                    self.content_type_extra)


def in_memory_uploads(limit: int) -> Callable[[Callable[..., HttpResponse]],
                                               Callable[..., HttpResponse]]:
    """A view decorator: its uploads go to :class:`MemoryUpload` (CSRF checked after the
    handlers are set, as Django requires)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        protected = csrf_protect(view)

        @csrf_exempt
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            handler = MemoryUpload(request, limit)
            request.upload_handlers = [handler]
            request.memory_upload = handler  # type: ignore[attr-defined]
            return protected(request, *args, **kwargs)

        wrapper.__name__ = view.__name__
        wrapper.__doc__ = view.__doc__
        return wrapper

    return decorate


def _too_large(request: HttpRequest) -> bool:
    handler = getattr(request, "memory_upload", None)
    return bool(handler is not None and handler.too_large)


# -- the list -------------------------------------------------------------------------------
@require("office.register_requests")
def request_list(request: HttpRequest) -> HttpResponse:
    """Every request letter, newest first, filtered by status."""
    status = request.GET.get("status", "")
    # The move into the current status (a status is never entered twice; an import's
    # history line keeps the status and is not a move).
    rows = VisitRequest.objects.defer("scan").annotate(
        last_at=Min("events__at", filter=Q(events__status=F("status")))).order_by(
        "-received_on", "-id")
    if status in visits.REQUEST_STATES:
        rows = rows.filter(status=status)
    else:
        status = ""
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    shown = [{"req": r, "applicant": applicant_text(r), "status": visits.state_label(r.status),
              "moved": _local(r.last_at), "progress": visits.progress(r)}
             for r in page.object_list]
    return render(request, "requests/list.html", {
        "rows": shown, "page": page, "status": status,
        "states": [(k, str(v)) for k, v in visits.REQUEST_STATES.items()],
    })


# -- registering a letter -------------------------------------------------------------------
def _kecamatan_choices(blank: Any) -> list[tuple[str, str]]:
    return [("", str(blank)), *((k, k) for k in regions.BLITAR_KECAMATAN)]


class RequestForm(forms.Form):
    """A request letter as staff register it; the scan is checked by its bytes."""

    letter_number = forms.CharField(label=gettext_lazy("Nomor surat"), max_length=100,
                                    error_messages=_required(gettext_lazy(
                                        "Isi nomor surat seperti tertulis di surat.")))
    letter_date = _date_field(gettext_lazy("Tanggal surat"))
    received_on = _date_field(gettext_lazy("Diterima tanggal"))
    applicant_kind = forms.ChoiceField(
        label=gettext_lazy("Pemohon"), choices=list(APPLICANT_KINDS.items()),
        widget=forms.RadioSelect, initial="village",
        error_messages={"required": gettext_lazy("Pilih jenis pemohon."),
                        "invalid_choice": gettext_lazy("Jenis pemohon tidak dikenal.")})
    kecamatan = forms.ChoiceField(label=gettext_lazy("Kecamatan"), required=False,
                                  error_messages={"invalid_choice": gettext_lazy(
                                      "Pilih salah satu dari 22 kecamatan Kabupaten Blitar.")})
    village = forms.CharField(label=gettext_lazy("Desa/kelurahan"), max_length=120,
                              required=False)
    agency = forms.CharField(label=gettext_lazy("Nama instansi"), max_length=200,
                             required=False)
    agency_reason = forms.ChoiceField(
        label=gettext_lazy("Alasan instansi"), required=False,
        choices=[("", "—"), *AGENCY_REASONS.items()],
        error_messages={"invalid_choice": gettext_lazy("Alasan tidak dikenal.")})
    summary = forms.CharField(label=gettext_lazy("Ringkasan isi surat"), required=False,
                              max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    scan = forms.FileField(label=gettext_lazy("Pindaian surat (PDF, JPEG atau PNG, maks. 10 MiB)"),
                           error_messages={"required": gettext_lazy(
                               "Unggah pindaian surat permohonan (PDF, JPEG atau PNG)."),
                               "empty": gettext_lazy("Berkas pindaian kosong.")})

    def __init__(self, *args: Any, too_large: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.too_large = too_large
        self.fields["kecamatan"].choices = _kecamatan_choices(_("— pilih kecamatan —"))

    def clean_scan(self) -> Any:
        upload = self.cleaned_data.get("scan")
        if upload is None:
            return None
        data = upload.read()
        if len(data) > SCAN_MAX:
            raise forms.ValidationError(_("Pindaian terlalu besar (maks. 10 MiB): pindai "
                                          "ulang dengan resolusi lebih rendah."))
        kind = scan_type(data)
        if kind is None:
            raise forms.ValidationError(_("Berkas ini bukan PDF, JPEG atau PNG (isinya "
                                          "diperiksa, bukan namanya): unggah pindaian surat."))
        self.scan_bytes, self.scan_kind = data, kind
        return upload

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.too_large:
            self.errors.pop("scan", None)
            self.add_error("scan", _("Pindaian terlalu besar (maks. 10 MiB): pindai ulang "
                                     "dengan resolusi lebih rendah."))
        today = timezone.localdate()
        letter, received = data.get("letter_date"), data.get("received_on")
        if letter and letter > today:
            self.add_error("letter_date", _("Tanggal surat tidak boleh di masa depan."))
        if received and received > today:
            self.add_error("received_on", _("Tanggal terima tidak boleh di masa depan."))
        if letter and received and received < letter:
            self.add_error("received_on", _("Tanggal terima tidak boleh sebelum tanggal "
                                            "surat."))
        kind = data.get("applicant_kind")
        if kind == "village":
            if not str(data.get("kecamatan") or ""):
                self.add_error("kecamatan", _("Pilih kecamatan desa pemohon."))
            if not str(data.get("village") or "").strip():
                self.add_error("village", _("Isi nama desa/kelurahan pemohon."))
        elif kind == "agency":
            if not str(data.get("agency") or "").strip():
                self.add_error("agency", _("Isi nama instansi pemohon."))
            if not data.get("agency_reason"):
                self.add_error("agency_reason", _("Pilih alasan permohonan instansi: medis, "
                                                  "sosial atau darurat."))
        return data


@in_memory_uploads(SCAN_MAX + 64 * 1024)
@require("office.register_requests")
def request_new(request: HttpRequest) -> HttpResponse:
    """GET: the form; POST: register the letter (status ``registered``) and open it."""
    if request.method == "POST":
        form = RequestForm(request.POST, request.FILES, too_large=_too_large(request))
        if form.is_valid():
            d = form.cleaned_data
            who = request.user.get_username()
            agency = d["applicant_kind"] == "agency"
            with transaction.atomic():
                req = VisitRequest.objects.create(
                    letter_number=d["letter_number"].strip(), letter_date=d["letter_date"],
                    received_on=d["received_on"], applicant_kind=d["applicant_kind"],
                    kecamatan=d["kecamatan"], village=d["village"].strip(),
                    agency=d["agency"].strip() if agency else "",
                    agency_reason=d["agency_reason"] if agency else "",
                    summary=d["summary"].strip(), scan=form.scan_bytes,
                    scan_name=(d["scan"].name or "")[:200], scan_type=form.scan_kind,
                    created_at=time.time(), created_by=who)
                visits.move(req, "registered", who)
            audit(request, "register_request", subject=f"request {req.pk}",
                  detail=f"scan {form.scan_kind} {len(form.scan_bytes)} bytes")
            log.info("request %d registered", req.pk)
            messages.success(request, _("Surat permohonan dicatat."))
            return redirect("request", req.pk)
    else:
        form = RequestForm(initial={"received_on": timezone.localdate(),
                                    "applicant_kind": "village"})
    return render(request, "requests/new.html", {"form": form})


# -- one request ----------------------------------------------------------------------------
class DispositionForm(forms.Form):
    """Kepala Dinas forwards the letter to Bidang Dafduk, or declines it with a reason."""

    decision = forms.ChoiceField(
        label=gettext_lazy("Keputusan"), widget=forms.RadioSelect,
        choices=[("forward", gettext_lazy("Teruskan ke Bidang Dafduk")),
                 ("decline", gettext_lazy("Tidak dilanjutkan"))],
        error_messages={"required": gettext_lazy("Pilih: teruskan atau tidak dilanjutkan."),
                        "invalid_choice": gettext_lazy("Keputusan tidak dikenal.")})
    note = forms.CharField(label=gettext_lazy("Catatan disposisi / alasan"), required=False,
                           max_length=500, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("decision") == "decline" and not str(data.get("note") or "").strip():
            self.add_error("note", _("Tulis alasan mengapa permohonan tidak dilanjutkan."))
        return data


@dataclass
class TargetLine:
    """One target as the request page shows it (opened in memory)."""

    no: int
    row: TargetRow
    target: Target | None

    @property
    def category(self) -> str:
        return _label(Category, self.row.category)

    @property
    def place(self) -> str:
        return _label(Place, self.row.place)

    @property
    def sex(self) -> str:
        return self.target.sex.short(_lang()) if self.target else ""

    @property
    def status(self) -> str:
        return str(visits.TARGET_STATUSES.get(self.row.status, self.row.status))

    @property
    def detail(self) -> str:
        if self.row.status == "partial":
            return ", ".join(missing_label(c) for c in self.row.detail.split(",") if c)
        if self.row.status == "not_recorded":
            if self.row.detail.startswith("outcome:"):
                return missing_label(self.row.detail)
            return outcome_label(self.row.detail)
        return ""

    @property
    def verified_at(self) -> dt.datetime | None:
        return _local(self.row.verified_at)


def _label(enum: Any, value: str) -> str:
    try:
        return str(enum(value).label(_lang()))
    except ValueError:
        return value


def _vault() -> tuple[visits.TargetVault | None, str]:
    try:
        return visits.TargetVault.from_settings(), ""
    except RecordUnavailable as exc:
        log.warning("target pages cannot open targets: %s", exc.text("en"))
        return None, exc.text(_lang())


def _book() -> RecordBook | None:
    try:
        return RecordBook.from_settings()
    except RecordUnavailable:
        return None


def _lines(vault: visits.TargetVault, req: VisitRequest) -> list[TargetLine]:
    rows = req.targets.order_by("added_at", "source_row", "id")  # file order, then by hand
    return [TargetLine(i, row, target)
            for i, (row, target) in enumerate(visits.open_targets(vault, rows), start=1)]


def _get(request_id: int) -> VisitRequest:
    return get_object_or_404(VisitRequest.objects.defer("scan"), pk=request_id)


@require("office.register_requests")
def request_page(request: HttpRequest, request_id: int) -> HttpResponse:
    """The letter, its history, the disposition form (head) and its targets."""
    return _render_request(request, _get(request_id))


@require("office.register_requests", "office.disposition_requests")
def disposition(request: HttpRequest, request_id: int) -> HttpResponse:
    """POST (Kepala Dinas): forward the letter to Bidang Dafduk, or decline it."""
    req = _get(request_id)
    if request.method != "POST":
        return redirect("request", req.pk)
    if req.status != "registered":
        messages.error(request, _("Surat ini sudah didisposisi (%(status)s).") % {
            "status": visits.state_label(req.status)})
        return redirect("request", req.pk)
    form = DispositionForm(request.POST)
    if not form.is_valid():
        return _render_request(request, req, form, status=400)
    who = request.user.get_username()
    note = form.cleaned_data["note"].strip()
    status = "dispositioned" if form.cleaned_data["decision"] == "forward" else "declined"
    with transaction.atomic():
        req.disposition_note = note
        req.save(update_fields=["disposition_note"])
        visits.move(req, status, who, note)
    audit(request, "disposition_request", subject=f"request {req.pk}", detail=status)
    log.info("request %d: %s", req.pk, status)
    messages.success(request, _("Disposisi disimpan: %(status)s.") % {
        "status": visits.state_label(status)})
    return redirect("request", req.pk)


def _render_request(request: HttpRequest, req: VisitRequest,
                    form: DispositionForm | None = None, *, status: int = 200,
                    verify_errors: dict[str, str] | None = None) -> HttpResponse:
    vault, problem = _vault()
    lines = _lines(vault, req) if vault is not None else []
    if vault is not None and lines:
        audit(request, "view_personal", subject=f"request {req.pk}",
              detail=f"{len(lines)} targets")
    events = [{"event": e, "at": _local(e.at), "status": visits.state_label(e.status)}
              for e in req.events.all()]
    can_disposition = (req.status == "registered"
                       and request.user.has_perm("office.disposition_requests"))
    response = render(request, "requests/request.html", {
        "req": req, "applicant": applicant_text(req), "status": visits.state_label(req.status),
        "kind": str(APPLICANT_KINDS.get(req.applicant_kind, req.applicant_kind)),
        "reason": str(AGENCY_REASONS.get(req.agency_reason, req.agency_reason)),
        "events": events, "form": form or DispositionForm(), "can_disposition": can_disposition,
        "problem": problem, "lines": lines, "progress": visits.progress(req),
        "workable": workable(req), "not_workable": _not_workable_text(req),
        "can_verify": workable(req) and request.user.has_perm("office.schedule_visits"),
        "verify_errors": verify_errors or {}, "has_scan": bool(req.scan_type),
    }, status=status)
    response["Cache-Control"] = "no-store"
    return response


@require("office.register_requests")
def request_scan(request: HttpRequest, request_id: int) -> HttpResponse:
    """The letter's scan, inline, with the content type its bytes were found to be (a
    stored type outside PDF/JPEG/PNG is sent as a download, never rendered)."""
    req = get_object_or_404(VisitRequest, pk=request_id)
    if not req.scan:
        raise Http404(_("Surat ini tidak punya pindaian."))
    data = bytes(req.scan)
    kind = scan_type(data)
    audit(request, "view_personal", subject=f"request {req.pk}", detail="scan")
    if kind is None:
        response = HttpResponse(data, content_type="application/octet-stream")
        response["Content-Disposition"] = 'attachment; filename="surat.bin"'
    else:
        response = HttpResponse(data, content_type=kind)
        ext = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}[kind]
        response["Content-Disposition"] = f'inline; filename="surat-{req.pk}.{ext}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# -- the import -----------------------------------------------------------------------------
def _uploads_dir() -> Path:
    folder = Path(settings.DATA_DIR) / "uploads"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def sweep_uploads(now: float | None = None) -> int:
    """Delete sealed uploads older than an hour (an import abandoned half-way)."""
    now = time.time() if now is None else now
    gone = 0
    for item in _uploads_dir().iterdir():
        try:
            if item.is_file() and now - item.stat().st_mtime > UPLOAD_TTL_S:
                item.unlink()
                gone += 1
        except OSError:
            continue
    return gone


def _pending(request: HttpRequest, req: VisitRequest) -> dict[str, Any] | None:
    state = request.session.get(SESSION_KEY)
    if not isinstance(state, dict) or state.get("request") != req.pk:
        return None
    if not (_uploads_dir() / str(state.get("token", "x"))).is_file():
        return None
    return state


def _drop(request: HttpRequest) -> None:
    state = request.session.pop(SESSION_KEY, None)
    if isinstance(state, dict) and str(state.get("token", "")).isalnum():
        (_uploads_dir() / state["token"]).unlink(missing_ok=True)


def _table(vault: visits.TargetVault, state: dict[str, Any]) -> ti.Table:
    sealed = (_uploads_dir() / state["token"]).read_bytes()
    return ti.read_table(vault.open_bytes(sealed), state.get("filename", ""))


def _known(vault: visits.TargetVault, req: VisitRequest, *,
           except_target: str | None = None) -> dict[str, str]:
    """NIKs the office knows (open requests, records) plus this request's own targets."""
    book = _book()
    if book is not None:
        book.index_new()
    known = visits.known_niks(vault, book=book, exclude_request=req.pk)
    own = req.targets.exclude(id=except_target) if except_target else req.targets.all()
    for row, target in visits.open_targets(vault, own):
        if target is not None:
            where = f" (baris {row.source_row})" if row.source_row else ""
            known.setdefault(target.nik, f"sudah ada di permohonan ini{where}")
    return known


FIXABLE = ("desa", "kecamatan", "dusun", "rt", "rw", "category", "place", "sex", "notes")
"""Fields a whole file may share, so the mapping offers a fixed value for them."""


def _mapping_fields(table: ti.Table, state: dict[str, Any], req: VisitRequest,
                    posted: dict[str, str] | None) -> list[dict[str, Any]]:
    """One line per field for the mapping form: its column select and its fixed value."""
    suggestion = ti.suggest_mapping(table.headers)
    saved_cols = state.get("columns") or {}
    saved_fixed = state.get("fixed") or {}
    lines = []
    for spec in ti.FIELDS:
        if posted is not None:
            column, fixed = posted.get(f"col-{spec.key}", ""), posted.get(f"fix-{spec.key}", "")
        elif saved_cols or saved_fixed:
            column = str(saved_cols[spec.key]) if spec.key in saved_cols else ""
            fixed = saved_fixed.get(spec.key, "")
        else:
            column = str(suggestion.columns[spec.key]) if spec.key in suggestion.columns else ""
            fixed = ""
            if not column and spec.key == "desa" and req.village:
                fixed = req.village
            if not column and spec.key == "kecamatan" and req.kecamatan:
                fixed = req.kecamatan
        choices: list[tuple[str, str]] | None = None
        if spec.key == "kecamatan":
            choices = [("", "—"), *((k, k) for k in regions.BLITAR_KECAMATAN)]
        elif spec.key == "category":
            choices = [("", "—"), *((c.value, c.label(_lang())) for c in Category)]
        elif spec.key == "place":
            choices = [("", "—"), *((p.value, p.label(_lang())) for p in Place)]
        elif spec.key == "sex":
            choices = [("", "—"), ("L", _("L (laki-laki)")), ("P", _("P (perempuan)"))]
        lines.append({"spec": spec, "label": spec.label(_lang()), "column": column,
                      "fixed": fixed, "fixable": spec.key in FIXABLE, "choices": choices,
                      "required": spec.required})
    return lines


def _mapping_from_post(table: ti.Table, post: Any) -> ti.ColumnMapping:
    columns: dict[str, int] = {}
    fixed: dict[str, str] = {}
    bad: list[ti.Reason] = []
    for spec in ti.FIELDS:
        column = str(post.get(f"col-{spec.key}", "")).strip()
        if column:
            if column.isdigit():
                columns[spec.key] = int(column)
            else:
                bad.append(ti.Reason("mapping_column", spec.key,
                                     f"{spec.label_id}: pilihan kolom tidak dikenal",
                                     f"{spec.label_en}: unknown column choice"))
        value = str(post.get(f"fix-{spec.key}", "")).strip()
        if value and spec.key in FIXABLE:
            fixed[spec.key] = value
    if bad:
        raise ti.MappingError(bad)
    return ti.ColumnMapping(table.headers, columns, fixed)


def _report(vault: visits.TargetVault, req: VisitRequest, table: ti.Table,
            state: dict[str, Any]) -> ti.Report:
    mapping = ti.ColumnMapping(table.headers, {k: int(v) for k, v in state["columns"].items()},
                               dict(state.get("fixed") or {}))
    return ti.check_rows(table, mapping, known_niks=_known(vault, req))


def _report_rows(report: ti.Report) -> list[dict[str, Any]]:
    lang = _lang()
    return [{"number": r.number, "accepted": r.accepted, "values": r.values,
             "text": r.text(lang), "reasons": [x.text(lang) for x in r.reasons],
             "warnings": [x.text(lang) for x in r.warnings]} for r in report.rows]


@in_memory_uploads(ti.MAX_BYTES + 64 * 1024)
@require("office.register_requests")
def import_page(request: HttpRequest, request_id: int) -> HttpResponse:
    """The three steps of the import; which one is shown follows the session's state and
    ``?step=`` (``map``, ``report``)."""
    req = _get(request_id)
    sweep_uploads()
    context: dict[str, Any] = {"req": req, "applicant": applicant_text(req)}
    vault, problem = _vault()
    if not workable(req) or vault is None:
        context.update(problem=problem, not_workable="" if workable(req) else
                       _not_workable_text(req))
        return render(request, "requests/import.html", {**context, "step": "blocked"},
                      status=409 if vault is not None else 200)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if action == "cancel":
        _drop(request)
        messages.info(request, _("Impor dibatalkan; berkas sementara dihapus."))
        return redirect("request", req.pk)
    if action == "upload":
        return _upload(request, req, vault, context)
    state = _pending(request, req)
    if state is None:
        if action:
            messages.error(request, _("Berkas unggahan tidak ada lagi (lebih dari 1 jam, atau "
                                      "sudah diimpor): unggah lagi."))
        return render(request, "requests/import.html", {**context, "step": "upload"})
    try:
        table = _table(vault, state)
    except (ti.TableError, RecordUnavailable) as exc:
        _drop(request)
        messages.error(request, exc.text(_lang()))
        return redirect("request-import", req.pk)
    context.update(table=table, filename=state.get("filename", ""),
                   description=table.description(_lang()))
    if action == "map":
        return _map(request, req, vault, table, state, context)
    if action == "confirm":
        return _confirm(request, req, vault, table, state, context)
    if request.GET.get("step") == "report" and state.get("columns") is not None:
        report = _report(vault, req, table, state)
        return _show_report(request, req, report, context, picked=None)
    return _show_mapping(request, req, table, state, context)


def _upload(request: HttpRequest, req: VisitRequest, vault: visits.TargetVault,
            context: dict[str, Any]) -> HttpResponse:
    upload = request.FILES.get("file")
    error = ""
    if _too_large(request):
        error = _("Berkas terlalu besar (maks. 20 MiB): daftar sasaran sebuah desa jauh lebih "
                  "kecil; periksa apakah ini berkas yang benar.")
    elif upload is None:
        error = _("Pilih berkas daftar sasaran (CSV atau XLSX) untuk diunggah.")
    if not error and upload is not None:
        data = upload.read()
        filename = (upload.name or "")[:200]
        try:
            ti.read_table(data, filename)
        except ti.TableError as exc:
            error = exc.text(_lang())
        else:
            _drop(request)
            token = secrets.token_hex(16)
            target = _uploads_dir() / token
            with open(target, "xb") as out:
                target.chmod(0o600)
                out.write(vault.seal_bytes(data))
            request.session[SESSION_KEY] = {"request": req.pk, "token": token,
                                            "filename": filename, "at": time.time()}
            log.info("request %d: target list uploaded (%d bytes)", req.pk, len(data))
            return redirect(reverse("request-import", args=[req.pk]) + "?step=map")
    return render(request, "requests/import.html", {**context, "step": "upload",
                                                    "upload_error": error}, status=400)


def _show_mapping(request: HttpRequest, req: VisitRequest, table: ti.Table,
                  state: dict[str, Any], context: dict[str, Any], *,
                  posted: dict[str, str] | None = None,
                  problems: list[ti.Reason] | None = None, status: int = 200) -> HttpResponse:
    suggestion = ti.suggest_mapping(table.headers)
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    for p in problems or []:
        if p.field:
            by_field.setdefault(p.field, []).append(p.text(_lang()))
        else:
            general.append(p.text(_lang()))
    fields = _mapping_fields(table, state, req, posted)
    for line in fields:
        line["errors"] = by_field.pop(line["spec"].key, [])
    general += [m for ms in by_field.values() for m in ms]
    headers = [(str(i), h or _("kolom ke-%(n)s") % {"n": i + 1})
               for i, h in enumerate(table.headers)]
    return render(request, "requests/import.html", {
        **context, "step": "map", "fields": fields, "headers": headers,
        "messages_map": suggestion.messages(_lang()), "problems": general,
        "has_problems": bool(problems),
        "unknown": [h or _("kolom ke-%(n)s") % {"n": i + 1} for i, h in suggestion.unknown],
    }, status=status)


def _map(request: HttpRequest, req: VisitRequest, vault: visits.TargetVault, table: ti.Table,
         state: dict[str, Any], context: dict[str, Any]) -> HttpResponse:
    try:
        mapping = _mapping_from_post(table, request.POST)
    except ti.MappingError as exc:
        posted = {k: str(v) for k, v in request.POST.items()}
        return _show_mapping(request, req, table, state, context, posted=posted,
                             problems=exc.problems, status=400)
    state = {**state, "columns": dict(mapping.columns), "fixed": dict(mapping.fixed)}
    request.session[SESSION_KEY] = state
    return redirect(reverse("request-import", args=[req.pk]) + "?step=report")


def _show_report(request: HttpRequest, req: VisitRequest, report: ti.Report,
                 context: dict[str, Any], *, picked: set[int] | None,
                 error: str = "", status: int = 200) -> HttpResponse:
    audit(request, "view_personal", subject=f"request {req.pk}",
          detail=f"import report {len(report.rows)} rows")
    rows = _report_rows(report)
    for row in rows:
        row["checked"] = row["accepted"] and (picked is None or row["number"] in picked)
    response = render(request, "requests/import.html", {
        **context, "step": "report", "rows": rows, "summary": report.summary(_lang()),
        "accepted": len(report.accepted), "refused": len(report.refused),
        "confirm_error": error,
    }, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _confirm(request: HttpRequest, req: VisitRequest, vault: visits.TargetVault,
             table: ti.Table, state: dict[str, Any], context: dict[str, Any]) -> HttpResponse:
    if state.get("columns") is None:
        return _show_mapping(request, req, table, state, context)
    picked = {int(n) for n in request.POST.getlist("row") if n.isdigit()}
    report = _report(vault, req, table, state)  # again: the office may know more by now
    if not picked:
        return _show_report(request, req, report, context, picked=picked, status=400,
                            error=_("Centang dulu baris yang akan diimpor."))
    try:
        chosen = report.targets(picked)
    except ValidationError as exc:
        return _show_report(request, req, report, context, picked=picked, status=409,
                            error=_("Tidak ada yang diimpor: data berubah sejak laporan "
                                    "dibuat. %(why)s. Periksa laporan yang diperbarui di "
                                    "bawah lalu konfirmasi lagi.") % {"why": exc.text(_lang())})
    numbers = [r.number for r in report.rows if r.number in picked and r.accepted]
    try:  # claim the upload: of two confirmations sent at once, only one imports
        (_uploads_dir() / state["token"]).unlink()
    except FileNotFoundError:
        request.session.pop(SESSION_KEY, None)
        messages.error(request, _("Daftar ini sudah diimpor (atau dibatalkan) di jendela "
                                  "lain."))
        return redirect("request", req.pk)
    who = request.user.get_username()
    filename = state.get("filename", "") or _("berkas")
    with transaction.atomic():
        for number, values in zip(numbers, chosen, strict=True):
            visits.add_target(req, values.to_target(), vault, who,
                              source_row=number)
        visits.note_event(req, who, f"{len(chosen)} sasaran diimpor dari {filename} "
                                    f"({len(report.refused)} ditolak)")
    _drop(request)
    audit(request, "import_targets", subject=f"request {req.pk}",
          detail=f"imported={len(chosen)} refused={len(report.refused)} "
                 f"rows={len(report.rows)}")
    log.info("request %d: %d target(s) imported, %d row(s) refused", req.pk, len(chosen),
             len(report.refused))
    messages.success(request, _("%(n)s sasaran diimpor (%(m)s baris ditolak).") % {
        "n": len(chosen), "m": len(report.refused)})
    return redirect("request", req.pk)


# -- a target by hand -----------------------------------------------------------------------
_FORM_FIELD = {"nik": "nik", "kk": "kk", "name": "name", "birth_date": "birth_date",
               "sex": "sex", "address.street": "street", "address.rt": "rt",
               "address.rw": "rw", "address.dusun": "dusun", "address.desa": "desa",
               "address.kecamatan": "kecamatan", "category": "category", "place": "place",
               "notes": "notes"}


class TargetForm(forms.Form):
    """Every field of a target, checked with the kit's own rules."""

    nik = forms.CharField(label="NIK", max_length=32, error_messages=_required(
        gettext_lazy("Isi NIK (16 angka) dari KTP-el atau KK.")))
    kk = forms.CharField(label=gettext_lazy("Nomor KK"), max_length=32,
                         error_messages=_required(gettext_lazy(
                             "Isi nomor KK (16 angka) dari Kartu Keluarga.")))
    name = forms.CharField(label=gettext_lazy("Nama (huruf kapital, sesuai KK)"),
                           max_length=150, strip=False, error_messages=_required(
                               gettext_lazy("Isi nama sesuai KK.")))
    birth_date = _date_field(gettext_lazy("Tanggal lahir"))
    sex = forms.ChoiceField(label=gettext_lazy("Jenis kelamin"),
                            choices=[("", "—"), ("L", gettext_lazy("L (laki-laki)")),
                                     ("P", gettext_lazy("P (perempuan)"))],
                            error_messages={"required": gettext_lazy("Pilih L atau P."),
                                            "invalid_choice": gettext_lazy("Pilih L atau P.")})
    street = forms.CharField(label=gettext_lazy("Alamat/jalan"), max_length=200,
                             required=False)
    rt = forms.CharField(label="RT", max_length=8, error_messages=_required(
        gettext_lazy("Isi RT (mis. 003).")))
    rw = forms.CharField(label="RW", max_length=8, error_messages=_required(
        gettext_lazy("Isi RW (mis. 001).")))
    dusun = forms.CharField(label=gettext_lazy("Dusun"), max_length=120, required=False)
    desa = forms.CharField(label=gettext_lazy("Desa/kelurahan"), max_length=120,
                           error_messages=_required(gettext_lazy("Isi desa/kelurahan.")))
    kecamatan = forms.ChoiceField(label=gettext_lazy("Kecamatan"), error_messages={
        "required": gettext_lazy("Pilih kecamatan."),
        "invalid_choice": gettext_lazy("Pilih salah satu dari 22 kecamatan Kabupaten Blitar.")})
    category = forms.ChoiceField(label=gettext_lazy("Kategori"), error_messages={
        "required": gettext_lazy("Pilih kategori."),
        "invalid_choice": gettext_lazy("Kategori tidak dikenal.")})
    place = forms.ChoiceField(label=gettext_lazy("Tempat perekaman"), error_messages={
        "required": gettext_lazy("Pilih tempat perekaman."),
        "invalid_choice": gettext_lazy("Tempat tidak dikenal.")})
    notes = forms.CharField(label=gettext_lazy("Catatan (kondisi, akses rumah)"),
                            max_length=1000, required=False,
                            widget=forms.Textarea(attrs={"rows": 2}))
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, target_id: str, known: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.target_id, self.known = target_id, known
        self.fields["kecamatan"].choices = _kecamatan_choices(_("— pilih kecamatan —"))
        self.fields["category"].choices = [("", "—"), *((c.value, c.label(_lang()))
                                                        for c in Category)]
        self.fields["place"].choices = [(p.value, p.label(_lang())) for p in Place]
        self.target: Target | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if any(not data.get(k) for k in ("birth_date", "sex", "category", "place")):
            return data  # the kit's rules need these; their own errors say what to do

        def text(key: str) -> str:
            return str(data.get(key) or "").strip()

        target = Target(
            id=self.target_id, nik=text("nik"), kk=text("kk"), name=text("name"),
            birth_date=data["birth_date"], sex=Sex.MALE if data["sex"] == "L" else Sex.FEMALE,
            address=Address(street=text("street"), rt=text("rt"), rw=text("rw"),
                            dusun=text("dusun"), desa=text("desa"),
                            kecamatan=text("kecamatan")),
            category=Category(data["category"]), place=Place(data["place"]),
            notes=text("notes"))
        lang = _lang()
        for err in target.problems(today=timezone.localdate()):
            where = _FORM_FIELD.get(err.field) if isinstance(err, FieldError) else None
            if where is not None and where in self.errors:
                continue  # already told (e.g. "fill in the NIK")
            self.add_error(where, err.text(lang))
        if target.nik in self.known:
            self.add_error("nik", _("NIK sudah terdaftar: %(where)s.") % {
                "where": self.known[target.nik]})
        if not self.errors:
            self.target = target
        return data

    @staticmethod
    def initial_of(target: Target, version: int) -> dict[str, Any]:
        a = target.address
        return {"nik": target.nik, "kk": target.kk, "name": target.name,
                "birth_date": target.birth_date, "sex": target.sex.code, "street": a.street,
                "rt": a.rt, "rw": a.rw, "dusun": a.dusun, "desa": a.desa,
                "kecamatan": a.kecamatan, "category": target.category.value,
                "place": target.place.value, "notes": target.notes, "version": version}


@require("office.register_requests")
def target_new(request: HttpRequest, request_id: int) -> HttpResponse:
    req = _get(request_id)
    return _target_form(request, req, None)


@require("office.register_requests")
def target_edit(request: HttpRequest, target_id: str) -> HttpResponse:
    row = get_object_or_404(TargetRow.objects.select_related("request"), pk=target_id)
    return _target_form(request, row.request, row)


def _target_form(request: HttpRequest, req: VisitRequest, row: TargetRow | None
                 ) -> HttpResponse:
    context: dict[str, Any] = {"req": req, "row": row, "applicant": applicant_text(req)}
    vault, problem = _vault()
    if vault is None or not workable(req):
        context.update(problem=problem,
                       not_workable="" if workable(req) else _not_workable_text(req))
        return render(request, "requests/target.html", {**context, "blocked": True},
                      status=409 if vault is not None else 200)
    if row is not None and row.status != "pending":
        context["not_workable"] = _("Sasaran ini sudah ditutup oleh rekaman (%(status)s): "
                                    "datanya tidak dapat diubah lagi.") % {
            "status": visits.TARGET_STATUSES.get(row.status, row.status)}
        return render(request, "requests/target.html", {**context, "blocked": True},
                      status=409)
    current = vault.open(row.sealed) if row is not None else None
    target_id = row.pk if row is not None else uuid7()
    if request.method != "POST":
        if current is not None and row is not None:
            initial = TargetForm.initial_of(current, row.version)
            audit(request, "view_personal", subject=f"request {req.pk}",
                  detail=f"target row {row.source_row or '-'}")
        else:
            initial = {"desa": req.village, "kecamatan": req.kecamatan, "place": "home"}
        form = TargetForm(initial=initial, target_id=target_id, known={})
        return render(request, "requests/target.html", {**context, "form": form})
    known = _known(vault, req, except_target=row.pk if row is not None else None)
    form = TargetForm(request.POST, target_id=target_id, known=known)
    if not form.is_valid() or form.target is None:
        return render(request, "requests/target.html", {**context, "form": form}, status=400)
    who = request.user.get_username()
    target = form.target
    if row is None:
        with transaction.atomic():
            visits.add_target(req, target, vault, who)
            visits.note_event(req, who, "1 sasaran ditambahkan dengan tangan")
        audit(request, "edit_target", subject=f"request {req.pk}", detail="added 1")
        messages.success(request, _("Sasaran ditambahkan."))
        return redirect(reverse("request", args=[req.pk]) + f"#target-{target.id}")
    version = form.cleaned_data.get("version")
    changed = TargetRow.objects.filter(pk=row.pk, version=version, status="pending").update(
        sealed=vault.seal(target), category=target.category.value, place=target.place.value,
        village=target.address.desa, version=row.version + 1,
        # Changed data are checked again: a verification was of what the row said before.
        verified=None, verify_note="", verified_by="", verified_at=None)
    if not changed:
        row.refresh_from_db()
        theirs = vault.open(row.sealed)
        fresh = dict(request.POST.items())
        fresh["version"] = str(row.version)
        form = TargetForm(fresh, target_id=target_id, known=known)
        form.is_valid()
        return render(request, "requests/target.html", {
            **context, "form": form, "conflict": True,
            "theirs": TargetForm.initial_of(theirs, row.version),
            "theirs_sex": theirs.sex.label(_lang()),
            "theirs_category": theirs.category.label(_lang()),
            "theirs_place": theirs.place.label(_lang())}, status=409)
    visits.note_event(req, who, f"sasaran baris {row.source_row or '-'} diubah")
    audit(request, "edit_target", subject=f"request {req.pk}",
          detail=f"changed row {row.source_row or '-'}")
    messages.success(request, _("Perubahan sasaran disimpan."))
    return redirect(reverse("request", args=[req.pk]) + f"#target-{row.pk}")


# -- verification (SOP step 3) --------------------------------------------------------------
def _maybe_verified(req: VisitRequest, who: str) -> None:
    """Every target decided and at least one verified: the request is verified."""
    if req.status != "dispositioned":
        return
    counts = visits.progress(req)
    if counts["total"] and not counts["unverified"] and counts["verified"]:
        visits.move(req, "verified", who,
                    f"{counts['verified']} terverifikasi, {counts['refused']} tidak")


def _row_response(request: HttpRequest, req: VisitRequest, row: TargetRow, *,
                  error: str = "") -> HttpResponse:
    """One target's row (htmx swaps it in place) and the counts above the table."""
    vault, problem = _vault()
    if vault is None:
        return HttpResponse(problem, status=409)
    lines = [line for line in _lines(vault, req) if line.row.pk == row.pk]
    context = {"req": req, "line": lines[0], "can_verify": True, "workable": True,
               "verify_errors": {row.pk: error} if error else {}}
    body = render_to_string("requests/target_row.html", context, request=request)
    body += render_to_string("requests/progress.html",
                             {"progress": visits.progress(req), "oob": True}, request=request)
    response = HttpResponse(body)
    response["Cache-Control"] = "no-store"
    return response


@require("office.schedule_visits")
def verify(request: HttpRequest, request_id: int) -> HttpResponse:
    """POST: one target verified or not (``one=<id>:yes|no``, the reason in
    ``note-<id>``), or every ticked undecided target verified (``bulk``)."""
    req = _get(request_id)
    if request.method != "POST":
        return redirect("request", req.pk)
    if not workable(req):
        messages.error(request, _not_workable_text(req))
        return redirect("request", req.pk)
    who, now = request.user.get_username(), time.time()
    htmx = request.headers.get("HX-Request") == "true"
    one = request.POST.get("one", "")
    if one:
        target_id, _sep, verdict = one.rpartition(":")
        row = req.targets.filter(pk=target_id).first()
        if row is None or verdict not in ("yes", "no"):
            messages.error(request, _("Sasaran itu tidak ada (lagi) di permohonan ini."))
            return redirect("request", req.pk)
        note = str(request.POST.get(f"note-{row.pk}", "")).strip()[:500]
        if verdict == "no" and not note:
            why = _("Tulis alasan mengapa sasaran ini tidak diverifikasi.")
            if htmx:
                return _row_response(request, req, row, error=why)
            return _render_request(request, req, status=400, verify_errors={row.pk: why})
        before = req.status
        with transaction.atomic():
            row.verified = verdict == "yes"
            row.verify_note = note
            row.verified_by, row.verified_at = who, now
            row.version += 1
            row.save(update_fields=["verified", "verify_note", "verified_by", "verified_at",
                                    "version"])
            _maybe_verified(req, who)
        moved_from_dispositioned = before != req.status
        audit(request, "verify_targets", subject=f"request {req.pk}",
              detail=f"row {row.source_row or '-'} {'verified' if row.verified else 'not'}")
        if htmx:
            if not moved_from_dispositioned:
                return _row_response(request, req, row)
            response = HttpResponse("")
            response["HX-Refresh"] = "true"  # the request moved on: the whole page changes
            messages.success(request, _("Semua sasaran sudah diperiksa: permohonan "
                                        "berstatus \"%(status)s\".") % {
                "status": visits.state_label(req.status)})
            return response
        messages.success(request, _("Verifikasi disimpan."))
        return redirect(reverse("request", args=[req.pk]) + f"#target-{row.pk}")
    if not request.POST.get("bulk"):
        messages.error(request, _("Tekan \"Terverifikasi\" atau \"Tidak\" pada baris "
                                  "sasaran, atau centang sasaran lalu tekan tombol "
                                  "verifikasi di bawah tabel."))
        return redirect("request", req.pk)
    picked = request.POST.getlist("picked")
    if not picked:
        messages.error(request, _("Centang dulu sasaran yang akan diverifikasi."))
        return redirect("request", req.pk)
    with transaction.atomic():
        rows = req.targets.filter(pk__in=picked, verified=None)
        done = 0
        for row in rows:
            row.verified, row.verified_by, row.verified_at = True, who, now
            row.version += 1
            row.save(update_fields=["verified", "verified_by", "verified_at", "version"])
            done += 1
        _maybe_verified(req, who)
    audit(request, "verify_targets", subject=f"request {req.pk}", detail=f"bulk verified={done}")
    messages.success(request, _("%(n)s sasaran diverifikasi.") % {"n": done})
    return redirect("request", req.pk)


urlpatterns: list[URLPattern] = [
    path("requests/", request_list, name="requests"),
    path("requests/new/", request_new, name="request-new"),
    path("requests/<int:request_id>/", request_page, name="request"),
    path("requests/<int:request_id>/disposition/", disposition, name="request-disposition"),
    path("requests/<int:request_id>/scan/", request_scan, name="request-scan"),
    path("requests/<int:request_id>/import/", import_page, name="request-import"),
    path("requests/<int:request_id>/targets/new/", target_new, name="request-target-new"),
    path("requests/<int:request_id>/verify/", verify, name="request-verify"),
    path("targets/<str:target_id>/edit/", target_edit, name="target-edit"),
]
