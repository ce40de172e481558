"""Captions are measured from the pixels: thickness, slant, size and position of drawn strokes."""

from __future__ import annotations

import re

import numpy as np

from paperzoo.superclass.captions import (
    DIGIT_WORDS,
    caption_digits,
    describe,
    fit_bins,
    measure_digits,
)


def _canvas(n: int = 1) -> np.ndarray:
    return np.zeros((n, 28, 28), np.uint8)


def test_thickness_is_the_stroke_width():
    images = _canvas(3)
    for i, width in enumerate((1, 3, 5)):
        images[i, 4:24, 12 : 12 + width] = 255  # a vertical bar, 20 px tall
    m = measure_digits(images)
    np.testing.assert_allclose(m["ink_pixels"], [20, 60, 100])
    # ink / skeleton length: close to the bar's width (the skeleton is a bit shorter than 20).
    assert np.all(np.abs(m["thickness"] - np.array([1, 3, 5])) < [0.2, 0.7, 1.2])
    assert m["thickness"][0] < m["thickness"][1] < m["thickness"][2]


def test_slant_sign_size_and_position():
    images = _canvas(4)
    for y in range(4, 24):  # a stroke whose top is to the right: x decreases going down
        x = 20 - (y - 4) // 2
        images[0, y, x : x + 2] = 255
    for y in range(4, 24):  # leaning left
        x = 6 + (y - 4) // 2
        images[1, y, x : x + 2] = 255
    images[2, 2:8, 2:8] = 255  # small, high and to the left
    images[3, 6:26, 6:26] = 255  # large, low and to the right
    m = measure_digits(images)
    assert m["slant"][0] > 0.3 and m["slant"][1] < -0.3
    assert m["box_area"][2] == 36 and m["box_area"][3] == 400
    assert m["offset_x"][2] == 4.5 - 13.5 and m["offset_y"][2] == 4.5 - 13.5
    assert m["offset_x"][3] == 15.5 - 13.5 and m["offset_y"][3] == 15.5 - 13.5
    bins = fit_bins(m, [0, 1, 2, 3])
    captions = describe(m, [7, 1, 0, 8], bins)
    assert "seven" in captions[0] and "right" in captions[0].split(",")[1] + captions[0]
    words = [set(re.findall(r"[a-z-]+", c)) for c in captions]
    assert words[2] & {"small", "little", "compact"} and words[3] & {"large", "big", "wide"}
    assert words[2] & {"top", "high"} and words[2] & {"left"}
    assert words[3] & {"bottom", "low"} and words[3] & {"right"}


def test_bundled_digits_get_varied_captions_that_carry_more_than_the_label():
    from paperzoo.data.images import load_mnist_sample

    images, labels = load_mnist_sample()
    images, labels = images[::8].numpy(), labels[::8].numpy()  # 625 digits of every class
    captions, m, bins = caption_digits(images, labels, np.arange(400))
    assert len(captions) == 625 and len(set(captions)) > 450
    words = [set(re.findall(r"[a-z-]+", c)) for c in captions]
    for w, label in zip(words, labels):
        assert DIGIT_WORDS[label] in w and not (set(DIGIT_WORDS) - {DIGIT_WORDS[label]}) & w
    # Within one class the captions differ in the measured attributes, and the words follow
    # the measurements: the thickest third of the digits are called thick / bold / heavy.
    thick = m["thickness"] > bins.thickness[1]
    heavy = np.array([bool({"thick", "bold", "heavy"} & w) for w in words])
    assert np.array_equal(thick, heavy)
    # Deterministic: the same images give the same captions.
    assert caption_digits(images, labels, np.arange(400))[0] == captions
