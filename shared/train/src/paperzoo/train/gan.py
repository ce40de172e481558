"""Step plans: which of a method's optimizers steps at each trainer step (GANs and the like).

A method with several optimizers (see :class:`paperzoo.train.Trainer`) trains one of them per
trainer step. A *step plan* is a pure function of the trainer step, ``optimizer_at(step) ->
name``, so a resumed run knows where it is in the plan from the step alone and the checkpoint
needs to store nothing but the plan's description (to warn when it changed).

:class:`GanStepPlan` is the usual GAN schedule: an optional discriminator-only warm-up, then
``d_steps_per_g`` discriminator steps before each generator step (one D step per G step in
Adversarial Flow Models, arXiv:2511.22475; a 10k-step D-only warm-up then 16 D steps per G step
in Continuous Adversarial Flow Models, arXiv:2604.11521).
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["GanStepPlan", "StepPlan"]


class StepPlan:
    """Base class: subclasses set ``names`` and implement :meth:`optimizer_at`."""

    names: tuple[str, ...] = ()

    def optimizer_at(self, step: int) -> str:
        """The name of the optimizer that steps at trainer step ``step`` (0-based)."""
        raise NotImplementedError

    def steps_of(self, name: str, steps: int) -> int:
        """How many of the trainer steps ``0 .. steps - 1`` step optimizer ``name``."""
        return sum(self.optimizer_at(i) == name for i in range(steps))

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description, stored in checkpoints to detect a changed plan."""
        return {"type": type(self).__name__, "names": list(self.names)}


class GanStepPlan(StepPlan):
    """``d_warmup_steps`` discriminator steps, then cycles of ``d_steps_per_g`` D steps and one G.

    With ``d_steps_per_g=2, d_warmup_steps=1`` the trainer steps go ``D | D D G | D D G | ...``.
    ``phase="absolute"`` counts the cycles from step 0 instead, as the official Adversarial
    Flow Models trainers do (``step % (1 + N) < N`` is a D step once the warm-up is over): with
    ``d_steps_per_g=2, d_warmup_steps=4`` that is ``D D D D | G | D D G | ...``.
    Trainer steps count D and G steps together, so ``trainer.max_steps=N`` takes
    ``steps_of("generator", N)`` generator steps.
    """

    def __init__(
        self,
        d_steps_per_g: int = 1,
        d_warmup_steps: int = 0,
        *,
        discriminator: str = "discriminator",
        generator: str = "generator",
        phase: Literal["after_warmup", "absolute"] = "after_warmup",
    ) -> None:
        if d_steps_per_g < 0:
            raise ValueError(f"d_steps_per_g must be >= 0, got {d_steps_per_g}")
        if d_warmup_steps < 0:
            raise ValueError(f"d_warmup_steps must be >= 0, got {d_warmup_steps}")
        if discriminator == generator:
            raise ValueError(f"the discriminator and generator names are both {generator!r}")
        if phase not in ("after_warmup", "absolute"):
            raise ValueError(f"phase must be 'after_warmup' or 'absolute', got {phase!r}")
        self.d_steps_per_g = d_steps_per_g
        self.d_warmup_steps = d_warmup_steps
        self.discriminator = discriminator
        self.generator = generator
        self.phase = phase
        self.names = (discriminator, generator)

    def optimizer_at(self, step: int) -> str:
        if step < self.d_warmup_steps:
            return self.discriminator
        cycle = self.d_steps_per_g + 1
        k = step if self.phase == "absolute" else step - self.d_warmup_steps
        return self.generator if k % cycle == cycle - 1 else self.discriminator

    def steps_of(self, name: str, steps: int) -> int:
        cycle = self.d_steps_per_g + 1
        if self.phase == "absolute":  # G steps: k in [warm-up, steps) with k % cycle == cycle - 1
            g_steps = max(0, steps // cycle - self.d_warmup_steps // cycle)
        else:
            g_steps = max(0, steps - self.d_warmup_steps) // cycle
        if name == self.generator:
            return g_steps
        if name == self.discriminator:
            return steps - g_steps
        return 0

    def describe(self) -> dict[str, Any]:
        out = {
            **super().describe(),
            "d_steps_per_g": self.d_steps_per_g,
            "d_warmup_steps": self.d_warmup_steps,
        }
        if self.phase != "after_warmup":  # absent for the default: older checkpoints still match
            out["phase"] = self.phase
        return out

    def __repr__(self) -> str:
        phase = f", phase={self.phase!r}" if self.phase != "after_warmup" else ""
        return (
            f"GanStepPlan(d_steps_per_g={self.d_steps_per_g}, "
            f"d_warmup_steps={self.d_warmup_steps}{phase})"
        )
