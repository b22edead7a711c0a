"""The kit's camera: live preview frames and stills.

Three drivers sit behind one :class:`Camera` interface; :func:`sensors.registry.open_camera`
picks one from ``devices.camera.kind`` in the kit configuration:

* ``picamera2`` -- the Raspberry Pi Camera Module 3 on the CSI ribbon,
  through picamera2/libcamera, with continuous autofocus;
* ``opencv`` -- a USB (UVC) webcam through OpenCV's V4L2 backend,
  ``devices.camera.device`` being its number (0 for ``/dev/video0``);
* ``emulated`` -- :class:`sensors.emulated.camera.EmulatedCamera` on a
  :class:`~sensors.emulated.camera.CameraEmulator`, a sensor streaming
  pictures built from a public test portrait, with fault controls.

Every driver gives RGB frames as numpy arrays of shape (height, width, 3),
dtype uint8, and stills as JPEG bytes plus the array. Every call returns
within the driver's ``timeout``; a camera that stops (ribbon loose, USB cable
pulled) raises :class:`~sensors.errors.DeviceError` naming the operation, and the
next call opens it again, so the preview recovers by itself once the cable is
back.

Whether a frame makes a usable KTP-el photo is :mod:`sensors.photo_quality`.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import numpy as np

from sensors.errors import DeviceError

if TYPE_CHECKING:
    import cv2

# OpenCV (~16 MiB resident) is imported where a frame is encoded or a USB camera
# opened, not with this module: the agent imports the device registry, and with it
# this module, without ever touching a camera.

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
    import cv2

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


def camera_not_found(operation: str, detail: str) -> DeviceError:
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


class Camera(Protocol):
    """What the kit needs of a camera: RGB preview frames and JPEG stills, each call bounded
    by the driver's timeout; a lost camera raises DeviceError and is reopened on the next call.

    >>> from sensors.registry import open_camera                       # doctest: +SKIP
    >>> with open_camera(config.devices.camera) as camera:             # doctest: +SKIP
    ...     still = camera.capture()
    """

    kind: ClassVar[str]

    @property
    def is_open(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def preview_frame(self) -> np.ndarray: ...

    def capture(self, jpeg_quality: int = 92) -> Still: ...

    def __enter__(self) -> Camera: ...

    def __exit__(self, *exc: object) -> None: ...


class CameraBase(ABC):
    """The machinery every camera driver shares: open on demand, bounded calls, recovery.

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

    def __enter__(self) -> CameraBase:
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


class Picamera2Camera(CameraBase):
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
            raise camera_not_found("start", f"CSI {self.camera_num}: {exc}") from exc
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
            raise camera_not_found("start", str(exc)) from exc
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


class OpenCvCamera(CameraBase):
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
        import cv2

        if isinstance(self.device, int):
            cap = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
            where = f"/dev/video{self.device}"
        else:
            cap = cv2.VideoCapture(self.device)
            where = self.device
        if not cap.isOpened():
            cap.release()
            raise camera_not_found("start", where)
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
        import cv2

        bgr = _call_with_timeout(self._read, self.timeout, "preview")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _still(self) -> np.ndarray:
        # The driver may hold a frame taken before the button was pressed; drop it.
        cap = self._cap
        assert cap is not None
        _call_with_timeout(cap.grab, self.timeout, "capture")
        return self._preview()
