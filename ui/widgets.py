"""The kiosk's building blocks: big buttons, the status bar, the PIN keypad, the camera
preview with its face guide, the hand diagram, the signature pad and the modal views.

Sizes are in millimetres of the glass (``app.mm`` pixels each, from the 7-inch
diagonal of the official displays), so a touch target is at least 9 mm on the
800x480 landscape panel and on the 720x1280 portrait one alike.
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
        Clock.schedule_interval(self._tick, 1.0)
        self._tick(0)

    def _tick(self, _dt: float) -> None:
        self.clock = time.strftime("%H:%M")

    def show(self, snap: Any, lang: str) -> None:
        from ui.i18n import tr

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


class SignalBars(Widget):
    """Four bars, filled up to ``bars`` (-1 = unknown: all hollow)."""

    bars = NumericProperty(-1)


class KeyPad(GridLayout):
    """Digits 1-9, clear, 0, delete; ``handler(key)`` with "0"-"9", "clear" or "del"."""

    handler = ObjectProperty(None)

    def press(self, key: str) -> None:
        if self.handler is not None:
            self.handler(key)


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
    """A modal list of big buttons; ``choose(value)`` is called with the one touched."""

    title = StringProperty("")

    def __init__(self, title: str, choices: Sequence[tuple[str, Any]],
                 choose: Callable[[Any], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = title
        box = self.ids.choices
        for text, value in choices:
            button = BigButton(text=text, tone="neutral")
            button.bind(on_release=lambda _b, v=value: (self.dismiss(), choose(v)))
            box.add_widget(button)


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
