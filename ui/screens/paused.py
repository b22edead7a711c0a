"""Paused: the recording is kept as an encrypted draft; resume now or later from home."""

from __future__ import annotations

from kivy.properties import StringProperty

from ui.screens.base import KioskScreen, load_kv


class PausedScreen(KioskScreen):
    target_id = StringProperty("")
    who = StringProperty("")

    def resume(self) -> None:
        self.app.start_recording(self.target_id)


load_kv(__file__)
