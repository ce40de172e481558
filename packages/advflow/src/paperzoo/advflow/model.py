"""Adversarial Flow Models: the DiT generators and the DiT discriminator.

Lin, Yang, Lin, Chen, Fan, "Adversarial Flow Models", arXiv:2511.22475. Official code:
github.com/ByteDance-Seed/Adversarial-Flow-Models, read for this file:
``models/afm/dit/generator.py`` (``Generator(use_t_src, use_t_tgt)``),
``models/generator_deep.py`` (``GeneratorDeep(repeat)``), ``models/afm/dit/discriminator.py``,
``configs/models/{b2,m2,l2,xl2}.yaml`` (``learn_sigma: False``, ``class_dropout_prob: 0.0``) and
``train_adversarial_flow.py`` (``inference``: t = linspace(1, 0, steps + 1); v-prediction
x_tgt = x_src + (t_tgt - t_src)·v).

The backbone is paperzoo-gen's :class:`~paperzoo.gen.dit.DiT` (facebookresearch/DiT key
names), so ``state_dict()`` has the official checkpoints' keys as they are:

- **1NFE** (``kind="1nfe"``): G(z, y) -> x, no ``t_embedder``.
- **fixed N steps** (``"fixed"``): ``t_embedder`` on t_src·1000, v-prediction.
- **any-step** (``"any"``): also ``t_tgt_embedder`` (the official name) on t_tgt·1000.
- **deep** (``"deep"``): the blocks run ``repeat`` times (56 / 112 layers for XL/2), pass i
  conditioned on y + t_embedder(t_i·1000), t_i in linspace(1, 0) without the 0
  ({1, 0.5} or {1, 0.75, 0.5, 0.25}); the output head sees the label embedding only.

Both networks take the official argument order, ``(x, y, t...)``, and scale t by 1000
themselves (callers pass t in [0, 1]). Interpolation: x_t = (1 - t)·x + t·ε (t = 1 noise).
"""

from __future__ import annotations

import itertools
from typing import Literal

import torch
from torch import Tensor, nn

from paperzoo.gen.dit import DiT, DiTDiscriminator, TimestepEmbedder, dit_kwargs

__all__ = [
    "TINY",
    "AdvFlowClassifier",
    "AdvFlowDiscriminator",
    "AdvFlowGenerator",
    "GeneratorKind",
    "advflow_b2_1nfe",
    "advflow_b2_anystep",
    "advflow_b2_classifier",
    "advflow_b2_discriminator",
    "advflow_l2_1nfe",
    "advflow_l2_discriminator",
    "advflow_m2_1nfe",
    "advflow_m2_discriminator",
    "advflow_tiny_1nfe",
    "advflow_tiny_classifier",
    "advflow_tiny_discriminator",
    "advflow_xl2_1nfe",
    "advflow_xl2_2nfe",
    "advflow_xl2_4nfe",
    "advflow_xl2_56layer_1nfe",
    "advflow_xl2_112layer_1nfe",
    "advflow_xl2_discriminator",
    "build_classifier",
    "build_discriminator",
    "build_generator",
]

GeneratorKind = Literal["1nfe", "fixed", "any", "deep"]

# Official configs (configs/models/*.yaml): 4-channel 32 x 32 latents of 256 px images, no
# sigma channels, no null class row.
_IMAGENET = dict(input_size=32, in_channels=4, num_classes=1000, learn_sigma=False,
                 class_dropout_prob=0.0)  # fmt: skip

# Not from the paper: the tiny study's pixel-space size (28 x 28 gray digits, patch 7 -> 16
# tokens), 4 blocks of width 96. Chosen on the validation digits over patch 4 / width 64, which
# trained slower per second of CPU (README "The tiny study").
TINY = dict(input_size=28, patch_size=7, in_channels=1, hidden_size=96, depth=4, num_heads=4,
            num_classes=10, learn_sigma=False, class_dropout_prob=0.0)  # fmt: skip


def _t1000(t: Tensor | float, batch: int, device: torch.device) -> Tensor:
    """t in [0, 1] (scalar or (B,)) -> (B,) t·1000, the official scaling to DiT's 0..999."""
    t = torch.as_tensor(t, dtype=torch.float32, device=device)
    return (t.expand(batch) if t.ndim == 0 else t) * 1000.0


class AdvFlowGenerator(DiT):
    """An adversarial flow generator on (B, C, H, W) inputs (latents or pixels).

    ``kind`` (see the module docstring) fixes the time embedders and the prediction; ``steps``
    is the number of steps it is trained for (1 for 1NFE and deep, N for fixed, None for
    any-step). ``output_space`` says what :meth:`sample` returns: ``"latent"`` (VAE latents,
    to be decoded) or ``"pixel"`` (images in [-1, 1]).
    """

    def __init__(
        self,
        *,
        kind: GeneratorKind = "1nfe",
        steps: int | None = 1,
        repeat: int = 1,
        output_space: Literal["latent", "pixel"] = "latent",
        **dit_args,
    ) -> None:
        if kind not in ("1nfe", "fixed", "any", "deep"):
            raise ValueError(f"unknown generator kind {kind!r}: '1nfe', 'fixed', 'any' or 'deep'")
        if kind in ("1nfe", "deep") and steps != 1:
            raise ValueError(f"a {kind} generator predicts x in one step; got steps={steps}")
        if kind == "fixed" and (steps is None or steps < 1):
            raise ValueError(f"a fixed-step generator needs steps >= 1, got {steps}")
        if kind == "any" and steps is not None:
            raise ValueError("an any-step generator is trained with steps=None")
        if (kind == "deep") != (repeat > 1):
            raise ValueError(f"repeat > 1 is the deep generator's only; got {kind=} {repeat=}")
        super().__init__(**dit_args, time_embedder=kind != "1nfe", repeat=repeat)
        self.kind = kind
        self.steps = steps
        self.prediction = "v" if kind in ("fixed", "any") else "x"
        self.output_space = output_space
        self.t_tgt_embedder: TimestepEmbedder | None = None
        if kind == "any":
            # Official Generator(use_t_tgt=True): created after the DiT init, N(0, 0.02) MLP
            # weights and PyTorch's default biases.
            self.t_tgt_embedder = TimestepEmbedder(self.hidden_size)
            nn.init.normal_(self.t_tgt_embedder.mlp[0].weight, std=0.02)
            nn.init.normal_(self.t_tgt_embedder.mlp[2].weight, std=0.02)

    def forward(  # type: ignore[override]
        self, x: Tensor, y: Tensor, t_src: Tensor | None = None, t_tgt: Tensor | None = None
    ) -> Tensor:
        """x (B, C, H, W) at t_src, y (B,) labels, t in [0, 1] ((B,) or scalar; unused by 1NFE
        and deep) -> the raw output (B, C, H, W): x̂ (x-prediction) or v (v-prediction)."""
        b, device = x.shape[0], x.device
        tokens = self.embed(x)
        if self.kind == "deep":
            c = self.y_embedder(y, self.training)
            assert self.t_embedder is not None
            passes = torch.arange(1.0, 0.0, -1.0 / self.repeat).tolist()
            conditions = [c + self.t_embedder(_t1000(t, b, device)) for t in passes]
            return self.head(self.run_blocks(tokens, conditions), c)
        c = self.condition(None if self.kind == "1nfe" else _t1000(_need(t_src), b, device), y)
        if self.t_tgt_embedder is not None:
            c = c + self.t_tgt_embedder(_t1000(_need(t_tgt), b, device))
        return self.head(self.run_blocks(tokens, c), c)

    def predict_target(self, x_src: Tensor, y: Tensor, t_src: Tensor, t_tgt: Tensor) -> Tensor:
        """x̂_tgt: the output itself (x-prediction) or x_src + (t_tgt - t_src)·v."""
        out = self(x_src, y, t_src, t_tgt)
        if self.prediction == "x":
            return out
        dt = torch.as_tensor(t_tgt - t_src, dtype=out.dtype, device=out.device)
        return x_src + dt.reshape(-1, *([1] * (x_src.ndim - 1))) * out

    @torch.no_grad()
    def sample(
        self,
        labels: Tensor,
        *,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        cfg_scale: float | None = None,
    ) -> Tensor:
        """(B,) labels -> (B, C, H, W) samples from N(0, I) noise drawn with ``generator``:
        ``steps`` transitions along t = linspace(1, 0, steps + 1) (default: the trained
        steps; any-step: 8, as the official ``inference``). No classifier-free guidance."""
        if cfg_scale not in (None, 1.0):
            raise ValueError("advflow generators have no null class: cfg_scale is not supported")
        steps = steps or self.steps or 8
        if self.prediction == "x" and steps != 1:
            raise ValueError(f"this {self.kind} generator samples in one step, not {steps}")
        if self.kind == "fixed" and steps != self.steps:
            raise ValueError(f"this generator was trained for {self.steps} steps, not {steps}")
        p = next(self.parameters())
        size = self.x_embedder.img_size
        x = torch.randn(
            (labels.shape[0], self.in_channels, *size), generator=generator,
            device=generator.device if generator is not None else p.device, dtype=p.dtype,
        ).to(p.device)  # fmt: skip
        labels = labels.to(p.device)
        ts = torch.linspace(1.0, 0.0, steps + 1, device=p.device)
        was_training = self.training
        self.eval()
        try:
            for t_src, t_tgt in itertools.pairwise(ts):
                x = self.predict_target(x, labels, t_src.expand(len(x)), t_tgt.expand(len(x)))
        finally:
            self.train(was_training)
        return x


def _need(t: Tensor | None) -> Tensor:
    if t is None:
        raise ValueError("this generator is time-conditioned: pass t_src (and t_tgt)")
    return t


class AdvFlowDiscriminator(DiTDiscriminator):
    """The class-conditioned DiT discriminator (official ``Discriminator``); ``use_time``
    (multi-step models) also conditions it on t_tgt through a ``t_embedder``."""

    def __init__(self, *, use_time: bool = False, **dit_args) -> None:
        super().__init__(norm="layer", **dit_args, time_embedder=use_time)

    @property
    def uses_time(self) -> bool:
        return self.t_embedder is not None

    def forward(self, x: Tensor, y: Tensor, t: Tensor | None = None) -> Tensor:  # type: ignore[override]
        """x (B, C, H, W), y (B,), t (B,) in [0, 1] or None -> (B,) logits."""
        t1000 = None if t is None else _t1000(t, x.shape[0], x.device)
        c = self.condition(t1000, y)
        return self.head(self.run_blocks(self.embed(x), c), c)


class AdvFlowClassifier(DiT):
    """The noisy-latent classifier of the guided stage (official ``models/afm/dit/classifier.py``
    ``Classifier``, config ``train_afm_1nfe_cg.yaml`` ``cls.model``: B/2).

    The DiT backbone with its time embedder and no label embedder: a learnable token
    ``cls_embed`` [D] (randn·0.02) is prepended to the position-embedded patches, every block is
    modulated by ``t_embedder(t·1000)`` alone, and ``final_layer = Sequential(LayerNorm without
    affine, Linear(D, num_classes))`` reads that token. Keys: the DiT backbone's without
    ``y_embedder.*`` and DiT's ``final_layer``, plus ``cls_embed`` and ``final_layer.1.*``.
    """

    def __init__(self, **dit_args) -> None:
        dit_args = {**dit_args, "class_dropout_prob": 0.0, "learn_sigma": False}
        super().__init__(**dit_args, time_embedder=True, final_layer=False)
        del self.y_embedder  # the official deletes it: no label input
        # Created after the DiT init, as the official: randn·0.02 and PyTorch's default Linear.
        self.cls_embed = nn.Parameter(torch.randn(self.hidden_size) * 0.02)
        self.final_layer = nn.Sequential(
            nn.LayerNorm(self.hidden_size, elementwise_affine=False, eps=1e-6),
            nn.Linear(self.hidden_size, self.num_classes, bias=True),
        )

    def forward(self, x: Tensor, t: Tensor) -> Tensor:  # type: ignore[override]
        """x (B, C, H, W) at t, t (B,) or scalar in [0, 1] -> (B, num_classes) logits."""
        tokens = self.embed(x)
        token = self.cls_embed.to(tokens.dtype).expand(tokens.shape[0], 1, -1)
        tokens = torch.cat([token, tokens], dim=1)
        assert self.t_embedder is not None
        c = self.t_embedder(_t1000(t, x.shape[0], x.device))
        return self.final_layer(self.run_blocks(tokens, c)[:, 0])


def build_classifier(size: str, **overrides) -> AdvFlowClassifier:
    """The classifier at DiT size ``size`` on ImageNet latents (or ``"tiny"``), as
    :func:`build_generator`."""
    if size == "tiny":
        args = {**TINY, **overrides}
    else:
        args = {**dit_kwargs(size, patch_size=2, **_IMAGENET), **overrides}
    return AdvFlowClassifier(**args)


def build_generator(
    size: str, *, kind: GeneratorKind = "1nfe", steps: int | None = 1, repeat: int = 1,
    **overrides,
) -> AdvFlowGenerator:  # fmt: skip
    """An ImageNet-256 generator at DiT size ``size`` (``B``, ``M``, ``L``, ``XL``; patch 2),
    or ``"tiny"`` (:data:`TINY`, pixel space)."""
    if size == "tiny":
        args = {**TINY, "output_space": "pixel", **overrides}
    else:
        args = {**dit_kwargs(size, patch_size=2, **_IMAGENET), **overrides}
    return AdvFlowGenerator(kind=kind, steps=steps, repeat=repeat, **args)


def build_discriminator(size: str, *, use_time: bool = False, **overrides) -> AdvFlowDiscriminator:
    """The discriminator at DiT size ``size`` (or ``"tiny"``), as :func:`build_generator`."""
    if size == "tiny":
        args = {**TINY, **overrides}
    else:
        args = {**dit_kwargs(size, patch_size=2, **_IMAGENET), **overrides}
    return AdvFlowDiscriminator(use_time=use_time, **args)


# -- the released models (checkpoint names in the README) -------------------------------------


def advflow_b2_1nfe(**kwargs) -> AdvFlowGenerator:
    """B/2 1NFE (``b2_1nfe_*.pth``)."""
    return build_generator("B", **kwargs)


def advflow_m2_1nfe(**kwargs) -> AdvFlowGenerator:
    """M/2 1NFE (``m2_1nfe_*.pth``)."""
    return build_generator("M", **kwargs)


def advflow_l2_1nfe(**kwargs) -> AdvFlowGenerator:
    """L/2 1NFE (``l2_1nfe_*.pth``)."""
    return build_generator("L", **kwargs)


def advflow_xl2_1nfe(**kwargs) -> AdvFlowGenerator:
    """XL/2 1NFE (``xl2_1nfe_guided_FID2.38.pth``)."""
    return build_generator("XL", **kwargs)


def advflow_xl2_2nfe(**kwargs) -> AdvFlowGenerator:
    """XL/2, 2 fixed steps, v-prediction (``xl2_2nfe_*.pth``)."""
    return build_generator("XL", **{"kind": "fixed", "steps": 2, **kwargs})


def advflow_xl2_4nfe(**kwargs) -> AdvFlowGenerator:
    """XL/2, 4 fixed steps, v-prediction (``xl2_4nfe_guided_FID2.03.pth``)."""
    return build_generator("XL", **{"kind": "fixed", "steps": 4, **kwargs})


def advflow_xl2_56layer_1nfe(**kwargs) -> AdvFlowGenerator:
    """XL/2's 28 blocks applied twice, 1NFE (``xl2_56layer_1nfe_guided_FID2.08.pth``)."""
    return build_generator("XL", **{"kind": "deep", "repeat": 2, **kwargs})


def advflow_xl2_112layer_1nfe(**kwargs) -> AdvFlowGenerator:
    """XL/2's 28 blocks applied 4 times, 1NFE (``xl2_112layer_1nfe_guided_FID1.94.pth``)."""
    return build_generator("XL", **{"kind": "deep", "repeat": 4, **kwargs})


def advflow_b2_anystep(**kwargs) -> AdvFlowGenerator:
    """B/2 any-step (``configs/train/train_any_nfe.yaml``; no released checkpoint)."""
    return build_generator("B", **{"kind": "any", "steps": None, **kwargs})


def advflow_b2_classifier(**kwargs) -> AdvFlowClassifier:
    """The guided stage's B/2 noisy-latent classifier (official ``classifier.pth``)."""
    return build_classifier("B", **kwargs)


def advflow_b2_discriminator(**kwargs) -> AdvFlowDiscriminator:
    return build_discriminator("B", **kwargs)


def advflow_m2_discriminator(**kwargs) -> AdvFlowDiscriminator:
    return build_discriminator("M", **kwargs)


def advflow_l2_discriminator(**kwargs) -> AdvFlowDiscriminator:
    return build_discriminator("L", **kwargs)


def advflow_xl2_discriminator(**kwargs) -> AdvFlowDiscriminator:
    return build_discriminator("XL", **kwargs)


def advflow_tiny_1nfe(**kwargs) -> AdvFlowGenerator:
    """Not from the paper: the tiny study's 1NFE generator (28 x 28 digits, pixel space)."""
    return build_generator("tiny", **kwargs)


def advflow_tiny_discriminator(**kwargs) -> AdvFlowDiscriminator:
    """Not from the paper: the tiny study's discriminator."""
    return build_discriminator("tiny", **kwargs)


def advflow_tiny_classifier(**kwargs) -> AdvFlowClassifier:
    """Not from the paper: a classifier of the tiny study's size (28 x 28 digits)."""
    return build_classifier("tiny", **kwargs)
