"""Retrieval metrics against a brute-force computation, with ties and several captions per video."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperzoo.train.retrieval import retrieval_metrics, text_to_video_ranks, video_to_text_ranks


def _brute_force(sim: np.ndarray, text_to_video: list[int], ks=(1, 5, 10)) -> dict[str, float]:
    """Loops, no vectorisation: a wrong candidate scoring >= the correct one is ahead of it."""
    n_text, n_video = sim.shape
    t2v = []
    for t in range(n_text):
        gt = sim[t, text_to_video[t]]
        ahead = sum(1 for v in range(n_video) if v != text_to_video[t] and sim[t, v] >= gt)
        t2v.append(ahead + 1)
    v2t = []
    for v in range(n_video):
        captions = [t for t in range(n_text) if text_to_video[t] == v]
        best = max(sim[t, v] for t in captions)
        ahead = sum(1 for t in range(n_text) if t not in captions and sim[t, v] >= best)
        v2t.append(ahead + 1)
    out = {}
    for name, ranks in (("t2v_", t2v), ("v2t_", v2t)):
        r = np.array(ranks, dtype=float)
        for k in ks:
            out[f"{name}R@{k}"] = 100.0 * float(np.mean(r <= k))
        out[f"{name}MdR"] = float(np.median(r))
        out[f"{name}MnR"] = float(np.mean(r))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_with_ties_and_several_captions(seed):
    rng = np.random.default_rng(seed)
    n_video = 23
    text_to_video = list(range(n_video)) + list(rng.integers(0, n_video, size=31))  # 54 texts
    # Integer scores in a small range: many ties; a signal on the correct pairs so ranks vary.
    sim = rng.integers(0, 6, size=(len(text_to_video), n_video)).astype(np.float32)
    for t, v in enumerate(text_to_video):
        sim[t, v] += rng.integers(0, 4)
    ours = retrieval_metrics(torch.from_numpy(sim), text_to_video)
    expected = _brute_force(sim, text_to_video)
    assert ours.keys() == expected.keys()
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key


def test_perfect_and_constant_similarities():
    perfect = retrieval_metrics(torch.eye(12) * 5 + torch.rand(12, 12))
    assert perfect["t2v_R@1"] == perfect["v2t_R@1"] == 100.0 and perfect["t2v_MdR"] == 1.0
    # A constant matrix ranks every correct item behind all the others: no free R@1.
    flat = retrieval_metrics(torch.ones(12, 12))
    assert flat["t2v_R@1"] == 0.0 and flat["t2v_MdR"] == 12.0 and flat["v2t_MnR"] == 12.0


def test_ranks_and_errors():
    sim = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.4, 0.6, 0.1], [0.7, 0.2, 0.9]])
    # texts 0, 1, 2 -> videos 0, 1, 2; text 3 -> video 2 as well.
    owner = [0, 1, 2, 2]
    assert text_to_video_ranks(sim, owner).tolist() == [1, 2, 3, 1]
    # video 0: caption 0 (0.9) is first; video 1: caption 1 (0.3) behind 0.6; video 2: best caption 3 (0.9).
    assert video_to_text_ranks(sim, owner).tolist() == [1, 2, 1]
    with pytest.raises(ValueError, match="text_to_video"):
        retrieval_metrics(torch.rand(4, 3))
    with pytest.raises(ValueError, match="no caption"):
        retrieval_metrics(torch.rand(3, 3), [0, 0, 1])
    with pytest.raises(ValueError, match="index the 3 videos"):
        retrieval_metrics(torch.rand(3, 3), [0, 1, 3])
