"""Discovery: the plugin imports no torch; the DiT/SiT models build, count and load by name."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from paperzoo.core import create_model, get_model, list_models
from paperzoo.gen.plugin import PARAMS

torch.set_num_threads(1)


def test_plugin_imports_no_torch():
    code = (
        "import sys, paperzoo.gen.plugin as p, paperzoo.gen; p.paperzoo_models(); "
        "p.paperzoo_methods(); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_registered_names_and_loader():
    assert set(PARAMS) <= set(list_models("dit_*")) | set(list_models("sit_*"))
    spec = get_model("sit_xl_2")
    assert spec.factory == "paperzoo.gen.dit:sit_xl_2"
    assert spec.checkpoint_loader == "paperzoo.gen.convert:load_official_state_dict"
    assert spec.num_params == 675_129_632


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_num_params_match_the_built_model(name):
    spec = get_model(name)
    # The paper sizes are counted on the meta device (no memory, no init cost).
    with torch.device("meta"):
        model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) == spec.num_params


@pytest.mark.parametrize("name", ["dit_tiny", "sit_tiny"])
def test_tiny_models_run_and_load_their_checkpoint(name, tmp_path):
    model = create_model(name).eval()
    x, t, y = torch.randn(2, 4, 8, 8), torch.tensor([0.3, 0.6]), torch.tensor([1, 2])
    assert model(x, t, y).shape == (2, 8, 8, 8)
    g = torch.Generator().manual_seed(0)
    state = {k: v if k == "pos_embed" else torch.randn(v.shape, generator=g)
             for k, v in model.state_dict().items()}  # fmt: skip
    torch.save(state, tmp_path / "official.pt")
    loaded = create_model(name, checkpoint_path=tmp_path / "official.pt")
    torch.testing.assert_close(loaded.state_dict(), state)
