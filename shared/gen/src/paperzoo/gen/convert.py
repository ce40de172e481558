"""Official DiT / SiT / advflow / JiT checkpoint layouts -> :class:`paperzoo.gen.dit.DiT`.

The DiT key names (github.com/facebookresearch/DiT ``models.py``) are our parameter names, so
loading is unwrapping plus a shape check that says which constructor argument to change:

- DiT's released ``DiT-XL-2-256x256.pt`` and advflow's ``*.pth`` are plain state dicts;
- DiT / SiT training checkpoints are ``{"model", "ema", "opt", "args"}`` (``train.py``): the
  ``ema`` weights are taken;
- JiT keeps ``{"model_ema1": ...}`` with a ``net.`` prefix (cafm's
  ``misc/convert_from_jit_format.py``); ``module.`` (DDP) and ``_orig_mod.`` (torch.compile)
  prefixes are stripped the same generic way.

:func:`dit_to_diffusers` maps our / the official layout to diffusers'
``DiTTransformer2DModel``, as diffusers' ``scripts/convert_dit_to_diffusers.py`` does: the one
timestep + label embedder is copied into every block's ``norm1.emb``. It serves as the parity
oracle in ``tests/test_convert.py``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "diffusers_config",
    "dit_to_diffusers",
    "load_official_state_dict",
    "read_official_state_dict",
]

# Training-checkpoint wrappers, in order of preference (EMA weights first).
_WRAPPERS = ("ema", "model_ema1", "model", "state_dict")
_PREFIXES = ("module.", "_orig_mod.", "net.")


def _read(source: str | os.PathLike[str] | Mapping[str, object]) -> Mapping[str, object]:
    if isinstance(source, Mapping):
        return source
    path = Path(source)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def read_official_state_dict(
    source: str | os.PathLike[str] | Mapping[str, object],
) -> dict[str, Tensor]:
    """The state dict in an official checkpoint: a path (``.pt``/``.pth`` read with
    ``weights_only=True``, or ``.safetensors``) or a dict; unwrapped from ``ema`` / ``model_ema1``
    / ``model`` / ``state_dict`` and stripped of ``module.`` / ``_orig_mod.`` / ``net.``."""
    checkpoint = _read(source)
    while not all(isinstance(v, Tensor) for v in checkpoint.values()):
        wrapper = next((k for k in _WRAPPERS if isinstance(checkpoint.get(k), Mapping)), None)
        if wrapper is None:
            raise ValueError(
                f"not a state dict and no {list(_WRAPPERS)} entry in it; keys: "
                f"{sorted(checkpoint)[:10]}"
            )
        checkpoint = checkpoint[wrapper]
    state_dict = dict(checkpoint)
    stripped = True
    while stripped and state_dict:
        stripped = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in state_dict):
                state_dict = {k[len(prefix) :]: v for k, v in state_dict.items()}
                stripped = True
    return state_dict


def _shape_error(key: str, got: torch.Size, want: torch.Size, model: nn.Module) -> str:
    """The mismatch message; ``model`` is a DiT (patch_size, num_classes, in_channels)."""
    head = f"{key}: checkpoint {list(got)} vs model {list(want)}"
    if key == "pos_embed":
        grid_ckpt, grid_model = round(got[1] ** 0.5), round(want[1] ** 0.5)
        p = model.patch_size
        return (
            f"{head}; the checkpoint was trained on a {grid_ckpt}x{grid_ckpt} token grid "
            f"(input_size={grid_ckpt * p} with patch_size={p}), the model has "
            f"{grid_model}x{grid_model}: build it with input_size={grid_ckpt * p}"
        )
    num_classes = model.num_classes
    if (
        key == "y_embedder.embedding_table.weight"
        and got[1:] == want[1:]
        and got[0] in (num_classes, num_classes + 1)
    ):
        null_row = got[0] == num_classes + 1
        fix = "class_dropout_prob > 0 (DiT/SiT: 0.1)" if null_row else "class_dropout_prob=0"
        return (
            f"{head}; {got[0]} rows for {num_classes} classes means "
            f"{'a' if null_row else 'no'} null-class row: build the model with {fix}"
        )
    if key.startswith("final_layer.linear") and got[1:] == want[1:]:
        out = got[0] // model.patch_size**2
        fix = "learn_sigma=True" if out == 2 * model.in_channels else "learn_sigma=False"
        return f"{head}; the checkpoint predicts {out} channels: build the model with {fix}"
    return head


def _check_keys(state_dict: Mapping[str, Tensor], expected: Mapping[str, Tensor]) -> None:
    def has_t(keys) -> bool:
        return any(k.startswith("t_embedder.") for k in keys)

    if has_t(expected) and not has_t(state_dict):
        raise ValueError(
            "the checkpoint has no t_embedder.* weights (e.g. advflow's 1-NFE generators): "
            "build the model with time_embedder=False"
        )
    if has_t(state_dict) and not has_t(expected):
        raise ValueError(
            "the checkpoint has t_embedder.* weights the model lacks: build it with "
            "time_embedder=True"
        )


def load_official_state_dict(
    model: nn.Module,
    source: str | os.PathLike[str] | Mapping[str, object],
    *,
    strict: bool = True,
) -> nn.Module:
    """Load an official DiT / SiT / advflow / JiT-layout checkpoint into ``model`` (in place,
    returned). Every shape mismatch raises a ValueError naming the key, both shapes and the
    constructor argument to change; ``strict`` also rejects missing or unexpected keys."""
    state_dict = read_official_state_dict(source)
    expected = model.state_dict()
    if strict:
        _check_keys(state_dict, expected)
    for key, value in state_dict.items():
        if key in expected and value.shape != expected[key].shape:
            raise ValueError(_shape_error(key, value.shape, expected[key].shape, model))
    if strict:
        missing = sorted(set(expected) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(expected))
        if missing or unexpected:
            raise ValueError(
                f"checkpoint keys do not match the model: missing {missing[:10]}, "
                f"unexpected {unexpected[:10]}"
            )
    model.load_state_dict(state_dict, strict=strict)
    return model


def _block_ids(state_dict: Mapping[str, Tensor]) -> list[int]:
    return sorted({int(k.split(".")[1]) for k in state_dict if k.startswith("blocks.")})


def dit_to_diffusers(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """DiT-layout state dict -> ``diffusers.DiTTransformer2DModel`` keys (the mapping of
    diffusers' ``scripts/convert_dit_to_diffusers.py``). Needs the time embedder; diffusers'
    label table always has the null row (its ``class_dropout_prob`` is fixed at 0.1).
    ``pos_embed`` is dropped: diffusers recomputes the same sin-cos table as a buffer."""
    sd = dict(state_dict)
    out: dict[str, Tensor] = {
        "pos_embed.proj.weight": sd["x_embedder.proj.weight"],
        "pos_embed.proj.bias": sd["x_embedder.proj.bias"],
        "proj_out_1.weight": sd["final_layer.adaLN_modulation.1.weight"],
        "proj_out_1.bias": sd["final_layer.adaLN_modulation.1.bias"],
        "proj_out_2.weight": sd["final_layer.linear.weight"],
        "proj_out_2.bias": sd["final_layer.linear.bias"],
    }
    for i in _block_ids(sd):
        src, dst = f"blocks.{i}.", f"transformer_blocks.{i}."
        emb = f"{dst}norm1.emb."
        for name in ("weight", "bias"):
            out[f"{emb}timestep_embedder.linear_1.{name}"] = sd[f"t_embedder.mlp.0.{name}"]
            out[f"{emb}timestep_embedder.linear_2.{name}"] = sd[f"t_embedder.mlp.2.{name}"]
            out[f"{dst}norm1.linear.{name}"] = sd[f"{src}adaLN_modulation.1.{name}"]
            q, k, v = sd[f"{src}attn.qkv.{name}"].chunk(3, dim=0)
            out[f"{dst}attn1.to_q.{name}"] = q
            out[f"{dst}attn1.to_k.{name}"] = k
            out[f"{dst}attn1.to_v.{name}"] = v
            out[f"{dst}attn1.to_out.0.{name}"] = sd[f"{src}attn.proj.{name}"]
            out[f"{dst}ff.net.0.proj.{name}"] = sd[f"{src}mlp.fc1.{name}"]
            out[f"{dst}ff.net.2.{name}"] = sd[f"{src}mlp.fc2.{name}"]
        out[f"{emb}class_embedder.embedding_table.weight"] = sd["y_embedder.embedding_table.weight"]
    return out


def diffusers_config(model: nn.Module) -> dict:
    """``DiTTransformer2DModel(**config)`` arguments with ``model``'s shape. ``norm_eps=1e-6``
    is DiT's block LayerNorm eps (diffusers' default is 1e-5)."""
    heads = model.num_heads
    return dict(
        num_attention_heads=heads,
        attention_head_dim=model.hidden_size // heads,
        in_channels=model.in_channels,
        out_channels=model.out_channels,
        num_layers=model.depth,
        sample_size=model.grid_size * model.patch_size,
        patch_size=model.patch_size,
        num_embeds_ada_norm=model.num_classes,
        norm_eps=1e-6,
    )
