"""First login with an enrolment code: the officer chooses their own PIN, typed twice.

The rule (how many digits, not the code itself, both entries the same, the slot re-sealed
and the officer struck off ``pin_change_required`` at once) is the kit's
(:meth:`kit.visit.VisitController.set_pin`, :class:`kit.session.OfficerSession`); this
screen only collects the two entries and shows what the kit answers. Until the PIN is
set the kit refuses everything else, so there is no way past this screen but a PIN (or
logging out, which leaves the code for the next try).
"""

from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, NumericProperty, StringProperty

from sync.errors import JaranIjoError
from ui.screens.base import KioskScreen, load_kv


class SetPinScreen(KioskScreen):
    officer = StringProperty("")
    pin = StringProperty("")        # the entry being typed
    step = NumericProperty(1)       # 1: the new PIN, 2: the same again
    low = NumericProperty(6)        # digits the kit's rule allows (TPM or software slots)
    high = NumericProperty(12)
    message = StringProperty("")
    message_bad = BooleanProperty(False)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._first = ""  # step 1's entry, kept until step 2 is checked against it

    def on_pre_enter(self, *args: Any) -> None:
        self.start_over()
        super().on_pre_enter(*args)

    def refresh(self) -> None:
        """Who is choosing, and the kit's digit range (a language switch keeps the step)."""
        self.officer = self.kiosk.session.officer or ""
        self.low, self.high = self.kiosk.new_pin_digits()

    def start_over(self, message: str = "", bad: bool = False) -> None:
        self._first, self.pin, self.step = "", "", 1
        self.say(message, bad)

    def key(self, key: str) -> None:
        if key == "clear":
            self.pin = ""
        elif key == "del":
            self.pin = self.pin[:-1]
        elif len(self.pin) < self.high:
            self.pin += key

    def submit(self) -> None:
        entry, self.pin = self.pin, ""
        if self.step == 1:
            try:
                self.kiosk.check_new_pin(entry)
            except JaranIjoError as exc:
                self._refused(exc)
                return
            self._first, self.step = entry, 2
            self.say("")
            return
        first = self._first
        self.app.run_async(lambda: self.kiosk.set_pin(first, entry), self._set,
                           error=self._refused, busy=self.app.tr("set_pin.saving"))

    def _set(self, _result: Any) -> None:
        self.start_over()
        self.app.feedback(True)
        self.app.after_login()

    def _refused(self, exc: BaseException) -> None:
        """Whatever was wrong (too short, the code itself, the two differ), both entries are
        typed again: a PIN the officer is not sure of is worse than a second try."""
        self.start_over(self.app.error_text(exc), bad=True)
        self.app.feedback(False)

    def say(self, text: str, bad: bool = False) -> None:
        self.message, self.message_bad = text, bad


load_kv(__file__)
