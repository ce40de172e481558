"""Multi-label classification metrics: per-class average precision and AudioSet-style mAP.

The protocol of AudioSet papers (AST, AudioMAE, MAViL): score every clip for every class, take
each class's average precision over the clips, and report the mean over classes (mAP).

Average precision is the step-wise (non-interpolated) area under the precision-recall curve, as
scikit-learn's ``average_precision_score`` computes it:

    AP = sum_n (R_n - R_{n-1}) * P_n

over the distinct score thresholds in decreasing order, where a threshold admits every clip
scoring at least as high (so clips with equal scores enter together: ties are neither won nor
lost by position). Written here in torch rather than called from scikit-learn because the
evaluation runs on (N, 527) AudioSet score matrices on the GPU inside the training loop and
scikit-learn is not a dependency of paperzoo-train; the tests compare it with scikit-learn.

A class without a positive clip has no defined AP. scikit-learn warns and scores it 0, which
pulls the mean down by a class the evaluation set cannot measure; here it is left out of the
mean and counted (``classes_without_positives``), and ``ap`` holds NaN for it.
"""

from __future__ import annotations

import torch

__all__ = ["average_precision", "mean_average_precision", "multilabel_map_metric"]


def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-class average precision of ``scores`` (N, C) (logits or probabilities: only the order
    matters) against binary ``targets`` (N, C). Returns (C,) float64 in [0, 1], NaN for classes
    with no positive."""
    if scores.ndim == 1:
        scores, targets = scores[:, None], targets[:, None]
    if scores.shape != targets.shape or scores.ndim != 2 or scores.shape[0] == 0:
        raise ValueError(
            f"scores and targets must be (N, C) of one shape with N >= 1, got "
            f"{tuple(scores.shape)} and {tuple(targets.shape)}"
        )
    y = targets.detach().to(torch.float64)
    if not torch.all((y == 0) | (y == 1)):
        raise ValueError("targets must be binary (0/1) multi-hot labels")
    s = scores.detach().to(torch.float64)
    if not torch.isfinite(s).all():
        raise ValueError("scores hold NaN or infinite values")
    order = torch.argsort(s, dim=0, descending=True, stable=True)
    s_sorted = torch.gather(s, 0, order)
    y_sorted = torch.gather(y, 0, order)
    tp = torch.cumsum(y_sorted, dim=0)
    fp = torch.cumsum(1.0 - y_sorted, dim=0)
    positives = tp[-1]
    # The last row of each run of equal scores is a threshold: every tied clip is in.
    last_of_tie = torch.ones_like(s_sorted, dtype=torch.bool)
    last_of_tie[:-1] = s_sorted[1:] != s_sorted[:-1]
    precision = tp / (tp + fp)
    recall = tp / positives.clamp_min(1.0)
    ap = torch.empty(s.shape[1], dtype=torch.float64)
    for c in range(s.shape[1]):  # a loop over classes: the thresholds differ per class
        keep = last_of_tie[:, c]
        r, p = recall[keep, c], precision[keep, c]
        prev_recall = torch.cat([r.new_zeros(1), r[:-1]])
        ap[c] = torch.sum((r - prev_recall) * p)
    ap[positives == 0] = float("nan")
    return ap


def mean_average_precision(scores: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """AudioSet-style mAP (percent): the mean over classes with at least one positive of
    :func:`average_precision`. Returns ``{"mAP": %, "classes_without_positives": count}``."""
    ap = average_precision(scores, targets)
    measured = ap[~torch.isnan(ap)]
    if measured.numel() == 0:
        raise ValueError("no class has a positive clip: mAP is undefined")
    return {
        "mAP": float(measured.mean()) * 100.0,
        "classes_without_positives": float(ap.numel() - measured.numel()),
    }


def multilabel_map_metric():
    """The registered ``mAP`` metric: ``fn(scores (N, C), targets (N, C)) -> {"mAP", ...}``."""
    return mean_average_precision
