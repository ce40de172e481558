"""Captions for the bundled MNIST digits, measured from each image (the tiny study's text).

A caption that only named the class would make caption classification plain label
classification. These captions carry what the label alone does not, each measured from the
image's pixels (28 x 28, uint8; ink = pixels >= 128):

- **thickness**: ink pixels / skeleton pixels (scikit-image's ``skeletonize``), the mean stroke
  width in pixels; "thin" / "medium" / "thick" at the training split's tertiles;
- **slant**: ``-mu11 / mu02`` of the intensity-weighted second central moments (x right,
  y down), the horizontal shift of the stroke per pixel upwards; "leaning left" below -0.1,
  "upright" up to 0.2, "leaning right" above (most handwriting leans right a little);
- **size**: the ink's bounding-box area, "small" / "medium" / "large" at the training tertiles;
- **position**: the bounding box's centre against the image centre (13.5, 13.5): left / right
  past 0.75 px, high / low past 0.75 px, else centred.

The words are paraphrased: each caption picks one of several templates and synonyms from a
generator seeded per image, so the same attributes appear in different orders and words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DIGIT_WORDS",
    "CaptionBins",
    "caption_digits",
    "describe",
    "fit_bins",
    "measure_digits",
]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
INK_THRESHOLD = 128
SLANT_LEFT, SLANT_RIGHT = -0.1, 0.2  # -mu11/mu02, pixels of x per pixel of height
OFFSET = 0.75  # pixels from the image centre before a digit counts as off-centre

_THICKNESS = (("thin", "fine", "light"), ("medium-weight", "regular", "normal"),
              ("thick", "bold", "heavy"))  # fmt: skip
_SLANT = (("leaning left", "slanted to the left", "tilted left"),
          ("upright", "straight", "vertical"),
          ("leaning right", "slanted to the right", "tilted right"))  # fmt: skip
_SIZE = (("small", "little", "compact"), ("medium-sized", "mid-sized", "average-sized"),
         ("large", "big", "wide"))  # fmt: skip
_HORIZONTAL = (("left", "on the left"), ("centre", "in the middle"), ("right", "on the right"))
_VERTICAL = (("high", "near the top"), ("middle", "at mid height"), ("low", "near the bottom"))
_TEMPLATES = (
    "a {thick} handwritten {digit}, {slant}, {size}, {place}",
    "the digit {digit} written in {thick} strokes, {slant} and {size}, {place}",
    "a {size} {digit} in {thick} strokes, {slant}, {place}",
    "handwritten number {digit}: {thick} lines, {slant}, {size}, sitting {place}",
    "an image of a {size} {digit} drawn with {thick} ink, {slant}, {place}",
    "{place}, a {slant} {digit} with {thick} strokes, {size}",
)


def measure_digits(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image measurements of (N, 28, 28) uint8 digits; every value is an (N,) array.

    Keys: ``ink_pixels``, ``skeleton_pixels``, ``thickness`` (px), ``slant``, ``box_area``
    (px^2), ``box_height``, ``box_width``, ``offset_x`` and ``offset_y`` (bounding-box centre
    minus the image centre, px; y down).
    """
    from skimage.morphology import skeletonize

    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"measure_digits expects (N, H, W) images, got {images.shape}")
    ink = images >= INK_THRESHOLD
    if not ink.any(axis=(1, 2)).all():
        raise ValueError("measure_digits: an image has no ink pixel (>= 128)")
    _, h, w = images.shape
    ink_pixels = ink.sum(axis=(1, 2)).astype(np.float64)
    skeleton = np.array([skeletonize(m).sum() for m in ink], dtype=np.float64)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    mass = images.astype(np.float64)
    m00 = mass.sum(axis=(1, 2))
    cx = (mass * xs).sum(axis=(1, 2)) / m00
    cy = (mass * ys).sum(axis=(1, 2)) / m00
    dx, dy = xs[None] - cx[:, None, None], ys[None] - cy[:, None, None]
    mu11 = (mass * dx * dy).sum(axis=(1, 2)) / m00
    mu02 = (mass * dy * dy).sum(axis=(1, 2)) / m00
    rows, cols = ink.any(axis=2), ink.any(axis=1)
    top, bottom = rows.argmax(1), h - 1 - rows[:, ::-1].argmax(1)
    left, right = cols.argmax(1), w - 1 - cols[:, ::-1].argmax(1)
    box_h, box_w = bottom - top + 1, right - left + 1
    return {
        "ink_pixels": ink_pixels,
        "skeleton_pixels": skeleton,
        "thickness": ink_pixels / np.maximum(skeleton, 1.0),
        "slant": -mu11 / mu02,
        "box_area": (box_h * box_w).astype(np.float64),
        "box_height": box_h.astype(np.float64),
        "box_width": box_w.astype(np.float64),
        "offset_x": (left + right) / 2.0 - (w - 1) / 2.0,
        "offset_y": (top + bottom) / 2.0 - (h - 1) / 2.0,
    }


@dataclass(frozen=True)
class CaptionBins:
    """Thresholds (lower, upper) of the three-level words; fitted on the training split."""

    thickness: tuple[float, float]
    box_area: tuple[float, float]


def fit_bins(
    measurements: dict[str, np.ndarray], indices: Sequence[int] | np.ndarray
) -> CaptionBins:
    """Tertiles of thickness and box area over ``indices`` (the training split)."""
    idx = np.asarray(indices)

    def tertiles(v: np.ndarray) -> tuple[float, float]:
        lo, hi = np.quantile(v[idx], [1 / 3, 2 / 3])
        return float(lo), float(hi)

    return CaptionBins(tertiles(measurements["thickness"]), tertiles(measurements["box_area"]))


def _level(value: float, lo: float, hi: float) -> int:
    return 0 if value < lo else (2 if value > hi else 1)


def _levels(m: dict[str, np.ndarray], i: int, bins: CaptionBins) -> dict[str, int]:
    return {
        "thickness": _level(m["thickness"][i], *bins.thickness),
        "slant": _level(m["slant"][i], SLANT_LEFT, SLANT_RIGHT),
        "size": _level(m["box_area"][i], *bins.box_area),
        "horizontal": _level(m["offset_x"][i], -OFFSET, OFFSET),
        "vertical": _level(m["offset_y"][i], -OFFSET, OFFSET),
    }


def _place(horizontal: int, vertical: int, rng: np.random.Generator) -> str:
    if horizontal == 1 and vertical == 1:
        return str(rng.choice(("centred", "in the centre", "in the middle of the frame")))
    h = str(rng.choice(_HORIZONTAL[horizontal]))
    v = str(rng.choice(_VERTICAL[vertical]))
    if horizontal == 1:
        return v if v.startswith(("near", "at")) else f"placed {v}"
    if vertical == 1:
        return h if h.startswith("on") else f"off to the {h}"
    return f"{v} and {h if h.startswith('on') else 'to the ' + h}"


def describe(
    measurements: dict[str, np.ndarray],
    labels: Sequence[int] | np.ndarray,
    bins: CaptionBins,
    *,
    seed: int = 0,
) -> list[str]:
    """One paraphrased caption per image: the digit's word and its measured attributes."""
    labels = np.asarray(labels)
    out = []
    for i, label in enumerate(labels):
        rng = np.random.default_rng([seed, i])
        lv = _levels(measurements, i, bins)
        words = {
            "digit": DIGIT_WORDS[int(label)],
            "thick": str(rng.choice(_THICKNESS[lv["thickness"]])),
            "slant": str(rng.choice(_SLANT[lv["slant"]])),
            "size": str(rng.choice(_SIZE[lv["size"]])),
            "place": _place(lv["horizontal"], lv["vertical"], rng),
        }
        template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
        out.append(template.format(**words))
    return out


def caption_digits(
    images: np.ndarray, labels: Sequence[int] | np.ndarray, fit_indices: Sequence[int] | np.ndarray,
    *, seed: int = 0,
) -> tuple[list[str], dict[str, np.ndarray], CaptionBins]:  # fmt: skip
    """Measure ``images``, fit the bins on ``fit_indices`` and caption every image."""
    m = measure_digits(images)
    bins = fit_bins(m, fit_indices)
    return describe(m, labels, bins, seed=seed), m, bins
