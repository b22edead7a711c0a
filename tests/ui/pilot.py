"""Drive a running kiosk by touch from a scenario thread, as a person at the screen would.

Every action is a real touch: a motion event posted to Kivy's event loop at a widget's
centre (down, then up a frame later), which the window dispatches through the widget
tree exactly as a touchscreen's events are. The scenario thread only waits and reads;
everything that touches widgets runs on Kivy's main thread.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kivy.base import EventLoop
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.input.motionevent import MotionEvent
from kivy.uix.label import Label
from kivy.uix.widget import Widget

from tests.waiting import wait_until

_ids = itertools.count(1000)


class PilotTouch(MotionEvent):
    """A finger on the glass at window pixel (x, y)."""

    def __init__(self, x: float, y: float) -> None:
        super().__init__("pilot", next(_ids), self._args(x, y), is_touch=True, type_id="touch")

    @staticmethod
    def _args(x: float, y: float) -> dict[str, float]:
        return {"x": x / max(1, Window.width - 1), "y": y / max(1, Window.height - 1)}

    def depack(self, args: dict[str, float]) -> None:
        self.sx, self.sy = args["x"], args["y"]
        self.profile = ["pos"]
        super().depack(args)

    def move_to(self, x: float, y: float) -> None:
        self.move(self._args(x, y))


class ScenarioFailed(AssertionError):
    pass


class Pilot:
    """The scenario's hands and eyes. ``shots`` is where screenshots go."""

    def __init__(self, app: Any, shots: Path, tag: str,
                 control: Callable[[str], str] = lambda line: line) -> None:
        self.app = app
        self.control = control  # a technician's hand on the emulated rig (pulls cables)
        self.shots = shots
        self.tag = tag
        self.shots.mkdir(parents=True, exist_ok=True)
        self.overflows: list[str] = []
        self.screens_seen: list[str] = []

    # -- main-thread access -----------------------------------------------------------------
    def call(self, fn: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Run ``fn`` on Kivy's main thread and return its result (or raise its error)."""
        if threading.current_thread() is threading.main_thread():
            return fn()
        done = threading.Event()
        box: dict[str, Any] = {}

        def run(_dt: float) -> None:
            try:
                box["result"] = fn()
            except BaseException as exc:  # handed to the scenario thread
                box["error"] = exc
            done.set()

        Clock.schedule_once(run)
        if not done.wait(timeout):
            raise ScenarioFailed(f"main thread did not run {fn} within {timeout} s")
        if "error" in box:
            raise box["error"]
        return box.get("result")

    def wait(self, condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
        """:func:`tests.waiting.wait_until` with ``condition`` run on the main thread; a
        failure names the screen shown and the messages the kiosk gave."""
        return wait_until(lambda: self.call(condition), timeout,
                          lambda: f"{what} (screen {self.screen}, "
                                  f"messages {self.app.errors_shown})", interval=0.05)

    def settle(self, frames: int = 3) -> None:
        for _ in range(frames):
            self.call(lambda: None)

    @property
    def screen(self) -> str:
        return str(self.call(lambda: self.app.screens.current))

    def at(self, name: str, timeout: float = 20.0) -> None:
        self.wait(lambda: self.app.screens.current == name and not self._modal_busy(),
                  f"screen {name}", timeout)
        self.settle()

    def _modal_busy(self) -> bool:
        from ui.widgets import BusyView

        return any(isinstance(w, BusyView) for w in Window.children)

    # -- finding widgets ----------------------------------------------------------------------
    def widget(self, ref: str) -> Widget:
        """``screen.id`` (an id in that screen's rule) or ``screen.id.id`` (nested rule)."""
        def find() -> Widget:
            parts = ref.split(".")
            node: Any = self.app.screens.get_screen(parts[0])
            for part in parts[1:]:
                node = node.ids[part]
            return node
        return self.call(find)

    def modal_button(self, text: str) -> Widget:
        """A button with this text in an open modal view (choice or message)."""
        def find() -> Widget | None:
            from kivy.uix.button import Button
            from kivy.uix.modalview import ModalView

            for view in Window.children:
                if isinstance(view, ModalView):
                    for w in view.walk():
                        if isinstance(w, Button) and w.text == text:
                            return w
            return None
        return self.wait(find, f"a button '{text}' in a modal view", 10)

    def text(self, ref: str) -> str:
        widget = self.widget(ref)
        return str(self.call(lambda: widget.text))

    def modal_texts(self) -> list[str]:
        def read() -> list[str]:
            from kivy.uix.modalview import ModalView

            return [w.text for v in Window.children if isinstance(v, ModalView)
                    for w in v.walk() if isinstance(w, Label)]
        return self.call(read)

    # -- hands -----------------------------------------------------------------------------------
    def tap(self, target: str | Widget, *, wait_enabled: bool = True) -> None:
        widget = self.widget(target) if isinstance(target, str) else target

        def press() -> tuple[PilotTouch] | None:
            """Finger down at the widget's centre, once it is enabled and no modal view
            covers it (in one frame). A dismissed view fades out for a tenth of a second
            and takes every touch until it is gone: a person waits for it, so does this."""
            if wait_enabled and widget.disabled:
                return None
            if _covered(widget):
                return None
            touch = PilotTouch(*widget.to_window(*widget.center))
            EventLoop._dispatch_input("begin", touch)
            return (touch,)

        (touch,) = self.wait(press, f"{target} to be enabled and uncovered")
        # The loop dispatches input right after the clock callbacks of the frame that queued
        # it: one more frame and the widget has seen the finger down.
        self.settle(1)
        self.call(lambda: EventLoop._dispatch_input("end", touch))
        self.settle(2)  # the release, then whatever its handler scheduled for the next frame

    def drag(self, target: str | Widget, points: list[tuple[float, float]]) -> None:
        """Draw through ``points`` (0..1 of the widget, y down) with one finger."""
        widget = self.widget(target) if isinstance(target, str) else target

        def where(p: tuple[float, float]) -> tuple[float, float]:
            x = widget.x + p[0] * widget.width
            y = widget.y + (1 - p[1]) * widget.height
            return widget.to_window(x, y)

        start = self.call(lambda: where(points[0]))
        touch = PilotTouch(*start)
        self.call(lambda: EventLoop._dispatch_input("begin", touch))
        for p in points[1:]:
            pos = self.call(lambda p=p: where(p))
            self.call(lambda pos=pos: (touch.move_to(*pos),
                                       EventLoop._dispatch_input("update", touch)))
        self.call(lambda: EventLoop._dispatch_input("end", touch))
        self.settle(2)

    def keypad(self, screen: str, digits: str) -> None:
        pad = self.widget(f"{screen}.keypad")
        keys = self.call(lambda: {getattr(b, "text", None): b for b in pad.children})
        for digit in digits:
            self.tap(keys[digit])

    def type_into(self, ref: str, text: str) -> None:
        """Focus a text field by touch, then type as a keyboard would."""
        field = self.widget(ref)
        self.tap(field)
        self.call(lambda: field.insert_text(text))
        # Touching outside the field closes the on-screen keyboard, as an officer would.
        screen = ref.split(".")[0]
        has_title = self.call(lambda: "title" in self.app.root_screen(screen).ids)
        self.tap(f"{screen}.title" if has_title else f"{screen}.header.title")
        self.wait(lambda: not field.focus, "the keyboard to close", 5)

    # -- eyes -------------------------------------------------------------------------------------
    def shot(self, name: str) -> Path:
        """Screenshot the window (modal views included) and check every label fits."""
        self.settle(3)
        path = self.shots / f"{self.tag}-{name}.png"
        path.unlink(missing_ok=True)
        written = Path(self.call(lambda: Window.screenshot(name=str(path))))
        written.replace(path)
        self.overflows += [f"{name}: {o}" for o in self.call(self._overflowing)]
        self.screens_seen.append(name)
        return path

    def _overflowing(self) -> list[str]:
        found = []
        for label in _labels():
            if not label.text or label.opacity == 0 or label.width <= 1 or label.height <= 1:
                continue
            tw, th = label.texture_size
            if tw > label.width + 2 or th > label.height + 2:
                found.append(f"{type(label).__name__} '{label.text[:40]}' needs {tw:.0f}x"
                             f"{th:.0f}, has {label.width:.0f}x{label.height:.0f}")
        return found


def _labels() -> Iterator[Label]:
    for root in Window.children:
        for w in root.walk(restrict=True):
            if isinstance(w, Label) and _shown(w):
                yield w


def _covered(widget: Widget) -> bool:
    """Whether a modal view lies over ``widget``: one added to the window after the
    window's child that holds ``widget`` (``Window.children[0]`` is the topmost, and it
    gets a touch first)."""
    from kivy.uix.modalview import ModalView

    top: Any = widget
    while top.parent is not None and top.parent is not Window:
        top = top.parent
    above = Window.children[:Window.children.index(top)] if top in Window.children \
        else Window.children
    return any(isinstance(v, ModalView) for v in above)


def _shown(widget: Widget) -> bool:
    """On the current screen (or a modal) and not hidden by a collapsed parent."""
    from kivy.uix.screenmanager import Screen, ScreenManager

    node: Any = widget
    while node is not None:
        if getattr(node, "opacity", 1) == 0 or getattr(node, "height", 1) <= 1:
            return False
        parent = node.parent
        if isinstance(parent, ScreenManager) and isinstance(node, Screen) \
                and parent.current_screen is not node:
            return False
        node = parent if parent is not node else None
    return True
