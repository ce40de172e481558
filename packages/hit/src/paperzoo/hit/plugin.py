"""Hook implementations for paperzoo-hit (imports paperzoo.core only; no torch)."""

from __future__ import annotations

from paperzoo.core import MethodSpec, ModelSpec, PaperSpec, RecipeSpec, hookimpl

_PKG = "paperzoo.hit"


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="hit",
            title="HiT: Hierarchical Transformer with Momentum Contrast for Video-Text Retrieval",
            authors=(
                "Song Liu",
                "Haoqi Fan",
                "Shengsheng Qian",
                "Yiru Chen",
                "Wenkui Ding",
                "Zhongyuan Wang",
            ),
            year=2021,
            arxiv="2103.15049",
            venue="ICCV 2021",
            official_code=None,
            headline_results={
                "MSR-VTT 1k-A t2v R@1": 30.7,
                "MSR-VTT 1k-A v2t R@1": 32.1,
                "LSMDC t2v R@1": 14.0,
                "ActivityNet Captions t2v R@1": 29.6,
            },
            description=(
                "Video and text transformers with momentum key copies; cross-modal contrastive "
                "matching at the feature level (lower layers) and the semantic level (upper "
                "layers) in both directions, against four queues (2 levels x 2 modalities)."
            ),
        )
    ]


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    tags = ("retrieval", "video-text", "contrastive")
    return [
        ModelSpec(
            name="hit_bert_base",
            factory=f"{_PKG}.model:hit_bert_base",
            paper="hit",
            description=(
                "HiT with a BERT-base text transformer (bert_path= loads real weights) and a "
                "4 x 512 video transformer over frames or expert features; query towers, "
                "momentum copies and four 65,536-key queues"
            ),
            tags=tags,
        ),
        ModelSpec(
            name="hit_tiny",
            factory=f"{_PKG}.model:hit_tiny",
            paper="hit",
            description=(
                "HiT with a 4 x 64 BERT and a 4 x 64 video transformer over a 3-conv frame stem "
                "for 32 px CPU clips; not from the paper"
            ),
            tags=(*tags, "tiny"),
        ),
    ]


@hookimpl
def paperzoo_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="hit",
            factory=f"{_PKG}.method:HiTMethod",
            paper="hit",
            description=(
                "hierarchical (feature + semantic level) cross-modal InfoNCE in both directions, "
                "against momentum keys and four queues, or in-batch (the ablations)"
            ),
        )
    ]


@hookimpl
def paperzoo_recipes() -> list[RecipeSpec]:
    recipes = f"{_PKG}.recipes"
    runner = f"{_PKG}.reproduce:run"
    return [
        RecipeSpec(
            name="hit_tiny",
            config=f"{recipes}:tiny_config",
            runner=runner,
            paper="hit",
            variant="tiny",
            study=f"{recipes}:tiny_study",
            description=(
                "CPU, minutes: semantic-only in-batch, + feature level, and full HiT (momentum "
                "queues) x 3 seeds on captioned moving digits; class-level R@1 both directions"
            ),
            reference={},
        ),
        RecipeSpec(
            name="hit_paper",
            config=f"{recipes}:paper_config",
            runner=runner,
            paper="hit",
            variant="paper",
            description=(
                "HiT on MSR-VTT 1k-A (--data ROOT, --set text.bert_path=BERT_FOLDER); "
                "unverified schedule"
            ),
            reference={"t2v_R@1": 30.7, "t2v_R@10": 73.2, "v2t_R@1": 32.1, "v2t_R@5": 62.7},
        ),
    ]
