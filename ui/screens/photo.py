"""Face photo: live preview with the face guide and live hints; capture by the on-screen
button or the GPIO capture button; the best photo is kept; below the threshold the
officer gives a reason."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from kivy.clock import Clock, mainthread
from kivy.properties import (
    AliasProperty,
    BooleanProperty,
    ListProperty,
    NumericProperty,
    StringProperty,
)

from sensors.errors import DeviceError
from sync.errors import JaranIjoError
from ui.screens.base import KioskScreen, load_kv

HINT_INTERVAL_S = 0.5  # the face check costs ~30 ms a frame: run it twice a second
PHOTO_REASONS = ("photo.reason.cannot_sit", "photo.reason.bedridden", "photo.reason.light",
                 "photo.reason.uncooperative")


class PhotoScreen(KioskScreen):
    hint = StringProperty("")
    hint_ok = BooleanProperty(False)
    result = StringProperty("")
    have_photo = BooleanProperty(False)
    below_threshold = BooleanProperty(False)
    capturing = BooleanProperty(False)
    who = StringProperty("")
    frames_shown = NumericProperty(0)
    reasons = ListProperty([])  # every failed check of the last capture, each with its fix

    def _problems(self) -> str:
        return "\n".join(f"• {r}" for r in self.reasons if r != self.hint)

    # ... drawn one a line, less the one the live hint above already shows in bold: at
    # 800x480 the repeat pushed the last check below the bottom of the text column
    problems = AliasProperty(_problems, bind=("reasons", "hint"), cache=True)
    needs = StringProperty("")  # what the step still needs (the workflow's missing(PHOTO))
    no_camera = StringProperty("")  # why there is no camera to take a photo with

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._latest: np.ndarray | None = None
        self._pending = False

    def refresh(self) -> None:
        flow = self.kiosk.require_flow()
        self.who = flow.recording.target.name
        self._show_kept(flow.recording.photo)
        self.hint, self.hint_ok = "", False
        self.reasons, self.no_camera = [], ""

    def _show_kept(self, photo: Any) -> None:
        from kit.workflow import Step
        from ui.widgets import still_needed

        self.have_photo = photo is not None
        self.needs = still_needed(self.kiosk.require_flow().missing(Step.PHOTO), self.app.lang)
        if photo is None:
            self.result, self.below_threshold = "", False
            return
        self.result = self.app.tr("photo.kept", score=photo.quality_score)
        self.below_threshold = photo.quality_score < photo.quality_threshold

    # -- live preview ----------------------------------------------------------------------
    def on_enter(self, *_args: Any) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._preview_loop, name="preview", daemon=True)
        self._thread.start()
        self.app.on_capture_button = self.capture

    def on_leave(self, *_args: Any) -> None:
        self._stop.set()
        self.app.on_capture_button = None

    def _preview_loop(self) -> None:
        from sensors.photo_quality import assess_photo

        try:
            camera = self.kiosk.camera()
        except (JaranIjoError, DeviceError) as exc:
            self._hint(exc.text(self.app.lang), False)
            self._no_camera(exc.text(self.app.lang))
            return
        next_hint = 0.0
        while not self._stop.is_set():
            try:
                frame = camera.preview_frame()
            except (JaranIjoError, DeviceError) as exc:
                self._hint(exc.text(self.app.lang), False)
                self._stop.wait(1.0)
                continue
            self._latest = frame
            if not self._pending:  # drop frames rather than queue them behind a slow paint
                self._pending = True
                Clock.schedule_once(self._paint)
            now = time.monotonic()
            if now >= next_hint:
                next_hint = now + HINT_INTERVAL_S
                quality = assess_photo(frame).quality
                self._hint(self.app.tr("photo.hint_ok") if quality.ok
                           else quality.reason(self.app.lang), quality.ok)

    def _paint(self, _dt: float) -> None:
        self._pending = False
        if self._latest is not None and not self._stop.is_set():
            self.ids.preview.show_frame(self._latest)
            self.frames_shown += 1

    @mainthread
    def _no_camera(self, text: str) -> None:
        self.no_camera = text

    @mainthread
    def _hint(self, text: str, ok: bool) -> None:
        self.hint, self.hint_ok = text, ok
        self.ids.preview.guide_ok = ok

    # -- capture -----------------------------------------------------------------------------
    def capture(self) -> None:
        if self.capturing:
            return
        self.capturing = True
        self.result = self.app.tr("photo.capturing")
        self.reasons = []
        self.app.led("busy")
        self.app.run_async(self.kiosk.take_photo, self._captured, error=self._failed)

    def _captured(self, result: tuple[Any, Any]) -> None:
        kept, assessment = result
        self.capturing = False
        quality = assessment.quality
        self.app.feedback(quality.ok)
        shot = self.app.tr("photo.score", score=quality.score, threshold=quality.threshold)
        self._show_kept(kept)
        self.result = f"{shot}\n{self.result}"
        # Every failed check with its fix, not only the worst: the officer fixes them all
        # before the next shot instead of discovering them one capture at a time.
        self.reasons = [] if quality.ok else assessment.reasons(self.app.lang)

    def _failed(self, exc: BaseException) -> None:
        self.capturing = False
        self.result = ""
        self.app.feedback(False)
        self.app.show_error(exc)

    def use(self) -> None:
        flow = self.kiosk.require_flow()
        photo = flow.recording.photo
        if photo is not None and photo.quality_score < photo.quality_threshold:
            from ui.i18n import tr
            from ui.widgets import ChoiceView

            # The reason goes into the record in Indonesian, the office's language.
            ChoiceView(self.app.tr("photo.reason_title"),
                       [(self.app.tr(k), tr(k, "id")) for k in PHOTO_REASONS],
                       lambda reason: self._accept(reason)).open()
            return
        self._accept(None)

    def _accept(self, reason: str | None) -> None:
        self.app.act(lambda: self.kiosk.require_flow().accept_photo(reason), self.app.show_step)


load_kv(__file__)
