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


def _tiny_bert(folder: Path, texts: list[str]) -> None:
    from transformers import BertConfig, BertModel

    from paperzoo.hit.data import train_wordpiece_tokenizer

    tok = train_wordpiece_tokenizer(texts, vocab_size=60)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=32)  # fmt: skip
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    tok.save_pretrained(folder)


def _clips(tmp: Path, n: int) -> list[Path]:
    from paperzoo.data.synthetic import write_moving_digits

    write_moving_digits(tmp / "src", num_videos_per_class=3, num_directions=2, digits=(0, 1),
                        num_frames=8, size=32, val_fraction=0.0)  # fmt: skip
    return sorted((tmp / "src" / "videos").glob("*.mp4"))[:n]


def _run_benchmark(recipe: str, root: Path, bert: Path, out: Path) -> dict:
    _cli("reproduce", "hit", "--recipe", recipe, "--data", str(root), "--out", str(out),
         *_sets(QUICK + PAPER + [f"text.bert_path={bert}", "text.max_length=16"]))  # fmt: skip
    return json.loads((out / "summary.json").read_text())


def test_activitynet_paragraph_recipe_end_to_end(tmp_path):
    root = tmp_path / "anet"
    (root / "videos").mkdir(parents=True)
    splits: dict[str, dict] = {"train.json": {}, "val_1.json": {}}
    for i, f in enumerate(_clips(tmp_path, 6)):
        shutil.copy(f, root / "videos" / f"v_clip{i}.mp4")
        splits["train.json" if i < 4 else "val_1.json"][f"v_clip{i}"] = {
            "duration": 1.0, "timestamps": [[0.5, 1.0], [0.0, 0.5]],
            "sentences": [f"then digit {i} moves.", f"a digit {i} appears."],
        }  # fmt: skip
    for name, data in splits.items():
        (root / name).write_text(json.dumps(data))
    _tiny_bert(tmp_path / "bert", [s for d in splits.values() for v in d.values()
                                   for s in v["sentences"]])  # fmt: skip
    summary = _run_benchmark("paper_activitynet", root, tmp_path / "bert", tmp_path / "run")
    assert summary["steps"] == 2 and not summary["extra"]["hit_is_class"]
    assert 1.0 <= summary["metrics"]["t2v_MdR"] <= 2.0  # two val_1 paragraphs


def test_lsmdc_recipe_end_to_end(tmp_path):
    root = tmp_path / "lsmdc"
    rows: dict[str, list[str]] = {"LSMDC16_annos_training.csv": [],
                                  "LSMDC16_challenge_1000_publictect.csv": []}  # fmt: skip
    for i, f in enumerate(_clips(tmp_path, 6)):
        clip = f"0001_Movie_{i:02d}.00.00.000-00.00.01.000"
        (root / "avi" / "0001_Movie").mkdir(parents=True, exist_ok=True)
        shutil.copy(f, root / "avi" / "0001_Movie" / f"{clip}.avi")  # PyAV reads by content
        name = "LSMDC16_annos_training.csv" if i < 4 else "LSMDC16_challenge_1000_publictect.csv"
        rows[name].append(f"{clip}\t0\t1\t0\t1\tSOMEONE watches digit {i}.")
    for name, lines in rows.items():
        (root / name).write_text("\n".join(lines) + "\n")
    _tiny_bert(tmp_path / "bert", [line.split("\t")[-1] for v in rows.values() for line in v])
    summary = _run_benchmark("paper_lsmdc", root, tmp_path / "bert", tmp_path / "run")
    assert summary["steps"] == 2
    assert 1.0 <= summary["metrics"]["t2v_MdR"] <= 2.0  # two test clips
