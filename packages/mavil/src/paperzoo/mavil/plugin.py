"""Hook implementations for paperzoo-mavil.

Imported by every ``paperzoo list``: it imports ``paperzoo.core`` only (no torch) and names
everything heavy by import string.
"""

from __future__ import annotations

from paperzoo.core import MethodSpec, ModelSpec, PaperSpec, RecipeSpec, hookimpl

_PKG = "paperzoo.mavil"
_LOADER = f"{_PKG}.convert:load_checkpoint"
_TAGS = ("self-supervised", "audio-visual", "masked-autoencoder", "contrastive", "vit")

# Parameters (every nn.Parameter, fixed sin-cos position embeddings included, as timm counts
# them), asserted in tests/test_model.py. The audio ViT-B encoder equals timm's
# vit_base_patch16 on a 1 x 1024 x 128 input without head (85,648,128); the video ViT-B has
# timm's blocks and norm with a 2 x 16 x 16 tubelet stem and 785 positions. Classifiers: joint
# (both encoders, 3 joint blocks, LayerNorm + Linear on 2 x 768).
PARAMS = {
    "mavil_vit_base_pretrain": 246_958_592,
    "mavil_vit_base_stage2": 246_827_264,
    "mavil_vit_base_audioset": 194_564_879,
    "mavil_vit_base_vggsound": 194_229_813,
    "mavil_tiny_pretrain": 560_448,
    "mavil_tiny_classifier": 399_444,
}

_MODELS = {
    "mavil_vit_base_pretrain": ("MAViL ViT-B stage 1: audio and video ViT-B, 3 fusion blocks, "
                                "MAE decoders (pixels), contrastive projections",),
    "mavil_vit_base_stage2": ("MAViL ViT-B stage 2 student: decoders predict the stage-1 "
                              "model's contextualised features",),
    "mavil_vit_base_audioset": ("Fine-tuned MAViL ViT-B, 527 AudioSet classes (modality= "
                                "audio, video or joint)", "classifier"),
    "mavil_vit_base_vggsound": ("Fine-tuned MAViL ViT-B, 309 VGGSound classes", "classifier"),
    "mavil_tiny_pretrain": ("Not from the paper: width-64 encoders on ~1 s of fbank and 4 "
                            "frames of 32 px, for CPU runs", "tiny"),
    "mavil_tiny_classifier": ("Not from the paper: the tiny classifier (20 digit x direction "
                              "classes)", "tiny", "classifier"),
}  # fmt: skip


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="mavil",
            title="MAViL: Masked Audio-Video Learners",
            authors=(
                "Po-Yao Huang", "Vasu Sharma", "Hu Xu", "Chaitanya Ryali", "Haoqi Fan",
                "Yanghao Li", "Shang-Wen Li", "Gargi Ghosh", "Jitendra Malik",
                "Christoph Feichtenhofer",
            ),
            year=2023,
            arxiv="2212.08071",
            venue="NeurIPS 2023",
            official_code=None,
            headline_results={
                "AudioSet-2M fine-tune mAP, ViT-B (audio+video)": 53.3,
                "AudioSet-2M fine-tune mAP, ViT-B, arXiv v1": 53.1,
                "VGGSound fine-tune top-1, ViT-B (audio+video)": 67.1,
            },
            description=(
                "Audio and video masked autoencoders with a fusion encoder; intra- and "
                "inter-modal contrast on the masked inputs; a second stage that predicts the "
                "first-stage model's contextualised audio-video features. No training code or "
                "weights were released (the repository holds a README)."
            ),
        )
    ]  # fmt: skip


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            name=name,
            factory=f"{_PKG}.model:{name}",
            paper="mavil",
            description=description,
            num_params=PARAMS[name],
            checkpoint_loader=_LOADER,
            tags=(*_TAGS, *tags),
        )
        for name, (description, *tags) in _MODELS.items()
    ]


@hookimpl
def paperzoo_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="mavil",
            factory=f"{_PKG}.method:MAViLPretraining",
            paper="mavil",
            description="Masked audio-video reconstruction + inter/intra-modal contrast "
            "(stage 1), or prediction of a frozen stage-1 model's contextualised features "
            "(stage 2, teacher=)",
        ),
        MethodSpec(
            name="mavil_finetune",
            factory=f"{_PKG}.method:Finetune",
            paper="mavil",
            description="Fine-tuning with layer-wise lr decay; BCE for AudioSet, CE otherwise",
        ),
    ]


@hookimpl
def paperzoo_recipes() -> list[RecipeSpec]:
    recipes = f"{_PKG}.recipes"
    runner = f"{_PKG}.reproduce:run"
    return [
        RecipeSpec(
            name="mavil_tiny",
            config=f"{recipes}:tiny_config",
            runner=runner,
            paper="mavil",
            variant="tiny",
            study=f"{recipes}:tiny_study",
            description=(
                "CPU, minutes: audio MAE vs + audio-video contrast (stage 1) vs MAViL (stage 1 "
                "+ 2) on generated audio-visual digits (mp4 with AAC), the same steps, 3 seeds; "
                "audio-only fine-tune top-1 on the test split."
            ),
            reference={},
        ),
        RecipeSpec(
            name="mavil_paper",
            config=f"{recipes}:paper_config",
            runner=runner,
            paper="mavil",
            variant="paper",
            description="MAViL ViT-B on AudioSet-2M (--data: AudioSet CSVs + videos/), stage "
            "1, stage 2, joint fine-tuning (mAP)",
            reference={"joint_mAP": 53.3},
        ),
        RecipeSpec(
            name="mavil_paper_vggsound",
            config=f"{recipes}:paper_vggsound_config",
            runner=runner,
            paper="mavil",
            variant="paper_vggsound",
            description="MAViL ViT-B on VGGSound (--data: vggsound.csv + videos/), joint "
            "fine-tuning (top-1)",
            reference={"joint_top1": 67.1},
        ),
    ]
