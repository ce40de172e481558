"""End to end through `paperzoo reproduce hit`: the paper recipe on a small MSR-VTT-layout folder
(real mp4 files, the caption JSON, the 9k and 1k-A lists, a tiny BERT and tokenizer saved with
save_pretrained and loaded from that path), alone and under a 2-process torchrun (gloo); and
every arm of the tiny study for a few steps. The class-level metric is checked by hand."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from paperzoo.hit.reproduce import class_retrieval_metrics

PAPERZOO = [sys.executable, "-m", "paperzoo.core.cli"]
QUICK = [
    "trainer.max_steps=2", "trainer.checkpoint_every=2", "trainer.log_every=1",
    "trainer.progress=false", "trainer.tensorboard=false", "trainer.device=cpu",
    "trainer.amp=off", "data.num_workers=0", "eval.batch_size=4",
]  # fmt: skip
PAPER = [
    "global_batch_size=4", "hit.queue_size=8", "hit.dim=16", "video.num_frames=4",
    "video.crop_size=32", "video.short_side=32", "optim.warmup_steps=0",
]  # fmt: skip


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [*PAPERZOO, *args], capture_output=True, text=True, env=env, timeout=900, cwd=cwd
    )
    assert out.returncode == 0, f"stdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-5000:]}"
    return out


def _sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


@pytest.fixture(scope="module")
def msrvtt(tmp_path_factory) -> tuple[Path, Path]:
    """A 6-video MSR-VTT 1k-A folder and a tiny BERT folder."""
    from transformers import BertConfig, BertModel

    from paperzoo.data.synthetic import write_moving_digits
    from paperzoo.hit.data import train_wordpiece_tokenizer

    tmp = tmp_path_factory.mktemp("msrvtt")
    src = tmp / "src"
    write_moving_digits(src, num_videos_per_class=3, num_directions=2, digits=(0, 1),
                        num_frames=8, size=32, val_fraction=0.0)  # fmt: skip
    root = tmp / "MSRVTT"
    (root / "videos").mkdir(parents=True)
    files = sorted((src / "videos").glob("*.mp4"))[:6]
    sentences = []
    for i, f in enumerate(files):
        shutil.copy(f, root / "videos" / f"video{i}.mp4")
        for j, text in enumerate((f"a digit moving number {i}", f"clip {i} of a digit")):
            sentences.append({"video_id": f"video{i}", "caption": text, "sen_id": 2 * i + j})
    videos = [{"video_id": f"video{i}", "split": "train" if i < 4 else "test"} for i in range(6)]
    (root / "MSRVTT_data.json").write_text(json.dumps({"videos": videos, "sentences": sentences}))
    (root / "MSRVTT_train.9k.csv").write_text(
        "video_id\n" + "".join(f"video{i}\n" for i in range(4))
    )
    (root / "MSRVTT_JSFUSION_test.csv").write_text(
        "key,vid_key,video_id,sentence\n"
        + "".join(
            f"ret{k},msr{i},video{i},a digit moving number {i}\n" for k, i in enumerate(range(2, 6))
        )
    )
    bert = tmp / "bert"
    tok = train_wordpiece_tokenizer([s["caption"] for s in sentences], vocab_size=60)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=32)  # fmt: skip
    BertModel(config, add_pooling_layer=False).save_pretrained(bert)
    tok.save_pretrained(bert)
    return root, bert


def test_paper_recipe_end_to_end_on_msrvtt_layout(msrvtt, tmp_path):
    root, bert = msrvtt
    out = tmp_path / "run"
    _cli("reproduce", "hit", "--recipe", "paper", "--data", str(root), "--out", str(out),
         *_sets(QUICK + PAPER + [f"text.bert_path={bert}"]))  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    m = summary["metrics"]
    assert summary["steps"] == 2
    for key in ("t2v_R@1", "t2v_R@5", "t2v_R@10", "t2v_MdR", "t2v_MnR", "v2t_R@1", "mean_R@1"):
        assert key in m
    assert 1.0 <= m["t2v_MdR"] <= 4.0  # four 1k-A test videos
    assert summary["extra"]["vocab_size"] > 5 and not summary["extra"]["hit_is_class"]
    assert (out / "checkpoints").is_dir()
    _cli("reproduce", "hit", "--recipe", "paper", "--data", str(root), "--out", str(out),
         "--resume", *_sets(QUICK + PAPER + [f"text.bert_path={bert}", "trainer.max_steps=3",
                                             "trainer.checkpoint_every=3"]))  # fmt: skip
    assert json.loads((out / "summary.json").read_text())["steps"] == 3


@pytest.mark.slow
def test_paper_recipe_under_torchrun_two_processes(msrvtt, tmp_path):
    root, bert = msrvtt
    out = tmp_path / "ddp"
    _cli("reproduce", "hit", "--recipe", "paper", "--data", str(root), "--out", str(out),
         "--nproc", "2", *_sets(QUICK + PAPER + [f"text.bert_path={bert}"]))  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["extra"]["per_process_batch"] == 2


@pytest.mark.slow
def test_every_tiny_arm_runs_and_the_study_decides(tmp_path):
    tiny = [
        "moving_digits.num_videos_per_class=5", "moving_digits.digits=[0,1]",
        "global_batch_size=8", "hit.queue_size=16", "eval.captions_per_video=2",
    ]  # fmt: skip
    _cli("reproduce", "hit", "--out", str(tmp_path), "--seeds", "0", *_sets(QUICK + tiny))
    study = json.loads((tmp_path / "summary.json").read_text())
    assert set(study["arms"]) == {"semantic_inbatch", "hierarchical_inbatch", "hit"}
    assert len(study["claims"]) == 2
    hit = study["arms"]["hit"]["metrics"]
    assert "queue_false_negative" in hit and "mean_R@1" in hit
    assert "batch_false_negative" in study["arms"]["semantic_inbatch"]["metrics"]


def test_class_level_metric_counts_a_same_class_candidate_as_a_hit():
    labels = torch.tensor([0, 0, 1, 1])
    # text 0's best video is video 1 (same class 0, another clip): a class-level hit.
    sim = torch.tensor([
        [0.1, 0.9, 0.0, 0.0],
        [0.0, 0.2, 0.8, 0.0],  # text 1 (class 0) prefers a class-1 video: a miss
        [0.0, 0.0, 0.0, 0.5],
        [0.0, 0.0, 0.5, 0.1],
    ])  # fmt: skip
    m = class_retrieval_metrics(sim, labels, labels)
    assert m["t2v_R@1"] == 75.0 and m["t2v_MnR"] == 1.25
    # video -> text: video 2 (class 1) scores text 1 (class 0) highest: a miss.
    assert m["v2t_R@1"] == 75.0
    const = class_retrieval_metrics(torch.zeros(4, 4), labels, labels)
    assert const["t2v_R@1"] == 0.0  # ties count against the model
