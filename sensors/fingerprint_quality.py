"""Whether a fingerprint image is usable: a 0-100 score, the pass mark, and what to fix first.

NFIQ 2 would be the standard, but its only Python binding needs a newer glibc
than Raspberry Pi OS Bookworm has, so the kit scores images itself from
coverage, ridge clarity and contrast, and lets the sensor's own feature
extraction have the last word. How the score is made, its bands and its
limits: ``sensors/README.md``. ``QUALITY_THRESHOLD`` is the one pass mark the
kit uses for fingers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensors import Quality

QUALITY_THRESHOLD = 40

# Confirmation codes of the sensor's feature extraction (convertImage).
CONVERT_OK = 0x00
CONVERT_MESSY = 0x06
CONVERT_FEW_FEATURES = 0x07
CONVERT_INVALID = 0x15

SENSOR_REASONS = {
    CONVERT_MESSY: ("gambar sidik jari terlalu kotor", "the fingerprint image is too messy",
                    "Bersihkan dan keringkan jari serta kaca sensor, lalu ulangi",
                    "Clean and dry the finger and the glass, then retry"),
    CONVERT_FEW_FEATURES: ("ciri sidik jari terlalu sedikit", "too few fingerprint features",
                           "Tekan jari lebih rata dan sedikit lebih kuat",
                           "Press the finger flatter and a little firmer"),
    CONVERT_INVALID: ("gambar sidik jari tidak sah", "invalid fingerprint image",
                      "Letakkan jari di tengah kaca lalu ulangi",
                      "Place the finger in the middle of the glass and retry"),
}
_PART_REASONS = {
    "coverage": ("Jari kurang menempel: letakkan ujung jari rata di tengah kaca",
                 "The finger covers too little: lay the fingertip flat in the middle"),
    "clarity": ("Alur sidik jari kabur: bersihkan jari dan kaca, jangan digeser",
                "The ridges are blurred: clean the finger and glass, do not slide"),
    "contrast": ("Kontras rendah: jari terlalu kering atau basah",
                 "Low contrast: the finger is too dry or too wet"),
}
_BLOCK = 16


@dataclass(frozen=True)
class ImageMeasures:
    """The three measures the fingerprint score is made of (see sensors/README.md)."""

    coverage: float  # share of blocks with ridges, 0..1
    clarity: float  # mean orientation coherence of those blocks, 0..1
    contrast: float  # median ridge-valley standard deviation, grey levels


def measure(pixels: np.ndarray) -> ImageMeasures:
    """Coverage, ridge clarity and contrast of a grey fingerprint image."""
    if pixels.ndim != 2 or min(pixels.shape) < _BLOCK:
        raise ValueError("a fingerprint image is a 2-D grey array at least 16 x 16")
    # OpenCV here, not at the top: kit.workflow imports this module for QUALITY_THRESHOLD
    # alone, and the agent and the kiosk's first screens should not carry OpenCV for it.
    import cv2

    grey = pixels.astype(np.float32)
    ridges = grey - cv2.GaussianBlur(grey, (0, 0), 4.0)
    gx = cv2.Sobel(ridges, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(ridges, cv2.CV_32F, 0, 1, ksize=3)
    hb, wb = ridges.shape[0] // _BLOCK, ridges.shape[1] // _BLOCK

    def blocks(a: np.ndarray) -> np.ndarray:
        return a[: hb * _BLOCK, : wb * _BLOCK].reshape(hb, _BLOCK, wb, _BLOCK)

    gxx = blocks(gx * gx).sum(axis=(1, 3))
    gyy = blocks(gy * gy).sum(axis=(1, 3))
    gxy = blocks(gx * gy).sum(axis=(1, 3))
    coherence = np.sqrt((gxx - gyy) ** 2 + 4 * gxy**2) / (gxx + gyy + 1e-6)
    spread = blocks(ridges).std(axis=(1, 3))
    fg = spread > 8.0
    if not fg.any():
        return ImageMeasures(0.0, 0.0, 0.0)
    return ImageMeasures(coverage=float(fg.mean()), clarity=float(coherence[fg].mean()),
                         contrast=float(np.median(spread[fg])))


def _band(value: float, low: float, high: float) -> float:
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


def fingerprint_quality(pixels: np.ndarray, sensor_code: int | None = None,
                        threshold: int = QUALITY_THRESHOLD) -> Quality:
    """A 0-100 score for a fingerprint image, the pass mark, and what to fix first.

    >>> blank = np.full((288, 256), 230, np.uint8)
    >>> q = fingerprint_quality(blank)
    >>> q.score, q.ok, q.reason_en.split(":")[0]
    (0, False, 'The finger covers too little')
    """
    m = measure(pixels)
    parts = {
        "coverage": _band(m.coverage, 0.15, 0.55),
        "clarity": _band(m.clarity, 0.40, 0.85),
        "contrast": _band(m.contrast, 6.0, 30.0),
    }
    score = round(100 * parts["coverage"] * parts["clarity"] ** 0.5 * parts["contrast"] ** 0.5)
    if sensor_code not in (None, CONVERT_OK):
        reason = SENSOR_REASONS.get(int(sensor_code), SENSOR_REASONS[CONVERT_INVALID])
        return Quality(min(score, threshold - 1), threshold,
                       f"{reason[0][0].upper()}{reason[0][1:]}: {reason[2].lower()}",
                       f"{reason[1][0].upper()}{reason[1][1:]}: {reason[3].lower()}")
    if score >= threshold:
        return Quality(score, threshold, "Sidik jari jelas", "Clear fingerprint")
    # what to fix first: the part that costs the most, coverage counting double
    weakest = min(parts, key=lambda k: parts[k] if k == "coverage" else parts[k] ** 0.5)
    reason_id, reason_en = _PART_REASONS[weakest]
    return Quality(score, threshold, reason_id, reason_en)
