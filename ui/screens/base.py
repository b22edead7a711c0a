"""What every kiosk screen shares: the app, the kiosk, and the recording header."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.lang import Builder
from kivy.properties import NumericProperty, StringProperty
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
    """Step name, "step n/6", the resident's name, and Pause (keeps a draft, goes home)."""

    step = StringProperty("photo")
    number = NumericProperty(1)
    who = StringProperty("")


def load_kv(module_file: str) -> None:
    """Load the kv rule that sits beside a screen module (once per process)."""
    path = str(Path(module_file).with_suffix(".kv"))
    if path not in Builder.files:
        Builder.load_file(path)


load_kv(__file__)
