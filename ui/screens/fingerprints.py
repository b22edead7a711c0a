"""Fingerprints: the hand diagram with the current finger, "place finger", the image with
its quality, retry, accept as is, and the exception menu. The download (3.5-7 s) runs on
a worker thread with a progress bar; the screen stays live."""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np
from kivy.clock import mainthread
from kivy.properties import BooleanProperty, NumericProperty, StringProperty

from sync.domain import FingerException, FingerPosition
from ui.i18n import tr
from ui.screens.base import KioskScreen, load_kv
from ui.widgets import ChoiceView


class FingerprintsScreen(KioskScreen):
    who = StringProperty("")
    current = NumericProperty(0)  # 0: all fingers done
    prompt = StringProperty("")
    result = StringProperty("")
    busy = BooleanProperty(False)
    progress = NumericProperty(0)
    can_accept = BooleanProperty(False)
    can_clear = BooleanProperty(False)
    all_done = BooleanProperty(False)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cancel = threading.Event()

    def refresh(self) -> None:
        flow = self.kiosk.require_flow()
        self.who = flow.recording.target.name
        nxt = flow.next_finger()
        self.current = int(nxt) if nxt is not None else 0
        self.result = ""
        self.ids.finger_image.texture = None
        self.update()

    def update(self) -> None:
        """Redraw the diagram and the buttons from the workflow's state."""
        flow = self.kiosk.require_flow()
        states = {int(position): flow.finger_state(position) for position in FingerPosition}
        if self.current:
            states[self.current] = "current"
        self.ids.hands.states = states
        self.all_done = flow.next_finger() is None
        kept = flow.recording.fingers.get(FingerPosition(self.current)) if self.current else None
        self.can_clear = kept is not None
        self.can_accept = bool(self.current) and flow.can_accept_as_is(FingerPosition(self.current))
        if self.busy:
            return
        if self.current:
            position = FingerPosition(self.current)
            self.prompt = (self.app.tr("fingers.place", finger=position.label(self.app.lang))
                           + "\n" + self.app.tr("fingers.attempts",
                                                n=flow.attempts_left(position)))
        else:
            self.prompt = self.app.tr("fingers.all_done")

    def pick(self, position: int) -> None:
        if self.busy:
            return
        self.current = position
        self.result = ""
        self.update()

    # -- capture ------------------------------------------------------------------------------
    def scan(self) -> None:
        if self.busy or not self.current:
            return
        position = FingerPosition(self.current)
        self.busy, self.progress = True, 0
        self._cancel.clear()
        self.prompt = self.app.tr("fingers.place", finger=position.label(self.app.lang))
        self.app.led("busy")
        self.app.run_async(
            lambda: self.kiosk.capture_finger(position, self._cancel, self._progress),
            self._captured, error=self._failed)

    def stop(self) -> None:
        self._cancel.set()

    @mainthread
    def _progress(self, got: int, total: int) -> None:
        self.progress = 100 * got / max(1, total)
        self.prompt = self.app.tr("fingers.reading", pct=f"{self.progress:.0f}")

    def _captured(self, result: Any) -> None:
        self.busy = False
        if result is None:  # stopped while waiting
            self.update()
            return
        position = result.kept.position
        self.app.feedback(result.quality.ok)
        pixels = cv2.imdecode(np.frombuffer(result.image_png, np.uint8), cv2.IMREAD_GRAYSCALE)
        if pixels is not None:
            self.ids.finger_image.show_frame(cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB))
        text = self.app.tr("fingers.quality", finger=position.label(self.app.lang),
                           score=result.quality.score)
        if not result.quality.ok:
            text += " · " + result.quality.reason(self.app.lang)
        if result.kept.low_quality_accepted:
            text += " · " + self.app.tr("fingers.low_accepted")
        self.result = text
        flow = self.kiosk.require_flow()
        if result.quality.ok or result.kept.low_quality_accepted:
            nxt = flow.next_finger()
            self.current = int(nxt) if nxt is not None else 0
        self.update()

    def _failed(self, exc: BaseException) -> None:
        self.busy = False
        self.result = ""
        self.app.feedback(False)
        self.update()
        self.app.show_error(exc)

    # -- exceptions and decisions ----------------------------------------------------------
    def exception(self) -> None:
        if self.busy or not self.current:
            return
        position = FingerPosition(self.current)
        lang = self.app.lang
        ChoiceView(self.app.tr("fingers.exception_title", finger=position.label(lang)),
                   [(e.label(lang), e) for e in FingerException],
                   lambda e: self._except(position, e)).open()

    def _except(self, position: FingerPosition, exception: FingerException) -> None:
        # "Other" needs a note; the record carries it in Indonesian, the office's language.
        note = tr("fingers.exception_note", "id") if exception == FingerException.OTHER else ""

        def done(_result: Any) -> None:
            nxt = self.kiosk.require_flow().next_finger()
            self.current = int(nxt) if nxt is not None else 0
            self.result = f"{position.label(self.app.lang)}: {exception.label(self.app.lang)}"
            self.update()

        self.app.act(lambda: self.kiosk.require_flow().finger_exception(position, exception,
                                                                         note), done)

    def accept(self) -> None:
        position = FingerPosition(self.current)

        def done(_result: Any) -> None:
            nxt = self.kiosk.require_flow().next_finger()
            self.current = int(nxt) if nxt is not None else 0
            self.update()

        self.app.act(lambda: self.kiosk.require_flow().accept_finger_as_is(position), done)

    def clear(self) -> None:
        position = FingerPosition(self.current)
        self.app.act(lambda: self.kiosk.require_flow().clear_finger(position),
                     lambda _r: self.update())

    def finish(self) -> None:
        self.app.act(lambda: self.kiosk.require_flow().next(), self.app.show_step)


load_kv(__file__)
