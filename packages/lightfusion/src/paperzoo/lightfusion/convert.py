"""The official LightFusion checkpoint layout, read and written.

The official trainer (``train/pretrain_unified_navit.py`` + ``train/fsdp_utils.py``) saves
``<checkpoint_dir>/<step:07d>/{ema,model}.safetensors``; ``app.py`` and the eval scripts load
``ema.safetensors`` (``--use_ema``) into the whole ``LightFusion`` module. Its keys:

- ``vision_language_model.model.language_model.*``: the Qwen2.5-VL text decoder in
  transformers' names, plus ``...language_model.mm_attn_layers.<i>.{llm_norm, vgen_norm,
  mm_attn.{q,k,v,o}_{und,gen}_proj, mm_attn.{q,k}_norm}``;
  ``vision_language_model.model.visual.*``, ``vision_language_model.lm_head.weight``;
- ``vgen_model.*``: Wan2.2's own (non-diffusers) names (``blocks.<i>.self_attn.q``,
  ``cross_attn``, ``norm3``, ``ffn.0``, ``modulation``, ``head.head``, ``time_embedding.0`` ...),
  with ``patch_embedding`` a Linear (``convert_conv2d_to_linear``: weight (dim, p_t·p_h·p_w·C),
  the latents patchified as ``"cfphqwr->fhwpqrc"``);
- ``vgen_model_cross_att_context``: the learned (text_len, text_dim) context.

Ours: the LM is any transformers causal LM (a text-only one has ``model.*`` where Qwen2.5-VL has
``model.language_model.*``), the fusion layers live in ``mm_attn_layers.*``, and the DiT is a
diffusers ``WanTransformer3DModel`` (the Wan -> diffusers renames are diffusers' own
``convert_wan_transformer_to_diffusers``; the reverse is written out here).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from torch import Tensor, nn

__all__ = [
    "find_official_file",
    "from_official",
    "load_official",
    "save_official",
    "to_official",
]

_LM = "vision_language_model.model.language_model."
_FUSION = _LM + "mm_attn_layers."

# diffusers WanTransformer3DModel name -> Wan2.2 name (the inverse of diffusers' table).
_WAN_TO_OFFICIAL = (
    ("condition_embedder.time_embedder.linear_1", "time_embedding.0"),
    ("condition_embedder.time_embedder.linear_2", "time_embedding.2"),
    ("condition_embedder.text_embedder.linear_1", "text_embedding.0"),
    ("condition_embedder.text_embedder.linear_2", "text_embedding.2"),
    ("condition_embedder.time_proj", "time_projection.1"),
    ("attn1", "self_attn"),
    ("attn2", "cross_attn"),
    (".to_out.0.", ".o."),
    (".to_q.", ".q."),
    (".to_k.", ".k."),
    (".to_v.", ".v."),
    ("ffn.net.0.proj", "ffn.0"),
    ("ffn.net.2", "ffn.2"),
)


def _wan_key_to_official(key: str) -> str:
    if key == "scale_shift_table":
        return "head.modulation"
    if key.startswith("proj_out."):
        return "head.head." + key[len("proj_out.") :]
    for ours, theirs in _WAN_TO_OFFICIAL:
        key = key.replace(ours, theirs)
    key = re.sub(r"^(blocks\.\d+\.)scale_shift_table$", r"\1modulation", key)
    # diffusers' norm2 (cross-attention) is Wan's norm3, and its norm3 (FFN) Wan's norm2.
    return re.sub(r"\.norm([23])\.", lambda m: f".norm{5 - int(m.group(1))}.", key)


def _lm_prefix(model: nn.Module) -> str:
    from paperzoo.lightfusion.model import _decoder

    return ("vision_language_model.model.language_model."
            if _decoder(model.vision_language_model) is not model.vision_language_model.model
            else "vision_language_model.model.")  # fmt: skip


def to_official(model: nn.Module) -> dict[str, Tensor]:
    """Our :class:`~paperzoo.lightfusion.model.LightFusion` state dict in the official names."""
    ours = _lm_prefix(model)
    out: dict[str, Tensor] = {}
    for key, value in model.state_dict().items():
        if key.startswith("vision_language_model."):
            if key.startswith(ours):
                key = _LM + key[len(ours) :]
            out[key] = value
        elif key.startswith("mm_attn_layers."):
            out[_FUSION + key[len("mm_attn_layers.") :]] = value
        elif key.startswith("vgen_model."):
            name = _wan_key_to_official(key[len("vgen_model.") :])
            if name == "patch_embedding.weight":  # Conv3d (D, C, p, q, r) -> Linear (D, pqrC)
                value = value.permute(0, 2, 3, 4, 1).reshape(value.shape[0], -1)
            out["vgen_model." + name] = value
        else:
            out[key] = value
    return out


def from_official(state: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """An official state dict -> ours for ``model`` (shapes taken from ``model``)."""
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

    ours = _lm_prefix(model)
    out: dict[str, Tensor] = {}
    wan: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith(_FUSION):
            out["mm_attn_layers." + key[len(_FUSION) :]] = value
        elif key.startswith(_LM):
            out[ours + key[len(_LM) :]] = value
        elif key.startswith("vgen_model."):
            wan[key[len("vgen_model.") :]] = value
        else:
            out[key] = value
    for key, value in convert_wan_transformer_to_diffusers(wan).items():
        if key == "patch_embedding.weight" and value.ndim == 2:
            conv = model.vgen_model.patch_embedding.weight
            d, c, p, q, r = conv.shape
            value = value.reshape(d, p, q, r, c).permute(0, 4, 1, 2, 3).contiguous()
        out["vgen_model." + key] = value
    return out


def find_official_file(path: str | os.PathLike[str], *, prefer: str = "ema") -> Path:
    """A ``.safetensors`` file, a step folder (``0050000/``: its ``ema.safetensors``, else
    ``model.safetensors``) or a checkpoint root (its highest-numbered step folder)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no LightFusion checkpoint (a file or a <step>/ folder)")
    steps = sorted((p for p in path.iterdir() if p.is_dir() and p.name.isdigit()),
                   key=lambda p: int(p.name))  # fmt: skip
    folder = steps[-1] if steps and not any(path.glob("*.safetensors")) else path
    for name in (f"{prefer}.safetensors", "ema.safetensors", "model.safetensors"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder} holds neither ema.safetensors nor model.safetensors")


def load_official(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load an official checkpoint (file, step folder or root) into ``model``; every one of
    our keys must be in the file. ``vision_language_model.model.visual.*`` is skipped when
    ``model``'s LM has no vision tower; any other leftover key is an error."""
    from safetensors.torch import load_file

    file = find_official_file(path)
    state = from_official(load_file(str(file)), model)
    n_file = len({k.split(".")[1] for k in state if k.startswith("mm_attn_layers.")})
    if n_file != len(model.mm_attn_layers):
        other = "min" if model.fusion_mode == "max" else "max"
        raise ValueError(
            f"{file} has {n_file} fusion layers, the model {len(model.mm_attn_layers)} "
            f"(fusion_mode={model.fusion_mode!r}); build it with fusion_mode={other!r}"
        )
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(k for k in set(state) - set(expected)
                        if not k.startswith("vision_language_model.model.visual."))  # fmt: skip
    if missing or unexpected:
        raise KeyError(f"{file}: missing {missing[:8]} ({len(missing)}), unexpected "
                       f"{unexpected[:8]} ({len(unexpected)})")  # fmt: skip
    for key, value in expected.items():
        if state[key].shape != value.shape:
            raise ValueError(f"{file}: {key} has shape {tuple(state[key].shape)}, "
                             f"the model {tuple(value.shape)}")  # fmt: skip
    model.load_state_dict({k: state[k] for k in expected}, strict=True)
    return model


def save_official(model: nn.Module, root: str | os.PathLike[str], step: int, *,
                  name: str = "ema") -> Path:  # fmt: skip
    """Write ``root/<step:07d>/<name>.safetensors`` in the official layout."""
    from safetensors.torch import save_file

    folder = Path(root) / f"{step:07d}"
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in to_official(model).items()}
    # Tied embeddings share storage; safetensors refuses shared tensors, so write copies.
    seen: set[int] = set()
    for k, v in state.items():
        if v.data_ptr() in seen:
            state[k] = v.clone()
        seen.add(v.data_ptr())
    save_file(state, str(folder / f"{name}.safetensors"))
    return folder / f"{name}.safetensors"
