"""The fingerprint sensor through the real driver (pyfingerprint 1.5 + sensors.fingerprint).

Against the emulated ZFM by default; on a bench, ``--fingerprint-port
/dev/ttyUSB0`` runs the same tests on a real sensor (someone places a
finger when asked), and the ones that need fault controls or the
emulator's synthetic people are skipped.

Full image downloads are slow on purpose (6.95 s at 57600 baud, as on the
wire), so only the tests about the line rate download paced (one at 57600,
the rest at 115200); tests about what arrives use the emulator unpaced.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from sensors.emulated import fingerprints
from sensors.emulated.zfm import EmulatedZfmSensor, ZfmEmulator
from sensors.errors import DeviceError
from sensors.fingerprint import FingerImage, FingerprintSensor, ZfmFingerprintSensor, wire_bytes
from sensors.fingerprint_quality import CONVERT_MESSY, CONVERT_OK, fingerprint_quality
from sensors.registry import open_fingerprint
from sensors.settings import FingerprintSection
from tests.conftest import Device, unpaced
from tests.waiting import wait_until

pytestmark = pytest.mark.hil

REPLY_TIMEOUT = 2.0  # pyfingerprint's, and the driver's default
SLACK = 3.0  # correctness bound on "returns within its timeout", not a benchmark


def make_sensor(device: Device, baud: int = 57600, **kwargs: object) -> ZfmFingerprintSensor:
    kwargs.setdefault("finger_timeout", 10.0)
    return ZfmFingerprintSensor(device.url, baud, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def sensor(fingerprint_device: Device) -> Iterator[ZfmFingerprintSensor]:
    s = make_sensor(fingerprint_device)
    s.open()
    yield s
    s.close()


@pytest.fixture
def fast_sensor(fingerprint_device: Device) -> Iterator[tuple[ZfmFingerprintSensor, ZfmEmulator]]:
    """The emulated sensor switched to 115200 baud (set, then power-cycled)."""
    emulator = fingerprint_device.require_emulator()
    with make_sensor(fingerprint_device) as slow:
        slow.set_sensor_baud(115200)
    emulator.control("power-cycle")
    assert emulator.wait_booted()
    s = make_sensor(fingerprint_device, 115200)
    s.open()
    yield s, emulator
    s.close()


@pytest.fixture
def unpaced_sensor(
        fingerprint_device: Device) -> Iterator[tuple[ZfmFingerprintSensor, ZfmEmulator]]:
    """The emulated sensor without line-rate pacing: for what an image holds, not its speed."""
    emulator = unpaced(fingerprint_device.require_emulator())
    s = make_sensor(fingerprint_device)
    s.open()
    yield s, emulator
    s.close()


def assert_fault(exc: DeviceError, operation: str, code: str) -> None:
    """A fault the officer can act on: device, operation, both languages, a next step."""
    assert exc.device == "fingerprint"
    assert exc.operation == operation
    assert exc.code == code
    assert exc.message["id"] and exc.message["en"] and exc.message["id"] != exc.message["en"]
    assert exc.hint["id"] and exc.hint["en"]
    assert "Sensor sidik jari" in exc.text("id") and "Fingerprint sensor" in exc.text("en")


def expected_pixels(emulator: ZfmEmulator) -> np.ndarray:
    """What the host must receive for the emulator's last capture, after 4-bit transfer."""
    capture = emulator.last_capture
    assert capture is not None
    return fingerprints.quantize_4bit(capture.pixels())


# -- connection -----------------------------------------------------------------------------
def test_open_verifies_password_and_reads_identity(sensor: ZfmFingerprintSensor) -> None:
    assert isinstance(sensor, FingerprintSensor)
    info = sensor.system_parameters()
    assert info.capacity > 0
    assert info.packet_size in (32, 64, 128, 256)
    assert info.baud == 57600
    assert info.status & 0x04, "password-verified bit of the status register"
    assert 0 <= info.templates <= info.capacity


def test_wrong_password_is_a_clear_error(fingerprint_device: Device) -> None:
    wrong = make_sensor(fingerprint_device, password=0x0BADC0DE)
    with pytest.raises(DeviceError) as caught:
        wrong.open()
    assert_fault(caught.value, "open", "wrong_password")
    assert "devices.fingerprint.password" in caught.value.hint["en"]
    assert not wrong.is_open

    emulator = fingerprint_device.require_emulator()
    emulator.control("wrong-password")
    right = make_sensor(fingerprint_device)
    with pytest.raises(DeviceError) as caught:
        right.open()
    assert_fault(caught.value, "open", "wrong_password")
    emulator.control("wrong-password", "off")
    right.open()
    assert right.system_parameters().capacity > 0
    right.close()


def test_packets_for_another_address_get_no_answer(fingerprint_device: Device) -> None:
    stranger = make_sensor(fingerprint_device, address=0x12345678)
    start = time.monotonic()
    with pytest.raises(DeviceError) as caught:
        stranger.open()
    assert_fault(caught.value, "open", "timeout")
    assert time.monotonic() - start < REPLY_TIMEOUT + SLACK


# -- waiting for a finger -------------------------------------------------------------------
def test_cooperative_person_places_finger(sensor: ZfmFingerprintSensor) -> None:
    assert sensor.wait_for_finger(timeout=10.0) is True


def test_wait_for_finger_times_out_and_can_be_cancelled(
        fingerprint_device: Device, sensor: ZfmFingerprintSensor) -> None:
    emulator = fingerprint_device.require_emulator()
    emulator.control("cooperative", "off")

    start = time.monotonic()
    with pytest.raises(DeviceError) as caught:
        sensor.wait_for_finger(timeout=1.0)
    elapsed = time.monotonic() - start
    assert_fault(caught.value, "wait_for_finger", "no_finger")
    assert 1.0 <= elapsed < 1.0 + SLACK

    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    start = time.monotonic()
    assert sensor.wait_for_finger(timeout=10.0, cancel=cancel) is False
    assert time.monotonic() - start < 0.3 + SLACK

    emulator.control("place")
    assert sensor.wait_for_finger(timeout=1.0) is True


# -- capture --------------------------------------------------------------------------------
def test_capture_reports_progress_and_delivers_the_image(
        fingerprint_device: Device, sensor: ZfmFingerprintSensor) -> None:
    assert sensor.wait_for_finger()
    seen: list[tuple[int, int]] = []
    image = sensor.capture(progress=lambda got, total: seen.append((got, total)))

    total = wire_bytes(sensor.system_parameters().packet_size)
    if fingerprint_device.emulated:
        assert total == 40044  # 128-byte packets, the factory setting
    assert len(seen) > 20, "progress during the multi-second download, not only at the end"
    assert all(t == total for _, t in seen)
    counts = [got for got, _ in seen]
    assert counts == sorted(counts) and counts[-1] == total and counts[0] < total // 4

    assert image.pixels.shape == (288, 256) and image.pixels.dtype == np.uint8
    assert len(np.unique(image.pixels)) <= 16  # 4 bits a pixel over the UART
    decoded = cv2.imdecode(np.frombuffer(image.png, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(decoded, image.pixels)
    assert image.sensor_code == CONVERT_OK
    assert sensor.quality(image).ok

    if fingerprint_device.emulated:
        assert np.array_equal(image.pixels, expected_pixels(fingerprint_device.emulator))


def test_different_fingers_give_different_images(
        unpaced_sensor: tuple[ZfmFingerprintSensor, ZfmEmulator]) -> None:
    sensor, emulator = unpaced_sensor
    emulator.control("cooperative", "off")
    images = {}
    for person, finger in (("warga-0101", 2), ("warga-0101", 7)):
        emulator.control("place", person, str(finger))
        assert sensor.wait_for_finger(timeout=2.0)
        images[finger] = sensor.capture()
        assert np.array_equal(images[finger].pixels, expected_pixels(emulator))
        emulator.control("lift")
    a, b = images[2].pixels.astype(int), images[7].pixels.astype(int)
    assert np.mean(np.abs(a - b)) > 20  # not the same print, nor one slightly shifted
    assert all(sensor.quality(i).ok for i in images.values())


def test_bad_image_fails_quality_with_a_reason(
        unpaced_sensor: tuple[ZfmFingerprintSensor, ZfmEmulator]) -> None:
    sensor, emulator = unpaced_sensor
    emulator.control("bad-image")
    assert sensor.wait_for_finger()
    image = sensor.capture()
    assert image.sensor_code == CONVERT_MESSY
    quality = sensor.quality(image)
    assert not quality.ok
    assert "messy" in quality.reason_en and "kotor" in quality.reason_id
    # the picture alone fails too: the score does not lean on the sensor's verdict
    assert not fingerprint_quality(image.pixels).ok


def test_baud_115200_applies_after_power_cycle(fingerprint_device: Device) -> None:
    emulator = fingerprint_device.require_emulator()
    old = make_sensor(fingerprint_device, 57600)
    old.open()
    old.set_sensor_baud(115200)
    assert old.system_parameters().baud == 57600  # stored, not yet in effect
    emulator.control("power-cycle")
    assert emulator.wait_booted()

    start = time.monotonic()
    with pytest.raises(DeviceError) as caught:
        old.system_parameters()  # reopens at 57600: the sensor cannot hear it
    assert caught.value.code == "timeout" and "baud" in caught.value.hint["en"]
    assert time.monotonic() - start < REPLY_TIMEOUT + SLACK
    old.close()

    with make_sensor(fingerprint_device, 115200) as fast:
        assert fast.system_parameters().baud == 115200
        assert fast.wait_for_finger()
        start = time.monotonic()
        image = fast.capture()
        elapsed = time.monotonic() - start
    assert np.array_equal(image.pixels, expected_pixels(emulator))
    assert elapsed < 6.95  # faster than the 57600 wire limit: the new rate is in use


# -- officer login --------------------------------------------------------------------------
def test_enroll_and_identify_officer(fingerprint_device: Device,
                                     sensor: ZfmFingerprintSensor) -> None:
    emulator = fingerprint_device.emulator
    if emulator is not None:
        emulator.control("person", "petugas-0007")
    steps: list[str] = []
    position = sensor.enroll_officer(prompt=steps.append)
    assert steps == ["place", "lift", "place-again"]
    assert position in sensor.officer_positions()

    found = sensor.identify_officer()
    assert found is not None and found[0] == position and found[1] > 0

    if emulator is not None:
        emulator.control("person", "warga-0555")  # a resident is never an officer
        assert sensor.identify_officer() is None
        emulator.control("person", "petugas-0007")

    sensor.delete_officer(position)
    assert position not in sensor.officer_positions()
    assert sensor.identify_officer() is None


def test_officer_templates_survive_an_emulator_restart(fingerprint_device: Device) -> None:
    emulator = fingerprint_device.require_emulator()
    emulator.control("person", "petugas-0008")
    with make_sensor(fingerprint_device) as s:
        position = s.enroll_officer(slot_hint=5)
    assert position == 5
    emulator.stop()
    state_dir = emulator.link.parent
    again = ZfmEmulator(emulator.link, baud=57600, state_dir=state_dir)
    again.start()
    try:
        again.control("person", "petugas-0008")
        with make_sensor(fingerprint_device) as s:
            assert s.officer_positions() == [5]
            found = s.identify_officer()
        assert found is not None and found[0] == 5
    finally:
        again.stop()


def test_enrolling_two_different_fingers_is_refused(fingerprint_device: Device,
                                                    sensor: ZfmFingerprintSensor) -> None:
    emulator = fingerprint_device.require_emulator()
    emulator.control("cooperative", "off")

    def officer(step: str) -> None:  # a confused officer switches fingers between impressions
        if step == "place":
            emulator.control("place", "petugas-0009", "2")
        elif step == "lift":
            emulator.control("lift")
        else:
            emulator.control("place", "petugas-0009", "3")

    with pytest.raises(DeviceError) as caught:
        sensor.enroll_officer(prompt=officer)
    assert_fault(caught.value, "enroll_officer", "mismatch")
    assert sensor.officer_positions() == []


# -- faults ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("control", "code"), [
    (("corrupt-checksum",), "garbled"),
    (("truncate",), "timeout"),
    (("noise", "9"), "garbled"),
    (("stall", "2.5"), "timeout"),
    (("unplug",), "disconnected"),
])
def test_fault_is_reported_and_recovered(fingerprint_device: Device,
                                         sensor: ZfmFingerprintSensor,
                                         control: tuple[str, ...], code: str) -> None:
    emulator = fingerprint_device.require_emulator()
    emulator.control(*control)
    start = time.monotonic()
    with pytest.raises(DeviceError) as caught:
        sensor.system_parameters()
    assert time.monotonic() - start < REPLY_TIMEOUT + SLACK
    assert_fault(caught.value, "system_parameters", code)

    if control[0] == "unplug":
        with pytest.raises(DeviceError) as caught:  # still unplugged: fails at once, clearly
            sensor.wait_for_finger(timeout=1.0)
        assert_fault(caught.value, "wait_for_finger", "disconnected")
        emulator.control("replug")
        assert emulator.wait_booted()
    if control[0] == "stall":
        wait_until(lambda: time.monotonic() >= emulator._stalled_until, 3,
                   "the end of the sensor's 2.5 s stall")
    info = sensor.system_parameters()  # the fault has cleared: the driver reconnects
    assert info.capacity > 0


def test_unplug_mid_download(fingerprint_device: Device, sensor: ZfmFingerprintSensor) -> None:
    emulator = fingerprint_device.require_emulator()
    assert sensor.wait_for_finger()
    pulled: list[int] = []

    def pull_cable(got: int, total: int) -> None:
        if got > total // 5 and not pulled:
            pulled.append(got)
            emulator.control("unplug")

    start = time.monotonic()
    with pytest.raises(DeviceError) as caught:
        sensor.capture(progress=pull_cable)
    assert pulled, "the cable came out during the transfer"
    assert_fault(caught.value, "capture", "disconnected")
    assert time.monotonic() - start < 6.95 + REPLY_TIMEOUT + SLACK

    emulator.control("replug")
    assert emulator.wait_booted()
    assert sensor.system_parameters().capacity > 0
    assert sensor.wait_for_finger()


def test_stall_mid_download_times_out(
        fast_sensor: tuple[ZfmFingerprintSensor, ZfmEmulator]) -> None:
    sensor, emulator = fast_sensor
    assert sensor.wait_for_finger()
    stalled: list[float] = []

    def hang(got: int, total: int) -> None:
        if got > total // 3 and not stalled:
            stalled.append(time.monotonic())
            emulator.control("stall", "3")

    with pytest.raises(DeviceError) as caught:
        sensor.capture(progress=hang)
    assert stalled
    assert_fault(caught.value, "capture", "timeout")
    assert time.monotonic() - stalled[0] < REPLY_TIMEOUT + SLACK
    wait_until(lambda: time.monotonic() >= emulator._stalled_until, 4,
               "the end of the sensor's 3 s stall")
    assert sensor.system_parameters().baud == 115200


def test_quality_without_sensor_verdict() -> None:
    """The image score alone on synthetic prints: whole finger, smudge, half a finger."""
    good = fingerprints.quantize_4bit(fingerprints.synthesize("warga-0201", 1))
    assert fingerprint_quality(good).ok
    smudged = fingerprints.quantize_4bit(fingerprints.synthesize("warga-0201", 1, 1, True))
    assert not fingerprint_quality(smudged).ok
    half = good.copy()
    half[:, :150] = 221  # the finger touched only the edge of the glass
    q = fingerprint_quality(half)
    assert not q.ok and "covers too little" in q.reason_en
    blank = np.full((288, 256), 221, np.uint8)
    assert fingerprint_quality(blank).score == 0
    verdict = fingerprint_quality(good, sensor_code=0x07)
    assert not verdict.ok and "features" in verdict.reason_en
    image = FingerImage(pixels=good, png=b"", sensor_code=CONVERT_OK)
    assert fingerprint_quality(image.pixels, image.sensor_code).score >= 90


def test_emulator_controls_are_validated(fingerprint_device: Device) -> None:
    emulator = fingerprint_device.require_emulator()
    required = {"place", "lift", "cooperative", "person", "finger", "corrupt-checksum",
                "truncate", "stall", "unplug", "replug", "wrong-password", "bad-image",
                "power-cycle"}
    assert required <= set(ZfmEmulator.CONTROLS)
    assert all(text.strip() for text in ZfmEmulator.CONTROLS.values())
    for bad in (("no-such-control",), ("finger", "11"), ("finger", "thumb"), ("stall",),
                ("stall", "-1"), ("cooperative", "maybe"), ("person",), ("lift", "now"),
                ("place", "a", "1", "extra")):
        with pytest.raises(ValueError):
            emulator.control(*bad)
    assert "warga-0300" in emulator.control("person", "warga-0300")
    assert "7" in emulator.control("finger", "7")


def test_sensor_restarted_mid_session_asks_for_its_password(tmp_path: Path) -> None:
    """A sensor with a password forgets the session's verification when it powers up."""
    (tmp_path / "zfm-flash.json").write_text(json.dumps({
        "password": 0x00C0FFEE, "address": 0xFFFFFFFF, "baud_n": 12, "packet_code": 2,
        "security": 3, "templates": {}}))
    emulator = ZfmEmulator(tmp_path / "zfm", baud=57600, state_dir=tmp_path)
    emulator.start()
    try:
        assert emulator.baud == 115200  # the flash file wins over the factory rate
        with make_sensor(Device(str(tmp_path / "zfm"), emulator), 115200,
                         password=0x00C0FFEE) as s:
            assert s.system_parameters().status & 0x04
            emulator.control("power-cycle")
            assert emulator.wait_booted()
            with pytest.raises(DeviceError) as caught:
                s.system_parameters()
            assert_fault(caught.value, "system_parameters", "password")
            assert s.system_parameters().status & 0x04  # reconnected and verified again
    finally:
        emulator.stop()


def test_sensor_from_configuration(fingerprint_device: Device, tmp_path: Path) -> None:
    section = FingerprintSection(port=fingerprint_device.url, finger_timeout_s=3.0)
    with open_fingerprint(section) as s:
        assert s.finger_timeout == 3.0
        assert s.system_parameters().capacity > 0

    emulated = open_fingerprint(FingerprintSection(port="emulated"), runtime_dir=tmp_path / "rt")
    assert isinstance(emulated, EmulatedZfmSensor)
    emulated.open()
    try:
        assert emulated.system_parameters().baud == 57600
    finally:
        emulated.close()
    assert not (tmp_path / "rt" / "fingerprint").exists()  # the emulator stopped with it

    with pytest.raises(DeviceError) as caught:
        open_fingerprint(FingerprintSection(enabled=False))
    assert caught.value.code == "disabled"


def test_character_buffers_through_plain_pyfingerprint(fingerprint_device: Device) -> None:
    """The commands the driver does not use, as pyfingerprint 1.5 itself sends them."""
    from pyfingerprint.pyfingerprint import PyFingerprint

    emulator = fingerprint_device.require_emulator()
    emulator.control("cooperative", "off")
    finger = PyFingerprint(fingerprint_device.url, 57600, 0xFFFFFFFF, 0x00000000)
    try:
        assert finger.verifyPassword()
        emulator.control("place", "petugas-0010", "1")
        assert finger.readImage()
        assert finger.convertImage(0x01)
        features = finger.downloadCharacteristics(0x01)
        assert len(features) == 512  # one character buffer, as on the real module
        assert finger.uploadCharacteristics(0x02, features)  # it reads the buffer back to check
        same = finger.compareCharacteristics()
        assert same >= 100

        emulator.control("place", "warga-0610", "1")
        assert finger.readImage() and finger.convertImage(0x02)
        assert finger.compareCharacteristics() == 0  # below the match threshold: 0x08
        assert finger.createTemplate() is False  # two different fingers: 0x0A

        emulator.control("place", "petugas-0010", "1")
        assert finger.readImage() and finger.convertImage(0x02)
        assert finger.createTemplate()
        assert finger.storeTemplate(3) == 3
        assert finger.getTemplateCount() == 1
        assert finger.getTemplateIndex(0)[3] is True
        assert finger.loadTemplate(3, 0x02)
        assert finger.compareCharacteristics() >= 100
        assert finger.searchTemplate()[0] == 3
        assert isinstance(finger.generateRandomNumber(), int)
        assert finger.clearDatabase()
        assert finger.getTemplateCount() == 0
        assert finger.searchTemplate() == (-1, -1)
        with pytest.raises(Exception, match="template could not be read"):
            finger.loadTemplate(3, 0x01)
    finally:
        del finger  # pyfingerprint closes its port in __del__


def test_importing_the_driver_leaves_opencv_unloaded() -> None:
    """The agent imports this driver through the device registry and never captures a
    finger: OpenCV and the quality score (~16 MiB resident) load on first use. A fresh
    interpreter, since this one has both already."""
    probe = ("import sys, sensors.fingerprint; print(sorted(m for m in "
             "('cv2', 'sensors.fingerprint_quality') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"


def test_the_driver_names_the_sensor_codes_of_the_quality_rules() -> None:
    """The driver keeps the convert texts by code name (to import the rules lazily): every
    name must be one of sensors.fingerprint_quality's, and "done" the same code."""
    import sensors.fingerprint as driver
    from sensors import fingerprint_quality as rules

    assert driver._CONVERT_OK == rules.CONVERT_OK
    codes = {name: getattr(rules, name) for name in driver._CONVERT_TEXTS.values()}
    assert codes == {"CONVERT_MESSY": rules.CONVERT_MESSY,
                     "CONVERT_FEW_FEATURES": rules.CONVERT_FEW_FEATURES,
                     "CONVERT_INVALID": rules.CONVERT_INVALID}
