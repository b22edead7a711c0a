"""An emulated camera: a sensor that streams RGB frames of a scene at a steady rate.

The scenes are built from the one face photograph that ships offline in a
Python package, ``skimage.data.astronaut()`` (a public-domain NASA portrait),
so nothing is downloaded at run time. Her head and shoulders are cut out
of the studio picture (flag and rocket) once per process with OpenCV's
GrabCut and laid on a plain blue cloth, the backdrop a KTP-el photo needs.
Cropping, scaling, shifting, flipping, tilting and relighting that gives
several good "poses"; the bad scenes are the faults an officer meets at a
bedside:

===============  ============================================================
scene            what the camera sees
===============  ============================================================
``good``         one face on a plain backdrop, well lit, sharp, centred,
                 looking at the camera with open eyes (poses 0-5)
``dark``         the good scene in a dim room (lamp off, curtains closed)
``bright``       the good scene washed out (flash, bright window behind)
``blurred``      the good scene out of focus or shaken
``no-face``      a cup of coffee on a table (``skimage.data.coffee()``)
``two-faces``    two people side by side (a relative leaning into the frame)
``off-centre``   one face at the left edge of the frame
``small``        one face far away against the backdrop
``cluttered``    the original studio picture: flag and rocket behind the head
``turned``       the head turned about 30 degrees to the side (yaw)
``tilted``       the head tilted 15 degrees towards a shoulder (roll)
``eyes-closed``  the eyes shut (lids drawn over skin)
``side-lit``     a lamp or window on one side: half the face in shadow
===============  ============================================================

The backdrop is blue, one of the two KTP-el colours (Dukcapil: blue for
an even year of birth, red for an odd one; this portrait's subject was born
in 1956). Blue is also the colour farthest from skin and from her orange
suit, so the cut-out's edge stays clean. The photo check tests that the
backdrop is plain, not its colour.

Like a real sensor it adds a little noise to every frame, keeps its own
clock, and when its cable is pulled (``unplug``) the open stream dies: the
driver must open a new one after ``replug``, as with a USB camera that
re-enumerates.

>>> cam = CameraEmulator(width=640, height=480, fps=15)
>>> cam.start()
>>> stream = cam.open_stream()
>>> frame = cam.read_frame(stream, after=0, timeout=1.0)
>>> frame.rgb.shape
(480, 640, 3)
>>> cam.stop()
"""

from __future__ import annotations

import errno
import functools
import importlib.util
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from sensors.camera import CameraBase, camera_not_found

log = logging.getLogger(__name__)

SCENES = ("good", "dark", "bright", "blurred", "no-face", "two-faces", "off-centre", "small",
          "cluttered", "turned", "tilted", "eyes-closed", "side-lit")

# Where the face is in skimage.data.astronaut() (512 x 512): found once with
# OpenCV's frontal-face Haar cascade, box (177, 66, 95, 95).
_FACE_CENTRE = (224.5, 113.5)
_FACE_SIZE = 95.0
# Her eye centres in that picture, found once with haarcascade_eye.xml and
# checked by eye (each eye about 23 x 8 px).
_EYE_CENTRES = ((203.0, 101.0), (247.0, 102.5))

# A plain, slightly warm wall (where the warp runs off the studio picture).
_WALL_RGB = (196, 188, 170)
# The backdrop cloth: a mid blue (KTP-el blue, softened to what a cotton
# cloth in room light gives a camera).
_BACKDROP_RGB = (52, 118, 196)
# How far the "turned" and "tilted" heads are from frontal (degrees). ICAO
# allows about 5 of yaw and 8 of roll; these are clearly beyond.
_TURN_DEG = 30.0
_TILT_DEG = 15.0


@dataclass(frozen=True)
class Pose:
    """How the one face photograph is laid out in a frame of any size.

    ``face_height`` is the face's height as a fraction of the frame height;
    ``centre`` is where the face centre lands, as fractions of width and height.
    """

    face_height: float
    centre: tuple[float, float]
    flip: bool = False
    tilt_deg: float = 0.0
    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    gamma: float = 1.0


# Six "people": the same portrait framed, turned and lit differently, the way
# one patient looks on six different visits.
POSES: tuple[Pose, ...] = (
    Pose(0.32, (0.50, 0.42)),
    Pose(0.32, (0.52, 0.40), flip=True),
    Pose(0.40, (0.47, 0.45), tilt_deg=4.0),
    Pose(0.26, (0.54, 0.39), tilt_deg=-4.0, gain=(1.10, 1.0, 0.88)),
    Pose(0.35, (0.49, 0.43), gamma=1.35),
    Pose(0.30, (0.50, 0.41), flip=True, gain=(1.12, 1.12, 1.12)),
)


class CameraUnplugged(OSError):
    """The camera is gone (cable pulled) or the stream opened before a replug is stale."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENODEV, message)


@dataclass(frozen=True)
class EmulatedFrame:
    """One frame off the sensor: its sequence number, capture time (monotonic s) and pixels."""

    seq: int
    timestamp: float
    rgb: np.ndarray


def _skimage_picture(name: str) -> np.ndarray:
    """One of the public test pictures scikit-image ships, read from its package folder.

    Not through ``skimage.data``: importing it brings SciPy, imageio and about 180 modules
    (~26 MiB resident), which a kit's kiosk, whose camera is real, never carries; the bench
    of the kiosk's memory would count them. The pixels are the same (RGB, 8 bit)."""
    spec = importlib.util.find_spec("skimage")  # finds the package without running it
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        bgr = cv2.imread(os.path.join(folder, "data", f"{name}.png"), cv2.IMREAD_COLOR)
        if bgr is not None:
            return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    raise FileNotFoundError(f"scikit-image's test picture {name}.png is not installed (the "
                            f"emulated rig's extra: pip install 'jaranijo[rig]')")


@functools.cache
def _astronaut() -> np.ndarray:
    return _skimage_picture("astronaut")


@functools.cache
def _coffee() -> np.ndarray:
    return _skimage_picture("coffee")


@functools.cache
def _person_alpha() -> np.ndarray:
    """How much of each pixel of the astronaut picture is her (0-1 float32, 512 x 512).

    GrabCut at half size (about 0.3 s, once per process) from a hand-drawn
    start: head and suit certainly her, flag, rocket and wall certainly not,
    the rest left to the colour models. The edge is softened by a 1.5 px
    blur, as a real edge (hair against cloth) is never a hard line. The
    random seed is fixed so every run cuts the same outline.
    """
    src = _astronaut()
    scale = 0.5
    small = cv2.resize(src, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]

    def pts(*xy: tuple[int, int]) -> np.ndarray:
        return (np.array(xy, dtype=np.float64) * scale).round().astype(np.int32)

    def box(x0: int, y0: int, x1: int, y1: int, label: int) -> None:
        cv2.rectangle(mask, tuple(pts((x0, y0))[0]), tuple(pts((x1, y1))[0]), label, -1)

    mask = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    # Probably her: head with hair, and the body below the shoulders.
    cv2.ellipse(mask, tuple(pts((226, 100))[0]), tuple(pts((80, 95))[0]), 0, 0, 360,
                cv2.GC_PR_FGD, -1)
    box(40, 180, 360, 511, cv2.GC_PR_FGD)
    # Certainly her: face, crown of the hair, the middle of the suit.
    cv2.ellipse(mask, tuple(pts((224, 115))[0]), tuple(pts((40, 55))[0]), 0, 0, 360,
                cv2.GC_FGD, -1)
    cv2.ellipse(mask, tuple(pts((226, 60))[0]), tuple(pts((55, 30))[0]), 0, 0, 360,
                cv2.GC_FGD, -1)
    box(130, 200, 330, 511, cv2.GC_FGD)
    # Certainly not: the top, the flag, the rocket and the wall beside her shoulder.
    mask[: round(15 * scale), :] = cv2.GC_BGD
    cv2.fillPoly(mask, [pts((0, 0), (105, 0), (105, 150), (60, 230), (28, 330), (0, 420))],
                 cv2.GC_BGD)
    cv2.fillPoly(mask, [pts((0, 420), (28, 330), (20, 511), (0, 511))], cv2.GC_BGD)
    box(0, 0, 150, 150, cv2.GC_BGD)
    box(300, 0, 511, 150, cv2.GC_BGD)
    box(312, 150, 511, 235, cv2.GC_BGD)
    box(303, 192, 511, 250, cv2.GC_BGD)
    box(358, 150, 511, 330, cv2.GC_BGD)
    cv2.fillPoly(mask, [pts((286, 165), (296, 198), (308, 228), (313, 150))], cv2.GC_BGD)
    cv2.setRNGSeed(20250101)
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), mask, None, bgd, fgd, 5,
                cv2.GC_INIT_WITH_MASK)
    person = np.where((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    full = cv2.resize(person, (src.shape[1], src.shape[0]), interpolation=cv2.INTER_LINEAR)
    # Pull the edge 2 px inside her outline first: the outermost pixels are half
    # wall, and blended onto the cloth they would draw a pale halo round the hair.
    full = cv2.erode(full, np.ones((5, 5), np.uint8))
    alpha = cv2.GaussianBlur(full, (0, 0), 1.5).astype(np.float32) / 255.0
    alpha.flags.writeable = False
    return alpha


@functools.cache
def _eyes_closed() -> np.ndarray:
    """The astronaut with her eyes shut: each eye painted over with the skin around it
    (OpenCV inpainting), then the closed lid drawn: a lash line curving down and a
    faint crease above it."""
    src = _astronaut()
    holes = np.zeros(src.shape[:2], np.uint8)
    for cx, cy in _EYE_CENTRES:
        cv2.ellipse(holes, (round(cx), round(cy)), (15, 7), 0, 0, 360, 255, -1)
    painted = cv2.inpaint(np.ascontiguousarray(src), holes, 6, cv2.INPAINT_TELEA)
    painted = cv2.GaussianBlur(painted, (0, 0), 1.0)
    # Feather the patch into the face so no oval outline shows.
    feather = cv2.GaussianBlur(cv2.dilate(holes, np.ones((3, 3), np.uint8)), (0, 0), 1.5)
    feather = feather.astype(np.float32)[..., None] / 255.0
    out = (painted * feather + src * (1.0 - feather)).astype(np.uint8)
    lid = np.zeros_like(out)
    lid_mask = np.zeros(src.shape[:2], np.uint8)
    for cx, cy in _EYE_CENTRES:
        centre = (round(cx * 4), round((cy - 1) * 4))
        # The lash line: the lower half of an ellipse (a closed lid bulges down).
        cv2.ellipse(lid_mask, centre, (10 * 4, 3 * 4), 0, 10, 170, 255, 1, cv2.LINE_AA, 2)
        # The crease, fainter, above it.
        cv2.ellipse(lid_mask, (centre[0], centre[1] - 12), (9 * 4, 3 * 4), 0, 200, 340,
                    90, 1, cv2.LINE_AA, 2)
    lid[:] = (62, 40, 32)
    weight = lid_mask.astype(np.float32)[..., None] / 255.0 * 0.9
    out = (out * (1 - weight) + lid * weight).astype(np.uint8)
    out.flags.writeable = False
    return out


def _cylinder_turn(image: np.ndarray, degrees: float) -> np.ndarray:
    """The head in ``image`` (the astronaut picture's geometry) turned ``degrees`` about
    a vertical axis: the face is a cylinder through the nose line, so the features
    slide towards one cheek and the far cheek narrows, while the outline of the hair
    and the shoulders stays put (the displacement fades out at the head's edge)."""
    height, width = image.shape[:2]
    cx, cy = _FACE_CENTRE[0], 100.0
    radius, radius_y = 78.0, 90.0
    theta = np.radians(degrees)
    xs = np.arange(width, dtype=np.float32)
    ys = np.arange(height, dtype=np.float32)
    u = np.clip((xs - cx) / radius, -1.0, 1.0)
    # A point at angle phi on the head shows at phi + theta: the pixel shown at
    # u came from angle asin(u) - theta (the back of the head past -90 degrees).
    phi = np.maximum(np.arcsin(u) - theta, -np.pi / 2)
    shift = (cx + radius * np.sin(phi)) - xs
    r = np.sqrt(((xs[None, :] - cx) / radius) ** 2 + ((ys[:, None] - cy) / radius_y) ** 2)
    fade = np.clip((1.12 - r) / 0.30, 0.0, 1.0)
    fade = fade * fade * (3 - 2 * fade)  # smoothstep: no visible seam
    map_x = (xs[None, :] + shift[None, :] * fade).astype(np.float32)
    map_y = np.broadcast_to(ys[:, None], (height, width)).astype(np.float32)
    return cv2.remap(np.ascontiguousarray(image), map_x, map_y, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


@functools.cache
def _turned() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut and her cut-out mask with the head turned :data:`_TURN_DEG`."""
    rgb = _cylinder_turn(_astronaut(), _TURN_DEG)
    alpha = _cylinder_turn(_person_alpha(), _TURN_DEG)
    rgb.flags.writeable = False
    alpha.flags.writeable = False
    return rgb, alpha


def _place_face(pose: Pose, width: int, height: int, *, backdrop: bool = True,
                variant: str = "frontal", border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Warp the portrait so its face lands where ``pose`` says in a ``width`` x ``height`` frame.

    With ``backdrop`` she is cut out and laid on the plain cloth; without it
    the studio picture (flag, rocket) is what is behind her. ``variant`` is
    "frontal", "closed" (eyes shut) or "turned" (head turned).
    """
    if variant == "turned":
        src, alpha = _turned()
    else:
        src = _eyes_closed() if variant == "closed" else _astronaut()
        alpha = _person_alpha()
    scale = pose.face_height * height / _FACE_SIZE
    cx, cy = _FACE_CENTRE
    if pose.flip:
        src, alpha = src[:, ::-1], alpha[:, ::-1]
        cx = src.shape[1] - 1 - cx
    matrix = cv2.getRotationMatrix2D((cx, cy), pose.tilt_deg, scale)
    matrix[0, 2] += pose.centre[0] * width - cx
    matrix[1, 2] += pose.centre[1] * height - cy
    frame = cv2.warpAffine(np.ascontiguousarray(src), matrix, (width, height),
                           flags=cv2.INTER_LINEAR, borderMode=border, borderValue=_WALL_RGB)
    if backdrop:
        cover = cv2.warpAffine(np.ascontiguousarray(alpha), matrix, (width, height),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=0)[..., None]
        frame = (frame * cover + _backdrop(width, height) * (1.0 - cover)).astype(np.uint8)
    return _relight(frame, pose.gain, pose.gamma)


@functools.cache
def _backdrop(width: int, height: int) -> np.ndarray:
    """The plain cloth: one colour, a little lighter towards the top (the room light
    falls from above), as a hung cloth looks; no folds, no pattern."""
    shade = np.linspace(1.04, 0.96, height, dtype=np.float32)[:, None, None]
    cloth = np.clip(np.array(_BACKDROP_RGB, np.float32) * shade, 0, 255)
    out = np.ascontiguousarray(np.broadcast_to(cloth, (height, width, 3)), dtype=np.float32)
    out.flags.writeable = False
    return out


def _side_light(rgb: np.ndarray, face_x: float, face_w: float) -> np.ndarray:
    """A lamp on the left: the light falls off across the face from about 1.1 x on the
    lit cheek to 0.3 x on the far one (a smooth S-curve centred on the nose)."""
    xs = (np.arange(rgb.shape[1], dtype=np.float32) - face_x) / face_w
    gain = 0.22 + 0.95 / (1.0 + np.exp(xs / 0.12))
    return np.clip(rgb * gain[None, :, None], 0, 255).astype(np.uint8)


def _relight(rgb: np.ndarray, gain: tuple[float, float, float], gamma: float) -> np.ndarray:
    if gain == (1.0, 1.0, 1.0) and gamma == 1.0:
        return rgb
    values = np.arange(256, dtype=np.float32) / 255.0
    out = np.empty_like(rgb)
    for channel in range(3):
        table = np.clip(255.0 * gain[channel] * values**gamma, 0, 255).astype(np.uint8)
        out[..., channel] = cv2.LUT(rgb[..., channel], table)
    return out


def _cover(src: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``src`` to fill the frame, cropping the overflow (what a lens pointed at it sees)."""
    scale = max(width / src.shape[1], height / src.shape[0])
    resized = cv2.resize(src, (round(src.shape[1] * scale), round(src.shape[0] * scale)),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top = (resized.shape[0] - height) // 2
    left = (resized.shape[1] - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


def render_scene(scene: str, width: int = 640, height: int = 480, pose: int = 0) -> np.ndarray:
    """The noiseless picture of ``scene`` (see the module table) as RGB uint8 (height, width, 3).

    ``pose`` picks one of :data:`POSES` for the scenes built from the good
    picture (good, dark, bright, blurred, cluttered, eyes-closed, side-lit).
    """
    if scene not in SCENES:
        raise ValueError(f"unknown scene '{scene}' (known: {', '.join(SCENES)})")
    if not 0 <= pose < len(POSES):
        raise ValueError(f"pose must be 0..{len(POSES) - 1}, not {pose}")
    if scene == "good":
        return _place_face(POSES[pose], width, height)
    if scene == "dark":
        # A dim room: about an eighth of the light, and the camera's gamma
        # crushes the shadows further.
        return _relight(_place_face(POSES[pose], width, height), (0.16, 0.16, 0.16), 1.4)
    if scene == "bright":
        # Overexposed: most of the face clips to white.
        return _relight(_place_face(POSES[pose], width, height), (2.6, 2.6, 2.6), 0.7)
    if scene == "blurred":
        sigma = 0.012 * width  # about 8 px at 640 wide: a lens well out of focus
        return cv2.GaussianBlur(_place_face(POSES[pose], width, height), (0, 0), sigma)
    if scene == "no-face":
        return _cover(_coffee(), width, height)
    if scene == "two-faces":
        half = width // 2
        left = _place_face(Pose(0.30, (0.52, 0.42)), half, height)
        right = _place_face(Pose(0.30, (0.48, 0.44), flip=True, gain=(1.05, 1.0, 0.95)),
                            width - half, height)
        return np.ascontiguousarray(np.hstack([left, right]))
    if scene == "off-centre":
        return _place_face(Pose(0.32, (0.16, 0.42)), width, height)
    if scene == "small":
        # Far away, so much of the backdrop shows.
        return _place_face(Pose(0.12, (0.50, 0.50)), width, height)
    if scene == "cluttered":
        return _place_face(POSES[pose], width, height, backdrop=False)
    if scene == "turned":
        return _place_face(POSES[0], width, height, variant="turned")
    if scene == "tilted":
        return _place_face(Pose(0.32, (0.50, 0.42), tilt_deg=_TILT_DEG), width, height)
    if scene == "eyes-closed":
        return _place_face(POSES[pose], width, height, variant="closed")
    # "side-lit": the light falls off across the face, the nose line in the middle.
    chosen = POSES[pose]
    face_w = chosen.face_height * height
    return _side_light(_place_face(chosen, width, height), chosen.centre[0] * width, face_w)


class CameraEmulator:
    """A camera sensor streaming ``width`` x ``height`` RGB frames at ``fps``.

    ``start()`` powers it on (a daemon thread keeps the frame clock);
    a driver opens a stream with :meth:`open_stream` and takes frames with
    :meth:`read_frame`. ``noise`` is the standard deviation of sensor noise
    in grey levels (a phone-class sensor in room light shows about 2).

    >>> cam = CameraEmulator(fps=10)
    >>> cam.control("scene", "dark")
    'scene dark'
    """

    CONTROLS: ClassVar[dict[str, str]] = {
        "scene": "scene NAME [POSE]: what the camera sees; NAME is one of "
                 + ", ".join(SCENES) + f"; POSE 0-{len(POSES) - 1} for the scenes built from "
                 "the good picture",
        "unplug": "pull the camera cable: frames stop and the open stream fails",
        "replug": "plug the camera back in; the driver must open a new stream",
        "fps": "fps N: frame rate of the sensor (frames per second, 0.5-60)",
    }

    def __init__(self, width: int = 640, height: int = 480, fps: float = 15.0, *,
                 scene: str = "good", pose: int = 0, noise: float = 2.0, seed: int = 0) -> None:
        if width < 64 or height < 48:
            raise ValueError("the emulated sensor is at least 64 x 48 pixels")
        self.width = width
        self.height = height
        self.fps = float(fps)
        self.noise = noise
        self._rng = np.random.default_rng(seed)
        self._scene = scene
        self._pose = pose
        render_scene(scene, 64, 48, pose)  # reject a bad scene name now, not in the thread
        self._cache: dict[tuple[str, int], list[np.ndarray]] = {}
        self._cond = threading.Condition()
        self._latest: EmulatedFrame | None = None
        self._seq = 0
        self._plugged = True
        self._generation = 0  # bumped on every unplug: streams from before are dead
        self._running = False
        self._wake = threading.Event()  # cuts the frame-interval sleep short on stop()
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Power the sensor on: frames start arriving at ``fps``."""
        with self._cond:
            if self._running:
                return
            self._running = True
        self._wake.clear()
        self._frames(self._scene, self._pose)  # first frame is not late by the render time
        self._thread = threading.Thread(target=self._run, name="camera-emulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Power the sensor off; readers waiting for a frame are woken and fail."""
        with self._cond:
            self._running = False
            self._generation += 1
            self._cond.notify_all()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    @property
    def plugged(self) -> bool:
        return self._plugged

    @property
    def scene(self) -> str:
        return self._scene

    @property
    def pose(self) -> int:
        return self._pose

    # -- controls ---------------------------------------------------------------------------
    def control(self, name: str, *args: str) -> str:
        """Apply a control from :attr:`CONTROLS`; ValueError for an unknown one or bad args."""
        if name == "scene":
            if not 1 <= len(args) <= 2:
                raise ValueError("usage: scene NAME [POSE]")
            scene = args[0]
            try:
                pose = int(args[1]) if len(args) == 2 else 0
            except ValueError:
                raise ValueError(f"POSE must be a whole number, not {args[1]!r}") from None
            render_scene(scene, 64, 48, pose)  # raises ValueError with the known names
            self._frames(scene, pose)
            with self._cond:
                self._scene, self._pose = scene, pose
            return f"scene {scene}" + (f" pose {pose}" if len(args) == 2 else "")
        if name == "unplug":
            self._expect_no_args(name, args)
            with self._cond:
                self._plugged = False
                self._generation += 1
                self._cond.notify_all()
            return "camera unplugged"
        if name == "replug":
            self._expect_no_args(name, args)
            with self._cond:
                self._plugged = True
            return "camera plugged in"
        if name == "fps":
            if len(args) != 1:
                raise ValueError("usage: fps N")
            try:
                fps = float(args[0])
            except ValueError:
                raise ValueError(f"N must be a number, not {args[0]!r}") from None
            if not 0.5 <= fps <= 60:
                raise ValueError("N must be between 0.5 and 60")
            self.fps = fps
            return f"fps {fps:g}"
        raise ValueError(f"unknown control '{name}' (known: {', '.join(self.CONTROLS)})")

    @staticmethod
    def _expect_no_args(name: str, args: tuple[str, ...]) -> None:
        if args:
            raise ValueError(f"'{name}' takes no arguments")

    # -- the driver's side ------------------------------------------------------------------
    def open_stream(self) -> int:
        """Open the video stream; CameraUnplugged if there is no camera. Returns a stream id."""
        with self._cond:
            if not self._plugged or not self._running:
                raise CameraUnplugged("no camera on the bus")
            return self._generation

    def read_frame(self, stream: int, after: int, timeout: float) -> EmulatedFrame:
        """The first frame newer than sequence number ``after``.

        Raises :class:`CameraUnplugged` if the stream died (unplug, power off)
        and :class:`TimeoutError` if no frame came within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if stream != self._generation or not self._plugged or not self._running:
                    raise CameraUnplugged("camera stream lost")
                latest = self._latest
                if latest is not None and latest.seq > after:
                    return latest
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no frame within {timeout:.1f} s")
                self._cond.wait(left)

    # -- the sensor ---------------------------------------------------------------------------
    def _frames(self, scene: str, pose: int) -> list[np.ndarray]:
        """A few noisy copies of the scene, made once: the noise differs frame to frame
        without paying for fresh random numbers 15 times a second."""
        key = (scene, pose)
        frames = self._cache.get(key)
        if frames is None:
            base = render_scene(scene, self.width, self.height, pose).astype(np.int16)
            frames = []
            for _ in range(4):
                noise = self._rng.normal(0.0, self.noise, base.shape).astype(np.int16)
                frame = np.clip(base + noise, 0, 255).astype(np.uint8)
                frame.flags.writeable = False
                frames.append(frame)
            self._cache[key] = frames
        return frames

    def _run(self) -> None:
        due = time.monotonic()
        while True:
            with self._cond:
                if not self._running:
                    return
                if self._plugged:
                    # Under the lock, so once control("scene") returns every
                    # later frame shows the new scene (control() pre-renders it,
                    # so this is a cache lookup).
                    frames = self._frames(self._scene, self._pose)
                    self._seq += 1
                    self._latest = EmulatedFrame(self._seq, time.monotonic(),
                                                 frames[self._seq % len(frames)])
                    self._cond.notify_all()
            # An absolute schedule keeps the average rate exact; after a stall
            # (a busy CPU) skip the missed frames instead of bursting them.
            due += 1.0 / self.fps
            now = time.monotonic()
            if due < now:
                due = now
            self._wake.wait(max(0.0, due - now))


class EmulatedCamera(CameraBase):
    """The emulated camera: frames from :class:`sensors.emulated.camera.CameraEmulator`.

    Give an ``emulator`` to share one with a test or the emulated rig (its
    owner starts and stops it); without one the driver makes its own at
    ``fps`` and powers it with :meth:`start` / :meth:`stop`.

    >>> camera = EmulatedCamera(640, 480, fps=15)
    >>> camera.emulator.control("scene", "dark")
    'scene dark'
    """

    kind = "emulated"

    def __init__(self, width: int = 640, height: int = 480, *, fps: float = 15.0,
                 emulator: CameraEmulator | None = None, timeout: float = 2.0) -> None:
        super().__init__(width, height, timeout=timeout)
        self._owns_emulator = emulator is None
        self.emulator = emulator or CameraEmulator(width, height, fps)
        self._stream = -1
        self._last_seq = 0

    def _start(self) -> None:
        if self._owns_emulator:
            self.emulator.start()
        try:
            self._stream = self.emulator.open_stream()
        except CameraUnplugged as exc:
            raise camera_not_found("start", str(exc)) from exc

    def _stop(self) -> None:
        self._stream = -1
        if self._owns_emulator:
            self.emulator.stop()

    def _preview(self) -> np.ndarray:
        frame = self.emulator.read_frame(self._stream, self._last_seq, self.timeout)
        self._last_seq = frame.seq
        return frame.rgb.copy()
