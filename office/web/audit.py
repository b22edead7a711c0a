"""The office's audit log: one helper that writes it, and the page that reads it.

Every view that shows personal data calls :func:`audit` (who, what, when, from where);
logins, failed logins, lockouts, logouts and refused pages are written by the receivers
below. The log is append-only (:class:`office.models.AuditEntry`); the page ``/audit/``
is for Kepala Dinas and administrators (``office.view_auditentry``), and looking at it is
itself written to the log.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.paginator import Paginator
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from office.web.roles import require, role_name, roles_of

PAGE_SIZE = 50

# What each action means, for the page (Indonesian source strings; English in the locale).
ACTIONS: dict[str, Any] = {
    "login": _("Masuk"),
    "login_failed": _("Gagal masuk"),
    "lockout": _("Dikunci (terlalu banyak gagal)"),
    "logout": _("Keluar"),
    "denied": _("Akses ditolak"),
    "csrf_failure": _("Ditolak: formulir tanpa token CSRF yang sah"),
    "bad_session": _("Ditolak: cookie sesi palsu atau kedaluwarsa"),
    "view_audit": _("Melihat log audit"),
    "view_personal": _("Melihat data pribadi"),
    "view_quarantine": _("Membuka rekaman karantina"),
    "export_records": _("Mengekspor rekaman"),
    "review_record": _("Mengubah status pemeriksaan rekaman"),
    "create_user": _("Membuat pengguna"),
    "ack_alert": _("Mengakui peringatan"),
    "alert_settings": _("Mengubah pengaturan peringatan"),
    "command_kit": _("Mengirim perintah ke kit"),
    "wipe_kit": _("Menghapus kunci kit dari jauh"),
    "revoke_kit": _("Mencabut kit yang hilang"),
    "ktp_issued": _("Menandai KTP-el dicetak/diserahkan"),
    "clock_days": _("Mengubah tabel hari kerja"),
    "register_request": _("Mencatat surat permohonan"),
    "disposition_request": _("Mendisposisi surat permohonan"),
    "import_targets": _("Mengimpor daftar sasaran"),
    "edit_target": _("Menambah atau mengubah sasaran"),
    "verify_targets": _("Memverifikasi sasaran"),
    "schedule_visit": _("Menjadwalkan kunjungan"),
    "change_visit": _("Mengubah kunjungan"),
    "send_assignment": _("Mengirim penugasan ke kit"),
    "cancel_visit": _("Membatalkan kunjungan"),
    "move_targets": _("Memindah sasaran ke kunjungan lain"),
    "village_terrain": _("Mengubah medan desa"),
    "officer": _("Mengelola data petugas"),
    "reply_draft": _("Membuat draf surat balasan"),
    "reply_signed": _("Mengunggah surat balasan bertanda tangan"),
    "reply_sent": _("Menandai surat balasan terkirim"),
    "checkout_kit": _("Menyerahkan kit"),
    "return_kit": _("Menerima kembali kit"),
}


def client_ip(request: HttpRequest | None) -> str:
    """The address the request came from (the office app is reached directly, without a
    proxy, so ``X-Forwarded-For`` is not trusted)."""
    if request is None:
        return ""
    return str(request.META.get("REMOTE_ADDR") or "")[:45]


def audit(request: HttpRequest | None, action: str, subject: str = "", detail: str = "", *,
          username: str | None = None) -> None:
    """Write one audit entry: the request's user (or ``username``, e.g. the name tried in
    a failed login), their roles, ``action``, its ``subject``, the time, the client's
    address and browser. Never write a password or a resident's data into ``detail``."""
    from office.models import AuditEntry

    user = getattr(request, "user", None) if request is not None else None
    if username is None:
        username = user.get_username() if user is not None and user.is_authenticated else ""
    agent = str(request.META.get("HTTP_USER_AGENT", "")) if request is not None else ""
    AuditEntry(username=username[:150], roles=",".join(roles_of(user))[:200],
               action=action[:40], subject=subject[:200], ip=client_ip(request),
               user_agent=agent[:120], detail=detail).save()


@receiver(user_logged_in, dispatch_uid="office.audit.login")
def _logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None:
        request.user = user
    audit(request, "login", username=user.get_username())


@receiver(user_login_failed, dispatch_uid="office.audit.login_failed")
def _login_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None,
                  **kwargs: Any) -> None:
    # Django has already masked the password in ``credentials``; only the name is kept.
    tried = str(credentials.get("username") or "")
    locked = bool(getattr(request, "axes_locked_out", False))
    audit(request, "login_failed", username=tried,
          detail="locked out" if locked else "wrong username or password")


@receiver(user_logged_out, dispatch_uid="office.audit.logout")
def _logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit(request, "logout", username=user.get_username() if user is not None else "")


def _connect_axes() -> None:
    from axes.signals import user_locked_out

    def locked_out(sender: Any, request: HttpRequest | None = None, username: str = "",
                   ip_address: str = "", **kwargs: Any) -> None:
        audit(request, "lockout", username=str(username or ""),
              detail="5 wrong passwords: refused for the cool-off time")

    user_locked_out.connect(locked_out, dispatch_uid="office.audit.lockout", weak=False)


_connect_axes()


@require("office.view_auditentry")
def audit_page(request: HttpRequest) -> HttpResponse:
    """The log, newest first, 50 a page, filtered by user and by action."""
    from office.models import AuditEntry

    who = request.GET.get("user", "").strip()
    action = request.GET.get("action", "").strip()
    entries = AuditEntry.objects.all()
    if who:
        entries = entries.filter(username=who)
    if action:
        entries = entries.filter(action=action)
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    audit(request, "view_audit", subject="/audit/",
          detail=f"user={who} action={action} page={page.number}")
    rows = [{"entry": e, "action": ACTIONS.get(e.action, e.action),
             "roles": ", ".join(role_name(r) for r in e.roles.split(",") if r)}
            for e in page.object_list]
    query = urlencode({k: v for k, v in (("user", who), ("action", action)) if v})
    return render(request, "accounts/audit.html", {
        "page": page, "rows": rows, "who": who, "action": action, "query": query,
        "actions": sorted(((code, str(label)) for code, label in ACTIONS.items()),
                          key=lambda item: item[1]),
    })
