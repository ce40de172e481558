"""The video-classification task's data: Kinetics-style lists and the moving-digits splits."""

import pytest
import torch

from paperzoo.data.datasets import kinetics_lists
from paperzoo.data.synthetic import DecodedVideos, moving_digits_splits
from paperzoo.data.video import read_clip

SMALL = dict(num_videos_per_class=5, digits=(4,), num_directions=2, num_frames=8, size=32)


def test_kinetics_lists_found_and_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="needs Kinetics-400: pass --data DIR"):
        kinetics_lists("")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        kinetics_lists(tmp_path / "nowhere")
    (tmp_path / "train.csv").write_text("a.mp4 0\n")
    with pytest.raises(FileNotFoundError, match=r"lacks .*val\.csv") as err:
        kinetics_lists(tmp_path)
    assert "train.csv" not in str(err.value).split(";")[0]  # only the missing list is named
    (tmp_path / "val.csv").write_text("b.mp4 1\n")
    assert kinetics_lists(tmp_path) == (tmp_path / "train.csv", tmp_path / "val.csv")
    with pytest.raises(FileNotFoundError, match="SSv2"):
        kinetics_lists(None, dataset="SSv2")
    with pytest.raises(FileNotFoundError, match=r"test\.csv"):
        kinetics_lists(tmp_path, ("train", "test"))


def test_splits_written_once_decoded_once_and_normalised(tmp_path):
    root = tmp_path / "md"
    splits = moving_digits_splits(root, ("train", "val", "test"), test_fraction=0.2, **SMALL)
    train, val, test = splits["train"], splits["val"], splits["test"]
    assert (len(train), len(val), len(test)) == (6, 2, 2)
    assert train.videos.dtype == torch.uint8 and train.videos.shape == (6, 3, 8, 32, 32)
    stamp = (root / "meta.json").stat().st_mtime_ns
    again = moving_digits_splits(root, ("train",), test_fraction=0.2, **SMALL)["train"]
    assert (root / "meta.json").stat().st_mtime_ns == stamp  # not written again
    assert again.videos is train.videos  # nor decoded again
    # normalised on access, from the decoded file's frames
    rel = (root / "train.csv").read_text().split()[0]
    frames, _ = read_clip(root / rel, 0.0, 10.0)
    clip, label, index = train[0]
    expected = (frames.permute(3, 0, 1, 2).float() / 255 - 0.45) / 0.225
    torch.testing.assert_close(clip, expected)
    assert (label, index) == (0, 0)
    # other arguments: written and decoded again
    other = moving_digits_splits(root, ("train",), test_fraction=0.2, **{**SMALL, "speed": 2})
    assert (root / "meta.json").stat().st_mtime_ns != stamp
    assert not torch.equal(other["train"].videos, train.videos)
    with pytest.raises(ValueError, match="no 'test' split"):
        moving_digits_splits(root, ("test",), **SMALL)
    with pytest.raises(ValueError, match="unknown split"):
        moving_digits_splits(root, ("eval",), **SMALL)
    with pytest.raises(TypeError, match="no argument"):
        moving_digits_splits(root, ("train",), frames=3)


def test_decoded_videos_clip_sampling():
    videos = torch.arange(2 * 1 * 10, dtype=torch.uint8).view(2, 1, 10, 1, 1).expand(2, 1, 10, 2, 2)
    data = DecodedVideos(videos.contiguous(), [3, 4], mean=(0.0,), std=(1.0,))

    def frames(clip):  # the frame indices a clip holds (frame t of video v has value 10 v + t)
        return (clip[0, :, 0, 0] * 255).round().int().tolist()

    clip, label, index = data[1]
    assert clip.shape == (1, 10, 2, 2) and label == 4 and index == 1
    assert frames(clip) == list(range(10, 20))
    views = data.sampled(num_frames=3, stride=2, num_views=3)  # span 5 of 10 frames
    assert len(views) == 6 and views.videos is data.videos
    starts = [frames(views[i][0])[0] for i in range(3)]
    assert starts == [0, 2, 5] and [views[i][2] for i in range(6)] == [0, 0, 0, 1, 1, 1]
    assert frames(views[4][0]) == [12, 14, 16]
    centre = data.sampled(num_frames=4, stride=2)
    assert frames(centre[0][0]) == [1, 3, 5, 7]  # start (10 - 7) // 2
    rand = data.sampled(num_frames=4, stride=2, random_start=True)
    torch.manual_seed(0)
    starts = {frames(rand[0][0])[0] for _ in range(200)}
    assert starts == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="span 11 frames"):
        data.sampled(num_frames=6, stride=2)
    with pytest.raises(ValueError, match="uint8"):
        DecodedVideos(videos.float(), [3, 4], mean=(0.0,), std=(1.0,))
    with pytest.raises(ValueError, match="one value per channel"):
        DecodedVideos(videos.contiguous(), [3, 4])
    with pytest.raises(IndexError):
        data[2]
