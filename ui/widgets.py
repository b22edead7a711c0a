"""The kiosk's building blocks: big buttons, the status bar, the PIN keypad, the camera
preview with its face guide, the hand diagram, the signature pad and the modal views.

Sizes are in millimetres of the glass (``app.mm`` pixels each, from the 7-inch
diagonal of the official displays), so a touch target is at least 9 mm on the
800x480 landscape panel and on the 720x1280 portrait one alike. Text sizes come from
``ui.theme.TEXT_MM`` the same way (body capitals of 3 mm or more on either panel). A
disabled button carries ``why`` it is disabled, and a :class:`WhyLabel` beside it draws
that reason while it is disabled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from kivy.app import App
from kivy.clock import Clock
from kivy.graphics import Color, Line
from kivy.graphics.texture import Texture
from kivy.lang import Builder
from kivy.properties import (
    BooleanProperty,
    ColorProperty,
    DictProperty,
    ListProperty,
    NumericProperty,
    ObjectProperty,
    StringProperty,
)
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.image import Image
from kivy.uix.label import Label
from kivy.uix.modalview import ModalView
from kivy.uix.textinput import TextInput
from kivy.uix.vkeyboard import VKeyboard
from kivy.uix.widget import Widget

from ui.theme import COLOURS


class KLabel(Label):
    """A label that wraps inside its width (and says so if it does not fit: see the tests)."""


class Title(KLabel):
    """A screen's heading."""


class BigButton(Button):
    """A button at least 10 mm tall with a solid colour (``tone``: primary, go, warn,
    danger, neutral)."""

    tone = StringProperty("primary")
    # room kept around its text when it grows to fit (-1: 1.6 mm)
    fit_pad = NumericProperty(-1)
    # Why the button is disabled, in the kiosk's language, from the workflow's or the
    # device's state (a WhyLabel beside it draws it while the button is disabled).
    why = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        self._base: float | None = None  # the height its kv rule (or its screen) gave it
        self._fitting = False
        super().__init__(**kwargs)
        self.fbind("texture_size", self._fit)
        self.fbind("height", self._height_set)

    def _height_set(self, _button: Any, height: float) -> None:
        if not self._fitting:
            self._base = height
            self._fit()

    def _fit(self, *_args: Any) -> None:
        """As tall as its rule says, taller when its text needs more lines (big text in a
        narrow button wraps): never drawn past its edges. Done here, not in the kv rule,
        so a screen's own ``height`` for a button keeps working (a derived kv rule does
        not unbind the base rule's expression)."""
        if self._base is None:
            self._base = self.height
        base = self._base
        if base <= 1:  # a hidden button stays hidden
            return
        running = app()
        pad = self.fit_pad if self.fit_pad >= 0 else \
            1.6 * float(getattr(running, "mm", 5.25))
        self._fitting = True
        try:
            self.height = max(base, self.texture_size[1] + pad)
        finally:
            self._fitting = False


class WhyLabel(KLabel):
    """Why the ``gates`` (buttons) beside it are disabled: each disabled gate's ``why``,
    one a line (named by the button's text when there are several), nothing and no height
    while they are all enabled. A disabled button that does not say why reads as broken."""

    gates = ListProperty([])

    def __init__(self, **kwargs: Any) -> None:
        self._bound: list[Any] = []
        self._redo = Clock.create_trigger(self._update)
        super().__init__(**kwargs)

    def on_gates(self, _label: Any, gates: list[Any]) -> None:
        for gate in self._bound:
            gate.funbind("disabled", self._redo)
            gate.funbind("why", self._redo)
            gate.funbind("text", self._redo)
            gate.funbind("opacity", self._redo)
        self._bound = list(gates)
        for gate in self._bound:
            gate.fbind("disabled", self._redo)
            gate.fbind("why", self._redo)
            gate.fbind("text", self._redo)
            gate.fbind("opacity", self._redo)
        self._update()

    def _update(self, *_args: Any) -> None:
        shut = [g for g in self.gates if g.disabled and g.why and g.opacity > 0]
        if len(self.gates) == 1:
            self.text = shut[0].why if shut else ""
            return
        named: dict[str, list[str]] = {}  # one line a reason: "Delete, Next: wait: ..."
        for gate in shut:
            named.setdefault(gate.why, []).append(gate.text)
        self.text = "\n".join(f"{', '.join(names)}: {why}" for why, names in named.items())


def still_needed(pairs: Sequence[tuple[str, str]], lang: str, shown: int = 2) -> str:
    """What a step still needs (the workflow's ``missing(step)`` pairs), short enough for
    one or two lines under a button: the first ``shown`` and how many more."""
    from ui.i18n import tr

    names = [en if lang == "en" else id_ for id_, en in pairs]
    if not names:
        return ""
    listed = ", ".join(names[:shown])
    if len(names) > shown:
        listed = tr("why.more", lang, items=listed, n=len(names) - shown)
    return tr("why.needs", lang, items=listed)


class StatusBar(BoxLayout):
    """Battery, signal and operator, GNSS, records waiting to upload, and the clock."""

    battery = StringProperty("")
    signal = StringProperty("")
    gnss = StringProperty("")
    outbox = StringProperty("")
    clock = StringProperty("")
    battery_low = BooleanProperty(False)
    bars = NumericProperty(-1)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._snap: Any = None  # the last reading shown
        Clock.schedule_interval(self._tick, 1.0)
        self._tick(0)

    def _tick(self, _dt: float) -> None:
        self.clock = time.strftime("%H:%M")

    def relabel(self, lang: str) -> None:
        """The last reading again, in ``lang``: the language switch redraws the bar at
        once instead of at the next reading (up to three seconds later)."""
        if self._snap is not None:
            self.show(self._snap, lang)

    def show(self, snap: Any, lang: str) -> None:
        from ui.i18n import tr

        self._snap = snap
        if snap.battery_percent is None:
            self.battery = tr("status.battery_unknown", lang)
        else:
            self.battery = f"{'+' if snap.charging else ''}{snap.battery_percent:.0f}%"
        self.battery_low = snap.battery_percent is not None and snap.battery_percent < 20
        self.bars = -1 if snap.signal_bars is None else snap.signal_bars
        self.signal = (snap.operator or "") if snap.signal_bars is not None else \
            tr("status.no_signal", lang)
        self.gnss = (tr("status.gnss_fix", lang, acc=f"{snap.gnss_accuracy_m:.0f}")
                     if snap.gnss_accuracy_m is not None else tr("status.gnss_none", lang))
        self.outbox = tr("status.outbox", lang, n=snap.outbox)


class KInput(TextInput):
    """A one-line text field that the app lifts above the docked keyboard while it has the
    focus (Kivy's own ``softinput_mode`` pushes the docked keyboard off the glass).
    ``lift`` False for a field in a modal view, which sits at the top of the glass."""

    lift = BooleanProperty(True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fbind("focus", self._focused)

    def _focused(self, _field: Any, focused: bool) -> None:
        running = app()
        if self.lift and running is not None and hasattr(running, "keep_above_keyboard"):
            running.keep_above_keyboard(self if focused else None)


KEYBOARD_ROWS = 5
KEYBOARD_LAYOUT = str(Path(__file__).with_name("keyboard.json"))


class KioskKeyboard(VKeyboard):
    """The docked on-screen keyboard: ten keys a row (``keyboard.json``), each key at least
    9 mm tall and 48 px wide on either panel, across the whole width at the bottom. Ten
    keys of 9 mm do not fit across the 87 mm of a portrait panel: there they are 8.1 mm
    wide (the 9 mm holds in landscape: 15 mm)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("layout", KEYBOARD_LAYOUT)
        super().__init__(**kwargs)
        self.margin_hint = [0.02, 0.005, 0.02, 0.005]
        self.key_margin = [3, 2, 3, 2]

    def setup_mode_dock(self, *_args: Any) -> None:
        self.do_translation = self.do_rotation = self.do_scale = False
        self.rotation = 0
        win = self.get_parent_window()
        self._fit(win)
        win.bind(on_resize=self._update_dock_mode)

    def _update_dock_mode(self, win: Any, *_args: Any) -> None:
        self._fit(win)
        if self.layout in self.available_layouts:
            self.refresh(True)

    def _fit(self, win: Any) -> None:
        running = app()
        mm = float(running.mm) if running is not None and hasattr(running, "mm") else 5.25
        top, _right, bottom, _left = self.margin_hint
        line = max(48.0, 9 * mm) + self.key_margin[0] + self.key_margin[2]
        self.scale = 1.0
        self.size = (win.width, KEYBOARD_ROWS * line / (1 - top - bottom))
        self.pos = (0, 0)
        self.font_size = 4 * mm


class SignalBars(Widget):
    """Four bars, filled up to ``bars`` (-1 = unknown: all hollow)."""

    bars = NumericProperty(-1)


class KeyPad(GridLayout):
    """Digits 1-9, clear, 0, delete; ``handler(key)`` with "0"-"9", "clear" or "del"."""

    handler = ObjectProperty(None)

    def press(self, key: str) -> None:
        if self.handler is not None:
            self.handler(key)


class PinDots(Widget):
    """One filled dot per PIN digit typed (a dash line when none), drawn on the canvas:
    no glyph needed, so no font can turn them into empty boxes."""

    count = NumericProperty(0)
    colour = ColorProperty(COLOURS["text"])

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bind(count=self._redraw, pos=self._redraw, size=self._redraw,
                  colour=self._redraw)

    def _redraw(self, *_args: Any) -> None:
        from kivy.graphics import Ellipse

        self.canvas.clear()
        d = min(self.height * 0.55, 40.0)  # dot diameter
        gap = d * 0.6
        y = self.center_y - d / 2
        with self.canvas:
            Color(*self.colour)
            if not self.count:
                Line(points=[self.x, self.center_y, self.x + d * 1.5, self.center_y],
                     width=max(1.5, d / 10))
            for i in range(int(self.count)):
                Ellipse(pos=(self.x + i * (d + gap), y), size=(d, d))


class PreviewView(Image):
    """The live camera picture with the face guide (an oval where the face belongs).

    ``guide_ok`` turns the guide green when the live check is happy, amber otherwise.
    """

    guide_ok = BooleanProperty(False)

    def show_frame(self, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        texture = self.texture
        if texture is None or tuple(texture.size) != (w, h):
            texture = Texture.create(size=(w, h), colorfmt="rgb")
            texture.flip_vertical()
        texture.blit_buffer(np.ascontiguousarray(rgb).tobytes(), colorfmt="rgb",
                            bufferfmt="ubyte")
        self.texture = texture
        self.canvas.ask_update()


class FingerKey(BigButton):
    """One finger of the hand diagram: its number, coloured by state."""

    position = NumericProperty(0)
    state_name = StringProperty("todo")


class HandDiagram(BoxLayout):
    """Both hands as the officer sees them, palms down: right hand 1 (thumb) to 5 (little),
    left hand 6 (thumb) to 10 (little). ``states`` maps a position to todo, current, done,
    low, exception; ``handler(position)`` when a finger is touched."""

    states = DictProperty({})
    handler = ObjectProperty(None)

    def on_kv_post(self, _base: Any) -> None:
        self.on_states(self, self.states)

    def on_states(self, _diagram: Any, states: dict[int, str]) -> None:
        """Push each finger's state onto its key. A kv expression ``root.states.get(n)``
        is not re-run when the dict changes (kv binds attributes, not a method call's
        result), so the keys are set here, each time the screen hands over new states."""
        for position in range(1, 11):
            key = self.ids.get(f"f{position}")
            if key is not None:
                key.state_name = states.get(position, "todo")

    def pick(self, position: int) -> None:
        if self.handler is not None:
            self.handler(position)


class SignaturePad(Widget):
    """A white pad; strokes as lists of (x, y, t) with x, y in 0..1 (y down, as on paper)
    and t in seconds since the first touch."""

    strokes = ListProperty([])
    line_width = NumericProperty(2.5)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._t0: float | None = None
        self._current: list[tuple[float, float, float]] | None = None
        self._line: Line | None = None
        self.bind(size=self._redraw, pos=self._redraw)

    def _point(self, touch: Any) -> tuple[float, float, float]:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        x = (touch.x - self.x) / max(1.0, self.width)
        y = 1.0 - (touch.y - self.y) / max(1.0, self.height)
        return (round(min(1.0, max(0.0, x)), 4), round(min(1.0, max(0.0, y)), 4),
                round(now - self._t0, 3))

    def on_touch_down(self, touch: Any) -> bool:
        if not self.collide_point(*touch.pos):
            return False
        touch.grab(self)
        self._current = [self._point(touch)]
        with self.canvas:
            Color(*COLOURS["ink"])
            self._line = Line(points=[touch.x, touch.y], width=self.line_width)
        return True

    def on_touch_move(self, touch: Any) -> bool:
        if touch.grab_current is not self or self._current is None or self._line is None:
            return False
        if self.collide_point(*touch.pos):
            self._current.append(self._point(touch))
            self._line.points += [touch.x, touch.y]
        return True

    def on_touch_up(self, touch: Any) -> bool:
        if touch.grab_current is not self:
            return False
        touch.ungrab(self)
        if self._current:
            self.strokes = [*self.strokes, self._current]
        self._current, self._line = None, None
        return True

    def clear(self) -> None:
        self.strokes = []
        self._t0 = None
        self._redraw()

    def _redraw(self, *_args: Any) -> None:
        self.canvas.clear()
        with self.canvas:
            Color(*COLOURS["ink"])
            for stroke in self.strokes:
                points: list[float] = []
                for x, y, _t in stroke:
                    points += [self.x + x * self.width, self.y + (1 - y) * self.height]
                Line(points=points, width=self.line_width)


class ChoiceView(ModalView):
    """A modal list of big buttons; ``choose(value)`` is called with the one touched.
    ``cols`` columns of them (two fit a long list on the short landscape panel); ``extra``
    holds widgets shown above the list."""

    title = StringProperty("")
    cols = NumericProperty(1)

    def __init__(self, title: str, choices: Sequence[tuple[str, Any]],
                 choose: Callable[[Any], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = title
        box = self.ids.choices
        for text, value in choices:
            button = BigButton(text=text, tone="neutral")
            button.bind(on_release=lambda _b, v=value: (self.dismiss(), choose(v)))
            box.add_widget(button)


class NoteView(ModalView):
    """A short note typed by the officer (the exception "Other"), at the top of the glass so
    the docked keyboard leaves it visible; ``done(note)`` on OK with a non-empty note."""

    title = StringProperty("")
    hint = StringProperty("")
    why = StringProperty("")

    def __init__(self, title: str, hint: str, done: Callable[[str], None],
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title, self.hint, self._done = title, hint, done

    def on_open(self) -> None:
        self.ids.note.focus = True

    def confirm(self) -> None:
        note = self.ids.note.text.strip()
        if not note:
            from ui.i18n import tr

            self.why = tr("fingers.other_needed", app().lang)
            return
        self.dismiss()
        self._done(note)


class MessageView(ModalView):
    """An error or notice: what happened and what to do next, with one OK button."""

    title = StringProperty("")
    message = StringProperty("")
    tone = StringProperty("danger")


class BusyView(ModalView):
    """Work in progress (sealing, saving): a moving bar; the screen stays alive."""

    message = StringProperty("")
    progress = NumericProperty(-1)  # -1: indeterminate


class TonePanel(FloatLayout):
    """A coloured panel (``tone`` names a colour of :data:`COLOURS`)."""

    tone = StringProperty("panel")
    colour = ColorProperty(COLOURS["panel"])


def app() -> Any:
    return App.get_running_app()


Builder.load_file(str(Path(__file__).with_suffix(".kv")))
