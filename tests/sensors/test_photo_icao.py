"""The photo check's ICAO 9303 / ISO/IEC 29794-5 components against the emulated camera.

Each bad scene must be refused for its own component -- and only that one, so
the officer is told the right fix -- and the good scene must pass at every
pose, with and without sensor noise. Every scene is saved with its verdict
drawn on under ``artefacts/camera/`` for a person to look at.
"""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from sensors.emulated.camera import POSES, SCENES, render_scene
from sensors.photo_quality import (
    PHOTO_THRESHOLD,
    PhotoAssessment,
    _cascade,
    assess_photo,
    photo_quality,
)

ARTEFACTS = Path(__file__).resolve().parents[2] / "artefacts" / "camera"

# Scene -> (the component that must refuse it, words its message must hold:
# the component's name in Indonesian and English, and the fix in both).
ICAO_SCENES: dict[str, tuple[str, tuple[str, ...]]] = {
    "cluttered": ("background", ("Latar belakang", "kain latar polos", "Background",
                                 "plain backdrop")),
    "turned": ("yaw", ("Kepala menoleh", "menghadap lurus", "Head turned", "yaw",
                       "face the camera")),
    "tilted": ("roll", ("Kepala miring", "ditegakkan", "Head tilted", "roll", "upright")),
    "eyes-closed": ("eyes", ("Mata", "membuka kedua mata", "Eyes", "open both eyes")),
    "side-lit": ("lighting", ("Cahaya tidak rata", "dari depan", "Lighting uneven",
                              "from the front")),
}
# The components every face gets, in the order they are judged.
FACE_COMPONENTS = ("light", "focus", "faces", "size", "centre", "background", "lighting",
                   "roll", "yaw", "pitch", "eyes")


def noisy(rgb: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rgb.astype(np.int16) + rng.normal(0, sigma, rgb.shape), 0,
                   255).astype(np.uint8)


def draw_verdict(rgb: np.ndarray, a: PhotoAssessment, title: str) -> np.ndarray:
    """The frame with the face box, the eye boxes and the verdict written on it."""
    out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    colour = (80, 220, 80) if a.ok else (90, 90, 255)
    if a.face_box is not None:
        x, y, w, h = a.face_box
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, 2)
    for ex, ey, ew, eh in a.eye_boxes:
        cv2.rectangle(out, (ex, ey), (ex + ew, ey + eh), (230, 200, 40), 1)
    lines = [f"{title}: score {a.score} -> {'PASS' if a.ok else 'FAIL'}"]
    for c in a.components:
        if not c.passed:
            value = "not measured" if c.value is None else f"{c.value:.3g}"
            lines += textwrap.wrap(f"{c.code}: {value} (limit {c.limit})", 60)
    for problem in a.problems:
        lines += textwrap.wrap(problem.en.replace("\u2014", "-"), 60)
    height = 22 * len(lines) + 10
    band = out[-height:].astype(np.float32)
    out[-height:] = (band * 0.2).astype(np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(out, line, (10, out.shape[0] - height + 24 + 22 * i),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255) if i else colour, 1,
                    cv2.LINE_AA)
    return out


@pytest.mark.parametrize("scene", ICAO_SCENES)
def test_each_icao_scene_is_refused_for_its_own_component(scene: str) -> None:
    code, words = ICAO_SCENES[scene]
    a = assess_photo(render_scene(scene))
    assert not a.ok and a.score < PHOTO_THRESHOLD
    assert a.failed == (code,), a.components
    assert [p.code for p in a.problems] == [code]
    problem = a.problems[0]
    assert problem.component == code
    message = problem.id + " | " + problem.en
    for word in words:
        assert word in message, (word, message)
    # The component keeps its own figure, its limit and the same message.
    component = a.component(code)
    assert component is not None and not component.passed
    assert component.value is not None and component.limit
    assert (component.id, component.en) == (problem.id, problem.en)
    # What the kiosk shows is that message.
    quality = photo_quality(render_scene(scene))
    assert (quality.reason_id, quality.reason_en) == (problem.id, problem.en)


@pytest.mark.parametrize("pose", range(len(POSES)))
@pytest.mark.parametrize("scene", ["cluttered", "eyes-closed", "side-lit"])
def test_icao_faults_are_caught_at_every_pose_and_with_noise(scene: str, pose: int) -> None:
    code = ICAO_SCENES[scene][0]
    a = assess_photo(noisy(render_scene(scene, 640, 480, pose), 4, pose))
    assert a.failed == (code,), a.components


@pytest.mark.parametrize("sigma", [0, 2, 8])
@pytest.mark.parametrize("pose", range(len(POSES)))
def test_good_scene_passes_every_component_at_every_pose(pose: int, sigma: float) -> None:
    rgb = render_scene("good", 640, 480, pose)
    a = assess_photo(noisy(rgb, sigma, pose) if sigma else rgb)
    assert a.ok, [(c.code, c.value, c.score) for c in a.components]
    assert a.failed == () and a.problems == ()
    assert tuple(c.code for c in a.components) == FACE_COMPONENTS
    assert all(c.value is not None for c in a.components), a.components
    assert len(a.eye_boxes) == 2
    assert a.quality.reason_en == "The photo meets the requirements"


def test_good_scene_measures_like_a_frontal_portrait() -> None:
    a = assess_photo(render_scene("good", 640, 480, 0))
    values = {c.code: c.value for c in a.components}
    assert values["background"] is not None and values["background"] < 0.01  # no edges
    assert values["lighting"] is not None and values["lighting"] > 0.8  # halves alike
    assert values["roll"] is not None and abs(values["roll"]) < 5  # her head is ~3 deg off
    assert values["yaw"] is not None and abs(values["yaw"]) < 5
    assert a.component("yaw").detail["source"] == "head outline"  # type: ignore[union-attr]
    assert values["eyes"] is not None and values["eyes"] > 0.25
    assert a.eye_line is not None and 0.30 <= a.eye_line <= 0.50  # ISO 19794-5 eye line
    # The eyes are in the upper half of the face, one either side of its middle.
    assert a.face_box is not None
    x, y, w, h = a.face_box
    (lx, ly, lw, lh), (rx, ry, rw, rh) = a.eye_boxes
    assert lx + lw / 2 < x + w / 2 < rx + rw / 2
    assert y < ly + lh / 2 < y + h / 2 and y < ry + rh / 2 < y + h / 2


def test_the_components_measure_what_the_scenes_did() -> None:
    turned = assess_photo(render_scene("turned"))
    yaw = turned.component("yaw")
    assert yaw is not None and yaw.value is not None and 20 < yaw.value < 40  # turned 30 deg
    mirrored = assess_photo(np.ascontiguousarray(render_scene("turned")[:, ::-1]))
    mirror_yaw = mirrored.component("yaw")
    assert mirror_yaw is not None and mirror_yaw.value is not None
    assert -40 < mirror_yaw.value < -20
    assert "kanan" in yaw.id and "right" in yaw.en
    assert "kiri" in mirror_yaw.id and "left" in mirror_yaw.en
    # Tilted 15 degrees from a face already 3 degrees off level.
    roll = assess_photo(render_scene("tilted")).component("roll")
    assert roll is not None and roll.value is not None and -15 < roll.value < -9
    side = assess_photo(render_scene("side-lit")).component("lighting")
    assert side is not None and side.value is not None and side.value < 0.5
    assert side.detail["left"] > side.detail["right"]  # type: ignore[operator]
    assert "kanan" in side.id and "right side" in side.en  # the lamp is on the left
    closed = assess_photo(render_scene("eyes-closed"))
    eyes = closed.component("eyes")
    assert eyes is not None and eyes.value is not None and eyes.value < 0.1
    assert closed.eye_boxes == ()
    # Without eyes the roll cannot be measured: it is reported so, not failed.
    roll_closed = closed.component("roll")
    assert roll_closed is not None and roll_closed.value is None and roll_closed.passed
    assert "tidak terukur" in roll_closed.id and "not measured" in roll_closed.en
    clutter = assess_photo(render_scene("cluttered")).component("background")
    assert clutter is not None and clutter.value is not None and clutter.value > 0.06


def test_more_than_eight_degrees_of_roll_fails_and_less_passes() -> None:
    # Rotating the good frame about the face centre: her eye line starts ~3 deg off.
    base = render_scene("good", 640, 480, 0)
    start = assess_photo(base).component("roll")
    assert start is not None and start.value is not None
    for turn, ok in ((-3.0, True), (3.0, True), (8.0, True), (-7.0, False), (13.0, False)):
        matrix = cv2.getRotationMatrix2D((320, 200), turn, 1.0)
        rotated = cv2.warpAffine(base, matrix, (640, 480), borderMode=cv2.BORDER_REPLICATE)
        roll = assess_photo(rotated).component("roll")
        assert roll is not None and roll.value is not None
        # Rotating the picture by +turn (counter-clockwise) turns the eye line by -turn.
        assert abs(roll.value - (start.value - turn)) < 2.0, (turn, roll.value)
        assert roll.passed is ok, (turn, roll.value)


def test_old_scenes_keep_their_first_reason() -> None:
    expected = {"dark": "dark", "bright": "bright", "blurred": "blurred", "no-face": "no_face",
                "two-faces": "many_faces", "off-centre": "off_centre", "small": "small"}
    for scene, code in expected.items():
        a = assess_photo(render_scene(scene))
        assert a.problems[0].code == code, (scene, a.problems)
        assert not a.ok


def test_cascades_are_loaded_once_per_process() -> None:
    assess_photo(render_scene("good"))
    before = _cascade.cache_info()
    for scene in ("good", "eyes-closed", "cluttered", "two-faces"):
        assess_photo(render_scene(scene))
    after = _cascade.cache_info()
    assert after.misses == before.misses  # no cascade file read again
    assert after.hits > before.hits
    assert after.currsize <= 4  # face, eye, eyes with glasses, profile


def test_two_threads_checking_at_once_agree() -> None:
    frames = [render_scene(s) for s in ("good", "turned", "side-lit", "eyes-closed")]
    expected = [assess_photo(f).failed for f in frames]
    results: dict[int, list[tuple[str, ...]]] = {}

    def check(n: int) -> None:
        results[n] = [assess_photo(f).failed for f in frames for _ in range(2)][::2]

    threads = [threading.Thread(target=check, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == {0: expected, 1: expected}


def test_assessment_lists_every_failed_message_for_the_kiosk() -> None:
    # A cluttered room and a lamp to one side at once: two components fail, and
    # each message is there for the kiosk, the setup (backdrop) first.
    rgb = render_scene("cluttered").astype(np.float32)
    gain = np.interp(np.arange(rgb.shape[1]), [250, 390], [1.15, 0.3]).astype(np.float32)
    rgb = np.clip(rgb * gain[None, :, None], 0, 255).astype(np.uint8)
    a = assess_photo(rgb)
    assert a.failed == ("background", "lighting"), a.components
    assert a.reasons("id") == [p.id for p in a.problems]
    assert a.reasons("en") == [p.en for p in a.problems]
    assert [p.component for p in a.problems] == ["background", "lighting"]
    assert a.quality.reason_en == a.reasons("en")[0]


def test_every_scene_is_saved_with_its_verdict() -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for scene in SCENES:
        rgb = render_scene(scene)
        path = ARTEFACTS / f"{scene}.png"
        assert cv2.imwrite(str(path), draw_verdict(rgb, assess_photo(rgb), scene))
        assert path.stat().st_size > 10_000
    for pose in range(len(POSES)):
        rgb = noisy(render_scene("good", 640, 480, pose), 2, pose)
        path = ARTEFACTS / f"good-pose{pose}.png"
        assert cv2.imwrite(str(path), draw_verdict(rgb, assess_photo(rgb), f"good pose {pose}"))
