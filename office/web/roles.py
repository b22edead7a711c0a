"""Who may do what in the office: five roles, each a Django ``Group``, in one table.

The data migration ``office.0004_roles_audit`` makes the groups from :data:`ROLES`; a
later migration that adds a permission to a role changes this table and calls
:func:`sync_groups` again. A view says what it needs with :func:`require`::

    @require("office.view_personal")
    def record(request, kit_id, record_id): ...

An anonymous visitor is sent to the login page; a logged-in user without the permission
gets a 403 page saying what is missing (and the refusal is written to the audit log).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

ALL = "*"

# role → the permissions ("app_label.codename") its members have; ALL: every permission.
ROLES: dict[str, tuple[str, ...]] = {
    # Fleet only: where kits are and how they are, never a resident's data.
    "viewer": ("office.view_fleet",),
    # Operators handle records: personal data and the export to SIAK.
    "operator": ("office.view_fleet", "office.view_personal", "office.export_records"),
    # Bidang Dafduk schedules the visits and assigns kits.
    # Bidang Dafduk also registers the request letters, verifies the targets, makes the
    # reply letters and hands kits out and takes them back.
    "scheduler": ("office.view_fleet", "office.schedule_visits", "office.register_requests",
                  "office.checkout_kits", "office.view_visit", "office.view_village",
                  "office.change_village"),
    # Kepala Dinas: all of the above, commands and remote wipe, the audit log, the alert
    # thresholds, the KTP-el clock's working-day table and setting, and the disposition
    # of request letters.
    "head": ("office.view_fleet", "office.view_personal", "office.export_records",
             "office.schedule_visits", "office.command_kit", "office.wipe_kit",
             "office.view_auditentry", "office.change_alertsettings",
             "office.add_workingdayoverride", "office.change_workingdayoverride",
             "office.delete_workingdayoverride", "office.view_workingdayoverride",
             "office.change_clocksettings", "office.register_requests",
             "office.disposition_requests", "office.checkout_kits", "office.view_visit",
             "office.view_village", "office.change_village"),
    # Everything, including managing users and roles.
    "admin": (ALL,),
}

# The role names people read (Bahasa Indonesia source strings; English in the locale file).
ROLE_NAMES: dict[str, Any] = {
    "viewer": _("Pemantau"),
    "operator": _("Operator rekaman"),
    "scheduler": _("Penjadwal (Bidang Dafduk)"),
    "head": _("Kepala Dinas"),
    "admin": _("Administrator"),
}


def role_name(role: str) -> str:
    """The display name of ``role`` in the active language (the code name if unknown)."""
    return str(ROLE_NAMES.get(role, role))


def roles_of(user: Any) -> list[str]:
    """The role (group) names of ``user``, sorted; empty for an anonymous visitor."""
    if not getattr(user, "is_authenticated", False):
        return []
    return sorted(g.name for g in user.groups.all())


def sync_groups(apps: Any, using: str) -> None:
    """Make each role's group hold exactly the permissions :data:`ROLES` gives it.

    For migrations (``apps`` is the migration state's registry). The permissions of the
    models migrated so far are created first: Django would only make them after the last
    migration, too late for a fresh database."""
    from django.contrib.auth.management import create_permissions
    from django.contrib.contenttypes.management import create_contenttypes

    for config in apps.get_app_configs():
        config.models_module = True
        create_contenttypes(config, verbosity=0, interactive=False, using=using, apps=apps)
        create_permissions(config, verbosity=0, interactive=False, using=using, apps=apps)
        config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    everything = permission_model.objects.using(using).all()
    for role, wanted in ROLES.items():
        group, _created = group_model.objects.using(using).get_or_create(name=role)
        if ALL in wanted:
            perms = list(everything)
        else:
            # A permission of a model a later migration makes is not there yet when an
            # earlier migration syncs: the sync after the last migration (post_migrate) adds it.
            perms = [perm for name in wanted
                     if (perm := _permission(permission_model, using, name)) is not None]
        group.permissions.set(perms)


def sync_after_migrate(sender: Any, apps: Any = None, using: str = "default",
                        **kwargs: Any) -> None:
    """After every ``migrate``: the groups match :data:`ROLES` again, and ``admin`` holds
    every permission, including those of models (and apps) migrated after ``0004``."""
    if getattr(sender, "label", "") != "office" or apps is None:
        return
    try:
        apps.get_model("auth", "Group")
        apps.get_model("office", "AuditEntry")
    except LookupError:  # migrated to before 0004 (or backwards): no roles yet
        return
    sync_groups(apps, using)



def _permission(permission_model: Any, using: str, name: str) -> Any:
    app_label, codename = name.split(".", 1)
    return permission_model.objects.using(using).filter(
        content_type__app_label=app_label, codename=codename).first()


def _forbidden(request: HttpRequest, perms: Iterable[str]) -> HttpResponse:
    from office.web.audit import audit

    wanted = ", ".join(perms)
    audit(request, "denied", subject=request.get_full_path()[:200], detail=wanted)
    return render(request, "accounts/forbidden.html", {
        "needed": wanted, "roles": [role_name(r) for r in roles_of(request.user)],
    }, status=403)


def require(*perms: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A view decorator: the logged-in user must have every permission in ``perms``.

    Anonymous visitors are redirected to the login page (and come back after it);
    others without the permission get the 403 page and an audit entry ``denied``.
    Works on plain and ``async`` views (and on ``View.as_view()``)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        if iscoroutinefunction(view):
            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                user = await request.auser()
                if not user.is_authenticated:
                    return redirect_to_login(request.get_full_path())
                if not await sync_to_async(user.has_perms)(perms):
                    return await sync_to_async(_forbidden)(request, perms)
                return await view(request, *args, **kwargs)

            return async_wrapper

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not request.user.has_perms(perms):
                return _forbidden(request, perms)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


class RequireMixin:
    """The same for class-based views: ``required = ("office.view_fleet",)``."""

    required: tuple[str, ...] = ()

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        view = super().as_view(**initkwargs)  # type: ignore[misc]
        return require(*cls.required)(view)
