"""Omni at small scale: one mixture-of-experts transformer over interleaved modality tokens, with
Context Unrolling.

Paper: "Context Unrolling in Omni Models", Ceyuan Yang, Zhijie Lin, Yang Zhao, Fei Xiao, Hao He,
Qi Zhao, ..., Haoqi Fan (ByteDance Seed), arXiv:2604.21921 (2026). No code or weights are
released, so this file implements the mechanism as the paper's pages describe it, at CPU scale:

- one transformer over an interleaved context of text, image, depth and camera-pose tokens, each
  modality with its own tokenizer/projector and output head (paper: a unified MoE model, 3B
  active parameters, natively trained on text, image, video, 3D geometry and hidden
  representations);
- a mixture-of-experts feed-forward in every block: top-k routing with renormalised gates and
  the Switch/GShard load-balancing loss (paper: MoE; the router and balance loss are ours);
- Context Unrolling (paper): before answering, the model writes chosen intermediate
  representations -- the "primitives" -- into its context (here: a depth map, a novel view from a
  given camera pose), then answers conditioned on the extended context. :meth:`Omni.unroll`
  takes the primitives to unroll and returns the answer with the intermediate outputs.

Our choices (see the README's Sources): raw RGB/depth patches through linear projectors (the
paper's tokenisers are not public: VAE latents / ViT features at scale), one-step parallel
prediction of a primitive's patches from learned query tokens (not diffusion/autoregressive),
segment-causal attention (bidirectional within a segment, causal across segments, as in
BAGEL-style interleaved models), learned position and segment embeddings, and a filler
primitive (the same number of extra positions with no content) as the compute-matched control.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.kernels import attention

__all__ = [
    "MODALITIES",
    "PRIMITIVES",
    "Attention",
    "Block",
    "MoEFeedForward",
    "Omni",
    "load_balancing_loss",
    "omni_tiny",
    "patchify",
    "unpatchify",
]

MODALITIES = ("text", "image", "depth", "pose", "filler")
PRIMITIVES = ("depth", "view", "filler")
# special text tokens, by position in paperzoo.omni.scenes.VOCAB
_PAD, _Q, _ANS, _DEPTH, _VIEW, _FILL = range(6)


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, (H/p)(W/p), C p p), row-major over the patch grid."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // patch) * (w // patch), c * patch * patch)


def unpatchify(x: torch.Tensor, patch: int, channels: int, size: int) -> torch.Tensor:
    """(B, N, C p p) -> (B, C, H, W) with H = W = ``size``; inverse of :func:`patchify`."""
    b, g = x.shape[0], size // patch
    x = x.reshape(b, g, g, channels, patch, patch).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, channels, size, size)


# -- blocks ------------------------------------------------------------------------------------


def load_balancing_loss(probs: torch.Tensor, topk_idx: torch.Tensor, num_experts: int):
    """Switch Transformer / GShard auxiliary loss, ``E * sum_e f_e * P_e``.

    Args:
        probs: (T, E) router softmax probabilities per token.
        topk_idx: (T, k) the experts each token is dispatched to.

    ``f_e`` is the fraction of the T*k dispatches that go to expert e, ``P_e`` the mean router
    probability of e. It equals 1 when both are uniform and grows as routing collapses; the
    gradient flows through ``P`` only (``f`` counts hard assignments).
    """
    k = topk_idx.shape[-1]
    f = F.one_hot(topk_idx, num_experts).sum(1).float().mean(0) / k
    p = probs.mean(0)
    return num_experts * (f * p).sum()


class _ExpertMlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class MoEFeedForward(nn.Module):
    """Top-k routed mixture of expert MLPs (no capacity limit: no token is dropped).

    Each token goes to its ``top_k`` experts by router probability, weighted by those
    probabilities renormalised to sum to 1 (GShard / Mixtral). ``forward`` returns the output and
    the load-balancing loss of this call; ``last_load`` keeps the dispatch fractions ``f``.
    """

    def __init__(self, dim: int, hidden: int, num_experts: int, top_k: int) -> None:
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k must be in [1, num_experts={num_experts}], got {top_k}")
        self.num_experts, self.top_k = num_experts, top_k
        self.router = nn.Linear(dim, num_experts, bias=False)
        self.experts = nn.ModuleList(_ExpertMlp(dim, hidden) for _ in range(num_experts))
        self.last_load: torch.Tensor | None = None

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(T, D) tokens -> router probabilities (T, E), top-k experts (T, k), gates (T, k)."""
        probs = self.router(x).float().softmax(-1)
        top_p, top_i = probs.topk(self.top_k, dim=-1)
        return probs, top_i, top_p / top_p.sum(-1, keepdim=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, D) -> ((B, N, D), scalar balance loss)."""
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        probs, top_i, gates = self.route(flat)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            rows, slot = (top_i == e).nonzero(as_tuple=True)
            if rows.numel():
                w = gates[rows, slot].unsqueeze(-1).to(flat.dtype)
                out.index_add_(0, rows, w * expert(flat[rows]))
        aux = load_balancing_loss(probs, top_i, self.num_experts)
        load = F.one_hot(top_i, self.num_experts).sum(1).float().mean(0) / self.top_k
        self.last_load = load.detach()
        return out.reshape(shape), aux


class Attention(nn.Module):
    """Multi-head self-attention through :func:`paperzoo.kernels.attention`."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).unbind(2)
        out = attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block: attention, then the MoE feed-forward."""

    def __init__(self, dim: int, num_heads: int, hidden: int, num_experts: int, top_k: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.moe = MoEFeedForward(dim, hidden, num_experts, top_k)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None):
        x = x + self.attn(self.norm1(x), mask)
        h, aux = self.moe(self.norm2(x))
        return x + h, aux


# -- the model ---------------------------------------------------------------------------------


@dataclass
class Segment:
    """A run of context tokens (B, n, D) written together; bidirectional inside, causal across."""

    tokens: torch.Tensor
    name: str


class Omni(nn.Module):
    """One MoE transformer over interleaved text / image / depth / pose tokens (module docstring).

    Inputs (a mapping, as :meth:`unroll` takes it):
        ``image`` (B, 3, S, S) float in [0, 1]; ``pose`` (B, 12) world-to-camera rotation and
        camera centre (:meth:`paperzoo.omni.render.Camera.pose_vector`); ``question`` (B, L)
        token ids; for the "view" primitive ``view_pose`` (B, 12), the camera to render from.
    Depth maps are (B, S, S) z-depth in world units (``inf`` for sky); inside the model they are
    ``min(depth, depth_far) / depth_far`` in [0, 1].
    """

    def __init__(
        self,
        *,
        vocab_size: int = 17,
        image_size: int = 32,
        patch_size: int = 8,
        dim: int = 64,
        depth: int = 4,
        num_heads: int = 4,
        mlp_hidden: int = 128,
        num_experts: int = 4,
        top_k: int = 2,
        max_text_len: int = 8,
        max_segments: int = 8,
        depth_far: float = 16.0,
    ) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch {patch_size}")
        self.image_size, self.patch_size, self.dim = image_size, patch_size, dim
        self.num_patches = (image_size // patch_size) ** 2
        self.depth_far = depth_far
        p2 = patch_size * patch_size
        # tokenizers / projectors, one per modality
        self.text_embed = nn.Embedding(vocab_size, dim)
        self.image_proj = nn.Linear(3 * p2, dim)
        self.depth_proj = nn.Linear(p2, dim)
        self.pose_proj = nn.Linear(12, dim)
        self.modality_embed = nn.Embedding(len(MODALITIES), dim)
        self.patch_pos = nn.Parameter(torch.zeros(1, self.num_patches, dim))
        self.text_pos = nn.Parameter(torch.zeros(1, max_text_len, dim))
        self.segment_pos = nn.Parameter(torch.zeros(1, max_segments, dim))
        # learned inputs of the positions whose content the model generates, and the filler
        self.depth_query = nn.Parameter(torch.zeros(1, 1, dim))
        self.view_query = nn.Parameter(torch.zeros(1, 1, dim))
        self.filler = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList(
            Block(dim, num_heads, mlp_hidden, num_experts, top_k) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        # output heads, one per modality the model writes
        self.text_head = nn.Linear(dim, vocab_size)
        self.depth_head = nn.Linear(dim, p2)
        self.image_head = nn.Linear(dim, 3 * p2)
        for t in (self.patch_pos, self.text_pos, self.segment_pos, self.depth_query,
                  self.view_query, self.filler):  # fmt: skip
            nn.init.trunc_normal_(t, std=0.02)

    # -- tokenizers ----------------------------------------------------------------------------

    def _mod(self, name: str) -> torch.Tensor:
        return self.modality_embed.weight[MODALITIES.index(name)]

    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, D)."""
        return self.text_embed(ids) + self.text_pos[:, : ids.shape[1]] + self._mod("text")

    def embed_image(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [0, 1] -> (B, N, D) patch tokens."""
        x = self.image_proj(patchify(image * 2.0 - 1.0, self.patch_size))
        return x + self.patch_pos + self._mod("image")

    def embed_depth(self, depth_norm: torch.Tensor) -> torch.Tensor:
        """(B, S, S) normalised depth in [0, 1] -> (B, N, D) depth tokens."""
        x = self.depth_proj(patchify(depth_norm.unsqueeze(1) * 2.0 - 1.0, self.patch_size))
        return x + self.patch_pos + self._mod("depth")

    def embed_pose(self, pose: torch.Tensor) -> torch.Tensor:
        """(B, 12) -> (B, 1, D)."""
        return (self.pose_proj(pose) + self._mod("pose")).unsqueeze(1)

    def normalize_depth(self, depth: torch.Tensor) -> torch.Tensor:
        """World z-depth (inf = sky) -> [0, 1]."""
        return depth.nan_to_num(posinf=self.depth_far).clamp(0.0, self.depth_far) / self.depth_far

    def _marker(self, token: int, b: int, device) -> torch.Tensor:
        return self.embed_text(torch.full((b, 1), token, dtype=torch.long, device=device))

    def _queries(self, query: torch.Tensor, modality: str, b: int) -> torch.Tensor:
        return (query + self.patch_pos + self._mod(modality)).expand(b, -1, -1)

    # -- the transformer over a context ---------------------------------------------------------

    def forward_context(self, segments: Sequence[Segment]) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the transformer over the concatenated segments.

        Returns the normed hidden states (B, N, D) and the MoE balance loss summed over blocks.
        """
        parts, seg_ids = [], []
        for i, seg in enumerate(segments):
            parts.append(seg.tokens + self.segment_pos[:, i])
            seg_ids.append(torch.full((seg.tokens.shape[1],), i, device=seg.tokens.device))
        x = torch.cat(parts, 1)
        ids = torch.cat(seg_ids)
        mask = (
            ids[None, :] <= ids[:, None]
        )  # (N, N): query i sees key j of its or an earlier segment
        aux = x.new_zeros(())
        for blk in self.blocks:
            x, a = blk(x, mask)
            aux = aux + a
        return self.norm(x), aux

    def prompt(self, inputs: Mapping[str, torch.Tensor]) -> list[Segment]:
        """The context before any unrolling: image, camera pose, the second camera's pose when
        the inputs carry one (``view_pose``: the question is about that camera), question."""
        q = inputs["question"]
        marked = torch.cat([torch.full_like(q[:, :1], _Q), q], 1)
        context = [
            Segment(self.embed_image(inputs["image"]), "image"),
            Segment(self.embed_pose(inputs["pose"]), "pose"),
        ]
        if "view_pose" in inputs:
            context.append(Segment(self.embed_pose(inputs["view_pose"]), "view_pose"))
        context.append(Segment(self.embed_text(marked), "question"))
        return context

    def generate(
        self, context: list[Segment], primitive: str, inputs: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict a primitive's patches from the context, in one parallel step.

        Returns the prediction, unclamped -- "depth": (B, S, S) normalised depth; "view":
        (B, 3, S, S) RGB, both nominally in [0, 1] -- and the balance loss of the pass.
        """
        b, device = context[0].tokens.shape[0], context[0].tokens.device
        if primitive == "depth":
            marker, query, mod, head, ch = _DEPTH, self.depth_query, "depth", self.depth_head, 1
            extra: list[torch.Tensor] = []
        elif primitive == "view":
            marker, query, mod, head, ch = _VIEW, self.view_query, "image", self.image_head, 3
            extra = [self.embed_pose(inputs["view_pose"])]
        else:
            raise ValueError(f"cannot generate {primitive!r}; generated primitives: depth, view")
        q = torch.cat([self._marker(marker, b, device), *extra, self._queries(query, mod, b)], 1)
        h, aux = self.forward_context([*context, Segment(q, f"{primitive}_query")])
        patches = head(h[:, -self.num_patches :])
        out = (unpatchify(patches, self.patch_size, ch, self.image_size) + 1.0) / 2.0
        return (out[:, 0] if ch == 1 else out), aux

    def write(
        self, primitive: str, value: torch.Tensor | None, inputs: Mapping[str, torch.Tensor]
    ) -> Segment:
        """The segment that writes a primitive's value back into the context: its marker token
        and its tokens ("depth": normalised depth (B, S, S); "view": RGB (B, 3, S, S) with
        ``inputs["view_pose"]``; "filler": ``value`` ignored, as many filler tokens as a depth
        map has patches, after ``inputs["view_pose"]`` when there is one, so that the segment is
        exactly as long as a depth or a view segment)."""
        b = inputs["image"].shape[0]
        device = inputs["image"].device
        if primitive == "depth":
            body = [self.embed_depth(value)]
            marker = _DEPTH
        elif primitive == "view":
            body = [self.embed_pose(inputs["view_pose"]), self.embed_image(value)]
            marker = _VIEW
        elif primitive == "filler":
            body = [self._queries(self.filler, "filler", b)]
            if "view_pose" in inputs:  # as long as a view segment: the pose, then no content
                body.insert(0, self.embed_pose(inputs["view_pose"]))
            marker = _FILL
        else:
            raise ValueError(f"unknown primitive {primitive!r}; use one of {PRIMITIVES}")
        return Segment(torch.cat([self._marker(marker, b, device), *body], 1), primitive)

    def answer_logits(self, context: list[Segment]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, vocab) logits of the answer token after ``context``, and the pass's balance loss."""
        b, device = context[0].tokens.shape[0], context[0].tokens.device
        h, aux = self.forward_context([*context, Segment(self._marker(_ANS, b, device), "answer")])
        return self.text_head(h[:, -1]), aux

    def unroll(
        self,
        inputs: Mapping[str, torch.Tensor],
        primitives: Sequence[str] = ("depth",),
        *,
        given: Mapping[str, torch.Tensor] | None = None,
        detach: bool = True,
    ) -> dict[str, Any]:
        """Context Unrolling: write each primitive into the context in order, then answer.

        Args:
            inputs: see the class docstring.
            primitives: any of "depth", "view", "filler", in the order they are written; ``()``
                answers directly.
            given: values to write instead of generating them (an oracle): ``{"depth": (B, S, S)
                world z-depth}`` or ``{"view": (B, 3, S, S)}``.
            detach: write the generated values back without gradient (as sampled tokens are).

        Returns:
            ``{"answer": (B,) token ids, "logits": (B, vocab), "intermediates": {primitive:
            value}, "aux_loss": the summed MoE balance loss}``; depth intermediates are in world
            units (``depth_far`` where the model saw sky), views are RGB in [0, 1].
        """
        given = dict(given or {})
        context = self.prompt(inputs)
        intermediates: dict[str, torch.Tensor] = {}
        aux = context[0].tokens.new_zeros(())
        for prim in primitives:
            if prim not in PRIMITIVES:
                raise ValueError(f"unknown primitive {prim!r}; use one of {PRIMITIVES}")
            if prim == "filler":
                context.append(self.write("filler", None, inputs))
                continue
            if prim in given:
                value = given[prim]
                value = self.normalize_depth(value) if prim == "depth" else value
            else:
                value, a = self.generate(context, prim, inputs)
                aux = aux + a
                value = value.clamp(0.0, 1.0)
                value = value.detach() if detach else value
            intermediates[prim] = value * self.depth_far if prim == "depth" else value
            context.append(self.write(prim, value, inputs))
        logits, a = self.answer_logits(context)
        return {
            "answer": logits.argmax(-1),
            "logits": logits,
            "intermediates": intermediates,
            "aux_loss": aux + a,
        }

    def forward(self, inputs: Mapping[str, torch.Tensor], primitives: Sequence[str] = ()):
        """:meth:`unroll` with ``primitives`` (default: answer directly)."""
        return self.unroll(inputs, primitives)


def _create_omni(**kwargs: Any) -> Omni:
    return Omni(**kwargs)


def omni_tiny(**overrides: Any) -> Omni:
    """The tiny study's model: 3 blocks x 64 wide, 4 heads, 4 experts (top-2) of hidden 128,
    32 px images in 8 px patches. Not a size from the paper."""
    args = dict(dim=64, depth=3, num_heads=4, mlp_hidden=128, num_experts=4, top_k=2,
                image_size=32, patch_size=8, vocab_size=17)  # fmt: skip
    return _create_omni(**{**args, **overrides})
