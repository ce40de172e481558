"""The Trainer with several optimizers (a GAN): step plan, per-optimizer schedules and clipping,
isolation of the optimizers, EMA of the generator, exact resume, DDP and FSDP2."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TESTS_DIR, subprocess_env
from safetensors.torch import load_file
from tiny_gan import Points, TinyGan, gan_configs
from tiny_methods import RegressionData, TinyRegression, make_ctx, tiny_configs

from paperzoo.core import OptimConfig
from paperzoo.core.checkpoint import CheckpointMismatchError
from paperzoo.train import Trainer
from paperzoo.train.gan import GanStepPlan, StepPlan
from paperzoo.train.optim import lr_factor

# -- the step plan ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        (GanStepPlan(), "DGDGDGDG"),
        (GanStepPlan(d_steps_per_g=2, d_warmup_steps=3), "DDDDDGDDGDDG"),
        (GanStepPlan(d_steps_per_g=16, d_warmup_steps=2), "DD" + "D" * 16 + "G" + "DD"),
        (GanStepPlan(d_steps_per_g=0, d_warmup_steps=2), "DDGGG"),
        (GanStepPlan(d_steps_per_g=3, d_warmup_steps=0), "DDDGDDDGD"),
        (GanStepPlan(d_steps_per_g=2, d_warmup_steps=4, phase="absolute"), "DDDDDGDDGDDG"),
        (GanStepPlan(d_steps_per_g=2, d_warmup_steps=3, phase="absolute"), "DDDDDGDDGDDG"),
        (GanStepPlan(d_steps_per_g=2, d_warmup_steps=6, phase="absolute"), "DDDDDDDDGDDG"),
        (GanStepPlan(d_steps_per_g=1, d_warmup_steps=0, phase="absolute"), "DGDGDG"),
    ],
)
def test_gan_step_plan_sequence(plan, expected):
    got = "".join(plan.optimizer_at(i)[0].upper() for i in range(len(expected)))
    assert got == expected
    for n in range(len(expected) + 1):
        assert plan.steps_of("generator", n) == expected[:n].count("G")
        assert plan.steps_of("discriminator", n) == expected[:n].count("D")


@pytest.mark.parametrize(("n", "warm"), [(16, 10), (16, 0), (4, 100), (1, 3), (3, 7)])
def test_absolute_phase_is_the_official_is_dis_step(n, warm):
    """``train_continuous_adversarial_flow_imagenet.py``'s ``is_dis_step`` (accumulation 1),
    transcribed: D while ``step <= warmup``, then D where ``step % (1 + N) < N``."""
    plan = GanStepPlan(d_steps_per_g=n, d_warmup_steps=warm + 1, phase="absolute")
    official = ["D" if step <= warm or step % (1 + n) < n else "G" for step in range(300)]
    assert [plan.optimizer_at(i)[0].upper() for i in range(300)] == official
    for steps in (0, 1, warm, warm + 1, warm + 2, 299, 300):
        assert plan.steps_of("generator", steps) == official[:steps].count("G")
    assert plan.describe()["phase"] == "absolute"
    assert "phase" not in GanStepPlan(n, warm).describe()  # older checkpoints' plans still match
    with pytest.raises(ValueError, match="phase"):
        GanStepPlan(n, warm, phase="official")  # type: ignore[arg-type]


def test_gan_step_plan_names_and_errors():
    plan = GanStepPlan(1, 0, discriminator="critic", generator="gen")
    assert plan.names == ("critic", "gen")
    assert [plan.optimizer_at(i) for i in range(3)] == ["critic", "gen", "critic"]
    with pytest.raises(ValueError, match="d_steps_per_g"):
        GanStepPlan(d_steps_per_g=-1)
    with pytest.raises(ValueError, match="d_warmup_steps"):
        GanStepPlan(d_warmup_steps=-1)


# -- one process -----------------------------------------------------------------------------------


class RecordingGan(TinyGan):
    """Records, per trainer step, the optimizer, its lr, and both sub-networks' weights after it."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.trainer: Trainer | None = None
        self.lrs: list[tuple[str, float]] = []
        self.snapshots = [self._snapshot()]

    def _snapshot(self) -> dict[str, dict[str, torch.Tensor]]:
        return {
            "generator": {k: v.detach().clone() for k, v in self.generator.state_dict().items()},
            "discriminator": {
                k: v.detach().clone() for k, v in self.discriminator.state_dict().items()
            },
        }

    def training_step(self, batch, step, optimizer):
        assert self.trainer is not None
        self.lrs.append((optimizer, self.trainer.optimizers[optimizer].param_groups[0]["lr"]))
        return super().training_step(batch, step, optimizer)

    def on_after_optimizer_step(self, step, optimizer):
        super().on_after_optimizer_step(step, optimizer)
        self.snapshots.append(self._snapshot())


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def _recorded_run(tmp_path: Path, plan: StepPlan, max_steps: int = 12, **kwargs):
    torch.manual_seed(0)
    method = RecordingGan(detach_fake=False)  # the D loss reaches G: the trainer must drop it
    trainer_cfg, optim_cfg = gan_configs(max_steps=max_steps, **kwargs.pop("cfg", {}))
    trainer = Trainer(
        method, Points(), make_ctx(tmp_path), trainer_cfg, optim_cfg, batch_size=8,
        step_plan=plan, **kwargs,
    )  # fmt: skip
    method.trainer = trainer
    trainer.fit()
    return trainer, method


def test_each_step_moves_only_its_optimizer(tmp_path):
    plan = GanStepPlan(d_steps_per_g=2, d_warmup_steps=1)
    trainer, method = _recorded_run(tmp_path, plan)
    names = [plan.optimizer_at(i) for i in range(12)]
    assert [n for n, _ in method.lrs] == names
    for i, name in enumerate(names):
        before, after = method.snapshots[i], method.snapshots[i + 1]
        other = "generator" if name == "discriminator" else "discriminator"
        assert not _same(before[name], after[name]), f"step {i} ({name}) did not move {name}"
        assert _same(before[other], after[other]), f"step {i} ({name}) moved the {other}"
    # the hook saw every step with its optimizer; each optimizer counted only its own steps
    assert method.hook_log[:13].tolist() == [int(n == "generator") for n in names] + [-1]
    for name, opt in trainer.optimizers.items():
        counts = {int(s["step"]) for s in opt.state_dict()["state"].values()}
        assert counts == {names.count(name)}, name
    assert trainer.schedulers["generator"].last_epoch == names.count("generator") == 3


def test_per_optimizer_lr_schedules(tmp_path):
    plan = GanStepPlan(d_steps_per_g=2, d_warmup_steps=1)
    _, method = _recorded_run(tmp_path, plan, max_steps=16)
    _, optim_cfg = gan_configs()
    own = {
        "generator": plan.steps_of("generator", 16),
        "discriminator": plan.steps_of("discriminator", 16),
    }
    assert own == {"generator": 5, "discriminator": 11}
    seen = {"generator": 0, "discriminator": 0}
    for name, lr in method.lrs:
        cfg = optim_cfg[name]
        k = seen[name]  # this optimizer's own step count
        expected = cfg.lr * lr_factor(k, cfg, own[name], cfg.warmup_steps, cfg.lr)
        assert lr == pytest.approx(expected, rel=1e-12), (name, k)
        seen[name] += 1
    # the hand-written values: D warms up over 3 of its steps then stays constant; G warms up
    # over 2 of its steps, then decays by cosine over its remaining 3
    d = [lr for n, lr in method.lrs if n == "discriminator"]
    g = [lr for n, lr in method.lrs if n == "generator"]
    assert d[:4] == pytest.approx([1e-3 / 3, 2e-3 / 3, 1e-3, 1e-3])
    cos = [2e-3 * 0.5 * (1 + math.cos(math.pi * p / 3)) for p in range(3)]
    assert g == pytest.approx([1e-3, 2e-3, *cos])
    # metrics.jsonl names the optimizer of every key
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all("loss" not in r and "lr" not in r for r in records)
    assert sum(r.get("generator/steps", 0) for r in records) == 5
    assert sum(r.get("discriminator/steps", 0) for r in records) == 11
    assert "generator/loss" in records[-2] and "discriminator/d_real" in records[-1]


def test_per_optimizer_clipping(tmp_path):
    sgd = OptimConfig(name="sgd", lr=1.0, momentum=0.0, weight_decay=0.0, schedule="constant")
    optim_cfg = {"generator": sgd, "discriminator": sgd}
    clip = 1e-3
    torch.manual_seed(0)
    method = RecordingGan()
    trainer_cfg, _ = gan_configs(max_steps=2, log_every=1)
    trainer = Trainer(
        method, Points(), make_ctx(tmp_path), trainer_cfg, optim_cfg, batch_size=8,
        clip_grad_norm={"discriminator": clip},
    )  # fmt: skip
    method.trainer = trainer
    trainer.fit()

    def moved(i: int, name: str) -> float:
        a, b = method.snapshots[i][name], method.snapshots[i + 1][name]
        return math.sqrt(sum(float((b[k] - a[k]).pow(2).sum()) for k in a))

    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # step 0 (D): clipped to norm 1e-3, so plain SGD with lr 1 moves D by exactly that
    assert records[0]["discriminator/grad_norm"] > clip
    assert moved(0, "discriminator") == pytest.approx(clip, rel=1e-4)
    # step 1 (G): not clipped (no norm logged), and it moves by more than the D clip
    assert "generator/grad_norm" not in records[1]
    assert moved(1, "generator") > 10 * clip


def test_ema_averages_the_generator_after_generator_steps_only(tmp_path):
    decay = 0.5
    plan = GanStepPlan(d_steps_per_g=2, d_warmup_steps=1)
    trainer, method = _recorded_run(tmp_path, plan, cfg={"ema_decay": decay})
    assert trainer.ema is not None
    assert set(trainer.ema.module.state_dict()) == set(method.generator.state_dict())
    assert int(trainer.ema.n_averaged) == plan.steps_of("generator", 12) == 3
    # replay: the first G step copies, each later one averages
    expected: dict[str, torch.Tensor] | None = None
    for i in range(12):
        if plan.optimizer_at(i) != "generator":
            continue
        after = method.snapshots[i + 1]["generator"]
        if expected is None:
            expected = {k: v.clone() for k, v in after.items()}
        else:
            expected = {k: decay * expected[k] + (1 - decay) * after[k] for k in after}
    assert expected is not None
    got = load_file(str(tmp_path / "model_ema.safetensors"))
    assert set(got) == set(expected)
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-6, atol=1e-7)
    # model.safetensors holds trainable_module(): the generator
    assert set(load_file(str(tmp_path / "model.safetensors"))) == set(expected)


@pytest.mark.parametrize("reload_every", [0, 3])
def test_crash_then_resume_in_process(tmp_path, reload_every):
    """Resume mid-cycle (step 5 of D D G D D G ...) from an in-process checkpoint; with the EMA
    reloaded into G at steps 3, 6 and 9 too."""
    plan = GanStepPlan(d_steps_per_g=2, d_warmup_steps=1)
    trainer_cfg, optim_cfg = gan_configs(
        max_steps=10, checkpoint_every=5, ema_decay=0.7, ema_reload_every=reload_every
    )

    def run(out: Path, resume: bool = False, max_steps: int = 10) -> Trainer:
        torch.manual_seed(5 if resume else 0)
        trainer = Trainer(
            TinyGan(dropout=0.3), Points(n=40), make_ctx(out, resume=resume), trainer_cfg,
            optim_cfg, batch_size=6, step_plan=plan,
        )  # fmt: skip
        if max_steps != 10:
            trainer.max_steps = max_steps  # stop early as a crash would, same schedules
        trainer.fit()
        return trainer

    straight = run(tmp_path / "a")
    run(tmp_path / "b", max_steps=5)
    (tmp_path / "b" / "model.safetensors").unlink()
    resumed = run(tmp_path / "b", resume=True)
    assert resumed.state.resumed_from is not None
    assert resumed.state.resumed_from.endswith("step_0000005.pt")
    _assert_states_equal(straight, resumed)


def _assert_states_equal(a: Trainer, b: Trainer) -> None:
    for key, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[key]), key
    assert a.ema is not None and b.ema is not None
    for key, value in a.ema.state_dict().items():
        assert torch.equal(value, b.ema.state_dict()[key]), f"ema {key}"
    for name in a.optimizers:
        sa, sb = a.optimizers[name].state_dict(), b.optimizers[name].state_dict()
        assert sa["param_groups"] == sb["param_groups"], name
        for idx, state in sa["state"].items():
            for key, value in state.items():
                assert torch.equal(value, sb["state"][idx][key]), (name, idx, key)


# -- errors ----------------------------------------------------------------------------------------


def _make(tmp_path, method=None, optim_cfg=None, **kwargs) -> Trainer:
    trainer_cfg, default_optim = gan_configs()
    return Trainer(
        method if method is not None else TinyGan(), Points(), make_ctx(tmp_path), trainer_cfg,
        default_optim if optim_cfg is None else optim_cfg, batch_size=8, **kwargs,
    )  # fmt: skip


def test_ema_reload_needs_an_ema(tmp_path):
    trainer_cfg, optim_cfg = gan_configs(ema_reload_every=10)
    with pytest.raises(ValueError, match="ema_reload_every > 0 needs an EMA"):
        Trainer(TinyGan(), Points(), make_ctx(tmp_path), trainer_cfg, optim_cfg, batch_size=8)
    trainer_cfg, optim_cfg = gan_configs(ema_reload_every=-1, ema_decay=0.9)
    with pytest.raises(ValueError, match="must be >= 0"):
        Trainer(TinyGan(), Points(), make_ctx(tmp_path), trainer_cfg, optim_cfg, batch_size=8)


def test_mismatched_optimizer_names_are_errors(tmp_path):
    _, optim = gan_configs()
    with pytest.raises(
        ValueError,
        match=r"named \['discriminator', 'gen'\].*names \['discriminator', 'generator'\]",
    ):
        _make(
            tmp_path, optim_cfg={"gen": optim["generator"], "discriminator": optim["discriminator"]}
        )
    with pytest.raises(TypeError, match="pass optim_cfg as a mapping"):
        _make(tmp_path, optim_cfg=optim["generator"])
    with pytest.raises(ValueError, match=r"step plan .* steps the optimizers \['critic', 'gen'\]"):
        _make(tmp_path, step_plan=GanStepPlan(discriminator="critic", generator="gen"))
    with pytest.raises(ValueError, match=r"clip_grad_norm names \['critic'\]"):
        _make(tmp_path, clip_grad_norm={"critic": 1.0})
    # one optimizer: no mapping, no plan
    trainer_cfg, single = tiny_configs()
    with pytest.raises(TypeError, match="pass a single OptimConfig"):
        Trainer(
            TinyRegression(), RegressionData(), make_ctx(tmp_path), trainer_cfg, optim, batch_size=8
        )
    with pytest.raises(TypeError, match="step_plan"):
        Trainer(
            TinyRegression(), RegressionData(), make_ctx(tmp_path), trainer_cfg, single,
            batch_size=8, step_plan=GanStepPlan(),
        )  # fmt: skip


class ThreeNets(TinyGan):
    def optimizer_param_groups(self):
        groups = super().optimizer_param_groups()
        return {"a": groups["generator"], "b": groups["discriminator"], "c": groups["generator"]}


def test_other_names_need_a_plan_and_disjoint_parameters(tmp_path):
    optim = OptimConfig(name="adamw", lr=1e-3)
    with pytest.raises(ValueError, match=r"optimizers \['a', 'b', 'c'\]: pass step_plan="):
        _make(tmp_path, ThreeNets(), {"a": optim, "b": optim, "c": optim})

    class Cycle(StepPlan):
        names = ("a", "b", "c")

        def optimizer_at(self, step):
            return self.names[step % 3]

    with pytest.raises(ValueError, match="is in both 'a' and 'c'"):
        _make(tmp_path, ThreeNets(), {"a": optim, "b": optim, "c": optim}, step_plan=Cycle())


def test_checkpoint_kinds_do_not_mix(tmp_path):
    trainer_cfg, optim_cfg = gan_configs(max_steps=4)
    Trainer(TinyGan(), Points(), make_ctx(tmp_path), trainer_cfg, optim_cfg, batch_size=8).fit()
    single_cfg, single_optim = tiny_configs(max_steps=8)
    trainer = Trainer(
        TinyRegression(), RegressionData(), make_ctx(tmp_path, resume=True), single_cfg,
        single_optim, batch_size=8,
    )  # fmt: skip
    with pytest.raises(CheckpointMismatchError):  # the model keys differ first
        trainer.fit()
    with pytest.raises(
        CheckpointMismatchError, match=r"optimizers \['discriminator', 'generator'\]"
    ):
        trainer._load_optim_states(
            torch.load(tmp_path / "checkpoints" / "step_0000004.pt", weights_only=True), "ckpt"
        )


def test_single_optimizer_checkpoint_layout_is_unchanged(tmp_path):
    trainer_cfg, optim_cfg = tiny_configs(max_steps=4)
    trainer = Trainer(
        TinyRegression(), RegressionData(), make_ctx(tmp_path), trainer_cfg, optim_cfg,
        batch_size=8,
    )  # fmt: skip
    trainer.fit()
    ckpt = torch.load(tmp_path / "checkpoints" / "step_0000004.pt", weights_only=True)
    assert set(ckpt) == {
        "format", "step", "epoch", "batch_in_epoch", "world_size", "batch_size", "seed",
        "method", "model", "optimizer", "scheduler", "scaler", "ema", "rng",
    }  # fmt: skip
    assert set(ckpt["optimizer"]) == {"state", "param_groups"}
    assert trainer.optimizers == {"default": trainer.optimizer}


# -- SIGKILL and resume ----------------------------------------------------------------------------

SCRIPT = str(TESTS_DIR / "scripts" / "train_gan_for_resume.py")


def _start(out: Path, *extra: str, sleep: float = 0.0) -> subprocess.Popen:
    env = subprocess_env()
    env["PZ_STEP_SLEEP"] = str(sleep)
    return subprocess.Popen(
        [sys.executable, SCRIPT, str(out), *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _finish(proc: subprocess.Popen) -> str:
    output, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, output[-4000:]
    return output


def _assert_nested_equal(a, b, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), f"{where} differs after resume"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys differ"
        for key in a:
            _assert_nested_equal(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_nested_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_sigkill_then_resume_two_optimizers_is_bitwise_identical(tmp_path):
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    straight = _start(straight_dir)
    victim = _start(killed_dir, sleep=0.25)
    deadline = time.monotonic() + 180
    while not (killed_dir / "checkpoints" / "step_0000006.pt").exists():
        assert victim.poll() is None, victim.communicate()[0][-4000:]
        assert time.monotonic() < deadline, "the run never wrote its step-6 checkpoint"
        time.sleep(0.05)
    time.sleep(0.4)  # mid-run, between checkpoints
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    assert not (killed_dir / "final.pt").exists(), "the victim finished before the kill"
    from paperzoo.train.checkpointing import list_checkpoints

    latest = list_checkpoints(killed_dir / "checkpoints")[-1]
    assert int(latest.stem.split("_")[1]) < 16

    output = _finish(_start(killed_dir, "resume"))
    assert f"resumed_from={latest}" in output, output
    _finish(straight)
    a = torch.load(straight_dir / "final.pt", weights_only=True)
    b = torch.load(killed_dir / "final.pt", weights_only=True)
    _assert_nested_equal(a, b)  # generator, discriminator, EMA, both optimizers and schedules
    assert set(a["optimizers"]) == {"discriminator", "generator"}
    for name in ("model_ema.safetensors", "model.safetensors"):
        sa, sb = load_file(str(straight_dir / name)), load_file(str(killed_dir / name))
        _assert_nested_equal(sa, sb, name)
    lines = (killed_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 16 // 2


# -- two processes ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torchrun_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan_torchrun")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        str(TESTS_DIR / "scripts" / "gan_worker.py"), str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert (out / "ok").is_file()
    return out


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The same GAN in one process on the global batch (2 x 8), as gan_worker.py trains it."""
    out = tmp_path_factory.mktemp("gan_single")
    torch.manual_seed(0)
    trainer_cfg, optim_cfg = gan_configs(max_steps=6, checkpoint_every=3, ema_decay=0.5)
    trainer = Trainer(
        TinyGan(), Points(n=64, with_noise=True), make_ctx(out), trainer_cfg, optim_cfg,
        batch_size=16, step_plan=GanStepPlan(d_steps_per_g=1, d_warmup_steps=1),
        clip_grad_norm={"generator": 0.5},
    )  # fmt: skip
    trainer.fit()
    return out, {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.parametrize("strategy", ["ddp", "fsdp", "fsdp_units"])
def test_two_ranks_match_one_process(torchrun_out, one_process, strategy):
    single_dir, single = one_process
    rank0 = load_file(str(torchrun_out / strategy / "rank0.safetensors"))
    rank1 = load_file(str(torchrun_out / strategy / "rank1.safetensors"))
    assert set(rank0) == set(rank1) == set(single)
    for key in single:
        assert torch.equal(rank0[key], rank1[key]), f"{strategy}: ranks disagree on {key}"
        if single[key].is_floating_point():
            torch.testing.assert_close(rank0[key], single[key], rtol=1e-5, atol=1e-6, msg=key)
    torch.manual_seed(0)
    init = TinyGan().state_dict()
    for key in ("generator.0.weight", "discriminator.0.weight"):
        assert not torch.allclose(init[key], rank0[key]), f"{key} never moved"
    # D D G D G D: the hook saw each step's optimizer on every rank
    assert rank0["hook_log"][:7].tolist() == [0, 0, 1, 0, 1, 0, -1]
    if strategy == "ddp":
        ema, single_ema = (
            load_file(str(d / "model_ema.safetensors")) for d in (torchrun_out / "ddp", single_dir)
        )
        for key in single_ema:
            if single_ema[key].is_floating_point():
                torch.testing.assert_close(ema[key], single_ema[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp", "fsdp_units"])
def test_two_ranks_resume_exactly(torchrun_out, strategy):
    straight = load_file(str(torchrun_out / strategy / "rank0.safetensors"))
    for rank in (0, 1):
        resumed = load_file(str(torchrun_out / f"{strategy}_resumed" / f"rank{rank}.safetensors"))
        _assert_nested_equal(straight, resumed, f"{strategy} rank {rank}")
    if strategy == "ddp":
        _assert_nested_equal(
            load_file(str(torchrun_out / "ddp" / "model_ema.safetensors")),
            load_file(str(torchrun_out / "ddp_resumed" / "model_ema.safetensors")),
            "ema",
        )


@pytest.mark.parametrize("reload_every", [0, 4])
def test_matches_a_hand_written_gan_loop(tmp_path, reload_every):
    """Two AdamWs, their own warm-up/cosine/constant schedules, D clipping and the EMA of G,
    written out by hand over the whole (fixed-noise) dataset each step; ``reload_every`` 4
    also copies the EMA into G after steps 4, 8 and 12 (advflow's ``ema.autoreload``)."""
    import copy

    plan = GanStepPlan(d_steps_per_g=2, d_warmup_steps=1)
    max_steps, decay, clip = 12, 0.5, 0.05
    data = Points(n=16, with_noise=True)
    torch.manual_seed(0)
    method = TinyGan(detach_fake=False)
    ref = copy.deepcopy(method)
    trainer_cfg, optim_cfg = gan_configs(
        max_steps=max_steps, ema_decay=decay, ema_reload_every=reload_every
    )
    trainer = Trainer(
        method, data, make_ctx(tmp_path), trainer_cfg, optim_cfg, batch_size=16,
        step_plan=plan, clip_grad_norm={"discriminator": clip},
    )  # fmt: skip
    trainer.fit()

    opt = {
        "discriminator": torch.optim.AdamW(
            ref.discriminator.parameters(), lr=1e-3, betas=(0.5, 0.95), weight_decay=0.0
        ),
        "generator": torch.optim.AdamW(
            ref.generator.parameters(), lr=2e-3, betas=(0.0, 0.9), weight_decay=0.01
        ),
    }
    g_total = 3  # G steps at 3, 6, 9

    def lr(name: str, k: int) -> float:
        if name == "discriminator":  # constant after 3 warm-up steps
            return 1e-3 * min(1.0, (k + 1) / 3)
        if k < 2:  # 2 warm-up steps, then cosine to 0 over the rest of G's own steps
            return 2e-3 * (k + 1) / 2
        return 2e-3 * 0.5 * (1 + math.cos(math.pi * (k - 2) / max(1, g_total - 2)))

    own = {"discriminator": 0, "generator": 0}
    ema: dict[str, torch.Tensor] | None = None
    for step in range(max_steps):
        name = "generator" if step in (3, 6, 9) else "discriminator"
        for group in opt[name].param_groups:
            group["lr"] = lr(name, own[name])
        ref.zero_grad(set_to_none=True)
        ref.training_step((data.x, data.z), step, name)["loss"].backward()
        if name == "discriminator":
            torch.nn.utils.clip_grad_norm_(ref.discriminator.parameters(), clip)
        opt[name].step()
        own[name] += 1
        if name == "generator":
            g = {k: v.detach().clone() for k, v in ref.generator.state_dict().items()}
            ema = g if ema is None else {k: decay * ema[k] + (1 - decay) * g[k] for k in g}
        if reload_every and (step + 1) % reload_every == 0:
            assert ema is not None
            if step + 1 == 8:  # the reload before G's last step changes G: the test can fail
                assert any(not torch.equal(ema[k], v) for k, v in g.items())
            ref.generator.load_state_dict(ema)
    if reload_every:  # the run ended on a reload
        for key, value in trainer.ema.module.state_dict().items():
            assert torch.equal(method.generator.state_dict()[key], value), key
    for key, value in ref.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(trainer.model.state_dict()[key], value, msg=key)
    assert trainer.ema is not None and ema is not None
    for key, value in ema.items():
        torch.testing.assert_close(trainer.ema.module.state_dict()[key], value, msg=f"ema {key}")


def test_compile_matches_eager(tmp_path):
    results = []
    for compile_ in (False, True):
        trainer_cfg, optim_cfg = gan_configs(
            max_steps=4, compile=compile_, compile_backend="aot_eager"
        )
        torch.manual_seed(0)
        trainer = Trainer(
            TinyGan(), Points(with_noise=True), make_ctx(tmp_path / str(compile_)), trainer_cfg,
            optim_cfg, batch_size=8,
        )  # fmt: skip
        trainer.fit()
        results.append(trainer.model.state_dict())
    assert hasattr(trainer._step_module, "_orig_mod")  # really compiled
    for key, value in results[0].items():
        torch.testing.assert_close(results[1][key], value, rtol=1e-5, atol=1e-6)


def test_fp16_has_one_grad_scaler_per_optimizer(tmp_path):
    trainer_cfg, optim_cfg = gan_configs(max_steps=4, amp="fp16")
    trainer = Trainer(TinyGan(), Points(), make_ctx(tmp_path), trainer_cfg, optim_cfg, batch_size=8)
    state = trainer.fit()
    assert set(trainer.scalers) == {"discriminator", "generator"}
    assert trainer.scalers["generator"] is not trainer.scalers["discriminator"]
    assert all(s.is_enabled() for s in trainer.scalers.values())
    assert math.isfinite(state.metrics["generator/loss"])
    ckpt = torch.load(tmp_path / "checkpoints" / "step_0000004.pt", weights_only=True)
    assert set(ckpt["scaler"]) == {"discriminator", "generator"}
    assert all(ckpt["scaler"][n]["scale"] > 0 for n in ckpt["scaler"])


def test_loss_curve_plots_each_optimizers_loss(tmp_path):
    from paperzoo.train.metrics_log import _loss_series, read_metrics

    trainer, _ = _recorded_run(tmp_path, GanStepPlan(d_steps_per_g=2, d_warmup_steps=1))
    records = read_metrics(trainer.out_dir / "metrics.jsonl")
    series = _loss_series(records)
    assert sorted(series) == ["discriminator/loss", "generator/loss"]
    for key, (steps, values) in series.items():
        assert steps == [r["step"] for r in records if key in r]
        assert values == [r[key] for r in records if key in r]
    png = (trainer.out_dir / "loss.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
