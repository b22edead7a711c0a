"""Technician menu behind its own PIN: self-test, device info, recent log lines, language."""

from __future__ import annotations

import collections
import logging
from typing import Any

from kivy.properties import BooleanProperty, StringProperty

from ui.screens.base import KioskScreen, load_kv


class RecentLog(logging.Handler):
    """The last ``size`` log lines, for the technician menu (logs carry no personal data)."""

    def __init__(self, size: int = 200) -> None:
        super().__init__(logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=size)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                            "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a log line must never break the kiosk
            self.handleError(record)


class TechnicianScreen(KioskScreen):
    unlocked = BooleanProperty(False)
    pin = StringProperty("")
    output = StringProperty("")
    message = StringProperty("")

    def on_kv_post(self, _base: Any) -> None:
        # Strong references: ids are weak, and one of the two is always detached.
        self._pin_box = self.ids.pin_box.__self__
        self._menu_box = self.ids.menu_box.__self__
        self.ids.body.remove_widget(self._menu_box)

    def on_unlocked(self, _screen: Any, unlocked: bool) -> None:
        # Swap the PIN pad and the menu: a hidden but present pad would still take touches.
        show, hide = ((self._menu_box, self._pin_box) if unlocked
                      else (self._pin_box, self._menu_box))
        if hide.parent is not None:
            self.ids.body.remove_widget(hide)
        if show.parent is None:
            self.ids.body.add_widget(show, index=0)

    def refresh(self) -> None:
        self.unlocked, self.pin, self.output, self.message = False, "", "", ""

    def key(self, key: str) -> None:
        if key == "clear":
            self.pin = ""
        elif key == "del":
            self.pin = self.pin[:-1]
        elif len(self.pin) < 12:
            self.pin += key

    def submit(self) -> None:
        pin, self.pin = self.pin, ""
        self.app.run_async(lambda: self.kiosk.technician_pin_ok(pin), self._checked)

    def _checked(self, ok: bool) -> None:
        self.unlocked = ok
        self.message = "" if ok else self.app.tr("tech.wrong_pin")
        self.app.feedback(ok)

    def self_test(self) -> None:
        self.output = self.app.tr("tech.running")
        lang = self.app.lang
        self.app.run_async(lambda: self.kiosk.self_test(lang), self._tested)

    def _tested(self, lines: list[tuple[bool, str]]) -> None:
        ok, warn = self.app.tr("tech.ok"), self.app.tr("tech.warn")
        self.output = "\n".join(f"[{ok if good else warn}] {text}" for good, text in lines)

    def device_info(self) -> None:
        self.app.run_async(self.kiosk.device_info, self._show_lines)

    def recent_log(self) -> None:
        self._show_lines(list(reversed(self.app.recent_log.lines))[:40])  # newest first

    def _show_lines(self, lines: list[str]) -> None:
        self.output = "\n".join(lines) or "-"

    def leave(self, *_args: Any) -> None:
        self.app.go("home" if not self.kiosk.session.locked else "login")


load_kv(__file__)
