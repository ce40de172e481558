import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from paperzoo.data.datasets import (
    AVAKeyframeDataset,
    CharadesFrameDataset,
    ImageTextDataset,
    LabeledVideoDataset,
    VideoTextDataset,
    read_ava_boxes,
    read_hmdb51_split,
    read_kinetics_csv,
    read_ssv2,
    read_ucf101_split,
)
from paperzoo.data.samplers import (
    ConstantClipsPerVideoSampler,
    RandomClipSampler,
    UniformClipSampler,
)
from paperzoo.data.transforms import video_train_transform
from paperzoo.data.video import read_clip


@pytest.fixture
def kinetics_dir(tmp_path, carphone_mp4, bikes_mp4):
    (tmp_path / "abseiling").mkdir()
    (tmp_path / "biking").mkdir()
    shutil.copy(carphone_mp4, tmp_path / "abseiling" / "a1.mp4")
    shutil.copy(bikes_mp4, tmp_path / "biking" / "b1.mp4")
    return tmp_path


def test_kinetics_space_separated_and_segment_formats(kinetics_dir):
    (kinetics_dir / "train.csv").write_text("abseiling/a1.mp4 0\nbiking/b1.mp4 1\n")
    records, classes = read_kinetics_csv(kinetics_dir / "train.csv")
    assert [r.label for r in records] == [0, 1] and records[1].path == str(
        kinetics_dir / "biking/b1.mp4"
    )
    (kinetics_dir / "seg.csv").write_text(
        "path,start,end,label\nabseiling/a1.mp4,0.5,2.5,abseiling\nbiking/b1.mp4,6.0,9.0,biking\n"
    )
    records, classes = read_kinetics_csv(kinetics_dir / "seg.csv")
    assert classes == ["abseiling", "biking"] and (records[1].start_sec, records[1].end_sec) == (
        6.0,
        9.0,
    )
    (kinetics_dir / "bad.csv").write_text("a.mp4,1,2\n")
    with pytest.raises(ValueError, match=r"bad\.csv:1: expected"):
        read_kinetics_csv(kinetics_dir / "bad.csv")


def test_labeled_video_dataset_train_clips_stay_in_segment(kinetics_dir):
    (kinetics_dir / "seg.csv").write_text("biking/b1.mp4,6.0,9.0,1\n")
    ds = LabeledVideoDataset.from_csv(kinetics_dir / "seg.csv", clip_sampler=RandomClipSampler(1.0))
    torch.manual_seed(0)
    clip, label = ds[0]
    assert label == 1 and clip.shape == (3, 25, 272, 640) and clip.dtype == torch.float32
    assert clip.min() >= 0.0 and clip.max() <= 1.0
    # the clip is one of the 1-second windows inside [6, 9): find it among the real frames
    full, _ = read_clip(kinetics_dir / "biking/b1.mp4", 6.0, 9.0)
    first = (clip[:, 0].permute(1, 2, 0) * 255).round().to(torch.uint8)
    matches = [i for i in range(len(full)) if torch.equal(full[i], first)]
    assert matches and matches[0] <= 50


def test_multi_view_test_sampling(kinetics_dir):
    (kinetics_dir / "test.csv").write_text("abseiling/a1.mp4 0\nbiking/b1.mp4 1\n")
    ds = LabeledVideoDataset.from_csv(
        kinetics_dir / "test.csv",
        clip_sampler=ConstantClipsPerVideoSampler(1.0, clips_per_video=4),
        num_frames=4,
        num_crops=3,
        crop_size=128,
        return_index=True,
    )
    assert len(ds) == 2 * 4 * 3
    views = [ds[i] for i in range(12, 15)]  # video 1, clip 0, crops 0..2
    assert all(v[0].shape == (3, 4, 128, 128) and v[1] == 1 and v[2] == 1 for v in views)
    frame0, _ = read_clip(kinetics_dir / "biking/b1.mp4", 0.0, 1.0, num_frames=4)
    # 640x272 frames: 3 crops of 128 along the width, vertically centred (rows 72..200)
    for crop, left in zip(views, (0, 256, 512)):
        want = frame0[:, 72:200, left : left + 128].permute(3, 0, 1, 2).float() / 255
        assert torch.equal(crop[0], want)
    uniform = LabeledVideoDataset.from_csv(
        kinetics_dir / "test.csv", clip_sampler=UniformClipSampler(2.0)
    )
    assert len(uniform) == 2 + 5  # 4.0 s -> 2 clips, 10 s -> 5 clips


def test_ssv2_ucf_hmdb_readers(tmp_path):
    (tmp_path / "labels.json").write_text(
        json.dumps({"Holding something": "0", "Pushing something left": "1"})
    )
    (tmp_path / "train.json").write_text(
        json.dumps(
            [
                {
                    "id": "7",
                    "template": "Pushing [something] left",
                    "label": "pushing a cup left",
                    "placeholders": ["a cup"],
                },
                {
                    "id": "9",
                    "template": "Holding [something]",
                    "label": "holding a pen",
                    "placeholders": ["a pen"],
                },
            ]
        )
    )
    recs, classes = read_ssv2(tmp_path / "labels.json", tmp_path / "train.json", "/videos")
    assert [r.label for r in recs] == [1, 0] and recs[0].path == "/videos/7.webm"
    assert classes == ["Holding something", "Pushing something left"]

    (tmp_path / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    (tmp_path / "trainlist01.txt").write_text("Archery/v_Archery_g01_c01.avi 2\n")
    (tmp_path / "testlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\n")
    train, _ = read_ucf101_split(tmp_path / "trainlist01.txt", tmp_path / "classInd.txt", "/ucf")
    test, classes = read_ucf101_split(
        tmp_path / "testlist01.txt", tmp_path / "classInd.txt", "/ucf"
    )
    assert train[0].label == 1 and test[0].label == 0 and classes == ["ApplyEyeMakeup", "Archery"]
    assert test[0].path == "/ucf/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"

    splits = tmp_path / "hmdb_splits"
    splits.mkdir()
    (splits / "brush_hair_test_split1.txt").write_text("a.avi 1 \nb.avi 2 \nc.avi 0 \n")
    (splits / "cartwheel_test_split1.txt").write_text("d.avi 1 \n")
    train, classes = read_hmdb51_split(splits, "/hmdb", split=1, train=True)
    test, _ = read_hmdb51_split(splits, "/hmdb", split=1, train=False)
    assert classes == ["brush_hair", "cartwheel"] and [(r.path, r.label) for r in train] == [
        ("/hmdb/brush_hair/a.avi", 0),
        ("/hmdb/cartwheel/d.avi", 1),
    ]
    assert [r.path for r in test] == ["/hmdb/brush_hair/b.avi"]


def test_charades_frame_list(tmp_path, skimage_dir):
    frames = tmp_path / "frames" / "46GP8"
    frames.mkdir(parents=True)
    source = np.asarray(Image.open(skimage_dir / "coffee.png").convert("RGB"))
    lines = ["original_vido_id video_id frame_id path labels"]
    for i in range(12):
        Image.fromarray(np.roll(source, 5 * i, axis=1)).resize((64, 48)).save(
            frames / f"46GP8-{i + 1:06d}.jpg"
        )
        labels = '"3,7"' if i < 4 else ('""' if i < 8 else '"12"')
        lines.append(f"46GP8 0 {i} 46GP8/46GP8-{i + 1:06d}.jpg {labels}")
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    ds = CharadesFrameDataset(
        tmp_path / "train.csv", tmp_path / "frames", num_frames=4, sampling_rate=2, train=False
    )
    clip, target = ds[0]
    assert clip.shape == (3, 4, 48, 64) and target.shape == (157,)
    # centre clip = frames 2, 4, 6, 8; the labels of frames 2..8 are {3, 7} (2, 3), none, {12} (8)
    assert target.nonzero().flatten().tolist() == [3, 7, 12]
    first = np.array(Image.open(frames / "46GP8-000003.jpg").convert("RGB"))
    assert torch.equal((clip[:, 0] * 255).round().byte().permute(1, 2, 0), torch.from_numpy(first))
    (tmp_path / "nohead.csv").write_text('46GP8 0 0 x.jpg ""\n')
    with pytest.raises(ValueError, match="expected the header"):
        CharadesFrameDataset(tmp_path / "nohead.csv", tmp_path)


def test_ava_boxes_and_keyframes(tmp_path, carphone_mp4):
    shutil.copy(carphone_mp4, tmp_path / "vidA.mp4")
    (tmp_path / "ava_train.csv").write_text(
        "vidA,902,0.1,0.2,0.5,0.9,12,0\n"
        "vidA,902,0.1,0.2,0.5,0.9,80,0\n"
        "vidA,902,0.6,0.1,0.9,0.8,3,1\n"
        "vidA,903,0.1,0.2,0.5,0.9,12,0\n"
    )
    boxes = read_ava_boxes(tmp_path / "ava_train.csv")
    assert sorted(boxes) == [("vidA", 902), ("vidA", 903)]
    assert boxes[("vidA", 902)][0] == ([0.1, 0.2, 0.5, 0.9], [12, 80])
    ds = AVAKeyframeDataset(
        tmp_path / "ava_train.csv", tmp_path, clip_duration=1.0, num_frames=4, time_offset=900
    )
    clip, b, labels = ds[0]
    assert clip.shape == (3, 4, 144, 176) and b.shape == (2, 4) and labels.shape == (2, 80)
    assert labels[0].nonzero().flatten().tolist() == [11, 79] and labels[
        1
    ].nonzero().flatten().tolist() == [2]
    want, _ = read_clip(tmp_path / "vidA.mp4", 1.5, 2.5, num_frames=4)  # centred on 902 - 900 = 2 s
    assert torch.equal((clip * 255).round().byte().permute(1, 2, 3, 0), want)
    (tmp_path / "bad.csv").write_text("vidA,902,0.5,0.2,0.1,0.9,12,0\n")
    with pytest.raises(ValueError, match="not a normalised"):
        read_ava_boxes(tmp_path / "bad.csv")


def test_video_text_msrvtt_layout(tmp_path, moving_digits_dir):
    videos = sorted((moving_digits_dir / "videos").glob("*.mp4"))[:3]
    for i, v in enumerate(videos):
        shutil.copy(v, tmp_path / f"video{i}.mp4")
    info = {
        "videos": [
            {"video_id": f"video{i}", "split": "train" if i < 2 else "test"} for i in range(3)
        ],
        "sentences": [
            {"video_id": "video0", "caption": "a zero slides right", "sen_id": 0},
            {"video_id": "video0", "caption": "digit moving to the right", "sen_id": 1},
            {"video_id": "video1", "caption": "a zero again", "sen_id": 2},
            {"video_id": "video2", "caption": "test caption", "sen_id": 3},
        ],
    }
    (tmp_path / "videodatainfo.json").write_text(json.dumps(info))
    ds = VideoTextDataset(
        tmp_path / "videodatainfo.json", split="train", num_frames=4, caption_mode="all"
    )
    assert len(ds) == 2
    clip, captions = ds[0]
    assert clip.shape == (3, 4, 64, 64) and captions == [
        "a zero slides right",
        "digit moving to the right",
    ]
    test = VideoTextDataset(tmp_path / "videodatainfo.json", split="test", caption_mode="first")
    assert test[0][1] == "test caption"
    (tmp_path / "pairs.json").write_text(json.dumps([{"video": "video1.mp4", "caption": "x"}]))
    assert VideoTextDataset(tmp_path / "pairs.json")[0][1] == "x"


def test_image_text_jsonl(tmp_path, skimage_dir):
    shutil.copy(skimage_dir / "astronaut.png", tmp_path / "astronaut.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    lines = [
        {"image": "astronaut.png", "caption": "an astronaut"},
        {"image": str(skimage_dir / "coffee.png"), "text": "a cup of coffee"},
        {"image": "broken.jpg", "caption": "never seen"},
    ]
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    ds = ImageTextDataset(tmp_path / "pairs.jsonl", max_bad_fraction=0.5)
    image, text = ds[0]
    assert image.shape == (3, 512, 512) and text == "an astronaut"
    assert ds[1][1] == "a cup of coffee"
    image, text = ds[2]  # broken: replaced by the next good pair, and counted
    assert text == "an astronaut" and ds.skipped.count == 1
    (tmp_path / "bad.jsonl").write_text('{"img": "a.png"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        ImageTextDataset(tmp_path / "bad.jsonl")


def test_dataloader_with_train_transform(moving_digits_dir):
    ds = LabeledVideoDataset.from_csv(
        moving_digits_dir / "train.csv",
        clip_sampler=RandomClipSampler(1.5),
        transform=video_train_transform(
            8, crop_size=48, min_scale=52, max_scale=64, rand_augment=True
        ),
    )
    loader = DataLoader(
        ds, batch_size=8, num_workers=2, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    clips, labels = next(iter(loader))
    assert clips.shape == (8, 3, 8, 48, 48) and labels.dtype == torch.int64
    assert ds.classes == [str(i) for i in range(12)]
    assert os.path.basename(ds.records[0].path).endswith(".mp4")
