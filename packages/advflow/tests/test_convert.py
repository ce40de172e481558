"""Official checkpoints: plain ``torch.save`` state dicts in facebookresearch/DiT key names
(``t_embedder`` absent in the 1NFE files), written here at a small depth and width from the
layout of the official ``models/afm/dit/{generator,generator_deep,discriminator}.py``, loaded
through ``paperzoo.core.create_model(name, checkpoint_path=...)``, and run against a
functional re-statement of the official forward passes (not our modules)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from paperzoo.core import create_model
from paperzoo.core.checkpoint import CheckpointMismatchError

# The model overrides every test uses: XL/2's layout at 2 blocks of width 64 (4 heads).
SMALL = dict(depth=2, hidden_size=64, num_heads=4)
D, DEPTH, P, C, GRID, CLASSES = 64, 2, 2, 4, 16, 1000  # 32 x 32 latents, patch 2 -> 16 x 16


def official_state_dict(
    *, time: bool, t_tgt: bool = False, discriminator: bool = False, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Random tensors under the official keys and shapes (DiT ``models.py``: PatchEmbed, the
    [cos, sin] TimestepEmbedder MLP, a 1000-row label table without the null row, DiTBlocks of
    timm Attention / Mlp with adaLN-Zero, FinalLayer; the discriminator replaces final_layer
    by Sequential(LayerNorm without affine, Linear(D, 1, bias=False)) and adds dis_embed)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> torch.Tensor:
        return 0.1 * torch.randn(shape, generator=g)

    sd = {"x_embedder.proj.weight": r(D, C, P, P), "x_embedder.proj.bias": r(D),
          "pos_embed": r(1, GRID * GRID, D), "y_embedder.embedding_table.weight": r(CLASSES, D)}  # fmt: skip
    embedders = (["t_embedder"] if time else []) + (["t_tgt_embedder"] if t_tgt else [])
    for name in embedders:
        sd |= {f"{name}.mlp.0.weight": r(D, 256), f"{name}.mlp.0.bias": r(D),
               f"{name}.mlp.2.weight": r(D, D), f"{name}.mlp.2.bias": r(D)}  # fmt: skip
    for i in range(DEPTH):
        b = f"blocks.{i}."
        sd |= {b + "attn.qkv.weight": r(3 * D, D), b + "attn.qkv.bias": r(3 * D),
               b + "attn.proj.weight": r(D, D), b + "attn.proj.bias": r(D),
               b + "mlp.fc1.weight": r(4 * D, D), b + "mlp.fc1.bias": r(4 * D),
               b + "mlp.fc2.weight": r(D, 4 * D), b + "mlp.fc2.bias": r(D),
               b + "adaLN_modulation.1.weight": r(6 * D, D), b + "adaLN_modulation.1.bias": r(6 * D)}  # fmt: skip
    if discriminator:
        sd |= {"dis_embed": r(D), "final_layer.1.weight": r(1, D)}
    else:
        sd |= {"final_layer.linear.weight": r(P * P * C, D), "final_layer.linear.bias": r(P * P * C),
               "final_layer.adaLN_modulation.1.weight": r(2 * D, D),
               "final_layer.adaLN_modulation.1.bias": r(2 * D)}  # fmt: skip
    return sd


# -- the official forward, restated from DiT models.py and the advflow model files ------------


def _t_embed(sd: dict, name: str, t: torch.Tensor) -> torch.Tensor:
    half = 128
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    h = F.silu(F.linear(emb, sd[f"{name}.mlp.0.weight"], sd[f"{name}.mlp.0.bias"]))
    return F.linear(h, sd[f"{name}.mlp.2.weight"], sd[f"{name}.mlp.2.bias"])


def _ln(x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), eps=1e-6)


def _block(sd: dict, i: int, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    b = f"blocks.{i}."
    mod = F.linear(
        F.silu(c), sd[b + "adaLN_modulation.1.weight"], sd[b + "adaLN_modulation.1.bias"]
    )
    shift1, scale1, gate1, shift2, scale2, gate2 = mod[:, None].chunk(6, dim=-1)
    h = _ln(x) * (1 + scale1) + shift1
    n, t, _ = h.shape
    qkv = F.linear(h, sd[b + "attn.qkv.weight"], sd[b + "attn.qkv.bias"])
    q, k, v = qkv.reshape(n, t, 3, 4, D // 4).permute(2, 0, 3, 1, 4)
    attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D // 4), dim=-1) @ v
    attn = F.linear(attn.transpose(1, 2).reshape(n, t, D), sd[b + "attn.proj.weight"],
                    sd[b + "attn.proj.bias"])  # fmt: skip
    x = x + gate1 * attn
    h = _ln(x) * (1 + scale2) + shift2
    h = F.gelu(F.linear(h, sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"]), approximate="tanh")
    return x + gate2 * F.linear(h, sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"])


def _patches(sd: dict, x: torch.Tensor) -> torch.Tensor:
    h = F.conv2d(x, sd["x_embedder.proj.weight"], sd["x_embedder.proj.bias"], stride=P)
    return h.flatten(2).transpose(1, 2) + sd["pos_embed"]


def _final(sd: dict, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    mod = F.linear(F.silu(c), sd["final_layer.adaLN_modulation.1.weight"],
                   sd["final_layer.adaLN_modulation.1.bias"])  # fmt: skip
    shift, scale = mod[:, None].chunk(2, dim=-1)
    out = F.linear(_ln(x) * (1 + scale) + shift, sd["final_layer.linear.weight"],
                   sd["final_layer.linear.bias"])  # fmt: skip
    n = out.shape[0]  # unpatchify: (N, T, p*p*C) -> (N, C, H, W)
    out = out.reshape(n, GRID, GRID, P, P, C)
    return torch.einsum("nhwpqc->nchpwq", out).reshape(n, C, GRID * P, GRID * P)


def official_generator(sd, x, y, t_src=None, t_tgt=None, repeat=1):
    """Generator.forward (use_t_src / use_t_tgt by the keys present) or GeneratorDeep."""
    h, c = _patches(sd, x), sd["y_embedder.embedding_table.weight"][y]
    if repeat > 1:
        for t in torch.arange(1, 0, -1 / repeat).tolist():
            c_i = c + _t_embed(sd, "t_embedder", torch.full((len(x),), t * 1000))
            for i in range(DEPTH):
                h = _block(sd, i, h, c_i)
        return _final(sd, h, c)
    if "t_embedder.mlp.0.weight" in sd:
        c = c + _t_embed(sd, "t_embedder", t_src * 1000)
    if "t_tgt_embedder.mlp.0.weight" in sd:
        c = c + _t_embed(sd, "t_tgt_embedder", t_tgt * 1000)
    for i in range(DEPTH):
        h = _block(sd, i, h, c)
    return _final(sd, h, c)


def official_discriminator(sd, x, y, t=None):
    h, c = _patches(sd, x), sd["y_embedder.embedding_table.weight"][y]
    if "t_embedder.mlp.0.weight" in sd:
        c = c + _t_embed(sd, "t_embedder", t * 1000)
    h = torch.cat([sd["dis_embed"].view(1, 1, -1).repeat(len(x), 1, 1), h], dim=1)
    for i in range(DEPTH):
        h = _block(sd, i, h, c)
    return (_ln(h[:, :1]) @ sd["final_layer.1.weight"].T).view(-1)


def _inputs(b: int = 2):
    g = torch.Generator().manual_seed(9)
    return torch.randn(b, C, 32, 32, generator=g), torch.tensor([207, 360][:b])


def _save(tmp_path, name: str, sd: dict) -> str:
    path = tmp_path / name
    torch.save(sd, path)
    return str(path)


def test_1nfe_checkpoint_loads_and_matches_the_official_forward(tmp_path):
    sd = official_state_dict(time=False)
    path = _save(tmp_path, "xl2_1nfe_guided_FID2.38.pth", sd)
    model = create_model("advflow_xl2_1nfe", checkpoint_path=path, **SMALL).eval()
    assert model.t_embedder is None
    for key, value in model.state_dict().items():
        assert torch.equal(value, sd[key]), key
    x, y = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(model(x, y), official_generator(sd, x, y), rtol=1e-4, atol=1e-5)


def test_4nfe_checkpoint_with_the_time_embedder(tmp_path):
    sd = official_state_dict(time=True, seed=1)
    path = _save(tmp_path, "xl2_4nfe_guided_FID2.03.pth", sd)
    model = create_model("advflow_xl2_4nfe", checkpoint_path=path, **SMALL).eval()
    x, y = _inputs()
    t_src, t_tgt = torch.tensor([1.0, 0.5]), torch.tensor([0.75, 0.25])
    with torch.no_grad():
        ours = model(x, y, t_src, t_tgt)
        torch.testing.assert_close(ours, official_generator(sd, x, y, t_src), rtol=1e-4, atol=1e-5)
        # the official inference step of a v-prediction model
        step = x - (t_src - t_tgt).view(-1, 1, 1, 1) * ours
        torch.testing.assert_close(model.predict_target(x, y, t_src, t_tgt), step)


def test_any_step_checkpoint_with_both_time_embedders(tmp_path):
    sd = official_state_dict(time=True, t_tgt=True, seed=2)
    model = create_model("advflow_b2_anystep", checkpoint_path=_save(tmp_path, "any.pth", sd),
                         input_size=32, **SMALL).eval()  # fmt: skip
    x, y = _inputs()
    t_src, t_tgt = torch.tensor([0.9, 0.3]), torch.tensor([0.2, 0.1])
    with torch.no_grad():
        torch.testing.assert_close(
            model(x, y, t_src, t_tgt), official_generator(sd, x, y, t_src, t_tgt),
            rtol=1e-4, atol=1e-5,
        )  # fmt: skip


@pytest.mark.parametrize(("name", "repeat"), [("advflow_xl2_56layer_1nfe", 2),
                                              ("advflow_xl2_112layer_1nfe", 4)])  # fmt: skip
def test_deep_checkpoints_match_generator_deep(tmp_path, name, repeat):
    sd = official_state_dict(time=True, seed=3)
    model = create_model(name, checkpoint_path=_save(tmp_path, f"{name}.pth", sd), **SMALL)
    x, y = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            model.eval()(x, y), official_generator(sd, x, y, repeat=repeat), rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize("use_time", [False, True])
def test_discriminator_checkpoint_matches_the_official_forward(tmp_path, use_time):
    sd = official_state_dict(time=use_time, discriminator=True, seed=4)
    model = create_model("advflow_xl2_discriminator", use_time=use_time,
                         checkpoint_path=_save(tmp_path, "dis.pth", sd), **SMALL).eval()  # fmt: skip
    x, y = _inputs()
    t = torch.tensor([0.5, 0.25]) if use_time else None
    with torch.no_grad():
        torch.testing.assert_close(model(x, y, t), official_discriminator(sd, x, y, t),
                                   rtol=1e-4, atol=1e-5)  # fmt: skip


def test_the_wrong_layout_is_a_clear_error(tmp_path):
    # a 1NFE file into a time-conditioned model, and the other way round
    one = _save(tmp_path, "xl2_1nfe.pth", official_state_dict(time=False))
    with pytest.raises(CheckpointMismatchError, match=r"1NFE checkpoint .*no t_embedder"):
        create_model("advflow_xl2_4nfe", checkpoint_path=one, **SMALL)
    four = _save(tmp_path, "xl2_4nfe.pth", official_state_dict(time=True))
    with pytest.raises(CheckpointMismatchError, match=r"time-conditioned.*advflow_\*_1nfe"):
        create_model("advflow_xl2_1nfe", checkpoint_path=four, **SMALL)
    # a discriminator file into a generator: the keys that differ are named
    dis = _save(tmp_path, "dis.pth", official_state_dict(time=False, discriminator=True))
    with pytest.raises((CheckpointMismatchError, ValueError), match=r"dis_embed|final_layer"):
        create_model("advflow_xl2_1nfe", checkpoint_path=dis, **SMALL)
    # another width: the shape mismatch names the key
    with pytest.raises((CheckpointMismatchError, ValueError), match=r"x_embedder\.proj\.weight"):
        create_model("advflow_xl2_1nfe", checkpoint_path=one, depth=2, hidden_size=32, num_heads=4)
    # a DiT with the null class row (class_dropout_prob > 0) is not an advflow checkpoint
    sd = official_state_dict(time=False)
    sd["y_embedder.embedding_table.weight"] = torch.zeros(CLASSES + 1, D)
    with pytest.raises((CheckpointMismatchError, ValueError), match="y_embedder"):
        create_model("advflow_xl2_1nfe", checkpoint_path=_save(tmp_path, "dit.pth", sd), **SMALL)


def test_our_training_checkpoints_load_too(tmp_path):
    """A Trainer checkpoint of the whole method: the generator's or discriminator's part."""
    from paperzoo.advflow.method import AdvFlow
    from paperzoo.advflow.model import advflow_xl2_1nfe, advflow_xl2_discriminator

    method = AdvFlow(advflow_xl2_1nfe(**SMALL), advflow_xl2_discriminator(**SMALL))
    torch.save({"model": method.state_dict(), "step": 3}, tmp_path / "step_0000003.pt")
    g = create_model("advflow_xl2_1nfe", checkpoint_path=tmp_path / "step_0000003.pt", **SMALL)
    d = create_model("advflow_xl2_discriminator", checkpoint_path=tmp_path / "step_0000003.pt",
                     **SMALL)  # fmt: skip
    for key, value in g.state_dict().items():
        assert torch.equal(value, method.generator.state_dict()[key])
    for key, value in d.state_dict().items():
        assert torch.equal(value, method.discriminator.state_dict()[key])


# -- the guided stage's classifier (official models/afm/dit/classifier.py) ----------------------


def official_classifier_state_dict(seed: int = 5) -> dict[str, torch.Tensor]:
    """classifier.pth's layout: the DiT keys with t_embedder, without y_embedder and DiT's
    final_layer, plus cls_embed [D] and final_layer.1 = Linear(D, 1000) (final_layer.0 is a
    LayerNorm without affine, so it has no keys)."""
    sd = official_state_dict(time=True, discriminator=True, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    del sd["y_embedder.embedding_table.weight"], sd["dis_embed"]
    sd["cls_embed"] = 0.1 * torch.randn(D, generator=g)
    sd["final_layer.1.weight"] = 0.1 * torch.randn(CLASSES, D, generator=g)
    sd["final_layer.1.bias"] = 0.1 * torch.randn(CLASSES, generator=g)
    return sd


def official_classifier(sd, x, t):
    """Classifier.forward: patches + pos_embed, e = t_embedder(t·1000), the cls token first,
    the blocks on e alone, LayerNorm + Linear on the cls token."""
    h, e = _patches(sd, x), _t_embed(sd, "t_embedder", t * 1000)
    h = torch.cat([sd["cls_embed"].view(1, 1, -1).repeat(len(x), 1, 1), h], dim=1)
    for i in range(DEPTH):
        h = _block(sd, i, h, e)
    return F.linear(_ln(h[:, 0]), sd["final_layer.1.weight"], sd["final_layer.1.bias"])


def test_classifier_checkpoint_loads_and_matches_the_official_forward(tmp_path):
    sd = official_classifier_state_dict()
    model = create_model("advflow_b2_classifier", checkpoint_path=_save(tmp_path, "cls.pth", sd),
                         depth=DEPTH, hidden_size=D, num_heads=4).eval()  # fmt: skip
    x, _ = _inputs()
    t = torch.tensor([0.05, 0.7])
    with torch.no_grad():
        out = model(x, t)
        torch.testing.assert_close(out, official_classifier(sd, x, t), rtol=1e-4, atol=1e-5)
    assert out.shape == (2, CLASSES)
    # a generator file is not a classifier
    with pytest.raises(CheckpointMismatchError):
        create_model("advflow_b2_classifier", depth=DEPTH, hidden_size=D, num_heads=4,
                     checkpoint_path=_save(tmp_path, "g.pth", official_state_dict(time=True)))  # fmt: skip
