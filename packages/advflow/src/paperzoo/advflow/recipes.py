"""Adversarial Flow Models recipes: typed configs for the ``tiny`` (CPU, digits) and ``paper``
(ImageNet-256) runs.

Only dataclasses live here (``paperzoo info`` imports this module to print the fields, so it
must stay free of torch); the runner is :func:`paperzoo.advflow.reproduce.run`. One run (one
study cell) trains one generator (``method``: ``advflow`` or the ``flow_matching`` baseline)
and scores samples drawn with ``sampler`` / ``sample_steps``.

**paper** (``advflow_paper``): the official ``configs/train/train_1nfe.yaml`` (read from
github.com/ByteDance-Seed/Adversarial-Flow-Models): XL/2 generator and discriminator on
sd-vae-ft-mse latents (x 0.18215) of ImageNet-256 (``--data`` an ImageFolder root with
``train/``; the latents are extracted once into ``latents_dir``), global batch 256, AdamW lr
1e-4, betas (0, 0.9), wd 0.01, eps 1e-8, constant lr, one D step per G step, clip 50 on both,
EMA 0.9999, gp 0.25 on 25% of the batch with σ 0.01, centering 0.01, OT 0.2 -> 0.005 cosine
over 1M steps, gradient normalisation on. Evaluated by FID-50K (50 per class) with the FID
Inception network (``eval.inception_weights``) against ADM's reference batch
(``eval.reference_npz``). The headline 2.38 is the *guided* checkpoint: classifier guidance
and discriminator augmentation in a later fine-tuning stage (``train_1nfe_cg.yaml``) that is
run by ``advflow_paper_guided``; this recipe is the first (unguided) stage.

**classifier** (``advflow_paper_classifier``): the guided stage's B/2 noisy-latent classifier
(official ``configs/train/afm/train_afm_classifier.yaml`` and
``train_adversarial_flow_classifier.py``): t ~ U(0, 1), CE on x_t, global batch 256, AdamW lr
1e-4, betas (0.9, 0.95), wd 0.01, eps 1e-8, clip 50, EMA 0.9995.

**guided** (``advflow_paper_guided``): the fine-tuning of ``train_afm_1nfe_cg.yaml``, started
from the unguided stage's last EMA generator and its discriminator (``--set
advflow.generator_checkpoint=... advflow.discriminator_checkpoint=...``) with the frozen
classifier (``--set classifier.checkpoint=...``): cg 0.003, t_cg ~ U(0, 0.1), discriminator
augmentation p 0.4, everything else as ``advflow_paper``.

**tiny** (``advflow_tiny``): the claim study of :func:`tiny_study`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from paperzoo.core.config import DataConfig, OptimConfig, TrainerConfig

if TYPE_CHECKING:
    from paperzoo.train.study import Study

__all__ = [
    "TINY_ARMS",
    "AdvFlowRecipeConfig",
    "AdvFlowStage",
    "ClassifierStage",
    "EvalConfig",
    "FlowMatchingStage",
    "paper_classifier_config",
    "paper_config",
    "paper_guided_config",
    "pipeline_test_config",
    "tiny_config",
    "tiny_study",
]


def _adamw(lr: float, betas: tuple[float, float] = (0.0, 0.9), wd: float = 0.01) -> OptimConfig:
    return OptimConfig(name="adamw", lr=lr, betas=betas, weight_decay=wd, eps=1e-8,
                       schedule="constant")  # fmt: skip


@dataclass
class AdvFlowStage:
    """The adversarial training (:class:`paperzoo.advflow.method.AdvFlow`).

    ``kind``/``steps``/``repeat``: the generator (``1nfe``; ``fixed`` with ``steps`` = N;
    ``any`` (steps 0); ``deep`` with ``repeat`` 2 or 4). ``max_steps`` counts trainer steps (D
    and G together); ``ot_steps`` is the OT cosine's length in the same steps (0: max_steps).
    ``clip_generator`` / ``clip_discriminator``: 50 for 1NFE, 5 for multi-step and deep.
    """

    kind: Literal["1nfe", "fixed", "any", "deep"] = "1nfe"
    steps: int = 1
    repeat: int = 1
    max_steps: int = 5_000_000  # official: "an arbitrary large number"; stop by FID
    batch_size: int = 256
    d_steps_per_g: int = 1
    gp_scale: float = 0.25
    gp_fraction: float = 0.25
    gp_eps: float = 0.01
    centering: float = 0.01
    ot_start: float = 0.2
    ot_end: float = 0.005
    ot_steps: int = 1_000_000
    grad_norm: bool = True
    clip_generator: float = 50.0
    clip_discriminator: float = 50.0
    generator_optim: OptimConfig = field(default_factory=lambda: _adamw(1e-4))
    discriminator_optim: OptimConfig = field(default_factory=lambda: _adamw(1e-4))
    # The guided stage (0 / "" = off; official values in paper_guided_config).
    cg_scale: float = 0.0
    cg_flow: bool = True  # t_cg ~ U(lo, hi) (official adversarial.cg_flow), else t_cg = t_tgt
    cg_interpolate: bool = False  # classify (1-t_cg)·x̂ + t_cg·ε (official cls.flow), else x̂
    cg_timestep_lo: float = 0.0
    cg_timestep_hi: float = 0.1
    augment_p: float = 0.0
    # Copy the EMA into G every this many trainer steps (official ``ema.autoreload``, at each
    # ``evaluation.interval``; 0 = off).
    ema_reload_every: int = 0
    generator_checkpoint: str = ""  # start G (and its EMA) from this file
    discriminator_checkpoint: str = ""  # start D from this file


@dataclass
class ClassifierStage:
    """The noisy-latent classifier (:class:`paperzoo.advflow.model.AdvFlowClassifier`):
    trained by ``method=classifier`` (official ``train_afm_classifier.yaml``), or loaded from
    ``checkpoint`` for the guided stage (official ``cls.checkpoint: classifier.pth``)."""

    model: str = "B"
    checkpoint: str = ""
    max_steps: int = 5_000_000  # official: "an arbitrary large number"
    batch_size: int = 256
    clip: float = 50.0
    ema_decay: float = 0.9995
    # Train on images augmented as the official classifier's data (kornia RandomAffine, then
    # the ADM crop and a flip) and VAE-encoded each step; False reads the pre-extracted latents.
    augment: bool = True
    optim: OptimConfig = field(default_factory=lambda: _adamw(1e-4, betas=(0.9, 0.95)))


@dataclass
class FlowMatchingStage:
    """The baseline: a flow-matching velocity DiT (:class:`paperzoo.gen.flow.FlowMatching`) of
    the generator's size, trained with the same data, batch and EMA."""

    max_steps: int = 1000
    batch_size: int = 64
    optim: OptimConfig = field(default_factory=lambda: _adamw(1e-3, betas=(0.9, 0.999), wd=0.0))


@dataclass
class EvalConfig:
    """Sample ``num_samples`` (class-balanced labels) and score them (0: train only).

    Digits: the digit Fréchet distance against the scored split (``digit_fd``). ImageNet: FID
    with the FID Inception network from ``inception_weights`` against ``reference_npz`` (ADM's
    ``VIRTUAL_imagenet256_labeled.npz``), decoding with the VAE. ``grid``: how many samples
    go into ``samples.png``.
    """

    num_samples: int = 50_000
    batch_size: int = 250
    inception_weights: str = ""
    reference_npz: str = ""
    grid: int = 64


@dataclass
class VAEConfig:
    """sd-vae-ft-mse, from a local file (``path``; the official ``sd-vae-ft-mse.pth`` or a
    diffusers state dict). ``tiny_config=True`` builds a small random VAE instead (tests)."""

    path: str = ""
    scaling_factor: float = 0.18215
    tiny_config: bool = False


@dataclass
class AdvFlowRecipeConfig:
    """One generator trained and scored.

    ``model``: a DiT size (``B``, ``M``, ``L``, ``XL``) on ImageNet latents, or ``tiny``
    (pixel-space digits, :data:`paperzoo.advflow.model.TINY`). ``data.dataset``:
    ``mnist_sample`` (tiny; ``split`` names the scored split: ``val`` to tune, ``test`` read
    once) or ``imagenet`` (``data.root`` with ``train/``). ``sampler``: ``one_step`` (the
    generator's own), ``euler`` or ``heun`` (flow matching, ``sample_steps`` steps).
    """

    seed: int = 0
    model: str = "XL"
    method: Literal["advflow", "flow_matching", "classifier"] = "advflow"
    sampler: Literal["generator", "euler", "heun"] = "generator"
    sample_steps: int = 1
    split: Literal["val", "test"] = "test"
    torch_threads: int = 0  # 0 leaves torch's default
    latents_dir: str = ""  # default: OUT/_latents (a study: its shared folder)
    advflow: AdvFlowStage = field(default_factory=AdvFlowStage)
    flow: FlowMatchingStage = field(default_factory=FlowMatchingStage)
    classifier: ClassifierStage = field(default_factory=ClassifierStage)
    eval: EvalConfig = field(default_factory=EvalConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(
            max_steps=0, checkpoint_every=20_000, keep_checkpoints=2, log_every=100,
            amp="bf16", ema_decay=0.9999,
        )
    )  # fmt: skip
    data: DataConfig = field(
        default_factory=lambda: DataConfig(
            dataset="imagenet", root="", batch_size=0, num_workers=8, image_size=256
        )
    )


def paper_config() -> AdvFlowRecipeConfig:
    """XL/2 1NFE on ImageNet-256 latents (official ``train_1nfe.yaml``)."""
    return AdvFlowRecipeConfig(model="XL")


# Official ``train_afm_1nfe_cg.yaml``: ``ema.autoreload: True`` fires after each evaluation,
# ``evaluation.interval: 10000`` steps; an official step is one D or one G step (``ttur`` 1), as
# a trainer step is here. The released ImageNet trainer writes the copy as
# ``zip(self.dit.parameters(), self.ema.parameters())``, but only its Z-Image trainer defines
# ``self.dit``; we read it as the generator, the EMA's source.
GUIDED_EMA_RELOAD_EVERY = 10_000


def paper_guided_config() -> AdvFlowRecipeConfig:
    """The guided 1NFE fine-tuning (official ``train_afm_1nfe_cg.yaml``): ``advflow_paper`` plus
    cg 0.003 with the frozen B/2 classifier, t_cg ~ U(0, 0.1) on x̂ itself, augmentation p
    0.4, the EMA copied into G every 10,000 steps; G, D and the classifier from the files
    ``--set`` names."""
    return _guided_1nfe(paper_config())


def _guided_1nfe(cfg: AdvFlowRecipeConfig) -> AdvFlowRecipeConfig:
    """``cfg`` with ``train_afm_1nfe_cg.yaml``'s guidance: cg 0.003 (t_cg ~ U(0, 0.1), the
    stage's defaults), augmentation p 0.4 and the EMA autoreload."""
    guided = dataclasses.replace(
        cfg.advflow, cg_scale=0.003, augment_p=0.4, ema_reload_every=GUIDED_EMA_RELOAD_EVERY
    )
    return dataclasses.replace(cfg, advflow=guided)


def paper_4nfe_config() -> AdvFlowRecipeConfig:
    """XL/2 4-step (official ``train_afm_multi_nfe.yaml`` with ``exp.steps: 4``): v-prediction
    with the source-time embedder (``use_t_src``), a time-conditioned discriminator, OT 0.25 ->
    0.005, both gradients clipped at 5; sampled in its 4 steps."""
    cfg = paper_config()
    multi = dataclasses.replace(cfg.advflow, kind="fixed", steps=4, ot_start=0.25,
                                clip_generator=5.0, clip_discriminator=5.0)  # fmt: skip
    return dataclasses.replace(cfg, advflow=multi, sample_steps=4)


def paper_4nfe_guided_config() -> AdvFlowRecipeConfig:
    """The guided 4-step fine-tuning (official ``train_afm_multi_nfe_cg.yaml``): cg 0.02 with the
    classifier at t_cg = the step's target time (``cg_flow: False``, "do not use flow-cg for
    multi-step") within [0, 0.49], augmentation p 0.4, the EMA autoreload."""
    cfg = paper_4nfe_config()
    guided = dataclasses.replace(
        cfg.advflow, cg_scale=0.02, cg_flow=False, cg_timestep_lo=0.0, cg_timestep_hi=0.49,
        augment_p=0.4, ema_reload_every=GUIDED_EMA_RELOAD_EVERY,
    )  # fmt: skip
    return dataclasses.replace(cfg, advflow=guided)


def paper_deep_config() -> AdvFlowRecipeConfig:
    """XL/2 112-layer 1NFE (official ``train_afm_1nfe_deep.yaml`` with ``exp.depth: 4``; 56 layers
    with ``--set advflow.repeat=2``): the 28 blocks applied 4 times, G lr 5e-5 ("lr / depth"
    there, at depth 2), D lr 1e-4, both gradients clipped at 5."""
    cfg = paper_config()
    deep = dataclasses.replace(cfg.advflow, kind="deep", repeat=4, generator_optim=_adamw(5e-5),
                               clip_generator=5.0, clip_discriminator=5.0)  # fmt: skip
    return dataclasses.replace(cfg, advflow=deep)


def paper_deep_guided_config() -> AdvFlowRecipeConfig:
    """The guided 112-layer fine-tuning behind ``xl2_112layer_1nfe_guided_FID1.94.pth``. No
    guided config for the deep models is released: these are ``train_afm_1nfe_cg.yaml``'s
    guidance settings (cg 0.003, t_cg ~ U(0, 0.1), augmentation 0.4, autoreload) on
    :func:`paper_deep_config`, our reading, unverified."""
    return _guided_1nfe(paper_deep_config())


def paper_classifier_config() -> AdvFlowRecipeConfig:
    """The B/2 noisy-latent classifier on ImageNet-256 latents (official
    ``train_afm_classifier.yaml``); trains only (``model_ema.safetensors`` is the file the
    guided stage reads)."""
    cfg = paper_config()
    return dataclasses.replace(
        cfg, method="classifier", eval=dataclasses.replace(cfg.eval, num_samples=0)
    )


def pipeline_test_config(root: str) -> AdvFlowRecipeConfig:
    """The paper recipe's whole pipeline at a test size (4-channel 8 x 8 latents of 16 px
    images through a small random VAE that halves the side), a few steps, on the ImageFolder
    ``root``: what the tests run. Not a result."""
    cfg = paper_config()
    return dataclasses.replace(
        cfg,
        model="latent_test",
        torch_threads=1,
        advflow=dataclasses.replace(cfg.advflow, max_steps=4, batch_size=4, ot_steps=4,
                                    generator_optim=_adamw(1e-3),
                                    discriminator_optim=_adamw(1e-3)),
        eval=EvalConfig(num_samples=8, batch_size=4, grid=4),
        vae=VAEConfig(tiny_config=True),
        trainer=TrainerConfig(max_steps=0, checkpoint_every=2, keep_checkpoints=1,
                              log_every=1, amp="off", tensorboard=False, progress=False,
                              ema_decay=0.9999),
        data=DataConfig(dataset="imagenet", root=root, batch_size=0, num_workers=0,
                        image_size=16),
    )  # fmt: skip


# The tiny study's training budget per trained model, in seconds of training on one CPU thread:
# the step counts below were set from the step times of the validation runs (1,400 FM steps
# took 85-100 s, 700 advflow trainer steps 85-110 s on the shared 2-core machine; README "The
# tiny study") so that each model trains for about this long.
TINY_TRAIN_SECONDS = 90
TINY_FM_STEPS = 1400
TINY_ADVFLOW_STEPS = 630  # trainer steps: 315 D + 315 G
TINY_MANY_STEPS = 16  # Heun steps of the many-step sample (32 velocity evaluations)
TINY_BATCH = 32
# Chosen on the validation digits (seed 0) from {1e-3, 2e-3, 4e-3, 8e-3}, each method by its
# own digit Fréchet distance (flow matching: its many-step sample): README "The tiny study".
TINY_LR = {"advflow": 2e-3, "flow_matching": 8e-3}

TINY_ARMS: dict[str, tuple[str, ...]] = {
    "fm_euler1": ("method=flow_matching", "sampler=euler", "sample_steps=1"),
    "fm_heun_many": ("method=flow_matching", "sampler=heun", f"sample_steps={TINY_MANY_STEPS}"),
    "advflow_1nfe": ("method=advflow", "sampler=generator", "sample_steps=1"),
}

# "Approaches": advflow 1NFE lands nearer the many-step flow-matching sample than the 1-step
# one, i.e. its mean digit Fréchet distance is at most half the 1-step -> many-step gap above
# the many-step sample's. The margin is that half gap as the validation run at the chosen lr
# measured it for flow matching alone ((3362 - 415) / 2), fixed before the test run.
TINY_APPROACH_MARGIN = 1470.0


def tiny_config() -> AdvFlowRecipeConfig:
    """The ``advflow_1nfe`` arm of :func:`tiny_study`: MNIST digits in pixel space, CPU.

    Departures from the paper recipe, forced by size (not from the paper): 28 x 28 gray digits
    in [-1, 1] (no VAE), a 4-block width-96 DiT with patch 7 (16 tokens) for both networks,
    batch 32, lr 2e-3 for G and D (chosen on val; betas (0, 0.9) and weight decay 0.01 as the
    paper), 630 trainer steps (about 90 s), EMA 0.99 (the paper's 0.9999 averages over far
    more steps than the run has), the OT cosine 0.2 -> 0.005 over the run's own steps, fp32. The losses, gp 0.25 on 25% of the
    batch, centering, clip 50, gradient normalisation and one D step per G step are the
    paper's. The flow-matching baseline trains the same DiT (plus a time embedder) with the
    same batch and EMA for 1,400 steps (about 90 s), AdamW lr 8e-3 (chosen on val), betas
    (0.9, 0.999), no weight decay.
    """
    lr = TINY_LR["advflow"]
    fm_optim = _adamw(TINY_LR["flow_matching"], betas=(0.9, 0.999), wd=0.0)
    cfg = AdvFlowRecipeConfig(
        model="tiny",
        method="advflow",
        sampler="generator",
        split="test",
        torch_threads=1,
        advflow=AdvFlowStage(
            max_steps=TINY_ADVFLOW_STEPS, batch_size=TINY_BATCH, ot_steps=0,
            generator_optim=_adamw(lr), discriminator_optim=_adamw(lr),
        ),
        flow=FlowMatchingStage(max_steps=TINY_FM_STEPS, batch_size=TINY_BATCH, optim=fm_optim),
        eval=EvalConfig(num_samples=1000, batch_size=500, grid=100),
        trainer=TrainerConfig(max_steps=0, checkpoint_every=500, keep_checkpoints=1,
                              log_every=50, amp="off", tensorboard=False, ema_decay=0.99),
        data=DataConfig(dataset="mnist_sample", root="", batch_size=0, num_workers=0,
                        image_size=28),
    )  # fmt: skip
    return cfg


def tiny_study() -> Study:
    """FM 1 Euler step vs FM many Heun steps vs advflow 1NFE, x seeds 0-2, digit Fréchet distance."""
    from paperzoo.train.study import Arm, Claim, Study

    texts = {
        "fm_euler1": "flow matching, sampled with 1 Euler step (1 NFE)",
        "fm_heun_many": f"the same flow-matching model (one training per seed, shared), "
        f"{TINY_MANY_STEPS} Heun steps ({2 * TINY_MANY_STEPS} NFE)",
        "advflow_1nfe": "adversarial flow 1NFE generator, the same training wall time",
    }
    arms = tuple(Arm(n, o, description=texts[n]) for n, o in TINY_ARMS.items())
    beats = Claim(
        "advflow 1NFE beats the 1-step flow-matching sample (digit Fréchet distance, lower is "
        "better, every seed)",
        metric="digit_fd", arm="advflow_1nfe", baseline="fm_euler1",
        rule="better_all_seeds", higher_is_better=False,
    )  # fmt: skip
    approaches = Claim(
        "advflow 1NFE approaches the many-step flow-matching sample: its mean digit Fréchet "
        f"distance is at most {TINY_APPROACH_MARGIN:g} above it (half the 1-step -> many-step "
        "gap of flow matching on val)",
        metric="digit_fd", arm="fm_heun_many", baseline="advflow_1nfe",
        rule="not_better", higher_is_better=False, margin=TINY_APPROACH_MARGIN,
    )  # fmt: skip
    return Study(
        arms=arms,
        seeds=(0, 1, 2),
        seed_key="seed",
        metrics=("digit_fd", "train_seconds", "nfe"),
        claims=(beats, approaches),
        description=(
            "The bundled 5,000 MNIST digits in pixel space (28 x 28, [-1, 1]): 500 test digits "
            "(the digit classifier's own held-out 500), 500 validation, 4,000 training. Each "
            f"model trains for about {TINY_TRAIN_SECONDS} s on one CPU thread; 1,000 "
            "class-balanced samples per cell are scored by the digit Fréchet distance "
            "against the scored split."
        ),
    )
