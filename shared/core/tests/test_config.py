from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from paperzoo.core import ConfigError, DataConfig, OptimConfig, TrainerConfig, apply_overrides
from paperzoo.core.config import config_fields, from_dict, to_dict


@dataclass
class Section:
    size: int = 4
    ratio: float = 0.5
    kind: Literal["a", "b"] = "a"
    widths: tuple[int, ...] = (1, 2)
    pair: tuple[float, float] = (0.1, 0.2)
    note: str | None = None


@dataclass
class Recipe:
    seed: int = 0
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: Section = field(default_factory=Section)


def test_overrides_are_typed_and_nested():
    cfg = apply_overrides(
        Recipe(),
        [
            "trainer.max_steps=20",
            "seed=3",
            "optim.lr=1e-3",
            "model.ratio=1",
            "model.kind=b",
            "model.widths=[3,4,5]",
            "model.pair=0.5,0.25",
            "model.note=hello",
            "trainer.compile=true",
            "data.root=/tmp/data",
        ],
    )
    assert cfg.trainer.max_steps == 20 and isinstance(cfg.trainer.max_steps, int)
    assert cfg.seed == 3
    assert cfg.optim.lr == pytest.approx(1e-3)
    assert cfg.model.ratio == 1.0 and isinstance(cfg.model.ratio, float)
    assert cfg.model.kind == "b"
    assert cfg.model.widths == (3, 4, 5)
    assert cfg.model.pair == (0.5, 0.25)
    assert cfg.model.note == "hello"
    assert cfg.trainer.compile is True
    assert cfg.data.root == "/tmp/data"
    assert apply_overrides(Recipe(), ["model.widths=7"]).model.widths == (7,)
    # The original is untouched.
    assert Recipe().trainer.max_steps == TrainerConfig().max_steps


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_step=3", "did you mean trainer.max_steps"),
        ("trainer.max_steps=abc", "trainer.max_steps: expected int"),
        ("trainer.max_steps=1.5", "expected int"),
        ("model.kind=c", "expected one of 'a', 'b'"),
        ("model.pair=1,2,3", "expected 2 values"),
        ("trainer.compile=maybe", "expected bool"),
        ("sed=1", "did you mean seed"),
        ("trainer=3", "is a section"),
        ("seed", "expected dotted.key=value"),
        ("seed.x=1", "not a section"),
    ],
)
def test_bad_overrides_are_clear_errors(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        apply_overrides(Recipe(), [override])


def test_every_training_section_has_the_required_fields():
    keys = {k for k, _, _ in config_fields(Recipe)}
    assert {"trainer.max_steps", "trainer.checkpoint_every", "seed"} <= keys


def test_dict_round_trip():
    cfg = apply_overrides(Recipe(), ["model.widths=[7]", "optim.name=adamw"])
    again = from_dict(Recipe, to_dict(cfg))
    assert again == cfg
    with pytest.raises(ConfigError):
        from_dict(Recipe, {"trainer": {"bogus": 1}})
