"""Hook implementations for paperzoo-advflow.

Imported by every ``paperzoo list``: it imports ``paperzoo.core`` only (no torch) and names
everything heavy by import string.
"""

from __future__ import annotations

from paperzoo.core import MethodSpec, ModelSpec, PaperSpec, RecipeSpec, hookimpl

_PKG = "paperzoo.advflow"
_LOADER = f"{_PKG}.convert:load_checkpoint"
_TAGS = ("generative", "gan", "flow", "dit", "imagenet-256")

# Every nn.Parameter (the frozen sin-cos pos_embed included, as the official and DiT count),
# asserted in tests/test_model.py on the meta device. The paper's counts: B/2 130 M, M/2
# 306 M, L/2 457 M, XL/2 673 M (675 M with the time embedder: multi-step and deep models).
PARAMS = {
    "advflow_b2_1nfe": 129_711_376,
    "advflow_m2_1nfe": 305_654_800,
    "advflow_l2_1nfe": 456_772_624,
    "advflow_xl2_1nfe": 673_485_712,
    "advflow_xl2_2nfe": 675_110_032,
    "advflow_xl2_4nfe": 675_110_032,
    "advflow_xl2_56layer_1nfe": 675_110_032,
    "advflow_xl2_112layer_1nfe": 675_110_032,
    "advflow_b2_anystep": 131_287_312,
    "advflow_b2_discriminator": 128_519_424,
    "advflow_m2_discriminator": 303_541_248,
    "advflow_l2_discriminator": 454_659_072,
    "advflow_xl2_discriminator": 670_813_056,
    "advflow_b2_classifier": 129_307_624,
    "advflow_tiny_classifier": 710_698,
    "advflow_tiny_1nfe": 699_985,
    "advflow_tiny_discriminator": 676_800,
}

_MODELS = {
    "advflow_b2_1nfe": ("B/2 1NFE generator (b2_1nfe_*.pth)", "generator"),
    "advflow_m2_1nfe": ("M/2 1NFE generator (m2_1nfe_*.pth)", "generator"),
    "advflow_l2_1nfe": ("L/2 1NFE generator (l2_1nfe_*.pth)", "generator"),
    "advflow_xl2_1nfe": ("XL/2 1NFE generator (xl2_1nfe_guided_FID2.38.pth)", "generator"),
    "advflow_xl2_2nfe": ("XL/2 2-step v-prediction generator (xl2_2nfe_*.pth)", "generator"),
    "advflow_xl2_4nfe": ("XL/2 4-step v-prediction generator (xl2_4nfe_guided_FID2.03.pth)",
                         "generator"),
    "advflow_xl2_56layer_1nfe": ("XL/2 blocks x 2 (56 layers, shared), 1NFE "
                                 "(xl2_56layer_1nfe_guided_FID2.08.pth)", "generator", "deep"),
    "advflow_xl2_112layer_1nfe": ("XL/2 blocks x 4 (112 layers, shared), 1NFE "
                                  "(xl2_112layer_1nfe_guided_FID1.94.pth)", "generator", "deep"),
    "advflow_b2_anystep": ("B/2 any-step generator with the t_tgt embedder (no released "
                           "checkpoint)", "generator"),
    "advflow_b2_discriminator": ("B/2 discriminator (use_time=True for multi-step)",
                                 "discriminator"),
    "advflow_m2_discriminator": ("M/2 discriminator", "discriminator"),
    "advflow_l2_discriminator": ("L/2 discriminator", "discriminator"),
    "advflow_xl2_discriminator": ("XL/2 discriminator", "discriminator"),
    "advflow_b2_classifier": ("B/2 noisy-latent classifier of the guided stage (classifier.pth)",
                              "classifier"),
    "advflow_tiny_1nfe": ("Not from the paper: 28 x 28 digit 1NFE generator (pixel space, "
                          "patch 7, 4 x 96)", "tiny", "generator"),
    "advflow_tiny_discriminator": ("Not from the paper: the tiny discriminator", "tiny",
                                   "discriminator"),
    "advflow_tiny_classifier": ("Not from the paper: a tiny noisy-image classifier", "tiny",
                                "classifier"),
}  # fmt: skip


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="advflow",
            title="Adversarial Flow Models",
            authors=("Shanchuan Lin", "Ceyuan Yang", "Zhijie Lin", "Hao Chen", "Haoqi Fan"),
            year=2025,
            arxiv="2511.22475",
            official_code="https://github.com/ByteDance-Seed/Adversarial-Flow-Models",
            headline_results={
                "ImageNet-256 FID-50K, XL/2 1NFE (guided)": 2.38,
                "ImageNet-256 FID-50K, XL/2 56-layer 1NFE (guided)": 2.08,
                "ImageNet-256 FID-50K, XL/2 112-layer 1NFE (guided)": 1.94,
                "ImageNet-256 FID-50K, XL/2 4NFE (guided)": 2.03,
            },
            description=(
                "A DiT generator trained adversarially to transport noise to data along the "
                "flow x_t = (1-t)x + t·eps, in one step or several, against a DiT "
                "discriminator: relativistic paired loss, finite-difference R1/R2, logit "
                "centering, an optimal-transport regulariser and normalisation of the "
                "discriminator's gradient into the generator."
            ),
        )
    ]  # fmt: skip


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            name=name,
            factory=f"{_PKG}.model:{name}",
            paper="advflow",
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
            name="advflow",
            factory=f"{_PKG}.method:AdvFlow",
            paper="advflow",
            description="Adversarial flow training (generator + discriminator optimizers): "
            "relativistic paired loss, R1/R2 by finite differences, centering, OT "
            "regulariser, gradient normalisation",
        )
    ]


@hookimpl
def paperzoo_recipes() -> list[RecipeSpec]:
    recipes = f"{_PKG}.recipes"
    runner = f"{_PKG}.reproduce:run"
    return [
        RecipeSpec(
            name="advflow_tiny",
            config=f"{recipes}:tiny_config",
            runner=runner,
            paper="advflow",
            variant="tiny",
            study=f"{recipes}:tiny_study",
            description=(
                "CPU, minutes: flow matching sampled with 1 Euler step, the same model with "
                "many Heun steps, and advflow 1NFE, each trained for the same wall time on the "
                "bundled MNIST digits (pixel space), 3 seeds; digit Fréchet distance on the "
                "held-out test digits."
            ),
            reference={},
        ),
        RecipeSpec(
            name="advflow_paper",
            config=f"{recipes}:paper_config",
            runner=runner,
            paper="advflow",
            variant="paper",
            description=(
                "XL/2 1NFE on ImageNet-256 (--data: an ImageFolder train/ + val/, encoded "
                "once to sd-vae-ft-mse latents; --set vae.path=... eval.inception_weights=... "
                "eval.reference_npz=...), FID-50K. The unguided first stage: the headline 2.38 "
                "needs advflow_paper_classifier, then advflow_paper_guided"
            ),
            reference={},
        ),
        RecipeSpec(
            name="advflow_paper_classifier",
            config=f"{recipes}:paper_classifier_config",
            runner=runner,
            paper="advflow",
            variant="paper_classifier",
            description=(
                "The guided stage's B/2 noisy-latent classifier on ImageNet-256 latents "
                "(--data as advflow_paper): t ~ U(0, 1), cross-entropy; trains only "
                "(train/model_ema.safetensors)"
            ),
            reference={},
        ),
        RecipeSpec(
            name="advflow_paper_guided",
            config=f"{recipes}:paper_guided_config",
            runner=runner,
            paper="advflow",
            variant="paper_guided",
            description=(
                "XL/2 1NFE guided fine-tuning (classifier guidance 0.003, discriminator "
                "augmentation 0.4) from advflow_paper's EMA generator and discriminator "
                "(--set advflow.generator_checkpoint=... advflow.discriminator_checkpoint=... "
                "classifier.checkpoint=...), FID-50K"
            ),
            reference={"fid": 2.38},
        ),
        RecipeSpec(
            name="advflow_paper_4nfe",
            config=f"{recipes}:paper_4nfe_config",
            runner=runner,
            paper="advflow",
            variant="paper_4nfe",
            description=(
                "XL/2 4-step (v-prediction, time-conditioned D, OT 0.25, clipping 5) on "
                "ImageNet-256 latents, --data as advflow_paper; the unguided stage of "
                "advflow_paper_4nfe_guided"
            ),
            reference={},
        ),
        RecipeSpec(
            name="advflow_paper_4nfe_guided",
            config=f"{recipes}:paper_4nfe_guided_config",
            runner=runner,
            paper="advflow",
            variant="paper_4nfe_guided",
            description=(
                "XL/2 4-step guided fine-tuning (cg 0.02 at the target time <= 0.49, "
                "augmentation 0.4) from advflow_paper_4nfe's files, as advflow_paper_guided"
            ),
            reference={"fid": 2.03},
        ),
        RecipeSpec(
            name="advflow_paper_deep",
            config=f"{recipes}:paper_deep_config",
            runner=runner,
            paper="advflow",
            variant="paper_deep",
            description=(
                "XL/2 112-layer 1NFE (the 28 blocks x 4; --set advflow.repeat=2 for 56), "
                "G lr 5e-5, D lr 1e-4, clipping 5; --data as advflow_paper"
            ),
            reference={},
        ),
        RecipeSpec(
            name="advflow_paper_deep_guided",
            config=f"{recipes}:paper_deep_guided_config",
            runner=runner,
            paper="advflow",
            variant="paper_deep_guided",
            description=(
                "XL/2 112-layer guided fine-tuning from advflow_paper_deep's files with the "
                "1NFE guidance settings (no deep guided config is released: unverified)"
            ),
            reference={"fid": 1.94},
        ),
    ]
