"""The office as a Django application: its models are the office database (office/models.py)."""

from __future__ import annotations

from django.apps import AppConfig


class OfficeConfig(AppConfig):
    name = "office"
    label = "office"
    verbose_name = "Jaran Ijo: kantor"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from office.web.roles import sync_after_migrate

        # After every migrate the role groups match office.web.roles.ROLES again.
        post_migrate.connect(sync_after_migrate, dispatch_uid="office.roles.sync")
