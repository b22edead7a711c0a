"""Camera drivers against the emulated camera, and the photo check against its scenes."""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from kit.config import config_from_dict
from sensors.camera import OpenCvCamera, Picamera2Camera
from sensors.emulated.camera import POSES, SCENES, CameraEmulator, EmulatedCamera, render_scene
from sensors.errors import DeviceError
from sensors.photo_quality import PHOTO_THRESHOLD, assess_photo, photo_quality
from sensors.registry import open_camera
from tests.waiting import wait_until

# Each bad scene, and the problem the officer must be told first.
BAD_SCENES = {
    "dark": "dark",
    "bright": "bright",
    "blurred": "blurred",
    "no-face": "no_face",
    "two-faces": "many_faces",
    "off-centre": "off_centre",
    "small": "small",
    # The ICAO components (tests/sensors/test_photo_icao.py checks each in detail).
    "cluttered": "background",
    "turned": "yaw",
    "tilted": "roll",
    "eyes-closed": "eyes",
    "side-lit": "lighting",
}


@pytest.fixture
def emulator() -> Iterator[CameraEmulator]:
    cam = CameraEmulator(640, 480, fps=30)
    cam.start()
    try:
        yield cam
    finally:
        cam.stop()


@pytest.fixture
def camera(emulator: CameraEmulator) -> Iterator[EmulatedCamera]:
    with EmulatedCamera(640, 480, emulator=emulator, timeout=1.0) as cam:
        yield cam  # type: ignore[misc]


def frame_of(camera: EmulatedCamera, *scene: str) -> np.ndarray:
    """A frame taken after switching the scene (the one in flight may predate the switch)."""
    camera.emulator.control("scene", *scene)
    camera.preview_frame()
    return camera.preview_frame()


def test_bad_scenes_table_covers_every_scene() -> None:
    assert set(BAD_SCENES) | {"good"} == set(SCENES)


@pytest.mark.parametrize("pose", range(len(POSES)))
def test_every_good_pose_passes(camera: EmulatedCamera, pose: int) -> None:
    rgb = frame_of(camera, "good", str(pose))
    assert rgb.shape == (480, 640, 3) and rgb.dtype == np.uint8
    assessment = assess_photo(rgb)
    quality = photo_quality(rgb)
    assert quality.ok, assessment
    assert assessment.faces == 1 and not assessment.problems
    assert quality.threshold == PHOTO_THRESHOLD
    assert quality.reason_en == "The photo meets the requirements"


@pytest.mark.parametrize(("scene", "code"), BAD_SCENES.items())
def test_each_bad_scene_fails_with_its_reason(camera: EmulatedCamera, scene: str,
                                              code: str) -> None:
    rgb = frame_of(camera, scene)
    assessment = assess_photo(rgb)
    quality = photo_quality(rgb)
    assert not quality.ok
    assert quality.score < PHOTO_THRESHOLD
    assert assessment.problems[0].code == code, assessment
    assert quality.reason_id == assessment.problems[0].id
    assert quality.reason_en == assessment.problems[0].en


@pytest.mark.parametrize("pose", range(len(POSES)))
@pytest.mark.parametrize("scene", ["dark", "bright", "blurred"])
def test_light_and_focus_faults_are_caught_for_every_pose(scene: str, pose: int) -> None:
    rng = np.random.default_rng(pose)
    base = render_scene(scene, 640, 480, pose).astype(np.int16)
    # Real sensors are noisier than the emulator in a dim room; noise must not
    # pass for sharpness.
    noisy = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
    assert assess_photo(noisy).problems[0].code == BAD_SCENES[scene]


def test_noise_does_not_fail_a_good_photo() -> None:
    rng = np.random.default_rng(7)
    base = render_scene("good", 640, 480, 0).astype(np.int16)
    noisy = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
    assert photo_quality(noisy).ok


def test_reasons_tell_the_officer_what_to_do() -> None:
    dark = photo_quality(render_scene("dark"))
    assert "tambah cahaya" in dark.reason_id and "add light" in dark.reason_en
    small = photo_quality(render_scene("small"))
    assert "dekatkan kamera" in small.reason_id and "closer" in small.reason_en
    two = photo_quality(render_scene("two-faces"))
    assert "2 wajah" in two.reason_id and "2 faces" in two.reason_en


def test_off_centre_says_which_way_to_turn() -> None:
    left = render_scene("off-centre")
    assessment = assess_photo(left)
    assert assessment.centre_offset is not None and assessment.centre_offset[0] < -0.2
    assert "kiri" in assessment.problems[0].id and "left" in assessment.problems[0].en
    right = assess_photo(np.ascontiguousarray(left[:, ::-1]))
    assert "kanan" in right.problems[0].id and "right" in right.problems[0].en


def test_assessment_measures_the_face() -> None:
    a = assess_photo(render_scene("good", 640, 480, 0))
    assert a.face_box is not None
    x, y, w, h = a.face_box
    # pose 0 puts a face 32 % of the height tall, centred at (50 %, 42 %).
    assert 0.25 < a.face_height < 0.40  # type: ignore[operator]
    assert abs((x + w / 2) / 640 - 0.50) < 0.05 and abs((y + h / 2) / 480 - 0.42) < 0.05
    blurred = assess_photo(render_scene("blurred", 640, 480, 0))
    assert blurred.sharpness < a.sharpness / 5
    assert 100 < a.brightness < 200 and a.clipped < 0.05


def test_photo_check_refuses_what_is_not_an_rgb_frame() -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        assess_photo(np.zeros((480, 640), np.uint8))
    with pytest.raises(ValueError, match="RGB uint8"):
        assess_photo(np.zeros((480, 640, 3), np.float32))


def test_capture_gives_a_jpeg_that_still_passes(camera: EmulatedCamera) -> None:
    camera.emulator.control("scene", "good", "2")
    camera.preview_frame()
    still = camera.capture()
    assert still.jpeg[:2] == b"\xff\xd8" and still.jpeg[-2:] == b"\xff\xd9"
    assert still.size == (640, 480)
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(still.jpeg, np.uint8), cv2.IMREAD_COLOR),
                           cv2.COLOR_BGR2RGB)
    assert decoded.shape == still.rgb.shape
    assert np.abs(decoded.astype(int) - still.rgb.astype(int)).mean() < 4  # same picture
    assert photo_quality(decoded).ok


def test_preview_runs_at_the_configured_rate() -> None:
    fps, seconds = 15.0, 1.2
    with EmulatedCamera(640, 480, fps=fps) as camera:
        camera.preview_frame()
        frames = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:  # the measurement window: frames in 1.2 s
            camera.preview_frame()
            frames += 1
    # No faster than the sensor (each frame is new), and not starved: at
    # least 10 fps at VGA, with slack for a busy CI machine.
    assert frames <= fps * seconds + 2
    assert frames >= 10 * seconds


def test_emulator_rate_follows_the_fps_control(emulator: CameraEmulator) -> None:
    emulator.control("fps", "5")
    stream = emulator.open_stream()
    first = emulator.read_frame(stream, 0, 1.0)
    frames = [first]
    for _ in range(3):
        frames.append(emulator.read_frame(stream, frames[-1].seq, 1.0))
    gaps = np.diff([f.timestamp for f in frames])
    assert 0.15 < float(np.median(gaps)) < 0.30  # 0.2 s apart at 5 fps


def test_unplug_gives_a_clear_error_and_replug_recovers(camera: EmulatedCamera) -> None:
    camera.preview_frame()
    assert camera.emulator.control("unplug") == "camera unplugged"
    with pytest.raises(DeviceError) as lost:
        camera.preview_frame()
    assert lost.value.device == "camera" and lost.value.operation == "preview"
    assert lost.value.code == "camera_lost"
    assert "kabel" in lost.value.text("id") and "cable" in lost.value.text("en")
    assert not camera.is_open
    with pytest.raises(DeviceError) as still_gone:
        camera.preview_frame()
    assert still_gone.value.code == "camera_not_found"
    camera.emulator.control("replug")
    assert photo_quality(camera.preview_frame()).ok
    assert camera.is_open


def test_unplug_wakes_a_waiting_preview(emulator: CameraEmulator) -> None:
    emulator.control("fps", "0.5")  # the next frame is 2 s away
    camera = EmulatedCamera(640, 480, emulator=emulator, timeout=5.0)
    camera.preview_frame()
    camera.preview_frame()  # the frame after the rate change: the next is 2 s away
    errors: list[DeviceError] = []

    def wait() -> None:
        try:
            camera.preview_frame()
        except DeviceError as exc:
            errors.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    # Asleep on the emulator's frame condition (its waiter list is the stdlib's own).
    wait_until(lambda: emulator._cond._waiters, 2, "the preview to wait for its frame")
    emulator.control("unplug")
    waiter.join(timeout=3)
    assert not waiter.is_alive()
    assert [e.code for e in errors] == ["camera_lost"]


def test_a_stalled_camera_times_out(emulator: CameraEmulator) -> None:
    emulator.control("fps", "0.5")
    camera = EmulatedCamera(640, 480, emulator=emulator, timeout=0.3)
    with pytest.raises(DeviceError) as stalled:
        # At most the frame on hand and one in flight at the rate change come quickly.
        for _ in range(3):
            camera.preview_frame()
    assert stalled.value.code == "camera_timeout"
    assert "0.3" in stalled.value.text("en")


def test_emulator_controls_refuse_nonsense(emulator: CameraEmulator) -> None:
    assert {"scene", "unplug", "replug"} <= set(CameraEmulator.CONTROLS)
    with pytest.raises(ValueError, match="unknown control"):
        emulator.control("explode")
    with pytest.raises(ValueError, match="unknown scene"):
        emulator.control("scene", "beach")
    with pytest.raises(ValueError, match="pose"):
        emulator.control("scene", "good", "99")
    with pytest.raises(ValueError, match="takes no arguments"):
        emulator.control("unplug", "now")
    with pytest.raises(ValueError):
        emulator.control("fps", "fast")
    assert emulator.control("scene", "dark") == "scene dark"
    assert emulator.scene == "dark"


@pytest.mark.skipif(importlib.util.find_spec("picamera2") is not None,
                    reason="picamera2 is installed here")
def test_missing_picamera2_is_a_clear_device_error() -> None:
    camera = Picamera2Camera(640, 480)
    with pytest.raises(DeviceError) as missing:
        camera.start()
    assert missing.value.code == "camera_library_missing"
    assert missing.value.device == "camera" and missing.value.operation == "start"
    assert "not installed" in missing.value.text("en")
    assert "tidak terpasang" in missing.value.text("id")
    assert not camera.is_open


def test_opencv_camera_that_is_not_there(tmp_path: Path) -> None:
    with pytest.raises(DeviceError) as absent:
        OpenCvCamera(str(tmp_path / "video9"), 640, 480).preview_frame()
    assert absent.value.code == "camera_not_found"


def test_opencv_driver_reads_a_recorded_clip(tmp_path: Path) -> None:
    # A clip of the emulator's frames stands in for a webcam: the real OpenCV
    # driver decodes it, so its BGR->RGB handling is what is checked.
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    assert writer.isOpened()
    good = render_scene("good", 640, 480, 1)
    for _ in range(3):
        writer.write(cv2.cvtColor(good, cv2.COLOR_RGB2BGR))
    writer.release()
    camera = OpenCvCamera(str(clip), 640, 480)
    rgb = camera.preview_frame()
    assert rgb.shape == (480, 640, 3)
    channel_means = rgb.reshape(-1, 3).mean(axis=0)
    assert np.allclose(channel_means, good.reshape(-1, 3).mean(axis=0), atol=4)
    assert photo_quality(rgb).ok
    camera.preview_frame()
    camera.preview_frame()
    with pytest.raises(DeviceError) as ended:  # the clip ran out, as a pulled cable
        camera.preview_frame()
    assert ended.value.code == "camera_lost"


def test_open_camera_follows_the_config() -> None:
    config = config_from_dict({"devices": {"camera": {"kind": "emulated", "width": 320,
                                                      "height": 240}}})
    camera = open_camera(config.devices.camera)
    assert isinstance(camera, EmulatedCamera)
    with camera:
        assert camera.preview_frame().shape == (240, 320, 3)
    assert isinstance(open_camera(config_from_dict(
        {"devices": {"camera": {"kind": "opencv", "device": 2}}}).devices.camera), OpenCvCamera)


def test_importing_the_camera_driver_leaves_opencv_unloaded() -> None:
    """OpenCV (~16 MiB resident) loads when a frame is encoded or a USB camera opens,
    not with the module: the agent imports the device registry, and so this module,
    without ever using a camera. A fresh interpreter: this one has OpenCV already."""
    import subprocess
    import sys

    probe = ("import sys, sensors.camera; "
             "print(sorted(m for m in ('cv2', 'picamera2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
