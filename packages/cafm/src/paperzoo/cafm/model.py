"""CAFM's generator and discriminator: SiT (a DiT trained as a flow) and its RMSNorm discriminator.

Paper: "Continuous Adversarial Flow Models", Shanchuan Lin, Ceyuan Yang, Zhijie Lin, Hao Chen,
Haoqi Fan, arXiv 2604.11521; official code github.com/ByteDance-Seed/Adversarial-Flow-Models
(``models/cafm/sit/{generator,discriminator,sit_mod}.py``, ``configs/models/cafm/sit/xl2.yaml``,
``configs/train/cafm/train_cafm_sit.yaml``). The backbone is SiT (Ma et al., arXiv 2401.08740,
github.com/willisma/SiT ``models.py``), which has DiT's network and key names:
:class:`paperzoo.gen.dit.DiT`.

- :class:`CAFMGenerator` is a DiT whose state dict is the official SiT checkpoint's (SiT-XL/2:
  ``learn_sigma=True``, 8 output channels, 1001 label rows, the last the null class), with
  ``velocity(x_t, t, y)`` in paperzoo's convention (x_t = (1 - t) x + t eps, v = eps - x). SiT runs
  the other way (t = 0 noise, t = 1 data, v = x - eps), so, as the official ``Generator``,
  ``velocity = -SiT(x_t, 1 - t, y)[:, :C]``. ``time_convention="paperzoo"`` is a model trained in
  paperzoo's convention directly (the tiny study's base model): no flip.
- :class:`CAFMDiscriminator` is :class:`paperzoo.gen.dit.DiTDiscriminator` with ``norm="rms"``
  (RMSNorm without affine in every block and the head, as ``SiTMod(norm_type="rms")``) and the
  same time flip as the official ``Discriminator`` (``t = 1.0 - t``); it is initialised from the
  generator's checkpoint (:func:`paperzoo.cafm.convert.discriminator_state_from_generator`).
- Both use 1001 label rows; labels are never dropped inside (the method drops them to the null
  class before both networks, as the official trainer with ``class_dropout_prob: 0.0``).

Sampling (:meth:`CAFMGenerator.sample`) integrates the ODE from t = 1 to 0 with Euler or Heun
(:func:`paperzoo.gen.flow.sample_ode`), guidance-free or with classifier-free guidance.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from paperzoo.gen.dit import DiT, DiTDiscriminator, dit_kwargs

__all__ = [
    "TINY_MNIST",
    "CAFMDiscriminator",
    "CAFMGenerator",
    "FlowSamplerMixin",
    "cafm_sit_xl_2",
    "cafm_sit_xl_2_discriminator",
    "cafm_tiny_mnist",
    "cafm_tiny_mnist_discriminator",
    "discriminator_like",
]

TimeConvention = Literal["sit", "paperzoo"]

# Not from the paper: a 4-block width-64 DiT on 28 px gray digits in 7 px patches (16 tokens),
# 10 classes + the null row, velocity only (no sigma channels), for the CPU study. Time enters
# unscaled in [0, 1], as SiT's: with DiT's t * 1000 the discriminator's time derivative (the
# dt = 1 part of its JVP) was ~10x its x part and drowned it (README, "The tiny study").
TINY_MNIST: dict[str, Any] = dict(
    input_size=28,
    patch_size=7,
    in_channels=1,
    hidden_size=64,
    depth=4,
    num_heads=4,
    num_classes=10,
    learn_sigma=False,
)


def _flip(t: Tensor, convention: TimeConvention) -> Tensor:
    if convention == "sit":
        return 1.0 - t
    if convention == "paperzoo":
        return t
    raise ValueError(f"unknown time_convention {convention!r}; use 'sit' or 'paperzoo'")


class FlowSamplerMixin:
    """Guidance and ODE sampling for a velocity model in paperzoo's convention.

    The class provides ``velocity(x_t, t, y)``, ``in_channels``, ``input_size``, ``null_class``,
    ``output_space`` and ``default_steps``; this mixin adds classifier-free guidance and
    :meth:`sample`, which is the :class:`paperzoo.gen.sample.ClassConditionalSampler` protocol
    (``paperzoo sample``).
    """

    default_steps: int = 125
    default_method: str = "heun"
    output_space: str = "latent"

    def guided_velocity(self, x_t: Tensor, t: Tensor, y: Tensor, cfg_scale: float) -> Tensor:
        """Classifier-free guidance on the velocity: v_null + s (v_y - v_null), the null class as
        the unconditional label, one doubled batch; s = 1 is guidance-free (one pass)."""
        from paperzoo.gen.flow import cfg_velocity

        return cfg_velocity(self.velocity, y, cfg_scale, self.null_class)(x_t, t)

    @torch.no_grad()
    def sample(
        self,
        labels: Tensor,
        *,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        cfg_scale: float | None = None,
        method: Literal["euler", "heun"] | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """Integrate dx/dt = v from t = 1 (noise) to 0: (B,) labels -> (B, C, H, W) samples.

        ``steps``: integration intervals on ``linspace(1, 0, steps + 1)`` (default
        ``default_steps``; SiT: 125 Heun intervals = 250 network evaluations, the official
        validation's "steps: 250, sampler: heun"); ``method``: ``euler`` or ``heun`` (default
        ``default_method``); ``cfg_scale`` None or 1: guidance-free.
        ``noise`` (B, C, H, W), or drawn with ``generator`` on the model's device.
        """
        from paperzoo.gen.flow import sample_ode

        param = next(self.parameters())  # type: ignore[attr-defined]
        labels = labels.to(param.device)
        if noise is None:
            shape = (labels.shape[0], self.in_channels, self.input_size, self.input_size)
            noise = torch.randn(shape, generator=generator, device=param.device, dtype=param.dtype)
        scale = 1.0 if cfg_scale is None else float(cfg_scale)

        def v(x: Tensor, t: Tensor) -> Tensor:
            return self.guided_velocity(x, t, labels, scale)

        was_training = self.training  # type: ignore[attr-defined]
        self.eval()  # type: ignore[attr-defined]
        try:
            n = self.default_steps if steps is None else steps
            how = self.default_method if method is None else method
            return sample_ode(v, noise.to(param.device), n, method=how)
        finally:
            self.train(was_training)  # type: ignore[attr-defined]


class CAFMGenerator(FlowSamplerMixin, DiT):
    """A class-conditional flow model (DiT/SiT network, official key names) used as a velocity.

    ``class_dropout_prob`` > 0 only sizes the table (``num_classes + 1`` rows); the row
    ``num_classes`` is the null class. ``output_space``: what :meth:`sample` returns
    (``"latent"`` for SiT's sd-vae latents, ``"pixel"`` for images in [-1, 1]).
    """

    def __init__(
        self,
        *,
        time_convention: TimeConvention = "sit",
        output_space: Literal["latent", "pixel"] = "latent",
        default_steps: int = 125,
        default_method: Literal["euler", "heun"] = "heun",
        **dit: Any,
    ) -> None:
        super().__init__(**{"class_dropout_prob": 0.1, **dit})
        _flip(torch.zeros(1), time_convention)
        if output_space not in ("latent", "pixel"):
            raise ValueError(f"unknown output_space {output_space!r}; use 'latent' or 'pixel'")
        self.time_convention = time_convention
        self.output_space = output_space
        self.default_steps = default_steps
        self.default_method = default_method
        self.input_size = int(dit.get("input_size", 32))

    @property
    def null_class(self) -> int:
        return self.num_classes

    def velocity(self, x_t: Tensor, t: Tensor, y: Tensor) -> Tensor:
        """(B, C, H, W), (B,) in [0, 1] (1 = noise), (B,) labels (``null_class`` allowed) ->
        (B, C, H, W) velocity eps - x."""
        keep = torch.zeros_like(y)  # force_drop_ids of zeros: no label dropout in training
        c = self.condition(_flip(t, self.time_convention), y, force_drop_ids=keep)
        out = self.head(self.run_blocks(self.embed(x_t), c), c)[:, : self.in_channels]
        return -out if self.time_convention == "sit" else out


class CAFMDiscriminator(DiTDiscriminator):
    """The CAFM discriminator: ``forward(x_t, t, y) -> (B,)`` in paperzoo's convention, feeding the
    backbone SiT's time (1 - t) when ``time_convention="sit"``. No label dropout inside (the
    table has as many rows as the generator's, ``class_dropout_prob`` 0, as the official config).
    """

    def __init__(self, *, time_convention: TimeConvention = "sit", **dit: Any) -> None:
        dit = {**dit, "class_dropout_prob": 0.0}
        dit.pop("learn_sigma", None)
        super().__init__(norm="rms", **dit)
        _flip(torch.zeros(1), time_convention)
        self.time_convention = time_convention

    def forward(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        return super().forward(x, _flip(t, self.time_convention), y)


def discriminator_like(generator: CAFMGenerator) -> CAFMDiscriminator:
    """A discriminator with ``generator``'s backbone shape (label rows included, ``num_classes +
    1``) and time convention; its weights are fresh (copy them with
    :func:`paperzoo.cafm.convert.discriminator_state_from_generator`)."""
    return CAFMDiscriminator(
        time_convention=generator.time_convention,
        input_size=generator.input_size,
        patch_size=generator.patch_size,
        in_channels=generator.in_channels,
        hidden_size=generator.hidden_size,
        depth=generator.depth,
        num_heads=generator.num_heads,
        mlp_ratio=generator.blocks[0].mlp.fc1.out_features / generator.hidden_size,
        num_classes=generator.y_embedder.embedding_table.num_embeddings,
    )


def cafm_sit_xl_2(**overrides: Any) -> CAFMGenerator:
    """SiT-XL/2 on 256 px ImageNet latents (4 x 32 x 32), ``learn_sigma`` (8 output channels),
    1000 classes + null: the official ``SiT-XL-2-256x256.pt`` layout."""
    return CAFMGenerator(
        **dit_kwargs(
            "XL", **{"input_size": 32, "num_classes": 1000, "learn_sigma": True, **overrides}
        )
    )


def cafm_sit_xl_2_discriminator(**overrides: Any) -> CAFMDiscriminator:
    """The SiT-XL/2 discriminator (``dis: xl2``, ``norm_type: rms``): backbone + ``dis_embed`` +
    RMSNorm + Linear(1152, 1)."""
    return CAFMDiscriminator(
        **dit_kwargs("XL", **{"input_size": 32, "num_classes": 1001, **overrides})
    )


def cafm_tiny_mnist(**overrides: Any) -> CAFMGenerator:
    """Not from the paper: the tiny study's pixel-space velocity model (:data:`TINY_MNIST`);
    samples with 10 Heun intervals (20 evaluations), the study's sampler."""
    defaults = {"time_convention": "paperzoo", "output_space": "pixel", "default_steps": 10}
    return CAFMGenerator(**{**defaults, **TINY_MNIST, **overrides})


def cafm_tiny_mnist_discriminator(**overrides: Any) -> CAFMDiscriminator:
    """Not from the paper: the tiny study's discriminator (11 label rows)."""
    kw = {**TINY_MNIST, "num_classes": TINY_MNIST["num_classes"] + 1}
    return CAFMDiscriminator(**{"time_convention": "paperzoo", **kw, **overrides})
