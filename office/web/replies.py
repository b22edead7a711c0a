"""The reply letter of a visit (SOP step 4): draft, the head's signed copy, sent.

``/visits/<id>/letter/`` (``office.schedule_visits``) shows a form prefilled from the visit
and its request: the letter number, today's date, the addressee ("Kepala Desa <desa>" or
the agency), the request's number and date, the visit's day and hours, the recording point
in words, how many residents (the visit's verified targets) and officers, who is asked to
accompany, and the head's name, rank and NIP (remembered from the last letter made, since
the head rarely changes). Every problem :meth:`office.letters.ReplyLetter.problems` finds
is shown at its own field.

**Draft.** "Buat draf" renders the letter (:func:`office.letters.render_reply`) and keeps
the PDF byte for byte in :class:`office.models.ReplyLetter`: the signed copy must be
exactly these bytes plus the signature, so the download ``draft.pdf`` hands out exactly
what was stored. Making the draft again replaces it and drops any signed copy (its
signature cannot match the new bytes) and any "sent" mark; the form says so and asks for
a tick before it does.

**Signed copy.** The head signs in BSrE's service, outside this system; the PDF that comes
back (at most :data:`MAX_SIGNED` bytes) is checked by :func:`office.letters.verify_signed`
against the stored draft and the roots in ``settings.TTE_TRUST_ROOTS`` (a PEM file: BSrE's
root in production). Unset, the page says so and refuses to verify: a copy nobody checked
must not count as signed. The verdict is stored with the copy (signer, signing time,
certificate serial and issuer, reasons) and shown: green with the signer, or red with
every reason.

**Sent.** "Tandai terkirim" is accepted only when the stored signed copy was verified
(checked here, not only by hiding the button): the request moves to ``letter_sent``.

Audit entries carry the visit id, the letter number and digests, never a resident's data.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from office import letters
from office import visits as flow
from office.models import ReplyLetter, Visit
from office.web.audit import audit
from office.web.roles import require
from office.web.wib import lang as _lang
from office.web.wib import local as _local
from sync.errors import ConfigError, JaranIjoError

log = logging.getLogger("office.web.replies")

MAX_SIGNED = 10 * 1024 * 1024  # a signed one-page letter is a few hundred KiB at most
PERMISSION = "office.schedule_visits"

# Where the recording is, as the letter says it ({place}: the desa or the agency).
POINT_WORDS: dict[str, str] = {
    "village_office": "Kantor Desa {place}",
    "house_to_house": "rumah ke rumah di Desa {place}",
    "hospital": "{place}",
    "care_home": "{place}",
}


def _visit_or_404(visit_id: int) -> Visit:
    visit = Visit.objects.select_related("request").filter(pk=visit_id).first()
    if visit is None:
        raise Http404(_("Kunjungan tidak dikenal"))
    return visit


def _place(visit: Visit) -> str:
    req = visit.request
    return req.village if req.applicant_kind == "village" else (req.agency or req.village)


def recording_point_words(visit: Visit) -> str:
    """The recording point in the letter's words ("Kantor Desa Kemloko")."""
    template = POINT_WORDS.get(visit.recording_point, "{place}")
    return template.format(place=_place(visit)).strip()


def _head_defaults() -> dict[str, str]:
    """The head's name, rank and NIP from the last letter made (the head rarely changes)."""
    last = ReplyLetter.objects.order_by("-drafted_at").only("fields").first()
    fields = last.fields if last is not None and isinstance(last.fields, dict) else {}
    return {k: str(fields.get(k, "")) for k in ("head_name", "head_title", "head_nip")}


def initial_fields(visit: Visit) -> dict[str, Any]:
    """The form's values for a visit with no letter yet, from the visit and its request."""
    req = visit.request
    agency = req.applicant_kind == "agency"
    return {
        "number": "",
        "letter_date": timezone.localdate(),
        "addressee": (req.agency if agency else f"Kepala Desa {req.village}").strip(),
        "addressee_place": "Tempat",
        "request_number": req.letter_number,
        "request_date": req.letter_date,
        "visit_date": visit.visit_date,
        "visit_start": visit.start_time,
        "visit_end": visit.end_time,
        "recording_point": recording_point_words(visit),
        "residents": visit.targets.filter(verified=True).count(),
        "officers": len([o for o in visit.officers.split(",") if o.strip()]),
        "accompaniment": ("petugas pendamping dari instansi Saudara" if agency
                          else "perangkat desa/kelurahan setempat"),
        "copies": "Bupati Blitar (sebagai laporan)\nArsip",
        **_head_defaults(),
    }


def _stored_fields(row: ReplyLetter) -> dict[str, Any]:
    """The form's values from a stored letter (what its draft says)."""
    out = dict(row.fields) if isinstance(row.fields, dict) else {}
    if isinstance(out.get("copies"), list):
        out["copies"] = "\n".join(out["copies"])
    return out


_REQUIRED = {"required": gettext_lazy("Isi kolom ini.")}
_DATE = {"required": gettext_lazy("Isi tanggalnya."),
         "invalid": gettext_lazy("Tanggal tidak dikenali: pilih dari kalender (hh-bb-tttt).")}
_TIME = {"required": gettext_lazy("Isi jamnya."),
         "invalid": gettext_lazy("Jam tidak dikenali: tulis seperti 08:30.")}
_COUNT = {"required": gettext_lazy("Isi jumlahnya."),
          "invalid": gettext_lazy("Isi dengan bilangan bulat."),
          "min_value": gettext_lazy("Tidak boleh kurang dari 0."),
          "max_value": gettext_lazy("Terlalu besar untuk satu kunjungan.")}


def _date(label: Any) -> forms.DateField:
    """A date as the browser's date picker sends it (ISO), whatever the page's language."""
    return forms.DateField(label=label, input_formats=["%Y-%m-%d"], error_messages=_DATE,
                           widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))


def _time(label: Any, *, required: bool = True) -> forms.TimeField:
    return forms.TimeField(label=label, required=required, input_formats=["%H:%M", "%H:%M:%S"],
                           error_messages=_TIME,
                           widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))


def _text(label: Any, max_length: int, **kw: Any) -> forms.CharField:
    return forms.CharField(label=label, max_length=max_length, error_messages={
        **_REQUIRED, "max_length": gettext_lazy(
            "Terlalu panjang: paling banyak %(limit_value)d huruf.")}, **kw)


class LetterForm(forms.Form):
    """What the letter says. Each field is checked by :meth:`ReplyLetter.problems` too, so
    the form and the letter library agree on what a letter needs."""

    number = _text(gettext_lazy("Nomor surat"), 100)
    letter_date = _date(gettext_lazy("Tanggal surat"))
    addressee = _text(gettext_lazy("Kepada Yth."), 200)
    addressee_place = _text(gettext_lazy("di (tempat)"), 100)
    request_number = _text(gettext_lazy("Nomor surat permohonan"), 100)
    request_date = _date(gettext_lazy("Tanggal surat permohonan"))
    visit_date = _date(gettext_lazy("Hari/tanggal perekaman"))
    visit_start = _time(gettext_lazy("Jam mulai (WIB)"))
    visit_end = _time(gettext_lazy("Jam selesai (WIB, kosong = sampai selesai)"),
                      required=False)
    recording_point = _text(gettext_lazy("Tempat perekaman"), 200)
    residents = forms.IntegerField(label=gettext_lazy("Jumlah sasaran (orang)"), min_value=0,
                                   max_value=9999, error_messages=_COUNT)
    officers = forms.IntegerField(label=gettext_lazy("Jumlah petugas"), min_value=0,
                                  max_value=99, error_messages=_COUNT)
    accompaniment = _text(gettext_lazy("Yang diminta mendampingi"), 200)
    copies = forms.CharField(label=gettext_lazy("Tembusan (satu per baris)"), required=False,
                             max_length=1000, widget=forms.Textarea(attrs={"rows": 3}))
    head_name = _text(gettext_lazy("Nama Kepala Dinas"), 150)
    head_title = _text(gettext_lazy("Pangkat/golongan"), 100)
    head_nip = forms.CharField(label=gettext_lazy("NIP (18 angka)"), max_length=18,
                               error_messages={**_REQUIRED, "max_length": gettext_lazy(
                                   "NIP harus 18 angka")})
    replace = forms.BooleanField(required=False, label=gettext_lazy(
        "Saya mengerti: draf lama diganti, salinan bertanda tangan dan tanda terkirimnya "
        "dihapus, dan Kepala Dinas harus menandatangani ulang."))

    def __init__(self, *args: Any, existing: ReplyLetter | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.existing = existing
        self.letter: letters.ReplyLetter | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.existing is not None and not data.get("replace"):
            self.add_error("replace", _("Centang dulu: draf yang ada akan diganti."))
        typed = ("letter_date", "request_date", "visit_date", "visit_start", "residents",
                 "officers")
        if any(f not in data for f in typed) or "visit_end" in self.errors:
            return data  # a date, time or count did not parse: its own message says so
        # A text field that failed (empty, too long) is "" here: the letter's own check
        # then finds the rest, and the field's first message stays the only one it shows.
        data = {**{f: "" for f in self.fields}, **data}
        letter = letters.ReplyLetter(
            number=data["number"], date=data["letter_date"], addressee=data["addressee"],
            addressee_place=data["addressee_place"], request_number=data["request_number"],
            request_date=data["request_date"], visit_date=data["visit_date"],
            visit_start=data["visit_start"], visit_end=data.get("visit_end"),
            recording_point=data["recording_point"], residents=data["residents"],
            officers=data["officers"], accompaniment=data["accompaniment"],
            head_name=data["head_name"], head_title=data["head_title"],
            head_nip=data["head_nip"],
            copies=tuple(line.strip() for line in (data.get("copies") or "").splitlines()
                         if line.strip()))
        field_of = {"date": "letter_date"}
        for problem in letter.problems():
            name = field_of.get(problem.field, problem.field)
            if name in self.errors:
                continue
            self.add_error(name if name in self.fields else None, problem.text(_lang()))
        self.letter = letter
        return data


def letter_json(letter: letters.ReplyLetter) -> dict[str, Any]:
    """The letter's fields as JSON (the form's names), to store with the draft."""
    return {
        "number": letter.number, "letter_date": letter.date.isoformat(),
        "addressee": letter.addressee, "addressee_place": letter.addressee_place,
        "request_number": letter.request_number,
        "request_date": letter.request_date.isoformat(),
        "visit_date": letter.visit_date.isoformat(),
        "visit_start": letter.visit_start.strftime("%H:%M"),
        "visit_end": letter.visit_end.strftime("%H:%M") if letter.visit_end else "",
        "recording_point": letter.recording_point, "residents": letter.residents,
        "officers": letter.officers, "accompaniment": letter.accompaniment,
        "copies": list(letter.copies), "head_name": letter.head_name,
        "head_title": letter.head_title, "head_nip": letter.head_nip,
    }


def make_draft(visit: Visit, letter: letters.ReplyLetter, by: str) -> ReplyLetter:
    """Render ``letter`` and keep its bytes as the visit's draft, replacing any earlier
    draft and dropping its signed copy and sent mark (the old signature cannot match)."""
    pdf = letters.render_reply(letter)
    values = {
        "number": letter.number, "letter_date": letter.date, "fields": letter_json(letter),
        "draft": pdf, "draft_sha256": letters.draft_digest(pdf), "drafted_at": time.time(),
        "drafted_by": by, "signed": None, "signed_sha256": "", "verification": None,
        "verified_at": None, "uploaded_by": "", "sent_at": None, "sent_by": "",
    }
    with transaction.atomic():
        row, created = ReplyLetter.objects.update_or_create(visit=visit, defaults=values)
        flow.note_event(visit.request, by, (
            f"draf surat balasan {letter.number} dibuat" if created else
            f"draf surat balasan {letter.number} dibuat ulang (salinan bertanda tangan lama "
            "dihapus)"))
    log.info("reply letter drafted for visit %s (%d bytes)", visit.pk, len(pdf))
    return row


class TrustUnavailable(Exception):
    """The trusted roots are not configured or cannot be read: nothing can be verified."""


def trust_roots() -> list[Any]:
    """The roots from ``settings.TTE_TRUST_ROOTS``; :class:`TrustUnavailable` saying why
    not, in the active language."""
    name = str(getattr(settings, "TTE_TRUST_ROOTS", "") or "")
    if not name:
        raise TrustUnavailable(_(
            "Sertifikat akar TTE (BSrE) belum diatur: salinan bertanda tangan tidak dapat "
            "diperiksa. Administrator mengisi JARANIJO_TTE_ROOTS dengan berkas PEM akar "
            "BSrE, lalu menjalankan ulang aplikasi web."))
    try:
        roots = letters.load_trust_roots(Path(name))
    except ConfigError as exc:
        raise TrustUnavailable(exc.text(_lang())) from exc
    if not roots:
        raise TrustUnavailable(_("Berkas sertifikat akar TTE tidak memuat sertifikat."))
    return roots


def _verification_json(v: letters.Verification) -> dict[str, Any]:
    return {
        "ok": v.ok, "signer_name": v.signer_name,
        "signing_time": v.signing_time.isoformat() if v.signing_time else None,
        "certificate_serial": v.certificate_serial,
        "certificate_issuer": v.certificate_issuer, "field_name": v.field_name,
        "signed_sha256": v.signed_sha256,
        "reasons": [{"code": r.code, "id": r.id, "en": r.en} for r in v.reasons],
    }


def attach_signed(row: ReplyLetter, signed: bytes, roots: list[Any],
                  by: str) -> letters.Verification:
    """Check ``signed`` against the stored draft and keep it with the verdict. A refused
    copy is kept too (so the page can show whose signature was rejected), but only a
    verified one sets ``verified_at``."""
    verdict = letters.verify_signed(bytes(row.draft), signed, roots)
    row.signed = signed
    row.signed_sha256 = verdict.signed_sha256
    row.verification = _verification_json(verdict)
    row.verified_at = time.time() if verdict.ok else None
    row.uploaded_by = by
    row.sent_at, row.sent_by = None, ""
    row.save(update_fields=["signed", "signed_sha256", "verification", "verified_at",
                            "uploaded_by", "sent_at", "sent_by"])
    flow.note_event(row.visit.request, by, (
        f"salinan bertanda tangan surat {row.number} diterima (terverifikasi)" if verdict.ok
        else f"salinan bertanda tangan surat {row.number} ditolak: "
             + ", ".join(verdict.codes)))
    return verdict


class NotVerified(Exception):
    """Marking sent without a verified signed copy."""


def verified(row: ReplyLetter | None) -> bool:
    """Whether ``row`` holds a signed copy that passed :func:`verify_signed`."""
    return bool(row is not None and row.signed is not None and row.verified_at is not None
                and isinstance(row.verification, dict) and row.verification.get("ok")
                and row.signed_sha256)


def mark_sent(row: ReplyLetter, by: str) -> None:
    """The verified letter went out: keep who and when, move the request on (unless it is
    already past ``letter_sent``, e.g. assigned: then a history line only)."""
    if not verified(row):
        raise NotVerified
    order = list(flow.REQUEST_STATES)
    with transaction.atomic():
        row.sent_at, row.sent_by = time.time(), by
        row.save(update_fields=["sent_at", "sent_by"])
        request = row.visit.request
        note = f"surat balasan {row.number} terkirim"
        if request.status in order and order.index(request.status) < order.index(
                "letter_sent"):
            flow.move(request, "letter_sent", by, note)
        else:
            flow.note_event(request, by, note)


# -- the page ----------------------------------------------------------------------------------


class SignedUploadForm(forms.Form):
    signed = forms.FileField(label=gettext_lazy("PDF yang sudah ditandatangani (maks. 10 MiB)"),
                             error_messages={
                                 "required": gettext_lazy("Pilih berkas PDF yang sudah "
                                                          "ditandatangani."),
                                 "empty": gettext_lazy("Berkasnya kosong."),
                                 "invalid": gettext_lazy("Berkas tidak dapat dibaca.")})

    def clean_signed(self) -> bytes:
        upload = self.cleaned_data["signed"]
        if upload.size is not None and upload.size > MAX_SIGNED:
            raise forms.ValidationError(_("Berkas terlalu besar: paling besar 10 MiB."))
        data = upload.read(MAX_SIGNED + 1)
        if len(data) > MAX_SIGNED:
            raise forms.ValidationError(_("Berkas terlalu besar: paling besar 10 MiB."))
        return bytes(data)


def _verdict_view(row: ReplyLetter | None) -> dict[str, Any] | None:
    """The stored verdict for the page: reasons in the active language, times in WIB."""
    if row is None or row.signed is None or not isinstance(row.verification, dict):
        return None
    v = row.verification
    signed_at = None
    if v.get("signing_time"):
        try:
            signed_at = timezone.localtime(dt.datetime.fromisoformat(v["signing_time"]))
        except (TypeError, ValueError):
            signed_at = None
    lang = _lang()
    return {"ok": bool(v.get("ok")) and row.verified_at is not None,
            "signer": v.get("signer_name") or "", "signed_at": signed_at,
            "serial": v.get("certificate_serial") or "",
            "issuer": v.get("certificate_issuer") or "",
            "reasons": [r.get(lang) or r.get("id") or r.get("code")
                        for r in v.get("reasons") or [] if isinstance(r, dict)],
            "codes": [r.get("code") for r in v.get("reasons") or [] if isinstance(r, dict)],
            "sha256": row.signed_sha256, "by": row.uploaded_by}


def _page(request: HttpRequest, visit: Visit, *, form: LetterForm | None = None,
          upload: SignedUploadForm | None = None, upload_problem: str = "",
          status: int = 200) -> HttpResponse:
    row = ReplyLetter.objects.filter(visit=visit).defer("draft").first()
    if form is None:
        initial = _stored_fields(row) if row is not None else initial_fields(visit)
        form = LetterForm(initial=initial, existing=row)
    try:
        trust_roots()
        trust_problem = ""
    except TrustUnavailable as exc:
        trust_problem = str(exc)
    return render(request, "replies/letter.html", {
        "visit": visit, "req": visit.request, "form": form, "row": row,
        "upload": upload or SignedUploadForm(), "trust_problem": trust_problem,
        "upload_problem": upload_problem,
        "verdict": _verdict_view(row), "can_send": row is not None and verified(row) and
        row.sent_at is None, "drafted_at": _local(row.drafted_at) if row else None,
        "sent_at": _local(row.sent_at) if row else None,
        "status_label": flow.state_label(visit.request.status),
        "max_mib": MAX_SIGNED // (1024 * 1024),
    }, status=status)


@require(PERMISSION)
def letter_page(request: HttpRequest, visit_id: int) -> HttpResponse:
    """GET: the form (and the letter's state); POST: make (or re-make) the draft."""
    visit = _visit_or_404(visit_id)
    if request.method == "GET":
        return _page(request, visit)
    if request.method != "POST":
        return HttpResponseNotAllowed(["GET", "POST"])
    existing = ReplyLetter.objects.filter(visit=visit).only("pk").first()
    form = LetterForm(request.POST, existing=existing)
    if not form.is_valid() or form.letter is None:
        return _page(request, visit, form=form, status=400)
    by = request.user.get_username()
    try:
        row = make_draft(visit, form.letter, by)
    except JaranIjoError as exc:  # fonts missing, or a problem the form did not catch
        form.add_error(None, exc.text(_lang()))
        return _page(request, visit, form=form, status=400)
    audit(request, "reply_draft", subject=f"visit {visit.pk}",
          detail=f"letter {row.number} draft sha256 {row.draft_sha256[:16]}"
                 + (" (replaced)" if existing is not None else ""))
    messages.success(request, _("Draf surat dibuat. Unduh, mintakan TTE Kepala Dinas, lalu "
                                "unggah PDF yang sudah ditandatangani."))
    return redirect(reverse("reply_letter", args=[visit.pk]) + "#letter-state")


def _pdf(data: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Content-Length"] = str(len(data))
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _filename(visit: Visit, suffix: str = "") -> str:
    return f"surat-balasan-kunjungan-{visit.pk}-{visit.visit_date:%Y%m%d}{suffix}.pdf"


@require(PERMISSION)
def draft_pdf(request: HttpRequest, visit_id: int) -> HttpResponse:
    """The stored draft, byte for byte (the signing service must get exactly these)."""
    visit = _visit_or_404(visit_id)
    row = ReplyLetter.objects.filter(visit=visit).only("draft").first()
    if row is None:
        raise Http404(_("Belum ada draf surat untuk kunjungan ini"))
    return _pdf(bytes(row.draft), _filename(visit))


@require(PERMISSION)
def signed_pdf(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = _visit_or_404(visit_id)
    row = ReplyLetter.objects.filter(visit=visit, signed__isnull=False).only("signed").first()
    if row is None:
        raise Http404(_("Belum ada salinan bertanda tangan"))
    return _pdf(bytes(row.signed), _filename(visit, "-ttd"))


@require(PERMISSION)
def upload_signed(request: HttpRequest, visit_id: int) -> HttpResponse:
    """POST (multipart): the signed PDF, verified against the stored draft."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    visit = _visit_or_404(visit_id)
    row = ReplyLetter.objects.filter(visit=visit).first()
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_SIGNED + 64 * 1024:  # refused before the multipart body is parsed
        return _page(request, visit, status=413,
                     upload_problem=_("Berkas terlalu besar: paling besar 10 MiB."))
    if row is None:
        return _page(request, visit, status=400, upload_problem=_(
            "Buat draf surat dulu: salinan bertanda tangan diperiksa terhadap draf itu."))
    try:
        roots = trust_roots()
    except TrustUnavailable as exc:
        return _page(request, visit, status=400, upload_problem=str(exc))
    upload = SignedUploadForm(request.POST, request.FILES)
    if not upload.is_valid():
        return _page(request, visit, upload=upload, status=400)
    by = request.user.get_username()
    verdict = attach_signed(row, upload.cleaned_data["signed"], roots, by)
    audit(request, "reply_signed", subject=f"visit {visit.pk}",
          detail=f"letter {row.number} signed sha256 {verdict.signed_sha256[:16]} "
                 + ("verified" if verdict.ok else "refused: " + ",".join(verdict.codes)))
    if verdict.ok:
        messages.success(request, _("Tanda tangan elektronik sah: surat siap dikirim."))
    else:
        messages.error(request, _("Salinan bertanda tangan ditolak: lihat alasannya di bawah."))
    return redirect(reverse("reply_letter", args=[visit.pk]) + "#letter-state")


@require(PERMISSION)
def send(request: HttpRequest, visit_id: int) -> HttpResponse:
    """POST: mark the letter sent; refused unless the stored signed copy was verified."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    visit = _visit_or_404(visit_id)
    row = ReplyLetter.objects.filter(visit=visit).select_related("visit__request").first()
    if row is None or not verified(row):
        messages.error(request, _("Surat belum dapat ditandai terkirim: unggah dulu salinan "
                                  "yang ditandatangani Kepala Dinas dan lolos pemeriksaan."))
        return _page(request, visit, status=409)
    if row.sent_at is not None:
        messages.info(request, _("Surat ini sudah ditandai terkirim."))
        return redirect(reverse("reply_letter", args=[visit.pk]) + "#letter-state")
    by = request.user.get_username()
    mark_sent(row, by)
    audit(request, "reply_sent", subject=f"visit {visit.pk}",
          detail=f"letter {row.number} signed sha256 {row.signed_sha256[:16]}")
    messages.success(request, _("Surat ditandai terkirim."))
    return redirect(reverse("reply_letter", args=[visit.pk]) + "#letter-state")


urlpatterns: list[URLPattern] = [
    path("visits/<int:visit_id>/letter/", letter_page, name="reply_letter"),
    path("visits/<int:visit_id>/letter/draft.pdf", draft_pdf, name="reply_letter_draft"),
    path("visits/<int:visit_id>/letter/signed.pdf", signed_pdf, name="reply_letter_signed"),
    path("visits/<int:visit_id>/letter/signed/", upload_signed, name="reply_letter_upload"),
    path("visits/<int:visit_id>/letter/sent", send, name="reply_letter_send"),
]
