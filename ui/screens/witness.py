"""Witness: the accompanying village staff member or relative, by touch or typed."""

from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty

from ui.i18n import tr
from ui.screens.base import KioskScreen, load_kv
from ui.widgets import BigButton


class WitnessScreen(KioskScreen):
    who = StringProperty("")
    consent = BooleanProperty(False)
    ready = BooleanProperty(False)

    def check(self) -> None:
        self.ready = bool(self.ids.witness_name.text.strip() and self.ids.witness_role.text.strip())

    def refresh(self) -> None:
        flow = self.kiosk.require_flow()
        self.who = flow.recording.target.name
        witness = flow.recording.witness
        self.ids.witness_name.text = witness.name if witness else ""
        self.ids.witness_role.text = witness.role if witness else ""
        self.consent = bool(witness and witness.consent)
        box = self.ids.staff
        box.clear_widgets()
        staff = self.kiosk.assignment.village_staff if self.kiosk.assignment else []
        for person in staff:
            button = BigButton(text=person, tone="neutral", size_hint_x=None,
                               width=self.app.touch * 4)
            button.bind(on_release=lambda _b, p=person: self.pick(p))
            box.add_widget(button)

    def pick(self, person: str) -> None:
        self.ids.witness_name.text = person
        # The role goes into the record in Indonesian, the office's language.
        self.ids.witness_role.text = tr("witness.role_staff", "id")

    def save(self) -> None:
        name, role, consent = self.ids.witness_name.text, self.ids.witness_role.text, self.consent
        self.app.act(lambda: self.kiosk.require_flow().set_witness(name, role, consent),
                     self.app.show_step)


load_kv(__file__)
