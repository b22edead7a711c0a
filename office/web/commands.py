"""Commands from the kit page: ping, self-test, lock and wipe; and revoking a lost kit.

A command is signed with the office's key (``office-sign.key`` in
``settings.OFFICE_KEYS_DIR``) exactly as ``jaranijo office command`` signs it, queued in the
``commands`` table, and sent by the running ingest (``office serve``) when the kit is
online; the kit's answer lands in the same row and shows in the kit's event log and in
the page's command list, which refreshes itself while an answer is awaited.

Who may do what (:mod:`office.web.roles`): ping, self-test and lock need
``office.command_kit``; wipe and revocation need ``office.wipe_kit`` (Kepala Dinas) and a
confirmation form where the kit's id is typed again. Every command and revocation is
written to the audit log.

How long a command stays valid: ping and self-test an hour (an answer days later says
nothing about the kit now); lock and wipe seven days, the protocol's longest
(``command_max_lifetime_s``), so a kit out of coverage still gets them when it is back.

**Revocation** is for a kit reported lost or stolen. Its broker login is removed and its
ACL entry denies it every topic (:meth:`office.broker.BrokerAccounts.revoke`, on the broker
folder ``settings.BROKER_DIR``); Mosquitto rereads both on ``SIGHUP`` and drops the kit's
connection. A record it still manages to upload is held in quarantine for review, never
taken as a record (:mod:`office.ingest`). A revoked kit can no longer receive commands
either, so the page says to send *wipe* first while the kit may still come online. A kit
found again is provisioned anew by a technician (new broker password): a revocation is
never undone from the page.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from office.models import AuditEntry, Command, Kit, Revocation
from office.web.audit import audit
from office.web.roles import require

log = logging.getLogger("office.web.commands")

HOUR_S, WEEK_S = 3600, 7 * 86400
# name → (permission, lifetime in seconds, label)
PAGE_COMMANDS: dict[str, tuple[str, int, Any]] = {
    "ping": ("office.command_kit", HOUR_S, gettext_lazy("Ping")),
    "selftest": ("office.command_kit", HOUR_S, gettext_lazy("Uji mandiri")),
    "lock": ("office.command_kit", WEEK_S, gettext_lazy("Kunci")),
    "wipe": ("office.wipe_kit", WEEK_S, gettext_lazy("Hapus kunci")),
}
RECENT = 10  # commands listed on the kit page


class CommandsUnavailable(Exception):
    """The web app has no office signing key: it can show commands, not send them."""


@functools.lru_cache(maxsize=1)
def _signing_key(directory: str) -> tuple[Any, Any]:
    """The office's signing key, or the reason it cannot be read: read once per folder
    (the kit page asks on every render and poll, and a broken key is logged once)."""
    from nacl.signing import SigningKey

    from sync.envelope import read_key_file
    from sync.errors import KeyFileError

    try:
        return SigningKey(read_key_file(Path(directory) / "office-sign.key",
                                        "office-sign-secret", secret=True)), None
    except KeyFileError as exc:
        log.warning("commands from the web app are off: %s", exc.text("en"))
        return None, exc


def signing_key() -> Any:
    if not settings.OFFICE_KEYS_DIR:
        raise CommandsUnavailable(_("Folder kunci kantor tidak diatur (office web --keys)."))
    key, problem = _signing_key(str(settings.OFFICE_KEYS_DIR))
    if key is None:
        lang = "en" if (translation.get_language() or "id").startswith("en") else "id"
        raise CommandsUnavailable(problem.text(lang))
    return key


def commands_available() -> str:
    """"" when the page can send commands, else why not (for the page)."""
    try:
        signing_key()
    except CommandsUnavailable as exc:
        return str(exc)
    return ""


def queue_command(kit_id: str, name: str, *, username: str = "",
                  request: HttpRequest | None = None) -> Command:
    """Sign ``name`` for ``kit_id``, queue it for the ingest to send, audit it."""
    from office.outbound import make_command

    _permission, lifetime, _label = PAGE_COMMANDS[name]
    command, payload = make_command(kit_id, name, {}, signing_key(), lifetime_s=lifetime)
    row = Command.objects.create(
        command_id=command.command_id, kit_id=kit_id, name=name, args="{}",
        issued_at=command.issued_at, expires_at=command.expires_at, payload=payload,
        queued_at=time.time())
    audit(request, "wipe_kit" if name == "wipe" else "command_kit", subject=kit_id,
          detail=f"{name} {command.command_id}", username=username or None)
    log.info("command %s (%s) queued for %s from the web app", name, command.command_id,
             kit_id)
    return row


def result_text(command: Command) -> str:
    """A command's answer as staff read it: the kit's reason when it failed, else its
    result as ``key: value`` pairs (ids and figures only: no command returns personal data)."""
    if command.result_at is None:
        live = command.expires_at > time.time()
        if command.sent_at is None:
            return _("menunggu kit daring") if live else _("kedaluwarsa sebelum terkirim")
        return _("terkirim, menunggu jawaban") if live else _("kedaluwarsa tanpa jawaban")
    try:
        answer = json.loads(command.result or "{}")
    except ValueError:
        answer = {}
    if not command.result_ok:
        return _("gagal: %(why)s") % {"why": str(answer.get("why") or "?")[:200]}
    res = answer.get("res") if isinstance(answer, dict) else None
    if not isinstance(res, dict) or not res:
        return _("berhasil")
    if command.name == "ping":
        return _("kit menjawab; %(n)s rekaman menunggu") % {"n": res.get("outbox", "?")}
    if command.name == "lock":
        return _("kios terkunci")
    if command.name == "wipe":
        return _("dihapus: %(s)s slot PIN, %(d)s draf, %(i)s penugasan") % {
            "s": res.get("slots", "?"), "d": res.get("drafts", "?"), "i": res.get("inbox", "?")}
    labels = {"store": _("penyimpanan"), "gnss": "GNSS", "modem": _("modem"),
              "battery": _("baterai"), "disk_free_mib": _("disk kosong (MiB)"),
              "keys": _("kunci"), "problems": _("masalah"), "failed": _("gagal")}
    # The per-check maps (``checks``, ``notes``) are the kit page's detail, not the summary.
    return " · ".join(f"{labels.get(k, k)}: {v}" for k, v in sorted(res.items())
                      if v not in ("", None) and not isinstance(v, dict | list))[:300]


def command_rows(kit_id: str) -> list[dict[str, Any]]:
    """The kit's latest commands with who asked, when, and the answer."""
    rows = list(Command.objects.filter(kit_id=kit_id).defer("payload")
                .order_by("-queued_at")[:RECENT])
    # Who asked: the audit entry each command wrote ("name id"), for these rows only.
    who = {e.detail.rpartition(" ")[2]: e.username for e in AuditEntry.objects.filter(
        action__in=("command_kit", "wipe_kit"), subject=kit_id,
        detail__in=[f"{c.name} {c.command_id}" for c in rows]).only("username", "detail")}
    now = time.time()
    out = []
    for c in rows:
        if c.result_at is not None:
            state = "ok" if c.result_ok else "failed"
        else:  # awaited while it may still run; an expired one is answered by nobody
            state = "pending" if c.expires_at > now else "expired"
        out.append({"id": c.command_id, "name": c.name, "state": state,
                    "label": str(PAGE_COMMANDS[c.name][2]) if c.name in PAGE_COMMANDS
                    else c.name, "by": who.get(c.command_id, ""),
                    "queued": timezone.localtime(_aware(c.queued_at)),
                    "answered": None if c.result_at is None
                    else timezone.localtime(_aware(c.result_at)),
                    "result": result_text(c)})
    return out


def _aware(t: float) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, tz=dt.UTC)


def commands_context(request: HttpRequest, kit_id: str) -> dict[str, Any]:
    """What the kit page's command section shows (also its own partial)."""
    rows = command_rows(kit_id)
    user = request.user
    revocation = Revocation.objects.filter(kit_id=kit_id).first()
    return {
        "kit_id": kit_id, "commands": rows,
        "pending": any(r["state"] == "pending" for r in rows),
        "unavailable": commands_available(),
        "can_command": user.has_perm("office.command_kit"),
        "can_wipe": user.has_perm("office.wipe_kit"),
        "revocation": revocation,
        "buttons": [(name, PAGE_COMMANDS[name][2]) for name in ("ping", "selftest", "lock")],
    }


def _kit_or_404(kit_id: str) -> Kit:
    kit = Kit.objects.filter(kit_id=kit_id).first()
    if kit is None:
        raise Http404(_("Kit tidak dikenal"))
    return kit


def _section(request: HttpRequest, kit_id: str) -> HttpResponse:
    return render(request, "commands/section.html", commands_context(request, kit_id))


@require("office.view_fleet")
def commands_section(request: HttpRequest, kit_id: str) -> HttpResponse:
    """The command list alone: the kit page polls it while an answer is awaited."""
    _kit_or_404(kit_id)
    return _section(request, kit_id)


@require("office.command_kit")
def send_command(request: HttpRequest, kit_id: str, name: str) -> HttpResponse:
    """POST: ping, selftest or lock (wipe has its own confirmation page)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    _kit_or_404(kit_id)
    if name not in ("ping", "selftest", "lock"):
        raise Http404(_("Perintah tidak dikenal"))
    problem = _cannot_send(kit_id)
    if problem:
        messages.error(request, problem)
    else:
        queue_command(kit_id, name, request=request)
        messages.success(request, _("Perintah %(n)s diantrekan; kit menjalankannya saat "
                                    "daring.") % {"n": PAGE_COMMANDS[name][2]})
    if request.headers.get("HX-Request"):
        return _section(request, kit_id)
    return redirect(reverse("kit", args=[kit_id]) + "#commands")


def _cannot_send(kit_id: str) -> str:
    if Revocation.objects.filter(kit_id=kit_id).exists():
        return _("Kit ini sudah dicabut: kit tidak dapat menerima perintah lagi.")
    return commands_available()


class ConfirmKitForm(forms.Form):
    """Type the kit's id again: a wipe or a revocation is never one careless click."""

    confirm = forms.CharField(label=gettext_lazy("Ketik kode kit untuk memastikan"),
                              max_length=64, strip=True)

    def __init__(self, *args: Any, kit_id: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kit_id = kit_id

    def clean_confirm(self) -> str:
        value = str(self.cleaned_data["confirm"])
        if value != self.kit_id:
            raise forms.ValidationError(
                _("Kode kit tidak cocok. Ketik persis: %(kit)s") % {"kit": self.kit_id})
        return value


class RevokeForm(ConfirmKitForm):
    reason = forms.CharField(
        label=gettext_lazy("Alasan (mis. hilang saat kunjungan, dicuri; nomor laporan polisi)"),
        min_length=10, max_length=500, widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": gettext_lazy("Tuliskan alasannya."),
                        "min_length": gettext_lazy("Alasan terlalu singkat: minimal 10 "
                                                   "huruf.")})


@require("office.wipe_kit")
def wipe_page(request: HttpRequest, kit_id: str) -> HttpResponse:
    """GET: what a wipe does, and the confirmation form; POST: queue the wipe."""
    _kit_or_404(kit_id)
    problem = _cannot_send(kit_id)
    form = ConfirmKitForm(request.POST or None, kit_id=kit_id)
    if request.method == "POST" and not problem and form.is_valid():
        queue_command(kit_id, "wipe", request=request)
        messages.success(request, _("Perintah hapus kunci diantrekan untuk %(kit)s; kit "
                                    "menjalankannya saat daring (berlaku 7 hari).")
                         % {"kit": kit_id})
        return redirect(reverse("kit", args=[kit_id]) + "#commands")
    return render(request, "commands/wipe.html", {"kit_id": kit_id, "form": form,
                                                  "problem": problem},
                  status=400 if request.method == "POST" else 200)


def revoke(kit_id: str, reason: str, *, username: str, request: HttpRequest | None = None,
           broker_dir: str | None = None) -> Revocation:
    """Record the revocation and take the kit's login off the broker (in ``broker_dir``,
    by default the web app's ``BROKER_DIR``); what could not be done is kept in
    ``broker_error`` and said on the page. Idempotent: again, it retries the broker."""
    broker_dir = broker_dir or settings.BROKER_DIR
    from office.broker import BrokerAccounts

    revocation, created = Revocation.objects.get_or_create(
        kit_id=kit_id, defaults={"revoked_at": time.time(), "revoked_by": username,
                                 "reason": reason})
    if created:
        audit(request, "revoke_kit", subject=kit_id, detail="reported lost",
              username=username or None)
        _mark_offline(kit_id, revocation.revoked_at)
    files_done, note = False, ""
    if broker_dir:
        try:
            note = BrokerAccounts(Path(broker_dir)).revoke(kit_id)
            files_done = True
        except OSError as exc:
            note = f"the broker's files could not be changed: {exc}"
    else:
        note = ("the web app does not manage the broker (office web --broker): on the "
                f"broker's machine run 'jaranijo office revoke {kit_id} --db DB --broker DIR "
                "--reason ...'")
    revocation.broker_error = note
    if files_done:
        revocation.broker_done_at = revocation.broker_done_at or time.time()
        log.warning("kit %s revoked: broker login removed and ACL denies it%s", kit_id,
                    f" ({note})" if note else "")
    else:
        log.warning("kit %s revoked in the office; broker not done: %s", kit_id, note)
    revocation.save(update_fields=["broker_error", "broker_done_at"])
    return revocation


def _mark_offline(kit_id: str, at: float) -> None:
    """The kit is shown offline, reason ``revoked``, from the moment of revocation: the
    broker drops it, and its last will cannot tell the office (the ACL now denies the kit
    its own status topic, will included)."""
    kit = Kit.objects.filter(kit_id=kit_id).first()
    if kit is None:
        return
    try:
        status = json.loads(kit.status or "{}")
    except ValueError:
        status = {}
    status = {**(status if isinstance(status, dict) else {}), "online": False,
              "reason": "revoked"}
    Kit.objects.filter(kit_id=kit_id).update(online=0, status=json.dumps(status), status_at=at)


@require("office.wipe_kit")
def revoke_page(request: HttpRequest, kit_id: str) -> HttpResponse:
    _kit_or_404(kit_id)
    revocation = Revocation.objects.filter(kit_id=kit_id).first()
    form = RevokeForm(request.POST or None, kit_id=kit_id)
    if request.method == "POST" and form.is_valid():
        revocation = revoke(kit_id, form.cleaned_data["reason"],
                            username=request.user.get_username(), request=request)
        if revocation.broker_done_at is None:
            messages.warning(request, _("Kit dicabut di kantor, tetapi broker belum: "
                                        "%(why)s") % {"why": revocation.broker_error})
        elif revocation.broker_error:
            messages.warning(request, _("Kit dicabut: login broker dihapus dari berkasnya; "
                                        "%(why)s") % {"why": revocation.broker_error})
        else:
            messages.success(request, _("Kit %(kit)s dicabut: login broker dihapus, "
                                        "unggahannya ditahan untuk diperiksa.")
                             % {"kit": kit_id})
        return redirect(reverse("kit", args=[kit_id]) + "#commands")
    return render(request, "commands/revoke.html", {
        "kit_id": kit_id, "form": form, "revocation": revocation,
    }, status=400 if request.method == "POST" else 200)


urlpatterns: list[URLPattern] = [
    path("kits/<str:kit_id>/commands/", commands_section, name="kit-commands"),
    path("kits/<str:kit_id>/commands/<str:name>", send_command, name="kit-command"),
    path("kits/<str:kit_id>/wipe/", wipe_page, name="kit-wipe"),
    path("kits/<str:kit_id>/revoke/", revoke_page, name="kit-revoke"),
]
