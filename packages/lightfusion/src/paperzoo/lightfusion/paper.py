"""The ``paper`` recipe's pipeline: official stage 1 on an image-caption folder.

Inputs, all local (nothing is downloaded): ``vlm_path`` a transformers Qwen2.5-VL folder (model
and tokenizer), ``vgen_path`` a diffusers Wan2.2-TI2V-5B folder (or its ``transformer/``),
``vae_path`` a diffusers ``AutoencoderKLWan`` folder (or a pipeline root with ``vae/``), and
``--data ROOT`` with ``captions.jsonl`` (``{"file": "a.jpg", "caption": "..."}`` per line) next
to the images. Images are resized and center-cropped to ``data.image_size``, encoded by the
VAE under ``no_grad`` each step (as the official loop does) and normalised with the VAE's
``latents_mean`` / ``latents_std``; captions are wrapped ``<|im_start|> text <|im_end|>`` (the
official ``prepare_prompts``); the empty caption is the text-dropout / unconditional prompt.
Not run here at full size; the tests run it end to end on tiny saved models.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from paperzoo.core.run import RunContext, RunResult

__all__ = ["CaptionedImages", "LatentLightFusionFlow", "run_paper"]


class CaptionedImages(Dataset):
    """(image (3, S, S) in [-1, 1], caption) from ``root/captions.jsonl``."""

    def __init__(self, root: str | Path, size: int) -> None:
        from torchvision import transforms

        self.root = Path(root).expanduser()
        index = self.root / "captions.jsonl"
        if not index.is_file():
            raise FileNotFoundError(
                f"{index} not found: --data must be a folder with captions.jsonl lines "
                '{"file": ..., "caption": ...} next to the images'
            )
        self.items = [json.loads(line) for line in index.read_text().splitlines() if line.strip()]
        self.transform = transforms.Compose([
            transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor(),
            transforms.Normalize([0.5] * 3, [0.5] * 3),
        ])  # fmt: skip

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Tensor, str]:
        from PIL import Image

        item = self.items[i]
        with Image.open(self.root / item["file"]) as im:
            return self.transform(im.convert("RGB")), item["caption"]


class _Collate:
    """Tokenise captions ``<bos> text <eos>`` and right-pad."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tok, self.max_length = tokenizer, max_length
        vocab = tokenizer.get_vocab()
        self.bos = vocab.get("<|im_start|>", tokenizer.bos_token_id)
        self.eos = vocab.get("<|im_end|>", tokenizer.eos_token_id)
        if self.bos is None or self.eos is None:
            raise ValueError("the tokenizer has neither <|im_start|>/<|im_end|> nor bos/eos tokens")

    def ids(self, text: str) -> list[int]:
        body = self.tok.encode(text, add_special_tokens=False)[: self.max_length - 2]
        return [self.bos, *body, self.eos]

    def __call__(self, items: list[tuple[Tensor, str]]) -> tuple[Tensor, Tensor, Tensor]:
        encoded = [self.ids(c) for _, c in items]
        length = max(len(e) for e in encoded)
        ids = torch.zeros(len(items), length, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, e in enumerate(encoded):
            ids[i, : len(e)], mask[i, : len(e)] = torch.tensor(e), 1
        return torch.stack([x for x, _ in items]), ids, mask


class LatentLightFusionFlow(nn.Module):
    """:class:`~paperzoo.lightfusion.method.LightFusionFlow` on VAE latents: images are encoded
    (frozen VAE, no grad) and normalised before the flow loss."""

    def __init__(self, flow: nn.Module, vae: nn.Module) -> None:
        super().__init__()
        self.flow = flow
        self.vae = vae.requires_grad_(False).eval()
        cfg = vae.config
        self.register_buffer(
            "mean", torch.tensor(cfg.latents_mean).view(1, -1, 1, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(cfg.latents_std).view(1, -1, 1, 1, 1), persistent=False
        )

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        z = self.vae.encode(images.unsqueeze(2)).latent_dist.sample()
        return (z - self.mean) / self.std

    def training_step(self, batch: Any, step: int) -> dict[str, Tensor]:
        images, ids, mask = batch
        return self.flow.training_step((self.encode(images), ids, mask), step)

    def param_groups(self) -> list[dict]:
        return self.flow.param_groups()

    def trainable_module(self) -> nn.Module:
        return self.flow.model

    def fsdp_modules(self) -> list[nn.Module]:
        return self.flow.fsdp_modules()


def _local(path: str, what: str, flag: str) -> str:
    if not path or not Path(path).expanduser().exists():
        raise FileNotFoundError(f"lightfusion_paper needs {what}: --set {flag}=PATH (a local "
                                f"folder; got {path!r}); nothing is downloaded")  # fmt: skip
    return str(Path(path).expanduser())


def run_paper(cfg: Any, ctx: RunContext) -> RunResult:
    """Train stage 1 (see the module docstring) and save the official layout at the end."""
    from diffusers import AutoencoderKLWan
    from transformers import AutoTokenizer

    from paperzoo.lightfusion.convert import save_official
    from paperzoo.lightfusion.method import LightFusionFlow
    from paperzoo.lightfusion.model import lightfusion_qwen25vl_7b_wan22_5b, load_diffusers_folder
    from paperzoo.train import Trainer, seed_everything
    from paperzoo.train import distributed as dist_utils

    vlm = _local(cfg.vlm_path, "Qwen2.5-VL-7B", "vlm_path")
    vgen = _local(cfg.vgen_path, "Wan2.2-TI2V-5B (diffusers)", "vgen_path")
    vae_dir = _local(cfg.vae_path, "the Wan2.2 VAE (diffusers)", "vae_path")
    root = _local(cfg.data.root, "an image-caption folder", "data.root (--data)")
    seed_everything(cfg.seed)
    tok = AutoTokenizer.from_pretrained(vlm, local_files_only=True)
    model = lightfusion_qwen25vl_7b_wan22_5b(
        vlm, vgen, fusion_mode=cfg.fusion_mode, dtype="float32"
    )
    sub = Path(vae_dir) / "vae"
    vae = load_diffusers_folder(AutoencoderKLWan, sub if sub.is_dir() else vae_dir)
    collate = _Collate(tok, cfg.max_text_length)
    null = torch.tensor(collate.ids(""))
    flow = LightFusionFlow(model, null_ids=null, timestep_shift=cfg.timestep_shift,
                           text_dropout=cfg.text_dropout)  # fmt: skip
    method = LatentLightFusionFlow(flow, vae)
    dataset = CaptionedImages(root, cfg.data.image_size)
    stage = cfg.fusion
    batch = dist_utils.per_process_batch(stage.batch_size, cfg.data.batch_size, ctx.world_size)
    trainer = Trainer(
        method, dataset, ctx, dataclasses.replace(cfg.trainer, max_steps=stage.max_steps, epochs=0),
        stage.optim, batch_size=batch, num_workers=cfg.data.num_workers, seed=cfg.seed,
        collate_fn=collate,
    )  # fmt: skip
    state = trainer.fit()
    if ctx.is_main:
        save_official(model, ctx.out_dir / "official", state.step, name="model")
        if trainer.ema is not None:
            save_official(trainer.ema.module, ctx.out_dir / "official", state.step, name="ema")
    dist_utils.barrier()
    return RunResult(metrics={"train_seconds": state.wall_seconds}, steps=state.step,
                     extra={"images": len(dataset), "fusion_layers": len(model.mm_attn_layers)})  # fmt: skip
