"""Target detail: who, where, why; start (or resume) the recording, or close it unrecorded."""

from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty

from sync.domain import TargetStatus
from ui.screens.base import KioskScreen, load_kv

DONE = ("recorded", "partial", "not_recorded")


class TargetScreen(KioskScreen):
    target_id = StringProperty("")
    name_text = StringProperty("")
    details = StringProperty("")
    has_draft = BooleanProperty(False)
    done = BooleanProperty(False)

    def refresh(self) -> None:
        row = self.kiosk.row(self.target_id)
        t, lang, tr = row.target, self.app.lang, self.app.tr
        a = t.address
        self.name_text = f"{row.number}. {t.name}"
        lines = [
            f"{tr('target.nik')}: {t.nik}",
            f"{tr('target.born')}: {t.birth_date:%d-%m-%Y} · {t.sex.label(lang)}",
            f"{tr('target.address')}: {a.street}, RT {a.rt}/RW {a.rw}, {a.dusun}, {a.desa}",
            f"{tr('target.category')}: {t.category.label(lang)} · "
            f"{tr('target.place')}: {t.place.label(lang)}",
            f"{tr('target.status')}: {TargetStatus(row.status).label(lang)}",
        ]
        if t.notes:
            lines.append(f"{tr('target.notes')}: {t.notes}")
        self.details = "\n".join(lines)
        self.has_draft = row.draft is not None
        self.done = row.status in DONE and not self.has_draft

    def start(self) -> None:
        self.app.start_recording(self.target_id)

    def not_recorded(self) -> None:
        self.app.start_recording(self.target_id, not_recorded=True)


load_kv(__file__)
