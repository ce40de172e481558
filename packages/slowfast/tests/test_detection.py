"""The AVA detector end to end: paperzoo.data's AVA box CSV dataset on real mp4 files,
:func:`ava_collate`, the RoI head and the BCE objective."""

import torch
from torch.utils.data import DataLoader

from paperzoo.slowfast import model as models
from paperzoo.slowfast.method import ActionDetection, ava_collate


def test_ava_collate_scales_boxes_to_pixels():
    clip = torch.zeros(3, 4, 48, 64)  # (C, T, H, W): W=64, H=48
    items = [
        (clip, torch.tensor([[0.0, 0.5, 0.5, 1.0]]), torch.tensor([[1.0, 0.0]])),
        (
            clip,
            torch.tensor([[0.25, 0.0, 0.75, 0.5], [0.0, 0.0, 1.0, 1.0]]),
            torch.tensor([[0.0, 1.0], [1.0, 1.0]]),
        ),
    ]
    clips, boxes, labels = ava_collate(items)
    assert clips.shape == (2, 3, 4, 48, 64)
    expected = [[0, 0, 24, 32, 48], [1, 16, 0, 48, 24], [1, 0, 0, 64, 48]]
    assert boxes.tolist() == expected
    assert labels.tolist() == [[1, 0], [0, 1], [1, 1]]


def test_detector_trains_on_ava_style_data(tmp_path):
    from paperzoo.data.datasets import AVAKeyframeDataset
    from paperzoo.data.synthetic import write_moving_digits

    write_moving_digits(
        tmp_path, num_videos_per_class=2, num_directions=2, digits=(0,), val_fraction=0.5, seed=0
    )
    videos = sorted(p.stem for p in (tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 4
    rows = []
    for i, video in enumerate(videos):  # two people per keyframe, 1-based action ids of 5
        rows.append(f"{video},1,0.10,0.10,0.60,0.70,{1 + i % 5},0")
        rows.append(f"{video},1,0.40,0.30,0.95,0.90,{1 + (i + 2) % 5},1")
        rows.append(f"{video},1,0.40,0.30,0.95,0.90,{1 + (i + 3) % 5},1")  # a second action
    csv = tmp_path / "ava_train.csv"
    csv.write_text("\n".join(rows) + "\n")
    dataset = AVAKeyframeDataset(
        csv, tmp_path / "videos", clip_duration=2.0, num_frames=8, num_classes=5
    )
    assert len(dataset) == 4
    clips, boxes, labels = next(iter(DataLoader(dataset, batch_size=4, collate_fn=ava_collate)))
    assert clips.shape == (4, 3, 8, 64, 64) and boxes.shape == (8, 5) and labels.shape == (8, 5)
    assert labels.sum().item() == 12

    torch.manual_seed(0)
    detector = models.slowfast_tiny(
        head="roi", num_classes=5, stage_spatial_strides=(1, 2, 2, 1), stage_dilations=(1, 1, 1, 2)
    )
    method = ActionDetection(detector)
    optimizer = torch.optim.AdamW(method.parameters(), lr=3e-3)
    losses = []
    for step in range(25):
        loss = method.training_step((clips, boxes, labels), step)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 0.6  # BCE of near-zero logits is log 2
    assert losses[-1] < 0.5 * losses[0]
    method.eval()
    with torch.no_grad():
        scores = method(clips, boxes).sigmoid()
    assert ((scores > 0.5) == labels.bool()).float().mean() > 0.9
