"""Cross-modal retrieval metrics: R@K, median rank (MdR) and mean rank (MnR), in both directions.

The protocol of video-text retrieval papers (MSR-VTT, ActivityNet Captions, LSMDC; e.g. MMT,
CLIP4Clip, HiT): a similarity matrix between every query and every candidate, the rank of the
correct candidate in each query's sorted row, then

- ``R@K``: percent of queries whose correct candidate ranks within the top K;
- ``MdR``: the median rank (1 = first; the mean of the two middle ranks for an even count, as
  ``numpy.median``), ``MnR``: the mean rank.

Text -> video: every text has one correct video (``text_to_video[t]``). Video -> text: a video
may have several captions; its rank is that of its best-ranked caption (the convention of
MSR-VTT's multi-caption evaluation), and a video without a caption is an error.

Ties count against the model: a correct candidate ranks behind every wrong candidate with an
equal score. (Sorting-based code breaks ties by position, which lets a constant similarity
matrix score R@1 = 100% on the diagonal.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["retrieval_metric", "retrieval_metrics", "text_to_video_ranks", "video_to_text_ranks"]


def _text_to_video(text_to_video: torch.Tensor | Sequence[int] | None, n_text: int, n_video: int):
    if text_to_video is None:
        if n_text != n_video:
            raise ValueError(
                f"a {n_text} x {n_video} similarity matrix needs text_to_video (the video index "
                "of every text); without it the matrix must be square (text i <-> video i)"
            )
        return torch.arange(n_text)
    index = torch.as_tensor(text_to_video, dtype=torch.long).flatten()
    if index.numel() != n_text:
        raise ValueError(f"text_to_video has {index.numel()} entries for {n_text} texts")
    if n_text and (index.min() < 0 or index.max() >= n_video):
        raise ValueError(
            f"text_to_video must index the {n_video} videos, got {index.tolist()[:8]}..."
        )
    return index


def text_to_video_ranks(
    sim: torch.Tensor, text_to_video: torch.Tensor | Sequence[int] | None = None
) -> torch.Tensor:
    """1-based rank of each text's video: ``sim`` (T, V) text-video scores -> (T,) int64."""
    if sim.ndim != 2:
        raise ValueError(f"similarity must be (texts, videos), got {tuple(sim.shape)}")
    index = _text_to_video(text_to_video, *sim.shape).to(sim.device)
    correct = sim.gather(1, index[:, None])  # (T, 1)
    wrong_ahead = (sim >= correct).sum(dim=1) - 1  # every wrong video scoring at least as high
    return wrong_ahead + 1


def video_to_text_ranks(
    sim: torch.Tensor, text_to_video: torch.Tensor | Sequence[int] | None = None
) -> torch.Tensor:
    """1-based rank of each video's best caption: ``sim`` (T, V) text-video -> (V,) int64."""
    if sim.ndim != 2:
        raise ValueError(f"similarity must be (texts, videos), got {tuple(sim.shape)}")
    n_text, n_video = sim.shape
    index = _text_to_video(text_to_video, n_text, n_video).to(sim.device)
    scores = sim.T  # (V, T)
    is_caption = torch.zeros(n_video, n_text, dtype=torch.bool, device=sim.device)
    is_caption[index, torch.arange(n_text, device=sim.device)] = True
    missing = (~is_caption.any(dim=1)).nonzero().flatten()
    if missing.numel():
        raise ValueError(f"videos {missing.tolist()[:8]} have no caption in text_to_video")
    best = scores.masked_fill(~is_caption, float("-inf")).amax(dim=1, keepdim=True)  # (V, 1)
    wrong_ahead = ((scores >= best) & ~is_caption).sum(dim=1)
    return wrong_ahead + 1


def _summary(ranks: torch.Tensor, ks: Sequence[int], prefix: str) -> dict[str, float]:
    r = ranks.double()
    out = {f"{prefix}R@{k}": (r <= k).double().mean().item() * 100.0 for k in ks}
    out[f"{prefix}MdR"] = _median(r)
    out[f"{prefix}MnR"] = r.mean().item()
    return out


def _median(r: torch.Tensor) -> float:
    ordered = r.sort().values
    n = ordered.numel()
    mid = n // 2
    return float(ordered[mid]) if n % 2 else float((ordered[mid - 1] + ordered[mid]) / 2)


def retrieval_metrics(
    sim: torch.Tensor,
    text_to_video: torch.Tensor | Sequence[int] | None = None,
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Text->video and video->text R@K (percent), MdR and MnR from a (T, V) similarity matrix.

    Keys ``t2v_R@1``, ``t2v_R@5``, ``t2v_R@10``, ``t2v_MdR``, ``t2v_MnR`` and the same with
    ``v2t_``. ``text_to_video`` (T,) gives each text's video; omitted, text i belongs to video i.
    """
    if sim.numel() == 0:
        raise ValueError("retrieval metrics of an empty similarity matrix are undefined")
    sim = sim.detach().float()
    return {
        **_summary(text_to_video_ranks(sim, text_to_video), ks, "t2v_"),
        **_summary(video_to_text_ranks(sim, text_to_video), ks, "v2t_"),
    }


def retrieval_metric(ks: Sequence[int] = (1, 5, 10)):
    """``fn(sim, text_to_video=None) -> dict`` with :func:`retrieval_metrics` (the metric spec)."""

    def metric(
        sim: torch.Tensor, text_to_video: torch.Tensor | Sequence[int] | None = None
    ) -> dict[str, float]:
        return retrieval_metrics(sim, text_to_video, ks=ks)

    return metric
