"""AudioSet and VGGSound lists: the released CSV formats, multi-label records, missing videos."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch

from paperzoo.data.datasets import LabeledVideoDataset, read_audioset_csv, read_vggsound_csv
from paperzoo.data.samplers import FullVideoSampler

INDEX = """index,mid,display_name
0,/m/09x0r,"Speech"
1,/m/05zppz,"Male speech, man speaking"
2,/m/0ytgt,"Child speech, kid speaking"
"""
SEGMENTS = """# Segments csv created Sun Mar  5 10:54:31 2017
# num_ytids=3, num_segs=3, num_unique_labels=3, num_positive_labels=5
# YTID, start_seconds, end_seconds, positive_labels
--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/m/05zppz"
--ZhevVpy1s, 50.000, 60.000, "/m/0ytgt"
--aE2O5G5WE, 0.000, 10.000, "/m/09x0r,/m/0ytgt,/m/05zppz"
"""


def _audioset(tmp_path, present=("--PJHxphWEs_30000", "--ZhevVpy1s_50000", "--aE2O5G5WE_0")):
    (tmp_path / "class_labels_indices.csv").write_text(INDEX)
    (tmp_path / "eval_segments.csv").write_text(SEGMENTS)
    videos = tmp_path / "videos"
    videos.mkdir()
    for stem in present:
        (videos / f"{stem}.mp4").write_bytes(b"")
    return tmp_path / "eval_segments.csv", tmp_path / "class_labels_indices.csv", videos


def test_audioset_segments_become_multi_label_records(tmp_path):
    records, names = read_audioset_csv(*_audioset(tmp_path))
    assert names == ["Speech", "Male speech, man speaking", "Child speech, kid speaking"]
    assert [r.label for r in records] == [[0, 1], [2], [0, 1, 2]]
    assert records[0].path.endswith("videos/--PJHxphWEs_30000.mp4")
    assert (records[1].start_sec, records[1].end_sec) == (0.0, 10.0)
    assert records[2].extra["ytid"] == "--aE2O5G5WE"


def test_missing_videos_are_skipped_and_counted_until_too_many(tmp_path, caplog):
    args = _audioset(tmp_path, present=("--PJHxphWEs_30000", "--aE2O5G5WE_0"))
    with caplog.at_level(logging.WARNING, logger="paperzoo.data"):
        records, _ = read_audioset_csv(*args, max_missing_fraction=0.5)
    assert [r.extra["ytid"] for r in records] == ["--PJHxphWEs", "--aE2O5G5WE"]
    assert "1 of 3 listed videos are not on disk (--ZhevVpy1s)" in caplog.text
    with pytest.raises(FileNotFoundError, match="file-name pattern"):
        read_audioset_csv(*args, file_name="{ytid}.mp4")  # the wrong pattern: none found


def test_audioset_bad_lists_are_clear_errors(tmp_path):
    segments, index, videos = _audioset(tmp_path)
    segments.write_text(SEGMENTS.replace('/m/0ytgt"', '/m/unknown"'))
    with pytest.raises(ValueError, match=r"labels \['/m/unknown'\]"):
        read_audioset_csv(segments, index, videos)
    index.write_text("mid,name\n/m/1,a\n")
    with pytest.raises(ValueError, match="header"):
        read_audioset_csv(segments, index, videos)


def test_vggsound_list_splits_and_shares_class_indices(tmp_path):
    (tmp_path / "vggsound.csv").write_text(
        "---g-f_I2yQ,1,people marching,test\n--0PQM4-hqg,30,waterfall burbling,train\n"
        "--56QUhyDQM,185,playing tennis,train\n"
    )
    videos = tmp_path / "video"
    videos.mkdir()
    for name in ("---g-f_I2yQ_000001", "--0PQM4-hqg_000030", "--56QUhyDQM_000185"):
        (videos / f"{name}.mp4").write_bytes(b"")
    train, classes = read_vggsound_csv(tmp_path / "vggsound.csv", videos, "train")
    test, _ = read_vggsound_csv(tmp_path / "vggsound.csv", videos, "test")
    assert classes == ["people marching", "playing tennis", "waterfall burbling"]
    assert [(r.label, r.extra["ytid"]) for r in train] == [(2, "--0PQM4-hqg"), (1, "--56QUhyDQM")]
    assert test[0].label == 0 and test[0].path.endswith("video/---g-f_I2yQ_000001.mp4")
    (tmp_path / "bad.csv").write_text("a,1,x,validation\n")
    with pytest.raises(ValueError, match="train\\|test"):
        read_vggsound_csv(tmp_path / "bad.csv", videos)


def test_audioset_records_decode_as_multi_hot_clips(tmp_path):
    """End to end on real h264 files named as a download names them."""
    from paperzoo.data.synthetic import write_moving_digits

    write_moving_digits(tmp_path / "src", num_videos_per_class=2, num_directions=2, digits=(0,),
                        num_frames=8, size=32, val_fraction=0.0)  # fmt: skip
    segments, index, videos = _audioset(tmp_path, present=())
    sources = sorted((tmp_path / "src" / "videos").glob("*.mp4"))
    for stem, src in zip(("--PJHxphWEs_30000", "--ZhevVpy1s_50000", "--aE2O5G5WE_0"), sources * 2):
        shutil.copy(src, videos / f"{stem}.mp4")
    records, names = read_audioset_csv(segments, index, videos)
    data = LabeledVideoDataset(records, clip_sampler=FullVideoSampler(), num_classes=len(names))
    clip, label = data[2]
    assert clip.shape[:2] == (3, 8) and clip.dtype == torch.float32
    torch.testing.assert_close(label, torch.tensor([1.0, 1.0, 1.0]))
    torch.testing.assert_close(data[1][1], torch.tensor([0.0, 0.0, 1.0]))
