"""Not recorded: whose recording (name, masked NIK), why (refused, not home, deceased, ...),
an optional note, then a confirmation that says what sealing means before it seals."""

from __future__ import annotations

from kivy.properties import StringProperty

from kit.workflow import NOT_RECORDED
from sync.domain import Outcome
from ui.i18n import mask_nik
from ui.screens.base import KioskScreen, load_kv
from ui.widgets import BigButton, ChoiceView, KLabel


class NotRecordedScreen(KioskScreen):
    chosen = StringProperty("")
    target_id = StringProperty("")
    who = StringProperty("")
    resident = StringProperty("")  # the name, for the confirmation

    def refresh(self) -> None:
        target = self.kiosk.row(self.target_id).target
        self.resident = target.name
        self.who = self.app.tr("notrec.who", name=target.name, nik=mask_nik(target.nik))
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
        """Ask before sealing: a sealed record cannot be changed, so the officer reads whose
        it is and with which outcome; "Batal" goes back without sealing."""
        if not self.chosen:
            self.app.notice(self.app.tr("notrec.pick"))
            return
        tr = self.app.tr
        outcome = Outcome(self.chosen)
        view = ChoiceView(tr("notrec.sure_title"), [(tr("notrec.sure_yes"), True)],
                          lambda _yes: self.seal())
        view.ids.extra.add_widget(KLabel(text=tr("notrec.sure", name=self.resident,
                                                 outcome=outcome.label(self.app.lang))))
        view.ids.choices.children[0].tone = "go"
        view.open()

    def seal(self) -> None:
        outcome, note = Outcome(self.chosen), self.ids.note.text
        target_id, lang = self.target_id, self.app.lang
        self.app.run_async(lambda: self.kiosk.not_recorded(target_id, outcome, note, lang),
                           self.app.sealed, busy=self.app.tr("review.sealing"))

    def cancel(self) -> None:
        self.app.go("target")


load_kv(__file__)
