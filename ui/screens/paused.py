"""Paused: the recording is kept as an encrypted draft; resume now, or from home until the
draft expires (the screen says when)."""

from __future__ import annotations

from kivy.properties import StringProperty

from ui.screens.base import KioskScreen, load_kv
from ui.screens.home import until_text


class PausedScreen(KioskScreen):
    target_id = StringProperty("")
    who = StringProperty("")
    detail = StringProperty("")

    def refresh(self) -> None:
        # Drafts expire (WorkflowSettings.draft_lifetime_hours): "any time" would be untrue.
        draft = self.kiosk.row(self.target_id).draft if self.target_id else None
        until = until_text(draft.expires_at) if draft is not None else "?"
        self.detail = self.app.tr("paused.detail", until=until)

    def resume(self) -> None:
        self.app.start_recording(self.target_id)


load_kv(__file__)
