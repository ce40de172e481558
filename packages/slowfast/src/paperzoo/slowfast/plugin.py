"""Hook implementations for paperzoo-slowfast. Keep this module light: no torch imports."""

from __future__ import annotations

from paperzoo.core import ModelSpec, PaperSpec, RecipeSpec, hookimpl

__all__ = ["paperzoo_models", "paperzoo_papers", "paperzoo_recipes"]

_ZOO = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo"
_LOADER = "paperzoo.slowfast.convert:load_checkpoint"

# name -> (params with the default head, GFLOPs (multiply-adds) per view, view, zoo file, what)
_MODELS: dict[str, tuple[int, float | None, str, str | None, str]] = {
    "slowfast_r50": (
        34_566_488, 65.7, "8+32x256²", "kinetics/SLOWFAST_8x8_R50.pyth",
        "SlowFast R50 8x8 (alpha 4, beta 1/8, fusion kernel 7), Kinetics-400 head",
    ),
    "slowfast_4x16_r50": (
        34_480_216, 36.1, "4+32x256²", None,
        "SlowFast R50 4x16 (alpha 8, fusion kernel 5), Kinetics-400 head",
    ),
    "slowfast_r101": (
        62_826_968, 125.9, "8+32x256²", "kinetics/SLOWFAST_8x8_R101.pyth",
        "SlowFast R101 8x8, all res4 blocks temporal (PyTorchVideo hub slowfast_r101)",
    ),
    "slowfast_8x8_r101_50_50": (
        53_774_808, 106.5, "8+32x256²", None,
        "SlowFast R101 8x8 with R50's temporal kernels (the paper's Table 2 R101 8x8)",
    ),
    "slowfast_16x8_r101_50_50": (
        53_774_808, 213.0, "16+64x256²", "kinetics/SLOWFAST_16x8_R101_50_50.pyth",
        "SlowFast R101 16x8 with R50's temporal kernels",
    ),
    "slow_r50": (
        32_454_096, 54.5, "8x256²", "kinetics/SLOW_8x8_R50.pyth",
        "Slow-only R50 8x8 baseline, Kinetics-400 head",
    ),
    "slowfast_r50_detection": (
        33_828_888, None, "8+32 frames", "ava/SLOWFAST_8x8_R50_DETECTION.pyth",
        "SlowFast R50 8x8 AVA detector: RoIAlign head on a stride-16 res5, 80 classes",
    ),
    "slow_r50_detection": (
        31_798_416, None, "4 frames", "ava/SLOW_4x16_R50_DETECTION.pyth",
        "Slow-only R50 4x16 AVA detector, 80 classes",
    ),
    "slowfast_tiny": (
        339_490, None, "any", None,
        "small SlowFast for CPU runs: one bottleneck per stage, width 8, beta 1/4",
    ),
    "slow_tiny": (
        251_672, None, "any", None,
        "the Slow pathway of slowfast_tiny alone (same widths), for the tiny claim",
    ),
}  # fmt: skip


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="slowfast",
            title="SlowFast Networks for Video Recognition",
            authors=("Christoph Feichtenhofer", "Haoqi Fan", "Jitendra Malik", "Kaiming He"),
            year=2019,
            arxiv="1812.03982",
            venue="ICCV 2019",
            official_code="https://github.com/facebookresearch/SlowFast",
            headline_results={
                "K400 top-1 SlowFast R50 8x8 (30 views)": 77.0,
                "K400 top-1 SlowFast R50 4x16": 75.6,
                "K400 top-1 SlowFast R101 8x8": 77.9,
                "K400 top-1 SlowFast R101 16x8": 78.9,
                "GFLOPs per view SlowFast R50 8x8 (256²)": 65.7,
                "AVA mAP SlowFast R101 16x8 (as listed in PAPERS.md; unverified)": 29.4,
            },
            description=(
                "A Slow pathway (few frames, many channels) and a Fast pathway (alpha x the "
                "frames, beta = 1/8 of the channels) fused by time-strided lateral convs. "
                "Here: SlowFast R50/R101 and Slow-only, the AVA RoI head, converters for "
                "PyTorchVideo and PySlowFast checkpoints, and the K400 / moving-digits recipes."
            ),
        )
    ]


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    specs = []
    for name, (params, gflops, view, zoo_file, what) in _MODELS.items():
        cost = f", {gflops} GFLOPs (multiply-adds) per {view} view" if gflops else ""
        specs.append(
            ModelSpec(
                name=name,
                factory=f"paperzoo.slowfast.model:{name}",
                paper="slowfast",
                description=what + cost,
                num_params=params,
                flops=gflops * 1e9 if gflops else None,
                checkpoint_loader=_LOADER,
                pretrained={("ava" if "detection" in name else "k400"): f"{_ZOO}/{zoo_file}"}
                if zoo_file
                else {},
                tags=("video", "detection" if "detection" in name else "classification"),
            )
        )
    return specs


@hookimpl
def paperzoo_recipes() -> list[RecipeSpec]:
    return [
        RecipeSpec(
            name="slowfast_tiny",
            config="paperzoo.slowfast.recipes:tiny_config",
            runner="paperzoo.slowfast.reproduce:run",
            paper="slowfast",
            variant="tiny",
            description=(
                "SlowFast vs Slow-only (same widths, same budget) on moving-digits mp4s, CPU, "
                "minutes, 3 seeds; the claim's metric is test direction accuracy"
            ),
            study="paperzoo.slowfast.recipes:tiny_study",
        ),
        RecipeSpec(
            name="slowfast_paper",
            config="paperzoo.slowfast.recipes:paper_config",
            runner="paperzoo.slowfast.reproduce:run",
            paper="slowfast",
            variant="paper",
            description=(
                "SLOWFAST_8x8_R50 on Kinetics-400 (--data: folder with train.csv / val.csv), "
                "196 epochs, 10x3-view test"
            ),
            reference={"top1": 77.0},
        ),
    ]
