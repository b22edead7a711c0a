"""Target detail: who, where, why; start (or resume) the recording, or close it unrecorded."""

from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty

from sync.domain import Address, TargetStatus
from ui.i18n import join_parts
from ui.screens.base import KioskScreen, load_kv
from ui.screens.home import until_text

DONE = ("recorded", "partial", "not_recorded")


def address_text(a: Address) -> str:
    """Street, RT/RW, hamlet, village: the parts the office filled in, no stray commas."""
    rt_rw = "/".join(part for part in (f"RT {a.rt}" if a.rt else "",
                                       f"RW {a.rw}" if a.rw else "") if part)
    return join_parts(a.street, rt_rw, a.dusun, a.desa)


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
            f"{tr('target.address')}: {address_text(a)}",
            f"{tr('target.category')}: {t.category.label(lang)} · "
            f"{tr('target.place')}: {t.place.label(lang)}",
            # A paused recording is not "being recorded": say until when its draft keeps.
            f"{tr('target.status')}: "
            + (tr("target.paused", until=until_text(row.draft.expires_at)) if row.draft
               else TargetStatus(row.status).label(lang)),
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
