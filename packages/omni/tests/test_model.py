"""The MoE routing and balance loss by hand, the parameter count, and the unrolling API."""

from __future__ import annotations

import pytest
import torch

from paperzoo.core import create_model
from paperzoo.omni.model import (
    MoEFeedForward,
    Omni,
    load_balancing_loss,
    omni_tiny,
    patchify,
    unpatchify,
)
from paperzoo.omni.plugin import ACTIVE_PARAMS, PARAMS

torch.set_num_threads(1)


def _inputs(b: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.rand(b, 3, 32, 32, generator=g),
        "pose": torch.randn(b, 12, generator=g),
        "question": torch.randint(6, 17, (b, 6), generator=g),
        "view_pose": torch.randn(b, 12, generator=g),
    }


def test_balance_loss_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2]])
    top = torch.tensor([[0], [0]])
    # f = (1, 0), P = (0.85, 0.15): E * sum f P = 2 * 0.85
    assert load_balancing_loss(probs, top, 2).item() == pytest.approx(1.7)
    uniform = torch.full((4, 4), 0.25)
    top2 = torch.tensor([[0, 1], [2, 3], [0, 2], [1, 3]])  # every expert twice out of 8
    assert load_balancing_loss(uniform, top2, 4).item() == pytest.approx(1.0)
    # its gradient lowers the probability of the overloaded expert
    logits = torch.zeros(2, 2, requires_grad=True)
    load_balancing_loss(logits.softmax(-1), top, 2).backward()
    assert (logits.grad[:, 0] > 0).all() and (logits.grad[:, 1] < 0).all()


def test_top2_routing_by_hand():
    torch.manual_seed(0)
    moe = MoEFeedForward(dim=2, hidden=4, num_experts=3, top_k=2)
    with torch.no_grad():
        moe.router.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
    x = torch.tensor([[[2.0, 1.0], [-1.0, -3.0]]])
    out, aux = moe(x)
    flat = x[0]
    probs = (flat @ moe.router.weight.T).softmax(-1)
    expected = []
    for t, p in zip(flat, probs):
        # token 0: logits (2, 1, -3) -> experts 0, 1; token 1: (-1, -3, 4) -> experts 2, 0
        top = p.topk(2).indices.tolist()
        w = p[top] / p[top].sum()
        expected.append(sum(wi * moe.experts[e](t) for wi, e in zip(w, top)))
    assert probs[0].topk(2).indices.tolist() == [0, 1]
    assert probs[1].topk(2).indices.tolist() == [2, 0]
    torch.testing.assert_close(out[0], torch.stack(expected))
    # dispatch fractions: expert 0 twice, 1 once, 2 once, of 4 dispatches
    torch.testing.assert_close(moe.last_load, torch.tensor([0.5, 0.25, 0.25]))
    torch.testing.assert_close(aux, 3 * (torch.tensor([0.5, 0.25, 0.25]) * probs.mean(0)).sum())


def test_parameter_count_matches_the_registered_spec():
    model = create_model("omni_tiny")
    assert isinstance(model, Omni)
    assert sum(p.numel() for p in model.parameters()) == PARAMS["omni_tiny"]
    block = model.blocks[0]
    expert = sum(p.numel() for p in block.moe.experts[0].parameters())
    idle = len(model.blocks) * (block.moe.num_experts - block.moe.top_k) * expert
    assert PARAMS["omni_tiny"] - idle == ACTIVE_PARAMS["omni_tiny"]


def test_patchify_round_trips():
    x = torch.randn(2, 3, 32, 32)
    p = patchify(x, 8)
    assert p.shape == (2, 16, 192)
    torch.testing.assert_close(p[0, 1], x[0, :, 0:8, 8:16].reshape(-1))
    torch.testing.assert_close(unpatchify(p, 8, 3, 32), x)


def test_unroll_returns_the_answer_and_the_intermediates():
    model = omni_tiny().eval()
    inputs = _inputs()
    with torch.no_grad():
        out = model.unroll(inputs, primitives=("depth", "view"))
    assert out["answer"].shape == (3,) and out["logits"].shape == (3, 17)
    depth = out["intermediates"]["depth"]
    assert depth.shape == (3, 32, 32) and depth.min() >= 0.0 and depth.max() <= model.depth_far
    assert out["intermediates"]["view"].shape == (3, 3, 32, 32)
    assert out["aux_loss"].item() > 0
    with pytest.raises(ValueError, match="unknown primitive 'tetx'"):
        model.unroll(inputs, primitives=("tetx",))


def test_the_written_depth_is_what_the_answer_reads():
    model = omni_tiny().eval()
    inputs = _inputs()
    near = torch.full((3, 32, 32), 2.0)
    far = torch.full((3, 32, 32), 12.0)
    with torch.no_grad():
        a = model.unroll(inputs, ("depth",), given={"depth": near})
        b = model.unroll(inputs, ("depth",), given={"depth": far})
        own = model.unroll(inputs, ("depth",))
        gen, _ = model.generate(model.prompt(inputs), "depth", inputs)
    torch.testing.assert_close(a["intermediates"]["depth"], near)
    assert not torch.allclose(a["logits"], b["logits"])
    # own unrolling writes back the model's own prediction
    torch.testing.assert_close(own["intermediates"]["depth"], gen.clamp(0, 1) * model.depth_far)


def test_filler_control_adds_as_many_positions_as_depth_and_attention_is_segment_causal():
    model = omni_tiny().eval()
    inputs = _inputs()
    prompt = model.prompt(inputs)
    # with a second camera the filler is as long as a view: its pose, then 16 filler tokens
    view_seg = model.write("view", torch.rand(3, 3, 32, 32), inputs)
    filler_seg = model.write("filler", None, inputs)
    assert view_seg.tokens.shape == filler_seg.tokens.shape == (3, 18, 64)
    torch.testing.assert_close(filler_seg.tokens[:, 1], model.embed_pose(inputs["view_pose"])[:, 0])
    # without one, as long as a depth map
    no_view = {k: v for k, v in inputs.items() if k != "view_pose"}
    depth_seg = model.write("depth", torch.rand(3, 32, 32), no_view)
    assert (
        depth_seg.tokens.shape == model.write("filler", None, no_view).tokens.shape == (3, 17, 64)
    )
    assert [seg.name for seg in model.prompt(no_view)] == ["image", "pose", "question"]
    assert [seg.name for seg in prompt] == ["image", "pose", "view_pose", "question"]
    with torch.no_grad():
        h_prompt, _ = model.forward_context(prompt)
        h_more, _ = model.forward_context([*prompt, filler_seg])
    # what is written later never changes the representation of what came before it
    torch.testing.assert_close(h_more[:, : h_prompt.shape[1]], h_prompt)
    # ... but the written segment sees the prompt: another image changes it
    other = dict(inputs, image=torch.rand(3, 3, 32, 32))
    with torch.no_grad():
        h_other, _ = model.forward_context([*model.prompt(other), filler_seg])
    assert not torch.allclose(h_other[:, -18:], h_more[:, -18:])


def test_depth_reconstruction_trains_through_the_moe():
    torch.manual_seed(0)
    model = omni_tiny().train()
    inputs = _inputs(b=8, seed=1)
    target = torch.rand(8, 32, 32)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        pred, aux = model.generate(model.prompt(inputs), "depth", inputs)
        loss = ((pred - target) ** 2).mean()
        opt.zero_grad()
        (loss + 0.01 * aux).backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert model.blocks[0].moe.experts[0].fc1.weight.grad is not None
