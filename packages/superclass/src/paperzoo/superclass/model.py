"""SuperClass: a ViT whose head classifies the caption's subword tokens.

Huang, Ye, Kang, Feng, Fan, "Classification Done Right for Vision-Language Pre-Training"
(SuperClass), NeurIPS 2024, arXiv:2411.03313. Follows the official code,
https://github.com/x-cls/superclass (``opencls/open_clip/cls_model.py``: ``Classifier`` and
``transformer.py``: ``MixClsHead``; model configs ``CLS-ViT-{B-16,L-16,L-14}.json``).

The model is an image tower and a classifier over the CLIP BPE vocabulary (49,408 ids):

- ``visual``: open_clip's ``VisionTransformer`` built from an open_clip vision config, with
  average pooling over the patch tokens (after ``ln_post``) and no output projection
  (the official configs set ``embed_dim: 0``), so its state-dict keys are open_clip's
  ``visual.*`` keys, exactly as the official checkpoints hold them.
- ``text_decoder``: the official ``MixClsHead`` with ``layers: 0`` (the released configs):
  ``ln_mlp`` (LayerNorm) then ``text_projection`` (Linear width -> 49,408, with bias).
- two float64 buffers, ``cap_fq`` (1, 49408) and ``num_samples`` (1, 1): the running
  document-frequency statistics of the IDF-weighted loss (:mod:`paperzoo.superclass.method`).
  They live in the model, as in the official code, so they are in every checkpoint and a
  resumed run continues with the same weights.

The CLIP baseline and the LiT stage are open_clip's own ``CLIP`` (:func:`build_clip`,
:func:`lit_from_superclass`); nothing of CLIP is re-implemented here.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

__all__ = [
    "CLIP_VOCAB_SIZE",
    "ClassHead",
    "SuperClass",
    "build_clip",
    "lit_from_superclass",
    "pooled_image_features",
    "superclass_clip_tiny_mnist",
    "superclass_clip_vit_b16",
    "superclass_vit_b16",
    "superclass_vit_l14",
    "superclass_vit_l16",
    "superclass_vit_s16",
    "superclass_vit_tiny_mnist",
]

CLIP_VOCAB_SIZE = 49408  # CLIP BPE: 2 x 256 byte symbols + 48,894 merges + <start/end_of_text>

# Vision configs (open_clip ``CLIPVisionCfg`` fields). B/16, L/16 and L/14 are the official
# CLS-ViT-*.json files; S/16 is open_clip's ViT-S-16 tower (the paper's Table 9 size, for which
# the repository has no config); the MNIST tower is not from the paper.
VISION_CONFIGS: dict[str, dict[str, Any]] = {
    "vit_s16": {"image_size": 224, "layers": 12, "width": 384, "patch_size": 16},
    "vit_b16": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 16},
    "vit_l16": {"image_size": 224, "layers": 24, "width": 1024, "patch_size": 16},
    "vit_l14": {"image_size": 224, "layers": 24, "width": 1024, "patch_size": 14},
    # 28 px digits in 7 px patches (4 x 4 tokens), 4 blocks of width 64 and 4 heads.
    "vit_tiny_mnist": {
        "image_size": 28, "layers": 4, "width": 64, "patch_size": 7, "head_width": 16,
    },
}  # fmt: skip

# Text towers of the CLIP baseline / the LiT stage (open_clip ``CLIPTextCfg`` fields).
TEXT_CONFIGS: dict[str, dict[str, Any]] = {
    "vit_b16": {"context_length": 77, "vocab_size": CLIP_VOCAB_SIZE, "width": 512, "heads": 8,
                "layers": 12},
    "vit_l16": {"context_length": 77, "vocab_size": CLIP_VOCAB_SIZE, "width": 768, "heads": 12,
                "layers": 12},
    "tiny_mnist": {"context_length": 32, "vocab_size": CLIP_VOCAB_SIZE, "width": 64, "heads": 4,
                   "layers": 2},
}  # fmt: skip
EMBED_DIMS = {"vit_b16": 512, "vit_l16": 768, "tiny_mnist": 64}


def _vision_cfg(cfg: Mapping[str, Any] | str, pool_type: str) -> Any:
    from open_clip.model import CLIPVisionCfg

    cfg = dict(VISION_CONFIGS[cfg] if isinstance(cfg, str) else cfg)
    cfg.setdefault("pool_type", pool_type)
    return CLIPVisionCfg(**cfg)


def build_image_tower(vision_cfg: Mapping[str, Any] | str, pool_type: str = "avg") -> nn.Module:
    """open_clip's ``VisionTransformer`` for ``vision_cfg``, without the output projection.

    Built by open_clip's own tower builder (the one its ``CLIP`` and the official
    ``Classifier`` call), with ``embed_dim=0`` as the official CLS configs set it. open_clip
    3.x still allocates an empty (width, 0) ``proj`` there, where the official fork stored
    ``None``; it is removed, so that ``forward`` returns the pooled width-d features and the
    keys equal the official ones (no ``visual.proj``).
    """
    from open_clip.model import _build_vision_tower

    visual = _build_vision_tower(0, _vision_cfg(vision_cfg, pool_type))
    visual.proj = None
    return visual


class ClassHead(nn.Module):
    """The official ``MixClsHead``: ``layers`` residual MLPs, ``ln_mlp``, ``text_projection``.

    (B, width) features -> (B, vocab_size) logits. The released configs use ``layers=0``,
    which leaves LayerNorm -> Linear(width, vocab_size).
    """

    def __init__(
        self, width: int, vocab_size: int = CLIP_VOCAB_SIZE, *, layers: int = 0,
        mlp_ratio: float = 4.0,
    ) -> None:  # fmt: skip
        from open_clip.transformer import LayerNorm

        super().__init__()
        self.width = width
        hidden = int(width * mlp_ratio)
        self.mlps = nn.ModuleList(
            nn.Sequential(
                OrderedDict(
                    c_norm=LayerNorm(width),
                    c_fc=nn.Linear(width, hidden),
                    gelu=nn.GELU(),
                    c_proj=nn.Linear(hidden, width),
                )
            )
            for _ in range(layers)
        )
        self.ln_mlp = LayerNorm(width)
        self.text_projection = nn.Linear(width, vocab_size)
        self.init_parameters()

    def init_parameters(self) -> None:
        # As MixClsHead.init_parameters.
        proj_std = (self.width**-0.5) * (2**-0.5)
        fc_std = (2 * self.width) ** -0.5
        for block in self.mlps:
            nn.init.normal_(block.c_fc.weight, std=fc_std)
            nn.init.normal_(block.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection.weight, std=self.width**-0.5)
        nn.init.zeros_(self.text_projection.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for mlp in self.mlps:
            x = x + mlp(x)
        return self.text_projection(self.ln_mlp(x))


class SuperClass(nn.Module):
    """ViT image tower + vocabulary classifier, with the loss's running statistics as buffers.

    Args:
        vision_cfg: open_clip ``CLIPVisionCfg`` fields (or a key of ``VISION_CONFIGS``).
        vocab_size: the classifier's width; 49,408 for the CLIP BPE.
        head_layers, head_mlp_ratio: ``MixClsHead``'s residual MLPs (0 in the paper's models).
        pool_type: ``"avg"`` (the paper: mean over the patch tokens) or ``"tok"``.
    """

    def __init__(
        self,
        vision_cfg: Mapping[str, Any] | str,
        *,
        vocab_size: int = CLIP_VOCAB_SIZE,
        head_layers: int = 0,
        head_mlp_ratio: float = 4.0,
        pool_type: str = "avg",
    ) -> None:
        super().__init__()
        self.vision_cfg = dict(
            VISION_CONFIGS[vision_cfg] if isinstance(vision_cfg, str) else vision_cfg
        )
        self.vision_cfg.setdefault("pool_type", pool_type)
        self.visual = build_image_tower(self.vision_cfg)
        self.num_features = int(self.vision_cfg["width"])
        self.vocab_size = vocab_size
        self.text_decoder = ClassHead(
            self.num_features, vocab_size, layers=head_layers, mlp_ratio=head_mlp_ratio
        )
        self.register_buffer("cap_fq", torch.zeros(1, vocab_size, dtype=torch.float64))
        self.register_buffer("num_samples", torch.zeros(1, 1, dtype=torch.float64))

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, width) pooled features (the probe's input)."""
        return self.visual(images)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(B, width) -> (B, vocab_size) logits over the subword vocabulary."""
        return self.text_decoder(features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(images))

    def forward_intermediates(self, images: torch.Tensor, **kwargs: Any) -> dict[str, Any]:
        """open_clip's ``VisionTransformer.forward_intermediates`` (block outputs, NCHW/NLC)."""
        return self.visual.forward_intermediates(images, **kwargs)

    def idf_weights(self, global_batch: int) -> torch.Tensor:
        """(1, vocab) float64 ``log((n + 1/B) / (df + 1/B))`` from the running statistics."""
        eps = 1.0 / global_batch
        return torch.log((self.num_samples + eps) / (self.cap_fq + eps))


def _create_superclass(variant: str, **kwargs: Any) -> SuperClass:
    return SuperClass(variant, **kwargs)


def superclass_vit_s16(**kwargs: Any) -> SuperClass:
    """ViT-S/16 (width 384, 12 blocks), the paper's smallest size (Table 9)."""
    return _create_superclass("vit_s16", **kwargs)


def superclass_vit_b16(**kwargs: Any) -> SuperClass:
    """ViT-B/16 (``CLS-ViT-B-16.json``): width 768, 12 blocks, 12 heads, 224 px."""
    return _create_superclass("vit_b16", **kwargs)


def superclass_vit_l16(**kwargs: Any) -> SuperClass:
    """ViT-L/16 (``CLS-ViT-L-16.json``): width 1024, 24 blocks, 16 heads, 224 px."""
    return _create_superclass("vit_l16", **kwargs)


def superclass_vit_l14(**kwargs: Any) -> SuperClass:
    """ViT-L/14 (``CLS-ViT-L-14.json``): width 1024, 24 blocks, patch 14, 224 px."""
    return _create_superclass("vit_l14", **kwargs)


def superclass_vit_tiny_mnist(**kwargs: Any) -> SuperClass:
    """Not from the paper: a 4-block width-64 ViT on 28 px digits for the CPU study."""
    return _create_superclass("vit_tiny_mnist", **kwargs)


# -- the CLIP baseline and the LiT stage: open_clip's CLIP -----------------------------------------


def build_clip(
    vision_cfg: Mapping[str, Any] | str,
    text_cfg: Mapping[str, Any] | str,
    embed_dim: int,
    *,
    pool_type: str = "avg",
) -> nn.Module:
    """open_clip's ``CLIP`` with this image tower (same config as :class:`SuperClass`'s).

    ``pool_type`` defaults to the SuperClass tower's average pooling, so that the baseline's
    image tower is the same network and only the objective differs.
    """
    from open_clip.model import CLIP, CLIPTextCfg

    text = dict(TEXT_CONFIGS[text_cfg] if isinstance(text_cfg, str) else text_cfg)
    return CLIP(embed_dim, _vision_cfg(vision_cfg, pool_type), CLIPTextCfg(**text))


def superclass_clip_vit_b16(**kwargs: Any) -> nn.Module:
    """The CLIP baseline at ViT-B/16: open_clip's ``ViT-B-16`` model config with the
    SuperClass tower's average pooling (the official fork's ``ViT-B-16-avg.json``;
    ``pool_type="tok"`` gives ``ViT-B-16`` unchanged)."""
    from open_clip import get_model_config

    cfg = get_model_config("ViT-B-16")
    return build_clip(cfg["vision_cfg"], cfg["text_cfg"], cfg["embed_dim"], **kwargs)


def superclass_clip_tiny_mnist(**kwargs: Any) -> nn.Module:
    """The CLIP baseline of the tiny study: the tiny MNIST tower and a 2-block text tower."""
    return build_clip("vit_tiny_mnist", "tiny_mnist", EMBED_DIMS["tiny_mnist"], **kwargs)


def lit_from_superclass(
    model: SuperClass,
    text_cfg: Mapping[str, Any] | str,
    embed_dim: int,
    *,
    pool_type: str = "avg",
    unlocked_groups: int = 1,
) -> nn.Module:
    """The LiT stage: an open_clip ``CLIP`` whose image tower is ``model``'s, locked.

    As the official ``lit_vit_*.yaml`` configs: a CLIP (here with the same tower config) loads
    the SuperClass ``visual.*`` weights (``pretrained_image``, strict except the new ``proj``),
    then ``lock_image_tower(unlocked_groups=1)``: everything is frozen but the last group,
    the new projection. The text tower and ``logit_scale`` train from scratch. The official
    512M-sample LiT configs use ``ViT-B-16-avg`` / ``ViT-L-16-avg`` (average pooling, as the
    SuperClass tower); the 1.28B ones plain ``ViT-B-16`` (class token: ``pool_type="tok"``).
    """
    clip = build_clip(model.vision_cfg, text_cfg, embed_dim, pool_type=pool_type)
    missing, unexpected = clip.visual.load_state_dict(model.visual.state_dict(), strict=False)
    if unexpected or set(missing) != {"proj"}:
        raise RuntimeError(
            f"LiT: the SuperClass tower does not fit the CLIP tower (missing {missing}, "
            f"unexpected {unexpected})"
        )
    clip.lock_image_tower(unlocked_groups=unlocked_groups)
    return clip


@contextlib.contextmanager
def _without_projection(visual: nn.Module) -> Iterator[nn.Module]:
    proj = getattr(visual, "proj", None)
    if proj is None:
        yield visual
        return
    visual.proj = None
    try:
        yield visual
    finally:
        visual.proj = proj


def pooled_image_features(visual: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(B, width) pooled tokens of an open_clip ``VisionTransformer``, before any projection.

    The probe point shared by SuperClass (whose tower has no projection) and CLIP (whose
    ``proj`` is linear, so probing before it gives the baseline at least the same information).
    """
    with _without_projection(visual):
        return visual(images)
