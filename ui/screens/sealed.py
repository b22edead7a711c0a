"""Sealed: the record is stored, encrypted to the office, and queued for upload."""

from __future__ import annotations

from kivy.properties import StringProperty

from ui.screens.base import KioskScreen, load_kv


class SealedScreen(KioskScreen):
    detail = StringProperty("")

    def show(self, outcome_label: str, size: int) -> None:
        self.detail = self.app.tr("sealed.detail", outcome=outcome_label,
                                  size=f"{size / 1024:.0f}")


load_kv(__file__)
