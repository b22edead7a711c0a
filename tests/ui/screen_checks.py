"""Scenarios that check what is *drawn*, not what the workflow holds (issue 15).

Each check reads the widget properties the kv rules render (a finger key's colour and
text, a label's rendered lines and texture, a field's window rectangle against the docked
keyboard's top) and collects every problem instead of stopping at the first, so one
kiosk run (one size, one language) reports them all; the test asserts the lists are empty.
Screenshots go to ``artefacts/screens/`` as in every scenario.
"""

from __future__ import annotations

import contextlib
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
    return p.call(lambda: _finger_overlaps(when))


def _finger_overlaps(when: str) -> list[str]:
    """On the main thread: no two parts of the fingerprint screen overlap, and its prompt
    and result are drawn whole."""
    from kivy.app import App

    ids = App.get_running_app().root_screen("fingerprints").ids
    boxes = {n: rect(ids[n]) for n in FINGER_PARTS if ids[n].opacity > 0 and ids[n].height > 1}
    found = []
    names = list(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if overlap(boxes[a], boxes[b]):
                found.append(f"{when}: {a} {boxes[a]} overlaps {b} {boxes[b]}")
    for n in ("prompt", "result"):
        found += [f"{when}: {x}" for x in drawn_whole(ids[n])]
    return found


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


# -- point 8: text big enough to read, and why a button is disabled ---------------------------
# Millimetres per pixel of each panel, (across, down). The official 7" panel shows 800x480
# on 154.2 mm x 85.9 mm of glass: its pixels are 0.193 mm wide but 0.179 mm tall, and a
# capital's height is measured down. The 720x1280 panel is taken as a 7" panel with
# square pixels (the kiosk's own ``app.mm`` assumption).
PANEL_MM_PER_PX = {(800, 480): (154.2 / 800, 85.9 / 480),
                   (720, 1280): (7 * 25.4 / (720**2 + 1280**2) ** 0.5,) * 2}
BODY_CAP_MM = 3.0    # capitals of every label, button and field on the glass
STATUS_CAP_MM = 2.5  # capitals of the status bar


@functools.cache
def cap_px(font_name: str, font_size: float, bold: bool) -> int:
    """The height in pixels of a capital H as Kivy draws it at ``font_size``: the rows of
    its texture with ink in them (not the font's nominal metrics)."""
    from kivy.core.text import Label as CoreLabel

    label = CoreLabel(text="H", font_size=font_size, font_name=font_name, bold=bold)
    label.refresh()
    texture = label.texture
    w, h = texture.size
    alpha = memoryview(texture.pixels)[3::4]
    return sum(1 for row in range(h) if max(alpha[row * w:(row + 1) * w]) >= 128)


def _in_status_bar(w: Widget) -> bool:
    from ui.widgets import StatusBar

    node: Any = w.parent
    while node is not None and node is not node.parent:
        if isinstance(node, StatusBar):
            return True
        node = node.parent
    return False


def text_size_problems(where: str, inputs: bool = True) -> list[str]:
    """Every shown label (and text field, with ``inputs``) whose capitals are under the
    minimum on this panel, and every status bar label not drawn whole at its size."""
    _mm_x, mm_y = PANEL_MM_PER_PX[(int(Window.width), int(Window.height))]
    found = []
    for w in _widgets():
        if isinstance(w, Label):
            text = w.text
        elif inputs and isinstance(w, TextInput):
            text = w.text or w.hint_text
        else:
            continue
        if not any(c.isalnum() for c in text):
            continue
        status = _in_status_bar(w)
        least = STATUS_CAP_MM if status else BODY_CAP_MM
        bold = bool(getattr(w, "bold", False))
        cap = cap_px(w.font_name, round(float(w.font_size), 2), bold) * mm_y
        if cap < least - 0.005:
            found.append(f"{where}: {type(w).__name__} {text[:30]!r} capitals {cap:.2f} mm "
                         f"(font {float(w.font_size):.1f} px), under {least} mm")
        if status:
            found += [f"{where}: status {x}" for x in drawn_whole(w)]
    return found


def status_bar_problems(where: str) -> list[str]:
    """The status bar drawn whole with its longest everyday texts (battery unknown, the
    longest operator, a coarse fix, a dozen records waiting), put on it for one frame."""
    from kivy.app import App

    from ui.i18n import tr

    bar = App.get_running_app().status_bar
    lang = App.get_running_app().lang
    names = ("battery", "signal", "gnss", "outbox")
    saved = [getattr(bar, n) for n in names]
    long = (tr("status.battery_unknown", lang), "Telkomsel",
            tr("status.gnss_fix", lang, acc="120"), tr("status.outbox", lang, n=12))
    try:
        for name, text in zip(names, long, strict=True):
            setattr(bar, name, text)
        return [f"{where}: status {x}" for n in names for x in drawn_whole(bar.ids[n])]
    finally:
        for name, text in zip(names, saved, strict=True):
            setattr(bar, name, text)


def _real(w: Any) -> Any:
    return getattr(w, "__self__", w)


def disabled_reason_problems(where: str) -> list[str]:
    """Every shown disabled button says why: a WhyLabel naming it among its ``gates`` is
    on the glass (inside its scroll view's window, if any) with the button's reason."""
    from kivy.uix.scrollview import ScrollView

    from ui import widgets
    from ui.widgets import BigButton, FingerKey

    shown = list(_widgets())
    why_class = getattr(widgets, "WhyLabel", None)  # absent: no button says why
    whys = [w for w in shown if why_class is not None and isinstance(w, why_class)]
    found = []
    for button in shown:
        if not isinstance(button, BigButton) or isinstance(button, FingerKey) \
                or not button.disabled:
            continue
        label = next((w for w in whys if any(_real(g) is button for g in w.gates)), None)
        why = getattr(button, "why", "")
        if label is None or not why or why not in label.text:
            found.append(f"{where}: disabled {button.text!r} does not say why "
                         f"(why {why!r}, label {label.text if label else None!r})")
            continue
        found += [f"{where}: why of {button.text!r}: {x}" for x in drawn_whole(label)]
        x0, y0, x1, y1 = rect(label)
        node: Any = label.parent
        while node is not None and not isinstance(node, ScrollView) and node is not node.parent:
            node = node.parent
        sx0, sy0, sx1, sy1 = rect(node) if isinstance(node, ScrollView) else \
            (0, 0, Window.width, Window.height)
        if y0 < sy0 - 0.5 or y1 > sy1 + 0.5 or x0 < sx0 - 0.5 or x1 > sx1 + 0.5:
            found.append(f"{where}: why of {button.text!r} at {y0:.0f}-{y1:.0f} outside "
                         f"its view {sy0:.0f}-{sy1:.0f}")
    return found


def photo_reason_problems(p: Pilot, scene: str) -> list[str]:
    """Capture the camera's ``scene``: the photo screen shows every failed check's reason
    (``assessment.reasons``, each naming its fix), each drawn whole, not only the first."""
    kiosk = p.app.kiosk
    screen = p.app.root_screen("photo")
    lang = p.call(lambda: p.app.lang)
    seen: dict[str, Any] = {}
    take = kiosk.take_photo

    def spy() -> Any:
        kept, assessment = take()
        seen["assessment"] = assessment
        return kept, assessment

    kiosk.devices.camera_emulator.control("scene", scene)
    p.wait(lambda: not screen.hint_ok, f"the {scene} hint", 10)
    p.call(lambda: setattr(kiosk, "take_photo", spy))
    try:
        p.tap("photo.capture")
        p.wait(lambda: "assessment" in seen and not screen.capturing, f"the {scene} photo", 30)
    finally:
        p.call(lambda: delattr(kiosk, "take_photo"))
    p.settle(3)
    reasons = seen["assessment"].reasons(lang)
    if not reasons:
        return [f"{scene}: the photo check found nothing wrong"]

    def check() -> list[str]:
        labels = [w for w in _widgets() if isinstance(w, Label) and w.text]
        problems = []
        for reason in reasons:
            label = next((w for w in labels if reason in w.text), None)
            if label is None:
                problems.append(f"{scene}: reason {reason!r} not shown")
            else:
                problems += [f"{scene}: {x}" for x in drawn_whole(label)]
            shown = sum(w.text.count(reason) for w in labels)
            if shown > 1:
                problems.append(f"{scene}: reason {reason!r} drawn {shown} times")
        # What does not fit the text column scrolls, and a bar that stays drawn says so:
        # a line cut at the column's bottom edge must not look like the end of the list.
        area, box = screen.ids.text_area, screen.ids.text_box
        if box.height > area.height + 1:
            bar = (area.bar_width, area.bar_inactive_color[3], area.bar_color[3])
            if area.bar_width < p.app.mm or min(bar[1:]) < 0.9:
                problems.append(f"{scene}: the reasons overflow the column ({box.height:.0f} "
                                f"> {area.height:.0f} px) with no visible scroll bar {bar}")
        return problems
    found = p.call(check)
    p.shot(f"photo-reasons-{scene}")
    return found


def scenario_readable(p: Pilot) -> dict[str, Any]:
    """Point 8 at one size in the kiosk's language: text sizes on every screen visited, why
    each disabled button is disabled on the screens of login, technician, photo,
    fingerprints and witness, and every failed photo check's reason."""
    found: dict[str, list[str]] = {"text_size": [], "why": [], "photo": [], "glyphs": [],
                                   "layout": []}
    mine = ("login", "technician", "home", "target", "photo", "photo_approval",
            "fingerprints", "witness", "signature", "not_recorded")

    def look(where: str, shot: str) -> None:
        screen = p.call(lambda: p.app.screens.current)
        found["text_size"] += p.call(lambda: text_size_problems(where, screen in mine))
        found["glyphs"] += [f"{where}: {g}" for g in p.call(glyph_gaps)]
        if screen in mine:
            found["why"] += p.call(lambda: disabled_reason_problems(where))
        p.shot(shot)

    p.at("login")
    look("login", "login")
    found["text_size"] += p.call(lambda: status_bar_problems("login"))
    p.tap("login.technician")
    p.at("technician")
    look("technician", "technician")
    p.tap("technician.back")
    login(p)
    p.at("home")
    look("home", "home")
    _rename_first_target(p)  # the longest name: the header wraps it on every step
    open_target(p, 1)
    look("target", "target")
    p.tap("target.start")
    p.at("photo")
    preview = p.widget("photo.preview")
    p.wait(lambda: preview.texture is not None, "the live preview")
    look("photo before a capture", "photo")
    for scene in ("cluttered", "turned", "dark"):
        found["photo"] += photo_reason_problems(p, scene)
        look(f"photo {scene}", f"photo-{scene}")
    screen = p.app.root_screen("photo")
    p.app.kiosk.devices.camera_emulator.control("scene", "good")
    p.wait(lambda: screen.hint_ok, "the good hint", 10)
    p.tap("photo.capture")
    p.wait(lambda: not screen.capturing and not screen.below_threshold, "the good photo", 30)
    p.tap("photo.use")
    p.at("photo_approval")
    look("photo_approval", "photo-approval")
    p.tap("photo_approval.yes")
    p.at("fingerprints")
    look("fingerprints at the start", "fingerprints")
    p.call(lambda: _show_long_result(p))
    p.settle(3)
    found["layout"] = p.call(lambda: finger_layout_problems_now("long result"))
    p.shot("fingerprints-long-result")
    p.call(lambda: setattr(p.app.root_screen("fingerprints"), "result", ""))
    p.tap("fingerprints.exception")
    p.tap(p.modal_button(tr_lang(p, "fingers.scope_remaining")))
    found["text_size"] += p.call(lambda: text_size_problems("exception choices"))
    found["why"] += p.call(lambda: choices_in_sight("exception choices"))
    p.shot("exception-choices")
    from sync.domain import FingerException

    p.tap(p.modal_button(FingerException.BANDAGED.label(p.call(lambda: p.app.lang))))
    p.settle()
    look("fingerprints all done", "fingerprints-done")
    # an excepted finger picked again: Scan is disabled until its exception is deleted
    p.tap(p.call(lambda: p.app.root_screen("fingerprints").ids.hands.ids.f1))
    look("fingerprints excepted finger", "fingerprints-excepted")
    p.tap("fingerprints.next")
    p.at("signature")
    look("signature", "signature")
    p.drag("signature.pad", [(0.2, 0.5), (0.5, 0.4), (0.8, 0.6)])
    p.tap("signature.save")
    p.at("witness")
    look("witness", "witness")
    p.tap("witness.consent")
    look("witness with consent", "witness-consent")
    p.tap("witness.header.pause")
    p.at("paused")
    look("paused", "paused")
    p.tap("paused.home")
    p.at("home")
    return found


def choices_in_sight(where: str) -> list[str]:
    """Every button of an open choice view wholly inside its scroll view's window: bigger
    text must not push a choice out of sight (or out of a finger's reach)."""
    from kivy.uix.modalview import ModalView
    from kivy.uix.scrollview import ScrollView

    found = []
    for view in Window.children:
        if not isinstance(view, ModalView):
            continue
        for scroller in (w for w in view.walk() if isinstance(w, ScrollView)):
            _sx0, sy0, _sx1, sy1 = rect(scroller)
            for w in scroller.walk(restrict=True):
                if isinstance(w, Label) and w is not scroller and w.text:
                    _x0, y0, _x1, y1 = rect(w)
                    if y0 < sy0 - 0.5 or y1 > sy1 + 0.5:
                        found.append(f"{where}: {w.text!r} at {y0:.0f}-{y1:.0f} outside "
                                     f"the choices' window {sy0:.0f}-{sy1:.0f}")
    return found


def _show_long_result(p: Pilot) -> None:
    """The longest result the fingerprint screen shows (a poor scan's reason, which wraps),
    set as the screen sets it after a capture (the sensor itself is not needed to check
    that it fits beside the prompt and the disabled buttons' reasons)."""
    from sensors.fingerprint_quality import CONVERT_MESSY, SENSOR_REASONS
    from sync.domain import FingerPosition

    lang = p.app.lang
    screen = p.app.root_screen("fingerprints")
    messy = SENSOR_REASONS[CONVERT_MESSY]
    reason = f"{messy[0].capitalize()}: {messy[2].lower()}" if lang == "id" else \
        f"{messy[1].capitalize()}: {messy[3].lower()}"
    score = tr_lang(p, "fingers.quality").format(finger=FingerPosition(1).label(lang), score=12)
    screen.result = f"{score} · {reason}"


def finger_layout_problems_now(when: str) -> list[str]:
    """:func:`finger_layout_problems` on the main thread, plus: the text area shows all of
    its text (nothing scrolled out of sight)."""
    from kivy.app import App

    ids = App.get_running_app().root_screen("fingerprints").ids
    found = _finger_overlaps(when)
    area, content = ids["text_area"], ids["text_box"]
    if content.height > area.height + 0.5:
        found.append(f"{when}: the text needs {content.height:.0f} px, its area has "
                     f"{area.height:.0f} (scrolled out of sight)")
    return found


def tr_lang(p: Pilot, key: str) -> str:
    from ui.i18n import tr

    return tr(key, p.call(lambda: p.app.lang))


# -- points 9 and 10: the way back to the review, the refusal, the words -------------------
# The words the officer must (and must not) read, written out here, not taken from the
# table under test, so a wrong entry in ui/i18n.py fails.
ALL_SENT = {"id": "Terkirim semua", "en": "All sent"}
ONE_WAITING = {"id": "1 menunggu kirim", "en": "1 waiting to upload"}
PLACE_THUMB = {"id": "Letakkan ibu jari kanan di sensor", "en": "Place the right thumb on "
               "the sensor"}
THUMBPRINT = {"id": "Cap jempol", "en": "Thumbprint"}
OTHER_REASON = {"id": "Lainnya", "en": "Other"}
SEAL_FOR_GOOD = {"id": "tidak dapat diubah", "en": "cannot be changed"}
FINGERPRINT_LIST = "Daftar sidik jari"  # reads as "list of fingerprints"
ANY_TIME = {"id": "kapan saja", "en": "any time"}


def _status_outbox(p: Pilot, want: str) -> str:
    """The status bar's outbox label as drawn, once it shows ``want`` (or the last text
    after the wait: the status loop redraws every few seconds)."""
    label = p.call(lambda: p.app.status_bar.ids.outbox)
    with contextlib.suppress(AssertionError):
        p.wait(lambda: label.text == want, f"the status bar to show {want!r}", 12)
    return str(p.call(lambda: label.text))


def _line_button(p: Pilot, ref: str) -> Widget:
    """The "Ubah" button of one review line."""
    from kivy.uix.button import Button

    line = p.widget(ref)
    return p.call(lambda: next(w for w in line.children if isinstance(w, Button)))


def _devices_text(p: Pilot) -> str | None:
    ids = p.call(lambda: p.app.root_screen("home").ids)
    if "devices" not in ids:
        return None
    return str(p.call(lambda: ids["devices"].text if _shown(ids["devices"]) else ""))


def word_breaks(label: Label) -> list[str]:
    """A wrapped label breaks its lines between words, never inside one ("Daftarka / n")."""
    label.texture_update()
    lines = getattr(label._label, "_cached_lines", [])
    words = " ".join("".join(w.text for w in line.words) for line in lines).split()
    return [] if words == label.text.split() else [f"{label.text!r} drawn as {words}"]


def _home_row(p: Pilot, number: int) -> str:
    return str(p.call(lambda: [b.text for b in
                               reversed(p.widget("home.targets").children)][number - 1]))


def scenario_bedside(p: Pilot) -> dict[str, Any]:
    """Issue 15 points 9 and 10 as drawn, at one size in the kiosk's language: the status
    bar's queue, each device's state before any scan, the address, the finger prompt,
    "cannot sign" choices, "Ubah" back to the review, an outcome that says what was
    recorded, a paused draft's expiry, and a refusal that names the resident and asks
    before it seals."""
    from sync.domain import FingerException, Outcome, TargetStatus
    from ui.i18n import tr

    lang = p.call(lambda: p.app.lang)
    found: dict[str, list[str]] = {k: [] for k in (
        "status", "devices", "words", "address", "signature", "change", "outcome", "paused",
        "refusal", "glyphs")}

    def glyphs(where: str) -> None:
        found["glyphs"] += [f"{where}: {g}" for g in p.call(glyph_gaps)]

    login(p)
    p.at("home")
    drawn = _status_outbox(p, ALL_SENT[lang])
    if drawn != ALL_SENT[lang]:
        found["status"].append(f"nothing queued, the status bar says {drawn!r}")
    # Each device's state, before anything asked the sensor for a print.
    ready = [tr("device.camera", lang, state=tr("device.ready", lang)),
             tr("device.fingerprint", lang, state=tr("device.ready", lang))]
    shown = _devices_text(p)
    if shown is None:
        found["devices"].append("home shows no device state")
    else:
        try:
            p.wait(lambda: all(r in (_devices_text(p) or "") for r in ready),
                   "the devices' state", 10)
        except AssertionError:
            found["devices"].append(f"home shows {_devices_text(p)!r}, not {ready}")
    enroll = p.text("home.enroll")
    if enroll == FINGERPRINT_LIST:
        found["words"].append(f"home button {enroll!r}")
    for ref in ("home.lock", "home.enroll", "home.technician", "home.logout"):
        button = p.widget(ref)
        found["words"] += p.call(lambda b=button: word_breaks(b))
    glyphs("home")
    p.shot("home")

    # The address without a street: no stray commas.
    open_target(p, 1)
    details = p.text("target.details")
    address = next(line for line in details.splitlines()
                   if line.startswith(tr("target.address", lang)))
    if ": ," in address or ", ," in address or address.rstrip().endswith(","):
        found["address"].append(f"target shows {address!r}")
    p.tap("target.start")
    photo(p)
    screen = p.app.root_screen("fingerprints")
    prompt = p.call(lambda: screen.prompt)
    if PLACE_THUMB[lang] not in prompt:
        found["words"].append(f"finger prompt {prompt!r}, not {PLACE_THUMB[lang]!r}")
    # Every finger bandaged: nothing printed, so the outcome must not say "complete".
    p.tap("fingerprints.exception")
    p.tap(p.modal_button(tr("fingers.scope_remaining", lang)))
    p.tap(p.modal_button(FingerException.BANDAGED.label(lang)))
    p.settle()
    p.tap("fingerprints.next")
    p.at("signature")

    # "Cannot sign": a thumbprint and the officer's own words are among the choices.
    p.shot("signature")
    for ref in ("signature.cannot", "signature.clear", "signature.save"):
        button = p.widget(ref)
        found["words"] += p.call(lambda b=button: word_breaks(b))
    p.tap("signature.cannot")
    p.modal_button(tr("sign.reason.weak", lang))
    texts = p.modal_texts()
    for want in (THUMBPRINT, OTHER_REASON):
        if not any(t.startswith(want[lang]) for t in texts):
            found["signature"].append(f"no {want[lang]!r} among {texts}")
    p.shot("cannot-sign-choices")
    glyphs("cannot-sign")
    typed = "jari tangan kaku"
    if any(t == OTHER_REASON[lang] for t in texts):
        p.tap(p.modal_button(OTHER_REASON[lang]))
        note = p.wait(_modal_input, "the note for another reason", 5)
        p.call(lambda: note.insert_text(typed))
        p.shot("cannot-sign-other")
        p.tap(p.modal_button(tr("ok", lang)))
    else:
        p.tap(p.modal_button(tr("sign.reason.weak", lang)))
    p.at("witness")
    reason = p.call(lambda: p.app.kiosk.require_flow().recording.signature.cannot_sign_reason)
    if any(t == OTHER_REASON[lang] for t in texts) and reason != typed:
        found["signature"].append(f"'other' kept the reason {reason!r}")
    p.type_into("witness.witness_name", "Sunarti")
    p.type_into("witness.witness_role", "anak kandung")
    p.tap("witness.consent")
    p.tap("witness.save")
    p.at("review")
    outcome = p.text("review.outcome")
    if Outcome.RECORDED.label(lang) in outcome.split(": ", 1)[-1].split(" · "):
        found["outcome"].append(f"no print, ten exceptions, and the review says {outcome!r}")
    p.shot("review-no-print")

    # "Ubah" from the review: finishing the changed step comes back to the review.
    for line, step in (("review.signature", "signature"), ("review.fingers", "fingerprints")):
        p.tap(_line_button(p, line))
        p.at(step)
        if step == "signature":
            p.drag("signature.pad", [(0.2, 0.5), (0.5, 0.4), (0.8, 0.6)])
            p.tap("signature.save")
        else:
            p.tap("fingerprints.next")
        p.wait(lambda s=step: p.screen != s, f"the step after {step}", 10)
        p.settle()
        if p.screen != "review":
            found["change"].append(f"'Ubah' {step}, then its next: {p.screen}, not review")
            while p.screen != "review":  # the old way: through every later step again
                if p.screen == "witness":
                    p.tap("witness.save")
                elif p.screen == "signature":
                    p.drag("signature.pad", [(0.2, 0.5), (0.5, 0.4), (0.8, 0.6)])
                    p.tap("signature.save")
                p.settle()

    # Paused: until when the draft keeps, and no "being recorded" beside "paused".
    p.tap("review.header.pause")
    p.at("paused")
    detail = p.text("paused.detail")
    live, _soon = p.call(lambda: p.app.kiosk.drafts())
    from datetime import datetime

    until = datetime.fromtimestamp(live[0].expires_at).strftime("%d-%m-%Y") if live else "?"
    if ANY_TIME[lang] in detail or until not in detail:
        found["paused"].append(f"paused says {detail!r} (the draft keeps until {until})")
    p.shot("paused")
    p.tap("paused.home")
    p.at("home")
    row = _home_row(p, 1)
    if TargetStatus.IN_PROGRESS.label(lang) in row or tr("home.paused_tag", lang) not in row:
        found["paused"].append(f"home row {row!r}")
    p.shot("home-paused")
    open_target(p, 1)
    p.tap("target.start")
    p.at("review")
    p.tap("review.seal")
    p.at("sealed", timeout=30)
    sealed = p.text("sealed.detail")
    if not sealed.startswith(Outcome.PARTIAL.label(lang)):
        found["outcome"].append(f"sealed with no print: {sealed!r}")
    p.tap("sealed.home")
    p.at("home")
    drawn = _status_outbox(p, ONE_WAITING[lang])
    if drawn != ONE_WAITING[lang]:
        found["status"].append(f"one record queued, the status bar says {drawn!r}")

    # The refusal names the resident and asks before sealing for good.
    open_target(p, 3)
    resident = p.call(lambda: p.app.kiosk.assignment.targets[2])
    p.tap("target.not_recorded")
    p.at("not_recorded")
    ids = p.call(lambda: p.app.root_screen("not_recorded").ids)
    who = p.call(lambda: ids["who"].text if "who" in ids and _shown(ids["who"]) else "")
    # The NIK masked as the kiosk masks it: its last four digits only.
    if resident.name not in who or resident.nik[-4:] not in who or resident.nik in who:
        found["refusal"].append(f"the refusal screen names {who!r}")
    elif p.call(lambda: drawn_whole(ids["who"])):
        found["refusal"] += p.call(lambda: drawn_whole(ids["who"]))
    box = p.widget("not_recorded.outcomes")
    p.tap(p.call(lambda: next(b for b in box.children if b.outcome == "refused")))
    p.shot("not-recorded-named")
    glyphs("not_recorded")
    p.tap("not_recorded.confirm")
    p.settle(5)
    if p.screen != "not_recorded" or p._modal_busy():
        found["refusal"].append(f"one tap sealed it (screen {p.screen})")
        p.at("sealed", timeout=30)
    else:
        texts = p.modal_texts()
        said = " ".join(texts)
        for want in (resident.name, Outcome.REFUSED.label(lang), SEAL_FOR_GOOD[lang]):
            if want not in said:
                found["refusal"].append(f"the confirmation {texts} does not say {want!r}")
        p.shot("not-recorded-confirm")
        glyphs("not-recorded-confirm")
        p.tap(p.modal_button(tr("cancel", lang)))
        p.wait(lambda: not p.modal_texts(), "the confirmation to close", 5)
        with_draft = p.call(lambda: p.app.kiosk.row(resident.id).status)
        if p.screen != "not_recorded" or with_draft == "not_recorded":
            found["refusal"].append(f"'Batal' left {p.screen}, target {with_draft}")
        p.tap("not_recorded.confirm")
        p.tap(p.modal_button(tr("notrec.sure_yes", lang)))
        p.at("sealed", timeout=30)
    if Outcome.REFUSED.label(lang) not in p.text("sealed.detail"):
        found["refusal"].append(f"sealed as {p.text('sealed.detail')!r}")
    p.tap("sealed.home")
    p.at("home")

    # A cable pulled shows on home without a scan; plugged back, it is ready again.
    if _devices_text(p) is not None:
        absent = tr("device.fingerprint", lang, state=tr("device.absent", lang))
        p.control("fingerprint unplug")
        p.tap("home.lang")
        p.tap("home.lang")
        try:
            p.wait(lambda: absent in (_devices_text(p) or ""), "the unplugged sensor", 15)
        except AssertionError:
            found["devices"].append(f"sensor unplugged, home shows {_devices_text(p)!r}")
        p.shot("home-sensor-unplugged")
        p.control("fingerprint replug")
    return found
