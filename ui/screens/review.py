"""Review: what was captured, a way back to each step, and Seal (off the main thread)."""

from __future__ import annotations

from typing import Any

from kivy.properties import StringProperty

from kit.workflow import Step, describe
from ui.screens.base import KioskScreen, load_kv


class ReviewScreen(KioskScreen):
    who = StringProperty("")
    photo = StringProperty("")
    fingers = StringProperty("")
    signature = StringProperty("")
    witness = StringProperty("")
    outcome = StringProperty("")

    def refresh(self) -> None:
        flow = self.kiosk.require_flow()
        r, tr, lang = flow.recording, self.app.tr, self.app.lang
        self.who = r.target.name
        summary = describe(r)
        self.photo = (tr("review.photo", score=r.photo.quality_score) if r.photo
                      else tr("review.photo_missing"))
        self.fingers = tr("review.fingers", captured=summary["fingers_captured"],
                          exceptions=len(summary["finger_exceptions"]),
                          low=summary["low_quality_fingers"])
        if r.signature and r.signature.cannot_sign_reason:
            self.signature = tr("review.cannot_sign", reason=r.signature.cannot_sign_reason)
        else:
            self.signature = tr("review.signature")
        self.witness = (tr("review.witness", name=r.witness.name, role=r.witness.role) + " · "
                        + tr("review.consent_yes" if r.witness.consent else "review.consent_no")
                        ) if r.witness else ""
        self.outcome = tr("review.outcome", outcome=flow.outcome().label(lang))

    def change(self, step: str) -> None:
        self.app.act(lambda: self.kiosk.require_flow().go_to(Step(step)), self.app.show_step)

    def seal(self) -> None:
        self.app.run_async(self.kiosk.seal, self._sealed, busy=self.app.tr("review.sealing"))

    def _sealed(self, stored: Any) -> None:
        self.app.sealed(stored)


load_kv(__file__)
