"""AudioSet-style mAP: per-class average precision against scikit-learn, ties, and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn import metrics as sklearn_metrics  # the reference (test dependency)

from paperzoo.train.multilabel import average_precision, mean_average_precision


def test_average_precision_matches_scikit_learn_on_random_multilabel_scores():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(200, 7, generator=g)
    targets = (torch.rand(200, 7, generator=g) < 0.2).long()
    targets[:, 3] = (scores[:, 3] > 0.5).long()  # one class the scores predict well
    ours = average_precision(scores, targets)
    theirs = sklearn_metrics.average_precision_score(targets.numpy(), scores.numpy(), average=None)
    torch.testing.assert_close(ours, torch.from_numpy(theirs).double(), rtol=1e-12, atol=1e-12)
    assert ours[3] == pytest.approx(1.0)
    m = mean_average_precision(scores, targets)
    assert m["mAP"] == pytest.approx(100.0 * theirs.mean(), rel=1e-12)
    assert m["classes_without_positives"] == 0


def test_ties_enter_together_as_scikit_learn_counts_them():
    # Quantised scores: many equal values, where position-based code would differ.
    g = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 4, (100, 5), generator=g).double()
    targets = (torch.rand(100, 5, generator=g) < 0.4).long()
    theirs = sklearn_metrics.average_precision_score(targets.numpy(), scores.numpy(), average=None)
    torch.testing.assert_close(
        average_precision(scores, targets), torch.from_numpy(theirs).double(), rtol=0, atol=1e-12
    )


def test_hand_computed_value_and_classes_without_positives():
    # One class: positives at ranks 1 and 3 of 4 -> AP = 1/2 * 1 + 1/2 * 2/3.
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.1, 0.4]])
    targets = torch.tensor([[1, 0], [0, 0], [1, 0], [0, 0]])
    ap = average_precision(scores, targets)
    assert ap[0].item() == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert math.isnan(ap[1].item())  # no positive: left out of the mean, counted
    m = mean_average_precision(scores, targets)
    assert m == {"mAP": pytest.approx(100 * (0.5 + 1 / 3)), "classes_without_positives": 1.0}


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="binary"):
        average_precision(torch.randn(4, 2), torch.full((4, 2), 0.5))
    with pytest.raises(ValueError, match="one shape"):
        average_precision(torch.randn(4, 2), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="NaN"):
        average_precision(torch.tensor([[float("nan")]]), torch.ones(1, 1))
    with pytest.raises(ValueError, match="undefined"):
        mean_average_precision(torch.randn(3, 2), torch.zeros(3, 2))
