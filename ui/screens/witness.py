"""Witness: the accompanying village staff member or relative, by touch or typed."""

from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty

from kit.workflow import staff_witness
from ui.i18n import tr
from ui.screens.base import KioskScreen, load_kv
from ui.widgets import BigButton


class WitnessScreen(KioskScreen):
    who = StringProperty("")
    consent = BooleanProperty(False)
    ready = BooleanProperty(False)

    why = StringProperty("")  # what Next still waits for (shown under it)

    def check(self) -> None:
        """Next needs a name, a role and the witness's consent; say what is missing."""
        missing = [key for key, ok in (("witness.need_name", self.ids.witness_name.text.strip()),
                                       ("witness.need_role", self.ids.witness_role.text.strip()),
                                       ("witness.need_consent", self.consent)) if not ok]
        self.ready = not missing
        self.why = "; ".join(self.app.tr(k) for k in missing)

    def on_consent(self, *_args: object) -> None:
        self.check()

    def refresh(self) -> None:
        flow = self.kiosk.require_flow()
        self.who = flow.recording.target.name
        witness = flow.recording.witness
        self.ids.witness_name.text = witness.name if witness else ""
        self.ids.witness_role.text = witness.role if witness else ""
        self.consent = bool(witness and witness.consent)
        self.check()
        box = self.ids.staff
        box.clear_widgets()
        staff = self.kiosk.assignment.village_staff if self.kiosk.assignment else []
        for person in staff:
            button = BigButton(text=person, tone="neutral")
            button.bind(on_release=lambda _b, p=person: self.pick(p))
            box.add_widget(button)

    def pick(self, person: str) -> None:
        # The role goes into the record in Indonesian, the office's language.
        name, role = staff_witness(person, tr("witness.role_staff", "id"))
        self.ids.witness_name.text, self.ids.witness_role.text = name, role

    def save(self) -> None:
        name, role, consent = self.ids.witness_name.text, self.ids.witness_role.text, self.consent
        self.app.act(lambda: self.kiosk.require_flow().set_witness(name, role, consent),
                     self.app.show_step)


load_kv(__file__)
