"""Home: today's assignment, its targets with their status, search, paused recordings."""

from __future__ import annotations

from typing import Any

from kivy.properties import StringProperty

from sync.domain import TargetStatus
from ui.screens.base import KioskScreen, load_kv
from ui.widgets import BigButton

TONES = {"pending": "primary", "in_progress": "warn", "recorded": "go", "partial": "go",
         "not_recorded": "neutral"}


class HomeScreen(KioskScreen):
    heading = StringProperty("")
    notice = StringProperty("")
    officer = StringProperty("")

    def refresh(self) -> None:
        lang = self.app.lang
        self.officer = self.kiosk.session.officer or ""
        assignment = self.kiosk.assignment
        if assignment is None:
            self.heading = self.app.tr("home.no_assignment")
        else:
            self.heading = self.app.tr(
                "home.assignment", village=assignment.village,
                kecamatan=assignment.kecamatan, date=assignment.visit_date.strftime("%d-%m-%Y"),
                n=len(assignment.targets))
        live, soon = self.kiosk.drafts()
        notes = []
        if live:
            notes.append(self.app.tr("home.drafts", n=len(live)))
        if soon:
            notes.append(self.app.tr("home.draft_soon"))
        self.notice = "  ".join(notes)
        self.fill(self.ids.search.text, lang)

    def fill(self, query: str, lang: str | None = None) -> None:
        lang = lang or self.app.lang
        box = self.ids.targets
        box.clear_widgets()
        rows = self.kiosk.rows(query)
        for row in rows:
            status = TargetStatus(row.status).label(lang)
            paused = f"  [{self.app.tr('home.paused_tag')}]" if row.draft else ""
            text = (f"{row.number}. {row.target.name}{paused}\n"
                    f"{row.target.address.dusun} RT {row.target.address.rt} · {status}")
            button = BigButton(text=text, tone="warn" if row.draft else
                               TONES.get(row.status, "primary"),
                               height=self.app.touch * 1.5, halign="left")
            button.target_id = row.target.id
            button.bind(on_release=lambda _b, t=row.target.id: self.open(t))
            box.add_widget(button)
        if not rows and self.kiosk.assignment is not None:
            box.add_widget(BigButton(text=self.app.tr("home.nothing_found"), tone="neutral",
                                     disabled=True))

    def open(self, target_id: str) -> None:
        self.app.show_target(target_id)

    def on_search(self, _widget: Any, text: str) -> None:
        self.fill(text)


load_kv(__file__)
