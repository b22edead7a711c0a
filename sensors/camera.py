"""The kit's camera, and whether a frame makes a usable KTP-el face photo.

Three drivers sit behind one :class:`Camera` interface, chosen by
``devices.camera.kind`` in the kit configuration:

* ``picamera2`` -- the Raspberry Pi Camera Module 3 on the CSI ribbon,
  through picamera2/libcamera, with continuous autofocus;
* ``opencv`` -- a USB (UVC) webcam through OpenCV's V4L2 backend,
  ``devices.camera.device`` being its number (0 for ``/dev/video0``);
* ``emulated`` -- :class:`sensors.emulated.camera.CameraEmulator`, a sensor
  streaming pictures built from a public test portrait, with fault controls.

Every driver gives RGB frames as numpy arrays of shape (height, width, 3),
dtype uint8, and stills as JPEG bytes plus the array. Every call returns
within the driver's ``timeout``; a camera that stops (ribbon loose, USB cable
pulled) raises :class:`~sensors.errors.DeviceError` naming the operation, and the
next call opens it again, so the preview recovers by itself once the cable is
back.

>>> with EmulatedCamera(640, 480) as camera:
...     rgb = camera.preview_frame()
...     photo_quality(rgb).ok
True

The photo check (:func:`assess_photo`, :func:`photo_quality`) finds faces
with OpenCV's Haar cascade (shipped in opencv-python-headless < 5, no
download) and rates the frame on light, focus, one face, face size and
centring. The reason it gives is the first thing the officer should fix, in
Bahasa Indonesia and English.
"""

from __future__ import annotations

import functools
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import cv2
import numpy as np

from sensors import Quality
from sensors.errors import DeviceError

if TYPE_CHECKING:
    from sensors.emulated.camera import CameraEmulator
    from sensors.settings import CameraSection

log = logging.getLogger(__name__)

DEVICE = "camera"
_T = TypeVar("_T")


@dataclass(frozen=True)
class Still:
    """A captured photo: the JPEG the record keeps, and the pixels it was made from."""

    jpeg: bytes
    rgb: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.rgb.shape[1], self.rgb.shape[0]


def encode_jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    """JPEG bytes of an RGB frame (quality 92 keeps skin texture without large files)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise DeviceError(DEVICE, "capture", id="Foto tidak dapat disimpan sebagai JPEG",
                          en="The photo could not be encoded as JPEG",
                          hint_id="Ambil foto lagi", hint_en="Take the photo again")
    return buf.tobytes()


def _call_with_timeout(fn: Callable[[], _T], timeout: float, operation: str) -> _T:
    """Run a driver call that may block forever (a wedged V4L2 or libcamera queue)
    in a daemon thread, so the caller gets control back after ``timeout``."""
    result: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread below
            result["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name=f"camera-{operation}", daemon=True).start()
    if not done.wait(timeout):
        raise TimeoutError(f"camera {operation} took longer than {timeout:.1f} s")
    if "error" in result:
        raise result["error"]
    return result["value"]  # type: ignore[no-any-return]


def _not_found(operation: str, detail: str) -> DeviceError:
    return DeviceError(
        DEVICE, operation,
        id=f"Kamera tidak ditemukan ({detail})", en=f"Camera not found ({detail})",
        hint_id="Periksa kabel kamera, lalu coba lagi",
        hint_en="Check the camera cable, then try again", code="camera_not_found")


def _lost(operation: str, detail: str) -> DeviceError:
    return DeviceError(
        DEVICE, operation,
        id=f"Kamera berhenti mengirim gambar ({detail})",
        en=f"The camera stopped sending pictures ({detail})",
        hint_id="Periksa kabel kamera; kamera dibuka ulang otomatis saat tersambung lagi",
        hint_en="Check the camera cable; the kit reopens the camera once it is back",
        code="camera_lost")


class Camera(ABC):
    """A camera giving RGB preview frames and JPEG stills.

    ``width`` x ``height`` is the preview size; ``timeout`` bounds every call
    in seconds. Use it as a context manager, or call :meth:`start` and
    :meth:`stop`. :meth:`preview_frame` opens the camera if it is not open,
    which is also how it recovers after the camera was lost.
    """

    kind: ClassVar[str] = ""

    def __init__(self, width: int = 640, height: int = 480, *, timeout: float = 2.0) -> None:
        self.width = width
        self.height = height
        self.timeout = timeout
        self._open = False
        self._lock = threading.RLock()

    @property
    def is_open(self) -> bool:
        return self._open

    def start(self) -> None:
        """Open the camera and start streaming; DeviceError if it cannot be opened."""
        with self._lock:
            if not self._open:
                self._start()
                self._open = True
                log.info("%s camera open at %dx%d", self.kind, self.width, self.height)

    def stop(self) -> None:
        """Stop streaming and release the camera (safe to call twice)."""
        with self._lock:
            if self._open:
                self._open = False
                try:
                    _call_with_timeout(self._stop, self.timeout, "stop")
                except Exception as exc:  # a camera already gone cannot be closed cleanly
                    log.warning("%s camera did not close cleanly: %s", self.kind, exc)

    def preview_frame(self) -> np.ndarray:
        """The next frame, RGB (height, width, 3) uint8; DeviceError if the camera is gone."""
        return self._frame("preview", self._preview)

    def capture(self, jpeg_quality: int = 92) -> Still:
        """Take a photo: a fresh frame at still resolution, and its JPEG."""
        rgb = self._frame("capture", self._still)
        return Still(encode_jpeg(rgb, jpeg_quality), rgb)

    def _frame(self, operation: str, grab: Callable[[], np.ndarray]) -> np.ndarray:
        with self._lock:
            self.start()
            try:
                rgb = grab()
            except DeviceError:
                self.stop()
                raise
            except TimeoutError as exc:
                self.stop()
                raise DeviceError(
                    DEVICE, operation,
                    id=f"Kamera tidak mengirim gambar dalam {self.timeout:g} detik",
                    en=f"The camera sent no picture within {self.timeout:g} s",
                    hint_id="Periksa kabel kamera, lalu coba lagi",
                    hint_en="Check the camera cable, then try again",
                    code="camera_timeout") from exc
            except OSError as exc:
                self.stop()
                raise _lost(operation, str(exc)) from exc
            return rgb

    def __enter__(self) -> Camera:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @abstractmethod
    def _start(self) -> None: ...

    @abstractmethod
    def _stop(self) -> None: ...

    @abstractmethod
    def _preview(self) -> np.ndarray: ...

    def _still(self) -> np.ndarray:
        return self._preview()


class Picamera2Camera(Camera):
    """A Raspberry Pi camera (Camera Module 3) through picamera2.

    Preview frames come in XBGR8888, which libcamera lays out as R, G, B, X
    bytes per pixel, so dropping the fourth channel gives RGB with no copy of
    colour channels. Camera Module 3 runs continuous autofocus so a patient
    who moves stays sharp; fixed-focus modules are left as they are.

    ``still_size`` is the still resolution (width, height); None uses the
    sensor's full resolution (4608 x 2592 on Camera Module 3).

    >>> camera = Picamera2Camera(640, 480)      # doctest: +SKIP
    >>> camera.capture().jpeg[:2]              # doctest: +SKIP
    b'\\xff\\xd8'
    """

    kind = "picamera2"

    def __init__(self, width: int = 640, height: int = 480, *, camera_num: int = 0,
                 still_size: tuple[int, int] | None = (2304, 1296),
                 timeout: float = 3.0) -> None:
        super().__init__(width, height, timeout=timeout)
        self.camera_num = camera_num
        self.still_size = still_size
        self._cam: Any = None
        self._still_config: Any = None

    def _start(self) -> None:
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError as exc:
            raise DeviceError(
                DEVICE, "start",
                id="Pustaka kamera (picamera2) tidak terpasang",
                en="Camera library not installed (picamera2)",
                hint_id="Pasang python3-picamera2 dari apt dan buat venv dengan "
                        "--system-site-packages, atau ubah devices.camera.kind",
                hint_en="Install python3-picamera2 from apt and make the venv with "
                        "--system-site-packages, or change devices.camera.kind",
                code="camera_library_missing") from exc
        try:
            cam = Picamera2(self.camera_num)
        except (IndexError, RuntimeError) as exc:  # no camera on the CSI port
            raise _not_found("start", f"CSI {self.camera_num}: {exc}") from exc
        try:
            preview = cam.create_preview_configuration(
                main={"size": (self.width, self.height), "format": "XBGR8888"})
            still_main: dict[str, Any] = {"format": "XBGR8888"}
            if self.still_size is not None:
                still_main["size"] = self.still_size
            self._still_config = cam.create_still_configuration(main=still_main)
            cam.start(preview, show_preview=False)
            if "AfMode" in cam.camera_controls:
                from libcamera import controls  # type: ignore[import-not-found]

                cam.set_controls({"AfMode": controls.AfModeEnum.Continuous})
        except Exception as exc:  # libcamera raises plain RuntimeError/OSError variants
            cam.close()
            raise _not_found("start", str(exc)) from exc
        self._cam = cam

    def _stop(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            try:
                cam.stop()
            finally:
                cam.close()

    def _preview(self) -> np.ndarray:
        arr = _call_with_timeout(lambda: self._cam.capture_array("main"), self.timeout,
                                 "preview")
        return np.ascontiguousarray(arr[..., :3])

    def _still(self) -> np.ndarray:
        arr = _call_with_timeout(
            lambda: self._cam.switch_mode_and_capture_array(self._still_config, "main"),
            self.timeout * 2, "capture")
        return np.ascontiguousarray(arr[..., :3])


class OpenCvCamera(Camera):
    """A USB (UVC) webcam through OpenCV's V4L2 backend.

    ``device`` is the camera number (0 for ``/dev/video0``) or a path such
    as ``/dev/v4l/by-id/usb-...-video-index0``. A path to a video file
    also works, which is how a recorded clip can stand in for a webcam.

    >>> camera = OpenCvCamera(0, 640, 480)       # doctest: +SKIP
    >>> camera.preview_frame().shape            # doctest: +SKIP
    (480, 640, 3)
    """

    kind = "opencv"

    def __init__(self, device: int | str = 0, width: int = 640, height: int = 480, *,
                 timeout: float = 2.0) -> None:
        super().__init__(width, height, timeout=timeout)
        self.device = device
        self._cap: cv2.VideoCapture | None = None

    def _start(self) -> None:
        if isinstance(self.device, int):
            cap = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
            where = f"/dev/video{self.device}"
        else:
            cap = cv2.VideoCapture(self.device)
            where = self.device
        if not cap.isOpened():
            cap.release()
            raise _not_found("start", where)
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        # One buffered frame: the preview shows now, not half a second ago.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cap = cap

    def _stop(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def _read(self) -> np.ndarray:
        cap = self._cap
        assert cap is not None
        ok, bgr = cap.read()
        if not ok or bgr is None:
            raise OSError("no frame from the camera (unplugged?)")
        return bgr

    def _preview(self) -> np.ndarray:
        bgr = _call_with_timeout(self._read, self.timeout, "preview")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _still(self) -> np.ndarray:
        # The driver may hold a frame taken before the button was pressed; drop it.
        cap = self._cap
        assert cap is not None
        _call_with_timeout(cap.grab, self.timeout, "capture")
        return self._preview()


class EmulatedCamera(Camera):
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
        from sensors.emulated.camera import CameraEmulator

        self._owns_emulator = emulator is None
        self.emulator = emulator or CameraEmulator(width, height, fps)
        self._stream = -1
        self._last_seq = 0

    def _start(self) -> None:
        from sensors.emulated.camera import CameraUnplugged

        if self._owns_emulator:
            self.emulator.start()
        try:
            self._stream = self.emulator.open_stream()
        except CameraUnplugged as exc:
            raise _not_found("start", str(exc)) from exc

    def _stop(self) -> None:
        self._stream = -1
        if self._owns_emulator:
            self.emulator.stop()

    def _preview(self) -> np.ndarray:
        frame = self.emulator.read_frame(self._stream, self._last_seq, self.timeout)
        self._last_seq = frame.seq
        return frame.rgb.copy()


def open_camera(section: CameraSection, *, emulator: CameraEmulator | None = None) -> Camera:
    """The camera ``devices.camera`` names (not yet started)."""
    if section.kind == "picamera2":
        return Picamera2Camera(section.width, section.height)
    if section.kind == "opencv":
        return OpenCvCamera(section.device, section.width, section.height)
    if section.kind == "emulated":
        return EmulatedCamera(section.width, section.height, emulator=emulator)
    raise DeviceError(DEVICE, "open", id=f"Jenis kamera tidak dikenal: {section.kind!r}",
                      en=f"Unknown camera kind: {section.kind!r}",
                      hint_id='Pakai "picamera2", "opencv" atau "emulated"',
                      hint_en='Use "picamera2", "opencv" or "emulated"')


# ---------------------------------------------------------------------------------------------
# Photo quality
# ---------------------------------------------------------------------------------------------

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
                DEVICE, "photo check", id="Model pendeteksi wajah tidak ditemukan",
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

