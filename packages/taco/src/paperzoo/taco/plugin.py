"""Hook implementations for paperzoo-taco (imports paperzoo.core only; no torch)."""

from __future__ import annotations

from paperzoo.core import MethodSpec, ModelSpec, PaperSpec, RecipeSpec, hookimpl

_PKG = "paperzoo.taco"
_HEADS = "rotation (4), shuffle (2), reverse (2) and speed (3) heads"


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="taco",
            title="Can Temporal Information Help with Contrastive Self-Supervised Learning?",
            authors=(
                "Yutong Bai",
                "Haoqi Fan",
                "Ishan Misra",
                "Ganesh Venkatesh",
                "Yongyi Lu",
                "Yuyin Zhou",
                "Qihang Yu",
                "Vikas Chandra",
                "Alan Yuille",
            ),
            year=2020,
            arxiv="2011.13046",
            official_code="",
            headline_results={
                "UCF-101 top-1 (fine-tuned)": 85.1,
                "HMDB-51 top-1 (fine-tuned)": 51.6,
            },
            description=(
                "TaCo: temporal transformations (rotation, shuffle, reverse, speed) used both as "
                "strong augmentation of video contrastive learning and as extra self-supervision, "
                "one prediction head per transformation trained jointly with the contrastive loss."
            ),
        )
    ]


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    tags = ("self-supervised", "contrastive", "video")
    return [
        ModelSpec(
            name="taco_r3d_18",
            factory=f"{_PKG}.model:taco_r3d_18",
            paper="taco",
            description=f"TaCo on MoCo v2 with torchvision's R3D-18, {_HEADS}",
            # R3D-18 without fc (33,166,272) + MoCo v2 head (328,320) + heads (1,056,267).
            num_params=34_550_859,
            tags=tags,
        ),
        ModelSpec(
            name="taco_r2plus1d_18",
            factory=f"{_PKG}.model:taco_r2plus1d_18",
            paper="taco",
            description=f"TaCo on MoCo v2 with torchvision's R(2+1)D-18, {_HEADS}",
            num_params=32_684_712,
            tags=tags,
        ),
        ModelSpec(
            name="taco_slow_r50",
            factory=f"{_PKG}.model:taco_slow_r50",
            paper="taco",
            description=f"TaCo on MoCo v2 with paperzoo-slowfast's Slow-only R50, {_HEADS}",
            num_params=52_901_067,
            tags=tags,
        ),
        ModelSpec(
            name="taco_r3d_narrow",
            factory=f"{_PKG}.model:taco_r3d_narrow",
            paper="taco",
            description=(
                "TaCo on a narrow R3D-10 (16-32-64-128, 3x3x3 stride-2 stem) for 32 px CPU clips; "
                "not from the paper"
            ),
            num_params=990_459,
            tags=(*tags, "tiny"),
        ),
    ]


@hookimpl
def paperzoo_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="taco",
            factory=f"{_PKG}.method:TaCoMethod",
            paper="taco",
            description=(
                "MoCo's step (paperzoo-mocov2) on temporally transformed clips plus one "
                "cross-entropy per transformation head; switches for the heads alone and for "
                "temporal augmentation alone"
            ),
        )
    ]


@hookimpl
def paperzoo_recipes() -> list[RecipeSpec]:
    recipes = f"{_PKG}.recipes"
    runner = f"{_PKG}.reproduce:run"
    return [
        RecipeSpec(
            name="taco_tiny",
            config=f"{recipes}:tiny_config",
            runner=runner,
            paper="taco",
            variant="tiny",
            study=f"{recipes}:tiny_study",
            description=(
                "CPU, minutes: video MoCo, + temporal augmentation, TaCo and the heads alone x 3 "
                "seeds on moving digits (narrow R3D-10); linear probe and a 10%-label fine-tune"
            ),
            reference={},
        ),
        RecipeSpec(
            name="taco_paper",
            config=f"{recipes}:paper_config",
            runner=runner,
            paper="taco",
            variant="paper",
            description=(
                "R3D-18 TaCo on Kinetics-400 (--data), fine-tuned and tested on UCF-101 split 1 "
                "(--set finetune.root=PATH)"
            ),
            reference={"finetune_top1": 85.1},
        ),
        RecipeSpec(
            name="taco_paper_hmdb51",
            config=f"{recipes}:paper_hmdb51_config",
            runner=runner,
            paper="taco",
            variant="paper_hmdb51",
            description="the paper recipe fine-tuned and tested on HMDB-51 split 1",
            reference={"finetune_top1": 51.6},
        ),
    ]
