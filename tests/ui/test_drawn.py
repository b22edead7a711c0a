"""What the kiosk draws matches what the workflow holds, and every text is readable and
typable (issue 15): the hand diagram's keys, glyphs in the font, text fields above the
docked keyboard with keys of touch size, no overlap on the fingerprint screen, the header
drawn whole. At both display sizes and in both languages; screenshots in
``artefacts/screens/``.
"""

from __future__ import annotations

from typing import Any

import pytest

from sync.domain import (
    Category,
    FingerException,
    FingerPosition,
    Outcome,
    Place,
    Sex,
    TargetStatus,
)
from tests.ui.conftest import run_scenario
from tests.ui.screen_checks import missing_glyphs
from ui.i18n import LANGS, TEXT

pytestmark = pytest.mark.timeout(400)


@pytest.mark.parametrize("lang", ["id", "en"])
@pytest.mark.parametrize("size", ["800x480", "720x1280"])
def test_screens_draw_the_workflow_state(display: str, kit_on_rig: Any, size: str,
                                         lang: str) -> None:
    out = run_scenario(display, kit_on_rig, "drawn", size, lang=lang, timeout=360)
    found = out["findings"]
    found["overflows"] = out["overflows"]
    wrong = {kind: problems for kind, problems in found.items() if problems}
    # every kind at once (keys, glyphs, inputs, layout, header, overflows), one per line
    assert wrong == {}, "\n".join(f"{kind}: {x}" for kind, xs in wrong.items() for x in xs)


def _domain_labels(lang: str) -> list[str]:
    enums: tuple[Any, ...] = (FingerException, FingerPosition, Outcome, Sex, Category, Place,
                              TargetStatus)
    return [e.label(lang) for enum in enums for e in enum]


@pytest.mark.parametrize("lang", LANGS)
def test_every_string_has_glyphs_in_the_font(lang: str) -> None:
    """Every entry of the kiosk's table and every domain label it shows, in the kiosk's
    font (Kivy's Roboto, regular and bold): no empty boxes on the glass."""
    import os

    os.environ.setdefault("KIVY_NO_ARGS", "1")
    from kivy.core.text import LabelBase  # registers Roboto

    assert "Roboto" in LabelBase._fonts
    texts = [pair[1] if lang == "en" else pair[0] for pair in TEXT.values()]
    texts += _domain_labels(lang)
    for bold in (False, True):
        gaps = {t: missing_glyphs(t, "Roboto", bold) for t in texts}
        assert {t: g for t, g in gaps.items() if g} == {}


@pytest.mark.parametrize("lang", ["id", "en"])
@pytest.mark.parametrize("size", ["800x480", "720x1280"])
def test_text_is_readable_and_disabled_buttons_say_why(display: str, kit_on_rig: Any,
                                                       size: str, lang: str) -> None:
    """Point 8: capitals of at least 3.0 mm (status bar 2.5 mm) on the panel's glass on
    every screen visited, each disabled button with its reason beside it, and every failed
    photo check's reason on the photo screen; nothing clipped."""
    out = run_scenario(display, kit_on_rig, "readable", size, lang=lang, timeout=360)
    found = out["findings"]
    found["overflows"] = out["overflows"]
    wrong = {kind: problems for kind, problems in found.items() if problems}
    assert wrong == {}, "\n".join(f"{kind}: {x}" for kind, xs in wrong.items() for x in xs)


@pytest.mark.parametrize("lang", ["id", "en"])
@pytest.mark.parametrize("size", ["800x480", "720x1280"])
def test_bedside_words_and_the_way_back_to_the_review(display: str, kit_on_rig: Any,
                                                      size: str, lang: str) -> None:
    """Points 9 and 10: "Ubah" on the review comes back to the review; the refusal names
    the resident and asks before sealing for good; the status bar's queue, the devices'
    state before a scan, the address, the finger prompt, the "cannot sign" choices, the
    outcome of a recording without prints and a paused draft's expiry say what is so."""
    out = run_scenario(display, kit_on_rig, "bedside", size, lang=lang, timeout=360)
    found = out["findings"]
    found["overflows"] = out["overflows"]
    wrong = {kind: problems for kind, problems in found.items() if problems}
    assert wrong == {}, "\n".join(f"{kind}: {x}" for kind, xs in wrong.items() for x in xs)
