"""Signature pad: the resident signs with a finger or stylus; or cannot sign, with a reason."""

from __future__ import annotations

from kivy.properties import StringProperty

from ui.i18n import tr
from ui.screens.base import KioskScreen, load_kv
from ui.widgets import ChoiceView, NoteView

# "Cap jempol": the resident's thumbprint stands in, as on paper forms; "Lainnya" asks for
# the officer's own words.
CANNOT_SIGN = ("sign.reason.weak", "sign.reason.illiterate", "sign.reason.unconscious",
               "sign.reason.thumbprint")
OTHER = "sign.reason.other"


class SignatureScreen(KioskScreen):
    who = StringProperty("")

    def refresh(self) -> None:
        self.who = self.kiosk.require_flow().recording.target.name
        self.ids.pad.clear()

    def save(self) -> None:
        strokes = [list(s) for s in self.ids.pad.strokes]
        self.app.act(lambda: self.kiosk.sign(strokes), self.app.show_step)

    def cannot(self) -> None:
        # The reason goes into the record in Indonesian, the office's language.
        choices = [(self.app.tr(k), tr(k, "id")) for k in CANNOT_SIGN]
        choices.append((self.app.tr(OTHER), OTHER))
        ChoiceView(self.app.tr("sign.cannot_title"), choices, self._reason).open()

    def _reason(self, reason: str) -> None:
        if reason == OTHER:
            # The officer's own words go into the record as typed.
            NoteView(self.app.tr("sign.other_title"), self.app.tr("sign.other_hint"),
                     self._reason).open()
            return
        self.app.act(lambda: self.kiosk.require_flow().cannot_sign(reason), self.app.show_step)


load_kv(__file__)
