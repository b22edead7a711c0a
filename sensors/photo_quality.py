"""Whether a frame makes a usable KTP-el face photo: a score, the pass mark, what to fix first.

:func:`assess_photo` finds faces with OpenCV's Haar cascade (shipped in
opencv-python-headless < 5, no download) and rates the frame on light, focus,
one face, face size and centring; :func:`photo_quality` gives the
:class:`~sensors.Quality` the kiosk shows. ``PHOTO_THRESHOLD`` is the one pass
mark: the kit records it with every photo. The reason given is the first
thing the officer should fix, in Bahasa Indonesia and English.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

from sensors import Quality
from sensors.errors import DeviceError

PHOTO_THRESHOLD = 60

# The face finder works on a copy at most this wide: a face must fill at least
# 8 % of the frame height to matter, which is still 19 px here, within the
# cascade's 20 px window, and detection costs a quarter of full VGA.
_DETECT_WIDTH = 320
_MIN_FACE = 0.08
# Sharpness is measured on the face scaled to this square, so a near face and
# a far one are judged alike, after a slight blur (sigma in pixels) that
# removes sensor noise: noise is fine detail too, and in a dim room it would
# make a defocused face look sharp to a bare Laplacian.
_FACE_SAMPLE = 64
_DENOISE_SIGMA = 0.8
_CLIP_LEVEL = 250
# Where a face centre belongs in the frame (fractions of width, height): a
# KTP-el photo is head and shoulders, so the face sits a little above centre.
_TARGET_CENTRE = (0.50, 0.42)


def _ramp(value: float, fail: float, passing: float, full: float) -> int:
    """Score ``value`` 0-100: 0 at ``fail``, the pass mark at ``passing``, 100 at ``full``.

    Works both ways round (``fail`` may be above ``full``).
    """
    if fail < full:
        if value <= fail:
            return 0
        if value >= full:
            return 100
        if value < passing:
            return round(PHOTO_THRESHOLD * (value - fail) / (passing - fail))
        return round(PHOTO_THRESHOLD + (100 - PHOTO_THRESHOLD) * (value - passing)
                     / (full - passing))
    return _ramp(-value, -fail, -passing, -full)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a photo, and what the officer should do about it."""

    code: str
    id: str
    en: str


@dataclass(frozen=True)
class PhotoAssessment:
    """Everything the photo check measured on one frame.

    * ``faces`` -- how many faces the detector found;
    * ``face_box`` -- (x, y, w, h) in frame pixels of the largest face, or None;
    * ``face_height`` -- that face's height as a fraction of the frame height;
    * ``centre_offset`` -- (dx, dy): how far the face centre is from where it
      belongs, as fractions of the frame width and height (negative = left/up);
    * ``sharpness`` -- variance of the Laplacian of the face scaled to 64 x 64
      grey levels and smoothed by 0.8 px against sensor noise (of the whole
      frame at 320 px wide when there is no face); about 140 for a sharp
      face, under 15 for a defocused one;
    * ``brightness`` -- mean grey level (0-255) of the face, or of the frame;
    * ``clipped`` -- fraction of those pixels blown out to white (>= 250);
    * ``scores`` -- 0-100 per criterion, the pass mark being ``threshold``;
    * ``problems`` -- the failing criteria, most important first.

    ``score`` is the worst criterion's score: a photo is only as good as its
    worst defect.
    """

    faces: int
    face_box: tuple[int, int, int, int] | None
    face_height: float | None
    centre_offset: tuple[float, float] | None
    sharpness: float
    brightness: float
    clipped: float
    scores: dict[str, int] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    threshold: int = PHOTO_THRESHOLD

    @property
    def score(self) -> int:
        return min(self.scores.values()) if self.scores else 0

    @property
    def ok(self) -> bool:
        return self.score >= self.threshold

    @property
    def quality(self) -> Quality:
        if self.problems:
            first = self.problems[0]
            return Quality(self.score, self.threshold, first.id, first.en)
        return Quality(self.score, self.threshold, "Foto memenuhi syarat",
                       "The photo meets the requirements")


_detectors = threading.local()


@functools.cache
def _cascade_path() -> str:
    return str(cv2.data.haarcascades) + "haarcascade_frontalface_alt2.xml"


def _detector() -> cv2.CascadeClassifier:
    # One classifier per thread: OpenCV does not promise detectMultiScale is
    # safe to call on one object from two threads (preview and capture).
    detector = getattr(_detectors, "cascade", None)
    if detector is None:
        detector = cv2.CascadeClassifier(_cascade_path())
        if detector.empty():
            raise DeviceError(
                "camera", "photo check", id="Model pendeteksi wajah tidak ditemukan",
                en="The face detector model is missing",
                hint_id="Pasang ulang opencv-python-headless (versi < 5)",
                hint_en="Reinstall opencv-python-headless (a version below 5)")
        _detectors.cascade = detector
    return detector


def find_faces(grey: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Frontal faces in a grey frame as (x, y, w, h) boxes in its pixels, largest first.

    Faces under 8 % of the frame height are not looked for: at that size
    the photo fails for being too small anyway.
    """
    height, width = grey.shape
    scale = min(1.0, _DETECT_WIDTH / width)
    small = grey if scale == 1.0 else cv2.resize(
        grey, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    min_side = max(20, round(_MIN_FACE * small.shape[0]))
    found = _detector().detectMultiScale(small, scaleFactor=1.1, minNeighbors=4,
                                         minSize=(min_side, min_side))
    boxes = [tuple(round(v / scale) for v in box) for box in found]
    boxes.sort(key=lambda b: b[2] * b[3], reverse=True)
    return boxes  # type: ignore[return-value]


def _sharpness(grey: np.ndarray) -> float:
    smooth = cv2.GaussianBlur(grey, (0, 0), _DENOISE_SIGMA)
    return float(cv2.Laplacian(smooth, cv2.CV_64F).var())


def assess_photo(rgb: np.ndarray) -> PhotoAssessment:
    """Measure one RGB frame (height, width, 3) uint8 as a KTP-el face photo.

    Light and focus are judged first because without them the face cannot
    be found; then that there is exactly one face; then that it is big
    enough and centred.
    """
    if not (isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3
            and rgb.dtype == np.uint8):
        raise ValueError("assess_photo wants an RGB uint8 array of shape (height, width, 3)")
    height, width = rgb.shape[:2]
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    boxes = find_faces(grey)
    scores: dict[str, int] = {}
    problems: list[Problem] = []

    if boxes:
        x, y, w, h = boxes[0]
        face = grey[max(0, y) : y + h, max(0, x) : x + w]
        sample = cv2.resize(face, (_FACE_SAMPLE, _FACE_SAMPLE), interpolation=cv2.INTER_AREA)
        sharpness = _sharpness(sample)
        brightness = float(face.mean())
        clipped = float(np.count_nonzero(face >= _CLIP_LEVEL)) / face.size
        scores["light"] = min(_ramp(brightness, 10, 60, 90), _ramp(brightness, 250, 205, 180),
                              _ramp(clipped, 0.5, 0.15, 0.02))
        scores["focus"] = _ramp(sharpness, 5, 40, 120)
    else:
        scale = min(1.0, _DETECT_WIDTH / width)
        small = grey if scale == 1.0 else cv2.resize(
            grey, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        sharpness = _sharpness(small)
        brightness = float(grey.mean())
        clipped = float(np.count_nonzero(grey >= _CLIP_LEVEL)) / grey.size
        scores["light"] = min(_ramp(brightness, 10, 45, 80), _ramp(brightness, 250, 200, 170),
                              _ramp(clipped, 0.8, 0.4, 0.1))
        # A bare wall has no detail to be sharp: only call a picture blurred
        # when it has shapes (contrast) but no fine detail.
        if float(grey.std()) > 25:
            scores["focus"] = _ramp(sharpness, 3, 20, 60)

    if scores["light"] < PHOTO_THRESHOLD:
        dark = brightness < 128
        where_id, where_en = ("Wajah", "Face") if boxes else ("Gambar", "Picture")
        if dark:
            problems.append(Problem("dark", f"{where_id} terlalu gelap — tambah cahaya",
                                    f"{where_en} too dark — add light"))
        else:
            problems.append(Problem(
                "bright", f"{where_id} terlalu terang — hindari cahaya langsung atau lampu kilat",
                f"{where_en} too bright — keep out of direct light and flash glare"))
    if scores.get("focus", 100) < PHOTO_THRESHOLD:
        problems.append(Problem("blurred", "Foto buram — pegang kamera diam dan tunggu fokus",
                                "Photo blurred — hold the camera still and wait for focus"))

    face_height: float | None = None
    centre_offset: tuple[float, float] | None = None
    if not boxes:
        scores["faces"] = 0
        problems.append(Problem("no_face", "Wajah tidak terlihat — arahkan kamera ke wajah",
                                "No face found — point the camera at the face"))
    elif len(boxes) > 1:
        scores["faces"] = 10
        problems.append(Problem(
            "many_faces",
            f"Ada {len(boxes)} wajah — pastikan hanya satu orang di dalam bingkai",
            f"{len(boxes)} faces found — make sure only one person is in the frame"))
    else:
        scores["faces"] = 100

    if boxes:
        x, y, w, h = boxes[0]
        face_height = h / height
        dx = (x + w / 2) / width - _TARGET_CENTRE[0]
        dy = (y + h / 2) / height - _TARGET_CENTRE[1]
        centre_offset = (dx, dy)
        scores["size"] = min(_ramp(face_height, 0.08, 0.20, 0.25),
                             _ramp(face_height, 0.85, 0.65, 0.55))
        scores["centre"] = min(_ramp(abs(dx), 0.35, 0.15, 0.05),
                               _ramp(abs(dy), 0.35, 0.15, 0.06))
        if scores["size"] < PHOTO_THRESHOLD:
            if face_height < 0.4:
                problems.append(Problem("small", "Wajah terlalu kecil — dekatkan kamera",
                                        "Face too small — move the camera closer"))
            else:
                problems.append(Problem("close", "Wajah terlalu dekat — jauhkan kamera",
                                        "Face too close — move the camera back"))
        if scores["centre"] < PHOTO_THRESHOLD:
            # The screen shows the camera's view unmirrored: a face on the left
            # of the picture comes to the middle when the camera turns left.
            if abs(dx) >= abs(dy):
                side_id, side_en = ("kiri", "left") if dx < 0 else ("kanan", "right")
                problems.append(Problem(
                    "off_centre", f"Wajah tidak di tengah — geser kamera ke {side_id}",
                    f"Face not centred — turn the camera to the {side_en}"))
            else:
                side_id, side_en = ("atas", "up") if dy < 0 else ("bawah", "down")
                problems.append(Problem(
                    "off_centre", f"Wajah tidak di tengah — arahkan kamera ke {side_id}",
                    f"Face not centred — tilt the camera {side_en}"))

    return PhotoAssessment(
        faces=len(boxes), face_box=boxes[0] if boxes else None, face_height=face_height,
        centre_offset=centre_offset, sharpness=sharpness, brightness=brightness,
        clipped=clipped, scores=scores, problems=tuple(problems))


def photo_quality(rgb: np.ndarray) -> Quality:
    """Score an RGB frame as a KTP-el face photo (0-100, pass mark 60) with the reason to show.

    >>> from sensors.emulated.camera import render_scene
    >>> photo_quality(render_scene("dark")).reason_en
    'Picture too dark — add light'
    """
    return assess_photo(rgb).quality

