"""What a person does at the kiosk, step by step, with what they should see.

Each ``scenario_NAME(pilot)`` runs inside the kiosk process (see ``driver.py``), touches
the screen, checks what it shows, and returns findings for the test to check against the
sealed records. Officer and PIN are the ones ``tests/conftest.py`` provisions.
"""

from __future__ import annotations

import math
from typing import Any

from tests import PIN, TECHNICIAN_PIN
from tests.ui.pilot import Pilot
from ui.i18n import tr


def login(p: Pilot, pin: str = PIN, shot: str = "") -> None:
    p.at("login")
    if shot:
        p.shot(shot)
    p.keypad("login", pin)
    p.tap("login.enter")


def open_target(p: Pilot, number: int) -> str:
    """Tap the n-th target on the home list (searching by name when it is off screen, as
    an officer would); returns its id."""
    p.at("home")
    box = p.widget("home.targets")
    button = p.call(lambda: list(reversed(box.children))[number - 1])
    scroller = p.call(lambda: box.parent)
    visible = p.call(lambda: scroller.collide_point(*scroller.to_parent(*button.center))
                     and button.to_window(*button.pos)[1] >= scroller.to_window(*scroller.pos)[1])
    if not visible:
        name = p.call(lambda: p.app.kiosk.assignment.targets[number - 1].name)
        p.type_into("home.search", name.split()[0])
        button = p.wait(lambda: next((b for b in box.children
                                      if getattr(b, "target_id", None) and
                                      b.text.startswith(f"{number}. ")), None),
                        "the searched target")
    target_id = str(p.call(lambda: button.target_id))
    p.tap(button)
    p.at("target")
    return target_id


def photo(p: Pilot, shots: bool = False) -> None:
    p.at("photo")
    preview = p.widget("photo.preview")
    p.wait(lambda: preview.texture is not None, "the live preview")
    p.wait(lambda: p.app.root_screen("photo").hint, "a live quality hint")
    if shots:
        p.shot("photo")
    p.tap("photo.capture")
    p.wait(lambda: p.app.root_screen("photo").have_photo, "the photo to be kept")
    if shots:
        p.shot("photo-taken")
    p.tap("photo.use")
    p.at("photo_approval")
    if shots:
        p.shot("photo-approval")
    p.tap("photo_approval.yes")
    p.at("fingerprints")


def except_finger(p: Pilot, exception_label: str) -> None:
    p.tap("fingerprints.exception")
    p.tap(p.modal_button(exception_label))
    p.settle()


def scan_finger(p: Pilot) -> None:
    screen = p.app.root_screen("fingerprints")
    before = p.call(lambda: screen.current)
    p.tap("fingerprints.scan")
    p.wait(lambda: screen.busy, "the capture to start", 5)
    p.wait(lambda: not screen.busy, "the fingerprint download", 30)
    p.wait(lambda: screen.current != before or screen.result, "the capture result", 5)


def sign_and_witness(p: Pilot, shots: bool = False) -> None:
    p.at("signature")
    points = [(0.1 + 0.8 * i / 30, 0.5 + 0.25 * math.sin(i / 4)) for i in range(31)]
    p.drag("signature.pad", points)
    p.drag("signature.pad", [(0.2, 0.7), (0.5, 0.65), (0.8, 0.7)])
    if shots:
        p.shot("signature")
    p.tap("signature.save")
    p.at("witness")
    staff = p.widget("witness.staff")
    p.tap(p.call(lambda: staff.children[-1]))
    p.tap("witness.consent")
    if shots:
        p.shot("witness")
    p.tap("witness.save")
    p.at("review")


# -- scenarios --------------------------------------------------------------------------------
def scenario_login(p: Pilot) -> dict[str, Any]:
    """A wrong PIN is refused with the vault's message; the right one opens home."""
    login(p, "1111111111", shot="login")
    screen = p.app.root_screen("login")
    p.wait(lambda: screen.message_bad, "the wrong-PIN message")
    refused = p.text("login.message")
    assert "PIN" in refused and "salah" in refused.lower(), refused
    p.shot("login-wrong-pin")
    assert p.screen == "login"
    login(p)
    p.at("home")
    p.shot("home")
    box = p.widget("home.targets")
    rows = p.call(lambda: [b.text for b in reversed(box.children)])
    assert len(rows) >= 3 and rows[0].startswith("1. "), rows
    p.tap("home.lang")
    p.settle()
    assert p.text("home.logout") == "Log out"
    p.tap("home.lang")
    assert p.text("home.logout") == "Keluar"
    return {"rows": len(rows), "refused": refused}


def scenario_full_recording(p: Pilot) -> dict[str, Any]:
    """Photo, nine fingers captured and one amputated, signature, witness, seal."""
    login(p)
    target_id = open_target(p, 1)
    p.shot("target")
    p.tap("target.start")
    photo(p, shots=True)
    except_finger_at = 4
    screen = p.app.root_screen("fingerprints")
    p.shot("fingerprints")
    while p.call(lambda: screen.current):
        if p.call(lambda: screen.current) == except_finger_at:
            except_finger(p, "Jari tidak ada (amputasi)")
            continue
        scan_finger(p)
        if p.call(lambda: screen.current) == 2:
            p.shot("fingerprint-captured")
    states = p.call(lambda: dict(p.widget("fingerprints.hands").states))
    assert states[except_finger_at] == "exception", states
    assert sum(1 for s in states.values() if s in ("done", "low")) == 9, states
    p.tap("fingerprints.next")
    sign_and_witness(p, shots=True)
    p.shot("review")
    fingers_line = p.text("review.fingers")
    assert "9 terekam" in fingers_line and "1 pengecualian" in fingers_line, fingers_line
    p.tap("review.seal")
    p.at("sealed", timeout=30)
    p.shot("sealed")
    assert "Terekam lengkap" in p.text("sealed.detail")
    p.tap("sealed.home")
    p.at("home")
    return {"target_id": target_id}


def scenario_not_recorded(p: Pilot) -> dict[str, Any]:
    login(p)
    target_id = open_target(p, 3)
    p.tap("target.not_recorded")
    p.at("not_recorded")
    box = p.widget("not_recorded.outcomes")
    refused = p.call(lambda: next(b for b in box.children if b.outcome == "refused"))
    p.tap(refused)
    p.type_into("not_recorded.note", "keluarga menolak hari ini")
    p.shot("not-recorded")
    p.tap("not_recorded.confirm")
    # Sealing for good is confirmed: the dialog names the resident (issue 15)
    name = p.call(lambda: p.app.kiosk.assignment.targets[2].name)
    seal = p.modal_button("Ya, segel")
    assert any(name in t for t in p.modal_texts()), p.modal_texts()
    p.tap(seal)
    p.at("sealed", timeout=30)
    assert "Menolak direkam" in p.text("sealed.detail")
    p.tap("sealed.home")
    p.at("home")
    # The target's own row (the list may still be filtered by the search that found it).
    row = p.call(lambda: next(b.text for b in p.widget("home.targets").children
                              if getattr(b, "target_id", None) == target_id))
    assert "Tidak terekam" in row, row
    return {"target_id": target_id}


def scenario_pause_resume(p: Pilot) -> dict[str, Any]:
    """Photo, one finger, pause (draft kept), back home, resume, finish with exceptions."""
    login(p)
    target_id = open_target(p, 2)
    p.tap("target.start")
    photo(p)
    scan_finger(p)
    p.tap("fingerprints.header.pause")
    p.at("paused")
    p.shot("paused")
    p.tap("paused.home")
    p.at("home")
    row = p.call(lambda: [b.text for b in reversed(p.widget("home.targets").children)][1])
    assert "DIJEDA" in row, row
    open_target(p, 2)
    assert p.text("target.start") == "Lanjutkan rekaman"
    p.tap("target.start")
    p.at("fingerprints")
    screen = p.app.root_screen("fingerprints")
    states = p.call(lambda: dict(p.widget("fingerprints.hands").states))
    assert states[1] in ("done", "low") and p.call(lambda: screen.current) == 2, states
    while p.call(lambda: screen.current):
        except_finger(p, "Diperban / terluka")
    p.tap("fingerprints.next")
    p.at("signature")
    p.tap("signature.cannot")
    p.tap(p.modal_button("Tangan lemah / lumpuh"))
    p.at("witness")
    p.type_into("witness.witness_name", "Sunarti")
    p.type_into("witness.witness_role", "anak kandung")
    p.tap("witness.consent")
    p.tap("witness.save")
    p.at("review")
    p.tap("review.seal")
    p.at("sealed", timeout=30)
    return {"target_id": target_id}


def scenario_unplugged(p: Pilot) -> dict[str, Any]:
    """The sensor's cable is pulled: scanning says so, names the device and what to do."""
    login(p)
    open_target(p, 4)
    p.tap("target.start")
    photo(p)
    p.control("fingerprint unplug")
    screen = p.app.root_screen("fingerprints")
    p.tap("fingerprints.scan")
    p.wait(lambda: not screen.busy and p.app.errors_shown, "the unplugged-sensor message", 30)
    message = p.app.errors_shown[-1]
    p.shot("sensor-unplugged")
    texts = p.modal_texts()
    assert any(message in t for t in texts), (message, texts)
    p.tap(p.modal_button("OK"))
    p.control("fingerprint replug")
    p.settle()
    assert p.screen == "fingerprints"
    return {"message": message}


def scenario_finger_unlock(p: Pilot) -> dict[str, Any]:
    """The officer enrols their own finger from home, locks, a resident's finger is refused,
    then the officer's finger opens the locked screen again."""
    login(p)
    p.at("home")
    assert not p.call(lambda: p.app.kiosk.can_use_fingerprint_login())
    p.tap("home.enroll")
    prompts: list[str] = []

    def busy_message() -> bool:
        from kivy.core.window import Window

        from ui.widgets import BusyView

        views = [w for w in Window.children if isinstance(w, BusyView)]
        if views and (not prompts or prompts[-1] != views[0].message):
            prompts.append(views[0].message)
        return not views and bool(p.app.errors_shown)

    p.wait(busy_message, "the enrolment to finish", 40)
    done = p.app.errors_shown[-1]
    assert "Sidik jari tersimpan" in done, done
    p.shot("finger-enrolled")
    p.tap(p.modal_button("OK"))
    p.wait(lambda: not p.modal_texts(), "the message to close", 5)
    assert prompts[0] == "Letakkan jari telunjuk kanan Anda di sensor", prompts
    assert prompts[-1] == "Letakkan jari yang sama sekali lagi", prompts
    p.tap("home.lock")
    p.at("login")
    screen = p.app.root_screen("login")
    p.wait(lambda: screen.finger_possible, "the fingerprint login button")
    p.shot("locked-finger")
    # A resident's finger on the glass does not open the officer's session.
    p.control("fingerprint person warga-0555")
    p.tap("login.finger")
    p.wait(lambda: screen.message_bad, "the not-recognised message", 30)
    refused = p.text("login.message")
    assert "tidak dikenali" in refused, refused
    assert p.screen == "login"
    p.control("fingerprint person officer-P-0001")
    p.control("fingerprint finger 2")
    p.tap("login.finger")
    p.at("home", timeout=30)
    rows = p.call(lambda: len(p.widget("home.targets").children))
    assert rows >= 3, rows
    return {"prompts": prompts, "refused": refused, "rows": rows}


def _set_pin_drawn(p: Pilot) -> dict[str, Any]:
    """What the set-PIN screen draws: its labels' texts, and the PIN dots as the canvas
    has them (filled circles, one per digit typed; a dash line when none)."""
    from kivy.graphics import Ellipse, Line

    screen = p.app.root_screen("set_pin")

    def read() -> dict[str, Any]:
        dots = screen.ids.pin_dots
        shapes = list(dots.canvas.children)
        ellipses = [s for s in shapes if isinstance(s, Ellipse)]
        return {"title": screen.ids.title.text, "officer": screen.ids.officer.text,
                "prompt": screen.ids.prompt.text, "message": screen.ids.message.text,
                "enter": screen.ids.enter.text, "step": int(screen.step),
                "dots": len(ellipses), "dash": any(isinstance(s, Line) for s in shapes),
                "round": all(abs(e.size[0] - e.size[1]) < 0.5 and e.size[0] > 4
                             for e in ellipses),
                # pushed out of the screen (under the status bar) by what is below it
                "outside": [n for n in ("title", "officer", "prompt", "pin_dots", "message",
                                        "keypad", "enter")
                            if screen.ids[n].y < screen.y - 1
                            or screen.ids[n].top > screen.top + 1]}
    found = dict(p.call(read))
    assert found["outside"] == [], found
    return found


def _set_pin_entry(p: Pilot, digits: str) -> None:
    p.keypad("set_pin", digits)
    p.tap("set_pin.enter")


def scenario_first_login(p: Pilot) -> dict[str, Any]:
    """Issue 14 point 3: an officer's first login with their one-time enrolment code (the
    kit provisioned by ``kit.firstboot``; ``PIN`` is that code here) goes to "Buat PIN
    baru", which refuses the code itself, a PIN too short and two entries that differ,
    then keeps the new PIN and opens home."""
    new_pin = "5550192837"
    login(p)
    p.at("set_pin")
    screen = p.app.root_screen("set_pin")
    drawn = _set_pin_drawn(p)
    assert drawn["title"] == "Buat PIN baru", drawn
    assert "P-0001" in drawn["officer"], drawn
    assert drawn["prompt"] == "Masukkan PIN baru (10-12 angka)", drawn  # no TPM: 10+
    assert drawn["dots"] == 0 and drawn["dash"], drawn
    mm = p.call(lambda: p.app.mm)
    small = p.call(lambda: [(b.text, round(b.height / mm, 1), round(b.width / mm, 1))
                            for b in [*screen.ids.keypad.children, screen.ids.enter,
                                      screen.ids.logout, screen.ids.lang]
                            if min(b.height, b.width) < 9 * mm - 0.5])
    assert small == [], f"touch targets under 9 mm: {small}"
    p.shot("set-pin")
    # The menu, the home list, a visit: the kit refuses them all until a PIN is set.
    assert p.call(lambda: p.app.kiosk.assignment) is None
    p.keypad("set_pin", new_pin[:4])
    typed = _set_pin_drawn(p)
    assert typed["dots"] == 4 and typed["round"] and not typed["dash"], typed
    p.shot("set-pin-typing")
    p.tap("set_pin.lang")  # English as the switch; the step and the digits stay
    english = _set_pin_drawn(p)
    assert english["title"] == "Choose your PIN", english
    assert english["prompt"] == "Enter a new PIN (10-12 digits)", english
    assert english["dots"] == 4, english
    p.tap("set_pin.lang")
    p.tap(p.call(lambda: next(b for b in screen.ids.keypad.children
                              if b.text == p.app.t["login.clear"])))
    messages = []
    for wrong, says in ((PIN, "kode pendaftaran"), ("123456", "10 angka")):
        _set_pin_entry(p, wrong)
        p.wait(lambda: screen.message_bad, f"the refusal of {says}")
        refused = _set_pin_drawn(p)
        assert says in refused["message"] and refused["step"] == 1, refused
        assert refused["dots"] == 0, refused
        messages.append(refused["message"])
        p.shot("set-pin-code-refused" if wrong == PIN else "set-pin-too-short")
    _set_pin_entry(p, new_pin)
    p.wait(lambda: screen.step == 2, "the second entry")
    repeat = _set_pin_drawn(p)
    assert repeat["prompt"] == "Ulangi PIN baru" and repeat["enter"] == "Simpan PIN", repeat
    assert repeat["message"] == "" and repeat["dots"] == 0, repeat
    p.shot("set-pin-repeat")
    _set_pin_entry(p, "5550192830")
    p.wait(lambda: screen.message_bad, "the mismatch")
    mismatch = _set_pin_drawn(p)
    assert "tidak sama" in mismatch["message"] and mismatch["step"] == 1, mismatch
    messages.append(mismatch["message"])
    p.shot("set-pin-mismatch")
    assert p.call(lambda: p.app.kiosk.must_set_pin)
    _set_pin_entry(p, new_pin)
    p.wait(lambda: screen.step == 2, "the second entry")
    _set_pin_entry(p, new_pin)
    p.at("home", timeout=30)
    assert not p.call(lambda: p.app.kiosk.must_set_pin)
    rows = p.call(lambda: len(p.widget("home.targets").children))
    assert rows >= 3, rows
    p.shot("home-after-pin")
    return {"new_pin": new_pin, "messages": messages, "rows": rows}


def _press(pin: Any) -> None:
    """A thumb on the capture button: the pin is pulled to ground, then released."""
    import time

    pin.drive_low()
    time.sleep(0.1)  # longer than the button's 50 ms debounce, as a real press is
    pin.drive_high()


def _rises(pin: Any) -> int:
    """How many times the mock pin went high since its history was cleared."""
    return sum(1 for state in pin.states[1:] if state.state)


def scenario_gpio_capture(p: Pilot) -> dict[str, Any]:
    """The GPIO capture button takes the photo; a good photo beeps once and the LED goes
    back to steady, a poor one beeps three times and the LED blinks fast."""
    import time

    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    factory = Device.pin_factory
    assert isinstance(factory, MockFactory), factory
    assert p.app.gpio is not None, "the kiosk opened no GPIO"
    pins = p.app.kiosk.config.devices.gpio
    button, led, buzzer = (factory.pin(n) for n in (pins.capture_button, pins.status_led,
                                                      pins.buzzer))
    login(p)
    open_target(p, 1)
    p.tap("target.start")
    p.at("photo")
    screen = p.app.root_screen("photo")
    p.wait(lambda: p.widget("photo.preview").texture is not None, "the live preview")
    p.wait(lambda: screen.hint_ok, "a face in the guide")
    assert not p.call(lambda: screen.have_photo)
    led.clear_states()
    buzzer.clear_states()
    _press(button)
    p.wait(lambda: screen.have_photo and not screen.capturing, "the photo from the button")
    good = p.call(lambda: p.app.kiosk.flow.recording.photo)
    assert good.quality_score >= good.quality_threshold, good.quality_score
    p.wait(lambda: _rises(buzzer) >= 1 and not buzzer.state, "the success beep", 5)
    time.sleep(0.5)  # a window for what must not come: any further beep would have started
    ok_beeps = _rises(buzzer)
    ok_led = (p.app.gpio.led.pattern.value, bool(led.state))
    p.shot("gpio-photo")

    # The camera's view goes dark (the lamp is switched off): the next capture is poor.
    p.app.kiosk.devices.camera_emulator.control("scene", "dark")
    p.wait(lambda: not screen.hint_ok, "the dark-picture hint")
    led.clear_states()
    buzzer.clear_states()
    _press(button)
    p.wait(lambda: not screen.capturing and screen.reasons, "the poor photo's problems")
    p.wait(lambda: _rises(buzzer) >= 3 and not buzzer.state, "the failure beeps", 5)
    time.sleep(0.5)  # a window for what must not come: a fourth beep would have started
    error_beeps = _rises(buzzer)
    p.wait(lambda: len(led.states) >= 6, "the fast error blink", 3)
    error_led = p.app.gpio.led.pattern.value
    assert p.screen == "photo"
    p.tap("photo.header.pause")
    p.at("paused")
    return {"ok_beeps": ok_beeps, "ok_led": list(ok_led), "error_beeps": error_beeps,
            "error_led": error_led, "photo_score": good.quality_score}


def scenario_full_disk(p: Pilot) -> dict[str, Any]:
    """No room for a record: starting a recording is refused with the reason and the remedy."""
    login(p)
    open_target(p, 5)
    p.tap("target.start")
    p.wait(lambda: p.app.errors_shown, "the full-disk message")
    message = p.app.errors_shown[-1]
    p.shot("disk-full")
    p.tap(p.modal_button("OK"))
    assert p.screen == "target", p.screen
    return {"message": message}


def _note_field() -> Any:
    """The text field of an open note view, if one is open."""
    from kivy.core.window import Window

    from ui.widgets import NoteView

    return next((v.ids.note for v in Window.children if isinstance(v, NoteView)), None)


def scenario_tour(p: Pilot) -> dict[str, Any]:
    """Every screen (and the modal views) once, for screenshots and the overflow check."""
    p.at("login")
    p.shot("login")
    p.tap("login.technician")
    p.at("technician")
    p.shot("technician-pin")
    p.keypad("technician", TECHNICIAN_PIN)
    p.tap("technician.enter")
    tech = p.app.root_screen("technician")
    p.wait(lambda: tech.unlocked, "the technician menu")
    p.tap("technician.selftest")
    p.wait(lambda: "[" in tech.output, "the self-test result", 20)
    p.shot("technician-selftest")
    # The fixture kit has no TPM: the self-test must say it runs in the weaker mode.
    assert "[PERIKSA] Kunci: perangkat lunak: TANPA TPM" in tech.output, tech.output
    p.tap("technician.log")
    p.tap("technician.back")
    login(p)
    p.at("home")
    p.shot("home")
    p.tap("home.lang")
    # the status bar is redrawn in English with the switch, not at its next reading
    drawn = p.call(lambda: (p.app.status_bar.ids.outbox.text, p.app.status_bar.ids.signal.text,
                            p.app.status_bar._snap))
    assert drawn[0] == tr("status.outbox", "en", n=drawn[2].outbox), drawn
    if drawn[2].signal_bars is None:
        assert drawn[1] == tr("status.no_signal", "en"), drawn
    p.shot("home-en")
    p.tap("home.lang")
    open_target(p, 6)
    p.shot("target")
    p.tap("target.not_recorded")
    p.at("not_recorded")
    p.shot("not-recorded")
    p.tap("not_recorded.back")
    p.at("target")
    p.tap("target.start")
    photo(p, shots=True)
    p.shot("fingerprints")
    p.tap("fingerprints.exception")
    p.modal_button("Lainnya")
    p.shot("fingerprint-exceptions")
    p.tap(p.modal_button("Lainnya"))
    # "Lainnya" asks for the officer's own note (the record needs one).
    note = p.wait(_note_field, "the note for 'Lainnya'", 5)
    p.call(lambda: note.insert_text("jari kaku"))
    p.shot("fingerprint-exception-note")
    p.tap(p.modal_button("OK"))
    screen = p.app.root_screen("fingerprints")
    while p.call(lambda: screen.current):
        except_finger(p, "Jari tidak bisa diluruskan")
    p.shot("fingerprints-done")
    p.tap("fingerprints.next")
    sign_and_witness(p, shots=True)
    p.shot("review")
    p.tap("review.header.pause")
    p.at("paused")
    p.shot("paused")
    p.tap("paused.resume")
    p.at("review")
    p.tap("review.seal")
    p.at("sealed", timeout=30)
    p.shot("sealed")
    p.tap("sealed.home")
    p.at("home")
    p.tap("home.lock")
    p.at("login")
    p.shot("locked")
    return {}



def scenario_bench(p: Pilot) -> dict[str, Any]:
    """Figures for tests/bench/bench_ui.py: preview rate, touch-to-response, memory."""
    import time

    from kivy.base import EventLoop

    from tests.ui.pilot import PilotTouch

    login(p)
    p.at("home")
    # Touch to visible response: the language switch relabels the whole screen.
    lang = p.widget("home.lang")
    logout = p.widget("home.logout")
    latencies = []
    for _ in range(20):
        before = p.text("home.logout")
        x, y = p.call(lambda: lang.to_window(*lang.center))
        touch = PilotTouch(x, y)
        p.call(lambda t=touch: EventLoop._dispatch_input("begin", t))
        started = time.perf_counter()
        p.call(lambda t=touch: EventLoop._dispatch_input("end", t))
        p.wait(lambda b=before: logout.text != b, "the relabel", 5)
        latencies.append(time.perf_counter() - started)
    frame = []
    for _ in range(20):
        t0 = time.perf_counter()
        p.settle(1)
        frame.append(time.perf_counter() - t0)
    open_target(p, 1)
    p.tap("target.start")
    p.at("photo")
    screen = p.app.root_screen("photo")
    p.wait(lambda: screen.frames_shown > 3, "the preview")
    n0, t0 = p.call(lambda: screen.frames_shown), time.perf_counter()
    time.sleep(4.0)  # the measurement window for the preview rate
    n1, t1 = p.call(lambda: screen.frames_shown), time.perf_counter()
    camera_fps = float(p.app.kiosk.config.devices.camera.fps)
    with open("/proc/self/status", encoding="ascii") as status:
        rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    p.tap("photo.header.pause")
    p.at("paused")
    return {"latencies": latencies, "frame": frame, "preview_fps": (n1 - n0) / (t1 - t0),
            "camera_fps": camera_fps, "rss_mib": rss_kb / 1024}
