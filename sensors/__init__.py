"""The kit's devices: one module per kind, each an interface, a real driver and an emulated twin.

``sensors/emulated/`` holds the twins that speak the real wire protocols on
pseudo-terminals, so the real drivers (pyfingerprint, pynmea2, pyserial) are
what the tests exercise.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quality:
    """A capture's quality: a 0-100 score, the pass mark, and a reason the UI can show.

    >>> q = Quality(score=35, threshold=40, reason_id="Terlalu gelap", reason_en="Too dark")
    >>> q.ok
    False
    """

    score: int
    threshold: int
    reason_id: str = ""
    reason_en: str = ""

    @property
    def ok(self) -> bool:
        return self.score >= self.threshold

    def reason(self, lang: str = "id") -> str:
        return self.reason_en if lang == "en" else self.reason_id
