"""Parity with the official code, when a checkout of x-cls/superclass is at hand.

The official code (an open_clip fork under ``opencls/``) is not on PyPI, so this runs only when
``SUPERCLASS_OFFICIAL_SRC`` names that checkout's ``opencls`` folder; it is skipped otherwise.
The official model and loss run in a subprocess (their package is also called ``open_clip``):
its ``CLS-ViT-B-16`` weights are loaded into ours; the logits (to 1e-5: the two processes may
sum in a different order), three steps of ``ClsLoss`` (one gloo process, to 1e-6) and the
running statistics (exactly) must agree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from paperzoo.superclass.data import tokenizer
from paperzoo.superclass.method import SuperClassMethod
from paperzoo.superclass.model import superclass_vit_b16

OFFICIAL = os.environ.get("SUPERCLASS_OFFICIAL_SRC", "")
TEXTS = ["a photo of a cat on a mat", "two dogs playing", "a red car", "a cat and a dog"]

pytestmark = pytest.mark.skipif(
    not (OFFICIAL and (Path(OFFICIAL) / "open_clip" / "cls_model.py").is_file()),
    reason="set SUPERCLASS_OFFICIAL_SRC to the opencls/ folder of an x-cls/superclass checkout",
)


def test_model_and_loss_equal_the_official_code(tmp_path):
    out = tmp_path / "official.pt"
    script = textwrap.dedent(
        f"""
        import os, sys, torch
        sys.path.insert(0, {OFFICIAL!r})
        import torch.distributed as dist
        from open_clip.factory import create_model, get_tokenizer
        from open_clip.loss import ClsLoss
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29561")
        dist.init_process_group("gloo", rank=0, world_size=1)
        torch.manual_seed(0)
        model = create_model("CLS-ViT-B-16").eval()
        state = {{k: v.clone() for k, v in model.state_dict().items()}}
        ids = get_tokenizer("CLS-ViT-B-16")({TEXTS!r})
        images = [torch.randn(4, 3, 224, 224) for _ in range(3)]
        loss, losses, logits = ClsLoss(world_size=1), [], []
        for x in images:
            o = model(x, ids)
            losses.append(loss(**o).item())
            logits.append(o["logits"].detach())
        torch.save(dict(state=state, ids=ids, images=images, losses=losses, logits=logits,
                        cap_fq=model.cap_fq, num_samples=model.num_samples), {str(out)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600, cwd=OFFICIAL)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ref = torch.load(out, weights_only=True)
    model = superclass_vit_b16().eval()
    model.load_state_dict(ref["state"], strict=True)
    assert torch.equal(tokenizer(77)(TEXTS), ref["ids"])
    method = SuperClassMethod(model)
    for step, x in enumerate(ref["images"]):
        with torch.no_grad():
            torch.testing.assert_close(model(x), ref["logits"][step], rtol=1e-5, atol=1e-5)
        loss = method.training_step((x, ref["ids"]), step)["loss"]
        assert float(loss.detach()) == pytest.approx(ref["losses"][step], rel=1e-6)
    assert torch.equal(model.cap_fq, ref["cap_fq"])  # the statistics depend on the tokens only
    assert torch.equal(model.num_samples, ref["num_samples"])
