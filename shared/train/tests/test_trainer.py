"""The Trainer against a hand-written loop, its outputs, and its handling of bad input."""

from __future__ import annotations

import copy
import errno
import io
import json
import math

import pytest
import torch
from safetensors.torch import load_file
from tiny_methods import RegressionData, TinyRegression, make_ctx, tiny_configs

from paperzoo.core.checkpoint import CheckpointMismatchError
from paperzoo.core.config import OptimConfig
from paperzoo.train import CheckpointSaveError, Trainer
from paperzoo.train.checkpointing import list_checkpoints, load_training_checkpoint

N, BATCH, ACCUM, STEPS, SEED = 40, 4, 2, 9, 3
PEAK, MIN_LR, WARMUP, CLIP, EMA = 0.1, 0.001, 2, 0.5, 0.8


def _reference_lr(step: int) -> float:
    if step < WARMUP:
        return PEAK * (step + 1) / WARMUP
    t = (step - WARMUP) / (STEPS - WARMUP)
    return MIN_LR + (PEAK - MIN_LR) * 0.5 * (1 + math.cos(math.pi * t))


def _hand_loop(model: torch.nn.Module, data: RegressionData):
    """Plain PyTorch: full global batch, manual lr, manual clipping, manual EMA."""
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9, weight_decay=1e-4)
    ema = None
    global_batch = BATCH * ACCUM
    per_epoch = N // global_batch
    for step in range(STEPS):
        epoch, k = divmod(step, per_epoch)
        perm = torch.randperm(N, generator=torch.Generator().manual_seed(SEED + epoch))
        idx = perm[k * global_batch : (k + 1) * global_batch]
        loss = (model.net(data.x[idx]).squeeze(1) - data.y[idx]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
        coef = min(1.0, CLIP / (float(norm) + 1e-6))
        for p in model.parameters():
            p.grad.mul_(coef)
        for g in opt.param_groups:
            g["lr"] = _reference_lr(step)
        opt.step()
        with torch.no_grad():
            if ema is None:
                ema = {k: v.clone() for k, v in model.state_dict().items()}
            else:
                for key, v in model.state_dict().items():
                    if v.is_floating_point():
                        ema[key] = EMA * ema[key] + (1 - EMA) * v
    return model, ema


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trainer")
    torch.manual_seed(0)
    method = TinyRegression()
    reference = copy.deepcopy(method)
    trainer_cfg, _ = tiny_configs(
        max_steps=STEPS, grad_accum_steps=ACCUM, clip_grad_norm=CLIP, ema_decay=EMA, log_every=3,
        checkpoint_every=3, keep_checkpoints=2, tensorboard=True,
    )  # fmt: skip
    optim_cfg = OptimConfig(
        name="sgd", lr=0.05, base_batch=4, momentum=0.9, weight_decay=1e-4, schedule="cosine",
        warmup_steps=WARMUP, min_lr=MIN_LR,
    )  # fmt: skip
    data = RegressionData(n=N)
    trainer = Trainer(
        method, data, make_ctx(out), trainer_cfg, optim_cfg, batch_size=BATCH, seed=SEED
    )
    state = trainer.fit()
    return out, trainer, state, _hand_loop(reference, data)


def test_matches_hand_written_loop(trained):
    _, trainer, state, (reference, ema) = trained
    assert state.step == STEPS and trainer.peak_lr == pytest.approx(PEAK)
    for key, value in reference.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(trainer.model.state_dict()[key], value, rtol=1e-5, atol=1e-6)
    for key, value in trainer.ema.module.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, ema[key], rtol=1e-5, atol=1e-6)
    assert trainer.model.hook_log[: STEPS + 1].tolist() == [*range(STEPS), -1]


def test_metrics_tensorboard_and_plot(trained):
    out, _, _, _ = trained
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [3, 6, 9]
    for r in records:
        assert r["lr"] == pytest.approx(_reference_lr(r["step"] - 1))
        assert r["samples_per_sec"] > 0 and math.isfinite(r["loss"]) and "pred_mean" in r
        assert "grad_norm" in r
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    scalars = events.Scalars("train/loss")
    assert [e.step for e in scalars] == [3, 6, 9]
    assert [e.value for e in scalars] == pytest.approx([r["loss"] for r in records])
    png = (out / "loss.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_checkpoints_and_final_weights(trained):
    out, trainer, _, _ = trained
    kept = list_checkpoints(out / "checkpoints")
    assert [p.name for p in kept] == ["step_0000006.pt", "step_0000009.pt"]  # keep last 2
    ckpt = torch.load(kept[-1], weights_only=True)  # plain tensors/ints/lists/dicts only
    assert ckpt["step"] == STEPS and ckpt["epoch"] == 1 and ckpt["batch_in_epoch"] == 8
    assert set(ckpt) >= {"model", "optimizer", "scheduler", "scaler", "ema", "rng"}
    assert isinstance(ckpt["rng"][0]["torch"], torch.Tensor)
    weights = load_file(str(out / "model.safetensors"))
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(weights[key], value)
    assert not list((out / "checkpoints").glob(".*tmp"))


def test_resume_with_another_model_lists_mismatched_keys(trained, tmp_path):
    out, _, _, _ = trained
    trainer_cfg, optim_cfg = tiny_configs(max_steps=12)
    other = TinyRegression(hidden=32, bn=True)
    trainer = Trainer(
        other, RegressionData(), make_ctx(out, resume=True), trainer_cfg, optim_cfg, batch_size=4
    )
    with pytest.raises(CheckpointMismatchError) as err:
        trainer.fit()
    message = str(err.value)
    assert (
        "net.1.running_mean" in message
        and "shape mismatch" in message
        and "net.0.weight" in message
    )


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    trainer_cfg, optim_cfg = tiny_configs(max_steps=6, checkpoint_every=2)
    real_save = torch.save
    calls = []

    def disk_full_on_second_save(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) < 2:
            return real_save(obj, f, *args, **kwargs)
        buf = io.BytesIO()
        real_save(obj, buf)
        with open(f, "wb") as fh:  # half the bytes reach the disk, then it is full
            fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full_on_second_save)
    torch.manual_seed(0)
    trainer = Trainer(
        TinyRegression(), RegressionData(), make_ctx(tmp_path), trainer_cfg, optim_cfg, batch_size=4
    )
    with pytest.raises(CheckpointSaveError, match=r"No space left.*step_0000002\.pt is intact"):
        trainer.fit()
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step_0000002.pt"]
    assert load_training_checkpoint(tmp_path / "checkpoints" / "step_0000002.pt")["step"] == 2
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]
    monkeypatch.setattr(torch, "save", real_save)
    resumed = Trainer(
        TinyRegression(),
        RegressionData(),
        make_ctx(tmp_path, resume=True),
        trainer_cfg,
        optim_cfg,
        batch_size=4,
    )
    assert resumed.fit().resumed_from.endswith("step_0000002.pt")


class NotATensor:
    """Loading this back would need unpickling an arbitrary class."""


def test_checkpoint_that_needs_unpickling_is_refused(tmp_path):
    path = tmp_path / "step_0000001.pt"
    torch.save({"format": "paperzoo.train/1", "model": NotATensor()}, path)
    with pytest.raises(CheckpointMismatchError, match="weights_only"):
        load_training_checkpoint(path)
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointMismatchError, match="not a paperzoo training checkpoint"):
        load_training_checkpoint(path)


class _ReturnsTensor(TinyRegression):
    def training_step(self, batch, step):
        return super().training_step(batch, step)["loss"]


class _GoesNaN(TinyRegression):
    def training_step(self, batch, step):
        out = super().training_step(batch, step)
        return {**out, "loss": out["loss"] * (float("nan") if step == 2 else 1.0)}


def test_bad_input_fails_clearly(tmp_path):
    trainer_cfg, optim_cfg = tiny_configs(max_steps=4, log_every=1)
    ctx = make_ctx(tmp_path)
    with pytest.raises(ValueError, match="empty"):
        Trainer(TinyRegression(), RegressionData(n=0), ctx, trainer_cfg, optim_cfg, batch_size=4)
    with pytest.raises(ValueError, match="fewer than one batch"):
        Trainer(TinyRegression(), RegressionData(n=3), ctx, trainer_cfg, optim_cfg, batch_size=4)
    with pytest.raises(TypeError, match="training_step"):
        Trainer(torch.nn.Linear(2, 2), RegressionData(), ctx, trainer_cfg, optim_cfg, batch_size=4)
    with pytest.raises(TypeError, match="must return a dict"):
        Trainer(_ReturnsTensor(), RegressionData(), ctx, trainer_cfg, optim_cfg, batch_size=4).fit()
    with pytest.raises(FloatingPointError, match="non-finite loss before step 3"):
        Trainer(_GoesNaN(), RegressionData(), ctx, trainer_cfg, optim_cfg, batch_size=4).fit()


def test_bf16_autocast_on_cpu_only_when_asked(tmp_path):
    for amp, expected in (("auto", torch.float32), ("bf16", torch.bfloat16)):
        trainer_cfg, optim_cfg = tiny_configs(max_steps=2, amp=amp)
        method = TinyRegression()
        state = Trainer(
            method, RegressionData(), make_ctx(tmp_path / amp), trainer_cfg, optim_cfg, batch_size=4
        ).fit()
        assert method.seen_dtype == expected and math.isfinite(state.metrics["loss"])


def test_compile_matches_eager(tmp_path):
    results = []
    for compile_ in (False, True):
        trainer_cfg, optim_cfg = tiny_configs(
            max_steps=3, compile=compile_, compile_backend="aot_eager"
        )
        torch.manual_seed(0)
        trainer = Trainer(
            TinyRegression(),
            RegressionData(),
            make_ctx(tmp_path / str(compile_)),
            trainer_cfg,
            optim_cfg,
            batch_size=4,
        )
        trainer.fit()
        results.append(trainer.model.state_dict())
    assert hasattr(trainer._step_module, "_orig_mod")  # really compiled
    for key, value in results[0].items():
        torch.testing.assert_close(results[1][key], value, rtol=1e-5, atol=1e-6)


def test_eval_fn_is_logged(tmp_path):
    trainer_cfg, optim_cfg = tiny_configs(max_steps=4, eval_every=2)
    seen = []

    def eval_fn(trainer):
        seen.append((trainer.state.step, trainer.model.training))
        return {"score": float(trainer.state.step)}

    state = Trainer(
        TinyRegression(),
        RegressionData(),
        make_ctx(tmp_path),
        trainer_cfg,
        optim_cfg,
        batch_size=4,
        eval_fn=eval_fn,
    ).fit()
    assert seen == [(2, False), (4, False)] and state.eval_metrics == {"score": 4.0}
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {"step": 4, "eval/score": 4.0} in records


def test_epochs_and_warmup_epochs(tmp_path):
    trainer_cfg, optim_cfg = tiny_configs(epochs=2, max_steps=999)
    optim_cfg.warmup_steps, optim_cfg.warmup_epochs = 0, 1.0
    trainer = Trainer(
        TinyRegression(),
        RegressionData(n=40),
        make_ctx(tmp_path),
        trainer_cfg,
        optim_cfg,
        batch_size=8,
    )
    assert (trainer.steps_per_epoch, trainer.max_steps, trainer.warmup_steps) == (5, 10, 5)
