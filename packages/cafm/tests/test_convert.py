"""Official checkpoint layouts through ``paperzoo.core.create_model(..., checkpoint_path=...)``.

The files are written here in the layouts the official code reads and writes:
- SiT (willisma/SiT): the released ``SiT-XL-2-256.pt`` is a plain state dict in DiT key names;
  ``train.py`` saves ``{"model", "ema", "opt", "args"}`` (``args`` an argparse.Namespace);
- JiT (LTH14/JiT): ``checkpoint-last.pth`` = ``{"model", "model_ema1", "model_ema2", "optimizer",
  "epoch", "args"}``, every key under ``net.``; CAFM's ``misc/convert_from_jit_format.py`` keeps
  ``model_ema1`` without the prefix (a plain state dict).
SiT-XL/2 is written at its real width (1152, 16 heads, learn_sigma, 1001 label rows) and depth 1.
"""

from __future__ import annotations

import argparse

import pytest
import torch

from paperzoo.cafm.jit import JiTDiscriminator, JiTGenerator
from paperzoo.cafm.model import CAFMDiscriminator, CAFMGenerator
from paperzoo.core import create_model

XL_SMALL = {"depth": 1}
JIT_SMALL = dict(input_size=32, patch_size=8, hidden_size=64, depth=2, num_heads=4,
                 bottleneck_dim=16, in_context_len=4, in_context_start=1)  # fmt: skip


def _randomised(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if key == "pos_embed" or "freqs_" in key:  # fixed tables: kept as the code builds them
            state[key] = value.clone()
        else:
            state[key] = torch.randn(value.shape, generator=g) * 0.05
    return state


@pytest.fixture(scope="module")
def sit_states() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Two different random states in the SiT-XL/2 layout (depth 1): "ema" and "model"."""
    with torch.device("meta"):
        shapes = {
            k: v.shape for k, v in create_model("cafm_sit_xl_2", **XL_SMALL).state_dict().items()
        }

    def random_state(seed: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        return {k: torch.randn(shape, generator=g) * 0.02 for k, shape in shapes.items()}

    return random_state(0), random_state(1)


def _inputs(channels: int, size: int, classes: int = 1000) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, channels, size, size, generator=g)
    return x, torch.tensor([0.3, 0.8]), torch.tensor([7, classes])  # the null class too


def _velocity_of(state: dict[str, torch.Tensor], **kwargs) -> torch.Tensor:
    ref = CAFMGenerator(**{**dict(input_size=32, num_classes=1000, hidden_size=1152,
                                  num_heads=16, patch_size=2, learn_sigma=True), **kwargs})  # fmt: skip
    ref.load_state_dict(state)
    return ref.eval().velocity(*_inputs(4, 32))


def test_sit_released_plain_state_dict_loads(tmp_path, sit_states):
    ema, _ = sit_states
    path = tmp_path / "SiT-XL-2-256.pt"
    torch.save(ema, path)
    model = create_model("cafm_sit_xl_2", checkpoint_path=str(path), **XL_SMALL)
    assert isinstance(model, CAFMGenerator)
    for key, value in ema.items():
        assert torch.equal(model.state_dict()[key], value), key
    out = model.eval().velocity(*_inputs(4, 32))
    assert out.shape == (2, 4, 32, 32)  # learn_sigma's other 4 channels dropped
    torch.testing.assert_close(out, _velocity_of(ema, **XL_SMALL))


def test_sit_training_checkpoint_takes_the_ema_weights(tmp_path, sit_states):
    ema, raw = sit_states
    path = tmp_path / "0400000.pt"
    args = argparse.Namespace(model="SiT-XL/2", image_size=256, num_classes=1000)
    torch.save({"model": raw, "ema": ema, "opt": {"state": {}, "param_groups": []},
                "args": args}, path)  # fmt: skip
    model = create_model("cafm_sit_xl_2", checkpoint_path=str(path), **XL_SMALL)
    key = "blocks.0.attn.qkv.weight"
    assert torch.equal(model.state_dict()[key], ema[key])
    assert not torch.equal(model.state_dict()[key], raw[key])


def test_sit_checkpoint_initialises_the_discriminator(tmp_path, sit_states):
    ema, _ = sit_states
    path = tmp_path / "SiT-XL-2-256.pt"
    torch.save(ema, path)
    dis = create_model("cafm_sit_xl_2_discriminator", checkpoint_path=str(path), **XL_SMALL)
    assert isinstance(dis, CAFMDiscriminator)
    own = dis.state_dict()
    for key, value in ema.items():
        if key.startswith("final_layer."):
            continue
        assert torch.equal(own[key], value), key
    assert own["final_layer.1.weight"].shape == (1, 1152)
    # its own checkpoint (dis_embed and head included) reloads strictly
    torch.save(own, tmp_path / "dis.pt")
    again = create_model("cafm_sit_xl_2_discriminator", checkpoint_path=str(tmp_path / "dis.pt"),
                         **XL_SMALL)  # fmt: skip
    x, t, y = _inputs(4, 32)
    torch.testing.assert_close(again(x, t, y), dis(x, t, y))


def _jit_state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return _randomised(JiTGenerator(**{**JIT_SMALL, "num_classes": 1000}), seed)


def test_jit_training_checkpoint_and_converted_file_load(tmp_path):
    ema1, raw, ema2 = _jit_state(0), _jit_state(1), _jit_state(2)

    def net(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"net." + k: v for k, v in state.items()}

    official = tmp_path / "checkpoint-last.pth"
    torch.save({"model": net(raw), "model_ema1": net(ema1), "model_ema2": net(ema2),
                "optimizer": {"state": {}, "param_groups": []}, "epoch": 599,
                "args": argparse.Namespace(model="JiT-H/16")}, official)  # fmt: skip
    converted = tmp_path / "jit.pth"  # misc/convert_from_jit_format.py
    torch.save({k.replace("net.", ""): v for k, v in net(ema1).items()}, converted)
    back = tmp_path / "to_jit.pth"  # misc/convert_to_jit_format.py
    torch.save({"model": net(ema1), "model_ema1": net(ema1), "model_ema2": net(ema1)}, back)

    ref = JiTGenerator(**{**JIT_SMALL, "num_classes": 1000})
    ref.load_state_dict(ema1)
    x, t, y = _inputs(3, 32)
    want = ref.eval().velocity(x, t, y)
    for path in (official, converted, back):
        model = create_model("cafm_jit_h_16", checkpoint_path=str(path), **JIT_SMALL)
        assert isinstance(model, JiTGenerator)
        torch.testing.assert_close(model.eval().velocity(x, t, y), want, msg=str(path.name))
    dis = create_model("cafm_jit_h_16_discriminator", checkpoint_path=str(official), **JIT_SMALL)
    assert isinstance(dis, JiTDiscriminator)
    for key, value in ema1.items():
        if not key.startswith("final_layer."):
            assert torch.equal(dis.state_dict()[key], value), key


def test_wrong_layouts_are_clear_errors(tmp_path, sit_states):
    ema, _ = sit_states
    path = tmp_path / "sit.pt"
    torch.save(ema, path)
    with pytest.raises(ValueError, match="learn_sigma=True"):
        create_model("cafm_sit_xl_2", checkpoint_path=str(path), learn_sigma=False, **XL_SMALL)
    without_null = {**ema, "y_embedder.embedding_table.weight": ema[
        "y_embedder.embedding_table.weight"][:1000]}  # fmt: skip
    torch.save(without_null, tmp_path / "no_null.pt")
    with pytest.raises(ValueError, match="null-class row"):
        create_model("cafm_sit_xl_2", checkpoint_path=str(tmp_path / "no_null.pt"), **XL_SMALL)
    with pytest.raises(ValueError, match="missing"):  # a depth-1 file into the 28-block model
        create_model("cafm_sit_xl_2", checkpoint_path=str(path), depth=2)
    torch.save({"epoch": 3, "weights": [1, 2]}, tmp_path / "odd.pt")
    with pytest.raises(ValueError, match="not a state dict"):
        create_model("cafm_sit_xl_2", checkpoint_path=str(tmp_path / "odd.pt"), **XL_SMALL)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        create_model("cafm_sit_xl_2", checkpoint_path=str(tmp_path / "none.pt"), **XL_SMALL)
    # a JiT file into the SiT model names the keys
    torch.save(_jit_state(0), tmp_path / "jit.pth")
    with pytest.raises(ValueError, match=r"do not match|checkpoint"):
        create_model("cafm_sit_xl_2", checkpoint_path=str(tmp_path / "jit.pth"), **XL_SMALL)
