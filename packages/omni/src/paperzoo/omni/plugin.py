"""Hook implementations for paperzoo-omni (imports paperzoo.core only; no torch)."""

from __future__ import annotations

from paperzoo.core import MethodSpec, ModelSpec, PaperSpec, RecipeSpec, hookimpl

_PKG = "paperzoo.omni"

# Parameters of each registered model as its factory builds it with the defaults (every
# nn.Parameter; asserted in tests/test_model.py). The paper's model (a MoE with 3B active
# parameters) has no published configuration that we could read, so only our tiny size exists.
# - omni_tiny: 3 blocks x 64, 4 experts (top-2) of hidden 128 per block; 289,233 in all,
#   189,777 active per token (two of the four 16,576-parameter experts in each block).
PARAMS = {"omni_tiny": 289_233}
ACTIVE_PARAMS = {"omni_tiny": 189_777}
AUTHORS = (
    "Ceyuan Yang", "Zhijie Lin", "Yang Zhao", "Fei Xiao", "Hao He", "Qi Zhao", "Chaorui Deng",
    "Kunchang Li", "Zihan Ding", "Yuwei Guo", "Fuyun Wang", "Fangqi Zhu", "Xiaonan Nie",
    "Shenhan Zhu", "Shanchuan Lin", "Hongsheng Li", "Weilin Huang", "Guang Shi", "Haoqi Fan",
)  # fmt: skip


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="omni",
            title="Context Unrolling in Omni Models",
            authors=AUTHORS,
            year=2026,
            arxiv="2604.21921",
            venue="arXiv preprint (ByteDance Seed)",
            official_code=None,
            headline_results={},
            description=(
                "One mixture-of-experts model natively trained on text, images, video, 3D "
                "geometry and hidden representations; Context Unrolling: before predicting, it "
                "writes intermediate modal representations (text reasoning, visual tokens, camera "
                "pose, novel views, depth) into a shared context. No code or weights released."
            ),
        )
    ]


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            name="omni_tiny",
            factory=f"{_PKG}.model:omni_tiny",
            paper="omni",
            num_params=PARAMS["omni_tiny"],
            description=(
                "Omni at CPU scale: one 3 x 64 MoE transformer (4 experts, top-2; 189,777 active "
                "parameters per token) over text, 32 px image patch, depth patch and camera-pose "
                "tokens, with depth / novel-view / filler context unrolling; not a paper size"
            ),
            tags=("multimodal", "moe", "depth", "tiny"),
        )
    ]


@hookimpl
def paperzoo_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="omni_unroll",
            factory=f"{_PKG}.method:ContextUnrollingMethod",
            paper="omni",
            description=(
                "answer cross-entropy after the arm's context (nothing / own depth / oracle "
                "depth / filler) + depth reconstruction of the depth tokens + MoE balance loss"
            ),
        )
    ]


@hookimpl
def paperzoo_recipes() -> list[RecipeSpec]:
    return [
        RecipeSpec(
            name="omni_tiny",
            config=f"{_PKG}.recipes:tiny_config",
            runner=f"{_PKG}.reproduce:run",
            paper="omni",
            variant="tiny",
            study=f"{_PKG}.recipes:tiny_study",
            description=(
                "CPU, minutes: which-is-nearer questions about rendered box scenes; direct answer "
                "vs own-depth unrolling vs oracle depth vs a filler control, x 3 seeds"
            ),
            reference={},
        ),
        RecipeSpec(
            name="omni_tiny_view",
            config=f"{_PKG}.recipes:tiny_view_config",
            runner=f"{_PKG}.reproduce:run",
            paper="omni",
            variant="tiny_view",
            study=f"{_PKG}.recipes:tiny_view_study",
            description=(
                "CPU, minutes: which-is-behind-X questions about rendered box scenes, 'behind' "
                "seen from a second camera; direct answer vs unrolling the model's own novel "
                "view vs the oracle view vs a filler control, x 3 seeds"
            ),
            reference={},
        ),
    ]
