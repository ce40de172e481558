"""The training objective of the tiny study (ours; the paper's objective was not found).

Every arm trains the same model on the same batches with the same three terms:

    loss = CE(answer | the arm's context) + depth_weight * L1(depth tokens' prediction, true depth)
           + balance_weight * mean over MoE layers and passes of the load-balancing loss

and the arms differ only in what is in the context when the answer is read
(:data:`CONTEXTS`): nothing, the model's own predicted depth (written back without gradient,
as sampled tokens are), the renderer's true depth (the oracle upper bound), or as many filler
tokens as a depth map has (the compute-matched control). The depth pass runs in every arm, so the
depth supervision and the training budget are equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.omni.model import Omni

__all__ = ["CONTEXTS", "ContextUnrollingMethod", "context_primitives"]

# arm context -> (primitives unrolled before the answer, whether the depth is given by the oracle)
CONTEXTS = {
    "none": ((), False),
    "own_depth": (("depth",), False),
    "oracle_depth": (("depth",), True),
    "filler": (("filler",), False),
}


def context_primitives(context: str) -> tuple[tuple[str, ...], bool]:
    """The primitives an arm writes before answering, and whether its depth is the oracle's."""
    try:
        return CONTEXTS[context]
    except KeyError:
        raise ValueError(f"unknown context {context!r}; use one of {sorted(CONTEXTS)}") from None


class ContextUnrollingMethod(nn.Module):
    """Answer CE after the arm's context + depth reconstruction + MoE balance (module docstring).

    ``train_write``: what the own-depth arm writes back during training, its own prediction
    ("own", as at test) or the true depth ("oracle": teacher forcing).
    """

    def __init__(
        self,
        model: Omni,
        *,
        context: str = "own_depth",
        depth_weight: float = 1.0,
        balance_weight: float = 0.01,
        train_write: Literal["own", "oracle"] = "own",
    ) -> None:
        super().__init__()
        self.model = model
        self.context = context
        self.primitives, self.oracle = context_primitives(context)
        self.depth_weight, self.balance_weight = depth_weight, balance_weight
        self.train_write = train_write

    def trainable_module(self) -> nn.Module:
        return self.model

    def training_step(
        self, batch: Mapping[str, torch.Tensor], step: int
    ) -> dict[str, torch.Tensor]:
        m = self.model
        prompt = m.prompt(batch)
        pred, aux_depth = m.generate(prompt, "depth", batch)
        target = m.normalize_depth(batch["depth"])
        depth_loss = F.l1_loss(pred, target)
        context = list(prompt)
        for prim in self.primitives:
            if prim == "filler":
                context.append(m.write("filler", None, batch))
            elif self.oracle or self.train_write == "oracle":
                context.append(m.write("depth", target, batch))
            else:
                context.append(m.write("depth", pred.detach().clamp(0.0, 1.0), batch))
        logits, aux_answer = m.answer_logits(context)
        labelled = batch["answer"] >= 0  # -1: a scene without an answer label (depth only)
        if labelled.any():
            answer_loss = F.cross_entropy(logits[labelled], batch["answer"][labelled])
        else:
            answer_loss = logits.sum() * 0.0
        balance = (aux_depth + aux_answer) / (2 * len(m.blocks))
        loss = answer_loss + self.depth_weight * depth_loss + self.balance_weight * balance
        hits = (logits.argmax(-1) == batch["answer"])[labelled].float()
        acc = hits.mean() if labelled.any() else hits.sum()
        return {
            "loss": loss,
            "answer_loss": answer_loss.detach(),
            "depth_l1": depth_loss.detach(),
            "balance": balance.detach(),
            "acc": acc,
        }
