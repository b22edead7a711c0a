"""Photo approval: the resident or family sees the photo; approved goes on, refused retakes."""

from __future__ import annotations

import cv2
import numpy as np
from kivy.properties import StringProperty

from ui.screens.base import KioskScreen, load_kv


class PhotoApprovalScreen(KioskScreen):
    who = StringProperty("")
    score = StringProperty("")

    def refresh(self) -> None:
        flow = self.kiosk.require_flow()
        self.who = flow.recording.target.name
        photo = flow.recording.photo
        if photo is None:
            return
        self.score = self.app.tr("review.photo", score=photo.quality_score)
        bgr = cv2.imdecode(np.frombuffer(photo.jpeg, np.uint8), cv2.IMREAD_COLOR)
        if bgr is not None:
            self.ids.photo.show_frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def answer(self, approved: bool) -> None:
        self.app.act(lambda: self.kiosk.require_flow().approve_photo(approved),
                     self.app.show_step)


load_kv(__file__)
