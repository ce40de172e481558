"""Hook implementations for paperzoo-cafm (imports paperzoo.core only; no torch)."""

from __future__ import annotations

from paperzoo.core import MethodSpec, ModelSpec, PaperSpec, RecipeSpec, hookimpl

_PKG = "paperzoo.cafm"
_LOADER = f"{_PKG}.convert:load_checkpoint"

# Parameters of each registered model as its factory builds it with the defaults (every
# nn.Parameter, the frozen sin-cos pos_embed included, as the official code counts them), asserted
# in tests/test_plugin.py on the meta device.
# - cafm_sit_xl_2: SiT-XL/2 with learn_sigma (8 output channels) and 1001 label rows, the released
#   SiT-XL-2-256.pt layout: 675,129,632 (DiT-XL/2's "675M").
# - cafm_sit_xl_2_discriminator: the same backbone without the generator's final layer
#   (-2,693,408), plus dis_embed and Linear(1152, 1, bias=False) (+2,304).
# - cafm_jit_h_16: JiT-H/16 (32 x 1280, bottleneck 256, 32 in-context tokens): 952,842,048,
#   JiT's "953M". Its discriminator drops the final layer and adds Linear(1280, 1).
# - the tiny pair: not from the paper (paperzoo.cafm.model.TINY_MNIST).
PARAMS = {
    "cafm_sit_xl_2": 675_129_632,
    "cafm_sit_xl_2_discriminator": 672_438_528,
    "cafm_jit_h_16": 952_842_048,
    "cafm_jit_h_16_discriminator": 948_578_881,
    "cafm_tiny_mnist": 335_793,
    "cafm_tiny_mnist_discriminator": 324_416,
}

_MODELS = {
    "cafm_sit_xl_2": (
        "model", "SiT-XL/2 as CAFM's velocity generator (256 px sd-vae latents, learn_sigma, "
        "1001 label rows; loads the official SiT-XL-2-256.pt and SiT/CAFM training checkpoints)",
        ("sit",),
    ),
    "cafm_sit_xl_2_discriminator": (
        "model", "CAFM's SiT-XL/2 discriminator: RMSNorm backbone, learnable token, RMSNorm + "
        "Linear(1152, 1); a SiT generator checkpoint initialises it (strict=False, as official)",
        ("sit", "discriminator"),
    ),
    "cafm_jit_h_16": (
        "jit", "JiT-H/16 (LTH14/JiT) as CAFM's pixel-space generator: x-prediction turned into "
        "the velocity (x_t - x_pred) / clamp(t, 0.05); loads JiT's model_ema1 (net. prefix) "
        "checkpoints and the plain state dict CAFM converts them to",
        ("jit",),
    ),
    "cafm_jit_h_16_discriminator": (
        "jit", "CAFM's JiT-H/16 discriminator: the backbone read on its first in-context token "
        "through RMSNorm + Linear(1280, 1); a JiT generator checkpoint initialises it",
        ("jit", "discriminator"),
    ),
    "cafm_tiny_mnist": (
        "model", "Not from the paper: 4 DiT blocks of width 64 on 28 px digits in 7 px patches, "
        "velocity in paperzoo's time convention, for the CPU study",
        ("tiny",),
    ),
    "cafm_tiny_mnist_discriminator": (
        "model", "Not from the paper: the tiny study's RMSNorm discriminator (11 label rows)",
        ("tiny", "discriminator"),
    ),
}  # fmt: skip


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="cafm",
            title="Continuous Adversarial Flow Models",
            authors=("Shanchuan Lin", "Ceyuan Yang", "Zhijie Lin", "Hao Chen", "Haoqi Fan"),
            year=2026,
            arxiv="2604.11521",
            official_code="https://github.com/ByteDance-Seed/Adversarial-Flow-Models",
            headline_results={
                "ImageNet-256 guidance-free FID, SiT-XL/2 before": 8.26,
                "ImageNet-256 guidance-free FID, SiT-XL/2 + CAFM": 3.63,
                "ImageNet-256 guidance-free FID, JiT-H/16 before": 7.17,
                "ImageNet-256 guidance-free FID, JiT-H/16 + CAFM": 3.57,
                "ImageNet-256 guided FID, SiT-XL/2 before": 2.06,
                "ImageNet-256 guided FID, SiT-XL/2 + CAFM": 1.53,
                "ImageNet-256 guided FID, JiT-H/16 before": 1.86,
                "ImageNet-256 guided FID, JiT-H/16 + CAFM": 1.80,
            },
            description=(
                "Post-trains a pretrained flow-matching model (SiT, JiT) against a "
                "discriminator initialised from it: a least-squares GAN on the discriminator's "
                "JVP along the trajectory (real tangent eps - x, fake tangent the velocity), "
                "a D-only warm-up, then 16 D steps per G step."
            ),
        )
    ]


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            name=name,
            factory=f"{_PKG}.{module}:{name}",
            paper="cafm",
            num_params=PARAMS[name],
            checkpoint_loader=_LOADER,
            description=description,
            tags=("generative", "flow-matching", *tags),
        )
        for name, (module, description, tags) in _MODELS.items()
    ]


@hookimpl
def paperzoo_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="cafm",
            factory=f"{_PKG}.method:CAFM",
            paper="cafm",
            description=(
                "least-squares GAN on jvp(D, (x_t, t), (v, 1)): D (D'_real - 1)^2 + "
                "(D'_fake + 1)^2 + 0.001 D^2, G (D'_fake - 1)^2; two optimizers, label dropout "
                "0.1, t uniform (SiT) or logit-normal (JiT)"
            ),
        )
    ]


@hookimpl
def paperzoo_recipes() -> list[RecipeSpec]:
    recipes = f"{_PKG}.recipes"
    runner = f"{_PKG}.reproduce:run"
    return [
        RecipeSpec(
            name="cafm_tiny",
            config=f"{recipes}:tiny_config",
            runner=runner,
            paper="cafm",
            variant="tiny",
            study=f"{recipes}:tiny_study",
            description=(
                "CPU, minutes: a small flow model trained on the bundled MNIST digits, then "
                "as it is vs + continued flow matching vs + CAFM, x 3 seeds; guidance-free "
                "digit Frechet distance at the same sampler and steps"
            ),
            reference={},
        ),
        RecipeSpec(
            name="cafm_paper",
            config=f"{recipes}:paper_config",
            runner=runner,
            paper="cafm",
            variant="paper",
            description=(
                "SiT-XL/2 CAFM post-training on ImageNet-256 latents (--data IMAGENET, --set "
                "checkpoint=SiT-XL-2-256.pt vae.path=... sample.inception_weights=... "
                "sample.reference_npz=...); the official train_cafm_sit.yaml"
            ),
            reference={"fid": 3.63},
        ),
        RecipeSpec(
            name="cafm_paper_jit",
            config=f"{recipes}:paper_jit_config",
            runner=runner,
            paper="cafm",
            variant="paper_jit",
            description=(
                "JiT-H/16 CAFM post-training on ImageNet-256 pixels (--data IMAGENET, --set "
                "checkpoint=JiT-H-16 checkpoint-last.pth ...); the official train_cafm_jit.yaml"
            ),
            reference={"fid": 3.57},
        ),
    ]
