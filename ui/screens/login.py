"""Lock / login: choose the officer ID, type the PIN on the keypad, or use an enrolled finger."""

from __future__ import annotations

import threading
from typing import Any

from kivy.properties import BooleanProperty, StringProperty

from ui.screens.base import KioskScreen, load_kv
from ui.widgets import BigButton

MAX_PIN = 12


class LoginScreen(KioskScreen):
    officer = StringProperty("")
    pin = StringProperty("")
    message = StringProperty("")
    message_bad = BooleanProperty(False)
    finger_possible = BooleanProperty(False)

    def refresh(self) -> None:
        self.pin = ""
        officers = self.kiosk.officers()
        if self.kiosk.session.officer:
            self.officer = self.kiosk.session.officer
        elif self.officer not in officers:
            self.officer = officers[0] if len(officers) == 1 else ""
        box = self.ids.officers
        box.clear_widgets()
        for officer in officers:
            button = BigButton(text=officer, tone="primary" if officer == self.officer
                               else "neutral", size_hint_x=None,
                               width=self.app.touch * 2.6)
            button.bind(on_release=lambda _b, o=officer: self.pick(o))
            box.add_widget(button)
        self.finger_possible = self.kiosk.can_use_fingerprint_login()

    def pick(self, officer: str) -> None:
        self.officer = officer
        for button in self.ids.officers.children:
            button.tone = "primary" if button.text == officer else "neutral"

    def key(self, key: str) -> None:
        if key == "clear":
            self.pin = ""
        elif key == "del":
            self.pin = self.pin[:-1]
        elif len(self.pin) < MAX_PIN:
            self.pin += key

    def submit(self) -> None:
        if not self.officer:
            self.say(self.app.tr("login.pick_officer"), bad=True)
            return
        officer, pin = self.officer, self.pin
        self.pin = ""
        self.say(self.app.tr("login.checking"))
        self.app.run_async(lambda: self.kiosk.login(officer, pin), self._logged_in,
                           error=self._refused)

    def finger(self) -> None:
        cancel = threading.Event()
        self.say(self.app.tr("login.finger_prompt"))
        self.app.run_async(lambda: self.kiosk.login_by_fingerprint(cancel),
                           lambda _officer: self._logged_in(None), error=self._refused,
                           busy=self.app.tr("login.finger_prompt"), cancel=cancel)

    def _logged_in(self, _result: Any) -> None:
        self.say("")
        self.app.feedback(True)
        self.app.after_login()

    def _refused(self, exc: BaseException) -> None:
        self.say(self.app.error_text(exc), bad=True)
        self.app.feedback(False)

    def say(self, text: str, bad: bool = False) -> None:
        self.message, self.message_bad = text, bad


load_kv(__file__)
