"""Home: today's assignment, its targets with their status, search, paused recordings."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

from kivy.clock import Clock
from kivy.properties import StringProperty

from sensors.errors import DeviceError
from sync.domain import TargetStatus
from ui.i18n import join_parts
from ui.screens.base import KioskScreen, load_kv
from ui.widgets import BigButton, KLabel

log = logging.getLogger(__name__)

TONES = {"pending": "primary", "in_progress": "warn", "recorded": "go", "partial": "go",
         "not_recorded": "neutral"}


def until_text(expires_at: float) -> str:
    """When a draft is deleted, in the kit's local time, as the home list dates are written."""
    return datetime.fromtimestamp(expires_at).strftime("%d-%m-%Y %H:%M")


class HomeScreen(KioskScreen):
    heading = StringProperty("")
    notice = StringProperty("")
    officer = StringProperty("")
    devices = StringProperty("")  # each device's state, shown before any scan

    def refresh(self) -> None:
        lang = self.app.lang
        self.show_devices()
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
            paused = f"  [{self.app.tr('home.paused_tag')}]" if row.draft else ""
            # A paused recording is not "being recorded": say how long its draft keeps.
            status = (self.app.tr("home.draft_until", until=until_text(row.draft.expires_at))
                      if row.draft else TargetStatus(row.status).label(lang))
            a = row.target.address
            place = join_parts(a.dusun, f"RT {a.rt}" if a.rt else "", sep=" ")
            text = (f"{row.number}. {row.target.name}{paused}\n"
                    f"{join_parts(place, status, sep=' · ')}")
            button = BigButton(text=text, tone="warn" if row.draft else
                               TONES.get(row.status, "primary"),
                               halign="left")
            # Two lines of text: as tall as they need, and never under 1.5 touch heights
            # (BigButton's own rule makes it one touch height).
            button.bind(texture_size=self._fit_row)
            self._fit_row(button, button.texture_size)
            button.target_id = row.target.id
            button.bind(on_release=lambda _b, t=row.target.id: self.open(t))
            box.add_widget(button)
        if not rows and self.kiosk.assignment is not None:
            # a message, not a button: nothing to tap, so nothing to explain as disabled
            box.add_widget(KLabel(text=self.app.tr("home.nothing_found")))

    # -- devices -----------------------------------------------------------------------------
    def show_devices(self) -> None:
        """What the kit holds now (opened or not), then the sensor asked on a worker thread
        whether it still answers: a cable pulled since start shows before any scan."""
        devices = self.kiosk.devices
        camera = devices is not None and devices.camera is not None
        sensor = devices is not None and devices.fingerprint is not None
        self._draw_devices(camera, "checking" if sensor else "absent")
        if sensor and not self.app.busy:
            threading.Thread(target=self._probe_sensor, args=(devices.fingerprint, camera),
                             name="device-probe", daemon=True).start()

    def _probe_sensor(self, sensor: Any, camera: bool) -> None:
        try:
            sensor.system_parameters()
            state = "ready"
        except (DeviceError, OSError) as exc:
            log.info("fingerprint sensor does not answer (%s)", type(exc).__name__)
            state = "absent"
        Clock.schedule_once(lambda _dt: self._draw_devices(camera, state))

    def _draw_devices(self, camera: bool, sensor_state: str) -> None:
        tr = self.app.tr
        self.devices = " · ".join((
            tr("device.camera", state=tr("device.ready" if camera else "device.absent")),
            tr("device.fingerprint", state=tr(f"device.{sensor_state}"))))

    def _fit_row(self, button: BigButton, texture_size: list[float]) -> None:
        button.height = max(self.app.touch * 1.5, texture_size[1] + self.app.mm * 2)

    def open(self, target_id: str) -> None:
        self.app.show_target(target_id)

    def on_search(self, _widget: Any, text: str) -> None:
        self.fill(text)


load_kv(__file__)
