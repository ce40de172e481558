"""Generative-model metrics: Frechet distance (FID), improved precision/recall, Inception Score.

- Frechet distance between two Gaussians fitted to features (Heusel et al., "GANs Trained by a
  Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017,
  arXiv:1706.08500; github.com/bioinf-jku/TTUR), computed as pytorch-fid
  (github.com/mseitzer/pytorch-fid ``calculate_frechet_distance``) and ADM's evaluator
  (github.com/openai/guided-diffusion ``evaluations/evaluator.py``) do: ``scipy.linalg.sqrtm``
  of ``sigma1 @ sigma2``, retried with ``eps * I`` added to both covariances when the product is
  singular, a negligible imaginary part dropped and a large one an error.
- :func:`fid_inception`: the FID Inception network (TF ``pt_inception-2015-12-05`` weights,
  pool3 2048-d features) as torch-fidelity defines it (github.com/toshas/torch-fidelity
  ``FeatureExtractorInceptionV3``: the FID variants of the Inception blocks and TF1's bilinear
  resize to 299), loaded only from a local file, never downloaded. Needs the ``fid`` extra.
- Reference statistics in ADM's ``.npz`` layout (``mu``, ``sigma``):
  :func:`load_reference_statistics`, :func:`save_reference_statistics`.
- :func:`precision_recall`: improved precision and recall (Kynkaanniemi, Karras, Laine,
  Lehtinen, Aila, "Improved Precision and Recall Metric for Assessing Generative Models",
  NeurIPS 2019, arXiv:1904.06991; github.com/kynkaat/improved-precision-and-recall-metric).
- :func:`inception_score`: Salimans et al., "Improved Techniques for Training GANs", NeurIPS
  2016, arXiv:1606.03498; github.com/openai/improved-gan ``inception_score/model.py``.

Importing this module imports neither torch nor scipy; each function imports what it needs.
"""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "FID_WEIGHTS_NAME",
    "FID_WEIGHTS_URLS",
    "feature_statistics",
    "fid_against_reference",
    "fid_inception",
    "frechet_distance",
    "frechet_distance_from_features",
    "inception_score",
    "load_reference_statistics",
    "precision_recall",
    "save_reference_statistics",
]

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
# pytorch-fid publishes the converted TF weights under FID_WEIGHTS_NAME; torch-fidelity under its
# own name with the same hash suffix. Either loads (the state-dict layout is torchvision's
# Inception3 with 1008 classes and no aux head).
FID_WEIGHTS_URLS = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth",
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth",
)
_FID_EXTRA = "pip install 'paperzoo-train[fid]'"


# --------------------------------------------------------------------------- Frechet distance


def _float64(x: Any, name: str) -> np.ndarray:
    """A numpy float64 copy of an array or tensor (detached, on the CPU)."""
    if hasattr(x, "detach"):  # a torch tensor; checked by duck type so torch is not imported
        x = x.detach().cpu().double().numpy()
    array = np.asarray(x, dtype=np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return array


def _sqrtm(a: np.ndarray) -> np.ndarray:
    try:
        from scipy import linalg
    except ImportError as err:  # pragma: no cover - scipy comes with the fid extra
        raise ImportError(f"the Frechet distance needs scipy: {_FID_EXTRA}") from err
    # No disp=False (pytorch-fid passes it): SciPy 1.16 deprecated it and 1.18 removed it. A
    # failed square root shows up as non-finite entries, which the caller checks.
    with np.errstate(all="ignore"):
        return linalg.sqrtm(a)


def feature_statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of features: (N, D) array or tensor -> mu (D,), sigma (D, D) float64.

    The covariance is ``numpy.cov(features, rowvar=False)`` (unbiased, N - 1), as pytorch-fid,
    torch-fidelity and ADM's evaluator compute it.
    """
    f = _float64(features, "features")
    if f.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {f.shape}")
    if f.shape[0] < 2:
        raise ValueError(f"the covariance of {f.shape[0]} sample(s) is undefined: need N >= 2")
    mu = f.mean(axis=0)
    sigma = np.atleast_2d(np.cov(f, rowvar=False))
    return mu, sigma


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, *, eps: float = 1e-6) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2))``; mu (D,), sigma (D, D),
    arrays or tensors, computed in float64. When ``sigma1 @ sigma2`` is singular (its square
    root is not finite) ``eps`` is added to both diagonals and the root retried, with a warning.
    An imaginary part of the root's diagonal above 1e-3 is a ValueError; a smaller one, round-off,
    is dropped.
    """
    # Written here, not called from a library: torch-fidelity (0.4) takes the trace through
    # eigenvalues of sigma1 @ sigma2 without the singular-product retry or the imaginary-part
    # check, and pytorch-fid's calculate_frechet_distance passes sqrtm's disp=False, which
    # SciPy 1.18 (in our lock for Python >= 3.12) no longer accepts. It follows pytorch-fid's
    # algorithm (the eps retry and the imaginary-part tolerance included).
    m1, m2 = np.atleast_1d(_float64(mu1, "mu1")), np.atleast_1d(_float64(mu2, "mu2"))
    s1, s2 = np.atleast_2d(_float64(sigma1, "sigma1")), np.atleast_2d(_float64(sigma2, "sigma2"))
    if m1.ndim != 1 or m1.shape != m2.shape:
        raise ValueError(
            f"mu1 and mu2 must be vectors of one length, got {m1.shape} and {m2.shape}"
        )
    d = m1.shape[0]
    if s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"sigma1 and sigma2 must be ({d}, {d}) for {d}-d means, got {s1.shape} and {s2.shape}"
        )
    diff = m1 - m2
    covmean = _sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        warnings.warn(
            f"Frechet distance: sigma1 @ sigma2 is singular; adding {eps} to the diagonal of "
            "both covariances (as pytorch-fid does). Too few samples for the feature dimension?",
            RuntimeWarning,
            stacklevel=2,
        )
        offset = np.eye(d) * eps
        covmean = _sqrtm((s1 + offset) @ (s2 + offset))
        if not np.isfinite(covmean).all():
            raise ValueError("Frechet distance: sqrt(sigma1 @ sigma2) is not finite even with eps")
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            largest = float(np.max(np.abs(covmean.imag)))
            raise ValueError(
                f"Frechet distance: sqrt(sigma1 @ sigma2) has an imaginary component of {largest:.3g}; "
                "the covariances are not positive semi-definite or are badly conditioned "
                "(too few samples for the feature dimension?)"
            )
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def frechet_distance_from_features(features1: Any, features2: Any, *, eps: float = 1e-6) -> float:
    """Frechet distance between the Gaussians fitted to (N1, D) and (N2, D) features (FID on
    Inception pool3 features)."""
    mu1, sigma1 = feature_statistics(features1)
    mu2, sigma2 = feature_statistics(features2)
    return frechet_distance(mu1, sigma1, mu2, sigma2, eps=eps)


# ---------------------------------------------------------------- ADM reference statistics


def load_reference_statistics(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(mu, sigma)`` float64 from an ADM-style ``.npz`` reference batch holding ``mu`` and ``sigma``.

    openai/guided-diffusion's reference batches (``VIRTUAL_imagenet256_labeled.npz``) store the
    pool3 statistics as ``mu`` / ``sigma`` next to the images (``arr_0``, uint8 (N, H, W, 3)) and
    the spatial ones (``mu_s`` / ``sigma_s``). A file with images only is an error that names its
    keys: compute features with :func:`fid_inception`, then :func:`feature_statistics`.
    """
    with np.load(Path(path), allow_pickle=False) as npz:
        keys = sorted(npz.files)
        if "mu" not in keys or "sigma" not in keys:
            hint = (
                " It holds images (arr_0): run them through fid_inception(), take "
                "feature_statistics() and save_reference_statistics()."
                if "arr_0" in keys
                else ""
            )
            raise KeyError(
                f"{path} has no 'mu' and 'sigma' arrays (found keys {keys}); reference statistics "
                f"are stored as ADM's evaluator writes them.{hint}"
            )
        mu = np.asarray(npz["mu"], dtype=np.float64)
        sigma = np.asarray(npz["sigma"], dtype=np.float64)
    _check_statistics(mu, sigma, str(path))
    return mu, sigma


def save_reference_statistics(path: str | os.PathLike, mu: Any, sigma: Any) -> None:
    """Write ``mu`` (D,) and ``sigma`` (D, D) as an ``.npz`` in ADM's layout, atomically.

    The file is written to a temporary name in the same folder and renamed over ``path``, so a
    reader never sees half a file. ``path`` is used as given (no ``.npz`` is appended).
    """
    mu = _float64(mu, "mu")
    sigma = _float64(sigma, "sigma")
    _check_statistics(mu, sigma, "the statistics to save")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, mu=mu, sigma=sigma)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_statistics(mu: np.ndarray, sigma: np.ndarray, where: str) -> None:
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(
            f"{where}: mu must be (D,) and sigma (D, D), got {mu.shape} and {sigma.shape}"
        )


# ------------------------------------------------------------------ the FID Inception network


@functools.cache
def _fid_inception_class() -> type:
    import torch
    from torch import nn

    class FIDInceptionV3(nn.Module):
        """torch-fidelity's FID Inception with one output: images (B, 3, H, W) -> features.

        uint8 images in [0, 255] go in as they are; float images must be in [0, 1] and are
        rounded to uint8 first (what saving them as PNG does), since the network was defined on
        8-bit images. Any H, W: the network resizes to 299 x 299 as TF1 did.
        """

        def __init__(self, extractor: nn.Module) -> None:
            super().__init__()
            self.extractor = extractor

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            if images.ndim != 4 or images.shape[1] != 3:
                raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
            if images.dtype != torch.uint8:
                if not images.is_floating_point():
                    raise ValueError(f"images must be uint8 or float, got {images.dtype}")
                low, high = images.min().item(), images.max().item()
                if low < -1e-3 or high > 1 + 1e-3:
                    raise ValueError(
                        f"float images must be in [0, 1], got values in [{low:.3g}, {high:.3g}]; "
                        "pass uint8 for [0, 255] images, or (x + 1) / 2 for [-1, 1] ones"
                    )
                images = (images.float().clamp(0, 1) * 255).round().to(torch.uint8)
            (features,) = self.extractor(images)
            return features

    return FIDInceptionV3


def fid_inception(
    weights_path: str | os.PathLike,
    *,
    features: str = "2048",
    internal_dtype: str | None = None,
) -> nn.Module:
    """The FID Inception network from a local ``pt_inception-2015-12-05-6726825d.pth``.

    Returns an eval-mode, frozen module on the CPU mapping images (B, 3, H, W), uint8 in
    [0, 255] or float in [0, 1], to float32 features: ``"2048"`` (pool3, the FID / KID /
    precision-recall features, (B, 2048)) by default, or any other output torch-fidelity's
    ``FeatureExtractorInceptionV3`` provides (``"logits_unbiased"`` (B, 1008) for the Inception
    Score). ``internal_dtype="float64"`` runs the network in double precision (torch-fidelity
    0.4). The weights are read from ``weights_path`` only; nothing is downloaded.
    """
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"FID Inception weights not found at {path}. Download {FID_WEIGHTS_NAME} from "
            f"{FID_WEIGHTS_URLS[0]} (torch-fidelity's copy: {FID_WEIGHTS_URLS[1]}) and pass its path"
        )
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as err:
        raise ImportError(f"fid_inception needs torch-fidelity: {_FID_EXTRA}") from err
    import pickle

    import torch

    # torch-fidelity unpickles the file with weights_only=False; reading it with
    # weights_only=True first refuses a file that holds anything but tensors before it can run.
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path} is not a plain state dict of tensors ({FID_WEIGHTS_NAME} is one): {err}"
        ) from err
    if not isinstance(state_dict, dict):
        raise ValueError(f"{path} holds a {type(state_dict).__name__}, not a state dict")
    del state_dict
    kwargs = {} if internal_dtype is None else {"feature_extractor_internal_dtype": internal_dtype}
    try:
        extractor = FeatureExtractorInceptionV3(
            "inception-v3-compat", [features], feature_extractor_weights_path=str(path), **kwargs
        )
    except RuntimeError as err:  # load_state_dict: missing / unexpected keys, wrong shapes
        raise ValueError(
            f"{path} is not the FID Inception state dict ({FID_WEIGHTS_NAME}): {err}"
        ) from err
    return _fid_inception_class()(extractor).eval()


# --------------------------------------------------------------------- precision and recall


def _as_features(x: Any, name: str) -> torch.Tensor:
    import torch

    t = torch.as_tensor(x)
    if t.ndim != 2:
        raise ValueError(f"{name} must be (N, D), got shape {tuple(t.shape)}")
    return t.detach().to(torch.float64 if t.dtype == torch.float64 else torch.float32)


def _knn_radii(x: torch.Tensor, k: int, batch_size: int) -> torch.Tensor:
    """Distance from each row of x to its k-th nearest other row: (N, D) -> (N,)."""
    import torch

    radii = []
    for start in range(0, x.shape[0], batch_size):
        d = torch.cdist(x[start : start + batch_size], x)  # (b, N)
        rows = torch.arange(d.shape[0], device=d.device)
        # The point itself is excluded by index: cdist's matrix-product path leaves a small
        # non-zero self-distance that kthvalue(k + 1) could mistake for a neighbour.
        d[rows, rows + start] = float("inf")
        radii.append(d.kthvalue(k, dim=1).values)
    return torch.cat(radii)


def _fraction_inside(
    queries: torch.Tensor, points: torch.Tensor, radii: torch.Tensor, batch_size: int
) -> float:
    """Fraction of queries within ``radii[j]`` of at least one point j (distance <= radius)."""
    import torch

    inside = 0
    for batch in queries.split(batch_size):
        inside += int((torch.cdist(batch, points) <= radii[None, :]).any(dim=1).sum())
    return inside / queries.shape[0]


def precision_recall(
    real_features: Any,
    fake_features: Any,
    k: int = 3,
    *,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Improved precision and recall: (N_real, D) and (N_fake, D) features -> fractions in [0, 1].

    Each set's manifold is the union of balls around its samples, each with the distance to
    that sample's k-th nearest neighbour in the same set (itself excluded) as radius (k=3 in the
    paper). ``precision``: the fraction of fake samples inside the real manifold; ``recall``: the
    fraction of real samples inside the fake manifold. Euclidean distances with
    ``torch.cdist`` on the inputs' device, ``batch_size`` rows at a time, so memory is
    ``batch_size x N`` (10k x 10k features fit on a laptop). Computed in float64 when either
    input is float64, in float32 otherwise. Returns ``{"precision": ..., "recall": ...}``.
    """
    real = _as_features(real_features, "real_features")
    fake = _as_features(fake_features, "fake_features").to(real.device)
    if real.dtype != fake.dtype:  # one of them is float64: compute both in float64
        real, fake = real.double(), fake.double()
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"real and fake features differ in dimension: {real.shape[1]} vs {fake.shape[1]}"
        )
    if k < 1 or k >= min(real.shape[0], fake.shape[0]):
        raise ValueError(
            f"k={k} needs 1 <= k < the size of each set (got {real.shape[0]} real, "
            f"{fake.shape[0]} fake samples)"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    real_radii = _knn_radii(real, k, batch_size)
    fake_radii = _knn_radii(fake, k, batch_size)
    return {
        "precision": _fraction_inside(fake, real, real_radii, batch_size),
        "recall": _fraction_inside(real, fake, fake_radii, batch_size),
    }


# --------------------------------------------------------------------------- Inception Score


def inception_score(
    predictions: Any, splits: int = 10, *, from_logits: bool | None = None
) -> dict[str, float]:
    """Inception Score: (N, C) class logits or probabilities -> mean and std over splits.

    The samples are cut into ``splits`` consecutive chunks (as the original code does, no
    shuffling; torch-fidelity shuffles with a fixed seed by default); each chunk scores
    ``exp(mean_x KL(p(y|x) || p(y)))`` with p(y) the chunk's mean prediction. Returns
    ``{"inception_score_mean": ..., "inception_score_std": ...}`` (std with ddof=0, numpy's).
    ``from_logits=None`` reads rows that are non-negative and sum to 1 as probabilities and
    anything else as logits (softmax, as on torch-fidelity's ``logits_unbiased``). float64.
    """
    import torch

    x = torch.as_tensor(predictions).detach().to(torch.float64)
    if x.ndim != 2:
        raise ValueError(f"predictions must be (N, C), got shape {tuple(x.shape)}")
    n = x.shape[0]
    if splits < 1 or n < splits:
        raise ValueError(f"{n} samples cannot be cut into {splits} splits")
    if not torch.isfinite(x).all():
        raise ValueError("predictions hold NaN or infinite values")
    looks_like_probs = bool((x >= 0).all()) and bool(
        torch.allclose(x.sum(dim=1), torch.ones(n, dtype=x.dtype), atol=1e-3)
    )
    if from_logits is None:
        from_logits = not looks_like_probs
    if from_logits:
        log_p = x.log_softmax(dim=1)
        p = log_p.exp()
        p_log_p = p * log_p
    else:
        if not looks_like_probs:
            raise ValueError(
                "from_logits=False needs probabilities: rows non-negative and summing to 1"
            )
        p = x
        p_log_p = torch.special.xlogy(p, p)  # 0 log 0 = 0: one-hot predictions are fine
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        p_y = p[lo:hi].mean(dim=0, keepdim=True)
        kl = p_log_p[lo:hi] - torch.special.xlogy(p[lo:hi], p_y)
        scores.append(float(kl.sum(dim=1).mean().exp()))
    return {
        "inception_score_mean": float(np.mean(scores)),
        "inception_score_std": float(np.std(scores)),
    }


def fid_against_reference(
    images: torch.Tensor,
    inception_weights: str | os.PathLike,
    reference_npz: str | os.PathLike,
    *,
    batch_size: int = 250,
    device: str | torch.device | None = None,
) -> float:
    """FID of generated ``images`` (B, 3, H, W) in [-1, 1] against ADM-style reference statistics.

    Each process passes its own images; the pool3 features of every process are gathered (a
    no-op without a process group) before the statistics, so all ranks return the same number.
    Images are clamped to [-1, 1] and mapped to [0, 1] as the generators' samplers save them.
    """
    import torch

    from paperzoo.train import distributed as dist_utils

    device = torch.device(device) if device is not None else images.device
    net = fid_inception(inception_weights).to(device)
    with torch.no_grad():
        feats = torch.cat(
            [net(((x.to(device) + 1) / 2).clamp(0, 1)) for x in images.split(batch_size)]
        )
    feats = dist_utils.all_gather(feats).cpu()
    mu, sigma = load_reference_statistics(reference_npz)
    return frechet_distance(*feature_statistics(feats), mu, sigma)
