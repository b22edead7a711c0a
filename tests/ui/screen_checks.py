"""Scenarios that check what is *drawn*, not what the workflow holds (issue 15).

Each check reads the widget properties the kv rules render (a finger key's colour and
text, a label's rendered lines and texture, a field's window rectangle against the docked
keyboard's top) and collects every problem instead of stopping at the first, so one
kiosk run (one size, one language) reports them all; the test asserts the lists are empty.
Screenshots go to ``artefacts/screens/`` as in every scenario.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from typing import Any

from kivy.core.window import Window
from kivy.uix.label import Label
from kivy.uix.textinput import TextInput
from kivy.uix.widget import Widget

from tests.ui.pilot import Pilot, _shown
from tests.ui.scenarios import login, open_target, photo, scan_finger

LONG_NAME = "Raden Ajeng Sri Rahayuningsih Kusumawardhani"
KEY_MIN_PX = 48  # 9 mm on the 800x480 panel (5.3 px/mm)


# -- geometry -------------------------------------------------------------------------------
def rect(w: Widget) -> tuple[float, float, float, float]:
    """The widget's rectangle in window pixels: x0, y0, x1, y1."""
    x, y = w.to_window(w.x, w.y)
    return (x, y, x + w.width, y + w.height)


def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > 0.5 and min(a[3], b[3]) - max(a[1], b[1]) > 0.5


# -- glyphs ---------------------------------------------------------------------------------
@functools.cache
def _cmap(path: str) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    return frozenset(TTFont(path, lazy=True).getBestCmap())


def font_file(font_name: str, bold: bool = False) -> str:
    """The file Kivy draws ``font_name`` from (a registered name such as Roboto, or a path)."""
    from kivy.core.text import LabelBase
    from kivy.resources import resource_find

    registered = LabelBase._fonts.get(font_name)
    if registered:
        return str(registered[2] if bold else registered[0])
    found = resource_find(font_name) or resource_find(font_name + ".ttf")
    assert found, f"font {font_name} not found"
    return str(found)


def missing_glyphs(text: str, font_name: str, bold: bool = False) -> set[str]:
    cmap = _cmap(font_file(font_name, bold))
    return {c for c in text if not c.isspace() and ord(c) not in cmap}


def _widgets() -> Iterator[Widget]:
    for root in Window.children:
        for w in root.walk(restrict=True):
            if _shown(w):
                yield w


def glyph_gaps() -> list[str]:
    """Every shown label or text field whose text has a character its font cannot draw."""
    found = []
    for w in _widgets():
        if isinstance(w, Label):
            texts, bold = [w.text], w.bold
        elif isinstance(w, TextInput):
            texts, bold = [w.text, w.hint_text], False
        else:
            continue
        for text in texts:
            gaps = missing_glyphs(text, w.font_name, bold)
            if gaps:
                found.append(f"{type(w).__name__} {text[:30]!r} lacks {sorted(gaps)} "
                             f"in {w.font_name}")
    return found


# -- labels drawn whole -------------------------------------------------------------------
def _squash(text: str) -> str:
    return "".join(text.split())


def drawn_whole(label: Label) -> list[str]:
    """A label shows all of its text (no ellipsis, nothing cut) inside its own box."""
    problems = []
    label.texture_update()
    lines = getattr(label._label, "_cached_lines", [])
    rendered = "".join(word.text for line in lines for word in line.words)
    if _squash(rendered) != _squash(label.text):
        problems.append(f"{label.text!r} drawn as {rendered!r}")
    tw, th = label.texture_size
    if tw > label.width + 1 or th > label.height + 1:
        problems.append(f"{label.text!r} needs {tw:.0f}x{th:.0f}, has "
                        f"{label.width:.0f}x{label.height:.0f}")
    return problems


def header_problems(p: Pilot, screen: str) -> list[str]:
    def check() -> list[str]:
        header = p.app.root_screen(screen).ids.header
        found = []
        for name in ("title", "who"):
            found += [f"{screen} header {name}: {x}" for x in drawn_whole(header.ids[name])]
        sx0, sy0, sx1, sy1 = rect(p.app.root_screen(screen))
        hx0, hy0, hx1, hy1 = rect(header)
        if hy1 > sy1 + 0.5 or hx0 < sx0 - 0.5 or hx1 > sx1 + 0.5:
            found.append(f"{screen} header {hx0:.0f},{hy0:.0f}-{hx1:.0f},{hy1:.0f} pushed "
                         f"off the screen {sx0:.0f},{sy0:.0f}-{sx1:.0f},{sy1:.0f}")
        boxes = {n: rect(header.ids[n]) for n in ("title", "who", "pause")}
        names = list(boxes)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if overlap(boxes[a], boxes[b]):
                    found.append(f"{screen} header: {a} overlaps {b}")
        return found
    return p.call(check)


# -- the hand diagram --------------------------------------------------------------------
def drawn_keys(p: Pilot) -> dict[int, tuple[str, tuple[float, ...], str]]:
    """Each finger key as drawn: its state, its background colour and its text."""
    def read() -> dict[int, tuple[str, tuple[float, ...], str]]:
        hands = p.app.root_screen("fingerprints").ids.hands
        keys = {}
        for n in range(1, 11):
            key = hands.ids[f"f{n}"]
            keys[n] = (key.state_name, tuple(round(c, 3) for c in key.background_color),
                       key.text)
        return keys
    return p.call(read)


def key_problems(p: Pilot, when: str, expect: dict[int, str]) -> list[str]:
    """Compare each key's drawn colour and mark with the state it must show."""
    from ui.theme import COLOURS

    found = []
    for n, (state, colour, text) in drawn_keys(p).items():
        want = expect.get(n, "todo")
        want_colour = tuple(round(c, 3) for c in COLOURS[want])
        if state != want or colour != want_colour:
            found.append(f"{when}: key {n} drawn {state} {colour}, should be {want}")
        if (want == "exception") != ("X" in text):
            found.append(f"{when}: key {n} text {text!r} for {want}")
    return found


def workflow_states(p: Pilot) -> dict[int, str]:
    """What the workflow holds, with the screen's current finger on top."""
    def read() -> dict[int, str]:
        from sync.domain import FingerPosition

        flow = p.app.kiosk.require_flow()
        states = {int(f): flow.finger_state(f) for f in FingerPosition}
        current = p.app.root_screen("fingerprints").current
        if current:
            states[current] = "current"
        return states
    return p.call(read)


# -- the keyboard --------------------------------------------------------------------------
def keyboard() -> Any:
    from kivy.uix.vkeyboard import VKeyboard

    return next((w for w in Window.children if isinstance(w, VKeyboard)), None)


def input_problems(p: Pilot, ref: str) -> list[str]:
    """Focus a field by touch: it must sit wholly above the docked keyboard, inside the
    window, and every key must be a touch target."""
    field = p.widget(ref)
    p.tap(field)
    p.wait(lambda: field.focus and keyboard() is not None
           and keyboard().layout_geometry.get("LINE_1"), f"the keyboard for {ref}", 5)
    p.settle(4)

    def check() -> list[str]:
        kb = keyboard()
        (_kx, ky), (_kw, kh) = kb.bbox
        top = ky + kh
        x0, y0, x1, y1 = rect(field)
        found = []
        if ky < -0.5 or top > Window.height + 0.5:
            found.append(f"{ref}: keyboard {ky:.0f}-{top:.0f} not wholly on the window")
        if y0 < top - 0.5:
            found.append(f"{ref}: field bottom {y0:.0f} below the keyboard top {top:.0f}")
        if y1 > Window.height + 0.5 or x0 < -0.5 or x1 > Window.width + 0.5:
            found.append(f"{ref}: field {x0:.0f},{y0:.0f}-{x1:.0f},{y1:.0f} off the window")
        mm = p.app.mm
        for row in range(1, 10):
            for _pos, (w, h) in kb.layout_geometry.get(f"LINE_{row}", []):
                w, h = w * kb.scale, h * kb.scale
                if min(w, h) < KEY_MIN_PX or h < 9 * mm - 0.5 or w < 8 * mm - 0.5:
                    found.append(f"{ref}: key {w:.0f}x{h:.0f} px in row {row} "
                                 f"({w / mm:.1f}x{h / mm:.1f} mm)")
                    return found
        return found
    found = p.call(check)
    p.shot(f"keyboard-{ref.replace('.', '-')}")
    # Done typing: the officer touches outside the field and the keyboard goes.
    p.call(lambda: setattr(field, "focus", False))
    p.wait(lambda: keyboard() is None or keyboard().parent is None, "the keyboard to close", 5)
    p.settle(2)
    return found


# -- the fingerprint screen's layout --------------------------------------------------------
FINGER_PARTS = ("header", "hands", "prompt", "result", "exception", "clear", "accept", "scan",
                "next")


def finger_layout_problems(p: Pilot, when: str) -> list[str]:
    def check() -> list[str]:
        ids = p.app.root_screen("fingerprints").ids
        boxes = {n: rect(ids[n]) for n in FINGER_PARTS
                 if ids[n].opacity > 0 and ids[n].height > 1}
        found = []
        names = list(boxes)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if overlap(boxes[a], boxes[b]):
                    found.append(f"{when}: {a} {boxes[a]} overlaps {b} {boxes[b]}")
        for n in ("prompt", "result"):
            found += [f"{when}: {x}" for x in drawn_whole(ids[n])]
        return found
    return p.call(check)


# -- disabled buttons ------------------------------------------------------------------------
def disabled_problems(where: str) -> list[str]:
    """A disabled button must not look like an enabled one: one grey for all (whatever its
    tone) and a dimmed label, so "not now" is plain at a glance."""
    from ui.theme import COLOURS
    from ui.widgets import BigButton, FingerKey

    grey, dim = COLOURS.get("disabled"), COLOURS.get("disabled_text")
    found = []
    for w in _widgets():
        if not isinstance(w, BigButton) or isinstance(w, FingerKey) or not w.disabled:
            continue
        if grey is None or dim is None:
            return [f"{where}: no disabled colours in the theme"]
        drawn = tuple(round(c, 3) for c in w.background_color)
        if drawn != tuple(round(c, 3) for c in grey):
            found.append(f"{where}: disabled {w.text!r} drawn {drawn} like tone {w.tone}")
        if tuple(w.disabled_color) != tuple(dim):
            found.append(f"{where}: disabled {w.text!r} label {tuple(w.disabled_color)}")
    return found


# -- exceptions ------------------------------------------------------------------------------
def exception_problems(p: Pilot, lang: str) -> list[str]:
    """At finger 3 (finger 2 bandaged): picking the excepted finger 2 does not ask for it on
    the sensor and shows no print; "Lainnya" on finger 3 asks for the officer's note and
    keeps it; "all remaining" then excepts fingers 4-10 with one choice (3 taps)."""
    from sync.domain import FingerException, FingerPosition
    from ui.i18n import tr

    found = []
    screen = p.app.root_screen("fingerprints")
    place = tr("fingers.place", lang, finger="").split()[0]  # "Letakkan" / "Place"
    p.tap(p.call(lambda: screen.ids.hands.ids.f2))
    if place in p.call(lambda: screen.prompt):
        found.append(f"excepted finger 2 still says {p.call(lambda: screen.prompt)!r}")
    if p.call(lambda: screen.ids.finger_image.texture is not None):
        found.append("a print is shown beside the excepted finger 2")
    if not p.call(lambda: screen.ids.scan.disabled):
        found.append("Scan is offered for the excepted finger 2")
    p.shot("excepted-finger")
    p.tap(p.call(lambda: screen.ids.hands.ids.f3))
    p.tap("fingerprints.exception")
    p.tap(p.modal_button(FingerException.OTHER.label(lang)))
    note = "jari kaku sejak lahir"
    p.settle(3)
    field = p.call(_modal_input)
    if field is None:
        shown = p.call(lambda: [type(w).__name__ for w in Window.children])
        return [*found, f"no note field for 'Lainnya' (window shows {shown}, messages "
                        f"{p.app.errors_shown})"]
    p.tap(field)
    p.call(lambda: field.insert_text(note))
    p.shot("exception-other-note")
    p.tap(p.modal_button(tr("ok", lang)))
    kept = p.call(lambda: p.app.kiosk.require_flow().recording.fingers.get(FingerPosition(3)))
    if kept is None or kept.exception != FingerException.OTHER or kept.exception_note != note:
        found.append(f"finger 3 kept {kept and (kept.exception, kept.exception_note)}")
    p.tap("fingerprints.exception")
    p.tap(p.modal_button(tr("fingers.scope_remaining", lang)))
    p.shot("exception-choices")
    p.tap(p.modal_button(FingerException.BANDAGED.label(lang)))
    p.settle()
    states = p.call(lambda: {int(f): p.app.kiosk.require_flow().finger_state(f)
                             for f in FingerPosition})
    if any(states[n] != "exception" for n in range(4, 11)):
        found.append(f"'all remaining' left {states}")
    return found


def _modal_input() -> Any:
    from kivy.uix.modalview import ModalView

    for view in Window.children:
        if isinstance(view, ModalView):
            for w in view.walk():
                if isinstance(w, TextInput):
                    return w
    return None


# -- the witness --------------------------------------------------------------------------
def witness_problems(p: Pilot) -> list[str]:
    """Touching a village-staff entry "Name (role)" fills the name and the role apart; the
    fields keep their labels once filled; Next waits for consent (and says so); the review
    shows the consent. Ends on the review screen."""
    found = []
    lang = p.call(lambda: p.app.lang)
    staff = p.widget("witness.staff")
    entries = p.call(lambda: [b.text for b in reversed(staff.children)])
    entry = next((e for e in entries if "(" in e), None)
    assert entry is not None, entries
    name, role = entry.split(" (", 1)[0], entry.split(" (", 1)[1].rstrip(")")
    p.tap(p.call(lambda: next(b for b in staff.children if b.text == entry)))
    got = (p.text("witness.witness_name"), p.text("witness.witness_role"))
    if got != (name, role):
        found.append(f"staff {entry!r} filled name/role as {got}")
    ids = p.call(lambda: p.app.root_screen("witness").ids)
    for label in ("name_label", "role_label"):
        if label not in ids:
            found.append(f"no {label} above the filled field")
        elif not p.call(lambda lab=label: _shown(ids[lab]) and ids[lab].text):
            found.append(f"{label} not shown once the field is filled")
    if not p.call(lambda: p.widget("witness.save").disabled):
        found.append("Next is enabled without the witness's consent")
    if "why" not in ids or not p.call(lambda: ids["why"].text and _shown(ids["why"])):
        found.append("the disabled Next does not say what is missing")
    found += header_problems(p, "witness")
    p.shot("witness-filled")
    p.tap("witness.consent")
    if p.call(lambda: p.widget("witness.save").disabled):
        found.append("Next stays disabled with name, role and consent")
    p.tap("witness.save")
    p.at("review")
    line = p.text("review.witness")
    from ui.i18n import tr

    if tr("review.consent_yes", lang) not in line or name not in line or role not in line:
        found.append(f"review witness line {line!r} lacks the name, role or consent")
    p.shot("review")
    return found


# -- the scenario ----------------------------------------------------------------------------
def _rename_first_target(p: Pilot) -> str:
    """Give target 1 a long name (the identity check must show it whole)."""
    def rename() -> str:
        kiosk = p.app.kiosk
        targets = list(kiosk.assignment.targets)
        targets[0] = dataclasses.replace(targets[0], name=LONG_NAME)
        kiosk.assignment = dataclasses.replace(kiosk.assignment, targets=targets)
        return str(targets[0].id)
    return p.call(rename)


def scenario_drawn(p: Pilot) -> dict[str, Any]:
    """The issue-15 screen checks at one size in the kiosk's language."""
    from sync.domain import FingerException

    lang = p.call(lambda: p.app.lang)
    found: dict[str, list[str]] = {"glyphs": [], "keys": [], "inputs": [], "layout": [],
                                   "header": [], "witness": [], "exceptions": []}

    def glyphs(where: str) -> None:
        found["glyphs"] += [f"{where}: {g}" for g in p.call(glyph_gaps)]

    # The PIN dots, on the login and technician screens.
    p.at("login")
    p.keypad("login", "123")
    glyphs("login")
    p.shot("login-pin")
    p.tap("login.keypad.clear")
    p.tap("login.technician")
    p.at("technician")
    p.keypad("technician", "4567")
    glyphs("technician")
    p.shot("technician-pin")
    p.tap("technician.back")
    login(p)
    p.at("home")
    glyphs("home")
    found["inputs"] += input_problems(p, "home.search")
    _rename_first_target(p)
    open_target(p, 1)
    glyphs("target")
    p.tap("target.start")
    p.at("photo")
    found["header"] += header_problems(p, "photo")
    photo(p)
    found["header"] += header_problems(p, "fingerprints")
    glyphs("fingerprints")

    # The hand diagram after capture, exception, delete, resume.
    screen = p.app.root_screen("fingerprints")
    found["keys"] += key_problems(p, "start", {1: "current"})
    p.shot("hands-start")
    scan_finger(p)
    done1 = p.call(lambda: p.app.kiosk.require_flow().finger_state(1))
    found["keys"] += key_problems(p, "after capture", {1: done1, 2: "current"})
    found["keys"] += key_problems(p, "after capture (workflow)", workflow_states(p))
    p.shot("hands-captured")
    bandaged = FingerException.BANDAGED.label(lang)
    for _ in range(2):  # fingers 2 and 3
        p.tap("fingerprints.exception")
        p.tap(p.modal_button(bandaged))
        p.settle()
    found["keys"] += key_problems(p, "after exception",
                                  {1: done1, 2: "exception", 3: "exception", 4: "current"})
    p.shot("hands-exception")
    p.tap(p.call(lambda: screen.ids.hands.ids.f3))  # pick finger 3 and delete its exception
    p.tap("fingerprints.clear")
    found["keys"] += key_problems(p, "after delete", {1: done1, 2: "exception", 3: "current"})
    p.shot("hands-deleted")
    p.tap("fingerprints.header.pause")
    p.at("paused")
    p.tap("paused.resume")
    p.at("fingerprints")
    found["keys"] += key_problems(p, "after resume", {1: done1, 2: "exception", 3: "current"})
    found["keys"] += key_problems(p, "after resume (workflow)", workflow_states(p))
    p.shot("hands-resumed")

    # A smudged capture: the two-line reason must not push anything over anything.
    p.control("fingerprint bad-image")
    scan_finger(p)
    result = p.call(lambda: screen.result)
    lines = p.call(lambda: len(screen.ids.result._label._cached_lines))
    assert "·" in result and lines >= 2, (result, lines)  # the case this check is about
    found["layout"] += finger_layout_problems(p, "two-line reason")
    p.shot("fingerprints-two-line-reason")
    glyphs("fingerprints")

    # Exceptions: an excepted finger is not asked onto the sensor, "Lainnya" takes the
    # officer's own words, and the rest of the fingers go in one choice.
    found["exceptions"] = exception_problems(p, lang)
    while p.call(lambda: screen.current):  # only if the shortcut failed (reported above)
        p.tap("fingerprints.exception")
        p.tap(p.modal_button(bandaged))
        p.settle()
    found["keys"] += key_problems(p, "all done", workflow_states(p))
    p.shot("hands-all-done")
    found["disabled"] = p.call(lambda: disabled_problems("fingerprints"))
    p.tap("fingerprints.next")
    p.at("signature")
    found["header"] += header_problems(p, "signature")
    p.drag("signature.pad", [(0.2, 0.5), (0.5, 0.4), (0.8, 0.6)])
    p.tap("signature.save")
    p.at("witness")
    found["header"] += header_problems(p, "witness")
    glyphs("witness")
    found["inputs"] += input_problems(p, "witness.witness_name")
    found["inputs"] += input_problems(p, "witness.witness_role")
    found["witness"] = witness_problems(p)
    p.tap("review.header.pause")
    p.at("paused")
    p.tap("paused.home")

    # "Alasan tidak direkam": the note must be typable.
    open_target(p, 3)
    p.tap("target.not_recorded")
    p.at("not_recorded")
    glyphs("not_recorded")
    found["inputs"] += input_problems(p, "not_recorded.note")
    p.shot("not-recorded")
    p.tap("not_recorded.back")
    return found
