"""The kiosk's Kivy application: one window, the status bar, the screens, and the glue
that runs slow work off the main thread and reports back on it.

Import this only after :func:`ui.launch.configure` (Kivy reads its Config when the
window module is first imported, and the widgets here import it).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import NoTransition, ScreenManager

from kit.visit import VisitController
from sensors.errors import DeviceError
from sync.errors import Fault, JaranIjoError
from ui.i18n import Table, tr
from ui.screens.technician import RecentLog
from ui.theme import TEXT_MM

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 3.0
IDLE_CHECK_S = 2.0
DIAGONAL_MM = 7 * 25.4  # both official displays are 7-inch panels
RECORDING_SCREENS = ("photo", "photo_approval", "fingerprints", "signature", "witness",
                     "review")
# Every screen: its name, and the module (ui.screens.*) and class that make it.
SCREENS = {
    "login": ("login", "LoginScreen"), "home": ("home", "HomeScreen"),
    "target": ("target", "TargetScreen"), "not_recorded": ("not_recorded", "NotRecordedScreen"),
    "photo": ("photo", "PhotoScreen"), "photo_approval": ("photo_approval", "PhotoApprovalScreen"),
    "fingerprints": ("fingerprints", "FingerprintsScreen"),
    "signature": ("signature", "SignatureScreen"), "witness": ("witness", "WitnessScreen"),
    "review": ("review", "ReviewScreen"), "sealed": ("sealed", "SealedScreen"),
    "paused": ("paused", "PausedScreen"), "technician": ("technician", "TechnicianScreen"),
    "set_pin": ("set_pin", "SetPinScreen"),
}


class LazyScreens(ScreenManager):
    """A ScreenManager that builds each screen (imports its module, loads its kv rule,
    makes its widgets) the first time it is asked for, not at start.

    Most visits open a few of the fourteen screens, and some screens' modules bring OpenCV
    (photo approval, fingerprints): built eagerly they held memory the officer had not
    used yet (issue 15: kiosk plus agent within 250 MB). Everything asks through
    :meth:`get_screen` -- ``current = name`` too (Kivy's ``on_current``) -- so a screen
    is there whenever anyone looks for it.
    """

    def __init__(self, factories: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        self._unbuilt = dict(factories)
        super().__init__(**kwargs)

    def get_screen(self, name: str) -> Any:
        spec = self._unbuilt.pop(name, None)
        if spec is not None:
            import importlib

            module, cls = spec
            screen = getattr(importlib.import_module(f"ui.screens.{module}"), cls)()
            if screen.name != name:
                raise RuntimeError(f"ui.screens.{module}.{cls} is named {screen.name!r}")
            self.add_widget(screen)
        return super().get_screen(name)

    def has_screen(self, name: str) -> bool:
        return name in self._unbuilt or super().has_screen(name)


class KioskApp(App):
    """The kiosk. ``kiosk`` holds the kit (store, session, devices, recording); ``gpio`` the
    capture button, status LED and buzzer (or None off a Pi)."""

    lang = StringProperty("id")
    t = ObjectProperty(Table("id"))
    mm = NumericProperty(5.25)      # pixels per millimetre of glass
    touch = NumericProperty(52.5)   # height of a touch target: 10 mm
    font = NumericProperty(18.0)    # body text: 3.5 mm (about 10 pt)
    portrait = BooleanProperty(False)
    busy = BooleanProperty(False)

    def __init__(self, kiosk: VisitController, *, lang: str = "id", gpio: Any = None,
                 recent_log: RecentLog | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kiosk = kiosk
        self.gpio = gpio
        self.recent_log = recent_log or RecentLog()
        self.lang = lang if lang in ("id", "en") else "id"
        self.t = Table(self.lang)
        self.title = tr("app.title")
        self.on_capture_button: Callable[[], None] | None = None
        self._busy_view: Any = None
        self._busy_anim: Any = None
        self._return_to: str | None = None
        self._stop_status = threading.Event()
        self.errors_shown: list[str] = []  # what the officer was told, for tests and the log

    # -- building ---------------------------------------------------------------------------
    def build(self) -> Any:
        from ui.widgets import StatusBar

        self._resize(Window, Window.size)
        Window.bind(size=self._resize)
        Window.clearcolor = (0.06, 0.07, 0.09, 1)
        # The field being typed in is kept visible by keep_above_keyboard (Kivy's own modes
        # move the docked keyboard off the glass or leave the field under it).
        from ui.widgets import KioskKeyboard

        Window.softinput_mode = ""
        Window.set_vkeyboard_class(KioskKeyboard)
        root = BoxLayout(orientation="vertical")
        self.status_bar = StatusBar()
        root.add_widget(self.status_bar)
        self.screens = LazyScreens(SCREENS, transition=NoTransition())
        self.screens.get_screen("login")  # the first screen, and the current one
        self.screens.bind(current=self._screen_changed)
        self.kiosk.ui_alive_at = 0.0  # a screen exists, not drawn yet (kit.visit tick)
        self._screen_changed(self.screens, self.screens.current)  # the first one is news too
        root.add_widget(self.screens)
        Window.bind(on_touch_down=self._touched)
        if self.gpio is not None:
            self.gpio.button.when_pressed = self._capture_pressed
            self.gpio.led.show("idle")
        Clock.schedule_interval(self._check_idle, IDLE_CHECK_S)
        threading.Thread(target=self._status_loop, name="status", daemon=True).start()
        return root

    def on_stop(self) -> None:
        self._stop_status.set()

    def _resize(self, _window: Any, size: tuple[int, int]) -> None:
        w, h = size
        self.mm = math.hypot(w, h) / DIAGONAL_MM
        self.touch = 10 * self.mm
        self.font = TEXT_MM["body"] * self.mm  # capitals of at least 3 mm (point 8)
        self.portrait = h > w

    def keep_above_keyboard(self, field: Any) -> None:
        """Lift the whole kiosk so that ``field`` (focused) sits above the docked keyboard;
        None (focus lost) puts it back. Runs a frame later, once the keyboard is docked."""
        if field is None:
            if self.root is not None:
                self.root.y = 0
            return

        def lift(_dt: float) -> None:
            from kivy.uix.vkeyboard import VKeyboard

            if not field.focus or self.root is None:
                return
            boards = [w for w in Window.children if isinstance(w, VKeyboard)]
            if not boards:
                return
            board = boards[0]
            top = board.y + board.height * board.scale
            bottom = field.to_window(field.x, field.y)[1] - self.root.y
            self.root.y = max(0.0, top + self.mm - bottom)

        Clock.schedule_once(lift, 0)

    # -- text ----------------------------------------------------------------------------------
    def tr(self, key: str, **values: object) -> str:
        return tr(key, self.lang, **values)

    def toggle_lang(self) -> None:
        self.set_lang("en" if self.lang == "id" else "id")

    def set_lang(self, lang: str) -> None:
        self.lang = lang
        self.t = Table(lang)
        self.status_bar.relabel(lang)
        screen = self.screens.current_screen
        if screen is not None and screen.name not in ("login", "technician"):
            screen.refresh()

    def error_text(self, exc: BaseException) -> str:
        if isinstance(exc, Fault):
            return exc.text(self.lang)
        return (f"{self.tr('error.unexpected', kind=type(exc).__name__)}. "
                f"{self.tr('error.unexpected_hint')}")

    # -- navigation -------------------------------------------------------------------------
    def go(self, name: str) -> None:
        if self.screens.current == name:
            self.screens.current_screen.refresh()
        self.screens.current = name

    def root_screen(self, name: str) -> Any:
        return self.screens.get_screen(name)

    def _screen_changed(self, _manager: Any, name: str) -> None:
        self.kiosk.set_ui_state(f"screen:{name}")  # written by the status thread's tick
        if self.gpio is not None and name in ("home", "login"):
            self.gpio.led.show("idle")

    def after_login(self) -> None:
        if self.kiosk.must_set_pin:  # first login with an enrolment code: a PIN first
            self.go("set_pin")
            return
        target, self._return_to = self._return_to, None
        if target is not None and self.kiosk.flow is not None:
            self.go(target)
        else:
            self.go("home")

    def lock(self) -> None:
        self.kiosk.session.lock()
        self._locked_screen()

    def logout(self) -> None:
        if self.kiosk.flow is not None:
            self.kiosk.pause()
        self.kiosk.session.logout()
        self.root_screen("login").officer = ""
        self.go("login")

    def _locked_screen(self) -> None:
        current = self.screens.current
        if current in RECORDING_SCREENS:
            self._return_to = current
        login = self.root_screen("login")
        self.go("login")
        login.say(self.tr("login.locked"))

    def enroll_finger(self) -> None:
        """The logged-in officer enrols their own finger (two placements on the sensor),
        so that a locked screen opens with it; the busy view says what to do next."""
        cancel = threading.Event()

        def prompt(step: str) -> None:
            # Called on the worker thread by the sensor driver.
            Clock.schedule_once(lambda _dt: self.busy_say(self.tr(f"enroll.{step}")))

        def done(_position: int) -> None:
            self.feedback(True)
            self.notice(self.tr("enroll.done"), tone="go")

        self.run_async(lambda: self.kiosk.enroll_fingerprint(cancel, prompt), done,
                       busy=self.tr("enroll.place"), cancel=cancel)

    def busy_say(self, text: str) -> None:
        """Change what the open busy view asks of the officer (main thread)."""
        if self._busy_view is not None:
            self._busy_view.message = text

    def show_target(self, target_id: str) -> None:
        self.root_screen("target").target_id = target_id
        self.go("target")

    def start_recording(self, target_id: str, not_recorded: bool = False) -> None:
        if not_recorded:
            self.root_screen("not_recorded").target_id = target_id
            self.go("not_recorded")
            return
        target = self.kiosk.row(target_id).target
        lang = self.lang

        def started(result: Any) -> None:
            _flow, warnings = result
            self.show_step()
            if warnings:
                items = "; ".join(c.message(self.lang) for c in warnings)
                self.notice(self.tr("target.preflight_warn", items=items), tone="warn")

        self.run_async(lambda: self.kiosk.start(target, lang), started)

    def show_step(self, *_args: Any) -> None:
        flow = self.kiosk.flow
        if flow is None:
            self.go("home")
            return
        self.go(str(flow.step))

    def pause_recording(self) -> None:
        flow = self.kiosk.flow
        if flow is None:
            return
        paused = self.root_screen("paused")
        paused.target_id, paused.who = flow.recording.target.id, flow.recording.target.name
        self.act(self.kiosk.pause, lambda _r: self.go("paused"))

    def sealed(self, stored: Any) -> None:
        outcome = self.kiosk.last_outcome
        self.kiosk.flow = None
        screen = self.root_screen("sealed")
        screen.show(outcome.label(self.lang) if outcome else "", stored.size)
        self.feedback(True)
        self.go("sealed")

    # -- work off the main thread --------------------------------------------------------------
    def run_async(self, fn: Callable[[], Any], done: Callable[[Any], None] | None = None, *,
                  error: Callable[[BaseException], None] | None = None,
                  busy: str | None = None, cancel: threading.Event | None = None) -> None:
        """Run ``fn`` on a worker thread; ``done(result)`` or ``error(exc)`` on the main
        thread. With ``busy``, a modal with a moving bar says what is happening."""
        if busy is not None:
            self._show_busy(busy, cancel)
        self.busy = True

        def work() -> None:
            try:
                result = fn()
            except Exception as exc:  # reported on the main thread, in the officer's language
                if not isinstance(exc, Fault):
                    log.exception("kiosk task failed")
                Clock.schedule_once(lambda _dt, e=exc: self._finish(busy, error, exc=e))
                return
            Clock.schedule_once(lambda _dt: self._finish(busy, done, result=result))

        threading.Thread(target=work, name="kiosk-task", daemon=True).start()

    def _finish(self, busy: str | None, callback: Any, *, result: Any = None,
                exc: BaseException | None = None) -> None:
        self.busy = False
        if busy is not None:
            self._hide_busy()
        if exc is not None:
            if callback is not None:
                callback(exc)
            else:
                self.feedback(False)
                self.show_error(exc)
            return
        if callback is not None:
            callback(result)

    def act(self, fn: Callable[[], Any], done: Callable[[Any], None] | None = None) -> None:
        """A quick workflow call on the main thread (a draft write); errors are shown."""
        try:
            result = fn()
        except (JaranIjoError, DeviceError) as exc:
            self.feedback(False)
            self.show_error(exc)
            return
        if done is not None:
            done(result)

    def _show_busy(self, message: str, cancel: threading.Event | None) -> None:
        from ui.widgets import BusyView

        self._hide_busy()
        view = BusyView(message=message)
        view.progress = 0
        view.open(animation=False)
        self._busy_view = view

        def step(_dt: float) -> None:
            view.progress = (view.progress + 4) % 100

        self._busy_anim = Clock.schedule_interval(step, 1 / 20)
        if self.gpio is not None:
            self.gpio.led.show("busy")

    def _hide_busy(self) -> None:
        if self._busy_anim is not None:
            self._busy_anim.cancel()
            self._busy_anim = None
        if self._busy_view is not None:
            self._busy_view.dismiss(animation=False)
            self._busy_view = None
        if self.gpio is not None:
            self.gpio.led.show("idle")

    # -- telling the officer ---------------------------------------------------------------------
    def show_error(self, exc: BaseException) -> None:
        self.message(self.tr("error.title"), self.error_text(exc), tone="danger")

    def notice(self, text: str, tone: str = "warn") -> None:
        self.message(self.tr("app.title"), text, tone=tone)

    def message(self, title: str, text: str, tone: str = "danger") -> None:
        from ui.widgets import MessageView

        self.errors_shown.append(text)
        log.info("message shown (%s)", tone)
        MessageView(title=title, message=text, tone=tone).open(animation=False)

    def feedback(self, ok: bool) -> None:
        """One beep for a good capture, three for a failure; the LED says the same."""
        if self.gpio is None:
            return
        if ok:
            self.gpio.buzzer.ok()
            self.gpio.led.show("idle")
        else:
            self.gpio.buzzer.error()
            self.gpio.led.show("error")

    def led(self, pattern: str) -> None:
        if self.gpio is not None:
            self.gpio.led.show(pattern)

    # -- GPIO, idle lock, status bar -----------------------------------------------------------
    def _capture_pressed(self) -> None:
        # Called in gpiozero's thread: hand over to the main thread.
        Clock.schedule_once(lambda _dt: self._capture_on_main())

    def _capture_on_main(self) -> None:
        if self.on_capture_button is not None and not self.busy:
            self.on_capture_button()

    def _touched(self, *_args: Any) -> None:
        self.kiosk.session.touch()

    def _check_idle(self, _dt: float) -> None:
        if self.kiosk.session.locked and self.screens.current not in ("login", "technician"):
            self._locked_screen()

    def _status_loop(self) -> None:
        while not self._stop_status.is_set():
            try:
                snap = self.kiosk.status()
            except Exception:  # a status read must never take the kiosk down
                log.warning("status bar read failed", exc_info=True)
            else:
                Clock.schedule_once(lambda _dt, s=snap: self._show_status(s))
            try:
                self.kiosk.tick()  # heartbeat, and the office self-test's kiosk part
            except Exception:
                log.warning("kiosk tick failed", exc_info=True)
            self._stop_status.wait(STATUS_INTERVAL_S)

    def _show_status(self, snap: Any) -> None:
        self.kiosk.ui_alive_at = self.kiosk.clock()  # the main loop runs: heartbeat allowed
        self.status_bar.show(snap, self.lang)
        if snap.remote_lock and not self.kiosk.session.locked:
            self.lock()


Builder.load_string("")  # the kv rules load with their modules (ui.widgets, ui.screens.*)
