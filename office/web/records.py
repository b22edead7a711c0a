"""The record pages: every received record, its review state, and one record in full.

``/records/`` (``records``) lists every stored record by its review row
(:class:`office.models.RecordReview`), filtered by visit day, village, kecamatan, kit,
officer, outcome, state and completeness, and searched by name (substring, any case) or
NIK (prefix). Names live sealed in the index (:mod:`office.records`): the page decrypts
the few bytes of each row in memory, never in SQL, so the table alone names nobody. Rows
can be ticked and moved to another state together; "problem" needs a note.

``/records/<kit>/<record>/`` (``record``) opens the sealed record itself with the office's
keys (in memory only) and shows the resident, the outcome, what a partial record still
lacks, the photo, the ten fingers, the signature, the witness, officers, times and place.
Its images come from ``/records/<kit>/<record>/image/<part>``: decrypted per request,
scaled with Pillow in memory for thumbnails, sent with ``Cache-Control: no-store``; no
decrypted byte is written to disk or kept after the response.

Everything here needs ``office.view_personal`` (operators and the head; a viewer gets the
403 page) and is written to the audit log: the list once per request ("records list",
the filter without the search text, which may be a name or a NIK), each record page and
each image ("view_personal"), each state change ("review_record").

A stored record that fails to open (unknown kit, bad signature or seal) is listed with
the reason from its review row and never shown as good; records held in the
``quarantine`` table (an id collision, an upload from a revoked kit, or a record whose
hash or kit signature failed on receipt, with the reason the ingest wrote in
``quarantine_reasons``) are listed apart under "Karantina", without their contents;
``/records/quarantine/<kit>/<record>/<sha256>/`` shows one of them (hashes, size, time,
reason; never its contents), audited as "view_quarantine".
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import time
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import F, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from office.models import Quarantined, QuarantineReason, RecordReview, Revocation
from office.records import OpenedRecord, Person, RecordBook, RecordUnavailable
from office.web.audit import audit
from office.web.roles import require
from office.web.wib import lang as _lang
from office.web.wib import local as _local
from sync.domain import FingerPosition, Outcome, Recording

log = logging.getLogger("office.web.records")

PAGE_SIZE = 50
THUMB_PX = 240  # the longer side of a thumbnail on the record page
STATES: dict[str, Any] = {
    "received": gettext_lazy("Diterima"),
    "checked": gettext_lazy("Sudah diperiksa"),
    "entered": gettext_lazy("Sudah dimasukkan ke SIAK"),
    "problem": gettext_lazy("Bermasalah"),
}
NO_STORE = "no-store"


def missing_label(code: str) -> str:
    """A ``missing`` code (:func:`office.records.missing_parts`) as staff read it."""
    kind, _sep, value = code.partition(":")
    if kind == "photo":
        return _("Foto wajah belum")
    if kind == "signature":
        return _("Tanda tangan belum")
    if kind == "finger" and value.isdigit() and 1 <= int(value) <= 10:
        return _("%(finger)s belum") % {"finger": FingerPosition(int(value)).label(_lang())}
    if kind == "outcome":
        if value == "none":
            return _("Hasil kunjungan belum dipilih")
        if value == "partial":
            return _("Ditandai terekam sebagian oleh petugas")
        try:
            return _("Hasil kunjungan: %(outcome)s") % {"outcome": Outcome(value).label(_lang())}
        except ValueError:
            return _("Hasil kunjungan: %(outcome)s") % {"outcome": value}
    return code


def outcome_label(value: str) -> str:
    try:
        return Outcome(value).label(_lang())
    except ValueError:
        return value or "—"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    return _("%(m)s mnt %(s)s dtk") % {"m": minutes, "s": secs}


# -- the review state ---------------------------------------------------------------------
class StateForm(forms.Form):
    """A review state and its note; "problem" is refused without a note."""

    state = forms.ChoiceField(label=gettext_lazy("Status"), choices=list(STATES.items()),
                              error_messages={"required": gettext_lazy("Pilih status."),
                                              "invalid_choice": gettext_lazy(
                                                  "Status tidak dikenal.")})
    note = forms.CharField(label=gettext_lazy("Catatan"), required=False, max_length=1000,
                           widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("state") == "problem" and not str(data.get("note") or "").strip():
            self.add_error("note", _("Status \"Bermasalah\" perlu catatan: tulis apa "
                                     "masalahnya."))
        return data


class BulkStateForm(StateForm):
    picked = forms.MultipleChoiceField(required=True, error_messages={
        "required": gettext_lazy("Centang dulu rekaman yang akan diubah statusnya.")})

    def __init__(self, *args: Any, choices: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["picked"].choices = [(c, c) for c in choices]
        self.fields["picked"].error_messages["invalid_choice"] = _(
            "Rekaman yang dicentang tidak ada (lagi).")


def set_state(request: HttpRequest, pairs: list[tuple[str, str]], state: str,
              note: str) -> int:
    """Save ``state`` and ``note`` with who and when on each record; audited per record."""
    who, now, done = request.user.get_username(), time.time(), 0
    for kit_id, record_id in pairs:
        done += RecordReview.objects.filter(kit_id=kit_id, record_id=record_id).update(
            state=state, note=note.strip(), state_at=now, state_by=who)
        audit(request, "review_record", subject=f"{kit_id}/{record_id}", detail=state)
    log.info("%s set %d record(s) to %s", who, done, state)
    return done


# -- the list ---------------------------------------------------------------------------
class FilterForm(forms.Form):
    """The list's filters; every field optional, the dates checked against each other."""

    date_from = forms.DateField(label=gettext_lazy("Dari tanggal"), required=False,
                                widget=forms.DateInput(attrs={"type": "date"}),
                                error_messages={"invalid": gettext_lazy(
                                    "Tanggal tidak valid: tulis TTTT-BB-HH.")})
    date_to = forms.DateField(label=gettext_lazy("Sampai tanggal"), required=False,
                              widget=forms.DateInput(attrs={"type": "date"}),
                              error_messages={"invalid": gettext_lazy(
                                  "Tanggal tidak valid: tulis TTTT-BB-HH.")})
    village = forms.ChoiceField(label=gettext_lazy("Desa"), required=False)
    kecamatan = forms.ChoiceField(label=gettext_lazy("Kecamatan"), required=False)
    kit = forms.ChoiceField(label=gettext_lazy("Kit"), required=False)
    officer = forms.ChoiceField(label=gettext_lazy("Petugas"), required=False)
    outcome = forms.ChoiceField(label=gettext_lazy("Hasil"), required=False)
    state = forms.ChoiceField(label=gettext_lazy("Status"), required=False)
    complete = forms.ChoiceField(label=gettext_lazy("Kelengkapan"), required=False)
    q = forms.CharField(label=gettext_lazy("Cari nama atau NIK"), required=False,
                        max_length=100)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        every = ("", _("Semua"))
        rows = RecordReview.objects.exclude(started_at=None)
        distinct = {name: sorted({v for v in rows.values_list(name, flat=True) if v})
                    for name in ("village", "kecamatan", "outcome")}
        kits = sorted(set(RecordReview.objects.values_list("kit_id", flat=True)))
        officers = sorted({o for line in rows.values_list("officers", flat=True)
                           for o in line.split(",") if o})
        self.fields["village"].choices = [every, *((v, v) for v in distinct["village"])]
        self.fields["kecamatan"].choices = [every, *((v, v) for v in distinct["kecamatan"])]
        self.fields["kit"].choices = [every, *((k, k) for k in kits)]
        self.fields["officer"].choices = [every, *((o, o) for o in officers)]
        self.fields["outcome"].choices = [every, *((o.value, o.label(_lang()))
                                                   for o in Outcome)]
        self.fields["state"].choices = [every, *((k, str(v)) for k, v in STATES.items())]
        self.fields["complete"].choices = [every, ("complete", _("Lengkap")),
                                           ("partial", _("Sebagian / belum lengkap"))]
        for field in self.fields.values():
            field.error_messages.setdefault("invalid_choice", _("Pilihan tidak dikenal."))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", _("Tanggal akhir sebelum tanggal awal."))
        return data

    def audit_text(self) -> str:
        """The filter for the audit log: every field but the search text, which may be a
        name or a NIK (only whether it was a name or a NIK search)."""
        data = self.cleaned_data if self.is_valid() else {}
        parts = [f"{k}={v}" for k, v in data.items() if v and k != "q"]
        q = str(data.get("q") or "")
        if q:
            parts.append("search=nik" if q.isdigit() else "search=name")
        return " ".join(parts) or "all"


def filtered(data: dict[str, Any]) -> QuerySet[RecordReview]:
    """The review rows matching the filters, newest visit first (the same filter as the
    export's, :func:`office.export.filter_reviews`; the search is done in memory, after)."""
    from office.export import filter_reviews

    return filter_reviews(data).order_by(F("started_at").desc(nulls_first=True), "kit_id",
                                         "record_id")


def matches(person: Person | None, q: str) -> bool:
    """Name: substring in any case; NIK: prefix."""
    if person is None:
        return False
    return q.casefold() in person.name.casefold() or (q.isdigit() and
                                                      person.nik.startswith(q))


@dataclass
class Row:
    review: RecordReview
    person: Person | None

    @property
    def key(self) -> str:
        return f"{self.review.kit_id}/{self.review.record_id}"

    @property
    def started(self) -> dt.datetime | None:
        return _local(self.review.started_at)

    @property
    def outcome(self) -> str:
        return outcome_label(self.review.outcome)

    @property
    def state(self) -> str:
        return str(STATES.get(self.review.state, self.review.state))

    @property
    def missing(self) -> list[str]:
        return [missing_label(c) for c in self.review.missing.split(",") if c]

    @property
    def recorded(self) -> bool:
        """True when the visit recorded someone (complete or partly), not refused etc."""
        return self.review.outcome in (Outcome.RECORDED.value, Outcome.PARTIAL.value)

    @property
    def officers(self) -> str:
        return ", ".join(o for o in self.review.officers.split(",") if o)

    @property
    def open_error(self) -> str:
        return open_error_label(self.review.open_error)


def open_error_label(stored: str) -> str:
    """Why a stored record did not open, from its review row (``code: English``), in the
    page's language; the code is kept, for the technician."""
    code = stored.partition(": ")[0]
    labels = {
        "kit_unknown": _("kunci publik kit ini tidak ada di kantor"),
        "header_mismatch": _("kepala amplop tidak cocok dengan rekaman"),
        "not_found": _("rekaman tidak ada"),
        "no_keys": _("kunci kantor tidak diatur"),
    }
    label = labels.get(code) or (_("tanda tangan kit atau segel rekaman tidak sah")
                                 if code.startswith("unopenable") else "")
    if _lang() == "en" or not label:
        return stored
    return f"{label} ({code})"


def _book() -> tuple[RecordBook | None, str]:
    try:
        return RecordBook.from_settings(), ""
    except RecordUnavailable as exc:
        log.warning("record pages cannot open records: %s", exc.text("en"))
        return None, _("Rekaman tidak dapat dibuka: kunci kantor atau folder kunci kit belum "
                       "diatur. Jalankan aplikasi web dengan 'jaranijo office web --keys "
                       "FOLDER_KUNCI --kits FOLDER_KIT'. (%(why)s)") % {"why": exc.text(_lang())}


def _quarantine_reason(q: Quarantined, why: QuarantineReason | None,
                       revoked: set[str]) -> tuple[str, str]:
    """``(code, text)``: why a quarantined record is there, in the page's language. A
    record that failed its check on receipt has its reason row (the ingest's words in
    both languages); the others are an upload of a revoked kit or an id collision."""
    if why is not None:
        return why.code, why.reason_en if _lang() == "en" else why.reason_id
    if q.kit_id in revoked:
        return "revoked", _("dikirim kit yang sudah dicabut")
    return "conflict", _("ID sama dengan rekaman tersimpan, isinya berbeda")


def quarantine_rows() -> list[dict[str, Any]]:
    """Every quarantined record, newest first: kit, id, size, time and reason; never its
    contents (the bytes are not even read from the database)."""
    revoked = set(Revocation.objects.values_list("kit_id", flat=True))
    reasons = {(r.kit_id, r.record_id, r.sha256): r for r in QuarantineReason.objects.all()}
    rows = []
    for q in Quarantined.objects.defer("blob").order_by("-received_at"):
        code, text = _quarantine_reason(q, reasons.get((q.kit_id, q.record_id, q.sha256)),
                                        revoked)
        rows.append({"kit_id": q.kit_id, "record_id": q.record_id, "sha256": q.sha256,
                     "size": q.size, "received": _local(q.received_at), "code": code,
                     "reason": text, "untrusted": code not in ("revoked", "conflict")})
    return rows


@require("office.view_personal")
def quarantine_page(request: HttpRequest, kit_id: str, record_id: str,
                    sha256: str) -> HttpResponse:
    """One quarantined record as a technician reviews it: kit, id, the hash of the bytes
    kept and the one the kit declared, size, time and the reason, in words and as the
    code the kit was told. Its contents are never opened or shown here (a record that
    failed its check is not to be read as good); the opening is audited all the same."""
    q = Quarantined.objects.defer("blob").filter(kit_id=kit_id, record_id=record_id,
                                                 sha256=sha256).first()
    if q is None:
        raise Http404(_("Rekaman karantina tidak ada"))
    why = QuarantineReason.objects.filter(kit_id=kit_id, record_id=record_id,
                                          sha256=sha256).first()
    code, text = _quarantine_reason(q, why, set(Revocation.objects.filter(
        kit_id=kit_id).values_list("kit_id", flat=True)))
    audit(request, "view_quarantine", subject=f"{kit_id}/{record_id}",
          detail=f"sha256={sha256[:16]} reason={code}")
    response = render(request, "records/quarantine.html", {
        "q": q, "code": code, "reason": text, "received": _local(q.received_at),
        "declared": why.declared_sha256 if why is not None else "",
        "untrusted": why is not None})
    response["Cache-Control"] = NO_STORE
    return response


@require("office.view_personal")
def record_list(request: HttpRequest) -> HttpResponse:
    """GET: the list; POST: the bulk state change for the ticked rows (then the list
    again, filters kept)."""
    book, problem = _book()
    if book is None:
        audit(request, "view_personal", subject="records list", detail="no keys")
        response = render(request, "records/list.html", {"problem": problem,
                                                          "quarantine": quarantine_rows()})
        response["Cache-Control"] = NO_STORE
        return response
    arrived = book.index_new()
    if arrived:
        log.info("indexed %d new record(s)", arrived)
    form = FilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    rows_qs = filtered(data)
    q = str(data.get("q") or "").strip()
    if q:
        rows = [Row(r, p) for r in rows_qs if matches(p := book.person(r.sealed), q)]
        page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    else:
        page = Paginator(rows_qs, PAGE_SIZE).get_page(request.GET.get("page"))
        page.object_list = [Row(r, book.person(r.sealed)) for r in page.object_list]
    keys = [row.key for row in page.object_list]
    bulk = BulkStateForm(choices=keys, prefix="bulk")
    status = 200
    if request.method == "POST":
        bulk = BulkStateForm(request.POST, choices=keys, prefix="bulk")
        if bulk.is_valid():
            pairs = [tuple(k.split("/", 1)) for k in bulk.cleaned_data["picked"]]
            n = set_state(request, pairs, bulk.cleaned_data["state"],  # type: ignore[arg-type]
                          bulk.cleaned_data["note"])
            messages.success(request, _("Status %(n)s rekaman diubah menjadi \"%(state)s\".")
                             % {"n": n, "state": STATES[bulk.cleaned_data["state"]]})
            return redirect(request.get_full_path())
        status = 400
    audit(request, "view_personal", subject="records list",
          detail=f"{form.audit_text()} page={page.number}")
    query = urlencode({k: v for k, v in request.GET.items() if k != "page" and v})
    response = render(request, "records/list.html", {
        "form": form, "page": page, "bulk": bulk, "query": query,
        "quarantine": quarantine_rows(), "picked": set(bulk.data.getlist("bulk-picked"))
        if bulk.is_bound else set(),
    }, status=status)
    response["Cache-Control"] = NO_STORE
    return response


# -- one record -----------------------------------------------------------------------------
def _open(book: RecordBook, kit_id: str, record_id: str) -> OpenedRecord:
    try:
        return book.open(kit_id, record_id)
    except RecordUnavailable as exc:
        if exc.code == "not_found":
            raise Http404(_("Rekaman tidak ada")) from None
        raise


def finger_tiles(recording: Recording) -> list[dict[str, Any]]:
    """The ten fingers in ISO order: a print with its quality, an exception with its
    reason, or nothing recorded."""
    out = []
    for position in FingerPosition:
        capture = recording.fingers.get(position)
        tile: dict[str, Any] = {"n": int(position), "label": position.label(_lang()),
                                "hand": position.hand}
        if capture is not None and capture.captured:
            tile.update(kind="captured", quality=capture.quality_score,
                        attempts=capture.attempts, low=capture.low_quality_accepted)
        elif capture is not None and capture.exception is not None:
            tile.update(kind="exception", reason=capture.exception.label(_lang()),
                        note=capture.exception_note,
                        photo=capture.exception_photo_jpeg is not None)
        else:
            tile.update(kind="none")
        out.append(tile)
    return out


def record_context(opened: OpenedRecord, review: RecordReview | None) -> dict[str, Any]:
    r = opened.recording
    t = r.target
    finished = r.finished_at
    signature = r.signature
    gnss = r.gnss
    codes = [c for c in (review.missing.split(",") if review else []) if c]
    return {
        "kit_id": opened.kit_id, "record_id": opened.record_id, "r": r, "t": t,
        "address": t.address.line(_lang()), "sex": t.sex.label(_lang()),
        "category": t.category.label(_lang()),
        "outcome": outcome_label("" if r.outcome is None else r.outcome.value),
        "outcome_code": "" if r.outcome is None else r.outcome.value,
        "complete": bool(review and review.complete),
        "missing": [missing_label(c) for c in codes],
        "fingers": finger_tiles(r),
        "photo": r.photo, "signature": signature,
        "signed": signature is not None and signature.image_png is not None,
        "started": timezone.localtime(r.started_at),
        "finished": None if finished is None else timezone.localtime(finished),
        "duration": duration_text(None if finished is None
                                  else (finished - r.started_at).total_seconds()),
        "received": _local(opened.received_at),
        "gnss": gnss, "place": None if gnss is None else
        {"lat": gnss.lat, "lon": gnss.lon, "acc": gnss.accuracy_m},
        "review": review, "state_label": str(STATES.get(review.state, review.state))
        if review else "", "state_at": _local(review.state_at) if review else None,
    }


@require("office.view_personal")
def record_page(request: HttpRequest, kit_id: str, record_id: str) -> HttpResponse:
    """GET: the record in full; POST: its review state (then the page again)."""
    book, problem = _book()
    if book is None:
        audit(request, "view_personal", subject=f"{kit_id}/{record_id}", detail="no keys")
        return render(request, "records/record.html", {"problem": problem,
                                                       "kit_id": kit_id,
                                                       "record_id": record_id})
    review = RecordReview.objects.filter(kit_id=kit_id, record_id=record_id).first()
    if review is None:
        from office.models import Record

        if not Record.objects.filter(kit_id=kit_id, record_id=record_id).exists():
            raise Http404(_("Rekaman tidak ada"))
        review = book.index(kit_id, record_id)
    form = StateForm(initial={"state": review.state, "note": review.note})
    status = 200
    if request.method == "POST":
        form = StateForm(request.POST)
        if form.is_valid():
            set_state(request, [(kit_id, record_id)], form.cleaned_data["state"],
                      form.cleaned_data["note"])
            messages.success(request, _("Status rekaman diubah menjadi \"%(state)s\".")
                             % {"state": STATES[form.cleaned_data["state"]]})
            return redirect(reverse("record", args=[kit_id, record_id]))
        status = 400
    audit(request, "view_personal", subject=f"{kit_id}/{record_id}", detail="record page")
    try:
        opened = _open(book, kit_id, record_id)
    except RecordUnavailable as exc:
        response = render(request, "records/record.html", {
            "kit_id": kit_id, "record_id": record_id, "review": review,
            "open_error": exc.text(_lang())}, status=200)
        response["Cache-Control"] = NO_STORE
        return response
    from django.conf import settings

    if review.open_error:  # it opens now (e.g. the kit's keys were added): index it again
        review = book.index(kit_id, record_id)
    context = record_context(opened, review)
    context.update(form=form, tiles=settings.MAP_TILE_URL, image_base=reverse(
        "record-image", args=[kit_id, record_id, "photo"]).rsplit("/", 1)[0])
    response = render(request, "records/record.html", context, status=status)
    response["Cache-Control"] = NO_STORE
    return response


def image_bytes(recording: Recording, part: str) -> tuple[bytes, str] | None:
    """The stored bytes of one image of ``recording`` and their type, or None."""
    kind, _sep, n = part.partition("-")
    if kind == "photo" and not n:
        return (recording.photo.jpeg, "image/jpeg") if recording.photo else None
    if kind == "signature" and not n:
        s = recording.signature
        return (s.image_png, "image/png") if s is not None and s.image_png else None
    if kind in ("finger", "exception") and n.isdigit() and 1 <= int(n) <= 10:
        capture = recording.fingers.get(FingerPosition(int(n)))
        if capture is None:
            return None
        if kind == "finger":
            return (capture.image_png, "image/png") if capture.image_png else None
        return (capture.exception_photo_jpeg, "image/jpeg") \
            if capture.exception_photo_jpeg else None
    return None


def thumbnail(data: bytes, content_type: str, size: int = THUMB_PX) -> bytes:
    """``data`` scaled down (in memory) so its longer side is at most ``size`` pixels."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        if max(image.size) <= size:
            return data
        if content_type == "image/jpeg":
            image.draft("RGB", (size, size))  # let the JPEG decoder scale down first
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        if content_type == "image/jpeg":
            image.convert("RGB").save(out, format="JPEG", quality=85)
        else:  # a thumbnail is sent once and dropped: fast compression beats small
            image.save(out, format="PNG", compress_level=1)
        return out.getvalue()


@require("office.view_personal")
def record_image(request: HttpRequest, kit_id: str, record_id: str, part: str) -> HttpResponse:
    """One image of a record, decrypted in memory (``?thumb=1``: scaled down); never
    cached by the browser."""
    book, problem = _book()
    if book is None:
        raise Http404(problem)
    opened = _open(book, kit_id, record_id)
    found = image_bytes(opened.recording, part)
    if found is None:
        raise Http404(_("Gambar itu tidak ada di rekaman ini"))
    data, content_type = found
    thumb = request.GET.get("thumb") == "1"
    if thumb:
        data = thumbnail(data, content_type)
    audit(request, "view_personal", subject=f"{kit_id}/{record_id}",
          detail=f"image {part}{' thumb' if thumb else ''}")
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = NO_STORE
    return response


urlpatterns: list[URLPattern] = [
    path("records/", record_list, name="records"),
    path("records/quarantine/<str:kit_id>/<str:record_id>/<str:sha256>/", quarantine_page,
         name="quarantine"),
    path("records/<str:kit_id>/<str:record_id>/", record_page, name="record"),
    path("records/<str:kit_id>/<str:record_id>/image/<str:part>", record_image,
         name="record-image"),
]
