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
from paperzoo.omni.scenes import SceneQA, ViewQA, behind_question_set, depth_question_set
from paperzoo.train import Trainer, seed_everything

__all__ = ["DepthQuestions", "Questions", "evaluate", "load_split", "run"]


# array field of SceneQA / ViewQA -> batch key; images are (N, H, W, 3) and become (N, 3, H, W)
_FIELDS = {
    "images": "image", "depth": "depth", "poses": "pose", "questions": "question",
    "answers": "answer", "size_agrees": "size_agrees", "view_poses": "view_pose",
    "views": "view", "view_boxes": "view_boxes", "num_candidates": "num_candidates",
}  # fmt: skip
_IMAGES = ("images", "views")


class Questions(Dataset):
    """A :class:`SceneQA` or :class:`ViewQA` split as items: ``{"image" (3, S, S), "pose" (12,),
    "question" (L,), "answer" (), "depth" (S, S) z-depth (inf: sky)}`` plus ``"size_agrees"``
    (depth questions) or ``"view_pose"`` (12,), ``"view"`` (3, S, S) and ``"num_candidates"``
    (behind questions)."""

    def __init__(self, qa: SceneQA | ViewQA) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        for name, key in _FIELDS.items():
            if hasattr(qa, name):
                t = torch.from_numpy(getattr(qa, name))
                self.tensors[key] = t.permute(0, 3, 1, 2).contiguous() if name in _IMAGES else t

    @property
    def answers(self) -> torch.Tensor:
        return self.tensors["answer"]

    def __len__(self) -> int:
        return len(self.answers)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}

    def batch(self, idx: slice | np.ndarray) -> dict[str, torch.Tensor]:
        return {k: v[idx] for k, v in self.tensors.items()}

    def subset(self, n: int) -> Questions:
        """The first ``n`` items."""
        sub = Questions.__new__(Questions)
        sub.tensors = {k: v[:n] for k, v in self.tensors.items()}
        return sub


DepthQuestions = Questions  # the name of 0.1.0, when only depth questions existed


def load_split(cfg: OmniRecipeConfig, split: str, folder: Path) -> SceneQA | ViewQA:
    """The split's questions (``data.dataset``: "depth_questions" or "behind_questions"),
    rendered once into ``folder`` (keyed by the scene settings)."""
    s = cfg.scenes
    num = {"train": s.num_train, "val": s.num_val, "test": s.num_test}[split]
    behind = cfg.data.dataset == "behind_questions"
    keyed = asdict(s) if not behind else {**asdict(s), "dataset": "behind_questions", "format": 2}
    key = hashlib.sha1(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:10]
    path = folder / f"{split}_{num}_{key}.npz"
    kind = ViewQA if behind else SceneQA
    if path.is_file():
        return kind.load(path)
    if behind:
        qa = behind_question_set(
            split, num, data_seed=s.data_seed, image_size=s.image_size,
            num_boxes=tuple(s.num_boxes), min_pixels=s.min_pixels,
            min_separation_deg=s.min_separation_deg, depth_range=tuple(s.depth_range),
        )  # fmt: skip
    else:
        qa = depth_question_set(
            split, num, data_seed=s.data_seed, image_size=s.image_size,
            num_boxes=tuple(s.num_boxes), min_pixels=s.min_pixels, min_gap=s.min_gap,
            depth_range=tuple(s.depth_range),
        )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    qa.save(tmp)
    tmp.rename(path)
    return qa


@torch.no_grad()
def evaluate(
    model: Omni,
    data: Questions,
    context: str,
    batch_size: int,
    device: torch.device,
    primitive: str = "depth",
) -> dict[str, float]:
    """Accuracy (%) with the arm's context, and the model's own error on the study's primitive.

    Depth study: also ``accuracy_size_misleading`` (the half where the nearer box covers fewer
    pixels) and ``depth_mae`` (world units, over the pixels that hit a surface). View study:
    ``view_mae`` (mean absolute RGB error of the model's own view, in [0, 1] units) and
    ``accuracy_{2,3}_candidates`` (scenes with 2 or 3 boxes besides the named one).
    """
    primitives, oracle = context_primitives(context)
    truth_key = "depth" if primitive == "depth" else "view"
    model.eval()
    correct = 0
    groups: dict[str, list[int]] = {}
    abs_err, n_err = 0.0, 0
    for start in range(0, len(data), batch_size):
        b = {k: v.to(device) for k, v in data.batch(slice(start, start + batch_size)).items()}
        out = model.unroll(b, primitives, given={primitive: b[truth_key]} if oracle else None)
        hit = out["answer"] == b["answer"]
        correct += int(hit.sum())
        if primitive == "depth":
            masks = {"accuracy_size_misleading": ~b["size_agrees"]}
        else:
            masks = {f"accuracy_{k}_candidates": b["num_candidates"] == k for k in (2, 3)}
        for name, mask in masks.items():
            g = groups.setdefault(name, [0, 0])
            g[0] += int(hit[mask].sum())
            g[1] += int(mask.sum())
        pred = out["intermediates"].get(primitive)
        if pred is None or oracle:
            pred, _ = model.generate(model.prompt(b), primitive, b)
            pred = pred.clamp(0.0, 1.0)
            pred = pred * model.depth_far if primitive == "depth" else pred
        true = b[truth_key]
        if primitive == "depth":
            surface = torch.isfinite(true) & (true < model.depth_far)
            abs_err += float((pred - true).abs()[surface].sum())
            n_err += int(surface.sum())
        else:
            abs_err += float((pred - true).abs().sum())
            n_err += true.numel()
    metrics = {"accuracy": 100.0 * correct / len(data)}
    metrics.update({name: 100.0 * h / max(n, 1) for name, (h, n) in groups.items()})
    metrics[f"{primitive}_mae"] = abs_err / max(n_err, 1)
    return metrics


def run(cfg: OmniRecipeConfig, ctx: RunContext) -> RunResult:
    """Train the tiny Omni with the arm's context, then evaluate; see the module docstring."""
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    if cfg.data.dataset not in ("depth_questions", "behind_questions"):
        raise ValueError(
            f"unknown data.dataset {cfg.data.dataset!r}; the tiny studies have "
            "'depth_questions' and 'behind_questions' (rendered scenes); Omni's own data are "
            "not released"
        )
    start = time.perf_counter()
    folder = (Path(cfg.data.root) if cfg.data.root else (ctx.shared_dir or ctx.out_dir)) / "scenes"
    train = Questions(load_split(cfg, "train", folder))
    labelled = cfg.scenes.num_train_answers or len(train)
    train.answers[labelled:] = -1
    test = Questions(load_split(cfg, cfg.eval.split, folder))
    data_seconds = time.perf_counter() - start
    seed_everything(cfg.seed)
    a = cfg.arch
    model = create_model(
        cfg.model, dim=a.dim, depth=a.depth, num_heads=a.num_heads, mlp_hidden=a.mlp_hidden,
        num_experts=a.num_experts, top_k=a.top_k, patch_size=a.patch_size,
        image_size=cfg.scenes.image_size, vocab_size=a.vocab_size,
    )  # fmt: skip
    u = cfg.omni
    method = ContextUnrollingMethod(model, context=u.context, depth_weight=u.depth_weight,
                                    balance_weight=u.balance_weight, train_write=u.train_write,
                                    primitive=u.primitive,
                                    box_pixel_weight=u.box_pixel_weight)  # fmt: skip
    trainer = Trainer(
        method, train, ctx, cfg.trainer, cfg.optim, batch_size=cfg.data.batch_size,
        num_workers=cfg.data.num_workers, seed=cfg.seed, drop_last=True,
    )  # fmt: skip
    state = trainer.fit()
    t0 = time.perf_counter()
    metrics = evaluate(model, test, u.context, cfg.eval.batch_size, trainer.device, u.primitive)
    metrics["train_accuracy"] = evaluate_subset(
        model, train, min(1000, labelled), u.context, cfg.eval.batch_size, trainer.device,
        u.primitive,
    )  # fmt: skip
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


def evaluate_subset(model, data: Questions, n: int, context: str, batch_size: int, device,
                    primitive: str = "depth") -> float:  # fmt: skip
    """Accuracy (%) on the first ``n`` items of ``data``."""
    return evaluate(model, data.subset(n), context, batch_size, device, primitive)["accuracy"]
