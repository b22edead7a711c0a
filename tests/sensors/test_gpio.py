"""Button, status LED and buzzer through gpiozero's MockFactory (the real gpiozero code)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from kit.config import config_from_dict
from sensors.errors import DeviceError
from sensors.gpio import LED_TIMING, Buzzer, CaptureButton, KitGpio, LedPattern, StatusLed
from sensors.registry import open_gpio
from tests.waiting import wait_until


@pytest.fixture(autouse=True)
def mock_pins() -> Iterator[MockFactory]:
    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = previous


def press(factory: MockFactory, pin: int) -> None:
    factory.pin(pin).drive_low()
    factory.pin(pin).drive_high()


def test_button_press_calls_back_once_per_press(mock_pins: MockFactory) -> None:
    button = CaptureButton(17, repeat_guard=0.05)
    presses: list[float] = []
    button.when_pressed = lambda: presses.append(time.monotonic())
    mock_pins.pin(17).drive_low()
    assert button.is_pressed
    mock_pins.pin(17).drive_high()
    assert not button.is_pressed
    assert len(presses) == 1
    time.sleep(0.1)  # the time under test: past the 0.05 s repeat guard, a press counts again
    press(mock_pins, 17)
    assert len(presses) == 2
    button.close()


def test_a_shaky_double_press_takes_one_photo(mock_pins: MockFactory) -> None:
    button = CaptureButton(17, repeat_guard=0.3)
    presses: list[int] = []
    button.when_pressed = lambda: presses.append(1)
    press(mock_pins, 17)
    press(mock_pins, 17)
    press(mock_pins, 17)
    assert presses == [1]
    button.close()


def test_a_failing_callback_does_not_kill_the_button(mock_pins: MockFactory,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    button = CaptureButton(17, repeat_guard=0.0)
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise RuntimeError("ui went away")

    button.when_pressed = broken
    press(mock_pins, 17)
    press(mock_pins, 17)
    assert calls == [1, 1]
    assert "capture button callback failed" in caplog.text
    button.close()


def test_button_pin_is_pulled_up(mock_pins: MockFactory) -> None:
    button = CaptureButton(17)
    assert mock_pins.pin(17).pull == "up"  # wire the button from the pin to ground
    assert mock_pins.pin(17).state is True
    button.close()


def test_led_steady_patterns(mock_pins: MockFactory) -> None:
    led = StatusLed(27)
    pin = mock_pins.pin(27)
    led.show("idle")
    assert pin.state is True and led.pattern is LedPattern.IDLE
    led.show(LedPattern.OFF)
    assert pin.state is False
    with pytest.raises(ValueError):
        led.show("disco")
    led.show("busy")
    wait_until(lambda: pin.state is False, 2, "the off half of the 0.5 s on / 0.5 s off blink")
    pin.clear_states()
    led.show("busy")  # the UI repeats itself: a restarted blink would switch on now
    time.sleep(0.1)  # the time under test: nothing may switch on within it
    assert [s.state for s in pin.states] == [False]
    led.close()


def test_led_error_pattern_blinks_fast(mock_pins: MockFactory) -> None:
    led = StatusLed(27)
    pin = mock_pins.pin(27)
    pin.clear_states()
    led.show(LedPattern.ERROR)
    wait_until(lambda: len(pin.states) >= 5, 2, "two fast blinks")
    led.show(LedPattern.OFF)
    on, off = LED_TIMING[LedPattern.ERROR]  # type: ignore[misc]
    pin.assert_states_and_times([(0.0, False), (0.0, True), (on, False), (off, True),
                                 (on, False)])
    assert len(pin.states) >= 5  # assert_states_and_times stops at the shorter list
    led.close()


@pytest.mark.parametrize("pattern", [LedPattern.BUSY, LedPattern.SYNCING])
def test_led_slow_patterns(mock_pins: MockFactory, pattern: LedPattern) -> None:
    on, off = LED_TIMING[pattern]  # type: ignore[misc]
    led = StatusLed(27)
    pin = mock_pins.pin(27)
    pin.clear_states()
    led.show(pattern)
    wait_until(lambda: len(pin.states) >= 4, 2 * (on + off), "the second blink to begin")
    led.show(LedPattern.OFF)  # during the second blink's on time
    pin.assert_states_and_times([(0.0, False), (0.0, True), (on, False), (off, True)])
    assert len(pin.states) == 5  # the last state: switched off by show(OFF)
    led.close()


def test_patterns_are_told_apart() -> None:
    timings = [t for t in LED_TIMING.values() if t is not None]
    assert len(set(timings)) == len(timings)


def test_buzzer_ok_is_one_short_beep(mock_pins: MockFactory) -> None:
    buzzer = Buzzer(22)
    pin = mock_pins.pin(22)
    pin.clear_states()
    buzzer.ok(wait=True)
    on, _, _ = Buzzer.OK_BEEP
    pin.assert_states_and_times([(0.0, False), (0.0, True), (on, False)])
    assert len(pin.states) == 3
    buzzer.close()


def test_buzzer_error_is_three_beeps(mock_pins: MockFactory) -> None:
    buzzer = Buzzer(22)
    pin = mock_pins.pin(22)
    pin.clear_states()
    buzzer.error(wait=True)
    on, off, count = Buzzer.ERROR_BEEP
    expected = [(0.0, False), (0.0, True)]
    for beep in range(count):
        expected.append((on, False))
        if beep < count - 1:
            expected.append((off, True))
    pin.assert_states_and_times(expected)
    assert len(pin.states) == len(expected) == 7
    buzzer.close()


def test_open_gpio_uses_the_configured_pins(mock_pins: MockFactory) -> None:
    section = config_from_dict({"devices": {"gpio": {"capture_button": 5, "status_led": 6,
                                                     "buzzer": 13}}}).devices.gpio
    parts, error = open_gpio(section)
    assert error is None and isinstance(parts, KitGpio)
    parts.led.show("idle")
    assert mock_pins.pin(6).state is True
    pressed: list[int] = []
    parts.button.when_pressed = lambda: pressed.append(1)
    press(mock_pins, 5)
    assert pressed == [1]
    parts.buzzer.ok(wait=True)
    assert [s.state for s in mock_pins.pin(13).states][-2:] == [True, False]
    parts.close()


def test_open_gpio_pin_clash_gives_reason_and_releases_pins(mock_pins: MockFactory) -> None:
    section = config_from_dict({"devices": {"gpio": {"capture_button": 17, "status_led": 17,
                                                     "buzzer": 22}}}).devices.gpio
    parts, error = open_gpio(section)
    assert parts is None and isinstance(error, DeviceError)
    assert error.code == "gpio_pin" and error.device == "gpio"
    assert "17" in error.text("en") and "devices.gpio" in error.text("en")
    CaptureButton(17).close()  # the button opened first was closed again


def on_a_pi() -> bool:
    model = Path("/proc/device-tree/model")
    return model.exists() and "Raspberry" in model.read_text(errors="replace")


@pytest.mark.skipif(on_a_pi(), reason="this machine has GPIO")
@pytest.mark.filterwarnings("ignore::gpiozero.PinFactoryFallback")
def test_no_gpio_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    Device.pin_factory = None  # gpiozero looks for lgpio, RPi.GPIO, pigpio, native: none works
    with pytest.raises(DeviceError) as missing:
        CaptureButton(17)
    assert missing.value.code == "gpio_missing"
    assert "Raspberry Pi" in missing.value.text("en")
    parts, error = open_gpio(config_from_dict({}).devices.gpio)
    assert parts is None and error is not None and error.code == "gpio_missing"
    assert "tombol di layar" in error.text("id")
