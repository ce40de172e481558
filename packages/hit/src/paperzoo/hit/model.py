"""HiT: Hierarchical Transformer with Momentum Contrast for Video-Text Retrieval.

Song Liu, Haoqi Fan, Shengsheng Qian, Yiru Chen, Wenkui Ding, Zhongyuan Wang; ICCV 2021,
arXiv:2103.15049. No official code was released; this follows the paper's Figure 3 (its
caption, as read from public pages) and MoCo (He et al. 2020) for the momentum parts.

- Two query encoders (a video transformer and a BERT text transformer), each with a momentum
  key copy that is never trained by gradients (``theta_k <- m theta_k + (1 - m) theta_q``).
- Hierarchical cross-modal matching: a *feature level* read from a lower layer (the mean of the
  frame tokens / of the word tokens there) and a *semantic level* read from the top layer (the
  [CLS] token, or the mean of the tokens: ``semantic_pool``), each projected and L2-normalised.
- Four queues (2 levels x 2 modalities) hold the key copies' past embeddings; query video is
  contrasted with key text (its positive) and the text queue of the same level, query text
  with key video and the video queue, through MoCo's InfoNCE
  (:func:`paperzoo.mocov2.model.info_nce_logits`).

The video encoder takes either decoded clips (B, C, T, H, W), through a small per-frame
convolutional stem, or pre-extracted per-frame features (B, T, D) through a linear layer (the
paper's setting is an MMT-style encoder over expert features: unverified, see the README).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LEVELS",
    "MODALITIES",
    "HiT",
    "KeyQueue",
    "TextTransformer",
    "VideoTransformer",
    "hit_bert_base",
    "hit_tiny",
    "momentum_update",
]

LEVELS = ("feature", "semantic")
MODALITIES = ("video", "text")


# -- blocks --------------------------------------------------------------------------------------


class FrameStem(nn.Module):
    """Per-frame convolutional features: (B, C, T, H, W) float -> (B, T, width).

    Three stride-2 3x3 convolutions, an average pool to a ``grid`` x ``grid`` map (kept, not
    pooled away: where the strokes are is what tells digits apart) and a linear layer; small
    enough for 32 px CPU clips (not from the paper, whose video side reads pre-extracted
    expert features)."""

    def __init__(
        self, in_chans: int = 3, width: int = 64, channels: Sequence[int] = (16, 32, 64),
        grid: int = 4,
    ) -> None:  # fmt: skip
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_chans
        for c in channels:
            layers += [nn.Conv2d(prev, c, 3, stride=2, padding=1), nn.GroupNorm(1, c), nn.GELU()]
            prev = c
        self.convs = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(grid), nn.Flatten())
        self.proj = nn.Linear(prev * grid * grid, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        return self.proj(self.convs(frames)).view(b, t, -1)


class VideoTransformer(nn.Module):
    """A transformer over frame tokens with a [CLS] token and learned temporal positions.

    ``forward_intermediates`` returns the hidden states after every block, each
    (B, 1 + T, width) with the [CLS] token first (``hidden[0]`` is the embedded input).
    ``input_dim > 0``: the inputs are pre-extracted per-frame features (B, T, input_dim);
    otherwise clips (B, C, T, H, W) through :class:`FrameStem`.
    """

    def __init__(
        self,
        *,
        width: int = 512,
        depth: int = 4,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        max_frames: int = 64,
        input_dim: int = 0,
        in_chans: int = 3,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.width, self.depth = width, depth
        self.embed = nn.Linear(input_dim, width) if input_dim > 0 else FrameStem(in_chans, width)
        self.input_dim = input_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + max_frames, width))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                width,
                num_heads,
                int(width * mlp_ratio),
                dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(width)

    def forward_intermediates(self, x: torch.Tensor) -> list[torch.Tensor]:
        tokens = self.embed(x)  # (B, T, width)
        b, t, _ = tokens.shape
        if t + 1 > self.pos_embed.shape[1]:
            raise ValueError(f"{t} frames exceed max_frames={self.pos_embed.shape[1] - 1}")
        h = (
            torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1)
            + self.pos_embed[:, : t + 1]
        )
        hidden = [h]
        for i, block in enumerate(self.blocks):
            h = block(h)
            hidden.append(self.norm(h) if i == len(self.blocks) - 1 else h)
        return hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, width): the top layer's [CLS] token."""
        return self.forward_intermediates(x)[-1][:, 0]


class TextTransformer(nn.Module):
    """A BERT encoder (``transformers.BertModel``), built from a config or loaded from a path.

    ``forward_intermediates(input_ids, attention_mask)`` returns the hidden states of the
    embeddings and of every layer, each (B, L, hidden), [CLS] first.
    """

    def __init__(self, bert: nn.Module) -> None:
        super().__init__()
        self.bert = bert
        self.width = bert.config.hidden_size
        self.depth = bert.config.num_hidden_layers

    @classmethod
    def from_config(cls, **config: Any) -> TextTransformer:
        from transformers import BertConfig, BertModel

        return cls(BertModel(BertConfig(**config), add_pooling_layer=False))

    @classmethod
    def from_pretrained(cls, path: str) -> TextTransformer:
        """A real BERT from a local folder (or the hub cache; HF_HUB_OFFLINE is respected)."""
        from transformers import BertModel

        return cls(BertModel.from_pretrained(path, add_pooling_layer=False))

    def forward_intermediates(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> list[torch.Tensor]:
        out = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True
        )
        return list(out.hidden_states)


def _masked_mean(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return h.mean(dim=1)
    m = mask.to(h.dtype).unsqueeze(-1)
    return (h * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


def _head(width: int, dim: int, bn: bool) -> nn.Module:
    # BN over the batch keeps every output dimension's variance at 1: the embeddings of a
    # small model trained from scratch cannot collapse to one point (which is a fixed point of
    # InfoNCE: every gradient vanishes there). Our choice for the tiny model, not the paper's.
    if not bn:
        return nn.Linear(width, dim)
    return nn.Sequential(nn.Linear(width, dim), nn.BatchNorm1d(dim))


class _Tower(nn.Module):
    """One modality's encoder plus its two projection heads (feature and semantic level).

    ``feature_layer`` indexes ``forward_intermediates`` (1 = after the first block).
    """

    def __init__(
        self,
        encoder: nn.Module,
        dim: int,
        feature_layer: int,
        text: bool,
        pool: str = "cls",
        head_bn: bool = False,
    ) -> None:
        super().__init__()
        if pool not in ("cls", "mean"):
            raise ValueError(f"semantic pooling must be 'cls' or 'mean', got {pool!r}")
        self.pool = pool
        if not 1 <= feature_layer <= encoder.depth:
            raise ValueError(f"feature_layer must be in [1, {encoder.depth}], got {feature_layer}")
        self.encoder = encoder
        self.feature_layer = feature_layer
        self.text = text
        self.heads = nn.ModuleDict({lvl: _head(encoder.width, dim, head_bn) for lvl in LEVELS})

    def forward(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden = self.encoder.forward_intermediates(*inputs)
        mask = inputs[1] if self.text else None
        low = hidden[self.feature_layer]
        # Feature level: the lower layer's word (frame) tokens, averaged; [CLS] excluded.
        body_mask = mask[:, 1:] if mask is not None else None
        feature = _masked_mean(low[:, 1:], body_mask)
        top = hidden[-1]
        semantic = top[:, 0] if self.pool == "cls" else _masked_mean(top, mask)
        return {
            "feature": F.normalize(self.heads["feature"](feature), dim=-1),
            "semantic": F.normalize(self.heads["semantic"](semantic), dim=-1),
        }


# -- queues and momentum -------------------------------------------------------------------------


class KeyQueue(nn.Module):
    """A MoCo queue of ``size`` L2-normalised keys (dim, size), with the class of each entry.

    ``labels`` (size,) holds each key's class (-1: empty or unknown), only to measure how many
    queue entries are false negatives; the loss never reads it. A write of N keys replaces
    columns ``ptr .. ptr+N-1`` (mod size) and advances ``ptr``, as MoCo's official code does
    when ``size % N == 0`` (here it wraps instead of asserting).

    Written here rather than taken from ``paperzoo.mocov2.model.MoCo.dequeue_and_enqueue``:
    that method is bound to MoCo's single ``queue`` buffer, while HiT needs four of them and
    the class bookkeeping.
    """

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("queue", F.normalize(torch.randn(dim, size), dim=0))
        self.register_buffer("labels", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros(1, dtype=torch.long))
        self.register_buffer("filled", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Write ``keys`` (N, dim) over the oldest entries; ``labels`` (N,) their classes."""
        n = keys.shape[0]
        if n > self.size:
            raise ValueError(
                f"cannot enqueue {n} keys into a queue of {self.size}; raise queue_size"
            )
        ptr = int(self.ptr)
        idx = (ptr + torch.arange(n, device=keys.device)) % self.size
        self.queue[:, idx] = keys.detach().to(self.queue.dtype).T
        self.labels[idx] = labels.to(self.labels) if labels is not None else -1
        self.ptr[0] = (ptr + n) % self.size
        self.filled[0] = min(self.size, int(self.filled) + n)

    @torch.no_grad()
    def false_negative_rate(self, labels: torch.Tensor) -> torch.Tensor:
        """Mean fraction of the filled, labelled queue entries sharing each query's class."""
        known = self.labels >= 0
        if not known.any() or (labels < 0).all():
            return torch.zeros((), device=self.queue.device)
        same = labels[:, None].to(self.labels) == self.labels[known][None, :]
        return same.float().mean()


@torch.no_grad()
def momentum_update(query: nn.Module, key: nn.Module, m: float) -> None:
    """``theta_k <- m theta_k + (1 - m) theta_q`` over the parameters of two equal modules.

    Buffers (none here but BN-free encoders'; BERT has position-id buffers) are left alone."""
    for p_q, p_k in zip(query.parameters(), key.parameters(), strict=True):
        p_k.mul_(m).add_(p_q.detach(), alpha=1.0 - m)


# -- the model -----------------------------------------------------------------------------------


class HiT(nn.Module):
    """Query video/text towers, their momentum key copies and the four queues.

    ``forward(clips, input_ids, attention_mask)`` -> ``{"video": {level: (B, dim)}, "text":
    {...}}`` of the *query* towers; :meth:`keys` the same from the key copies (no gradient).
    Queues are ``self.queues[f"{level}_{modality}"]`` (:class:`KeyQueue`).
    """

    def __init__(
        self,
        video: VideoTransformer,
        text: TextTransformer,
        *,
        dim: int = 256,
        queue_size: int = 65536,
        momentum: float = 0.999,
        temperature: float = 0.07,
        video_feature_layer: int | None = None,
        text_feature_layer: int | None = None,
        semantic_pool: str = "cls",
        head_bn: bool = False,
    ) -> None:
        super().__init__()
        self.dim, self.queue_size = dim, queue_size
        self.momentum, self.temperature = momentum, temperature
        vf = video_feature_layer or max(1, video.depth // 2)
        tf = text_feature_layer or max(1, text.depth // 2)
        self.video_q = _Tower(video, dim, vf, text=False, pool=semantic_pool, head_bn=head_bn)
        self.text_q = _Tower(text, dim, tf, text=True, pool=semantic_pool, head_bn=head_bn)
        self.video_k = copy.deepcopy(self.video_q)
        self.text_k = copy.deepcopy(self.text_q)
        for p in (*self.video_k.parameters(), *self.text_k.parameters()):
            p.requires_grad_(False)
        self.queues = nn.ModuleDict(
            {f"{lvl}_{mod}": KeyQueue(dim, queue_size) for lvl in LEVELS for mod in MODALITIES}
        )

    def encode_video(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.video_q(clips)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict:
        return self.text_q(input_ids, attention_mask)

    def forward(
        self, clips: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, dict[str, torch.Tensor]]:
        return {
            "video": self.encode_video(clips),
            "text": self.encode_text(input_ids, attention_mask),
        }

    @torch.no_grad()
    def keys(
        self, clips: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, dict[str, torch.Tensor]]:
        return {"video": self.video_k(clips), "text": self.text_k(input_ids, attention_mask)}

    @torch.no_grad()
    def momentum_update_key_encoders(self) -> None:
        momentum_update(self.video_q, self.video_k, self.momentum)
        momentum_update(self.text_q, self.text_k, self.momentum)

    @torch.no_grad()
    def enqueue(
        self, keys: Mapping[str, Mapping[str, torch.Tensor]], labels: torch.Tensor | None = None
    ) -> None:
        """Write every level's key video into the video queues and key text into the text ones."""
        for mod in MODALITIES:
            for lvl in LEVELS:
                self.queues[f"{lvl}_{mod}"].enqueue(keys[mod][lvl], labels)


# -- factories ------------------------------------------------------------------------------------


def _create_hit(video: dict, text: dict, bert_path: str = "", **hit: Any) -> HiT:
    text_encoder = (
        TextTransformer.from_pretrained(bert_path)
        if bert_path
        else TextTransformer.from_config(**text)
    )
    return HiT(VideoTransformer(**video), text_encoder, **hit)


def hit_bert_base(*, bert_path: str = "", vocab_size: int = 30522, **kwargs: Any) -> HiT:
    """The paper-scale model: BERT-base text (12 x 768; loaded from ``bert_path`` when given)
    and a 4-layer 512-wide video transformer; feature level after layer 6 (text) / 2 (video).

    Sizes, layers and the MoCo settings are unverified (README, Sources)."""
    video = dict(
        width=512, depth=4, num_heads=8, max_frames=64, input_dim=kwargs.pop("input_dim", 0)
    )
    text = dict(
        vocab_size=vocab_size, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072,
    )  # fmt: skip
    args = dict(dim=256, queue_size=65536, momentum=0.999, temperature=0.07) | kwargs
    return _create_hit(video, text, bert_path, **args)


def hit_tiny(*, vocab_size: int = 256, max_text_len: int = 32, **kwargs: Any) -> HiT:
    """CPU-sized: a 4-layer 64-wide video transformer over a 3-conv frame stem (32 px clips)
    and a 4-layer 64-wide BERT; feature level after layer 2 of each. Not from the paper."""
    video = dict(width=64, depth=4, num_heads=4, mlp_ratio=2.0, max_frames=16, dropout=0.0)
    text = dict(
        vocab_size=vocab_size, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=max_text_len, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    args = dict(
        dim=64, queue_size=1024, momentum=0.99, temperature=0.07, semantic_pool="mean", head_bn=True
    )
    args |= kwargs
    return _create_hit(video, text, "", **args)
