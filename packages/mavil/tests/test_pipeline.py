"""The paper recipe's whole pipeline on a few generated mp4 files with sound, listed in
AudioSet's and VGGSound's formats: stage 1, stage 2, audio-only, video-only and joint
fine-tuning, mAP / top-1, and loading what the training wrote."""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import pytest
import torch

from paperzoo.core import get_recipe
from paperzoo.core.run import RunContext
from paperzoo.mavil.convert import load_checkpoint
from paperzoo.mavil.model import build_classifier, build_pretraining_model
from paperzoo.mavil.recipes import AVDataFiles, pipeline_test_config
from paperzoo.mavil.reproduce import run


@pytest.fixture
def audioset_root(av_digits_root) -> Path:
    return av_digits_root[0]


def test_paper_pipeline_audioset(audioset_root, tmp_path):
    cfg = pipeline_test_config(str(audioset_root))
    cfg = dataclasses.replace(cfg, files=AVDataFiles(train_list="train_segments.csv",
                                                     eval_list="test_segments.csv"))  # fmt: skip
    ctx = RunContext(out_dir=tmp_path / "run", recipe=get_recipe("mavil_paper"), progress=False)
    result = run(cfg, ctx)
    for modality in ("audio", "video", "joint"):
        assert 0.0 <= result.metrics[f"{modality}_mAP"] <= 100.0
        assert (tmp_path / "run" / f"finetune_{modality}" / "model.safetensors").is_file()
    assert math.isfinite(result.metrics["pretrain_loss"])
    assert result.steps == 2 + 2 + 3 * 2
    # What our training wrote loads by name: stage 2 into a classifier (encoders + fusion),
    # and the joint classifier strictly.
    clf = build_classifier("test", num_classes=20)
    stage2 = tmp_path / "run" / "stage2" / "model.safetensors"
    load_checkpoint(clf, stage2)
    from safetensors.torch import load_file

    saved = load_file(str(stage2))
    assert torch.equal(clf.audio_encoder.blocks[0].attn.qkv.weight,
                       saved["audio_encoder.blocks.0.attn.qkv.weight"])  # fmt: skip
    assert torch.equal(clf.fusion_blocks[0].mlp.fc1.weight, saved["fusion_blocks.0.mlp.fc1.weight"])
    load_checkpoint(build_pretraining_model("test", stage=2), stage2)
    load_checkpoint(build_classifier("test", num_classes=20),
                    tmp_path / "run" / "finetune_joint" / "model.safetensors")  # fmt: skip


def test_paper_pipeline_vggsound(audioset_root, tmp_path):
    rows = []
    for split, tag in (("train", "train"), ("test", "test")):
        with open(audioset_root / f"{split}_segments.csv") as f:
            for line in f:
                if line.startswith("#"):
                    continue
                ytid, _, _, mid = [c.strip().strip('"') for c in line.split(",", 3)]
                rows.append((ytid, 0, f"class {mid}", tag))
    with open(tmp_path / "vggsound.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    (tmp_path / "videos").symlink_to(audioset_root / "videos")
    cfg = pipeline_test_config(str(tmp_path))
    cfg = dataclasses.replace(
        cfg, stage="scratch",
        files=AVDataFiles(train_list="vggsound.csv", eval_list="vggsound.csv", class_index="",
                          file_name="{ytid}_{start}.mp4"),
        finetune=dataclasses.replace(cfg.finetune, modalities="joint"),
        data=dataclasses.replace(cfg.data, dataset="vggsound"),
    )  # fmt: skip
    ctx = RunContext(out_dir=tmp_path / "run", recipe=get_recipe("mavil_paper_vggsound"),
                     progress=False)  # fmt: skip
    result = run(cfg, ctx)
    assert 0.0 <= result.metrics["joint_top1"] <= 100.0


def test_missing_data_fails_before_training(tmp_path):
    cfg = pipeline_test_config(str(tmp_path / "nowhere"))
    ctx = RunContext(out_dir=tmp_path / "run", recipe=get_recipe("mavil_paper"), progress=False)
    with pytest.raises(FileNotFoundError):
        run(cfg, ctx)
