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

from kit.workflow import Step
from sync.domain import FingerException, FingerPosition
from ui.screens.base import KioskScreen, load_kv
from ui.widgets import BigButton, ChoiceView, NoteView


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
    excepted = BooleanProperty(False)  # the current finger has an exception (from the flow)
    needs = StringProperty("")  # what the step still needs (the workflow's missing(...))
    no_sensor = StringProperty("")  # why there is no sensor to scan with

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
        devices = self.kiosk.devices
        if devices is not None and devices.fingerprint is None:
            problem = devices.problems.get("fingerprint")
            self.no_sensor = problem.text(self.app.lang) if problem else \
                self.app.tr("why.no_sensor")
        else:
            self.no_sensor = ""
        self.update()

    def update(self) -> None:
        """Redraw the diagram and the buttons from the workflow's state."""
        flow = self.kiosk.require_flow()
        states = {int(position): flow.finger_state(position) for position in FingerPosition}
        if self.current:
            states[self.current] = "current"
        self.ids.hands.states = states
        self.all_done = flow.next_finger() is None
        missing = flow.missing(Step.FINGERPRINTS)
        self.needs = self.app.tr("why.fingers_left", n=len(missing)) if missing else ""
        kept = flow.recording.fingers.get(FingerPosition(self.current)) if self.current else None
        self.can_clear = kept is not None
        self.can_accept = bool(self.current) and flow.can_accept_as_is(FingerPosition(self.current))
        if self.busy:
            return
        self.excepted = bool(self.current) and flow.finger_state(
            FingerPosition(self.current)) == "exception"
        if self.excepted:
            # Not "place it on the sensor": the finger has an exception until it is cleared.
            position = FingerPosition(self.current)
            kept = flow.recording.fingers[position]
            reason = kept.exception.label(self.app.lang) if kept.exception else ""
            if kept.exception_note and kept.exception == FingerException.OTHER:
                reason += f" ({kept.exception_note})"
            self.prompt = self.app.tr("fingers.excepted", finger=position.label(self.app.lang),
                                      reason=reason)
        elif self.current:
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
        self.ids.finger_image.texture = None  # no other finger's print beside this one
        self.update()

    # -- capture ------------------------------------------------------------------------------
    def scan(self) -> None:
        if self.busy or not self.current or self.excepted:
            return
        position = FingerPosition(self.current)
        self.busy, self.progress = True, 0
        self.result = ""  # the last finger's result would sit beside this one's prompt
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
        """The reasons, with what they apply to above them: this finger (the default), the
        rest of its hand, or every finger still to capture -- three taps for eight
        bandaged fingers instead of sixteen."""
        if self.busy or not self.current:
            return
        position = FingerPosition(self.current)
        lang, tr_ = self.app.lang, self.app.tr
        flow = self.kiosk.require_flow()
        remaining = [p for p in flow.remaining_fingers() if p != position]
        hand = [p for p in remaining if p.hand == position.hand]
        hand_name = tr_(f"fingers.{position.hand}_hand").lower()
        scopes = [("one", tr_("fingers.scope_one"), [position])]
        if hand:
            scopes.append(("hand", tr_("fingers.scope_hand", hand=hand_name), [position, *hand]))
        if len(remaining) > len(hand):
            scopes.append(("remaining", tr_("fingers.scope_remaining"), [position, *remaining]))
        chosen: dict[str, list[FingerPosition]] = {"fingers": [position]}
        view = ChoiceView(tr_("fingers.exception_title", finger=position.label(lang)),
                          [(e.label(lang), e) for e in FingerException],
                          lambda e: self._except(chosen["fingers"], e),
                          cols=1 if self.app.portrait else 2)
        if len(scopes) > 1:
            self._add_scopes(view, scopes, chosen)
        view.open()

    def _add_scopes(self, view: Any, scopes: list[tuple[str, str, list[FingerPosition]]],
                    chosen: dict[str, list[FingerPosition]]) -> None:
        from kivy.uix.gridlayout import GridLayout

        from ui.widgets import KLabel

        box = view.ids.extra
        grid = GridLayout(cols=1 if self.app.portrait else len(scopes), spacing=self.app.mm,
                          size_hint_y=None)
        grid.bind(minimum_height=grid.setter("height"))
        buttons = []

        def pick(button: BigButton, fingers: list[FingerPosition]) -> None:
            chosen["fingers"] = fingers
            for b in buttons:
                b.tone = "primary" if b is button else "neutral"

        for _key, text, fingers in scopes:
            button = BigButton(text=text, tone="primary" if len(buttons) == 0 else "neutral")
            button.bind(on_release=lambda b, f=fingers: pick(b, f))
            buttons.append(button)
            grid.add_widget(button)
        box.add_widget(KLabel(text=self.app.tr("fingers.scope_title")))
        box.add_widget(grid)

    def _except(self, positions: list[FingerPosition], exception: FingerException) -> None:
        if exception == FingerException.OTHER:
            # "Other" needs the officer's own words: the workflow refuses it without a note.
            NoteView(self.app.tr("fingers.other_title"), self.app.tr("fingers.other_hint"),
                     lambda note: self._apply(positions, exception, note)).open()
            return
        self._apply(positions, exception, "")

    def _apply(self, positions: list[FingerPosition], exception: FingerException,
               note: str) -> None:
        first = positions[0]

        def apply() -> None:
            flow = self.kiosk.require_flow()
            for position in positions:
                flow.finger_exception(position, exception, note)

        def done(_result: Any) -> None:
            nxt = self.kiosk.require_flow().next_finger()
            self.current = int(nxt) if nxt is not None else 0
            label = ", ".join(p.label(self.app.lang) for p in positions) \
                if len(positions) <= 2 else f"{first.label(self.app.lang)} (+{len(positions) - 1})"
            self.result = f"{label}: {exception.label(self.app.lang)}"
            self.ids.finger_image.texture = None  # no print beside an excepted finger
            self.update()

        self.app.act(apply, done)

    def accept(self) -> None:
        position = FingerPosition(self.current)

        def done(_result: Any) -> None:
            nxt = self.kiosk.require_flow().next_finger()
            self.current = int(nxt) if nxt is not None else 0
            self.update()

        self.app.act(lambda: self.kiosk.require_flow().accept_finger_as_is(position), done)

    def clear(self) -> None:
        position = FingerPosition(self.current)
        def done(_result: Any) -> None:
            self.ids.finger_image.texture = None
            self.update()

        self.app.act(lambda: self.kiosk.require_flow().clear_finger(position), done)

    def finish(self) -> None:
        self.app.act(lambda: self.kiosk.require_flow().next(), self.app.show_step)


load_kv(__file__)
