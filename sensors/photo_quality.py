"""Whether a frame makes a usable KTP-el face photo: a score, the pass mark, what to fix.

:func:`assess_photo` finds the face with OpenCV's Haar cascades (shipped in
opencv-python-headless < 5, no download, nothing trained here) and rates the
frame component by component, after the portrait rules of ICAO 9303 part 3
and the quality components of ISO/IEC 29794-5:

==============  ==================================================================
component       what is measured (details and figures: ``sensors/README.md``)
==============  ==================================================================
``light``       exposure of the face: mean grey level, share blown out to white
``focus``       sharpness: Laplacian variance of the face at 64 x 64
``faces``       exactly one frontal face
``size``        face height / frame height (head width / frame width reported)
``centre``      face centre across the frame, eye line height down the frame
``background``  beside and above the head: edge density and colour texture
``lighting``    left / right half of the face: luminance ratio, clipped pixels
``roll``        angle of the line through the two eye centres
``yaw``         eye midpoint against the head outline on the backdrop
``pitch``       eye height within the face box
``eyes``        both eyes found by the eye cascade, each with a dark iris
==============  ==================================================================

Every component is required: the score is the worst component's score, so
``ok`` fails when any one fails. Each component keeps its own measured value,
pass band and message (Bahasa Indonesia and English) that names it and says
the fix; :attr:`PhotoAssessment.problems` lists the failed ones, the first
being what the officer should fix first. :func:`photo_quality` gives the
:class:`~sensors.Quality` the kiosk shows. ``PHOTO_THRESHOLD`` is the one pass
mark: the kit records it with every photo.
"""

from __future__ import annotations

import functools
import math
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
_SHADOW_LEVEL = 10
# Where a face centre belongs in the frame (fractions of width, height): a
# KTP-el photo is head and shoulders, so the face sits a little above centre.
_TARGET_CENTRE = (0.50, 0.42)
# ISO/IEC 19794-5 (the geometry ICAO 9303 part 3 refers to): the eye line 50-70 %
# of the image height up from the bottom, i.e. 30-50 % down from the top.
_EYE_LINE_BAND = (0.30, 0.50)
# The eyes are looked for with the face scaled to this width: an eye is then
# about 24 px, above the eye cascade's 20 px window, whatever the face size
# (150 px finds the same eyes at nearly twice the cost).
_EYE_FACE_WIDTH = 120
# Where the eyes of a frontal face sit in the frontal cascade's box (fractions
# of its width and height), measured on the emulator's poses (0.46 apart,
# 0.36-0.39 down); used where the eyes are not found.
_EYE_SPACING = 0.46
_EYE_HEIGHT = 0.38
# ICAO 9303 / ISO/IEC 19794-5: roll within +-8 degrees, yaw and pitch within +-5.
# Roll is measured finely enough to hold the 8; yaw is not (frontal poses read
# up to 6 degrees off), so 12 is the limit (see the README).
_ROLL_LIMIT_DEG = 8.0
_YAW_LIMIT_DEG = 12.0
# Without the head outline (cluttered or unevenly lit backdrop) only the face box
# is left, which follows the features: side-lit frontal faces read up to 10
# degrees off by it, so it is held to 25 (a gross turn).
_YAW_BOX_LIMIT_DEG = 25.0
# Cylinder-head model for yaw: the eye midpoint moves by K * sin(yaw) of the
# head width (0.40 for eyes at +-36 degrees on a round head; 0.32 measured on
# the emulator's 30-degree turn; 0.35 taken).
_YAW_K = 0.35
# Eye height in the face box for a level head (0.36-0.39 measured) and the band
# allowed: only a gross nod or a head thrown back leaves it.
_PITCH_BAND = (0.28, 0.48)
# An open eye's patch is about a third iris, pupil and lashes darker than 0.6 x
# the skin just below it (0.26-0.49 measured open, 0.01-0.22 shut).
_OPEN_DARK = 0.6
_OPEN_MIN = 0.18
# A backdrop pixel is on an edge when its grey gradient is over this share of
# the local light (+20 levels, so sensor noise in the dark does not count).
_EDGE_STEP = 6.0 / 148.0


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
    """One thing wrong with a photo, and what the officer should do about it.

    ``code`` says what is wrong ("dark", "small", "background", ...);
    ``component`` is the component that found it ("light", "size", ...; the
    same as ``code`` for the components added after ICAO).
    """

    code: str
    id: str
    en: str
    component: str = ""

    def text(self, lang: str = "id") -> str:
        return self.en if lang == "en" else self.id


@dataclass(frozen=True)
class Component:
    """One component of the photo check, measured and judged on its own.

    ``value`` is the measured figure (None when it could not be measured,
    e.g. roll without two eyes: then it does not fail, the component that
    could not see does); ``limit`` says the pass band in words;
    ``detail`` holds the other figures behind the verdict; ``id`` / ``en`` the
    message, naming the component, and when it failed, the fix.
    """

    code: str
    value: float | None
    limit: str
    score: int
    id: str
    en: str
    detail: dict[str, float | int | str | None] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.score >= PHOTO_THRESHOLD

    def text(self, lang: str = "id") -> str:
        return self.en if lang == "en" else self.id


Box = tuple[int, int, int, int]


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
    * ``scores`` -- 0-100 per component, the pass mark being ``threshold``;
    * ``problems`` -- the failing components' problems, most important first;
    * ``eye_boxes`` -- (x, y, w, h) of the two eyes the eye cascade found
      (left of the picture first), or none;
    * ``eye_line`` -- height of the eye line as a fraction of the frame height
      from the top (estimated from the face box without eyes), or None;
    * ``components`` -- every component measured, in the order judged.

    ``score`` is the worst component's score: a photo is only as good as its
    worst defect.
    """

    faces: int
    face_box: Box | None
    face_height: float | None
    centre_offset: tuple[float, float] | None
    sharpness: float
    brightness: float
    clipped: float
    scores: dict[str, int] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    threshold: int = PHOTO_THRESHOLD
    eye_boxes: tuple[Box, ...] = ()
    eye_line: float | None = None
    components: tuple[Component, ...] = ()

    @property
    def score(self) -> int:
        return min(self.scores.values()) if self.scores else 0

    @property
    def ok(self) -> bool:
        return self.score >= self.threshold

    @property
    def failed(self) -> tuple[str, ...]:
        """The codes of the components that failed, in the order judged."""
        return tuple(c.code for c in self.components if not c.passed)

    def component(self, code: str) -> Component | None:
        return next((c for c in self.components if c.code == code), None)

    def reasons(self, lang: str = "id") -> list[str]:
        """Every failed component's message, most important first (for a list on screen)."""
        return [p.text(lang) for p in self.problems]

    @property
    def quality(self) -> Quality:
        if self.problems:
            first = self.problems[0]
            return Quality(self.score, self.threshold, first.id, first.en)
        return Quality(self.score, self.threshold, "Foto memenuhi syarat",
                       "The photo meets the requirements")


class _Cascade:
    """One Haar cascade, loaded once per process, safe to share between threads.

    OpenCV does not promise that ``detectMultiScale`` on one classifier is safe
    from two threads at once (preview and capture), so calls take turns on a
    lock; a capture waits at most one preview check (a few ms).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.classifier = cv2.CascadeClassifier(str(cv2.data.haarcascades) + name)
        if self.classifier.empty():
            raise DeviceError(
                "camera", "photo check", id=f"Model pendeteksi wajah tidak ditemukan ({name})",
                en=f"The face detector model is missing ({name})",
                hint_id="Pasang ulang opencv-python-headless (versi < 5)",
                hint_en="Reinstall opencv-python-headless (a version below 5)",
                code="photo_model_missing")
        self.lock = threading.Lock()

    def detect(self, grey: np.ndarray, **kwargs: object) -> list[Box]:
        with self.lock:
            found = self.classifier.detectMultiScale(grey, **kwargs)
        return [tuple(int(v) for v in box) for box in found]  # type: ignore[misc]


_load_lock = threading.Lock()


@functools.cache
def _cascade(name: str) -> _Cascade:
    return _Cascade(name)


def _get(name: str) -> _Cascade:
    # functools.cache alone could load a file twice when two threads miss at once.
    with _load_lock:
        return _cascade(name)


FACE_CASCADE = "haarcascade_frontalface_alt2.xml"
EYE_CASCADE = "haarcascade_eye.xml"
GLASSES_CASCADE = "haarcascade_eye_tree_eyeglasses.xml"
PROFILE_CASCADE = "haarcascade_profileface.xml"


def find_faces(grey: np.ndarray) -> list[Box]:
    """Frontal faces in a grey frame as (x, y, w, h) boxes in its pixels, largest first.

    Faces under 8 % of the frame height are not looked for: at that size
    the photo fails for being too small anyway.
    """
    height, width = grey.shape
    scale = min(1.0, _DETECT_WIDTH / width)
    small = grey if scale == 1.0 else cv2.resize(
        grey, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    min_side = max(20, round(_MIN_FACE * small.shape[0]))
    found = _get(FACE_CASCADE).detect(small, scaleFactor=1.1, minNeighbors=4,
                                      minSize=(min_side, min_side))
    boxes = [tuple(round(v / scale) for v in box) for box in found]
    boxes.sort(key=lambda b: b[2] * b[3], reverse=True)
    return boxes  # type: ignore[return-value]


def _sharpness(grey: np.ndarray) -> float:
    smooth = cv2.GaussianBlur(grey, (0, 0), _DENOISE_SIGMA)
    return float(cv2.Laplacian(smooth, cv2.CV_64F).var())


# -- eyes -------------------------------------------------------------------------------------
def find_eyes(grey: np.ndarray, face: Box) -> tuple[Box, Box] | None:
    """The two eyes of ``face`` as (x, y, w, h) boxes in frame pixels, left of the picture
    first, or None when the eye cascades do not find a plausible pair.

    Looked for in the upper part of the face box (12-62 % of its height), scaled
    so the face is 120 px wide; the plain eye cascade first, the one trained
    with spectacles second. Of the candidates the pair is taken that is most
    like two eyes: one in each half, alike in size, nearly level, about half a
    face width apart.
    """
    x, y, w, h = face
    top, bottom = max(0, y + round(0.12 * h)), min(grey.shape[0], y + round(0.62 * h))
    left, right = max(0, x), min(grey.shape[1], x + w)
    if bottom - top < 8 or right - left < 8:
        return None
    k = _EYE_FACE_WIDTH / w
    roi = cv2.resize(grey[top:bottom, left:right], None, fx=k, fy=k,
                     interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    for name in (EYE_CASCADE, GLASSES_CASCADE):
        found = _get(name).detect(roi, scaleFactor=1.15, minNeighbors=3, minSize=(20, 20),
                                  maxSize=(48, 48))
        boxes = [(left + ex / k, top + ey / k, ew / k, eh / k) for ex, ey, ew, eh in found]
        pair = _best_pair(boxes, x, w)
        if pair is not None:
            return tuple(tuple(round(v) for v in b) for b in pair)  # type: ignore[return-value]
    return None


def _best_pair(boxes: list[tuple[float, float, float, float]], x: int,
               w: int) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    mid = x + w / 2
    best, best_cost = None, math.inf
    for a in boxes:
        for b in boxes:
            ax, ay = a[0] + a[2] / 2, a[1] + a[3] / 2
            bx, by = b[0] + b[2] / 2, b[1] + b[3] / 2
            if not (ax < mid < bx):
                continue
            sep = (bx - ax) / w
            if not 0.28 <= sep <= 0.70 or abs(by - ay) > 0.35 * (bx - ax):
                continue
            cost = (abs(a[2] - b[2]) / max(a[2], b[2]) + abs(by - ay) / (bx - ax)
                    + abs(sep - _EYE_SPACING))
            if cost < best_cost:
                best, best_cost = (a, b), cost
    return best


def _eye_centre(grey: np.ndarray, box: Box) -> tuple[float, float]:
    """The iris centre in an eye box: the centroid of its darkest eighth (the box
    centre is only as fine as the cascade's scale steps, which roll needs finer)."""
    ex, ey, ew, eh = box
    x0, x1 = max(0, round(ex + 0.15 * ew)), min(grey.shape[1], round(ex + 0.85 * ew))
    y0, y1 = max(0, round(ey + 0.25 * eh)), min(grey.shape[0], round(ey + 0.80 * eh))
    if x1 - x0 < 3 or y1 - y0 < 3:
        return ex + ew / 2, ey + eh / 2
    patch = cv2.GaussianBlur(grey[y0:y1, x0:x1], (0, 0), max(1.0, ew / 20)).astype(np.float32)
    weights = np.clip(np.percentile(patch, 12) - patch + 1, 0, None)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    total = float(weights.sum())
    return float((xs * weights).sum()) / total, float((ys * weights).sum()) / total


def _openness(grey: np.ndarray, cx: float, cy: float, face_w: int) -> float:
    """Share of the eye patch (0.24 x 0.12 face widths round the eye centre) darker than
    0.6 x the skin just below the eye: iris, pupil and lashes when open; a shut eye
    is skin with a thin lash line. Judged against the skin under the same eye, so a
    face lit from one side reads alike on both eyes."""
    ew, eh = 0.24 * face_w, 0.12 * face_w
    x0, x1 = max(0, round(cx - ew / 2)), min(grey.shape[1], round(cx + ew / 2))
    y0, y1 = max(0, round(cy - eh / 2)), min(grey.shape[0], round(cy + eh / 2))
    s0, s1 = round(cy + 0.12 * face_w), min(grey.shape[0], round(cy + 0.22 * face_w))
    if x1 - x0 < 3 or y1 - y0 < 3 or s1 - s0 < 2:
        return 0.0
    sigma = max(0.8, face_w / 150)
    patch = cv2.GaussianBlur(grey[y0:y1, x0:x1], (0, 0), sigma).astype(np.float32)
    skin = float(np.median(grey[s0:s1, x0:x1]))
    return float(np.count_nonzero(patch < _OPEN_DARK * skin)) / patch.size


# -- background, head outline ----------------------------------------------------------------
def _background(rgb: np.ndarray, face: Box) -> tuple[float, float, float] | None:
    """Edge density and colour texture of the backdrop beside and above the head.

    The frame is shrunk 4 times (so cloth weave and sensor noise vanish); the
    region looked at spans 1.3 face widths either side of the face box, from
    0.9 face heights above it down to its bottom (the chin: below, shoulders
    and the suit or blanket come in), less the head: the face box grown by 0.7
    of a width either side (hair, and a head turned away from its face box)
    and 0.6 of a height up. Returns (edge density: share of those pixels whose
    grey gradient is over 4 % of the local light level per pixel (6 grey
    levels at mid-grey); colour texture: RMS over
    L*a*b* of the difference from an 8 px blur, i.e. pattern, not the smooth
    fall-off of a lamp; share of the region inside the frame)
    or None when too little background is in view.
    """
    x, y, w, h = face
    height, width = rgb.shape[:2]
    s = 4
    small = cv2.resize(rgb, (width // s, height // s), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]

    def cols(a: float, b: float) -> slice:
        return slice(min(sw, max(0, round(a / s))), min(sw, max(0, round(b / s))))

    def rows(a: float, b: float) -> slice:
        return slice(min(sh, max(0, round(a / s))), min(sh, max(0, round(b / s))))

    mask = np.zeros((sh, sw), bool)
    mask[rows(y - 0.9 * h, y + 1.0 * h), cols(x - 1.3 * w, x + 2.3 * w)] = True
    mask[rows(y - 0.6 * h, height), cols(x - 0.7 * w, x + 1.7 * w)] = False
    wanted = (min(height, y + 1.0 * h) - max(0, y - 0.9 * h)) * 3.6 * w / s / s
    count = int(np.count_nonzero(mask))
    if count < 60:
        return None
    grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32),
                            (0, 0), 1.0)
    # Contrast relative to the local light (a step of 6 grey levels at mid-grey),
    # so a cluttered wall in a lamp's shadow is still cluttered; the smooth part
    # (a 6 px blur) is taken off first, so a lamp's fall-off is not an edge.
    local = cv2.GaussianBlur(grey, (0, 0), 6.0)
    gx = cv2.Sobel(grey - local, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(grey - local, cv2.CV_32F, 0, 1, ksize=3) / 8
    local += 20.0
    edges = float(np.count_nonzero((np.hypot(gx, gy) / local)[mask] > _EDGE_STEP)) / count
    lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    # The smooth part is blurred from the backdrop alone (normalised convolution),
    # so hair next to the region does not bleed in and pass for pattern.
    weight = mask.astype(np.float32)
    smooth = cv2.GaussianBlur(lab * weight[..., None], (0, 0), 8.0) / np.maximum(
        cv2.GaussianBlur(weight, (0, 0), 8.0), 1e-3)[..., None]
    texture = lab - smooth
    colour = float(np.sqrt((texture[mask] ** 2).mean(axis=0).sum()))
    return edges, colour, count / max(1.0, wanted)


def _head_outline(rgb: np.ndarray, face: Box, centre_x: float) -> tuple[float, float] | None:
    """Left and right edge (frame x) of the head against a plain backdrop, or None.

    The backdrop's colour is taken on each side of the head (0.8-1.2 face
    widths out from the box, so a lamp's fall-off across the frame is allowed
    for); along each row from the forehead to the eyes (10-45 % down the face
    box) the head ends where the colour comes within 12 units (CIE L*a*b*) of
    that side's backdrop. The median over the rows is the edge. Only the
    columns out to the colour samples are converted (a third of the cost).
    """
    x, y, w, h = face
    height, width = rgb.shape[:2]
    r0, r1 = max(0, round(y + 0.10 * h)), min(height, round(y + 0.45 * h))
    c_lo, c_hi = max(0, round(x - 1.2 * w)), min(width, round(x + 2.2 * w))
    if r1 - r0 < 3 or c_hi - c_lo < 8:
        return None
    band = cv2.cvtColor(np.ascontiguousarray(rgb[r0:r1, c_lo:c_hi]).astype(np.float32) / 255.0,
                        cv2.COLOR_RGB2LAB)

    def reference(a: float, b: float) -> np.ndarray | None:
        c0, c1 = max(c_lo, round(a)) - c_lo, min(c_hi, round(b)) - c_lo
        if c1 - c0 < 4:
            return None
        return np.median(band[:, c0:c1].reshape(-1, 3), axis=0)

    left_ref = reference(x - 1.2 * w, x - 0.8 * w)
    right_ref = reference(x + 1.8 * w, x + 2.2 * w)
    left_ref = right_ref if left_ref is None else left_ref
    right_ref = left_ref if right_ref is None else right_ref
    if left_ref is None or right_ref is None:
        return None
    mid = min(band.shape[1] - 1, max(1, round(centre_x) - c_lo))
    is_left = np.linalg.norm(band[:, :mid] - left_ref, axis=2) < 12.0
    is_right = np.linalg.norm(band[:, mid:] - right_ref, axis=2) < 12.0
    lefts, rights = [], []
    for row in range(band.shape[0]):
        back_l = is_left[row, ::-1]
        back_r = is_right[row]
        if back_l.any() and back_r.any():
            lefts.append(c_lo + mid - int(np.argmax(back_l)))
            rights.append(c_lo + mid + int(np.argmax(back_r)))
    if len(lefts) < 3:
        return None
    return float(np.median(lefts)), float(np.median(rights))


# -- the check ---------------------------------------------------------------------------------
def _component(code: str, value: float | None, limit: str, score: int, ok: tuple[str, str],
               bad: tuple[str, str], **detail: float | int | str | None) -> Component:
    text = ok if score >= PHOTO_THRESHOLD else bad
    return Component(code, value, limit, score, text[0], text[1], dict(detail))


def _unmeasured(code: str, limit: str, why: tuple[str, str],
                **detail: float | int | str | None) -> Component:
    return Component(code, None, limit, 100, why[0], why[1], dict(detail))


def assess_photo(rgb: np.ndarray) -> PhotoAssessment:
    """Measure one RGB frame (height, width, 3) uint8 as a KTP-el face photo.

    Light and focus are judged first because without them the face cannot
    be found; then that there is exactly one face; then that it is big
    enough and centred; then the backdrop and the light across the face
    (what the officer sets up), then the head's pose and the eyes (what the
    resident is asked to do).
    """
    if not (isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3
            and rgb.dtype == np.uint8):
        raise ValueError("assess_photo wants an RGB uint8 array of shape (height, width, 3)")
    height, width = rgb.shape[:2]
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    boxes = find_faces(grey)
    components: list[Component] = []
    problems: list[Problem] = []

    def fail(component: str, code: str, id_text: str, en_text: str) -> None:
        problems.append(Problem(code, id_text, en_text, component))

    # -- exposure and focus ----------------------------------------------------------------
    if boxes:
        x, y, w, h = boxes[0]
        face = grey[max(0, y) : y + h, max(0, x) : x + w]
        sample = cv2.resize(face, (_FACE_SAMPLE, _FACE_SAMPLE), interpolation=cv2.INTER_AREA)
        sharpness = _sharpness(sample)
        brightness = float(face.mean())
        clipped = float(np.count_nonzero(face >= _CLIP_LEVEL)) / face.size
        light = min(_ramp(brightness, 10, 60, 90), _ramp(brightness, 250, 205, 180),
                    _ramp(clipped, 0.5, 0.15, 0.02))
        light_limit = "grey 60-205, <= 15 % at 250+"
        focus: int | None = _ramp(sharpness, 5, 40, 120)
        focus_limit = ">= 40"
    else:
        scale = min(1.0, _DETECT_WIDTH / width)
        small = grey if scale == 1.0 else cv2.resize(
            grey, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        sharpness = _sharpness(small)
        brightness = float(grey.mean())
        clipped = float(np.count_nonzero(grey >= _CLIP_LEVEL)) / grey.size
        light = min(_ramp(brightness, 10, 45, 80), _ramp(brightness, 250, 200, 170),
                    _ramp(clipped, 0.8, 0.4, 0.1))
        light_limit = "grey 45-200, <= 40 % at 250+"
        # A bare wall has no detail to be sharp: only call a picture blurred
        # when it has shapes (contrast) but no fine detail.
        focus = _ramp(sharpness, 3, 20, 60) if float(grey.std()) > 25 else None
        focus_limit = ">= 20"

    where_id, where_en = ("Wajah", "Face") if boxes else ("Gambar", "Picture")
    if brightness < 128:
        light_bad = (f"Pencahayaan: {where_id.lower()} terlalu gelap — tambah cahaya",
                     f"Exposure: {where_en.lower()} too dark — add light")
    else:
        light_bad = (f"Pencahayaan: {where_id.lower()} terlalu terang — hindari cahaya "
                     "langsung atau lampu kilat",
                     f"Exposure: {where_en.lower()} too bright — keep out of direct light "
                     "and flash glare")
    components.append(_component(
        "light", brightness, light_limit, light,
        ("Pencahayaan cukup", "Exposure good"), light_bad, clipped=round(clipped, 4)))
    if light < PHOTO_THRESHOLD:
        # The first reasons keep the wording the kiosk has always shown.
        if brightness < 128:
            fail("light", "dark", f"{where_id} terlalu gelap — tambah cahaya",
                 f"{where_en} too dark — add light")
        else:
            fail("light", "bright",
                 f"{where_id} terlalu terang — hindari cahaya langsung atau lampu kilat",
                 f"{where_en} too bright — keep out of direct light and flash glare")
    if focus is not None:
        components.append(_component(
            "focus", sharpness, focus_limit, focus, ("Fokus tajam", "Focus sharp"),
            ("Fokus: foto buram — pegang kamera diam dan tunggu fokus",
             "Focus: photo blurred — hold the camera still and wait for focus")))
        if focus < PHOTO_THRESHOLD:
            fail("focus", "blurred", "Foto buram — pegang kamera diam dan tunggu fokus",
                 "Photo blurred — hold the camera still and wait for focus")

    # -- one face ------------------------------------------------------------------------------
    faces_score = 100 if len(boxes) == 1 else (0 if not boxes else 10)
    if not boxes:
        faces_bad = ("Wajah tidak terlihat — arahkan kamera ke wajah",
                     "No face found — point the camera at the face")
    else:
        faces_bad = (f"Ada {len(boxes)} wajah — pastikan hanya satu orang di dalam bingkai",
                     f"{len(boxes)} faces found — make sure only one person is in the frame")
    components.append(_component("faces", float(len(boxes)), "exactly 1", faces_score,
                                 ("Satu wajah", "One face"), faces_bad))
    if faces_score < PHOTO_THRESHOLD:
        fail("faces", "no_face" if not boxes else "many_faces", *faces_bad)

    face_height: float | None = None
    centre_offset: tuple[float, float] | None = None
    eye_boxes: tuple[Box, ...] = ()
    eye_line: float | None = None
    if boxes:
        face_box = boxes[0]
        x, y, w, h = face_box
        pair = find_eyes(grey, face_box)
        if pair is not None:
            eye_boxes = pair
            centres = [_eye_centre(grey, b) for b in pair]
        else:
            centres = [(x + (0.5 - _EYE_SPACING / 2) * w, y + _EYE_HEIGHT * h),
                       (x + (0.5 + _EYE_SPACING / 2) * w, y + _EYE_HEIGHT * h)]
        eye_mid_x = (centres[0][0] + centres[1][0]) / 2
        eye_mid_y = (centres[0][1] + centres[1][1]) / 2
        eye_line = eye_mid_y / height

        # -- size and position (ICAO geometry) -------------------------------------------
        face_height = h / height
        dx = (x + w / 2) / width - _TARGET_CENTRE[0]
        dy = (y + h / 2) / height - _TARGET_CENTRE[1]
        centre_offset = (dx, dy)
        size = min(_ramp(face_height, 0.08, 0.20, 0.25), _ramp(face_height, 0.85, 0.65, 0.55))
        near = face_height >= 0.4
        size_bad = (("Ukuran wajah: terlalu dekat — jauhkan kamera",
                     "Face size: too close — move the camera back") if near else
                    ("Ukuran wajah: terlalu kecil — dekatkan kamera",
                     "Face size: too small — move the camera closer"))
        components.append(_component(
            "size", face_height, "face height 20-65 % of the frame", size,
            ("Ukuran wajah pas", "Face size right"), size_bad,
            head_width=round(w / width, 3)))
        if size < PHOTO_THRESHOLD:
            if near:
                fail("size", "close", "Wajah terlalu dekat — jauhkan kamera",
                     "Face too close — move the camera back")
            else:
                fail("size", "small", "Wajah terlalu kecil — dekatkan kamera",
                     "Face too small — move the camera closer")

        across = _ramp(abs(dx), 0.35, 0.15, 0.05)
        low, high = _EYE_LINE_BAND
        down = min(_ramp(eye_line, low - 0.15, low, low + 0.05),
                   _ramp(eye_line, high + 0.15, high, high - 0.05))
        centre = min(across, down)
        # The screen shows the camera's view unmirrored: a face on the left
        # of the picture comes to the middle when the camera turns left.
        if across <= down:
            side_id, side_en = ("kiri", "left") if dx < 0 else ("kanan", "right")
            centre_bad = (f"Wajah tidak di tengah — geser kamera ke {side_id}",
                          f"Face not centred — turn the camera to the {side_en}")
        else:
            side_id, side_en = ("atas", "up") if eye_line < low else ("bawah", "down")
            centre_bad = (f"Wajah tidak di tengah — arahkan kamera ke {side_id}",
                          f"Face not centred — tilt the camera {side_en}")
        components.append(_component(
            "centre", dx, "centre within 15 % of the middle; eye line 30-50 % down", centre,
            ("Posisi wajah di tengah", "Face centred"),
            ("Posisi: " + centre_bad[0][0].lower() + centre_bad[0][1:],
             "Position: " + centre_bad[1][0].lower() + centre_bad[1][1:]),
            dy=round(dy, 3), eye_line=round(eye_line, 3)))
        if centre < PHOTO_THRESHOLD:
            fail("centre", "off_centre", *centre_bad)

        # -- background -------------------------------------------------------------------
        backdrop = _background(rgb, face_box)
        plain = False
        if backdrop is None:
            components.append(_unmeasured(
                "background", "edges <= 4 %, texture <= 6",
                ("Latar belakang tidak terukur (wajah memenuhi bingkai)",
                 "Background not measured (the face fills the frame)")))
        else:
            edges, colour, seen = backdrop
            bg_score = min(_ramp(edges, 0.12, 0.04, 0.015), _ramp(colour, 14.0, 6.0, 3.0))
            plain = bg_score >= PHOTO_THRESHOLD
            bg_bad = ("Latar belakang tidak polos: pasang kain latar polos di belakang kepala",
                      "Background not plain: hang a plain backdrop behind the head")
            components.append(_component(
                "background", edges, "edges <= 4 %, texture <= 6", bg_score,
                ("Latar belakang polos", "Background plain"), bg_bad,
                colour_texture=round(colour, 2), region_seen=round(seen, 2)))
            if not plain:
                fail("background", "background", *bg_bad)

        # -- light across the face --------------------------------------------------------
        r0, r1 = y + round(0.25 * h), y + round(0.85 * h)
        inner = grey[max(0, r0):r1, max(0, x + round(0.15 * w)):x + round(0.85 * w)]
        half = inner.shape[1] // 2 if inner.shape[0] else 0
        left_mean = float(inner[:, :half].mean()) if half else 0.0
        right_mean = float(inner[:, half:].mean()) if half else 0.0
        ratio = min(left_mean, right_mean) / max(1.0, left_mean, right_mean)
        extreme = float(np.count_nonzero((inner >= _CLIP_LEVEL) | (inner <= _SHADOW_LEVEL))
                        ) / max(1, inner.size)
        even = min(_ramp(ratio, 0.45, 0.70, 0.85), _ramp(extreme, 0.20, 0.05, 0.01))
        darker_id, darker_en = ("kiri", "left") if left_mean < right_mean else ("kanan", "right")
        even_bad = (f"Cahaya tidak rata di wajah: sisi {darker_id} gelap — pakai cahaya "
                    "dari depan atau pindahkan lampu",
                    f"Lighting uneven across the face: the {darker_en} side is dark — light "
                    "the face from the front or move the lamp")
        components.append(_component(
            "lighting", ratio, "left/right >= 0.70, <= 5 % clipped", even,
            ("Cahaya rata di wajah", "Lighting even across the face"), even_bad,
            left=round(left_mean, 1), right=round(right_mean, 1), clipped=round(extreme, 4)))
        even_ok = even >= PHOTO_THRESHOLD
        if not even_ok:
            fail("lighting", "lighting", *even_bad)

        # -- pose ---------------------------------------------------------------------------
        roll_limit = f"|roll| <= {_ROLL_LIMIT_DEG:g} deg"
        if pair is not None:
            (lx, ly), (rx, ry) = centres
            roll = math.degrees(math.atan2(ry - ly, rx - lx))
            roll_score = _ramp(abs(roll), 2 * _ROLL_LIMIT_DEG, _ROLL_LIMIT_DEG, 3.0)
            roll_bad = ("Kepala miring: minta kepala ditegakkan, kedua mata sejajar",
                        "Head tilted (roll): ask for the head to be held upright, eyes level")
            components.append(_component("roll", roll, roll_limit, roll_score,
                                         ("Kepala tegak", "Head upright"), roll_bad))
            if roll_score < PHOTO_THRESHOLD:
                fail("roll", "roll", *roll_bad)
        else:
            components.append(_unmeasured(
                "roll", roll_limit, ("Kemiringan kepala tidak terukur (mata tidak ditemukan)",
                                     "Head roll not measured (eyes not found)")))

        # The outline is only trusted on a plain backdrop evenly lit: in a lamp's
        # shadow dark hair and dark cloth look alike, and the edge wanders.
        outline = _head_outline(rgb, face_box, eye_mid_x) if plain and even_ok else None
        head_w = outline[1] - outline[0] if outline else 0.0
        profile: int | None = None
        yaw_limit_deg = _YAW_LIMIT_DEG
        if outline is not None and 1.1 * w <= head_w <= 2.3 * w:
            offset = (eye_mid_x - (outline[0] + outline[1]) / 2) / head_w
            source = "head outline"
        else:
            # Without a plain, evenly lit backdrop the head's outline cannot be told
            # from what is behind it: the eye midpoint against the face box is all
            # there is, and the box follows the features, so this only catches a
            # gross turn (and those two faults are reported already).
            offset = (eye_mid_x - (x + w / 2)) / w
            source = "face box"
            # The profile cascade is reported as supporting evidence only: on the
            # emulator it fires on 2 of the 6 frontal poses and not on the 30-degree
            # turn, so it cannot decide (7 ms a frame, so only looked at here).
            yaw_limit_deg = _YAW_BOX_LIMIT_DEG
            around = grey[max(0, y - h // 4):y + h + h // 4, max(0, x - w // 4):x + w + w // 4]
            profile = len(_get(PROFILE_CASCADE).detect(
                cv2.resize(around, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
                scaleFactor=1.15, minNeighbors=3, minSize=(24, 24)))
        yaw = math.degrees(math.asin(max(-1.0, min(1.0, offset / _YAW_K))))
        yaw_limit = f"|yaw| <= {yaw_limit_deg:g} deg ({source})"
        yaw_score = _ramp(abs(yaw), yaw_limit_deg + 18.0, yaw_limit_deg, 5.0)
        turned_id, turned_en = ("kanan", "right") if yaw > 0 else ("kiri", "left")
        yaw_bad = (f"Kepala menoleh ke {turned_id}: minta menghadap lurus ke kamera",
                   f"Head turned to the {turned_en} (yaw): ask to face the camera straight on")
        components.append(_component(
            "yaw", yaw, yaw_limit, yaw_score, ("Wajah menghadap kamera", "Face towards the camera"),
            yaw_bad, offset=round(offset, 3), source=source, profile_hits=profile))
        if yaw_score < PHOTO_THRESHOLD:
            fail("yaw", "yaw", *yaw_bad)

        pitch_limit = f"eye height {_PITCH_BAND[0]:g}-{_PITCH_BAND[1]:g} of the face box"
        if pair is not None:
            position = (eye_mid_y - y) / h
            p_low, p_high = _PITCH_BAND
            pitch_score = min(_ramp(position, p_low - 0.10, p_low, p_low + 0.05),
                              _ramp(position, p_high + 0.10, p_high, p_high - 0.05))
            up = position < (p_low + p_high) / 2
            pitch_bad = (("Kepala mendongak: minta dagu sedikit diturunkan",
                          "Head tilted back (pitch): ask to lower the chin a little") if up else
                         ("Kepala menunduk: minta dagu sedikit diangkat",
                          "Head bowed (pitch): ask to raise the chin a little"))
            components.append(_component("pitch", position, pitch_limit, pitch_score,
                                         ("Kepala tidak menunduk/mendongak", "Head level"),
                                         pitch_bad))
            if pitch_score < PHOTO_THRESHOLD:
                fail("pitch", "pitch", *pitch_bad)
        else:
            components.append(_unmeasured(
                "pitch", pitch_limit, ("Anggukan kepala tidak terukur (mata tidak ditemukan)",
                                       "Head pitch not measured (eyes not found)")))

        # -- eyes open ------------------------------------------------------------------------
        openness = [_openness(grey, cx, cy, w) for cx, cy in centres]
        least = min(openness)
        eyes_score = _ramp(least, 0.05, _OPEN_MIN, 0.28) if pair is not None else min(
            _ramp(least, 0.05, _OPEN_MIN, 0.28), 30)
        eyes_bad = ("Mata tertutup atau tidak terlihat: minta membuka kedua mata dan "
                    "melihat ke kamera",
                    "Eyes closed or not seen: ask to open both eyes and look at the camera")
        components.append(_component(
            "eyes", least, f"2 eyes found, each >= {_OPEN_MIN:g} dark", eyes_score,
            ("Kedua mata terbuka", "Both eyes open"), eyes_bad,
            found=2 if pair is not None else 0, left=round(openness[0], 3),
            right=round(openness[1], 3)))
        if eyes_score < PHOTO_THRESHOLD:
            fail("eyes", "eyes", *eyes_bad)

    scores = {c.code: c.score for c in components}
    return PhotoAssessment(
        faces=len(boxes), face_box=boxes[0] if boxes else None, face_height=face_height,
        centre_offset=centre_offset, sharpness=sharpness, brightness=brightness,
        clipped=clipped, scores=scores, problems=tuple(problems), eye_boxes=eye_boxes,
        eye_line=eye_line, components=tuple(components))


def photo_quality(rgb: np.ndarray) -> Quality:
    """Score an RGB frame as a KTP-el face photo (0-100, pass mark 60) with the reason to show.

    >>> from sensors.emulated.camera import render_scene
    >>> photo_quality(render_scene("dark")).reason_en
    'Picture too dark — add light'
    """
    return assess_photo(rgb).quality
