"""Hook implementations for paperzoo-superclass.

Imported by every ``paperzoo list``: it imports ``paperzoo.core`` only (no torch) and names
everything heavy by import string.
"""

from __future__ import annotations

from paperzoo.core import MethodSpec, ModelSpec, PaperSpec, RecipeSpec, hookimpl

_PKG = "paperzoo.superclass"
_LOADER = f"{_PKG}.convert:load_official_checkpoint"
_TAGS = ("vision-language", "weakly-supervised", "vit", "open_clip")

# Parameters (buffers excluded), counted from the official code (``open_clip.create_model(
# "CLS-ViT-*")`` of x-cls/superclass) and equal to ours: image tower without projection +
# ln_mlp + text_projection (width x 49,408 + bias).
PARAMS = {
    "superclass_vit_s16": 40_688_896,  # no official config: open_clip's ViT-S-16 tower
    "superclass_vit_b16": 123_795_712,  # tower 85,799,424 + head 37,996,288
    "superclass_vit_l16": 353_947_904,  # tower 303,302,656 + head 50,645,248
    "superclass_vit_l14": 353_825_024,  # tower 303,179,776 + head 50,645,248
    "superclass_vit_tiny_mnist": 3_422_400,
    "superclass_clip_vit_b16": 149_620_737,
    "superclass_clip_tiny_mnist": 3_483_201,
}


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="superclass",
            title="SuperClass: classification by tokenized captions",
            authors=("Zilong Huang", "Qinghao Ye", "Bingyi Kang", "Jiashi Feng", "Haoqi Fan"),
            year=2024,
            arxiv="2411.03313",
            venue="NeurIPS 2024",
            official_code="https://github.com/x-cls/superclass",
            headline_results={
                # Table 9: batch 16k, 512M samples seen (the paper recipe).
                "IN-1K linear probe, ViT-B/16, 512M seen": 76.0,
                "IN-1K zero-shot (LiT), ViT-B/16, 512M seen": 61.7,
                "IN-1K linear probe, CLIP ViT-B/16, 512M seen": 75.5,
                "IN-1K zero-shot, CLIP ViT-B/16, 512M seen": 59.8,
                # Table 1: 13B samples seen.
                "IN-1K linear probe, ViT-L/16, 13B seen": 85.0,
            },
            description=(
                "Published as 'Classification Done Right for Vision-Language Pre-Training'. "
                "A ViT trained to classify the subword tokens of its caption (multi-hot over "
                "the CLIP BPE vocabulary, IDF-weighted, softmax cross-entropy): no text "
                "encoder, no contrastive batch; zero-shot through a LiT stage."
            ),
        )
    ]


def _model(name: str, factory: str, description: str, *tags: str, loader: bool = True) -> ModelSpec:
    return ModelSpec(
        name=name,
        factory=f"{_PKG}.model:{factory}",
        paper="superclass",
        description=description,
        num_params=PARAMS[name],
        checkpoint_loader=_LOADER if loader else None,
        tags=(*_TAGS, *tags),
    )


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    return [
        _model("superclass_vit_s16", "superclass_vit_s16",
               "SuperClass ViT-S/16 (avg pool) + LayerNorm -> Linear(384 -> 49,408)"),
        _model("superclass_vit_b16", "superclass_vit_b16",
               "SuperClass ViT-B/16 (CLS-ViT-B-16): avg pool + LayerNorm -> Linear(768 -> 49,408)"),
        _model("superclass_vit_l16", "superclass_vit_l16",
               "SuperClass ViT-L/16 (CLS-ViT-L-16): avg pool + LayerNorm -> Linear(1024 -> 49,408)"),
        _model("superclass_vit_l14", "superclass_vit_l14",
               "SuperClass ViT-L/14 (CLS-ViT-L-14): avg pool + LayerNorm -> Linear(1024 -> 49,408)"),
        _model("superclass_vit_tiny_mnist", "superclass_vit_tiny_mnist",
               "Not from the paper: a 4-block width-64 ViT on 28 px digits, for CPU runs",
               "tiny", "small-images"),
        _model("superclass_clip_vit_b16", "superclass_clip_vit_b16",
               "The CLIP baseline: open_clip CLIP ViT-B/16 (ViT-B-16-avg), the same image tower",
               "baseline", loader=False),
        _model("superclass_clip_tiny_mnist", "superclass_clip_tiny_mnist",
               "The tiny study's CLIP baseline: open_clip CLIP on the tiny MNIST tower",
               "baseline", "tiny", loader=False),
    ]  # fmt: skip


@hookimpl
def paperzoo_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="superclass",
            factory=f"{_PKG}.method:SuperClassMethod",
            paper="superclass",
            description=(
                "Caption-token classification: multi-hot over the CLIP BPE ids, IDF-weighted "
                "with running (DDP all-reduced) document frequencies, L1-normalised, softmax CE"
            ),
        ),
        MethodSpec(
            name="superclass_clip",
            factory=f"{_PKG}.method:ClipMethod",
            paper="superclass",
            description="open_clip CLIP + ClipLoss (the baseline, and the LiT stage when locked)",
        ),
    ]


@hookimpl
def paperzoo_recipes() -> list[RecipeSpec]:
    recipes = f"{_PKG}.recipes"
    runner = f"{_PKG}.reproduce:run"
    return [
        RecipeSpec(
            name="superclass_tiny",
            config=f"{recipes}:tiny_config",
            runner=runner,
            paper="superclass",
            variant="tiny",
            study=f"{recipes}:tiny_study",
            description=(
                "CPU, minutes: SuperClass vs open_clip CLIP on the bundled MNIST digits with "
                "captions measured from each image (word, thickness, slant, size, position), "
                "the same tiny ViT, batch 64 and steps, 3 seeds; linear probe on the test "
                "split, zero-shot beside it. Results in the package README."
            ),
            reference={},
        ),
        RecipeSpec(
            name="superclass_paper",
            config=f"{recipes}:paper_config",
            runner=runner,
            paper="superclass",
            variant="paper",
            description=(
                "SuperClass ViT-B/16 on image-text pairs (--data: webdataset shards or JSONL), "
                "batch 16k, 512M samples, AdamW 5e-4, then LiT; eval.root: ImageNet folder"
            ),
            reference={"linear_top1": 76.0, "zeroshot_top1": 61.7},
        ),
    ]
