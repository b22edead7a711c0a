"""Handing a kit out for a visit and taking it back (SOP steps 6 and 11).

``/checkout/`` (``office.checkout_kits``) lists the kits out now (who took it, for which
visit, since when, due back when; overdue ones marked) and the visits of today and the
next days whose kit has not been handed out yet, each with "Serahkan kit".

**Checkout** (``/checkout/new/?visit=<id>``): the visit's kit, which of the visit's
officers takes it, its condition (a choice and a note), its self-test, and the day it is
due back (the visit's day unless changed). The self-test is the kit's latest answered
``selftest`` command (its answer and when); "minta uji mandiri sekarang" queues a new one
exactly as the kit page does (:func:`office.web.commands.queue_command`, same signing and
audit) and the section polls itself every 3 s until the kit answers. What the staff saw
is what is stored: the form carries the command id shown. A failed or missing self-test
is a warning the staff must confirm with a tick (a kit can still go out, knowingly).
A kit already out cannot go out again: the database's partial unique index
``kit_checkouts_one_open_per_kit`` refuses it even when two desks try at once, and the
page says so.

**Return** (``/checkout/<id>/return/``): condition and self-test the same way, and what
the SOP asks before a kit is put away: the records still waiting on the kit (its latest
health report's ``outbox_count``, as the fleet page reads it) and the visit's targets
still pending. Both are shown (red when not zero), stored with the return, and, like a
failed self-test, need a tick to accept the kit anyway.

A kit not back by its ``due_on`` raises the fleet alert ``not_returned``
(:mod:`office.alerts`). Audit entries and logs carry kit ids, visit ids, officer ids and
figures only, never a resident's data.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from django import forms
from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from office.alerts import SelfTest
from office.models import Command, Kit, KitCheckout, Officer, Revocation, Visit
from office.presence import KitData
from office.web import commands
from office.web.audit import audit
from office.web.fleet import age_text
from office.web.roles import require
from office.web.wib import local as _local

log = logging.getLogger("office.web.checkout")

PERMISSION = "office.checkout_kits"
UPCOMING_DAYS = 7  # today and the next six days
FRESH_S = 24 * 3600  # a self-test older than this at checkout says little about the kit now
CONDITIONS: dict[str, Any] = {
    "baik": gettext_lazy("baik"),
    "ringan": gettext_lazy("ada kerusakan ringan"),
    "rusak": gettext_lazy("rusak"),
}


def condition_text(stored: str) -> str:
    """A stored condition (``code`` or ``code: note``) as staff read it."""
    code, _sep, note = stored.partition(": ")
    label = str(CONDITIONS.get(code, code))
    return f"{label} — {note}" if note else label


# -- the self-test -----------------------------------------------------------------------------


def latest_selftest(kit_id: str) -> Command | None:
    """The kit's latest answered self-test."""
    return (Command.objects.filter(kit_id=kit_id, name="selftest", result_at__isnull=False)
            .defer("payload").order_by("-result_at").first())


def pending_selftest(kit_id: str) -> Command | None:
    """A self-test queued for the kit, not answered and not expired."""
    return (Command.objects.filter(kit_id=kit_id, name="selftest", result_at__isnull=True,
                                   expires_at__gt=int(time.time()))
            .defer("payload").order_by("-queued_at").first())


def selftest_passed(command: Command) -> bool:
    """Answered ok and nothing in the answer failed (the rule of the fleet alert
    ``failed_selftest``: :meth:`office.alerts.SelfTest.faults`)."""
    return not SelfTest.of(command).faults()


def selftest_record(command: Command | None, since: float) -> dict[str, Any] | None:
    """What is stored with the checkout or return: the command, when, the verdict, the
    kit's answer (figures and codes only: a self-test returns no personal data), and
    whether it was older than ``since`` (``stale``: confirmed by the staff as such)."""
    if command is None:
        return None
    test = SelfTest.of(command)
    return {"command_id": command.command_id, "at": command.result_at,
            "ok": selftest_passed(command), "result": test.result, "why": test.reason,
            "text": commands.result_text(command),
            "stale": (command.result_at or 0) < since}


def _cannot_request(kit_id: str) -> str:
    if Revocation.objects.filter(kit_id=kit_id).exists():
        return _("Kit ini sudah dicabut: kit tidak dapat menerima perintah lagi.")
    return commands.commands_available()


def selftest_context(kit_id: str, back: str = "", since: float | None = None,
                     returning: bool = False) -> dict[str, Any]:
    """What the self-test section shows (also its own polled partial); ``back`` is the
    form's address, where a request without JavaScript returns; a self-test older than
    ``since`` is warned about (default: :data:`FRESH_S` ago; at a return, the checkout)."""
    since = time.time() - FRESH_S if since is None else since
    latest = latest_selftest(kit_id)
    pending = pending_selftest(kit_id)
    if pending is not None and latest is not None and latest.result_at is not None and \
            latest.result_at >= pending.queued_at:
        pending = None
    now = time.time()
    return {
        "kit_id": kit_id, "latest": latest,
        "latest_ok": None if latest is None else selftest_passed(latest),
        "latest_text": "" if latest is None else commands.result_text(latest),
        "latest_at": None if latest is None else _local(latest.result_at),
        "latest_age": "" if latest is None else age_text(now - (latest.result_at or now)),
        "pending": pending,
        "pending_text": "" if pending is None else commands.result_text(pending),
        "pending_at": None if pending is None else _local(pending.queued_at),
        "unavailable": _cannot_request(kit_id), "back": back or reverse("checkout"),
        # Said in the section, so that it changes with the answer the poll brings.
        "selftest_warnings": selftest_warnings(latest, since, returning),
        "since": int(since), "returning": returning,
    }


def _since(request: HttpRequest) -> tuple[float | None, bool]:
    """The polled section's ``since`` (the checkout's time, at a return) from its URL."""
    raw = request.GET.get("since", "")
    return (float(raw), True) if raw.isdigit() else (None, False)


def _back(request: HttpRequest) -> str:
    """The form page's own address (an htmx request names it in ``HX-Current-URL``)."""
    from urllib.parse import urlsplit

    current = request.headers.get("HX-Current-URL", "")
    if current:
        parts = urlsplit(current)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return request.get_full_path()


@require(PERMISSION)
def selftest_section(request: HttpRequest, kit_id: str) -> HttpResponse:
    """The self-test section alone: the form polls it while a self-test is awaited."""
    return render(request, "checkout/selftest.html",
                  selftest_context(kit_id, _back(request), *_since(request)))


@require(PERMISSION)
def request_selftest(request: HttpRequest, kit_id: str) -> HttpResponse:
    """POST: queue a self-test for the kit (signed and audited as from the kit page)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not Kit.objects.filter(kit_id=kit_id).exists() and not Visit.objects.filter(
            kit_id=kit_id).exists():
        raise Http404(_("Kit tidak dikenal"))
    problem = _cannot_request(kit_id)
    if not problem and pending_selftest(kit_id) is None:
        commands.queue_command(kit_id, "selftest", request=request)
    if request.headers.get("HX-Request"):
        # The section itself says what happens now (awaiting the kit, or why it cannot).
        return render(request, "checkout/selftest.html",
                      selftest_context(kit_id, _back(request), *_since(request)))
    if problem:
        messages.error(request, problem)
    else:
        messages.success(request, _("Uji mandiri diminta; kit menjalankannya saat daring."))
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("checkout")
    return redirect(back)


# -- the forms ---------------------------------------------------------------------------------


_REQUIRED = {"required": gettext_lazy("Isi kolom ini.")}


class _KitForm(forms.Form):
    """What both ways have: the condition, the self-test shown, and the confirmation of
    the warnings (``warnings``: the texts the page shows; the tick is needed when any)."""

    condition = forms.ChoiceField(
        label=gettext_lazy("Kondisi kit"), choices=list(CONDITIONS.items()),
        error_messages={"required": gettext_lazy("Pilih kondisi kit."),
                        "invalid_choice": gettext_lazy("Pilih salah satu kondisi.")})
    condition_note = forms.CharField(
        label=gettext_lazy("Catatan kondisi (kelengkapan, kerusakan)"), required=False,
        max_length=500, widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"max_length": gettext_lazy(
            "Catatan terlalu panjang: paling banyak %(limit_value)d huruf.")})
    selftest_id = forms.CharField(required=False, widget=forms.HiddenInput, max_length=64)
    confirm = forms.BooleanField(required=False)

    def __init__(self, *args: Any, kit_id: str, warnings: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kit_id = kit_id
        self.warnings = warnings
        self.selftest: Command | None = None

    def clean_condition_note(self) -> str:
        return str(self.cleaned_data.get("condition_note") or "").strip()

    def clean_selftest_id(self) -> str:
        value = str(self.cleaned_data.get("selftest_id") or "")
        if value:
            self.selftest = Command.objects.filter(
                command_id=value, kit_id=self.kit_id, name="selftest",
                result_at__isnull=False).defer("payload").first()
            if self.selftest is None:
                raise forms.ValidationError(_("Uji mandiri yang ditampilkan tidak ditemukan: "
                                              "muat ulang halaman."))
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("condition") in ("ringan", "rusak") and not data.get("condition_note"):
            self.add_error("condition_note", _("Tuliskan kerusakannya."))
        if self.warnings and not data.get("confirm"):
            self.add_error("confirm", _("Centang untuk menyatakan Anda sudah membaca "
                                        "peringatan di atas dan tetap melanjutkan."))
        return data

    def condition_value(self) -> str:
        note = self.cleaned_data.get("condition_note") or ""
        code = str(self.cleaned_data["condition"])
        return f"{code}: {note}" if note else code


class CheckoutForm(_KitForm):
    taken_by = forms.ChoiceField(label=gettext_lazy("Diambil oleh (petugas kunjungan)"),
                                 error_messages={
                                     "required": gettext_lazy("Pilih petugas yang mengambil."),
                                     "invalid_choice": gettext_lazy(
                                         "Pilih salah satu petugas kunjungan ini.")})
    due_on = forms.DateField(label=gettext_lazy("Harus kembali pada"),
                             input_formats=["%Y-%m-%d"],
                             widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
                             error_messages={"required": gettext_lazy("Isi tanggal kembali."),
                                             "invalid": gettext_lazy(
                                                 "Tanggal tidak dikenali: pilih dari kalender.")})
    field_order = ("taken_by", "condition", "condition_note", "due_on", "selftest_id",
                   "confirm")

    def __init__(self, *args: Any, visit: Visit, officers: list[tuple[str, str]],
                 **kwargs: Any) -> None:
        super().__init__(*args, kit_id=visit.kit_id, **kwargs)
        self.visit = visit
        self.fields["taken_by"].choices = [("", _("— pilih —")), *officers]

    def clean_due_on(self) -> dt.date:
        due = self.cleaned_data["due_on"]
        if due < timezone.localdate():
            raise forms.ValidationError(_("Tanggal kembali tidak boleh sebelum hari ini."))
        if due < self.visit.visit_date:
            raise forms.ValidationError(
                _("Tanggal kembali tidak boleh sebelum hari kunjungan (%(d)s).")
                % {"d": f"{self.visit.visit_date:%d-%m-%Y}"})
        if (due - self.visit.visit_date).days > 30:
            raise forms.ValidationError(_("Paling lama 30 hari setelah hari kunjungan."))
        return due


class ReturnForm(_KitForm):
    pass


# -- what the pages show -----------------------------------------------------------------------


def _officer_names(ids: set[str]) -> dict[str, str]:
    return {o.officer_id: o.name for o in Officer.objects.filter(officer_id__in=ids)}


def _visit_officers(visit: Visit) -> list[tuple[str, str]]:
    ids = [o.strip() for o in visit.officers.split(",") if o.strip()]
    names = _officer_names(set(ids))
    return [(i, f"{names[i]} ({i})" if i in names else i) for i in ids]


def _place(visit: Visit | None) -> str:
    if visit is None:
        return "—"
    req = visit.request
    if req.applicant_kind == "village":
        return _("Desa %(v)s") % {"v": req.village}
    return req.agency or req.village


def selftest_warnings(command: Command | None, since: float | None = None,
                      returning: bool = False) -> list[str]:
    """Why the self-test shown needs a confirmation: none, failed, or older than
    ``since`` (at a checkout: :data:`FRESH_S`; at a return: made before the checkout)."""
    since = time.time() - FRESH_S if since is None else since
    if command is None:
        return [_("Belum ada hasil uji mandiri kit ini: minta uji mandiri dulu, atau "
                  "lanjutkan tanpa hasil uji.")]
    out = []
    if not selftest_passed(command):
        out.append(_("Uji mandiri terakhir GAGAL: %(r)s") % {
            "r": commands.result_text(command)})
    if (command.result_at or 0) < since:
        at = f"{_local(command.result_at or 0):%d-%m-%Y %H:%M} WIB"
        out.append(_("Uji mandiri terakhir dibuat sebelum kit diserahkan (%(at)s): minta uji "
                     "mandiri baru untuk pengembalian, atau lanjutkan.") % {"at": at}
                   if returning else
                   _("Uji mandiri terakhir sudah lebih dari 24 jam yang lalu (%(at)s): minta "
                     "uji mandiri baru, atau lanjutkan.") % {"at": at})
    return out


def waiting_records(kit_id: str) -> tuple[int | None, dt.datetime | None]:
    """The records still on the kit by its latest health report (``outbox_count``, as the
    fleet page reads it) and when that report came; None when the kit never reported."""
    kit = Kit.objects.filter(kit_id=kit_id).first()
    if kit is None:
        return None, None
    data = KitData.of(kit)
    count = data.health.get("outbox_count")
    if count is None or data.health_at is None:
        return None, None
    return int(count), _local(data.health_at)


def pending_targets(visit: Visit | None) -> int:
    """The visit's targets still pending (not those refused at verification: they were
    never sent to the kit)."""
    if visit is None:
        return 0
    return visit.targets.filter(status="pending").exclude(verified=False).count()


def _open_checkout(kit_id: str) -> KitCheckout | None:
    return KitCheckout.objects.filter(kit_id=kit_id, returned_at__isnull=True).first()


def list_context(today: dt.date) -> dict[str, Any]:
    out_rows = list(KitCheckout.objects.filter(returned_at__isnull=True)
                    .select_related("visit__request").order_by("due_on", "out_at"))
    names = _officer_names({c.taken_by for c in out_rows})
    out = [{"c": c, "who": names.get(c.taken_by, c.taken_by), "officer": c.taken_by,
            "since": _local(c.out_at), "overdue_days": max(0, (today - c.due_on).days),
            "place": _place(c.visit), "visit": c.visit,
            "condition": condition_text(c.out_condition)} for c in out_rows]
    open_by_kit = {c.kit_id: c for c in out_rows}
    visits = (Visit.objects.filter(visit_date__gte=today,
                                   visit_date__lt=today + dt.timedelta(days=UPCOMING_DAYS))
              .exclude(state__in=("cancelled", "done")).select_related("request")
              .order_by("visit_date", "start_time", "id"))
    upcoming = []
    for v in visits:
        holder = open_by_kit.get(v.kit_id)
        if holder is not None and holder.visit_id == v.pk:
            continue  # already out for this visit
        upcoming.append({"v": v, "place": _place(v), "busy": holder,
                         "officers": ", ".join(label for _i, label in _visit_officers(v))})
    return {"out": out, "upcoming": upcoming, "today": today,
            "overdue": sum(1 for r in out if r["overdue_days"])}


@require(PERMISSION)
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "checkout/index.html", list_context(timezone.localdate()))


def _visit_from(request: HttpRequest) -> Visit:
    raw = request.POST.get("visit") or request.GET.get("visit") or ""
    visit = (Visit.objects.select_related("request").filter(pk=int(raw)).first()
             if raw.isdigit() else None)
    if visit is None:
        raise Http404(_("Kunjungan tidak dikenal: pilih dari daftar serah-terima."))
    return visit


@require(PERMISSION)
def new_checkout(request: HttpRequest) -> HttpResponse:
    """GET: the form for the visit's kit; POST: hand it out."""
    visit = _visit_from(request)
    holder = _open_checkout(visit.kit_id)
    latest = latest_selftest(visit.kit_id)
    officers = _visit_officers(visit)
    if request.method == "POST":
        shown = Command.objects.filter(
            command_id=request.POST.get("selftest_id") or "-", kit_id=visit.kit_id,
            name="selftest", result_at__isnull=False).defer("payload").first()
        form = CheckoutForm(request.POST, visit=visit, officers=officers,
                            warnings=selftest_warnings(shown))
    else:
        form = CheckoutForm(initial={"due_on": max(visit.visit_date, timezone.localdate()),
                                     "condition": "baik",
                                     "selftest_id": latest.command_id if latest else ""},
                            visit=visit, officers=officers, warnings=selftest_warnings(latest))
    blocked = ""
    if visit.state in ("cancelled", "done"):
        blocked = _("Kunjungan ini sudah dibatalkan atau selesai: kit tidak diserahkan.")
    elif holder is not None:
        blocked = _("Kit %(kit)s masih tercatat dibawa (diserahkan %(at)s): terima kembali "
                    "dulu sebelum diserahkan lagi.") % {
            "kit": visit.kit_id, "at": f"{_local(holder.out_at):%d-%m-%Y %H:%M} WIB"}
    if request.method == "POST" and not blocked and form.is_valid():
        shown_test = form.selftest
        row = KitCheckout(
            kit_id=visit.kit_id, visit=visit, taken_by=form.cleaned_data["taken_by"],
            out_at=time.time(), out_by=request.user.get_username(),
            out_selftest=selftest_record(shown_test, time.time() - FRESH_S),
            out_selftest_ok=None if shown_test is None else selftest_passed(shown_test),
            out_condition=form.condition_value(), due_on=form.cleaned_data["due_on"])
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except IntegrityError:
            blocked = _("Kit %(kit)s baru saja diserahkan dari meja lain: terima kembali "
                        "dulu sebelum diserahkan lagi.") % {"kit": visit.kit_id}
        else:
            audit(request, "checkout_kit", subject=visit.kit_id,
                  detail=f"visit {visit.pk} to {row.taken_by} due {row.due_on:%Y-%m-%d} "
                         f"selftest {_verdict(row.out_selftest_ok)} "
                         f"condition {form.cleaned_data['condition']}")
            log.info("kit %s checked out for visit %s (checkout %s)", visit.kit_id, visit.pk,
                     row.pk)
            messages.success(request, _("Kit %(kit)s diserahkan; harus kembali %(d)s.") % {
                "kit": visit.kit_id, "d": f"{row.due_on:%d-%m-%Y}"})
            return redirect("checkout")
    return render(request, "checkout/form.html", {
        "mode": "out", "visit": visit, "place": _place(visit), "form": form,
        "blocked": blocked, "holder": holder,
        **selftest_context(visit.kit_id, request.get_full_path()),
        "officer_list": ", ".join(label for _i, label in officers),
    }, status=400 if request.method == "POST" else 200)


def _verdict(ok: bool | None) -> str:
    return "none" if ok is None else ("ok" if ok else "failed")


def record_warnings(waiting: int | None, pending: int) -> list[str]:
    """What the return must own up to besides the self-test: records still on the kit,
    targets of the visit not recorded."""
    warnings: list[str] = []
    if waiting is None:
        warnings.append(_("Jumlah rekaman yang masih di kit tidak diketahui (kit belum pernah "
                          "melapor): periksa layar kit."))
    elif waiting:
        warnings.append(_("Masih ada %(n)d rekaman di kit yang belum terkirim ke kantor.")
                        % {"n": waiting})
    if pending:
        warnings.append(_("%(n)d sasaran kunjungan ini belum direkam.") % {"n": pending})
    return warnings


@require(PERMISSION)
def return_kit(request: HttpRequest, checkout_id: int) -> HttpResponse:
    """GET: the return form with what is still open; POST: take the kit back."""
    row = KitCheckout.objects.select_related("visit__request").filter(pk=checkout_id).first()
    if row is None:
        raise Http404(_("Serah-terima tidak dikenal"))
    waiting, waiting_at = waiting_records(row.kit_id)
    pending = pending_targets(row.visit)
    latest = latest_selftest(row.kit_id)
    if request.method == "POST":
        shown = Command.objects.filter(
            command_id=request.POST.get("selftest_id") or "-", kit_id=row.kit_id,
            name="selftest", result_at__isnull=False).defer("payload").first()
        form = ReturnForm(request.POST, kit_id=row.kit_id,
                          warnings=selftest_warnings(shown, row.out_at, True)
                          + record_warnings(waiting, pending))
    else:
        form = ReturnForm(initial={"condition": "baik",
                                   "selftest_id": latest.command_id if latest else ""},
                          kit_id=row.kit_id,
                          warnings=selftest_warnings(latest, row.out_at, True)
                          + record_warnings(waiting, pending))
    blocked = ""
    if row.returned_at is not None:
        blocked = _("Kit ini sudah diterima kembali %(at)s oleh %(by)s.") % {
            "at": f"{_local(row.returned_at):%d-%m-%Y %H:%M} WIB", "by": row.returned_by}
    if request.method == "POST" and not blocked and form.is_valid():
        test = form.selftest
        updated = KitCheckout.objects.filter(pk=row.pk, returned_at__isnull=True).update(
            returned_at=time.time(), returned_by=request.user.get_username(),
            return_selftest=selftest_record(test, row.out_at),
            return_selftest_ok=None if test is None else selftest_passed(test),
            return_condition=form.condition_value(), waiting_records=waiting,
            pending_targets=pending)
        if not updated:
            blocked = _("Kit ini baru saja diterima kembali dari meja lain.")
        else:
            audit(request, "return_kit", subject=row.kit_id,
                  detail=f"checkout {row.pk} visit {row.visit_id} selftest "
                         f"{_verdict(None if test is None else selftest_passed(test))} "
                         f"condition {form.cleaned_data['condition']} waiting "
                         f"{'?' if waiting is None else waiting} pending {pending}")
            log.info("kit %s returned (checkout %s): %s waiting, %d pending", row.kit_id,
                     row.pk, "?" if waiting is None else waiting, pending)
            messages.success(request, _("Kit %(kit)s diterima kembali.") % {"kit": row.kit_id})
            return redirect("checkout")
    return render(request, "checkout/form.html", {
        "mode": "return", "row": row, "visit": row.visit, "place": _place(row.visit),
        "form": form, "blocked": blocked, "waiting": waiting, "waiting_at": waiting_at,
        "other_warnings": record_warnings(waiting, pending),
        "pending_targets": pending, "out_at": _local(row.out_at),
        "who": _officer_names({row.taken_by}).get(row.taken_by, row.taken_by),
        "out_condition": condition_text(row.out_condition),
        **selftest_context(row.kit_id, request.get_full_path(), row.out_at, True),
    }, status=400 if request.method == "POST" else 200)


urlpatterns: list[URLPattern] = [
    path("checkout/", index, name="checkout"),
    path("checkout/new/", new_checkout, name="checkout_new"),
    path("checkout/<int:checkout_id>/return/", return_kit, name="checkout_return"),
    path("checkout/selftest/<str:kit_id>/", selftest_section, name="checkout_selftest"),
    path("checkout/selftest/<str:kit_id>/request", request_selftest,
         name="checkout_selftest_request"),
]
