"""HiT recipes: typed configs for the ``tiny`` study (CPU, captioned moving digits) and the
``paper`` run (MSR-VTT 1k-A).

Only dataclasses live here (``paperzoo info`` imports this module; no torch). The runner is
:func:`paperzoo.hit.reproduce.run`.

Paper recipe. HiT (arXiv:2103.15049) reports MSR-VTT 1k-A t2v R@1 30.7 / R@10 73.2, v2t R@1
32.1. Its text could not be read from this machine: the encoder sizes, the optimizer and the
MoCo settings below are NOT verified. The text side is BERT-base (``text.bert_path``: a local
``save_pretrained`` folder or a hub-cache name); the video side is our 4-layer 512-wide
transformer over frames (the paper's is MMT-style over pre-extracted expert features; a
``video.input_dim > 0`` run takes such features instead of frames). Queue 65,536, momentum 0.999,
temperature 0.07 are MoCo's defaults; AdamW at 5e-5 (text) with batch 128 for 50 epochs of the
9k train list is a common setting of that period for BERT-based retrieval. The README's
"Sources" section says which number comes from where.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from paperzoo.core.config import DataConfig, OptimConfig, TrainerConfig
from paperzoo.train.video_config import MovingDigitsConfig, tiny_adamw, tiny_trainer

if TYPE_CHECKING:
    from paperzoo.train.study import Study

__all__ = [
    "MSRVTT_TRAIN_VIDEOS",
    "PAPER_RESULTS",
    "ActivityNetConfig",
    "EvalConfig",
    "HiTConfig",
    "HiTRecipeConfig",
    "LSMDCConfig",
    "MSRVTTConfig",
    "TextConfig",
    "VideoConfig",
    "paper_activitynet_config",
    "paper_config",
    "paper_lsmdc_config",
    "tiny_config",
    "tiny_study",
]

MSRVTT_TRAIN_VIDEOS = 9000  # the 1k-A split's train list
# MSR-VTT 1k-A (third-party tables; PAPERS.md marks them unverified).
PAPER_RESULTS = {"t2v_R@1": 30.7, "t2v_R@10": 73.2, "v2t_R@1": 32.1, "v2t_R@5": 62.7}


@dataclass
class HiTConfig:
    """The ``hit`` section: which levels are contrasted, and how.

    ``momentum_queues=False`` contrasts the query towers' embeddings within the (global) batch
    (the ablations); ``True`` is HiT's Momentum Cross-modal Contrast against the four queues.
    """

    levels: tuple[str, ...] = ("feature", "semantic")
    momentum_queues: bool = True
    dim: int = 256
    queue_size: int = 65536  # MoCo default, unverified for HiT
    momentum: float = 0.999  # MoCo default, unverified
    temperature: float = 0.07  # MoCo v1 default, unverified
    video_feature_layer: int = 0  # 0: depth // 2
    text_feature_layer: int = 0
    # Which level's similarity ranks at test: "semantic", or "sum" of both levels' cosines.
    retrieval_level: Literal["semantic", "sum"] = "semantic"


@dataclass
class TextConfig:
    """The ``text`` section: the BERT and its tokenizer.

    ``bert_path`` (paper): a folder written by ``save_pretrained`` (or a hub-cache name) with
    the BERT weights, config and tokenizer. Empty (tiny): a BERT built from ``hidden_size`` /
    ``num_layers`` with a WordPiece tokenizer of ``vocab_size`` trained on the train captions.
    """

    bert_path: str = ""
    tokenizer_path: str = ""  # default: bert_path
    max_length: int = 32
    vocab_size: int = 256
    lr_scale: float = 1.0  # text tower's lr relative to optim.lr


@dataclass
class VideoConfig:
    """The ``video`` section: clip sampling and sizes (frames for the paper's MSR-VTT run)."""

    num_frames: int = 16
    sampling_rate: int = 1  # tiny: stride between the decoded frames
    clip_seconds: float = 0.0  # paper: the window read per video (0: the whole video)
    crop_size: int = 224
    short_side: int = 224
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)
    input_dim: int = 0  # > 0: pre-extracted per-frame features instead of frames


@dataclass
class MSRVTTConfig:
    """File names under ``data.root`` (the MSR-VTT 1k-A layout of JSFusion / CLIP4Clip)."""

    json: str = "MSRVTT_data.json"
    train_list: str = "MSRVTT_train.9k.csv"
    test_list: str = "MSRVTT_JSFUSION_test.csv"
    video_dir: str = "videos"
    ext: str = ".mp4"


@dataclass
class ActivityNetConfig:
    """ActivityNet Captions paragraph retrieval under ``data.root``: the caption JSONs (train
    on ``train.json``, test on ``val_1.json``, the split of the CE / MMT protocol that HiT's
    tables follow: unverified) and the videos."""

    train_json: str = "train.json"
    test_json: str = "val_1.json"
    video_dir: str = "videos"
    ext: str = ".mp4"


@dataclass
class LSMDCConfig:
    """LSMDC under ``data.root``: the tab-separated annotation files (train, and the 1,000-clip
    public test of the LSMDC 2016 challenge, named as distributed) and ``<movie>/<clip>.avi``."""

    train_csv: str = "LSMDC16_annos_training.csv"
    test_csv: str = "LSMDC16_challenge_1000_publictect.csv"
    video_dir: str = "avi"
    ext: str = ".avi"


@dataclass
class EvalConfig:
    """The ``eval`` section. ``split``: "val" for choices, "test" read once for the numbers.

    Tiny study: a retrieval hit is a candidate of the query's *class* (digit x direction),
    since many videos share one caption meaning; clip-level numbers are reported besides."""

    split: Literal["val", "test"] = "test"
    batch_size: int = 64
    captions_per_video: int = 5  # tiny: paraphrases generated per video


@dataclass
class HiTRecipeConfig:
    """HiT training, then retrieval evaluation.

    ``data.dataset``: ``"moving_digits"`` (tiny, generated into the study's shared folder) or
    ``"msrvtt"`` / ``"activitynet"`` / ``"lsmdc"`` (``data.root`` holds the files of
    :class:`MSRVTTConfig` / :class:`ActivityNetConfig` / :class:`LSMDCConfig`). ``data.batch_size`` is
    per process; 0 means ``global_batch_size // world_size``.
    """

    seed: int = 0
    model: str = "hit_bert_base"
    global_batch_size: int = 128
    torch_threads: int = 0
    hit: HiTConfig = field(default_factory=HiTConfig)
    text: TextConfig = field(default_factory=TextConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    msrvtt: MSRVTTConfig = field(default_factory=MSRVTTConfig)
    activitynet: ActivityNetConfig = field(default_factory=ActivityNetConfig)
    lsmdc: LSMDCConfig = field(default_factory=LSMDCConfig)
    moving_digits: MovingDigitsConfig = field(default_factory=MovingDigitsConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def paper_config() -> HiTRecipeConfig:
    """HiT on MSR-VTT 1k-A (``--data ROOT --set text.bert_path=BERT``); unverified schedule."""
    steps_per_epoch = MSRVTT_TRAIN_VIDEOS // 128
    return HiTRecipeConfig(
        seed=0,
        model="hit_bert_base",
        global_batch_size=128,
        hit=HiTConfig(),
        text=TextConfig(bert_path="bert-base-uncased", max_length=32, lr_scale=1.0),
        video=VideoConfig(num_frames=16, clip_seconds=0.0, crop_size=224, short_side=224),
        trainer=TrainerConfig(
            max_steps=50 * steps_per_epoch,
            checkpoint_every=steps_per_epoch,
            keep_checkpoints=2,
            log_every=20,
        ),
        optim=OptimConfig(
            name="adamw", lr=5e-5, weight_decay=0.01, schedule="cosine", warmup_steps=500
        ),
        data=DataConfig(dataset="msrvtt", root="", batch_size=0, num_workers=8, image_size=224),
        eval=EvalConfig(split="test", batch_size=64),
    )


# Train-set sizes of the two other benchmarks (the data sets' own papers; the schedule's epochs
# are counted in them).
ACTIVITYNET_TRAIN_VIDEOS = 10009  # ActivityNet Captions train.json
LSMDC_TRAIN_CLIPS = 101079  # LSMDC 2016 training annotations
# Third-party tables of HiT's results (PAPERS.md; not read in the paper itself): t2v R@1.
ACTIVITYNET_RESULTS = {"t2v_R@1": 29.6}
LSMDC_RESULTS = {"t2v_R@1": 14.0}


def paper_activitynet_config() -> HiTRecipeConfig:
    """HiT on ActivityNet Captions paragraph retrieval (``--data ROOT --set text.bert_path=``).

    Every value is unverified (the paper's experimental settings could not be read from this
    machine): the MSR-VTT recipe's encoders, MoCo settings and optimizer; paragraphs need a
    longer text (max_length 128, BERT's 512 allows more) and a video needs more frames over
    its minutes (32, as the paragraph-retrieval works of the period, unverified).
    """
    cfg = paper_config()
    steps_per_epoch = ACTIVITYNET_TRAIN_VIDEOS // cfg.global_batch_size
    cfg.data.dataset = "activitynet"
    cfg.text.max_length = 128  # unverified
    cfg.video.num_frames = 32  # unverified
    cfg.trainer.max_steps = 50 * steps_per_epoch  # unverified: 50 epochs as MSR-VTT
    cfg.trainer.checkpoint_every = steps_per_epoch
    return cfg


def paper_lsmdc_config() -> HiTRecipeConfig:
    """HiT on LSMDC (the 1,000-clip public test; ``--data ROOT --set text.bert_path=``).

    Every value is unverified (see :func:`paper_activitynet_config`): the MSR-VTT recipe's
    encoders, MoCo settings, optimizer, 16 frames and 32 text tokens (LSMDC's clips and
    sentences are short, like MSR-VTT's), over fewer epochs of its ten times larger train set
    (5, unverified)."""
    cfg = paper_config()
    steps_per_epoch = LSMDC_TRAIN_CLIPS // cfg.global_batch_size
    cfg.data.dataset = "lsmdc"
    cfg.trainer.max_steps = 5 * steps_per_epoch  # unverified
    cfg.trainer.checkpoint_every = steps_per_epoch
    return cfg


def tiny_config() -> HiTRecipeConfig:
    """Full HiT on captioned moving digits (5 digits x 4 directions), CPU-sized.

    The protocol (README): 8-frame 32 px clips, batch 32, a 4 x 64 video transformer and a
    4 x 64 BERT, 250 AdamW steps; val for the choices, test read once.
    """
    return HiTRecipeConfig(
        seed=0,
        model="hit_tiny",
        global_batch_size=32,
        torch_threads=1,
        hit=HiTConfig(dim=64, queue_size=256, momentum=0.99, temperature=0.07),
        text=TextConfig(bert_path="", max_length=16, vocab_size=200),
        video=VideoConfig(num_frames=8, sampling_rate=1, crop_size=32, short_side=32),
        moving_digits=MovingDigitsConfig(
            num_videos_per_class=30,
            num_directions=4,
            digits=(0, 1, 2, 3, 4),
            num_frames=16,
            size=32,
            speed=2,
            val_fraction=0.2,
            test_fraction=0.2,
        ),
        trainer=tiny_trainer(250),
        optim=tiny_adamw(2e-3),
        data=DataConfig(
            dataset="moving_digits", root="", batch_size=0, num_workers=0, image_size=32
        ),
        # The choices ran with eval.split=val; the reported run reads test once.
        eval=EvalConfig(split="test", batch_size=128, captions_per_video=5),
    )


# lr per arm, chosen on val at seed 0 from {1e-3, 2e-3} by val mean_R@1 (the README has the
# grid's numbers).
TINY_ARMS = {
    "semantic_inbatch": ('hit.levels=["semantic"]', "hit.momentum_queues=false", "optim.lr=1e-3"),
    "hierarchical_inbatch": ("hit.momentum_queues=false", "optim.lr=2e-3"),
    "hit": ("optim.lr=2e-3",),
}


def tiny_study() -> Study:
    """The paper's ablation on moving digits: three arms x seeds 0-2, same steps and batch.

    Claim (declared before the final run, test split, 3 seeds): full HiT (both levels, momentum
    queues) beats semantic-level in-batch contrast on the mean of class-level t2v and v2t R@1.
    """
    from paperzoo.train.study import Arm, Claim, Study

    arms = (
        Arm("semantic_inbatch", TINY_ARMS["semantic_inbatch"],
            description="(1) semantic level only, in-batch negatives"),
        Arm("hierarchical_inbatch", TINY_ARMS["hierarchical_inbatch"],
            description="(2) + feature level, in-batch negatives"),
        Arm("hit", TINY_ARMS["hit"],
            description="(3) HiT: both levels, momentum encoders and the four queues"),
    )  # fmt: skip
    claims = (
        Claim("full HiT beats semantic-only in-batch contrast (mean R@1 of t2v and v2t)",
              metric="mean_R@1", arm="hit", baseline="semantic_inbatch", rule="better_mean"),
        Claim("the feature level helps in-batch contrast (mean R@1)",
              metric="mean_R@1", arm="hierarchical_inbatch", baseline="semantic_inbatch",
              rule="better_mean"),
    )  # fmt: skip
    return Study(
        arms=arms,
        seeds=(0, 1, 2),
        metrics=("mean_R@1", "t2v_R@1", "v2t_R@1", "t2v_R@5", "clip_t2v_R@1",
                 "queue_false_negative", "batch_false_negative"),
        claims=claims,
    )  # fmt: skip
