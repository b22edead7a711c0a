"""Scheduling visits and sending their assignments to the kits (issue 13, SOP steps 3 and 6).

Pages (``office.schedule_visits``, Bidang Dafduk and Kepala Dinas):

- ``/schedule/``: every visit by day, upcoming first, then past: the request letter, the
  desa, the recording point, the officers, the kit, the visit's state and where its
  assignment is on its way to the kit.
- ``/requests/<id>/visits/new/``: a new visit for a request whose targets are verified,
  prefilled with what :mod:`office.schedule` suggests (the weekly cadence, the recording
  point from the targets' places, the usable kits, the team size and time estimate with
  its reckoning). Clashes with other visits that day (same kit, same officer) are shown
  before saving and need "save anyway".
- ``/visits/<id>/``: one visit, its targets, and its assignment's state (refreshing itself
  while it travels: queued → sent → delivered → opened, or the kit's refusal). *Send*
  seals and queues it (:func:`office.visits.send_assignment`) once the reply letter has
  gone to the village (the SOP sends the letter first); *Change* edits it (an assigned
  visit is re-sent, replacing the old one on the kit); *Cancel* seals a cancellation for
  the kit when the visit was ever sent to one (a visit never sent is only marked
  cancelled: no kit has anything to drop), and its pending targets become unscheduled.
  Targets not recorded move to a later visit of the same request, or a new one.
- ``/schedule/villages/`` (``office.change_village``): each village's terrain.
- ``/schedule/officers/``: the recording officers.

**Two schedulers at once.** The edit and cancel forms carry the visit's ``version``; the
save is a conditional update on it, so the second of two concurrent saves changes nothing
and is told who saved first and when, with the values now stored.

Nothing personal goes into the log or the audit details: ids, counts and dates only.
Residents' names are shown only when the web app has the office keys (``--keys``), and
showing them is audited (``view_personal``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import time
from collections.abc import Iterable
from typing import Any, ClassVar

from django import forms
from django.contrib import messages
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import formats, timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from office import schedule as plan
from office import visits as flow
from office.models import (
    Assignment,
    Officer,
    ReplyLetter,
    Target,
    Village,
    Visit,
    VisitRequest,
)
from office.records import RecordUnavailable
from office.web.audit import audit
from office.web.clock import load_calendar
from office.web.roles import require
from office.web.wib import lang as _lang
from office.web.wib import local as _wib
from sync import regions
from sync.domain import Category, Place, uuid7
from sync.errors import JaranIjoError

log = logging.getLogger(__name__)

SCHEDULE = "office.schedule_visits"
PAST_SHOWN = 100  # past visits on the schedule page, newest first
POLL_STATES = ("queued", "sent", "delivered")  # the state partial polls while these
MAX_TEAM = 6
MAX_STAFF = 10
SCHEDULABLE = ("verified", "scheduled", "letter_sent", "assigned")
OFFICER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _wib_text(t: float | None) -> str:
    when = _wib(t)
    return "" if when is None else formats.date_format(when, "j M Y H:i:s")


def _day_text(day: dt.date) -> str:
    return formats.date_format(day, "D, j M Y")


def _who(request: HttpRequest) -> str:
    return str(request.user.get_username())


def _request_url(vr: VisitRequest) -> str:
    """The request's own page, if the requests module has one (built alongside)."""
    for name in ("request", "request_detail"):
        try:
            return reverse(name, args=[vr.pk])
        except NoReverseMatch:
            continue
    return ""


def _place_of(vr: VisitRequest) -> str:
    return vr.village or vr.agency


def officer_names(ids: Iterable[str]) -> list[str]:
    wanted = list(ids)
    names = dict(Officer.objects.filter(officer_id__in=wanted).values_list("officer_id", "name"))
    return [names.get(o, o) for o in wanted]


def terrain_of(vr: VisitRequest) -> tuple[str, Village | None]:
    """The village's terrain setting (flat when the office has not set it)."""
    village = Village.objects.filter(kecamatan__iexact=vr.kecamatan,
                                     name__iexact=vr.village).first() if vr.village else None
    return (village.terrain if village else "flat"), village


def _vault() -> tuple[flow.TargetVault | None, str]:
    try:
        return flow.TargetVault.from_settings(), ""
    except RecordUnavailable as exc:
        return None, exc.text(_lang())


def _category_label(code: str) -> str:
    try:
        return Category(code).label(_lang())
    except ValueError:
        return code


def _place_label(code: str) -> str:
    try:
        return Place(code).label(_lang())
    except ValueError:
        return code


def target_labels(rows: Iterable[Target], vault: flow.TargetVault | None) -> dict[str, str]:
    """Each target's label: the resident's name when the keys are here, else the row of
    the imported list with category and place (which name nobody)."""
    rows = list(rows)
    opened = dict((r.id, t) for r, t in flow.open_targets(vault, rows)) if vault else {}
    out: dict[str, str] = {}
    for r in rows:
        t = opened.get(r.id)
        info = f"{_category_label(r.category)}, {_place_label(r.place)}"
        if t is not None:
            out[r.id] = f"{t.name} ({info})"
        else:
            row = _("baris %(n)s") % {"n": r.source_row} if r.source_row else r.id[:8]
            out[r.id] = _("Sasaran %(row)s (%(info)s)") % {"row": row, "info": info}
    return out


def _estimate_for(rows: Iterable[Target], terrain: str, point: str) -> plan.Estimate:
    cats: dict[str, int] = {}
    houses = 0
    for r in rows:
        cats[r.category] = cats.get(r.category, 0) + 1
        houses += r.place == "home"
    return plan.estimate(cats, houses, terrain, point)


# -- the form ------------------------------------------------------------------------------

DATE_ERRORS = {"invalid": gettext_lazy("Tanggal tidak valid: tulis TTTT-BB-HH, mis. 2026-12-08."),
               "required": gettext_lazy("Isi tanggal kunjungan (TTTT-BB-HH).")}


class KitSelect(forms.Select):
    """A kit select whose unusable kits are listed, disabled, with the reason."""

    def __init__(self, *args: Any, disabled: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.disabled = disabled or {}

    def create_option(self, name: str, value: Any, label: Any, selected: Any, index: int,
                      subindex: int | None = None, attrs: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if str(value) in self.disabled:
            option["attrs"]["disabled"] = True
        return option


class VisitForm(forms.Form):
    """A visit's day, place, team, kit and targets. What the kit would refuse is refused
    here first (a day in the past, no officer, no kit, no target)."""

    visit_date = forms.DateField(label=gettext_lazy("Tanggal kunjungan"),
                                 input_formats=["%Y-%m-%d"], error_messages=DATE_ERRORS,
                                 widget=forms.DateInput(attrs={"type": "date"},
                                                        format="%Y-%m-%d"))
    start_time = forms.TimeField(
        label=gettext_lazy("Jam mulai (WIB)"), input_formats=["%H:%M", "%H:%M:%S"],
        error_messages={"invalid": gettext_lazy("Jam mulai tidak valid: tulis JJ:MM, mis. "
                                                "08:00."),
                        "required": gettext_lazy("Isi jam mulai (JJ:MM).")},
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    recording_point = forms.ChoiceField(
        label=gettext_lazy("Tempat perekaman"),
        error_messages={"required": gettext_lazy("Pilih tempat perekaman."),
                        "invalid_choice": gettext_lazy("Pilih tempat perekaman dari daftar.")})
    officers = forms.MultipleChoiceField(
        label=gettext_lazy("Petugas"), widget=forms.CheckboxSelectMultiple,
        error_messages={"required": gettext_lazy("Pilih minimal satu petugas."),
                        "invalid_choice": gettext_lazy("Petugas %(value)s tidak aktif atau "
                                                       "tidak dikenal: pilih dari daftar.")})
    kit_id = forms.ChoiceField(label=gettext_lazy("Kit"), error_messages={
        "required": gettext_lazy("Pilih kit yang dibawa petugas."),
        "invalid_choice": gettext_lazy("Kit %(value)s tidak dikenal kantor: pilih dari "
                                       "daftar.")})
    village_staff = forms.CharField(
        label=gettext_lazy("Pendamping dari desa (satu nama per baris)"), required=False,
        max_length=1200, widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"max_length": gettext_lazy("Terlalu panjang: paling banyak %(limit_value)d "
                                                   "huruf.")})
    team_size = forms.IntegerField(
        label=gettext_lazy("Ukuran tim (petugas)"), min_value=1, max_value=MAX_TEAM,
        error_messages={"required": gettext_lazy("Isi ukuran tim."),
                        "invalid": gettext_lazy("Ukuran tim harus angka."),
                        "min_value": gettext_lazy("Ukuran tim minimal 1 petugas."),
                        "max_value": gettext_lazy("Ukuran tim paling banyak %(limit_value)s "
                                                  "petugas.")})
    targets = forms.MultipleChoiceField(
        label=gettext_lazy("Sasaran pada kunjungan ini"), widget=forms.CheckboxSelectMultiple,
        error_messages={"required": gettext_lazy("Pilih minimal satu sasaran untuk kunjungan "
                                                 "ini."),
                        "invalid_choice": gettext_lazy("Sasaran itu tidak dapat dijadwalkan "
                                                       "di sini (sudah di kunjungan lain atau "
                                                       "belum diverifikasi): muat ulang "
                                                       "halaman.")})
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    save_anyway = forms.BooleanField(
        label=gettext_lazy("Tetap simpan walaupun bentrok"), required=False)

    def __init__(self, *args: Any, officers: list[tuple[str, str]],
                 kits: list[plan.KitChoice], targets: list[tuple[str, str]],
                 today: dt.date, visit: Visit | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today, self.visit = today, visit
        self.fields["recording_point"].choices = [(p, plan.point_label(p)) for p in plan.POINTS]
        self.fields["officers"].choices = officers
        self.fields["targets"].choices = targets
        self.set_kits(kits)

    def set_kits(self, kits: list[plan.KitChoice]) -> None:
        self.kits = {k.kit_id: k for k in kits}
        field = self.fields["kit_id"]
        field.choices = [("", _("— pilih kit —"))] + [
            (k.kit_id, k.kit_id if k.available else f"{k.kit_id} — {k.reason}") for k in kits]
        field.widget = KitSelect(choices=field.choices,
                                 disabled={k.kit_id: k.reason for k in kits if not k.available})

    def clean_visit_date(self) -> dt.date:
        day: dt.date = self.cleaned_data["visit_date"]
        unchanged = self.visit is not None and self.visit.visit_date == day
        if day < self.today and not unchanged:
            raise forms.ValidationError(_("Tanggal kunjungan sudah lewat: pilih hari ini atau "
                                          "sesudahnya."))
        if day > self.today + dt.timedelta(days=366):
            raise forms.ValidationError(_("Tanggal lebih dari setahun lagi: periksa tahunnya."))
        return day

    def clean_village_staff(self) -> str:
        names = [s.strip() for s in str(self.cleaned_data.get("village_staff") or "").splitlines()
                 if s.strip()]
        if len(names) > MAX_STAFF:
            raise forms.ValidationError(_("Paling banyak %(n)d pendamping: satu nama per "
                                          "baris.") % {"n": MAX_STAFF})
        if any(len(n) > 100 for n in names):
            raise forms.ValidationError(_("Satu nama per baris, paling panjang 100 huruf: "
                                          "periksa baris yang terlalu panjang."))
        return "\n".join(names)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        day = data.get("visit_date")
        kit_id = data.get("kit_id")
        if day is not None and kit_id:
            exclude = self.visit.pk if self.visit else None
            choice = next((k for k in plan.available_kits(day, exclude) if k.kit_id == kit_id),
                          None)
            if choice is not None and not choice.available:
                self.add_error("kit_id", _("Kit %(kit)s tidak dapat dipakai tanggal itu: "
                                           "%(why)s. Pilih kit lain.")
                               % {"kit": kit_id, "why": choice.reason})
        officers, team = data.get("officers") or [], data.get("team_size")
        if officers and team and len(officers) < team:
            self.add_error("officers", _("Tim %(n)d petugas: pilih %(n)d petugas, atau "
                                         "kecilkan ukuran tim.") % {"n": team})
        return data


def _officer_choices(also: Iterable[str] = ()) -> list[tuple[str, str]]:
    """Active officers, plus inactive ones already on the visit (so an edit keeps them)."""
    keep = list(also)
    rows = Officer.objects.filter(Q(active=True) | Q(officer_id__in=keep)).order_by("name")
    return [(o.officer_id, f"{o.name} ({o.officer_id})" + ("" if o.active else
                                                            " — " + _("nonaktif")))
            for o in rows]


def movable_targets(visit: Visit, today: dt.date) -> Any:
    """The targets of ``visit`` not (fully) recorded: partial or not recorded, or still
    pending once the visit's day has passed."""
    q = Q(status__in=("partial", "not_recorded"))
    if visit.visit_date < today:
        q |= Q(status="pending")
    return visit.targets.filter(q, verified=True).order_by("source_row", "added_at", "id")


def _candidates(vr: VisitRequest, visit: Visit | None, from_visit: Visit | None,
                today: dt.date) -> list[Target]:
    """The targets the form offers: a new visit gets the verified targets on no visit
    (or those moved from ``from_visit``); an edit also keeps its own pending ones."""
    if from_visit is not None:
        return list(movable_targets(from_visit, today))
    q = Q(verified=True, visit__isnull=True)
    if visit is not None:
        q |= Q(visit=visit, status="pending")
    return list(vr.targets.filter(q).order_by("source_row", "added_at", "id"))


class _FormPage:
    """What the new and edit pages share: the choices, the suggestions, the estimate."""

    def __init__(self, request: HttpRequest, vr: VisitRequest, visit: Visit | None,
                 from_visit: Visit | None) -> None:
        self.request, self.vr, self.visit, self.from_visit = request, vr, visit, from_visit
        self.today = timezone.localdate()
        self.calendar = load_calendar()
        self.rows = _candidates(vr, visit, from_visit, self.today)
        self.by_id = {r.id: r for r in self.rows}
        self.vault, self.names_problem = _vault()
        self.labels = target_labels(self.rows, self.vault)
        self.terrain, self.village = terrain_of(vr)
        earlier = plan.same_place_visits(vr)
        if visit is not None:
            earlier = earlier.exclude(pk=visit.pk)
        self.last_visit: dt.date | None = earlier.order_by("-visit_date").values_list(
            "visit_date", flat=True).first()
        self.suggested_date = plan.next_visit_day(self.last_visit, self.today, self.calendar)
        self.suggested_point = plan.recording_point_for(r.place for r in self.rows)

    def initial(self) -> dict[str, Any]:
        v = self.visit
        if v is not None:
            chosen = [r.id for r in self.rows if r.visit_id == v.pk]
            return {"visit_date": v.visit_date, "start_time": v.start_time,
                    "recording_point": v.recording_point,
                    "officers": plan.officer_ids(v.officers), "kit_id": v.kit_id,
                    "village_staff": v.village_staff, "team_size": v.team_size,
                    "targets": chosen, "version": v.version}
        est = _estimate_for(self.rows, self.terrain, self.suggested_point)
        return {"visit_date": self.suggested_date, "start_time": dt.time(8, 0),
                "recording_point": self.suggested_point, "team_size": est.team_size,
                "targets": [r.id for r in self.rows], "village_staff": ""}

    def form(self, data: Any = None, initial: dict[str, Any] | None = None) -> VisitForm:
        initial = initial or self.initial()
        day = initial.get("visit_date") or self.suggested_date
        if data is not None:
            with contextlib.suppress(ValueError):
                day = dt.date.fromisoformat(str(data.get("visit_date", "")))
        also = plan.officer_ids(self.visit.officers) if self.visit else []
        kits = plan.available_kits(day, self.visit.pk if self.visit else None)
        return VisitForm(data, initial=initial, officers=_officer_choices(also), kits=kits,
                         targets=[(r.id, self.labels[r.id]) for r in self.rows],
                         today=self.today, visit=self.visit)

    def render(self, form: VisitForm, *, warnings: list[plan.Conflict] | None = None,
               day_warning: str = "", stale: str = "", error: str = "",
               status: int = 200) -> HttpResponse:
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            chosen = [self.by_id[i] for i in data["targets"] if i in self.by_id]
            point = data["recording_point"]
        else:
            raw = form.data.getlist("targets") if form.is_bound else \
                form.initial.get("targets", [])
            chosen = [self.by_id[i] for i in raw if i in self.by_id]
            point = (form.data.get("recording_point") if form.is_bound else
                     form.initial.get("recording_point")) or self.suggested_point
        est = _estimate_for(chosen, self.terrain, point)
        if self.vault is not None and self.rows:
            audit(self.request, "view_personal", subject=f"request {self.vr.pk} visit form",
                  detail=f"{len(self.rows)} target names")
        return render(self.request, "schedule/visit_form.html", {
            "vr": self.vr, "visit": self.visit, "from_visit": self.from_visit, "form": form,
            "estimate": est, "terrain": plan.terrain_label(self.terrain),
            "terrain_set": self.village is not None, "names_problem": self.names_problem,
            "suggested_date": self.suggested_date, "last_visit": self.last_visit,
            "warnings": warnings or [],
            "warning_rows": [_conflict_text(c) for c in warnings or []],
            "day_warning": day_warning, "stale": stale, "error": error,
            "request_url": _request_url(self.vr), "place": _place_of(self.vr),
            "no_officers": not Officer.objects.filter(active=True).exists(),
            "kits_known": bool(form.kits),
        }, status=status)


def _conflict_text(c: plan.Conflict) -> str:
    parts = []
    if c.same_kit:
        parts.append(_("kit %(kit)s yang sama") % {"kit": c.visit.kit_id})
    if c.officers:
        parts.append(_("petugas yang sama: %(names)s") % {
            "names": ", ".join(officer_names(c.officers))})
    return _("%(place)s jam %(time)s (surat %(no)s): %(what)s") % {
        "place": _place_of(c.visit.request), "time": c.visit.start_time.strftime("%H:%M"),
        "no": c.visit.request.letter_number, "what": "; ".join(parts)}


def _day_warning(day: dt.date, calendar: Any) -> str:
    from office import deadline as clock

    if clock.is_working_day(day, calendar):
        return ""
    return _("%(day)s bukan hari kerja kantor (akhir pekan, hari libur atau cuti bersama).") \
        % {"day": _day_text(day)}


def _check_request(vr: VisitRequest) -> str:
    if vr.status not in SCHEDULABLE:
        return _("Permohonan ini berstatus “%(s)s”: kunjungan dijadwalkan sesudah "
                 "sasarannya diverifikasi.") % {"s": flow.state_label(vr.status)}
    return ""


@require(SCHEDULE)
def visit_new(request: HttpRequest, request_id: int) -> HttpResponse:
    """GET: the form with its suggestions; POST: check, warn of clashes, save."""
    vr = get_object_or_404(VisitRequest, pk=request_id)
    from_visit = None
    if request.GET.get("from"):
        from_visit = get_object_or_404(Visit, pk=request.GET["from"], request=vr)
    problem = _check_request(vr)
    page = _FormPage(request, vr, None, from_visit)
    if not problem and not page.rows:
        problem = _("Tidak ada sasaran terverifikasi yang belum dijadwalkan pada permohonan "
                    "ini.") if from_visit is None else \
            _("Tidak ada sasaran yang perlu dipindah dari kunjungan itu.")
    if problem:
        return render(request, "schedule/refused.html", {
            "vr": vr, "problem": problem, "request_url": _request_url(vr)}, status=400)
    if request.method != "POST":
        initial = page.initial()
        wanted = request.GET.getlist("t")
        if wanted:
            initial["targets"] = [t for t in wanted if t in page.by_id]
        return page.render(page.form(initial=initial))
    form = page.form(request.POST)
    if "recalc" in request.POST or not form.is_valid():
        return page.render(form, status=200 if "recalc" in request.POST else 400)
    data = form.cleaned_data
    warnings = plan.conflicts(data["visit_date"], data["officers"], data["kit_id"], None)
    day_warning = _day_warning(data["visit_date"], page.calendar)
    if (warnings or day_warning) and not data["save_anyway"]:
        return page.render(form, warnings=warnings, day_warning=day_warning, status=409)
    chosen = [page.by_id[i] for i in data["targets"]]
    est = _estimate_for(chosen, page.terrain, data["recording_point"])
    by, now = _who(request), time.time()
    with transaction.atomic():
        visit = Visit.objects.create(
            request=vr, visit_date=data["visit_date"], start_time=data["start_time"],
            recording_point=data["recording_point"], officers=",".join(data["officers"]),
            kit_id=data["kit_id"], village_staff=data["village_staff"],
            team_size=data["team_size"], minutes=est.total_minutes, state="planned",
            assignment_id=uuid7(), created_at=now, created_by=by, updated_at=now,
            updated_by=by)
        if from_visit is not None:
            flow.move_to_visit(chosen, visit, by)
        else:
            Target.objects.filter(pk__in=[r.id for r in chosen]).update(
                visit=visit, version=F("version") + 1)
        note = (f"kunjungan {visit.visit_date:%d-%m-%Y} dijadwalkan: {len(chosen)} sasaran, "
                f"kit {visit.kit_id}")
        if vr.status == "verified":
            flow.move(vr, "scheduled", by, note)
        else:
            flow.note_event(vr, by, note)
    audit(request, "schedule_visit", subject=f"visit {visit.pk}",
          detail=f"request={vr.pk} date={visit.visit_date} kit={visit.kit_id} "
                 f"targets={len(chosen)} conflicts={len(warnings)}")
    log.info("visit %s scheduled for request %s (%d targets)", visit.pk, vr.pk, len(chosen))
    messages.success(request, _("Kunjungan dijadwalkan. Buat surat balasan untuk desa, "
                                "lalu kirim penugasan ke kit."))
    return redirect("visit", visit.pk)


def _stale_text(visit: Visit) -> str:
    return _("Kunjungan ini sudah diubah oleh %(who)s pada %(at)s WIB sementara Anda "
             "mengisinya. Tidak ada yang ditimpa: di bawah ini isinya sekarang; ubah lagi bila "
             "perlu.") % {"who": visit.updated_by, "at": _wib_text(visit.updated_at)}


def _posted_version(request: HttpRequest) -> int | None:
    try:
        return int(request.POST.get("version", ""))
    except ValueError:
        return None


def _resend(visit: Visit, by: str) -> None:
    """Re-seal an assigned visit for its kit (a change replaces the old one there);
    raises what :func:`office.visits.send_assignment` raises."""
    vault = flow.TargetVault.from_settings()
    flow.send_assignment(visit, vault, by)


@require(SCHEDULE)
def visit_edit(request: HttpRequest, visit_id: int) -> HttpResponse:
    """Change a visit. The save is conditional on the version the form was opened with;
    an assigned visit is re-sent in the same transaction (both happen, or neither)."""
    visit = get_object_or_404(Visit.objects.select_related("request"), pk=visit_id)
    vr = visit.request
    if visit.state in ("cancelled", "done"):
        return render(request, "schedule/refused.html", {
            "vr": vr, "visit": visit, "request_url": _request_url(vr),
            "problem": _("Kunjungan yang sudah dibatalkan atau selesai tidak dapat diubah.")},
            status=400)
    page = _FormPage(request, vr, visit, None)
    if request.method != "POST":
        return page.render(page.form())
    form = page.form(request.POST)
    if "recalc" in request.POST or not form.is_valid():
        return page.render(form, status=200 if "recalc" in request.POST else 400)
    posted = _posted_version(request)
    if posted != visit.version:
        return _stale(page, visit)
    data = form.cleaned_data
    warnings = plan.conflicts(data["visit_date"], data["officers"], data["kit_id"], visit)
    day_warning = "" if data["visit_date"] == visit.visit_date else \
        _day_warning(data["visit_date"], page.calendar)
    if (warnings or day_warning) and not data["save_anyway"]:
        return page.render(form, warnings=warnings, day_warning=day_warning, status=409)
    chosen = [page.by_id[i] for i in data["targets"]]
    est = _estimate_for(chosen, page.terrain, data["recording_point"])
    by = _who(request)
    old_kit, assigned = visit.kit_id, visit.state == "assigned"
    try:
        with transaction.atomic():
            n = Visit.objects.filter(pk=visit.pk, version=posted).update(
                visit_date=data["visit_date"], start_time=data["start_time"],
                recording_point=data["recording_point"], officers=",".join(data["officers"]),
                kit_id=data["kit_id"], village_staff=data["village_staff"],
                team_size=data["team_size"], minutes=est.total_minutes,
                updated_at=time.time(), updated_by=by, version=F("version") + 1)
            if n == 0:
                raise _Stale
            visit.refresh_from_db()
            keep = {r.id for r in chosen}
            Target.objects.filter(pk__in=keep).exclude(visit=visit).update(
                visit=visit, version=F("version") + 1)
            Target.objects.filter(visit=visit, status="pending").exclude(pk__in=keep).update(
                visit=None, version=F("version") + 1)
            if assigned:
                _resend(visit, by)
            flow.note_event(vr, by, f"kunjungan {visit.visit_date:%d-%m-%Y} diubah: "
                                    f"{len(chosen)} sasaran, kit {visit.kit_id}"
                                    + (" (dikirim ulang ke kit)" if assigned else ""))
    except _Stale:
        visit.refresh_from_db()
        return _stale(page, visit)
    except (RecordUnavailable, JaranIjoError) as exc:
        visit.refresh_from_db()
        page.visit = visit
        return page.render(form, error=_("Perubahan belum disimpan: penugasan tidak dapat "
                                         "dikirim ulang ke kit. %(why)s")
                           % {"why": exc.text(_lang())}, status=400)
    audit(request, "change_visit", subject=f"visit {visit.pk}",
          detail=f"version={visit.version} date={visit.visit_date} kit={visit.kit_id} "
                 f"targets={len(chosen)} resent={assigned} old_kit={old_kit}")
    if assigned:
        messages.success(request, _("Perubahan disimpan dan penugasan dikirim ulang ke kit; "
                                    "penugasan lama di kit diganti."))
        if old_kit != visit.kit_id:
            messages.info(request, _("Kit %(kit)s mendapat pembatalan penugasan ini.")
                          % {"kit": old_kit})
    else:
        messages.success(request, _("Perubahan disimpan."))
    return redirect("visit", visit.pk)


class _Stale(Exception):
    """Another user saved the visit after this form was opened."""


def _stale(page: _FormPage, visit: Visit) -> HttpResponse:
    page.visit = visit
    page.rows = _candidates(page.vr, visit, None, page.today)
    page.by_id = {r.id: r for r in page.rows}
    page.labels = target_labels(page.rows, page.vault)
    return page.render(page.form(), stale=_stale_text(visit), status=409)


# -- one visit -----------------------------------------------------------------------------


def _sealed_text(sealed_at: str) -> str:
    """The envelope's sealing time (ISO 8601, UTC, as on the wire) in WIB."""
    try:
        return _wib_text(dt.datetime.fromisoformat(sealed_at).timestamp())
    except ValueError:
        return sealed_at


def state_context(visit: Visit) -> dict[str, Any]:
    """The assignment's state for the visit page and its polled partial: each kit that
    has (had) it, its steps with their times in WIB."""
    state = flow.assignment_state(visit)
    rows = []
    for a in Assignment.objects.filter(assignment_id=visit.assignment_id).defer("envelope"):
        current = a.kit_id == visit.kit_id
        steps = [(_("antre di kantor"), _wib_text(a.queued_at)),
                 (_("terkirim"), _wib_text(a.sent_at)),
                 (_("diterima kit"), _wib_text(a.delivered_at)),
                 (_("dibuka di kit"), _wib_text(a.opened_at))]
        rows.append({"kit_id": a.kit_id, "current": current, "steps": steps,
                     "error": a.error, "sealed_at": _sealed_text(a.sealed_at),
                     "cancelled": not current or visit.state == "cancelled"})
    rows.sort(key=lambda r: not r["current"])
    return {"visit": visit, "state": state, "state_at": _wib_text(state.at),
            "polling": state.code in POLL_STATES, "kits": rows}


def _visit_context(request: HttpRequest, visit: Visit) -> dict[str, Any]:
    vr = visit.request
    today = timezone.localdate()
    rows = list(visit.targets.order_by("source_row", "added_at", "id"))
    vault, names_problem = _vault()
    labels = target_labels(rows, vault)
    if vault is not None and rows:
        audit(request, "view_personal", subject=f"visit {visit.pk}",
              detail=f"{len(rows)} target names")
    counts = {s: 0 for s in flow.TARGET_STATUSES}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    letter = ReplyLetter.objects.filter(visit=visit).only("sent_at", "number").first()
    movable = list(movable_targets(visit, today))
    later = list(vr.visits.filter(visit_date__gt=visit.visit_date, visit_date__gte=today)
                 .exclude(state="cancelled").exclude(pk=visit.pk).order_by("visit_date"))
    est_text = plan.hours_text(visit.minutes) if visit.minutes else ""
    return {
        "visit": visit, "vr": vr, "place": _place_of(vr), "request_url": _request_url(vr),
        "officers": officer_names(plan.officer_ids(visit.officers)),
        "staff": [s for s in visit.village_staff.splitlines() if s.strip()],
        "point": plan.point_label(visit.recording_point),
        "visit_state": _visit_state_label(visit.state),
        "targets": [{"row": r, "label": labels[r.id],
                     "status": str(flow.TARGET_STATUSES.get(r.status, r.status))}
                    for r in rows],
        "counts": [(str(flow.TARGET_STATUSES[s]), s, n) for s, n in counts.items() if n],
        "names_problem": names_problem, "letter": letter,
        "letter_sent": letter is not None and letter.sent_at is not None,
        "letter_url": f"/visits/{visit.pk}/letter/",
        "movable": [(r.id, labels.get(r.id, r.id),
                     str(flow.TARGET_STATUSES.get(r.status, r.status))) for r in movable],
        "later": [(v.pk, _day_text(v.visit_date)) for v in later],
        "estimate_text": est_text, "day": _day_text(visit.visit_date),
        "updated_at": _wib_text(visit.updated_at), "created_at": _wib_text(visit.created_at),
        "assigned_at": _wib_text(visit.assigned_at),
        **state_context(visit),
    }


VISIT_STATES: dict[str, Any] = {"planned": gettext_lazy("direncanakan"),
                                "assigned": gettext_lazy("ditugaskan ke kit"),
                                "cancelled": gettext_lazy("dibatalkan"),
                                "done": gettext_lazy("selesai")}


def _visit_state_label(code: str) -> str:
    return str(VISIT_STATES.get(code, code))


def _visit_page(request: HttpRequest, visit: Visit, *, error: str = "",
                status: int = 200, cancel_form: CancelForm | None = None) -> HttpResponse:
    ctx = _visit_context(request, visit)
    ctx.update(error=error, cancel_form=cancel_form)
    return render(request, "schedule/visit.html", ctx, status=status)


def _visit_or_404(visit_id: int) -> Visit:
    return get_object_or_404(Visit.objects.select_related("request"), pk=visit_id)


@require(SCHEDULE)
def visit_page(request: HttpRequest, visit_id: int) -> HttpResponse:
    return _visit_page(request, _visit_or_404(visit_id))


@require(SCHEDULE)
def visit_state(request: HttpRequest, visit_id: int) -> HttpResponse:
    """The assignment's state alone: the visit page polls it while it travels."""
    return render(request, "schedule/state.html", state_context(_visit_or_404(visit_id)))


@require(SCHEDULE)
def visit_send(request: HttpRequest, visit_id: int) -> HttpResponse:
    """POST: seal, sign and queue the visit's assignment for its kit. Refused before the
    reply letter has gone to the village (SOP steps 4-5 come before step 6)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    visit = _visit_or_404(visit_id)
    vr = visit.request
    if visit.state in ("cancelled", "done"):
        return _visit_page(request, visit, status=400, error=_(
            "Kunjungan ini sudah dibatalkan atau selesai: penugasannya tidak dikirim."))
    letter = ReplyLetter.objects.filter(visit=visit).only("sent_at").first()
    if letter is None or letter.sent_at is None:
        return _visit_page(request, visit, status=400, error=_(
            "Penugasan belum dapat dikirim: surat balasan kunjungan ini belum dikirim ke "
            "desa (SOP: surat balasan lebih dahulu). Kirim surat balasan, lalu coba lagi."))
    vault, problem = _vault()
    if vault is None:
        return _visit_page(request, visit, status=400, error=_(
            "Penugasan tidak dapat disegel: %(why)s") % {"why": problem})
    by = _who(request)
    first = visit.assigned_at is None
    try:
        with transaction.atomic():
            assignment = flow.send_assignment(visit, vault, by)
            note = f"penugasan dikirim ke kit {visit.kit_id}: {len(assignment.targets)} sasaran"
            if vr.status in ("verified", "scheduled", "letter_sent"):
                flow.move(vr, "assigned", by, note)
            else:
                flow.note_event(vr, by, note)
    except (RecordUnavailable, JaranIjoError) as exc:
        visit.refresh_from_db()
        return _visit_page(request, visit, status=400, error=_(
            "Penugasan tidak dikirim: %(why)s") % {"why": exc.text(_lang())})
    audit(request, "send_assignment", subject=f"visit {visit.pk}",
          detail=f"kit={visit.kit_id} targets={len(assignment.targets)} first={first}")
    log.info("assignment of visit %s queued for %s (%d targets)", visit.pk, visit.kit_id,
             len(assignment.targets))
    messages.success(request, _("Penugasan disegel untuk %(kit)s dan diantrekan; kit "
                                "menerimanya saat daring.") % {"kit": visit.kit_id})
    return redirect("visit", visit.pk)


class CancelForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Alasan pembatalan (tanpa nama warga)"), min_length=5,
        max_length=300, widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": gettext_lazy("Tuliskan alasan pembatalan."),
                        "min_length": gettext_lazy("Alasan terlalu singkat: minimal 5 huruf."),
                        "max_length": gettext_lazy("Alasan terlalu panjang: paling banyak "
                                                   "%(limit_value)d huruf.")})
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)


@require(SCHEDULE)
def visit_cancel(request: HttpRequest, visit_id: int) -> HttpResponse:
    """POST: cancel the visit with a reason. A visit already sent to a kit gets a sealed
    cancellation there; its pending targets become unscheduled again."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    visit = _visit_or_404(visit_id)
    vr = visit.request
    form = CancelForm(request.POST)
    if visit.state in ("cancelled", "done"):
        return _visit_page(request, visit, status=400, error=_(
            "Kunjungan ini sudah dibatalkan atau selesai."))
    if not form.is_valid():
        return _visit_page(request, visit, status=400, cancel_form=form,
                           error=_("Belum dibatalkan: perbaiki isian yang ditandai."))
    if form.cleaned_data.get("version") != visit.version:
        return _visit_page(request, visit, status=409, error=_stale_text(visit))
    by = _who(request)
    sent = Assignment.objects.filter(assignment_id=visit.assignment_id).exists()
    try:
        with transaction.atomic():
            if sent:
                flow.send_assignment(visit, flow.TargetVault.from_settings(), by, cancel=True)
            else:
                n = Visit.objects.filter(pk=visit.pk, version=visit.version).update(
                    state="cancelled", updated_at=time.time(), updated_by=by,
                    version=F("version") + 1)
                if n == 0:
                    raise _Stale
            freed = Target.objects.filter(visit=visit, status="pending").update(
                visit=None, version=F("version") + 1)
            flow.note_event(vr, by, f"kunjungan {visit.visit_date:%d-%m-%Y} dibatalkan "
                                    f"({freed} sasaran kembali belum dijadwalkan): "
                                    f"{form.cleaned_data['reason']}")
            live = Visit.objects.filter(request=vr).exclude(pk=visit.pk).exclude(
                state="cancelled").exists()
            if not live and vr.status in ("scheduled", "letter_sent", "assigned"):
                # No visit left: the request waits for a schedule again (its history keeps
                # the letter and the cancelled visit).
                flow.move(vr, "verified", by, "semua kunjungan dibatalkan: menunggu jadwal baru")
    except _Stale:
        visit.refresh_from_db()
        return _visit_page(request, visit, status=409, error=_stale_text(visit))
    except (RecordUnavailable, JaranIjoError) as exc:
        visit.refresh_from_db()
        return _visit_page(request, visit, status=400, cancel_form=form, error=_(
            "Belum dibatalkan: pembatalan tidak dapat disegel untuk kit. %(why)s")
            % {"why": exc.text(_lang())})
    audit(request, "cancel_visit", subject=f"visit {visit.pk}",
          detail=f"kit={visit.kit_id} sent_to_kit={sent} freed={freed}")
    messages.success(request, _("Kunjungan dibatalkan.") + (" " + _(
        "Pembatalan disegel untuk kit %(kit)s dan diantrekan.") % {"kit": visit.kit_id}
        if sent else ""))
    return redirect("visit", visit.pk)


@require(SCHEDULE)
def visit_move(request: HttpRequest, visit_id: int) -> HttpResponse:
    """POST: targets not (fully) recorded on this visit go to a later visit of the same
    request (re-sent to its kit if it was assigned), or to a new visit's form."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    visit = _visit_or_404(visit_id)
    today = timezone.localdate()
    movable = {r.id: r for r in movable_targets(visit, today)}
    wanted = [i for i in request.POST.getlist("targets") if i in movable]
    dest = request.POST.get("dest", "")
    if not wanted:
        return _visit_page(request, visit, status=400, error=_(
            "Pilih sasaran yang akan dipindah."))
    if dest == "new":
        return redirect(reverse("visit_new", args=[visit.request_id]) + "?" + urlencode(
            [("from", visit.pk), *(("t", i) for i in wanted)]))
    target = Visit.objects.filter(pk=dest if dest.isdigit() else 0, request=visit.request,
                                  visit_date__gt=visit.visit_date) \
        .exclude(state__in=("cancelled", "done")).first()
    if target is None:
        return _visit_page(request, visit, status=400, error=_(
            "Pilih kunjungan tujuan yang lebih kemudian dari permohonan yang sama, atau "
            "“kunjungan baru”."))
    by = _who(request)
    try:
        with transaction.atomic():
            moved = flow.move_to_visit([movable[i] for i in wanted], target, by)
            if target.state == "assigned":
                _resend(target, by)
    except (RecordUnavailable, JaranIjoError) as exc:
        return _visit_page(request, visit, status=400, error=_(
            "Sasaran belum dipindah: %(why)s") % {"why": exc.text(_lang())})
    audit(request, "move_targets", subject=f"visit {visit.pk}",
          detail=f"to visit {target.pk}: {moved} targets")
    messages.success(request, _("%(n)d sasaran dipindah ke kunjungan %(day)s.")
                     % {"n": moved, "day": _day_text(target.visit_date)})
    return redirect("visit", target.pk)


# -- the schedule --------------------------------------------------------------------------


def _visit_rows(visits: Iterable[Visit]) -> list[dict[str, Any]]:
    visits = list(visits)
    ids = {o for v in visits for o in plan.officer_ids(v.officers)}
    names = dict(Officer.objects.filter(officer_id__in=ids).values_list("officer_id", "name"))
    counts = dict(Target.objects.filter(visit__in=visits).values("visit").annotate(
        n=Count("id")).values_list("visit", "n"))
    out = []
    for v in visits:
        st = flow.assignment_state(v)
        out.append({"visit": v, "day": _day_text(v.visit_date), "place": _place_of(v.request),
                    "point": plan.point_label(v.recording_point),
                    "officers": ", ".join(names.get(o, o) for o in plan.officer_ids(v.officers)),
                    "state": _visit_state_label(v.state), "assignment": st,
                    "targets": counts.get(v.pk, 0)})
    return out


@require(SCHEDULE)
def index(request: HttpRequest) -> HttpResponse:
    """Visits by day: upcoming (today on) first, soonest first; then the latest past."""
    today = timezone.localdate()
    base = Visit.objects.select_related("request")
    upcoming = base.filter(visit_date__gte=today).order_by("visit_date", "start_time", "pk")
    past = base.filter(visit_date__lt=today).order_by("-visit_date", "-start_time")[:PAST_SHOWN]
    ready = VisitRequest.objects.filter(status__in=SCHEDULABLE, targets__verified=True,
                                        targets__visit__isnull=True).annotate(
        n=Count("targets")).order_by("received_on", "pk")
    return render(request, "schedule/index.html", {
        "upcoming": _visit_rows(upcoming), "past": _visit_rows(past),
        "ready": [{"vr": r, "n": r.n, "place": _place_of(r)} for r in ready],
        "today": _day_text(today),
    })


# -- villages ------------------------------------------------------------------------------


class VillageForm(forms.ModelForm):
    class Meta:
        model = Village
        fields = ("kecamatan", "name", "terrain")
        labels: ClassVar[dict[str, Any]] = {"kecamatan": gettext_lazy("Kecamatan"),
                  "name": gettext_lazy("Desa/kelurahan"), "terrain": gettext_lazy("Medan")}
        error_messages: ClassVar[dict[str, Any]] = {
            "kecamatan": {"required": gettext_lazy("Isi kecamatan.")},
            "name": {"required": gettext_lazy("Isi nama desa/kelurahan."),
                     "max_length": gettext_lazy("Nama terlalu panjang: paling banyak "
                                                "%(limit_value)d huruf.")}}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["terrain"] = forms.ChoiceField(
            label=gettext_lazy("Medan"), choices=[(t, plan.terrain_label(t))
                                                  for t in plan.TERRAINS],
            error_messages={"required": gettext_lazy("Pilih medan."),
                            "invalid_choice": gettext_lazy("Pilih medan dari daftar.")})

    def clean_kecamatan(self) -> str:
        name = regions.find_kecamatan(str(self.cleaned_data["kecamatan"]))
        if name is None:
            raise forms.ValidationError(_("Kecamatan tidak ada di Kabupaten Blitar: periksa "
                                          "ejaannya (mis. Kanigoro)."))
        return name

    def clean_name(self) -> str:
        return " ".join(str(self.cleaned_data["name"]).split())

    def validate_unique(self) -> None:
        """:meth:`clean` checks the one constraint (kecamatan and name, in any case) with
        an Indonesian message; Django's own check would add an English one."""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kec, name = data.get("kecamatan"), data.get("name")
        if kec and name:
            same = Village.objects.filter(kecamatan__iexact=kec, name__iexact=name)
            if self.instance.pk:
                same = same.exclude(pk=self.instance.pk)
            if same.exists():
                self.add_error("name", _("Desa ini sudah ada di kecamatan itu: ubah barisnya."))
        return data


@require("office.change_village")
def villages(request: HttpRequest, village_id: int | None = None) -> HttpResponse:
    """The villages' terrain (the estimate and team size depend on it): list, add, edit."""
    editing = get_object_or_404(Village, pk=village_id) if village_id else None
    form = VillageForm(request.POST or None, instance=editing)
    if request.method == "POST" and form.is_valid():
        try:
            village = form.save()
        except IntegrityError:
            form.add_error("name", _("Desa ini sudah ada di kecamatan itu: ubah barisnya."))
        else:
            audit(request, "village_terrain", subject=f"village {village.pk}",
                  detail=f"{village.kecamatan}/{village.name} terrain={village.terrain}")
            messages.success(request, _("Medan %(name)s disimpan.") % {"name": village.name})
            return redirect("schedule_villages")
    rows = [(v, plan.terrain_label(v.terrain))
            for v in Village.objects.order_by("kecamatan", "name")]
    return render(request, "schedule/villages.html", {
        "rows": rows, "form": form, "editing": editing,
        "kecamatan": sorted(regions.BLITAR_KECAMATAN),
    }, status=400 if request.method == "POST" else 200)


# -- officers ------------------------------------------------------------------------------


class OfficerForm(forms.Form):
    officer_id = forms.CharField(
        label=gettext_lazy("Kode petugas (sama dengan di kit)"), max_length=64,
        error_messages={"required": gettext_lazy("Isi kode petugas, mis. P-0001.")})
    name = forms.CharField(label=gettext_lazy("Nama petugas"), max_length=150,
                           error_messages={"required": gettext_lazy("Isi nama petugas.")})

    def clean_officer_id(self) -> str:
        value = str(self.cleaned_data["officer_id"]).strip()
        if not OFFICER_ID.fullmatch(value):
            raise forms.ValidationError(_("Kode petugas hanya huruf, angka, titik, garis bawah "
                                          "dan tanda hubung (mis. P-0001)."))
        if Officer.objects.filter(officer_id=value).exists():
            raise forms.ValidationError(_("Kode %(id)s sudah dipakai petugas lain.")
                                        % {"id": value})
        return value

    def clean_name(self) -> str:
        return " ".join(str(self.cleaned_data["name"]).split())


@require(SCHEDULE)
def officers(request: HttpRequest) -> HttpResponse:
    """The recording officers: list, add; deactivate (:func:`officer_active`)."""
    form = OfficerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        o = Officer.objects.create(officer_id=form.cleaned_data["officer_id"],
                                   name=form.cleaned_data["name"])
        audit(request, "officer", subject=f"officer {o.officer_id}", detail="added")
        messages.success(request, _("Petugas %(name)s ditambahkan.") % {"name": o.name})
        return redirect("schedule_officers")
    return render(request, "schedule/officers.html", {
        "rows": Officer.objects.order_by("-active", "name"), "form": form,
    }, status=400 if request.method == "POST" else 200)


@require(SCHEDULE)
def officer_active(request: HttpRequest, officer_id: str) -> HttpResponse:
    """POST: deactivate an officer (kept on past visits, not offered for new ones), or
    activate again."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    o = Officer.objects.filter(officer_id=officer_id).first()
    if o is None:
        raise Http404(_("Petugas tidak dikenal"))
    o.active = request.POST.get("active") == "1"
    o.save(update_fields=["active"])
    audit(request, "officer", subject=f"officer {o.officer_id}",
          detail="activated" if o.active else "deactivated")
    messages.success(request, (_("%(name)s aktif lagi.") if o.active else
                               _("%(name)s dinonaktifkan.")) % {"name": o.name})
    return redirect("schedule_officers")


urlpatterns: list[URLPattern] = [
    path("schedule/", index, name="schedule"),
    path("schedule/villages/", villages, name="schedule_villages"),
    path("schedule/villages/<int:village_id>/", villages, name="schedule_village"),
    path("schedule/officers/", officers, name="schedule_officers"),
    path("schedule/officers/<str:officer_id>/active/", officer_active,
         name="schedule_officer_active"),
    path("requests/<int:request_id>/visits/new/", visit_new, name="visit_new"),
    path("visits/<int:visit_id>/", visit_page, name="visit"),
    path("visits/<int:visit_id>/state/", visit_state, name="visit_state"),
    path("visits/<int:visit_id>/edit/", visit_edit, name="visit_edit"),
    path("visits/<int:visit_id>/send/", visit_send, name="visit_send"),
    path("visits/<int:visit_id>/cancel/", visit_cancel, name="visit_cancel"),
    path("visits/<int:visit_id>/move/", visit_move, name="visit_move"),
]
