"""save_grid: layout, padding and value mapping of the written PNG."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from paperzoo.gen.grid import save_grid


def test_grid_pixels_are_where_expected(tmp_path):
    # Five 4x6 images of constant colours in [-1, 1]; 3 per row -> 2 rows, 2 px padding.
    values = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
    images = values.view(5, 1, 1, 1).expand(5, 3, 4, 6).clone()
    images[1, 0] = 1.0  # image 1: red channel full
    images[4] = 7.0  # out of range: clamped to white
    path = save_grid(images, tmp_path / "sub" / "grid.png", nrow=3, padding=2)
    assert path == tmp_path / "sub" / "grid.png"
    assert not list(path.parent.glob(".*.tmp"))

    png = np.asarray(Image.open(path))
    assert png.shape == (2 + 2 * (4 + 2), 2 + 3 * (6 + 2), 3) and png.dtype == np.uint8

    def tile(i):
        row, col = divmod(i, 3)
        y, x = 2 + row * 6, 2 + col * 8
        return png[y : y + 4, x : x + 6]

    expected = [0, 64, 128, 191, 255]  # round-half-up of (v + 1) / 2 * 255
    for i in (0, 2, 3, 4):
        assert (tile(i) == expected[i]).all(), i
    assert (tile(1)[..., 0] == 255).all() and (tile(1)[..., 1:] == 64).all()
    assert (png[0] == 0).all() and (png[:, 0] == 0).all()  # make_grid pads with 0
    assert (png[8:, 18:] == 0).all()  # the empty sixth cell


def test_grayscale_and_default_rows(tmp_path):
    images = torch.linspace(0, 1, 4).view(4, 1, 1, 1).expand(4, 1, 2, 2)
    png = np.asarray(
        Image.open(save_grid(images, tmp_path / "g.png", value_range=(0, 1), padding=0))
    )
    assert png.shape == (4, 4, 3)  # 2x2 grid; make_grid repeats a single channel
    assert png[0, 0, 0] == 0 and png[3, 3, 0] == 255 and png[0, 2, 0] == 85


def test_rejects_wrong_shape(tmp_path):
    with pytest.raises(ValueError, match=r"got shape \(3, 4, 4\)"):
        save_grid(torch.zeros(3, 4, 4), tmp_path / "x.png")
