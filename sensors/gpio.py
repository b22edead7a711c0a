"""The kit's buttons and signals on the Raspberry Pi header, through gpiozero.

Three parts, wired to the BCM pin numbers in ``devices.gpio``:

* :class:`CaptureButton` -- a push button between its pin and ground (the
  Pi's internal pull-up holds the pin high until pressed); pressing it takes
  the photo or confirms, so the officer can keep one hand on the patient.
* :class:`StatusLed` -- an LED (with its resistor) from its pin to ground,
  showing what the kit is doing in patterns a technician can read at a
  glance:

  =========  =====================================  ==========================
  pattern    looks like                             means
  =========  =====================================  ==========================
  off        dark                                   kit off or UI not running
  idle       steady on                              ready, nothing to do
  busy       slow blink, 0.5 s on / 0.5 s off       capturing, sealing, saving
  syncing    short blip, 0.1 s on / 0.9 s off       uploading records
  error      fast blink, 0.1 s on / 0.1 s off       needs attention: see screen
  =========  =====================================  ==========================

* :class:`Buzzer` -- an active buzzer (it sounds when its pin is high):
  one short beep (0.1 s) when a capture is good, three beeps (0.15 s on,
  0.1 s off) when it failed, so the officer knows without looking.

Off a Raspberry Pi there are no pins: creating a part raises
:class:`~sensors.errors.DeviceError`; :func:`open_gpio` instead returns None and
the reason, so the kit runs on without them (the screen has the same
buttons). Tests use gpiozero's ``MockFactory``:

>>> from gpiozero import Device
>>> from gpiozero.pins.mock import MockFactory
>>> Device.pin_factory = MockFactory()
>>> led = StatusLed(27)
>>> led.show("idle")
>>> Device.pin_factory.pin(27).state
True
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import gpiozero
from gpiozero.exc import GPIOZeroError

from sensors.errors import DeviceError

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

DEVICE = "gpio"


def _device_error(part: str, pin: int, exc: BaseException) -> DeviceError:
    no_factory = isinstance(exc, gpiozero.BadPinFactory)
    if no_factory:
        return DeviceError(
            DEVICE, f"open {part}",
            id=f"Tidak ada GPIO untuk {part} (pin BCM {pin}): bukan Raspberry Pi atau "
               "pustaka lgpio tidak terpasang",
            en=f"No GPIO for the {part} (BCM pin {pin}): not a Raspberry Pi, or the lgpio "
               "library is missing",
            hint_id="Kit tetap jalan tanpa tombol, LED dan buzzer; pakai tombol di layar",
            hint_en="The kit runs without the button, LED and buzzer; use the on-screen "
                    "buttons", code="gpio_missing")
    return DeviceError(
        DEVICE, f"open {part}",
        id=f"{part} di pin BCM {pin} tidak dapat dipakai ({exc})",
        en=f"The {part} on BCM pin {pin} cannot be used ({exc})",
        hint_id="Periksa nomor pin di devices.gpio dan bahwa tidak ada program lain memakainya",
        hint_en="Check the pin number in devices.gpio and that no other program uses it",
        code="gpio_pin")


def _make(part: str, pin: int, build: Callable[[], Any]) -> Any:
    try:
        return build()
    # lgpio and the other backends raise their own exception types for a busy
    # or absent chip; anything from here means "this pin cannot be used".
    except (GPIOZeroError, OSError, RuntimeError, ValueError) as exc:
        raise _device_error(part, pin, exc) from exc


class CaptureButton:
    """The capture button: a push button between BCM pin ``pin`` and a ground pin.

    ``when_pressed`` is called (with no arguments) once per press. Contact
    bounce is filtered by the pin driver over ``bounce_time`` seconds; on top
    of that, presses closer than ``repeat_guard`` seconds to the last
    accepted one are ignored, because a shaky double press must not take two
    photos.

    >>> button = CaptureButton(17)                      # doctest: +SKIP
    >>> button.when_pressed = lambda: print("capture")  # doctest: +SKIP
    """

    def __init__(self, pin: int, *, bounce_time: float = 0.05, repeat_guard: float = 0.4,
                 pin_factory: Any = None) -> None:
        self.pin = pin
        self.repeat_guard = repeat_guard
        self.when_pressed: Callable[[], None] | None = None
        self._last_press = -float("inf")
        self._button = _make("capture button", pin, lambda: gpiozero.Button(
            pin, pull_up=True, bounce_time=bounce_time, pin_factory=pin_factory))
        self._button.when_pressed = self._pressed

    @property
    def is_pressed(self) -> bool:
        return bool(self._button.is_pressed)

    def _pressed(self) -> None:
        now = time.monotonic()
        if now - self._last_press < self.repeat_guard:
            log.debug("capture button pressed again within %.2f s: ignored", self.repeat_guard)
            return
        self._last_press = now
        callback = self.when_pressed
        if callback is None:
            return
        try:
            callback()
        # The callback runs in the pin driver's thread; an exception there would
        # kill edge detection for the rest of the session.
        except Exception:
            log.exception("capture button callback failed")

    def close(self) -> None:
        self._button.close()


class LedPattern(Enum):
    """The status LED's patterns: (seconds on, seconds off), None for steady."""

    OFF = "off"
    IDLE = "idle"
    BUSY = "busy"
    SYNCING = "syncing"
    ERROR = "error"


LED_TIMING: dict[LedPattern, tuple[float, float] | None] = {
    LedPattern.OFF: None,
    LedPattern.IDLE: None,
    LedPattern.BUSY: (0.5, 0.5),
    LedPattern.SYNCING: (0.1, 0.9),
    LedPattern.ERROR: (0.1, 0.1),
}


class StatusLed:
    """The status LED: an LED and resistor from BCM pin ``pin`` to ground.

    :meth:`show` switches pattern (see the table in the module help); the
    blinking runs in gpiozero's background thread.

    >>> led = StatusLed(27)              # doctest: +SKIP
    >>> led.show(LedPattern.SYNCING)     # doctest: +SKIP
    """

    def __init__(self, pin: int, *, pin_factory: Any = None) -> None:
        self.pin = pin
        self._led = _make("status LED", pin,
                          lambda: gpiozero.LED(pin, pin_factory=pin_factory))
        self._pattern = LedPattern.OFF

    @property
    def pattern(self) -> LedPattern:
        return self._pattern

    def show(self, pattern: LedPattern | str) -> None:
        """Show ``pattern`` (a :class:`LedPattern` or its name) until told otherwise.

        Showing the pattern already shown changes nothing, so callers may
        repeat it without restarting the blink.
        """
        pattern = LedPattern(pattern)
        if pattern is self._pattern and pattern is not LedPattern.OFF:
            return
        timing = LED_TIMING[pattern]
        if timing is not None:
            self._led.blink(on_time=timing[0], off_time=timing[1], background=True)
        elif pattern is LedPattern.IDLE:
            self._led.on()
        else:
            self._led.off()
        self._pattern = pattern

    def close(self) -> None:
        self._led.close()


class Buzzer:
    """An active buzzer from BCM pin ``pin`` (+) to ground (-): it sounds while the pin is high.

    >>> buzzer = Buzzer(22)     # doctest: +SKIP
    >>> buzzer.ok()             # doctest: +SKIP
    """

    OK_BEEP = (0.1, 0.1, 1)  # seconds on, seconds off, count
    ERROR_BEEP = (0.15, 0.1, 3)

    def __init__(self, pin: int, *, pin_factory: Any = None) -> None:
        self.pin = pin
        self._buzzer = _make("buzzer", pin,
                             lambda: gpiozero.Buzzer(pin, pin_factory=pin_factory))

    def ok(self, *, wait: bool = False) -> None:
        """One short beep: the capture is good. ``wait`` blocks until it has sounded."""
        self._beep(*self.OK_BEEP, wait=wait)

    def error(self, *, wait: bool = False) -> None:
        """Three beeps: something failed, look at the screen."""
        self._beep(*self.ERROR_BEEP, wait=wait)

    def _beep(self, on_time: float, off_time: float, count: int, *, wait: bool) -> None:
        self._buzzer.beep(on_time=on_time, off_time=off_time, n=count, background=not wait)

    def close(self) -> None:
        self._buzzer.close()


@dataclass
class KitGpio:
    """The kit's three GPIO parts, opened together by :func:`open_gpio`."""

    button: CaptureButton
    led: StatusLed
    buzzer: Buzzer

    def close(self) -> None:
        for part in (self.button, self.led, self.buzzer):
            part.close()
