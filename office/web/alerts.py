"""The alerts page: what needs the office's attention now, and who has seen to it.

``/alerts/`` (``office.view_fleet``) lists the open alerts, unacknowledged ones first and
the newest first, then those cleared today; the list refreshes itself every 5 s (htmx
``hx-get`` of ``/alerts/list``), so an alert raised by ``office serve`` (or acknowledged by
a colleague) appears without a reload. "Akui" posts to ``/alerts/<id>/ack`` (CSRF-checked):
the alert keeps who and when, and the audit log gets an ``ack_alert`` entry; the first
acknowledgement stands. ``/alerts/settings`` (``office.change_alertsettings``: Kepala Dinas,
administrators) edits the thresholds; saving is audited with what changed. The rules are
:mod:`office.alerts`; the pages show kit ids and figures only, no personal data.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from office import alerts as rules
from office.models import Alert, AlertSettings
from office.presence import day_start
from office.web.audit import audit
from office.web.fleet import PRESENCE_LABELS, age_text
from office.web.roles import require
from office.web.wib import local as _local

# The kinds as staff read them (Indonesian source strings; English in the locale file).
KIND_LABELS: dict[str, Any] = {
    rules.LOW_BATTERY: gettext_lazy("Baterai lemah"),
    rules.OFFLINE_DURING_VISIT: gettext_lazy("Luring saat jam kunjungan"),
    rules.NO_FIX: gettext_lazy("Tanpa fix GNSS"),
    rules.RECORDS_WAITING: gettext_lazy("Rekaman lama menunggu"),
    rules.FAILED_SELFTEST: gettext_lazy("Uji mandiri gagal"),
    rules.NO_TPM: gettext_lazy("Tanpa TPM (mode lebih lemah)"),
    rules.NOT_RETURNED: gettext_lazy("Kit belum dikembalikan"),
}
CLEARED_MAX = 200  # today's cleared alerts shown at most


def kind_label(kind: str) -> str:
    return str(KIND_LABELS.get(kind, kind))


def detail_text(kind: str, f: dict[str, Any]) -> str:
    """An alert's figures as a sentence in the active language."""
    try:
        if kind == rules.LOW_BATTERY:
            return _("%(p)d %% (ambang %(t)d %%), tidak mengisi") % {
                "p": f["percent"], "t": f["threshold"]}
        if kind == rules.NO_FIX:
            if f.get("fix_age_min") is None:
                return _("belum ada fix sejak menyala %(m)d mnt lalu (ambang %(t)d mnt)") % {
                    "m": f["uptime_min"], "t": f["threshold_min"]}
            return _("fix terakhir %(m)d mnt lalu (ambang %(t)d mnt)") % {
                "m": f["fix_age_min"], "t": f["threshold_min"]}
        if kind == rules.RECORDS_WAITING:
            return _("%(n)d rekaman, tertua %(h)s jam (ambang %(t)d jam)") % {
                "n": f["count"], "h": f"{f['oldest_h']:.1f}", "t": f["threshold_h"]}
        if kind == rules.OFFLINE_DURING_VISIT:
            seen = (_("terakhir terdengar %(m)d mnt lalu") % {"m": f["seen_min"]}
                    if f.get("seen_min") is not None else _("belum pernah terdengar"))
            return _("%(state)s, %(n)d penugasan hari ini, %(seen)s") % {
                "state": _(PRESENCE_LABELS.get(f["presence"], f["presence"])),
                "n": f["assignments"], "seen": seen}
        if kind == rules.FAILED_SELFTEST:
            parts = []
            if f.get("ok") is False:
                parts.append(_("gagal") + (f" ({f['why']})" if f.get("why") else ""))
            for key, label in (("store", _("penyimpanan")), ("keys", _("kunci")),
                               ("problems", _("masalah"))):
                if f.get(key):
                    parts.append(f"{label}: {f[key]}")
            return "; ".join(parts)
        if kind == rules.NO_TPM:
            return _("kunci disimpan perangkat lunak, tanpa TPM")
        if kind == rules.NOT_RETURNED:
            due = dt.date.fromisoformat(f["due_on"])
            return _("seharusnya kembali %(d)s, terlambat %(n)d hari") % {
                "d": f"{due:%d-%m-%Y}", "n": f["days"]}
    except (KeyError, TypeError, ValueError):
        pass
    return ", ".join(f"{k}={v}" for k, v in sorted(f.items()))


@dataclass(frozen=True)
class AlertRow:
    """One line of the list."""

    id: int
    kit_id: str
    kind: str
    kind_label: str
    since: str
    raised_at: dt.datetime
    detail: str
    open: bool
    cleared: str
    acked: bool
    acked_by: str
    acked_at: dt.datetime | None


def _row(a: Alert, now: float) -> AlertRow:
    return AlertRow(
        id=int(a.pk), kit_id=a.kit_id, kind=a.kind, kind_label=kind_label(a.kind),
        since=age_text(now - a.raised_at), raised_at=_local(a.raised_at),
        detail=detail_text(a.kind, rules.detail_figures(a)), open=a.cleared_at is None,
        cleared="" if a.cleared_at is None else age_text(now - a.cleared_at),
        acked=a.acked_at is not None, acked_by=a.acked_by,
        acked_at=None if a.acked_at is None else _local(a.acked_at))


def alert_rows(now: float) -> tuple[list[AlertRow], list[AlertRow]]:
    """The open alerts (unacknowledged first, newest first), and today's cleared ones."""
    open_ = sorted(Alert.objects.filter(cleared_at__isnull=True),
                   key=lambda a: (a.acked_at is not None, -a.raised_at))
    cleared = Alert.objects.filter(cleared_at__gte=day_start(now)).order_by(
        "-cleared_at")[:CLEARED_MAX]
    return [_row(a, now) for a in open_], [_row(a, now) for a in cleared]


def unacknowledged() -> int:
    return Alert.objects.filter(cleared_at__isnull=True, acked_at__isnull=True).count()


def nav(request: HttpRequest) -> dict[str, Any]:
    """Context processor (``settings.TEMPLATES``): the nav's count of open alerts nobody
    has acknowledged, for users who may see the fleet."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.has_perm("office.view_fleet"):
        return {}
    return {"open_alerts": unacknowledged()}


def _list_context(now: float) -> dict[str, Any]:
    open_, cleared = alert_rows(now)
    return {"open": open_, "cleared": cleared, "today": f"{_local(now):%Y-%m-%d}",
            "unacked": sum(1 for r in open_ if not r.acked)}


@require("office.view_fleet")
def alerts_page(request: HttpRequest) -> HttpResponse:
    s = rules.current_settings()
    return render(request, "alerts/index.html", {**_list_context(time.time()), "s": s})


@require("office.view_fleet")
def alerts_list(request: HttpRequest) -> HttpResponse:
    """The list alone, for the page's 5-second refresh (and after an acknowledgement)."""
    return render(request, "alerts/list.html", _list_context(time.time()))


@require("office.view_fleet")
def ack(request: HttpRequest, alert_id: int) -> HttpResponse:
    """Acknowledge one alert (POST; the CSRF middleware refuses one without the token).
    The first acknowledgement is kept; a second changes nothing and is not logged."""
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    alert = Alert.objects.filter(pk=alert_id).first()
    if alert is None:
        raise Http404(_("Peringatan tidak dikenal"))
    who = request.user.get_username()
    if Alert.objects.filter(pk=alert_id, acked_at__isnull=True).update(
            acked_at=time.time(), acked_by=who[:150]):
        audit(request, "ack_alert", subject=f"{alert.kit_id}:{alert.kind}",
              detail=f"alert {alert.pk}, raised {_local(alert.raised_at):%Y-%m-%d %H:%M}")
    if request.headers.get("HX-Request") == "true":
        return render(request, "alerts/list.html", _list_context(time.time()))
    return redirect("alerts")


# -- the settings ----------------------------------------------------------------------------
def _bounded(label: Any, low: int, high: int, message: Any, help_text: Any) -> forms.IntegerField:
    errors = {"required": gettext_lazy("Isi kolom ini."),
              "invalid": gettext_lazy("Isi dengan bilangan bulat, tanpa koma atau satuan."),
              "min_value": message, "max_value": message}
    return forms.IntegerField(label=label, min_value=low, max_value=high,
                              error_messages=errors, help_text=help_text)


class AlertSettingsForm(forms.ModelForm):  # type: ignore[type-arg]
    """The thresholds, each bounded to what makes sense in the field; 0 turns a threshold's
    alert off. Visit hours are WIB, the end hour not included (17 = until 17.00)."""

    battery_percent = _bounded(
        gettext_lazy("Baterai di bawah (%)"), 0, 90,
        gettext_lazy("Ambang baterai harus 1–90 %%, atau 0 untuk mematikan."),
        gettext_lazy("0 = mati. Peringatan hilang saat baterai 5 poin di atas ambang."))
    no_fix_minutes = _bounded(
        gettext_lazy("Tanpa fix GNSS selama (menit)"), 0, 1440,
        gettext_lazy("Isi 1–1440 menit (24 jam), atau 0 untuk mematikan."),
        gettext_lazy("0 = mati. Hanya untuk kit yang daring."))
    waiting_hours = _bounded(
        gettext_lazy("Rekaman menunggu lebih dari (jam)"), 0, 168,
        gettext_lazy("Isi 1–168 jam (7 hari), atau 0 untuk mematikan."),
        gettext_lazy("0 = mati."))
    visit_start_hour = _bounded(
        gettext_lazy("Jam kunjungan mulai (WIB)"), 0, 23,
        gettext_lazy("Jam mulai harus 0–23."), gettext_lazy("Mis. 7 untuk 07.00."))
    visit_end_hour = _bounded(
        gettext_lazy("Jam kunjungan selesai (WIB)"), 1, 24,
        gettext_lazy("Jam selesai harus 1–24 (24 = tengah malam)."),
        gettext_lazy("Mis. 17: sampai pukul 17.00."))

    class Meta:
        model = AlertSettings
        fields = ("battery_percent", "no_fix_minutes", "waiting_hours", "visit_start_hour",
                  "visit_end_hour", "offline_during_visit", "failed_selftest", "no_tpm")
        labels: ClassVar[dict[str, Any]] = {
            "offline_during_visit": gettext_lazy(
                "Peringatkan kit luring saat jam kunjungan (ada penugasan hari ini)"),
            "failed_selftest": gettext_lazy("Peringatkan uji mandiri yang gagal"),
            "no_tpm": gettext_lazy("Peringatkan kit tanpa TPM (mode lebih lemah)"),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("visit_start_hour"), data.get("visit_end_hour")
        if start is not None and end is not None and end <= start:
            self.add_error("visit_end_hour", _(
                "Jam selesai harus sesudah jam mulai (%(start)d): isi %(next)d atau lebih.")
                % {"start": start, "next": start + 1})
        return data


@require("office.change_alertsettings")
def settings_page(request: HttpRequest) -> HttpResponse:
    current = rules.current_settings()
    before = {name: getattr(current, name) for name in AlertSettingsForm.Meta.fields}
    form = AlertSettingsForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        changes = ", ".join(f"{name}: {before[name]} → {getattr(saved, name)}"
                            for name in AlertSettingsForm.Meta.fields
                            if before[name] != getattr(saved, name))
        audit(request, "alert_settings", subject="alert_settings",
              detail=changes or "no change")
        return redirect("/alerts/settings?saved=1")
    return render(request, "alerts/settings.html", {
        "form": form, "saved": request.method == "GET" and request.GET.get("saved") == "1"})


urlpatterns: list[URLPattern] = [
    path("alerts/", alerts_page, name="alerts"),
    path("alerts/list", alerts_list, name="alerts-list"),
    path("alerts/<int:alert_id>/ack", ack, name="alert-ack"),
    path("alerts/settings", settings_page, name="alert-settings"),
]
