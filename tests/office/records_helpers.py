"""Stored records for the office's record tests: real-looking recordings of invented
residents (the sample assignment of Desa Papungan), sealed and signed as a kit seals them,
stored in a real office database as the receiver stores them.

The face is a scene of the emulated camera (scikit-image's public test images), the
fingers are the emulated sensor's synthetic prints (256 x 288, 8-bit grey, as a ZFM sensor
gives them at 500 ppi), the signature a rendered stroke: the pages and exports get the
sizes and formats a real kit sends.
"""

from __future__ import annotations

import functools
import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

from office.db import OfficeDb
from sensors.emulated.camera import render_scene
from sensors.emulated.fingerprints import synthesize
from sync.domain import (
    SAMPLE_ASSIGNMENT_PATH,
    Assignment,
    FingerCapture,
    FingerException,
    FingerPosition,
    Outcome,
    PhotoCapture,
    Recording,
    SignatureCapture,
    Witness,
    uuid7,
)
from sync.envelope import RECORD_KIND, KitKeys, OfficeKeys, read_header, seal

KIT = "blitar-kit-01"


def sample_assignment() -> Assignment:
    return Assignment.from_json(SAMPLE_ASSIGNMENT_PATH.read_text(encoding="utf-8"))


def _png(gray: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(gray.astype(np.uint8), mode="L").save(out, format="PNG", dpi=(500, 500))
    return out.getvalue()


@functools.lru_cache(maxsize=1)
def face_jpeg() -> tuple[bytes, int, int]:
    rgb = render_scene("good", 640, 480)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=88)
    return out.getvalue(), 640, 480


@functools.lru_cache(maxsize=64)
def finger_png(person: str, finger: int) -> bytes:
    return _png(synthesize(person, finger))


@functools.lru_cache(maxsize=1)
def signature_png() -> bytes:
    image = np.full((160, 480), 255, dtype=np.uint8)
    xs = np.linspace(20, 460, 400)
    ys = 80 + 40 * np.sin(xs / 35.0)
    for x, y in zip(xs.astype(int), ys.astype(int), strict=True):
        image[max(0, y - 2):y + 2, max(0, x - 1):x + 2] = 0
    return _png(image)


def recording(target_index: int = 0, *, outcome: Outcome = Outcome.RECORDED,
              exceptions: dict[int, FingerException] | None = None,
              cannot_sign: str | None = None, missing_fingers: tuple[int, ...] = (),
              started: datetime | None = None, kit_id: str = KIT) -> Recording:
    """One visit's recording of target ``target_index`` of the sample assignment."""
    assignment = sample_assignment()
    target = assignment.targets[target_index]
    start = started or datetime.now(UTC) - timedelta(minutes=20)
    end = start + timedelta(minutes=14)
    if not outcome.carries_biometrics:
        return Recording(id=uuid7(), target=target, officers=list(assignment.officers),
                         kit_id=kit_id, started_at=start, finished_at=end, outcome=outcome,
                         outcome_note="keluarga menolak perekaman hari ini"
                         if outcome is Outcome.REFUSED else "")
    exceptions = exceptions or {}
    fingers = {}
    for position in FingerPosition:
        if int(position) in missing_fingers:
            continue
        why = exceptions.get(int(position))
        if why is not None:
            fingers[position] = FingerCapture(position=position, exception=why,
                                              exception_note="", attempts=0)
        else:
            fingers[position] = FingerCapture(
                position=position, image_png=finger_png(target.id, int(position)),
                quality_score=62 + int(position), attempts=1, captured_at=start)
    jpeg, width, height = face_jpeg()
    signature = SignatureCapture(cannot_sign_reason=cannot_sign) if cannot_sign else \
        SignatureCapture(strokes=[[(20.0, 80.0, 0.0), (460.0, 90.0, 1.2)]],
                         image_png=signature_png())
    return Recording(
        id=uuid7(), target=target, officers=list(assignment.officers), kit_id=kit_id,
        started_at=start, finished_at=end, outcome=outcome,
        photo=PhotoCapture(jpeg=jpeg, width=width, height=height, quality_score=81,
                           quality_threshold=60, below_threshold_reason=None,
                           captured_at=start),
        fingers=fingers, signature=signature,
        witness=Witness(name="Sulastri", role="perangkat desa", consent=True),
        step_durations={"photo": 40.0, "fingers": 420.0}, devices={"fingerprint": "emulated"},
        software_version="test")


class RecordOffice:
    """An office's keys, one kit's keys (registered in ``kits/``) and its database, with
    :meth:`store` putting recordings in as the receiver would."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.office_keys = OfficeKeys.generate()
        self.office_keys.save(root / "keys")
        self.kit_keys = KitKeys.generate()
        self.kit_keys.public.save(root / "kits" / KIT)
        self.db = OfficeDb.open(root / "office.db")

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def kits_dir(self) -> Path:
        return self.root / "kits"

    def seal(self, rec: Recording) -> bytes:
        return seal(rec.to_canonical(), kind=RECORD_KIND,
                    ids={"record_id": rec.id, "kit_id": rec.kit_id},
                    recipient=self.office_keys.seal_public, signer=self.kit_keys.sign)

    def store(self, rec: Recording) -> str:
        blob = self.seal(rec)
        self.db.finish_record(rec.kit_id, rec.id, hashlib.sha256(blob).hexdigest(), blob,
                              str(read_header(blob)["sealed_at"]), False)
        return rec.id
