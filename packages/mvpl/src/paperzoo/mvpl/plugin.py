"""Hook implementations for paperzoo-mvpl. Keep this module light: no torch imports."""

from __future__ import annotations

from paperzoo.core import ModelSpec, PaperSpec, RecipeSpec, hookimpl

# name -> (factory, parameters with the default classes and all three views, description)
_MODELS = {
    "mvpl_slow_r50": (
        "mvpl_slow_r50", 32_470_032,
        "Slow-only R50 8x8 (paperzoo-slowfast) with an RGB, a temporal-gradient and a flow stem; "
        "32,454,096 parameters at inference (the RGB stem), 400 classes",
    ),
    "mvpl_r3d_18": (
        "mvpl_r3d_18", 33_418_768,
        "torchvision R3D-18 with an RGB, a temporal-gradient and a flow stem; 33,371,472 "
        "parameters at inference, 400 classes",
    ),
    "mvpl_r3d_tiny": (
        "mvpl_r3d_tiny", 917_356,
        "narrow R3D (width 16, one BasicBlock per stage) with three view stems, 12 classes: "
        "the CPU tiny study's backbone",
    ),
}  # fmt: skip


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="mvpl",
            title="Multiview Pseudo-Labeling for Semi-supervised Learning from Video",
            authors=("Bo Xiong", "Haoqi Fan", "Kristen Grauman", "Christoph Feichtenhofer"),
            year=2021,
            arxiv="2104.00682",
            venue="ICCV 2021",
            official_code=None,
            headline_results={},
            description=(
                "Semi-supervised video classification: one model shared across appearance (RGB) "
                "and motion views (temporal gradients, optical flow); FixMatch-style "
                "pseudo-labels aggregated over the weak views supervise every view's strong "
                "version. Here: the method, per-view stems on Slow-only R50 / R3D-18, a "
                "Farneback flow view with an on-disk cache, the K400 / UCF-101 / HMDB-51 "
                "recipes and a CPU claim study. No official code or weights were released."
            ),
        )
    ]


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            name=name,
            factory=f"paperzoo.mvpl.model:{factory}",
            paper="mvpl",
            description=description,
            num_params=params,
            tags=("video", "classification", "semi-supervised", "multiview"),
        )
        for name, (factory, params, description) in _MODELS.items()
    ]


@hookimpl
def paperzoo_recipes() -> list[RecipeSpec]:
    cfg = "paperzoo.mvpl.recipes"
    runner = "paperzoo.mvpl.reproduce:run"
    return [
        RecipeSpec(
            name="mvpl_tiny",
            config=f"{cfg}:tiny_config",
            runner=runner,
            paper="mvpl",
            variant="tiny",
            description=(
                "moving digits over static clutter, 10% labels, CPU: supervised vs FixMatch "
                "(RGB) vs MvPL (RGB + temporal gradient + flow), 3 seeds; test top-1 (%)"
            ),
            study=f"{cfg}:tiny_study",
        ),
        RecipeSpec(
            name="mvpl_paper",
            config=f"{cfg}:paper_config",
            runner=runner,
            paper="mvpl",
            variant="paper",
            description="MvPL, Slow-only R50 8x8, Kinetics-400 with 10% of the labels (--data DIR)",
        ),
        RecipeSpec(
            name="mvpl_paper_1pct",
            config=f"{cfg}:paper_1pct_config",
            runner=runner,
            paper="mvpl",
            variant="paper_1pct",
            description="MvPL, Slow-only R50 8x8, Kinetics-400 with 1% of the labels (--data DIR)",
        ),
        RecipeSpec(
            name="mvpl_paper_ucf101",
            config=f"{cfg}:paper_ucf101_config",
            runner=runner,
            paper="mvpl",
            variant="paper_ucf101",
            description="MvPL from scratch on UCF-101 split 1 (--data DIR)",
        ),
        RecipeSpec(
            name="mvpl_paper_hmdb51",
            config=f"{cfg}:paper_hmdb51_config",
            runner=runner,
            paper="mvpl",
            variant="paper_hmdb51",
            description="MvPL from scratch on HMDB-51 split 1 (--data DIR)",
        ),
    ]
