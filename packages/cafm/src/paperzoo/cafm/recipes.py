"""CAFM recipes: typed configs for the ``tiny`` (CPU, MNIST) and ``paper`` (SiT-XL/2) runs.

Only dataclasses live here (``paperzoo info`` imports this module to print the fields, so it
must stay free of torch); the runner is :func:`paperzoo.cafm.reproduce.run`. One run (one study
cell) gets a base flow model (``checkpoint``, or the tiny study's stage 1 trained once per seed
with flow matching under the study's shared folder), post-trains it as ``arm`` says into
``post/`` (CAFM, or continued flow matching: the control), samples it guidance-free and scores
the samples.

**paper** (``cafm_paper``): SiT-XL/2 post-training on ImageNet-256 sd-vae-ft-mse latents, from
the released ``SiT-XL-2-256.pt`` (``checkpoint=PATH``); ``--data`` is ImageNet (``train/<class>/``,
encoded once into latent shards with ``vae.path``) or, with ``data.dataset=latents``, a folder
:func:`paperzoo.gen.latents.extract_latents` wrote. The official
``configs/train/cafm/train_cafm_sit.yaml``: batch 256, AdamW lr 1e-5 for both networks, betas
(0, 0.95), wd 0, EMA 0.99, D-only warm-up 10k steps then 16 D steps per G step, t ~ U(0, 1),
label dropout 0.1, centering 0.001, ot 0, clipping at 10,000 (in effect none). Headline:
guidance-free FID 8.26 -> 3.63 (Heun, 250 evaluations).

**paper_jit** (``cafm_paper_jit``): JiT-H/16 on 256 px ImageNet pixels
(``configs/train/cafm/train_cafm_jit.yaml``): batch 1024, warm-up 5k, t = sigmoid(0.8 z + 0.8),
the rest as SiT; evaluated with 50 Heun evaluations. Guidance-free FID 7.17 -> 3.57.

**tiny** (``cafm_tiny``): the claim study of :func:`tiny_study` on the bundled MNIST digits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from paperzoo.core.config import DataConfig, OptimConfig, TrainerConfig

if TYPE_CHECKING:
    from paperzoo.train.study import Study

__all__ = [
    "TINY_ARMS",
    "BaseStage",
    "CAFMRecipeConfig",
    "PostTrainStage",
    "SampleEval",
    "VAEConfig",
    "paper_config",
    "paper_jit_config",
    "pipeline_test_config",
    "tiny_config",
    "tiny_study",
]


@dataclass
class BaseStage:
    """Tiny only: the base flow model, trained from scratch with flow matching (stage 1) with
    its own ``seed``, once, and shared by every cell of the study (the paper post-trains one
    released checkpoint). ``batch_size`` is global."""

    max_steps: int = 2000
    batch_size: int = 64
    ema_decay: float = 0.99
    label_dropout: float = 0.1
    seed: int = 0
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            name="adamw",
            lr=2e-3,
            betas=(0.9, 0.99),
            weight_decay=0.0,
            schedule="cosine",
            warmup_steps=100,
        )
    )


@dataclass
class PostTrainStage:
    """Post-training of the base generator (stage 2).

    ``method``: ``cafm`` (the paper), ``flow_matching`` (the control: more of the base's own
    training, from the same weights) or ``none`` (the base model as it is). ``max_steps``
    counts trainer steps (D and G together for CAFM); ``flow_matching_steps`` is the control's
    length. Generator and discriminator each get their own optimizer.
    """

    method: Literal["cafm", "flow_matching", "none"] = "cafm"
    max_steps: int = 1_000_000
    flow_matching_steps: int = 0
    d_warmup_steps: int = 10_000
    d_steps_per_g: int = 16
    # "official": D for steps 0..d_warmup_steps (inclusive), then the D D ... G cycles counted
    # from step 0 (the official is_dis_step); "after_warmup": D for d_warmup_steps steps, then
    # cycles counted from there (what the committed tiny study ran)
    step_phase: Literal["official", "after_warmup"] = "official"
    batch_size: int = 256
    timesteps: Literal["uniform", "logit_normal"] = "uniform"
    label_dropout: float = 0.1
    cp_scale: float = 0.001
    ot_scale: float = 0.0
    ema_decay: float = 0.99
    clip_grad_norm: float = 10_000.0
    gen_optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            name="adamw", lr=1e-5, betas=(0.0, 0.95), weight_decay=0.0, schedule="constant"
        )
    )
    dis_optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            name="adamw", lr=1e-5, betas=(0.0, 0.95), weight_decay=0.0, schedule="constant"
        )
    )


@dataclass
class SampleEval:
    """Sampling and scoring: ``num_samples`` samples (``cfg_scale`` 1: guidance-free), classes
    balanced, noise from ``sample_seed + 1000 * seed`` (the same noise for every arm of a
    seed: paired comparisons), integrated with
    ``method`` over ``steps`` intervals (Heun: 2 evaluations each), from the EMA generator;
    the first ``grid_per_class`` of each of ``grid_classes`` classes go to ``samples.png``.

    Digits are scored by the digit Frechet distance against the scored split. ImageNet is scored
    by FID: the FID Inception network from ``inception_weights``
    (``pt_inception-2015-12-05-6726825d.pth``) against ``reference_npz`` (ADM's
    ``VIRTUAL_imagenet256_labeled.npz``), latents decoded with the VAE; ``num_samples=0`` skips
    sampling and scoring.
    """

    num_samples: int = 50_000
    steps: int = 125
    method: Literal["euler", "heun"] = "heun"
    cfg_scale: float = 1.0
    sample_seed: int = 0
    batch_size: int = 125
    grid_per_class: int = 8
    grid_classes: int = 10
    inception_weights: str = ""
    reference_npz: str = ""


@dataclass
class VAEConfig:
    """sd-vae-ft-mse for the SiT recipes, from a local file (``path``: the official
    ``sd-vae-ft-mse.pth`` or a diffusers state dict; nothing is downloaded).
    ``tiny_config=True`` builds a small random VAE instead (the pipeline test)."""

    path: str = ""
    scaling_factor: float = 0.18215
    tiny_config: bool = False


@dataclass
class CAFMRecipeConfig:
    """Post-training of ``model`` from ``checkpoint``.

    ``model``: ``sit_xl_2`` (latents), ``jit_h_16`` (pixels) or ``tiny_mnist`` (the tiny study);
    ``model_args``: keyword overrides for its factory (e.g. ``{"depth": 2}``; the tests).
    ``data.dataset``: ``"mnist_sample"`` (tiny: the bundled digits in [-1, 1]; stratified
    test/val/train splits fixed by ``split_seed``; ``split`` names the split scored: ``val`` to
    tune, ``test`` read once), ``"imagenet"`` (``data.root`` with ``train/<class>/<image>``:
    the ADM centre crop at ``data.image_size``; SiT encodes it once into latent shards under
    ``latents_dir``, default the run's ``_latents``; JiT trains on the pixels with random
    horizontal flips) or ``"latents"`` (``data.root``: a
    :class:`paperzoo.gen.latents.LatentDataset` folder).
    """

    seed: int = 0
    model: Literal["sit_xl_2", "jit_h_16", "tiny_mnist"] = "sit_xl_2"
    model_args: dict[str, Any] = field(default_factory=dict)
    checkpoint: str = ""
    split: Literal["val", "test"] = "test"
    test_fraction: float = 0.2
    val_fraction: float = 0.2
    split_seed: int = 0
    torch_threads: int = 0  # 0 leaves torch's default
    latents_dir: str = ""
    flip_prob: float = 0.5  # pixel ImageNet (JiT): random horizontal flips, as the official
    base: BaseStage = field(default_factory=BaseStage)
    post: PostTrainStage = field(default_factory=PostTrainStage)
    sample: SampleEval = field(default_factory=SampleEval)
    vae: VAEConfig = field(default_factory=VAEConfig)
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(
            max_steps=0, checkpoint_every=5000, keep_checkpoints=2, log_every=100, amp="bf16"
        )
    )
    data: DataConfig = field(
        default_factory=lambda: DataConfig(
            dataset="imagenet", root="", batch_size=0, num_workers=8, image_size=256
        )
    )


def paper_config() -> CAFMRecipeConfig:
    """SiT-XL/2 CAFM post-training on ImageNet-256 latents (guidance-free FID 8.26 -> 3.63).

    ``max_steps`` is the official config's 1M ceiling; the paper's reported checkpoint step
    could not be read here (unverified), so stop where the FID is best.
    """
    return CAFMRecipeConfig(model="sit_xl_2")


def paper_jit_config() -> CAFMRecipeConfig:
    """JiT-H/16 CAFM post-training on 256 px ImageNet pixels (guidance-free FID 7.17 -> 3.57):
    the official ``train_cafm_jit.yaml`` (batch 1024, warm-up 5k, JiT's logit-normal t), checked
    with 25 Heun intervals (the official validation's "steps: 50, sampler: heun")."""
    cfg = CAFMRecipeConfig(model="jit_h_16")
    post = dataclasses.replace(
        cfg.post, batch_size=1024, d_warmup_steps=5000, timesteps="logit_normal"
    )
    sample = dataclasses.replace(cfg.sample, steps=25)
    return dataclasses.replace(cfg, post=post, sample=sample)


def pipeline_test_config(root: str, model: str = "sit_xl_2") -> CAFMRecipeConfig:
    """The paper recipes' whole pipeline at a test size on the ImageFolder ``root``
    (``train/<class>/``): 2 SiT blocks of width 64 on the 4 x 8 x 8 latents of a small random
    VAE (or 2 JiT blocks on 32 px pixels), a few steps, 8 samples scored by FID. Not a result:
    what the tests run (``--set`` the same values to run it by hand)."""
    cfg = paper_config() if model == "sit_xl_2" else paper_jit_config()
    if model == "sit_xl_2":
        args: dict[str, Any] = dict(depth=2, hidden_size=64, num_heads=4, input_size=8)
        image_size = 16
    else:
        args = dict(depth=2, hidden_size=64, num_heads=4, input_size=32, patch_size=8,
                    bottleneck_dim=16, in_context_len=4, in_context_start=1)  # fmt: skip
        image_size = 32
    post = dataclasses.replace(
        cfg.post, max_steps=6, d_warmup_steps=2, d_steps_per_g=1, batch_size=4
    )
    return dataclasses.replace(
        cfg,
        model_args=args,
        torch_threads=1,
        post=post,
        sample=dataclasses.replace(cfg.sample, num_samples=8, steps=2, batch_size=4,
                                   grid_per_class=1, grid_classes=4),
        vae=VAEConfig(tiny_config=True),
        trainer=TrainerConfig(max_steps=0, checkpoint_every=3, keep_checkpoints=1, log_every=1,
                              amp="off", tensorboard=False, progress=False),
        data=DataConfig(dataset="imagenet", root=root, batch_size=0, num_workers=0,
                        image_size=image_size),
    )  # fmt: skip


# The arms of the tiny study: the same base model per seed, the same sampler, steps and noise;
# the control and CAFM post-train for the same measured wall time (see tiny_config).
TINY_ARMS: dict[str, tuple[str, ...]] = {
    "base": ("post.method=none",),
    "flow_matching": ("post.method=flow_matching",),
    "cafm": ("post.method=cafm",),
}


def tiny_config() -> CAFMRecipeConfig:
    """The ``cafm`` arm of :func:`tiny_study`: MNIST digits, pixel space, CPU, minutes.

    Departures from the paper recipe, forced by size (not from the paper): the 4-block width-64
    DiT of :data:`paperzoo.cafm.model.TINY_MNIST` on 28 px digits in 7 px patches, trained here
    (stage 1, one base for every seed); batch 64; lr 1e-4 for both networks, a 100-step D-only
    warm-up and 4 D steps per G step, 400 trainer steps (340 D + 60 G; chosen on the
    validation split among lr 1e-4 / 1e-5 and 4 / 16 D steps per G step, README); fp32; 10
    Heun intervals. Kept from the paper: the losses and their weights, t ~ U(0, 1), label
    dropout 0.1, betas (0, 0.95), wd 0, EMA 0.99, guidance-free sampling. The control
    (``post.method=flow_matching``) trains 1,600 flow-matching steps with G's optimizer: the
    same wall time as CAFM's 400 on this machine (README).
    """
    return CAFMRecipeConfig(
        seed=0,
        model="tiny_mnist",
        split="test",
        torch_threads=1,
        base=BaseStage(),
        post=PostTrainStage(
            method="cafm",
            max_steps=400,
            flow_matching_steps=1600,
            d_warmup_steps=100,
            d_steps_per_g=4,
            step_phase="after_warmup",
            batch_size=64,
            gen_optim=OptimConfig(
                name="adamw", lr=1e-4, betas=(0.0, 0.95), weight_decay=0.0, schedule="constant"
            ),
            dis_optim=OptimConfig(
                name="adamw", lr=1e-4, betas=(0.0, 0.95), weight_decay=0.0, schedule="constant"
            ),
        ),
        sample=SampleEval(
            num_samples=1000, steps=10, method="heun", batch_size=500, grid_per_class=8
        ),
        trainer=TrainerConfig(
            max_steps=0,
            checkpoint_every=500,
            keep_checkpoints=1,
            log_every=20,
            amp="off",
            tensorboard=False,
        ),
        data=DataConfig(
            dataset="mnist_sample", root="", batch_size=0, num_workers=0, image_size=28
        ),
    )


def tiny_study() -> Study:
    """Base vs base + more flow matching vs base + CAFM, seeds 0-2, on the digit Frechet
    distance of guidance-free samples (test split)."""
    from paperzoo.train.study import Arm, Claim, Study

    texts = {
        "base": "the stage-1 flow-matching model, as trained (no post-training)",
        "flow_matching": "the base + continued flow matching for CAFM's wall time (the control)",
        "cafm": "the base + CAFM post-training (the paper)",
    }
    arms = tuple(
        Arm(name, overrides, description=texts[name]) for name, overrides in TINY_ARMS.items()
    )
    return Study(
        arms=arms,
        seeds=(0, 1, 2),
        seed_key="seed",
        metrics=("digit_fd", "post_wall_seconds"),
        claims=(
            Claim(
                "CAFM post-training lowers the base model's guidance-free digit Frechet "
                "distance (paper: SiT-XL/2 FID 8.26 -> 3.63)",
                metric="digit_fd",
                arm="cafm",
                baseline="base",
                rule="better_all_seeds",
                higher_is_better=False,
            ),
            Claim(
                "CAFM beats continued flow matching at the same wall time",
                metric="digit_fd",
                arm="cafm",
                baseline="flow_matching",
                rule="better_mean",
                higher_is_better=False,
            ),
        ),
        description=(
            "Bundled MNIST digits, pixel space: one base flow model (2,000 flow-matching "
            "steps on 3,000 training digits, trained once), then each arm per seed; 1,000 "
            "guidance-free samples (100 per class, the same noise in every arm of a seed), 10 "
            "Heun intervals (20 evaluations), digit Frechet distance against the 1,000 test "
            "digits."
        ),
    )
