"""``paperzoo sample``: draw class-conditional samples from a registered model into a PNG grid.

The command is DiT's ``sample.py`` (facebookresearch/DiT; Peebles & Xie, arXiv 2212.09748) made
model-agnostic: labels = each class repeated ``--per-class`` times, one seeded generator, the model's
own sampler, the sd-vae-ft-mse decoder for latent models, then one PNG grid with a row per class::

    paperzoo sample advflow_xl2_1nfe --checkpoint-path xl2_1nfe_guided.pth \\
        --vae-path sd-vae-ft-mse.safetensors --classes 207,360 --per-class 4 --out grid.png

Models take part by implementing :class:`ClassConditionalSampler`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

__all__ = ["ClassConditionalSampler", "SampleError", "main", "sample_grid"]

OUTPUT_SPACES = ("latent", "pixel")


@runtime_checkable
class ClassConditionalSampler(Protocol):
    """What ``paperzoo sample`` needs from ``paperzoo.core.create_model(name, ...)``.

    - ``output_space``: ``"pixel"`` if :meth:`sample` returns images in [-1, 1]; ``"latent"`` if
      it returns sd-vae-ft-mse latents already multiplied by the scaling factor 0.18215 (the
      command decodes them with the VAE given by ``--vae-path``).
    - ``num_classes`` (optional, an ``int`` attribute): when present, ``--classes`` is checked
      against ``range(num_classes)``.
    - ``sample(labels, *, generator, steps=None, cfg_scale=None)``: ``labels`` (B,) int64 on the
      model's device; ``generator`` is the only source of randomness (same seed, same samples);
      ``steps`` / ``cfg_scale`` of ``None`` mean the model's own defaults (e.g. 1 for a one-step
      generator, 1.0 for no guidance). Returns (B, C, H, W) float. Called under ``torch.no_grad``.
    """

    output_space: str

    def sample(
        self,
        labels: torch.Tensor,
        *,
        generator: torch.Generator,
        steps: int | None = None,
        cfg_scale: float | None = None,
    ) -> torch.Tensor: ...


class SampleError(ValueError):
    """A user-facing problem with the request (model, classes, VAE); printed without a trace."""


def sample_grid(
    model: ClassConditionalSampler,
    classes: Sequence[int],
    out: str | Path,
    *,
    per_class: int = 4,
    steps: int | None = None,
    cfg_scale: float | None = None,
    seed: int = 0,
    vae_path: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> Path:
    """Sample ``per_class`` images of each class and write them as a grid, one row per class."""
    _check_protocol(model)
    _check_classes(model, classes)
    if model.output_space == "latent" and vae_path is None:
        raise SampleError(
            "this model samples sd-vae-ft-mse latents; pass --vae-path to the VAE weights "
            "(a diffusers or CompVis AutoencoderKL file)"
        )
    device = torch.device(device)
    model = model.to(device).eval()
    labels = torch.tensor(list(classes), dtype=torch.int64, device=device)
    labels = labels.repeat_interleave(per_class)
    generator = torch.Generator(device).manual_seed(seed)
    with torch.no_grad():
        images = model.sample(labels, generator=generator, steps=steps, cfg_scale=cfg_scale)
        if model.output_space == "latent":
            from paperzoo.gen.vae import decode, sd_vae

            images = decode(sd_vae(vae_path).to(device), images)
    from paperzoo.gen.grid import save_grid

    return save_grid(images, out, nrow=per_class)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``paperzoo sample`` (``argv`` without the command name)."""
    args = _parser().parse_args(argv)
    from paperzoo.core import UnknownNameError, create_model

    try:
        model = create_model(args.model, checkpoint_path=args.checkpoint_path)
        path = sample_grid(
            model,
            args.classes,
            args.out,
            per_class=args.per_class,
            steps=args.steps,
            cfg_scale=args.cfg_scale,
            seed=args.seed,
            vae_path=args.vae_path,
            device=args.device,
        )
    except (UnknownNameError, SampleError, FileNotFoundError) as exc:
        print(f"paperzoo sample: error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="paperzoo sample",
        description="Sample a class-conditional generator by name and write a PNG grid "
        "(one row per class).",
    )
    p.add_argument("model", help="registered model name (`paperzoo list models`)")
    p.add_argument("--checkpoint-path", help="local weights, in the paper's official layout")
    p.add_argument(
        "--classes", required=True, type=_class_list, help="comma-separated ids, e.g. 207,360"
    )
    p.add_argument("--per-class", type=int, default=4, help="samples per class (default 4)")
    p.add_argument("--steps", type=int, help="sampling steps (default: the model's)")
    p.add_argument(
        "--cfg-scale", type=float, help="classifier-free guidance scale (default: the model's)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vae-path", help="sd-vae-ft-mse weights, needed by latent-space models")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True, type=Path, help="PNG file to write")
    return p


def _class_list(text: str) -> list[int]:
    try:
        classes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not classes:
        raise argparse.ArgumentTypeError("no class ids given")
    return classes


def _check_protocol(model: object) -> None:
    if not isinstance(model, torch.nn.Module) or not isinstance(model, ClassConditionalSampler):
        raise SampleError(
            f"{type(model).__name__} is not a class-conditional sampler: `paperzoo sample` needs an "
            "nn.Module with `output_space` and `sample(labels, *, generator, steps, cfg_scale)` "
            "(paperzoo.gen.sample.ClassConditionalSampler)"
        )
    if model.output_space not in OUTPUT_SPACES:
        raise SampleError(
            f"{type(model).__name__}.output_space is {model.output_space!r}; "
            f"expected one of {OUTPUT_SPACES}"
        )


def _check_classes(model: object, classes: Sequence[int]) -> None:
    num_classes = getattr(model, "num_classes", None)
    bad = [c for c in classes if c < 0 or (num_classes is not None and c >= num_classes)]
    if bad:
        allowed = f"0..{num_classes - 1}" if num_classes is not None else "non-negative"
        raise SampleError(f"class ids {bad} out of range: this model takes {allowed}")
