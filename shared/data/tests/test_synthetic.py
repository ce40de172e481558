import json

import numpy as np
import pytest
import torch

from paperzoo.data.synthetic import DIRECTIONS, render_moving_digit, write_moving_digits
from paperzoo.data.video import probe_video, read_clip


def test_manifest_classes_and_files(moving_digits_dir):
    classes = json.loads((moving_digits_dir / "classes.json").read_text())
    assert (
        len(classes) == 12
        and classes["0"] == "0_right"
        and classes["7"] == "1_up"
        and classes["11"] == "7_up"
    )
    train = (moving_digits_dir / "train.csv").read_text().split("\n")[:-1]
    val = (moving_digits_dir / "val.csv").read_text().split("\n")[:-1]
    assert len(train) == 12 * 5 and len(val) == 12 * 1  # round(0.2 * 6) = 1 val video per class
    rel, label = train[0].split()
    info = probe_video(moving_digits_dir / rel)
    assert (info.codec, info.width, info.num_frames, info.fps) == (
        "h264",
        64,
        16,
        8.0,
    ) and label == "0"


def test_same_seed_same_bytes(tmp_path):
    kwargs = dict(num_videos_per_class=2, digits=(3,), num_directions=2, num_frames=6, size=32)
    a = write_moving_digits(tmp_path / "a", seed=5, **kwargs)
    b = write_moving_digits(tmp_path / "b", seed=5, **kwargs)
    c = write_moving_digits(tmp_path / "c", seed=6, **kwargs)
    files = sorted(p.name for p in (tmp_path / "a" / "videos").iterdir())
    assert len(files) == 4
    for name in files:
        assert (tmp_path / "a/videos" / name).read_bytes() == (
            tmp_path / "b/videos" / name
        ).read_bytes()
    assert any(
        (tmp_path / "a/videos" / n).read_bytes() != (tmp_path / "c/videos" / n).read_bytes()
        for n in files
    )
    assert a.read_text() == b.read_text() and c.name == "train.csv"
    with pytest.raises(ValueError, match="num_directions"):
        write_moving_digits(tmp_path / "d", num_directions=3)


def test_no_single_frame_reveals_the_direction():
    """On the torus, frame t of any direction is frame t of any other direction for some
    start; with uniform starts, every frame has the same distribution for all directions."""
    rng = np.random.default_rng(0)
    digit = (rng.random((28, 28)) * 255).astype(np.uint8)
    size, speed, t = 64, 3, 5
    for name, (dy, dx) in DIRECTIONS.items():
        start = (int(rng.integers(size)), int(rng.integers(size)))
        frames = render_moving_digit(digit, (dy, dx), start, size, 8, speed)
        for oy, ox in DIRECTIONS.values():
            other = (
                (start[0] + t * speed * (dy - oy)) % size,
                (start[1] + t * speed * (dx - ox)) % size,
            )
            assert np.array_equal(
                render_moving_digit(digit, (oy, ox), other, size, 8, speed)[t], frames[t]
            ), name


def _shift(f0, f1):
    """Circular translation from f0 to f1 by phase correlation."""
    corr = torch.fft.ifft2(torch.fft.fft2(f1) * torch.fft.fft2(f0).conj()).real
    dy, dx = divmod(int(corr.argmax()), f0.shape[1])
    n = f0.shape[0]
    return (dy + n // 2) % n - n // 2, (dx + n // 2) % n - n // 2


def test_direction_is_recoverable_from_time(moving_digits_dir):
    steps = list(DIRECTIONS.values())[:4]
    starts = []
    for line in (moving_digits_dir / "train.csv").read_text().split("\n")[:-1]:
        rel, label = line.split()
        frames, _ = read_clip(moving_digits_dir / rel, 0.0, 0.25)  # frames 0 and 1
        gray = frames.float().mean(-1)
        direction = steps[int(label) % 4]
        assert _shift(gray[0], gray[1]) == (3 * direction[0], 3 * direction[1]), rel
        ys, xs = torch.nonzero(gray[0] > 128, as_tuple=True)
        starts.append((float(ys.float().mean()), float(xs.float().mean())))
    # start positions spread over the canvas, not clustered by direction
    assert np.std([s[1] for s in starts]) > 10 and np.std([s[0] for s in starts]) > 10


def test_registered_moving_digits_writes_once(tmp_path):
    from paperzoo.core import create_dataset

    kwargs = dict(
        num_videos_per_class=2,
        digits=(1,),
        num_directions=2,
        num_frames=4,
        size=32,
        val_fraction=0.5,
    )
    ds = create_dataset("moving_digits", root=tmp_path, split="val", **kwargs)
    assert (
        len(ds) == 2 and ds[0][0].shape == (3, 4, 32, 32) and ds[1][1] == 1
    )  # 2 classes x 1 val video
    stamp = (tmp_path / "meta.json").stat().st_mtime_ns
    again = create_dataset("moving_digits", root=tmp_path, split="train", **kwargs)
    assert len(again) == 2 and (tmp_path / "meta.json").stat().st_mtime_ns == stamp
    create_dataset("moving_digits", root=tmp_path, split="train", **{**kwargs, "num_frames": 6})
    assert (tmp_path / "meta.json").stat().st_mtime_ns != stamp  # other arguments: rewritten
