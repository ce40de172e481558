"""Hook implementations for paperzoo-hit (imports paperzoo.core only; no torch)."""

from __future__ import annotations

from paperzoo.core import MethodSpec, ModelSpec, PaperSpec, RecipeSpec, hookimpl

_PKG = "paperzoo.hit"

# Parameters of each registered model as its factory builds it with the defaults (every
# nn.Parameter, the momentum key copies included: they are frozen copies of the query towers, so
# half of each count is trainable; the four queues are buffers, not counted). Asserted in
# tests/test_model.py.
# - hit_bert_base = 2 x 122,740,992 query parameters:
#   - text: BERT-base (12 x 768, vocab 30,522) without its pooler, 108,891,648: the "110M"
#     BERT-base of the paper (bert-base-uncased is 109,482,240 with the 590,592-parameter pooler,
#     which HiT does not use), plus two 768 -> 256 heads (393,728);
#   - video: our 4 x 512 transformer (13,192,960 with its 548,608-parameter frame stem; the
#     paper's MMT-style encoder over expert features is unverified, and ``input_dim=`` changes
#     the count), plus two 512 -> 256 heads (262,656).
# - hit_tiny = 2 x 394,304 (vocab 256, 32 text positions): not from the paper.
PARAMS = {
    "hit_bert_base": 245_481_984,
    "hit_tiny": 788_608,
}


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
            num_params=PARAMS["hit_bert_base"],
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
            num_params=PARAMS["hit_tiny"],
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
        RecipeSpec(
            name="hit_paper_activitynet",
            config=f"{recipes}:paper_activitynet_config",
            runner=runner,
            paper="hit",
            variant="paper_activitynet",
            description=(
                "HiT on ActivityNet Captions paragraph retrieval (--data ROOT with train.json, "
                "val_1.json, videos/; --set text.bert_path=BERT_FOLDER); unverified schedule"
            ),
            reference={"t2v_R@1": 29.6},
        ),
        RecipeSpec(
            name="hit_paper_lsmdc",
            config=f"{recipes}:paper_lsmdc_config",
            runner=runner,
            paper="hit",
            variant="paper_lsmdc",
            description=(
                "HiT on LSMDC (--data ROOT with the LSMDC16 annotation files and avi/; --set "
                "text.bert_path=BERT_FOLDER); unverified schedule"
            ),
            reference={"t2v_R@1": 14.0},
        ),
    ]
