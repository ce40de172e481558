"""The training objective of the tiny studies (ours; the paper's objective was not found).

Every arm trains the same model on the same batches with the same three terms:

    loss = CE(answer | the arm's context) + depth_weight * L1(the primitive's prediction, truth)
           + balance_weight * mean over MoE layers and passes of the load-balancing loss

where the primitive is the study's: ``depth`` (the depth tokens against the true depth) or
``view`` (the view tokens against the second camera's true image). The arms differ only in what
is in the context when the answer is read (:data:`CONTEXTS`): nothing, the model's own
prediction of the primitive (written back without gradient, as sampled tokens are), the
renderer's truth (the oracle upper bound), or as many filler tokens (the compute-matched
control). The primitive's pass runs in every arm, so its supervision and the training budget are
equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.omni.model import Omni

__all__ = ["CONTEXTS", "ContextUnrollingMethod", "context_primitives"]

# arm context -> (primitives unrolled before the answer, whether the oracle gives their value)
CONTEXTS = {
    "none": ((), False),
    "own_depth": (("depth",), False),
    "oracle_depth": (("depth",), True),
    "own_view": (("view",), False),
    "oracle_view": (("view",), True),
    "filler": (("filler",), False),
}


def context_primitives(context: str) -> tuple[tuple[str, ...], bool]:
    """The primitives an arm writes before answering, and whether its depth is the oracle's."""
    try:
        return CONTEXTS[context]
    except KeyError:
        raise ValueError(f"unknown context {context!r}; use one of {sorted(CONTEXTS)}") from None


class ContextUnrollingMethod(nn.Module):
    """Answer CE after the arm's context + the primitive's reconstruction + MoE balance (module
    docstring).

    ``primitive``: the study's supervised primitive, "depth" or "view" (its L1 is weighted by
    ``depth_weight``, the name from the depth study; ``box_pixel_weight``: see
    :meth:`reconstruction_loss`). ``train_write``: what the own-primitive arm
    writes back during training, its own prediction ("own", as at test) or the truth ("oracle":
    teacher forcing).
    """

    def __init__(
        self,
        model: Omni,
        *,
        context: str = "own_depth",
        depth_weight: float = 1.0,
        balance_weight: float = 0.01,
        train_write: Literal["own", "oracle"] = "own",
        primitive: Literal["depth", "view"] = "depth",
        box_pixel_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.context = context
        self.primitives, self.oracle = context_primitives(context)
        if any(p not in (primitive, "filler") for p in self.primitives):
            raise ValueError(f"context {context!r} writes {self.primitives}, but the study's "
                             f"supervised primitive is {primitive!r}")  # fmt: skip
        self.primitive = primitive
        self.box_pixel_weight = box_pixel_weight
        self.depth_weight, self.balance_weight = depth_weight, balance_weight
        self.train_write = train_write

    def target(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The primitive's true value, as the model writes it: normalised depth or RGB."""
        if self.primitive == "depth":
            return self.model.normalize_depth(batch["depth"])
        return batch["view"]

    def reconstruction_loss(
        self, pred: torch.Tensor, target: torch.Tensor, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        """L1, or for a view with ``box_pixel_weight`` w != 1 the weighted mean of |pred - true|
        with weight w on the pixels that show a box and 1 elsewhere (so a view that draws only
        ground and sky costs more)."""
        if self.primitive != "view" or self.box_pixel_weight == 1.0:
            return F.l1_loss(pred, target)
        w = 1.0 + (self.box_pixel_weight - 1.0) * batch["view_boxes"].to(pred.dtype)
        w = w.unsqueeze(1)  # (B, 1, S, S) over the 3 channels
        return ((pred - target).abs() * w).sum() / (w.sum() * pred.shape[1])

    def trainable_module(self) -> nn.Module:
        return self.model

    def training_step(
        self, batch: Mapping[str, torch.Tensor], step: int
    ) -> dict[str, torch.Tensor]:
        m = self.model
        prompt = m.prompt(batch)
        pred, aux_primitive = m.generate(prompt, self.primitive, batch)
        target = self.target(batch)
        primitive_loss = self.reconstruction_loss(pred, target, batch)
        context = list(prompt)
        for prim in self.primitives:
            if prim == "filler":
                context.append(m.write("filler", None, batch))
            elif self.oracle or self.train_write == "oracle":
                context.append(m.write(prim, target, batch))
            else:
                context.append(m.write(prim, pred.detach().clamp(0.0, 1.0), batch))
        logits, aux_answer = m.answer_logits(context)
        labelled = batch["answer"] >= 0  # -1: a scene without an answer label (depth only)
        if labelled.any():
            answer_loss = F.cross_entropy(logits[labelled], batch["answer"][labelled])
        else:
            answer_loss = logits.sum() * 0.0
        balance = (aux_primitive + aux_answer) / (2 * len(m.blocks))
        loss = answer_loss + self.depth_weight * primitive_loss + self.balance_weight * balance
        hits = (logits.argmax(-1) == batch["answer"])[labelled].float()
        acc = hits.mean() if labelled.any() else hits.sum()
        return {
            "loss": loss,
            "answer_loss": answer_loss.detach(),
            f"{self.primitive}_l1": primitive_loss.detach(),
            "balance": balance.detach(),
            "acc": acc,
        }
