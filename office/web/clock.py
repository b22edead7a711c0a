"""The KTP-el clock pages: which residents' KTP-el are overdue, due soon or done, and the
office's table of working days.

``/clock/`` (``office.view_personal``: operators, Kepala Dinas) lists every complete
recording with its deadline, the 14th working day after the day the complete record
arrived (:mod:`office.deadline`): overdue, due within 3 working days, on time (collapsed,
counted) and done (printed and handed over). A row names the resident (decrypted from the
index in memory, :meth:`office.records.RecordBook.person`), so opening the page is audited
(``view_personal``); each row has a form to mark the KTP-el printed and handed over, with
the dates (audited ``ktp_issued``). Stored records not yet indexed are indexed first.

``/clock/days/`` (``office.view_workingdayoverride``: Kepala Dinas) is the office's table
of extra days off and cancelled holidays (decrees change mid-year), beside the year's
holidays from the ``holidays`` package so staff see what they override, and the setting
whether *cuti bersama* counts as non-working (``office.change_clocksettings``). Adding,
changing or deleting a day needs the model's add/change/delete permission; every change
is audited (``clock_days``) and refused with the reason when malformed.

:func:`clock_counts` is a context processor giving the fleet header its count of overdue
KTP-el (:func:`overdue_count`, cached 60 s in process memory).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django import forms
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from office import deadline as clock
from office.models import ClockSettings, RecordReview, WorkingDayOverride
from office.records import RecordBook, RecordUnavailable
from office.web.audit import audit
from office.web.roles import require

log = logging.getLogger(__name__)

DONE_SHOWN = 100  # the done list shows the latest handovers, this many at most
COUNT_CACHE_S = 60.0  # the header's overdue count is at most this old
FIRST_YEAR, LAST_YEAR = 2000, 2100  # days outside are typing mistakes, not decrees

DATE_ERRORS = {
    "invalid": gettext_lazy("Tanggal tidak valid: tulis TTTT-BB-HH, mis. 2026-12-31."),
    "required": gettext_lazy("Isi tanggal (TTTT-BB-HH)."),
}


def _date_field(label: Any, *, required: bool) -> forms.DateField:
    return forms.DateField(
        label=label, required=required, input_formats=["%Y-%m-%d"],
        error_messages=DATE_ERRORS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))


def _day_text(day: dt.date | None) -> str:
    """A day as staff read it in the active language, e.g. "Sel, 14 Apr 2026"."""
    return "" if day is None else formats.date_format(day, "D, j M Y")


# -- the calendar ------------------------------------------------------------------------------
def current_settings(using: str = "default") -> ClockSettings:
    """The office's clock setting (row 1; the default, cuti bersama off, until saved)."""
    return ClockSettings.objects.using(using).filter(pk=1).first() or ClockSettings(pk=1)


def _holiday_language() -> str:
    return "en_US" if (translation.get_language() or "id").startswith("en") else "id"


def load_calendar(using: str = "default", *, with_overrides: bool = True) -> clock.WorkingCalendar:
    """The office's working calendar: the package, the setting and (unless told not to:
    the form checks a new day against the calendar without the table) the table."""
    overrides = dict(WorkingDayOverride.objects.using(using).values_list("day", "working")) \
        if with_overrides else {}
    return clock.WorkingCalendar(overrides=overrides,
                                 cuti_bersama_off=current_settings(using).cuti_bersama_off,
                                 language=_holiday_language())


def _today() -> dt.date:
    return timezone.localdate()


# -- the overdue count (fleet header) --------------------------------------------------------
_count_lock = threading.Lock()
_count_cache: dict[str, tuple[float, dt.date, int]] = {}  # alias → (when, today, count)


def overdue_count(using: str = "default", *, today: dt.date | None = None) -> int:
    """How many complete recordings are past their deadline and not handed over.

    One query for the arrival days (grouped) and one for the table, then the arithmetic
    once per distinct arrival day. Cached for :data:`COUNT_CACHE_S` seconds per database
    (and day), since every page of a fleet user shows it; marking or editing the table
    clears the cache (:func:`forget_count`)."""
    today = today or _today()
    now = time.monotonic()
    with _count_lock:
        hit = _count_cache.get(using)
        if hit is not None and now - hit[0] < COUNT_CACHE_S and hit[1] == today:
            return hit[2]
    by_day = (RecordReview.objects.using(using)
              .filter(complete=True, complete_on__isnull=False, handed_over_on__isnull=True)
              .values("complete_on").annotate(n=Count("record_id")))
    calendar: clock.WorkingCalendar | None = None
    n = 0
    for row in by_day:
        calendar = calendar or load_calendar(using)
        if clock.is_overdue(today, clock.deadline(row["complete_on"], calendar)):
            n += int(row["n"])
    with _count_lock:
        _count_cache[using] = (now, today, n)
    return n


def forget_count() -> None:
    """Drop the cached count (after a mark or a change to the table or the setting)."""
    with _count_lock:
        _count_cache.clear()


def clock_counts(request: HttpRequest) -> dict[str, Any]:
    """Context processor: ``ktp_overdue`` for users who may see the fleet (its header
    shows it); nothing, and no query, for anyone else."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.has_perm("office.view_fleet"):
        return {}
    try:
        return {"ktp_overdue": overdue_count()}
    except Exception:  # a header count must never take a page down
        log.exception("overdue count failed")
        return {}


# -- the lists ---------------------------------------------------------------------------------
@dataclass
class ClockRow:
    """One complete recording on the clock page."""

    review: RecordReview
    name: str
    nik: str
    arrived: dt.date
    due: dt.date
    left: int  # clock.working_days_left: negative = working days late
    overdue: bool
    form: MarkForm
    calendar: clock.WorkingCalendar = field(repr=False)

    @property
    def dom_id(self) -> str:
        return f"row-{self.review.record_id}"

    @property
    def arrived_text(self) -> str:
        return _day_text(self.arrived)

    @property
    def due_text(self) -> str:
        return _day_text(self.due)

    @property
    def left_text(self) -> str:
        if self.review.handed_over_on is not None:
            late = clock.working_days_left(self.review.printed_on or self.review.handed_over_on,
                                           self.due, self.calendar)
            return _("dicetak tepat waktu") if late >= 0 else \
                _("dicetak terlambat %(n)d hari kerja") % {"n": -late}
        if self.overdue:
            return _("terlambat %(n)d hari kerja") % {"n": -self.left}
        if self.left == 0:
            return _("batas hari ini")
        return _("sisa %(n)d hari kerja") % {"n": self.left}


class MarkForm(forms.Form):
    """Printed and handed over, with their dates: neither in the future nor before the
    record arrived, the handover not before the printing (and not without it)."""

    printed_on = _date_field(gettext_lazy("Dicetak"), required=False)
    handed_over_on = _date_field(gettext_lazy("Diserahkan"), required=False)

    def __init__(self, *args: Any, review: RecordReview, today: dt.date, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"printed_on": review.printed_on,
                                      "handed_over_on": review.handed_over_on})
        kwargs.setdefault("prefix", f"m-{review.record_id}")
        super().__init__(*args, **kwargs)
        self.review, self.today = review, today

    def _check(self, field: str, day: dt.date | None) -> None:
        if day is None:
            return
        arrived = self.review.complete_on
        if day > self.today:
            self.add_error(field, _("Tanggal tidak boleh sesudah hari ini (%(today)s).")
                           % {"today": _day_text(self.today)})
        elif arrived is not None and day < arrived:
            self.add_error(field, _("Tanggal tidak boleh sebelum rekaman lengkap diterima "
                                    "(%(day)s).") % {"day": _day_text(arrived)})

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        printed, handed = data.get("printed_on"), data.get("handed_over_on")
        self._check("printed_on", printed)
        self._check("handed_over_on", handed)
        if handed is not None and printed is None:
            self.add_error("handed_over_on", _(
                "Isi tanggal cetak dulu: KTP-el diserahkan sesudah dicetak."))
        elif handed is not None and printed is not None and handed < printed \
                and "printed_on" not in self.errors:
            self.add_error("handed_over_on", _(
                "Tanggal serah tidak boleh sebelum tanggal cetak (%(day)s).")
                % {"day": _day_text(printed)})
        if not self.errors and (printed, handed) == (self.review.printed_on,
                                                      self.review.handed_over_on):
            raise forms.ValidationError(_("Tidak ada yang berubah: isi atau ubah tanggalnya."))
        return data


def _reviews(using: str = "default") -> Iterable[RecordReview]:
    return (RecordReview.objects.using(using)
            .filter(complete=True, complete_on__isnull=False)
            .only("kit_id", "record_id", "village", "sealed", "complete_on", "printed_on",
                  "handed_over_on"))


def clock_lists(book: RecordBook | None, today: dt.date, calendar: clock.WorkingCalendar,
                bound: MarkForm | None = None, using: str = "default") -> dict[str, Any]:
    """The four lists of the page (rows sorted by deadline) and their counts."""
    overdue: list[ClockRow] = []
    soon: list[ClockRow] = []
    on_time: list[ClockRow] = []
    done: list[ClockRow] = []
    due_of: dict[dt.date, dt.date] = {}
    for review in _reviews(using):
        arrived = review.complete_on
        assert arrived is not None  # filtered
        due = due_of.get(arrived)
        if due is None:
            due = due_of[arrived] = clock.deadline(arrived, calendar)
        person = book.person(review.sealed) if book is not None else None
        form = bound if bound is not None and bound.review.pk == review.pk else \
            MarkForm(review=review, today=today)
        row = ClockRow(review=review, name=person.name if person else "",
                       nik=person.nik if person else "", arrived=arrived, due=due,
                       left=clock.working_days_left(today, due, calendar),
                       overdue=clock.is_overdue(today, due), form=form, calendar=calendar)
        if review.handed_over_on is not None:
            done.append(row)
        elif row.overdue:
            overdue.append(row)
        elif row.left <= clock.DUE_SOON_WORKING_DAYS:
            soon.append(row)
        else:
            on_time.append(row)
    for rows in (overdue, soon, on_time):
        rows.sort(key=lambda r: (r.due, r.arrived, r.review.kit_id, r.review.record_id))
    done.sort(key=lambda r: (r.review.handed_over_on, r.review.record_id), reverse=True)
    return {"overdue": overdue, "soon": soon, "on_time": on_time, "done": done[:DONE_SHOWN],
            "done_count": len(done), "shown": len(overdue) + len(soon) + len(on_time)
            + min(len(done), DONE_SHOWN)}


def _book(request: HttpRequest) -> tuple[RecordBook | None, str]:
    """The record book, with new records indexed; or why not (no keys)."""
    try:
        book = RecordBook.from_settings()
    except RecordUnavailable as exc:
        return None, exc.text("en" if (translation.get_language() or "id").startswith("en")
                              else "id")
    indexed = book.index_new()
    if indexed:
        forget_count()
    return book, ""


def _render_clock(request: HttpRequest, bound: MarkForm | None = None,
                  status: int = 200) -> HttpResponse:
    book, keys_error = _book(request)
    today = _today()
    calendar = load_calendar()
    lists = clock_lists(book, today, calendar, bound)
    audit(request, "view_personal", subject="/clock/",
          detail=f"{lists['shown']} residents on the KTP-el clock")
    return render(request, "clock/index.html", {
        **lists, "keys_error": keys_error, "today": today, "today_text": _day_text(today),
        "cuti_bersama_off": calendar.cuti_bersama_off, "sla": clock.SLA_WORKING_DAYS,
        "soon_days": clock.DUE_SOON_WORKING_DAYS,
        "bound_in_on_time": bound is not None and any(r.form is bound for r in lists["on_time"]),
        "saved": request.method == "GET" and request.GET.get("saved", ""),
    }, status=status)


@require("office.view_personal")
def clock_page(request: HttpRequest) -> HttpResponse:
    return _render_clock(request)


@require("office.view_personal")
def mark(request: HttpRequest, kit_id: str, record_id: str) -> HttpResponse:
    """Mark one KTP-el printed and/or handed over (POST); refused with the reason."""
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    review = RecordReview.objects.filter(kit_id=kit_id, record_id=record_id, complete=True,
                                         complete_on__isnull=False).first()
    if review is None:
        raise Http404(_("Rekaman lengkap ini tidak ada"))
    form = MarkForm(request.POST, review=review, today=_today())
    if not form.is_valid():
        return _render_clock(request, bound=form)
    before = (review.printed_on, review.handed_over_on)
    after = (form.cleaned_data["printed_on"], form.cleaned_data["handed_over_on"])
    RecordReview.objects.filter(kit_id=kit_id, record_id=record_id).update(
        printed_on=after[0], handed_over_on=after[1])
    forget_count()
    audit(request, "ktp_issued", subject=f"{kit_id}/{record_id}",
          detail=f"printed_on: {before[0]} -> {after[0]}; "
                 f"handed_over_on: {before[1]} -> {after[1]}")
    return redirect(f"/clock/?saved={record_id}#row-{record_id}")


# -- the working-day table -------------------------------------------------------------------
WORKING_CHOICES = (("0", gettext_lazy("Libur tambahan (kantor tutup)")),
                   ("1", gettext_lazy("Hari kerja (libur atau akhir pekan dibatalkan)")))


class OverrideForm(forms.Form):
    """One day of the office's table. Refused: a malformed or far-off date, a day already
    in the table (change or delete that row instead), a missing note, a day off on a day
    that is already off, a working day on a day that already is one."""

    day = _date_field(gettext_lazy("Tanggal"), required=True)
    working = forms.ChoiceField(
        label=gettext_lazy("Jenis"), choices=WORKING_CHOICES, widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy(
            "Pilih jenisnya: libur tambahan atau hari kerja."),
            "invalid_choice": gettext_lazy("Pilih jenisnya: libur tambahan atau hari kerja.")})
    note = forms.CharField(
        label=gettext_lazy("Keterangan"), max_length=200,
        help_text=gettext_lazy("Mis. nomor SKB atau surat edaran yang menetapkannya."),
        error_messages={"required": gettext_lazy(
            "Isi keterangan: keputusan atau alasan hari ini diubah (mis. nomor SKB)."),
            "max_length": gettext_lazy("Keterangan paling panjang 200 huruf.")})

    def __init__(self, *args: Any, base: clock.WorkingCalendar,
                 instance: WorkingDayOverride | None = None, **kwargs: Any) -> None:
        if instance is not None:
            kwargs.setdefault("initial", {"day": instance.day, "note": instance.note,
                                          "working": "1" if instance.working else "0"})
        super().__init__(*args, **kwargs)
        self.base, self.instance = base, instance

    def clean_day(self) -> dt.date:
        day: dt.date = self.cleaned_data["day"]
        if not FIRST_YEAR <= day.year <= LAST_YEAR:
            raise forms.ValidationError(
                _("Tahun %(y)d di luar %(a)d–%(b)d: periksa tanggalnya.")
                % {"y": day.year, "a": FIRST_YEAR, "b": LAST_YEAR})
        taken = WorkingDayOverride.objects.filter(day=day)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError(
                _("%(day)s sudah ada di tabel: ubah atau hapus baris itu.")
                % {"day": _day_text(day)})
        return day

    def clean_note(self) -> str:
        note = " ".join(str(self.cleaned_data["note"]).split())
        if not note:
            raise forms.ValidationError(self.fields["note"].error_messages["required"])
        return note

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        day, working = data.get("day"), data.get("working")
        if day is None or working is None:
            return data
        data["working"] = working = working == "1"
        package_working = clock.is_working_day(day, self.base)
        why = self._why_off(day)
        if working and package_working:
            self.add_error("working", _(
                "%(day)s sudah hari kerja: \"hari kerja\" hanya untuk membatalkan libur atau "
                "akhir pekan.") % {"day": _day_text(day)})
        elif not working and not package_working:
            self.add_error("working", _(
                "%(day)s sudah libur (%(why)s): tidak perlu ditambahkan.")
                % {"day": _day_text(day), "why": why})
        return data

    def _why_off(self, day: dt.date) -> str:
        names = [h.name for h in self.base.holidays_of(day.year) if h.day == day]
        if names:
            return ", ".join(names)
        return _("akhir pekan") if day.weekday() >= 5 else ""


class ClockSettingsForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = ClockSettings
        fields = ("cuti_bersama_off",)
        labels: ClassVar[dict[str, Any]] = {"cuti_bersama_off": gettext_lazy(
            "Cuti bersama dihitung libur (kantor tutup)")}
        help_texts: ClassVar[dict[str, Any]] = {"cuti_bersama_off": gettext_lazy(
            "Hari cuti bersama dari paket holidays (kategori GOVERNMENT). Matikan bila "
            "kantor tetap melayani pada cuti bersama.")}


@dataclass(frozen=True)
class DayLine:
    """One holiday of the year beside the table."""

    day: dt.date
    text: str
    name: str
    cuti_bersama: bool
    counted_off: bool  # by the package and the setting
    override: WorkingDayOverride | None


def _year(request: HttpRequest, default: int) -> int:
    try:
        year = int(request.GET.get("year", default))
    except ValueError:
        return default
    return year if FIRST_YEAR <= year <= LAST_YEAR else default


def _days_context(request: HttpRequest, *, year: int, form: OverrideForm | None = None,
                  settings_form: ClockSettingsForm | None = None,
                  editing: WorkingDayOverride | None = None) -> dict[str, Any]:
    settings_row = current_settings()
    base = load_calendar(with_overrides=False)
    overrides = list(WorkingDayOverride.objects.all())
    by_day = {o.day: o for o in overrides}
    lines = [DayLine(h.day, _day_text(h.day), h.name, h.cuti_bersama,
                     clock.is_working_day(h.day, base) is False, by_day.get(h.day))
             for h in base.holidays_of(year)]
    if form is None:
        form = OverrideForm(base=base, instance=editing)
    return {
        "year": year, "lines": lines, "form": form, "editing": editing,
        "overrides": [(o, _day_text(o.day)) for o in overrides if o.day.year == year],
        "other_years": sorted({o.day.year for o in overrides if o.day.year != year}),
        "settings_form": settings_form or ClockSettingsForm(instance=settings_row),
        "cuti_bersama_off": settings_row.cuti_bersama_off,
        "saved": request.GET.get("saved", "") if request.method == "GET" else "",
    }


@require("office.view_workingdayoverride")
def days_page(request: HttpRequest) -> HttpResponse:
    year = _year(request, _today().year)
    return render(request, "clock/days.html", _days_context(request, year=year))


def _describe(working: bool) -> str:
    return "working" if working else "day off"


@require("office.view_workingdayoverride", "office.add_workingdayoverride")
def day_add(request: HttpRequest) -> HttpResponse:
    return _save_day(request, None)


@require("office.view_workingdayoverride", "office.change_workingdayoverride")
def day_edit(request: HttpRequest, override_id: int) -> HttpResponse:
    instance = WorkingDayOverride.objects.filter(pk=override_id).first()
    if instance is None:
        raise Http404(_("Baris tabel ini tidak ada"))
    if request.method != "POST":
        return render(request, "clock/days.html", _days_context(
            request, year=instance.day.year, editing=instance))
    return _save_day(request, instance)


def _save_day(request: HttpRequest, instance: WorkingDayOverride | None) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    form = OverrideForm(request.POST, base=load_calendar(with_overrides=False),
                        instance=instance)
    if form.is_valid():
        day, working, note = (form.cleaned_data["day"], form.cleaned_data["working"],
                              form.cleaned_data["note"])
        try:
            with transaction.atomic():
                if instance is None:
                    WorkingDayOverride.objects.create(
                        day=day, working=working, note=note, created_at=time.time(),
                        created_by=request.user.get_username()[:150])
                    detail = f"add {day}: {_describe(working)} ({note})"
                else:
                    detail = (f"change {instance.day}: {_describe(instance.working)} "
                              f"({instance.note}) -> {day}: {_describe(working)} ({note})")
                    instance.day, instance.working, instance.note = day, working, note
                    instance.save()
        except IntegrityError:  # the same day added by a colleague a moment ago
            form.add_error("day", _("%(day)s sudah ada di tabel: ubah atau hapus baris itu.")
                           % {"day": _day_text(day)})
        else:
            forget_count()
            audit(request, "clock_days", subject=str(day), detail=detail)
            return redirect(f"/clock/days/?year={day.year}&saved={day}")
    day = form.cleaned_data.get("day") if hasattr(form, "cleaned_data") else None
    year = day.year if isinstance(day, dt.date) else (
        instance.day.year if instance is not None else _today().year)
    return render(request, "clock/days.html", _days_context(
        request, year=year, form=form, editing=instance))


@require("office.view_workingdayoverride", "office.delete_workingdayoverride")
def day_delete(request: HttpRequest, override_id: int) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    instance = WorkingDayOverride.objects.filter(pk=override_id).first()
    if instance is None:
        raise Http404(_("Baris tabel ini tidak ada"))
    day = instance.day
    detail = f"delete {day}: {_describe(instance.working)} ({instance.note})"
    instance.delete()
    forget_count()
    audit(request, "clock_days", subject=str(day), detail=detail)
    return redirect(f"/clock/days/?year={day.year}&saved=deleted")


@require("office.view_workingdayoverride", "office.change_clocksettings")
def settings_save(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    current = current_settings()
    before = current.cuti_bersama_off
    form = ClockSettingsForm(request.POST, instance=current)
    if not form.is_valid():  # a checkbox cannot be malformed; kept for form symmetry
        return render(request, "clock/days.html", _days_context(
            request, year=_today().year, settings_form=form))
    saved = form.save()
    forget_count()
    audit(request, "clock_days", subject="clock_settings",
          detail=f"cuti_bersama_off: {before} -> {saved.cuti_bersama_off}")
    return redirect("/clock/days/?saved=settings")


urlpatterns: list[URLPattern] = [
    path("clock/", clock_page, name="clock"),
    path("clock/mark/<str:kit_id>/<str:record_id>", mark, name="clock-mark"),
    path("clock/days/", days_page, name="clock-days"),
    path("clock/days/add", day_add, name="clock-day-add"),
    path("clock/days/<int:override_id>/edit", day_edit, name="clock-day-edit"),
    path("clock/days/<int:override_id>/delete", day_delete, name="clock-day-delete"),
    path("clock/days/settings", settings_save, name="clock-settings"),
]
