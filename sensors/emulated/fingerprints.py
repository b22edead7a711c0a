"""Synthetic fingerprints: what the emulated ZFM sensor "sees" when a finger is on it.

Fictional people only: a person is any string (``"warga-0001"``); with a
finger position 1-10 (ISO/IEC 19794-4: 1 right thumb ... 5 right little,
6 left thumb ... 10 left little) it seeds everything below, so the same
person and finger always give the same print, and different ones differ.

How a print is made (the SFinGe approach, much simplified):

1. **Pattern class** (arch, tented arch, left loop, right loop, whorl),
   drawn with the rough frequencies of real fingers: thumbs and index
   fingers whorl more often, little fingers loop.
2. **Orientation field** from the zero-pole model of Sherlock and Monro:
   the ridge angle at *z* is half the sum of ``arg(z - core)`` minus half
   the sum of ``arg(z - delta)`` over the singular points, plus a smooth
   random warp so two loops of different people differ away from the core.
   Arches use a smooth hump with no singular point.
3. **Ridges** grow from sparse random seeds by repeated Gabor filtering:
   each pass filters with 16 oriented Gabor kernels (period about 9 pixels,
   ~500 dpi) and keeps, per pixel, the kernel along the local ridge
   direction, then squashes the result back to -1..1. Ridge endings and
   bifurcations appear by themselves where the field forces them.
4. **Impression**: the fingertip's contact area (an ellipse with a soft,
   irregular edge), pressure (ridge contrast falls towards the edge), sensor
   noise, and for impressions after the first a small shift and turn, as
   when someone lifts and places the same finger again.

A *smudged* impression (the emulator's ``bad-image`` fault) is the same
finger pressed off-centre, wet and sliding: heavy blur, a dark blotch and
low contrast, so both the kit's quality score and the sensor's feature
extraction reject it.

:func:`minutiae` gives the feature points the emulated sensor puts in its
512-byte character buffers. They are drawn from the same seed and follow the
same orientation field and impression shift as the picture, but they are not
extracted from the pixels: the emulator needs consistent matching (same
finger matches, other fingers do not), not a fingerprint matcher.

>>> a = synthesize("warga-0001", 2)
>>> a.shape, a.dtype.name
((288, 256), 'uint8')
>>> bool((a == synthesize("warga-0001", 2)).all()), bool((a == synthesize("warga-0001", 3)).all())
(True, False)
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import cv2
import numpy as np

WIDTH = 256
HEIGHT = 288
PATTERNS = ("arch", "tented-arch", "left-loop", "right-loop", "whorl")

# Pattern frequencies per finger (thumb, index, middle, ring, little), roughly
# as reported for large fingerprint collections: whorls on thumbs and ring
# fingers, loops everywhere, arches mostly on index fingers.
_CLASS_WEIGHTS = {
    1: (0.03, 0.02, 0.30, 0.30, 0.35),
    2: (0.10, 0.08, 0.30, 0.30, 0.22),
    3: (0.06, 0.03, 0.35, 0.35, 0.21),
    4: (0.02, 0.01, 0.30, 0.30, 0.37),
    5: (0.01, 0.01, 0.40, 0.40, 0.18),
}
_BINS = 16  # orientation bins for the Gabor filter bank
_ITERATIONS = 12


@dataclass(frozen=True)
class Identity:
    """Who is on the sensor: a (fictional) person id and a finger position 1-10."""

    person: str
    finger: int

    def __post_init__(self) -> None:
        if not 1 <= int(self.finger) <= 10:
            raise ValueError(f"finger position must be 1-10 (ISO/IEC 19794-4), not {self.finger}")

    def seed(self, purpose: str) -> int:
        digest = hashlib.sha256(f"{purpose}|{self.person}|{int(self.finger)}".encode()).digest()
        return int.from_bytes(digest[:8], "big")

    def rng(self, purpose: str) -> np.random.Generator:
        return np.random.default_rng(self.seed(purpose))


@dataclass(frozen=True)
class Singularities:
    pattern: str
    cores: tuple[tuple[float, float], ...]
    deltas: tuple[tuple[float, float], ...]


def pattern_of(identity: Identity) -> Singularities:
    """The pattern class and its singular points (x, y in pixels) for one finger."""
    rng = identity.rng("pattern")
    hand_finger = (int(identity.finger) - 1) % 5 + 1
    pattern = PATTERNS[int(rng.choice(len(PATTERNS), p=_CLASS_WEIGHTS[hand_finger]))]
    cx = WIDTH / 2 + rng.uniform(-18, 18)
    cy = HEIGHT * 0.45 + rng.uniform(-20, 20)
    if pattern == "arch":
        return Singularities(pattern, (), ())
    if pattern == "tented-arch":
        return Singularities(pattern, ((cx, cy),), ((cx + rng.uniform(-4, 4), cy + 60),))
    if pattern in ("left-loop", "right-loop"):
        side = -1 if pattern == "left-loop" else 1
        delta = (cx + side * rng.uniform(70, 95), cy + rng.uniform(75, 100))
        return Singularities(pattern, ((cx, cy),), (delta,))
    spread = rng.uniform(6, 16)
    tilt = rng.uniform(-0.6, 0.6)
    cores = ((cx - spread * math.sin(tilt), cy - spread * math.cos(tilt)),
             (cx + spread * math.sin(tilt), cy + spread * math.cos(tilt)))
    deltas = ((cx - rng.uniform(75, 95), cy + rng.uniform(70, 95)),
              (cx + rng.uniform(75, 95), cy + rng.uniform(70, 95)))
    return Singularities(pattern, cores, deltas)


def _smooth_noise(rng: np.random.Generator, scale: float) -> np.ndarray:
    """A smooth random surface over the image, features about ``scale`` pixels wide."""
    coarse = rng.normal(size=(int(HEIGHT / scale) + 2, int(WIDTH / scale) + 2))
    return cv2.resize(coarse.astype(np.float32), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)


@functools.lru_cache(maxsize=64)
def orientation_field(identity: Identity) -> np.ndarray:
    """Ridge direction in radians (0..pi, 0 = horizontal) at every pixel."""
    sing = pattern_of(identity)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    rng = identity.rng("orientation")
    if sing.pattern == "arch":
        cx = WIDTH / 2 + rng.uniform(-20, 20)
        height = rng.uniform(0.6, 1.1)
        # ridges y = -h * exp(-(x-cx)^2/w^2): their slope, flattening towards the fingertip base
        w = rng.uniform(60, 90)
        slope = height * 2 * (x - cx) / w * np.exp(-((x - cx) ** 2) / w**2)
        slope *= np.clip(1.2 - y / HEIGHT, 0.2, 1.0)
        theta = np.arctan(slope)
    else:
        z = x + 1j * y
        theta = np.zeros_like(x)
        for cx, cy in sing.cores:
            theta += 0.5 * np.angle(z - complex(cx, cy))
        for dx, dy in sing.deltas:
            theta -= 0.5 * np.angle(z - complex(dx, dy))
    theta = theta + 0.18 * _smooth_noise(rng, 48.0)
    return np.mod(theta, np.pi).astype(np.float32)


def _gabor_bank(period: float) -> list[np.ndarray]:
    """Even Gabor kernels whose stripes run along each of _BINS ridge directions."""
    sigma = period * 0.5
    half = math.ceil(2.5 * sigma)
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float32)
    kernels = []
    for k in range(_BINS):
        angle = k * math.pi / _BINS
        across = -xx * math.sin(angle) + yy * math.cos(angle)  # distance across the ridges
        kernel = np.exp(-(xx**2 + yy**2) / (2 * sigma**2)) * np.cos(2 * math.pi * across / period)
        kernel -= kernel.mean()
        kernels.append((kernel / np.abs(kernel).sum()).astype(np.float32))
    return kernels


@functools.lru_cache(maxsize=64)
def ridge_pattern(identity: Identity) -> np.ndarray:
    """The finger's ridges over the whole image, -1 (ridge) .. 1 (valley), float32."""
    theta = orientation_field(identity)
    rng = identity.rng("ridges")
    period = float(rng.uniform(8.2, 9.8))
    bank = _gabor_bank(period)
    # Interpolate between the two nearest kernels so the stripes turn smoothly.
    pos = theta / np.pi * _BINS
    lower = np.floor(pos).astype(np.int32) % _BINS
    upper = (lower + 1) % _BINS
    frac = (pos - np.floor(pos)).astype(np.float32)
    field = np.zeros((HEIGHT, WIDTH), np.float32)
    seeds = rng.random((HEIGHT, WIDTH)) < 0.004
    field[seeds] = rng.choice([-1.0, 1.0], size=int(seeds.sum()))
    for _ in range(_ITERATIONS):
        responses = np.stack([cv2.filter2D(field, -1, k, borderType=cv2.BORDER_REFLECT)
                              for k in bank])
        low = np.take_along_axis(responses, lower[None], axis=0)[0]
        high = np.take_along_axis(responses, upper[None], axis=0)[0]
        mixed = low * (1 - frac) + high * frac
        field = np.tanh(mixed / (np.abs(mixed).mean() + 1e-6) * 1.5).astype(np.float32)
    return field


@dataclass(frozen=True)
class Placement:
    """Where and how a finger touched the glass in one impression."""

    dx: float
    dy: float
    angle_deg: float

    def matrix(self) -> np.ndarray:
        """2x3 affine map from the finger's reference frame to this impression's pixels."""
        m = cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), self.angle_deg, 1.0)
        m[0, 2] += self.dx
        m[1, 2] += self.dy
        return m


def placement(identity: Identity, impression: int) -> Placement:
    """Impression 0 is the reference placement; later ones are shifted and turned a little."""
    if impression == 0:
        return Placement(0.0, 0.0, 0.0)
    rng = np.random.default_rng([identity.seed("placement"), int(impression)])
    return Placement(float(rng.uniform(-5, 5)), float(rng.uniform(-5, 5)),
                     float(rng.uniform(-2.5, 2.5)))


def _contact_mask(identity: Identity, rng: np.random.Generator, smudged: bool) -> np.ndarray:
    """Pressure 0..1 where the fingertip touches the glass (soft, slightly irregular edge)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    shape = identity.rng("contact")
    cx = WIDTH / 2 + shape.uniform(-10, 10)
    cy = HEIGHT / 2 + shape.uniform(-6, 14)
    ax = shape.uniform(92, 112)
    ay = shape.uniform(118, 138)
    if smudged:  # pressed off to one side with the tip only
        cx += rng.choice([-1, 1]) * 70
        cy += 70
        ax *= 0.8
        ay *= 0.7
    r = np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)
    r = r + 0.05 * _smooth_noise(identity.rng("edge"), 24.0)
    return np.clip((1.08 - r) / 0.16, 0.0, 1.0)


@functools.lru_cache(maxsize=32)
def synthesize(person: str, finger: int, impression: int = 0, smudged: bool = False) -> np.ndarray:
    """The 256 x 288 8-bit grey image the sensor captures (dark ridges on a light field).

    The array is cached and shared: treat it as read-only.
    """
    identity = Identity(person, int(finger))
    rng = np.random.default_rng([identity.seed("impression"), int(impression), int(smudged)])
    ridges = ridge_pattern(identity)
    where = placement(identity, impression)
    if impression:
        ridges = cv2.warpAffine(ridges, where.matrix(), (WIDTH, HEIGHT),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    pressure = _contact_mask(identity, rng, smudged)
    if impression:
        pressure = cv2.warpAffine(pressure, where.matrix(), (WIDTH, HEIGHT),
                                  flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    contrast = 85.0 * pressure ** 0.6
    mean = 232.0 - 95.0 * pressure
    if smudged:
        ridges = cv2.GaussianBlur(ridges, (0, 0), 3.5)
        blot = np.clip(_smooth_noise(rng, 40.0), 0, None)
        mean = mean - 70.0 * pressure * blot
        contrast = contrast * 0.35
    image = mean + contrast * ridges + rng.normal(0.0, 5.0, size=(HEIGHT, WIDTH))
    image = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 0.7)
    out = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out


def quantize_4bit(image: np.ndarray) -> np.ndarray:
    """What a host sees after the UART transfer: the top 4 bits of each pixel, times 17."""
    return ((image >> 4) * 17).astype(np.uint8)


def pack_4bit(image: np.ndarray) -> bytes:
    """The 36,864 bytes the sensor sends: two pixels a byte, the even (left) pixel high."""
    nibbles = (image >> 4).astype(np.uint8).reshape(HEIGHT, WIDTH // 2, 2)
    return ((nibbles[..., 0] << 4) | nibbles[..., 1]).tobytes()


# -- feature points -------------------------------------------------------------------------
MINUTIAE = 44  # feature points per finger; a real R30x template holds a few dozen


@functools.lru_cache(maxsize=256)
def _reference_minutiae(identity: Identity) -> np.ndarray:
    """(n, 4): x, y, direction in degrees 0-359, kind (0 ridge ending, 1 bifurcation)."""
    rng = identity.rng("minutiae")
    theta = orientation_field(identity)
    points: list[tuple[float, float, float, float]] = []
    while len(points) < MINUTIAE:
        x = float(rng.uniform(30, WIDTH - 30))
        y = float(rng.uniform(30, HEIGHT - 30))
        if ((x - WIDTH / 2) / 100) ** 2 + ((y - HEIGHT / 2) / 125) ** 2 > 0.8:
            continue  # keep points where any placement is in contact
        if any((x - px) ** 2 + (y - py) ** 2 < 144 for px, py, _, _ in points):
            continue  # real minutiae are rarely closer than a ridge or so
        # A minutia points along its ridge, one way or the other.
        direction = math.degrees(float(theta[int(y), int(x)])) + 180 * int(rng.integers(2))
        points.append((x, y, direction % 360, float(rng.integers(2))))
    return np.array(points, dtype=np.float64)


def prepare(person: str, finger: int) -> None:
    """Work out a finger's ridges and feature points now, before it is imaged.

    A real finger exists before it touches the glass; here its pattern costs
    ~0.6 s of numpy the first time. Done while the person is being set, it
    cannot push a capture past a host's reply timeout on a loaded machine
    (pyfingerprint gives up after 2 s and reads the silence as a bad header).
    """
    identity = Identity(person, int(finger))
    ridge_pattern(identity)
    _reference_minutiae(identity)


def minutiae(person: str, finger: int, impression: int = 0) -> np.ndarray:
    """Feature points (x, y, direction in degrees 0-359, kind 0/1) the sensor finds.

    Each impression moves the points with the finger, loses a few (the
    sensor misses about one in seven) and jitters the rest by a pixel or two.
    """
    identity = Identity(person, int(finger))
    base = _reference_minutiae(identity)
    where = placement(identity, impression)
    m = where.matrix()
    xy = base[:, :2] @ m[:, :2].T + m[:, 2]
    # cv2's positive angle turns the picture anticlockwise; y points down
    angles = (base[:, 2] - where.angle_deg) % 360
    rng = np.random.default_rng([identity.seed("features"), int(impression)])
    keep = rng.random(len(base)) > 0.15
    xy = xy + rng.normal(0.0, 1.0, size=xy.shape)
    angles = (angles + rng.normal(0.0, 3.0, size=angles.shape)) % 360
    out = np.column_stack([xy, angles, base[:, 3]])[keep]
    inside = (out[:, 0] >= 0) & (out[:, 0] < WIDTH) & (out[:, 1] >= 0) & (out[:, 1] < HEIGHT)
    return out[inside]
