"""The office as a Django application: its models are the office database (office/models.py)."""

from __future__ import annotations

from django.apps import AppConfig


class OfficeConfig(AppConfig):
    name = "office"
    label = "office"
    verbose_name = "Jaran Ijo: kantor"
    default_auto_field = "django.db.models.BigAutoField"
