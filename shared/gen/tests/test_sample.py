"""``paperzoo sample`` end to end, with tiny generators registered through a real entry point.

A throwaway distribution (``gentest-zoo``: a module plus its ``.dist-info`` with an
``entry_points.txt``) is written to a temporary directory on ``sys.path``/``PYTHONPATH``, so the
registry discovers it exactly as it discovers an installed package.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL
from PIL import Image
from safetensors.torch import save_file

from paperzoo.core import reload_plugins
from paperzoo.gen.sample import ClassConditionalSampler, main
from paperzoo.gen.vae import SD_VAE_FT_MSE_CONFIG

MODELS = '''
import torch
from torch import nn


class TinyGenerator(nn.Module):
    """A class-conditional generator: a per-class colour plus a 1x1 mix of seeded noise."""

    def __init__(self, output_space="pixel", channels=3, size=8, num_classes=10):
        super().__init__()
        self.output_space, self.num_classes = output_space, num_classes
        self.channels, self.size = channels, size
        self.embed = nn.Embedding(num_classes, channels)
        self.mix = nn.Conv2d(channels, channels, 1)
        with torch.no_grad():
            self.embed.weight.copy_(torch.linspace(-1, 1, num_classes * channels).view(num_classes, -1))
            self.mix.weight.copy_(0.5 * torch.eye(channels)[:, :, None, None])
            self.mix.bias.zero_()

    def sample(self, labels, *, generator, steps=None, cfg_scale=None):
        shape = (len(labels), self.channels, self.size, self.size)
        x = torch.randn(shape, generator=generator, device=labels.device)
        for _ in range(steps or 1):
            x = self.mix(x)
        x = x * (cfg_scale or 1.0) + self.embed(labels)[:, :, None, None]
        return x.tanh() if self.output_space == "pixel" else x


def tiny_pixel(**kw):
    return TinyGenerator("pixel", **kw)


def tiny_latent(**kw):
    return TinyGenerator("latent", channels=4, size=2, **kw)


def not_a_sampler():
    return nn.Linear(2, 2)
'''

PLUGIN = """
from paperzoo.core import ModelSpec, hookimpl


@hookimpl
def paperzoo_models():
    return [
        ModelSpec(name="gentest_tiny_pixel", factory="gentest_zoo.models:tiny_pixel"),
        ModelSpec(name="gentest_tiny_latent", factory="gentest_zoo.models:tiny_latent"),
        ModelSpec(name="gentest_linear", factory="gentest_zoo.models:not_a_sampler"),
    ]
"""


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    """A distribution with a ``paperzoo`` entry point, on sys.path and rediscovered."""
    root = tmp_path_factory.mktemp("site")
    (root / "gentest_zoo").mkdir()
    (root / "gentest_zoo" / "__init__.py").write_text("")
    (root / "gentest_zoo" / "models.py").write_text(textwrap.dedent(MODELS))
    (root / "gentest_zoo" / "plugin.py").write_text(PLUGIN)
    info = root / "gentest_zoo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gentest-zoo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[paperzoo]\ngentest = gentest_zoo.plugin\n")
    sys.path.insert(0, str(root))
    reload_plugins()
    yield root
    sys.path.remove(str(root))
    for name in [m for m in sys.modules if m.startswith("gentest_zoo")]:
        del sys.modules[name]
    reload_plugins()


def _run(out: Path, *extra: str, model: str = "gentest_tiny_pixel") -> int:
    return main([model, "--classes", "1,7", "--per-class", "3", "--out", str(out), *extra])


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_grid_size_and_seeds(zoo, tmp_path, capsys):
    assert _run(tmp_path / "a.png", "--seed", "0") == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "a.png")
    assert _run(tmp_path / "b.png", "--seed", "0") == 0
    assert _run(tmp_path / "c.png", "--seed", "1") == 0
    a, b, c = (_pixels(tmp_path / f"{n}.png") for n in "abc")
    assert a.shape == (2 + 2 * (8 + 2), 2 + 3 * (8 + 2), 3)  # 2 classes x 3 per class, 8 px
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # Row i is class i: the class colour dominates each tile's mean.
    top, bottom = a[2:10, 2:10].mean(), a[12:20, 2:10].mean()
    assert bottom > top + 40
    assert _run(tmp_path / "d.png", "--steps", "3", "--cfg-scale", "2") == 0
    assert not np.array_equal(a, _pixels(tmp_path / "d.png"))


def test_checkpoint_path_is_loaded(zoo, tmp_path):
    from paperzoo.core import create_model

    model = create_model("gentest_tiny_pixel")
    assert isinstance(model, ClassConditionalSampler)
    state = {k: -v for k, v in model.state_dict().items()}
    save_file(state, tmp_path / "w.safetensors")
    assert _run(tmp_path / "plain.png") == 0
    assert _run(tmp_path / "w.png", "--checkpoint-path", str(tmp_path / "w.safetensors")) == 0
    assert not np.array_equal(_pixels(tmp_path / "plain.png"), _pixels(tmp_path / "w.png"))


def test_clear_errors(zoo, tmp_path, capsys):
    assert _run(tmp_path / "x.png", model="gentest_tiny_pixl") == 2
    assert "did you mean 'gentest_tiny_pixel'" in capsys.readouterr().err
    assert _run(tmp_path / "x.png", model="gentest_linear") == 2
    assert "Linear is not a class-conditional sampler" in capsys.readouterr().err
    assert main(["gentest_tiny_pixel", "--classes", "3,10", "--out", str(tmp_path / "x.png")]) == 2
    assert "class ids [10] out of range: this model takes 0..9" in capsys.readouterr().err
    assert _run(tmp_path / "x.png", model="gentest_tiny_latent") == 2
    assert "pass --vae-path" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["gentest_tiny_pixel", "--classes", "a,b", "--out", str(tmp_path / "x.png")])
    assert "expected comma-separated integers" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_latent_model_is_decoded_with_the_sd_vae(zoo, tmp_path):
    torch.manual_seed(0)
    vae = AutoencoderKL(**SD_VAE_FT_MSE_CONFIG)
    save_file({k: v.half() for k, v in vae.state_dict().items()}, tmp_path / "vae.safetensors")
    vae_arg = ("--vae-path", str(tmp_path / "vae.safetensors"))
    assert _run(tmp_path / "z.png", *vae_arg, model="gentest_tiny_latent") == 0
    assert _pixels(tmp_path / "z.png").shape == (2 + 2 * (16 + 2), 2 + 3 * (16 + 2), 3)  # 2 px x 8


def test_console_script_matches_main(zoo, tmp_path):
    """The real ``paperzoo`` executable finds the command and the entry-point model."""
    exe = Path(sys.executable).parent / "paperzoo"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(zoo), os.environ.get("PYTHONPATH", "")]),
    }
    args = ["sample", "gentest_tiny_pixel", "--classes", "1,7", "--per-class", "3", "--seed", "1"]
    result = subprocess.run(
        [str(exe), *args, "--out", str(tmp_path / "cli.png")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "cli.png")
    assert _run(tmp_path / "main.png", "--seed", "1") == 0
    assert (tmp_path / "cli.png").read_bytes() == (tmp_path / "main.png").read_bytes()
