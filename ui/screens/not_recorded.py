"""Not recorded: why (refused, not home, deceased, ...), an optional note, then seal."""

from __future__ import annotations

from kivy.properties import StringProperty

from kit.workflow import NOT_RECORDED
from sync.domain import Outcome
from ui.screens.base import KioskScreen, load_kv
from ui.widgets import BigButton


class NotRecordedScreen(KioskScreen):
    chosen = StringProperty("")
    target_id = StringProperty("")

    def refresh(self) -> None:
        self.chosen = ""
        self.ids.note.text = ""
        box = self.ids.outcomes
        box.clear_widgets()
        for outcome in NOT_RECORDED:
            button = BigButton(text=outcome.label(self.app.lang), tone="neutral")
            button.outcome = str(outcome)
            button.bind(on_release=lambda _b, o=str(outcome): self.pick(o))
            box.add_widget(button)

    def pick(self, outcome: str) -> None:
        self.chosen = outcome
        for button in self.ids.outcomes.children:
            button.tone = "warn" if button.outcome == outcome else "neutral"

    def confirm(self) -> None:
        if not self.chosen:
            self.app.notice(self.app.tr("notrec.pick"))
            return
        outcome, note = Outcome(self.chosen), self.ids.note.text
        target_id, lang = self.target_id, self.app.lang
        self.app.run_async(lambda: self.kiosk.not_recorded(target_id, outcome, note, lang),
                           self.app.sealed, busy=self.app.tr("review.sealing"))

    def cancel(self) -> None:
        self.app.go("target")


load_kv(__file__)
