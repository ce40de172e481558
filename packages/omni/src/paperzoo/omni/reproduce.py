"""Runner of the Omni tiny study: ``paperzoo reproduce omni`` (one cell per arm x seed).

1. Data: rendered box scenes with one nearer/farther question each
   (:func:`paperzoo.omni.scenes.depth_question_set`), generated once into the study's shared
   folder (``OUT/_shared/scenes``) and reused by every cell: train, and the eval split.
2. :func:`paperzoo.omni.model.omni_tiny` from ``cfg.seed``, trained by
   :class:`~paperzoo.omni.method.ContextUnrollingMethod` with :class:`paperzoo.train.Trainer`.
3. Evaluation on ``cfg.eval.split`` through :meth:`Omni.unroll` with the arm's primitives:
   ``accuracy`` (% of questions answered with the right colour), ``accuracy_size_misleading``
   (on the half where the nearer box covers fewer pixels), ``depth_mae`` (world units, mean
   absolute error of the model's own depth over the pixels that hit a surface; the depth pass
   is trained in every arm), and ``train_accuracy`` (on up to 1,000 labelled train questions).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from paperzoo.core import create_model
from paperzoo.core.run import RunContext, RunResult
from paperzoo.omni.method import ContextUnrollingMethod, context_primitives
from paperzoo.omni.model import Omni
from paperzoo.omni.recipes import OmniRecipeConfig
from paperzoo.omni.scenes import SceneQA, depth_question_set
from paperzoo.train import Trainer, seed_everything

__all__ = ["DepthQuestions", "evaluate", "load_split", "run"]


class DepthQuestions(Dataset):
    """A :class:`SceneQA` split as items ``{"image" (3, S, S), "pose" (12,), "question" (L,),
    "answer" (), "depth" (S, S) z-depth (inf: sky), "size_agrees" ()}``."""

    def __init__(self, qa: SceneQA) -> None:
        self.images = torch.from_numpy(qa.images).permute(0, 3, 1, 2).contiguous()
        self.depth = torch.from_numpy(qa.depth)
        self.poses = torch.from_numpy(qa.poses)
        self.questions = torch.from_numpy(qa.questions)
        self.answers = torch.from_numpy(qa.answers)
        self.size_agrees = torch.from_numpy(qa.size_agrees)

    def __len__(self) -> int:
        return len(self.answers)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "image": self.images[i], "pose": self.poses[i], "question": self.questions[i],
            "answer": self.answers[i], "depth": self.depth[i], "size_agrees": self.size_agrees[i],
        }  # fmt: skip

    def batch(self, idx: slice) -> dict[str, torch.Tensor]:
        return {
            "image": self.images[idx], "pose": self.poses[idx], "question": self.questions[idx],
            "answer": self.answers[idx], "depth": self.depth[idx],
            "size_agrees": self.size_agrees[idx],
        }  # fmt: skip


def load_split(cfg: OmniRecipeConfig, split: str, folder: Path) -> SceneQA:
    """The split's questions, rendered once into ``folder`` (keyed by the scene settings)."""
    s = cfg.scenes
    num = {"train": s.num_train, "val": s.num_val, "test": s.num_test}[split]
    key = hashlib.sha1(json.dumps(asdict(s), sort_keys=True).encode()).hexdigest()[:10]
    path = folder / f"{split}_{num}_{key}.npz"
    if path.is_file():
        return SceneQA.load(path)
    qa = depth_question_set(
        split, num, data_seed=s.data_seed, image_size=s.image_size, num_boxes=tuple(s.num_boxes),
        min_pixels=s.min_pixels, min_gap=s.min_gap, depth_range=tuple(s.depth_range),
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    qa.save(tmp)
    tmp.rename(path)
    return qa


@torch.no_grad()
def evaluate(
    model: Omni, data: DepthQuestions, context: str, batch_size: int, device: torch.device
) -> dict[str, float]:
    """Accuracy (%) with the arm's context, on the misleading-size half, and own-depth MAE."""
    primitives, oracle = context_primitives(context)
    model.eval()
    correct, misleading, n_mis, abs_err, n_px = 0, 0, 0, 0.0, 0
    for start in range(0, len(data), batch_size):
        b = {k: v.to(device) for k, v in data.batch(slice(start, start + batch_size)).items()}
        given = {"depth": b["depth"]} if oracle else None
        out = model.unroll(b, primitives, given=given)
        hit = out["answer"] == b["answer"]
        correct += int(hit.sum())
        mis = ~b["size_agrees"]
        misleading += int(hit[mis].sum())
        n_mis += int(mis.sum())
        pred = out["intermediates"].get("depth")
        if pred is None or oracle:
            pred, _ = model.generate(model.prompt(b), "depth", b)
            pred = pred.clamp(0.0, 1.0) * model.depth_far
        true = b["depth"]
        surface = torch.isfinite(true) & (true < model.depth_far)
        abs_err += float((pred - true).abs()[surface].sum())
        n_px += int(surface.sum())
    return {
        "accuracy": 100.0 * correct / len(data),
        "accuracy_size_misleading": 100.0 * misleading / max(n_mis, 1),
        "depth_mae": abs_err / max(n_px, 1),
    }


def run(cfg: OmniRecipeConfig, ctx: RunContext) -> RunResult:
    """Train the tiny Omni with the arm's context, then evaluate; see the module docstring."""
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    if cfg.data.dataset != "depth_questions":
        raise ValueError(
            f"unknown data.dataset {cfg.data.dataset!r}; the tiny study has 'depth_questions' "
            "(rendered scenes); Omni's own data are not released"
        )
    start = time.perf_counter()
    folder = (Path(cfg.data.root) if cfg.data.root else (ctx.shared_dir or ctx.out_dir)) / "scenes"
    train = DepthQuestions(load_split(cfg, "train", folder))
    labelled = cfg.scenes.num_train_answers or len(train)
    train.answers[labelled:] = -1
    test = DepthQuestions(load_split(cfg, cfg.eval.split, folder))
    data_seconds = time.perf_counter() - start
    seed_everything(cfg.seed)
    a = cfg.arch
    model = create_model(
        cfg.model, dim=a.dim, depth=a.depth, num_heads=a.num_heads, mlp_hidden=a.mlp_hidden,
        num_experts=a.num_experts, top_k=a.top_k, patch_size=a.patch_size,
        image_size=cfg.scenes.image_size,
    )  # fmt: skip
    u = cfg.omni
    method = ContextUnrollingMethod(model, context=u.context, depth_weight=u.depth_weight,
                                    balance_weight=u.balance_weight, train_write=u.train_write)  # fmt: skip
    trainer = Trainer(
        method, train, ctx, cfg.trainer, cfg.optim, batch_size=cfg.data.batch_size,
        num_workers=cfg.data.num_workers, seed=cfg.seed, drop_last=True,
    )  # fmt: skip
    state = trainer.fit()
    t0 = time.perf_counter()
    metrics = evaluate(model, test, u.context, cfg.eval.batch_size, trainer.device)
    metrics["train_accuracy"] = evaluate_subset(
        model, train, min(1000, labelled), u.context, cfg.eval.batch_size, trainer.device
    )
    loads = [blk.moe.last_load.tolist() for blk in model.blocks if blk.moe.last_load is not None]
    extra: dict[str, Any] = {
        "data_seconds": round(data_seconds, 2),
        "train_wall_seconds": round(state.wall_seconds, 2),
        "eval_wall_seconds": round(time.perf_counter() - t0, 2),
        "final_train": {k: float(v) for k, v in dict(state.metrics).items()},
        "eval_split": cfg.eval.split,
        "num_eval": len(test),
        "expert_load_last_batch": loads,
        "num_params": sum(p.numel() for p in model.parameters()),
    }
    return RunResult(metrics=metrics, steps=state.step, extra=extra)


def evaluate_subset(model, data: DepthQuestions, n: int, context: str, batch_size: int, device):
    """Accuracy (%) on the first ``n`` items of ``data``."""
    idx = np.arange(n)
    sub = DepthQuestions.__new__(DepthQuestions)
    for name in ("images", "depth", "poses", "questions", "answers", "size_agrees"):
        setattr(sub, name, getattr(data, name)[idx])
    return evaluate(model, sub, context, batch_size, device)["accuracy"]
