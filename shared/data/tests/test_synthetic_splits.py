"""Moving digits: the held-out test split and the textured / cluttered backgrounds."""

import json

import numpy as np
import pytest

from paperzoo.data.images import load_mnist_sample
from paperzoo.data.synthetic import moving_digits_dataset, render_background, write_moving_digits
from paperzoo.data.video import read_clip

SMALL = dict(num_videos_per_class=5, digits=(2, 7), num_directions=2, num_frames=6, size=32)


def _rows(root, split):
    return [line.split() for line in (root / f"{split}.csv").read_text().splitlines()]


def _frames(root, rel):
    frames, _ = read_clip(root / rel, 0.0, 10.0)
    return frames.numpy().astype(np.float64).mean(-1)  # (T, H, W) gray


@pytest.fixture(scope="module")
def three_splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("md3")
    write_moving_digits(root, test_fraction=0.2, **SMALL)
    return root


def test_test_split_is_held_out(three_splits):
    train, val, test = (_rows(three_splits, s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (4 * 3, 4, 4)  # round(0.2 * 5) = 1 val, 1 test
    assert not {r for r, _ in train} & {r for r, _ in test} and not {r for r, _ in val} & {
        r for r, _ in test
    }
    sources = json.loads((three_splits / "sources.json").read_text())
    used = {s: {sources[r] for r, _ in rows} for s, rows in zip("tvs", (train, val, test))}
    assert not used["t"] & used["v"] and not used["t"] & used["s"] and not used["v"] & used["s"]
    _, mnist_labels = load_mnist_sample()
    classes = json.loads((three_splits / "classes.json").read_text())
    for rows in (train, val, test):  # each video shows a digit of its class
        for rel, label in rows:
            assert str(int(mnist_labels[sources[rel]])) == classes[label].split("_")[0]
    meta = json.loads((three_splits / "meta.json").read_text())
    assert meta["test_fraction"] == 0.2 and meta["background"] == "black"


def test_no_test_split_by_default_and_clear_errors(tmp_path):
    write_moving_digits(tmp_path / "a", **SMALL)
    assert not (tmp_path / "a" / "test.csv").exists()
    with pytest.raises(ValueError, match="no 'test' split"):
        moving_digits_dataset(tmp_path / "a", split="test")
    with pytest.raises(ValueError, match="split must be one of"):
        moving_digits_dataset(tmp_path / "a", split="eval")
    with pytest.raises(ValueError, match="leave no training video"):
        write_moving_digits(tmp_path / "b", val_fraction=0.6, test_fraction=0.4, **SMALL)
    with pytest.raises(ValueError, match="rounds to no test video"):
        write_moving_digits(tmp_path / "c", test_fraction=0.05, **SMALL)
    with pytest.raises(ValueError, match="unknown background 'noise'"):
        write_moving_digits(tmp_path / "d", background="noise", **SMALL)


def test_registered_dataset_reads_the_test_split(three_splits):
    kwargs = dict(test_fraction=0.2, **SMALL)
    ds = moving_digits_dataset(three_splits, split="test", clip_frames=4, **kwargs)
    labels = sorted(ds[i][1] for i in range(len(ds)))
    assert labels == [0, 1, 2, 3] and ds[0][0].shape == (3, 4, 32, 32)


@pytest.mark.parametrize("background", ["texture", "clutter"])
def test_backgrounds_are_deterministic_and_not_black(tmp_path, background):
    kwargs = dict(SMALL, num_videos_per_class=3, test_fraction=0.34, background=background)
    drift = 1 if background == "texture" else 0
    write_moving_digits(tmp_path / "a", seed=3, background_drift=drift, **kwargs)
    write_moving_digits(tmp_path / "b", seed=3, background_drift=drift, **kwargs)
    write_moving_digits(tmp_path / "black", seed=3, **{**kwargs, "background": "black"})
    names = sorted(p.name for p in (tmp_path / "a" / "videos").iterdir())
    assert len(names) == 12
    for name in names:
        assert (tmp_path / "a/videos" / name).read_bytes() == (
            tmp_path / "b/videos" / name
        ).read_bytes()
    assert _rows(tmp_path / "a", "test") == _rows(tmp_path / "black", "test")
    for rel, _ in _rows(tmp_path / "a", "train"):
        ours, black = _frames(tmp_path / "a", rel), _frames(tmp_path / "black", rel)
        off_digit = black < 16  # pixels the digit does not cover
        assert black[off_digit].mean() < 2  # black is black (up to codec noise)
        if background == "texture":  # a smooth texture covers the whole canvas
            assert ours[off_digit].mean() > 30 and ours[off_digit].std() > 10
            assert np.abs(ours[1] - ours[0])[off_digit[0] & off_digit[1]].mean() > 2  # drifts
        else:  # static fragments: some pixels away from the digit are lit, the same over time
            lit = (ours > 40) & off_digit
            assert lit.all(0).sum() > 20
            assert np.abs(ours[-1] - ours[0])[lit.all(0)].mean() < 8
        digit = black > 200  # the digit stays on top (max-composite)
        assert np.abs(ours[digit] - black[digit]).mean() < 20
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    assert meta["background"] == background and meta["background_drift"] == drift


def test_texture_differs_between_videos(tmp_path):
    write_moving_digits(tmp_path, background="texture", **SMALL)
    rows = _rows(tmp_path, "train")
    first, second = _frames(tmp_path, rows[0][0])[0], _frames(tmp_path, rows[1][0])[0]
    assert np.abs(first - second).mean() > 10


def test_texture_cutoff_sets_its_smoothness():
    def step(cutoff, shift):  # mean |difference| of pixels ``shift`` px apart, over 4 textures
        frames = [
            render_background("texture", np.random.default_rng(k), 64, 1, cutoff=cutoff)[0]
            for k in range(4)
        ]
        return np.mean([np.abs(f - np.roll(f, shift, axis=1)).mean() for f in np.float64(frames)])

    # At 3 cycles per canvas, pixels 8 px apart differ nearly as much as ones 32 px apart; at
    # 1 cycle, about half as much: the texture is smooth across a 16 px patch.
    assert step(3.0, 8) > 0.75 * step(3.0, 32)
    assert step(1.0, 8) < 0.6 * step(1.0, 32)
    assert step(1.0, 8) < 0.7 * step(3.0, 8)
    with pytest.raises(ValueError, match="cutoff must be > 0"):
        render_background("texture", np.random.default_rng(0), 64, 1, cutoff=0)
