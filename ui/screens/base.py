"""What every kiosk screen shares: the app, the kiosk, and the recording header."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.text import Label as CoreLabel
from kivy.lang import Builder
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen

STEP_NUMBER = {"photo": 1, "photo_approval": 2, "fingerprints": 3, "signature": 4,
               "witness": 5, "review": 6}


class KioskScreen(Screen):
    """A screen: :meth:`refresh` runs each time it comes up (state lives in ``kit/``)."""

    @property
    def app(self) -> Any:
        return App.get_running_app()

    @property
    def kiosk(self) -> Any:
        return self.app.kiosk

    def on_pre_enter(self, *_args: Any) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Show the current state of the kit (override)."""


class StepHeader(BoxLayout):
    """Step name, "step n/6", the resident's name, and Pause (keeps a draft, goes home).

    Nothing here is ever ellipsized: the name is how the officer checks they record the
    right person. The title is as wide as its text needs (at most about half the row in
    landscape, where the name wraps beside it); in portrait the name gets a row of its own.
    """

    step = StringProperty("photo")
    number = NumericProperty(1)
    who = StringProperty("")
    title_width = NumericProperty(100)
    who_beside = BooleanProperty(True)  # the name in the title's row (landscape)

    def on_kv_post(self, _base: Any) -> None:
        self._who = self.ids.who.__self__
        self._fit = Clock.create_trigger(self._arrange)
        app = App.get_running_app()
        self.bind(width=self._fit, step=self._fit, number=self._fit)
        if app is not None:
            app.bind(portrait=self._fit, t=self._fit, mm=self._fit)
        self._arrange()

    def _arrange(self, *_args: Any) -> None:
        app = App.get_running_app()
        if app is None:
            return
        # ids are weak proxies: compare parents with the real row
        row, title, pause, who = (self.ids.row.__self__, self.ids.title, self.ids.pause,
                                  self._who)
        portrait = bool(app.portrait)
        if portrait and who.parent is row:
            row.remove_widget(who)
            self.add_widget(who)
        elif not portrait and who.parent is not row:
            if who.parent is not None:
                who.parent.remove_widget(who)
            row.add_widget(who, index=1)  # between the title and Pause
        self.who_beside = who.parent is row
        free = max(10.0, row.width - pause.width - row.spacing * (1 if portrait else 2))
        if portrait:
            self.title_width = free
            return
        measure = CoreLabel(text=title.text, font_size=title.font_size, bold=True,
                            font_name=title.font_name)
        natural = measure.get_extents(title.text)[0] + 4
        self.title_width = min(natural, free * 0.55)


def load_kv(module_file: str) -> None:
    """Load the kv rule that sits beside a screen module (once per process)."""
    path = str(Path(module_file).with_suffix(".kv"))
    if path not in Builder.files:
        Builder.load_file(path)


load_kv(__file__)
