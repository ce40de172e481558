"""Hook implementations for paperzoo-gen.

Imported by every ``paperzoo list``: it imports ``paperzoo.core`` only (no torch) and names
everything heavy by import string.
"""

from __future__ import annotations

from paperzoo.core import CommandSpec, MethodSpec, ModelSpec, hookimpl

_PKG = "paperzoo.gen"
_LOADER = f"{_PKG}.convert:load_official_state_dict"

# Parameters (every nn.Parameter, the frozen sin-cos pos_embed included, as the official code
# counts them), asserted in tests/test_plugin.py. DiT-XL/2's 675,129,632 is the DiT paper's
# "675M" (Table 4: S/2 33M, B/2 130M, L/2 458M). A SiT checkpoint has the DiT layout exactly.
PARAMS = {
    "dit_s_2": 32_963_360,
    "dit_b_2": 130_512_416,
    "dit_l_2": 458_102_816,
    "dit_xl_2": 675_129_632,
    "sit_s_2": 32_963_360,
    "sit_b_2": 130_512_416,
    "sit_l_2": 458_102_816,
    "sit_xl_2": 675_129_632,
    "dit_tiny": 183_200,
    "sit_tiny": 183_200,
}

_DIT = "DiT (Peebles & Xie, arXiv 2212.09748), official facebookresearch/DiT key names"
_SIT = (
    "SiT (Ma et al., arXiv 2401.08740), willisma/SiT layout (= DiT's); velocity in SiT's time "
    "convention, wrap with paperzoo.gen.flow.SiTVelocity"
)
_MODELS = {
    "dit_s_2": (f"DiT-S/2: {_DIT}", "dit"),
    "dit_b_2": (f"DiT-B/2: {_DIT}", "dit"),
    "dit_l_2": (f"DiT-L/2: {_DIT}", "dit"),
    "dit_xl_2": (f"DiT-XL/2 (256 px latents, learn_sigma, 1001 label rows): {_DIT}", "dit"),
    "sit_s_2": (f"SiT-S/2: {_SIT}", "sit"),
    "sit_b_2": (f"SiT-B/2: {_SIT}", "sit"),
    "sit_l_2": (f"SiT-L/2: {_SIT}", "sit"),
    "sit_xl_2": (f"SiT-XL/2 (learn_sigma, 1001 label rows): {_SIT}", "sit"),
    "dit_tiny": ("Not from the papers: 2 DiT blocks of width 64 on 4 x 8 x 8 latents, 10 "
                 "classes, for CPU runs", "dit", "tiny"),
    "sit_tiny": ("Not from the papers: the tiny DiT shape, used in SiT's time convention",
                 "sit", "tiny"),
}  # fmt: skip


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            name=name,
            factory=f"{_PKG}.dit:{name}",
            description=description,
            num_params=PARAMS[name],
            checkpoint_loader=_LOADER,
            tags=("generative", "diffusion-transformer", *tags),
        )
        for name, (description, *tags) in _MODELS.items()
    ]


@hookimpl
def paperzoo_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="flow_matching",
            factory=f"{_PKG}.flow:FlowMatching",
            description="Flow matching (x_t = (1 - t) x + t noise, v = noise - x, MSE) on a "
            "class-conditional DiT; Euler/Heun ODE sampling",
        )
    ]


@hookimpl
def paperzoo_commands() -> list[CommandSpec]:
    return [
        CommandSpec(
            name="sample",
            command="paperzoo.gen.sample:main",
            help="sample a class-conditional generator by name and write a PNG grid",
        )
    ]
