"""The paper recipe's whole pipeline on tiny saved models: a Qwen2.5-VL folder (model and
tokenizer, save_pretrained), a diffusers Wan DiT folder and a Wan VAE folder, and an
image-caption folder; two training steps through `paperzoo reproduce lightfusion --recipe
paper`, then the official-layout checkpoint it writes loaded back with create_model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

PAPERZOO = [sys.executable, "-m", "paperzoo.core.cli"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from PIL import Image
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
    )

    tmp = tmp_path_factory.mktemp("paper")
    words = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>", "a", "red", "blue", "square", "dot"]
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>",
                                  bos_token="<|im_start|>", eos_token="<|im_end|>")  # fmt: skip
    cfg = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(words), hidden_size=48, intermediate_size=96,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6,
                                          "mrope_section": [2, 2, 2]}),
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2,
                           out_hidden_size=48, fullatt_block_indexes=[0]),
    )  # fmt: skip
    torch.manual_seed(0)
    Qwen2_5_VLForConditionalGeneration(cfg).save_pretrained(tmp / "vlm")
    tok.save_pretrained(tmp / "vlm")
    WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=24,
                          in_channels=4, out_channels=4, text_dim=16, freq_dim=32, ffn_dim=64,
                          num_layers=3, rope_max_seq_len=32).save_pretrained(tmp / "wan" / "transformer")  # fmt: skip
    AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 2], num_res_blocks=1,
                     temperal_downsample=[False], latents_mean=[0.0] * 4,
                     latents_std=[1.0] * 4).save_pretrained(tmp / "wan" / "vae")  # fmt: skip
    data = tmp / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i, caption in enumerate(["a red square", "a blue dot", "a red dot", "a blue square"]):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(data / f"{i}.png")
        lines.append(json.dumps({"file": f"{i}.png", "caption": caption}))
    (data / "captions.jsonl").write_text("\n".join(lines) + "\n")
    return {"vlm": tmp / "vlm", "wan": tmp / "wan", "data": data}


def test_paper_recipe_end_to_end_and_its_checkpoint_loads(folders, tmp_path):
    out = tmp_path / "run"
    sets = [
        f"vlm_path={folders['vlm']}", f"vgen_path={folders['wan']}", f"vae_path={folders['wan']}",
        "fusion.max_steps=2", "fusion.batch_size=2", "fusion.optim.warmup_steps=0",
        "data.image_size=16", "data.num_workers=0", "trainer.amp=off", "trainer.device=cpu",
        "trainer.progress=false", "trainer.tensorboard=false", "trainer.checkpoint_every=2",
        "trainer.log_every=1",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [*PAPERZOO, "reproduce", "lightfusion", "--recipe", "paper", "--data",
           str(folders["data"]), "--out", str(out), *[a for s in sets for a in ("--set", s)]]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["extra"]["fusion_layers"] == 2
    ema = out / "official" / "0000002" / "ema.safetensors"
    assert ema.is_file() and (out / "official" / "0000002" / "model.safetensors").is_file()

    from safetensors.torch import load_file

    from paperzoo.core import create_model

    keys = load_file(str(ema))
    assert any(k.startswith("vision_language_model.model.visual.") for k in keys)
    assert (
        "vision_language_model.model.language_model.mm_attn_layers.1.mm_attn.o_gen_proj.weight"
        in keys
    )
    # The understanding branch's output projection stays zero (frozen), the latent one moved.
    o_und = "vision_language_model.model.language_model.mm_attn_layers.0.mm_attn.o_und_proj.weight"
    assert not keys[o_und].any()
    assert keys[o_und.replace("o_und", "o_gen")].any()
    model = create_model("lightfusion_base", vlm_path=str(folders["vlm"]), vgen_path=str(folders["wan"]),
                         dtype="float32", context_len=512, checkpoint_path=ema)  # fmt: skip
    got = model.state_dict()
    from paperzoo.lightfusion.convert import from_official

    ref = from_official(keys, model)
    assert all(torch.equal(got[k], ref[k]) for k in got)
