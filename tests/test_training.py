"""The training script end to end at toy size: it must write a pipeline studio can load."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.mark.slow
def test_training_writes_a_loadable_pipeline(tmp_path):
    from training import train

    out = tmp_path / "toy"
    train.main([
        "--out", str(out), "--vae-steps", "2", "--vae-batch", "2", "--bank", "32",
        "--unet-steps", "3", "--unet-channels", "16", "32", "32", "--batch", "2", "--warmup", "1",
        "--ckpt-every", "0",
    ])
    info = json.loads((out / "train_info.json").read_text())
    assert info["final"] and info["unet_steps_done"] == 3 and info["args"]["min_snr"] == 0.0
    preview = json.loads((out / "preview.json").read_text())
    assert np.array(preview["weights"]).shape == (4, 3) and len(preview["bias"]) == 3
    assert (out / "tokenizer" / "vocab.json").is_file() and (out / "tokenizer" / "merges.txt").is_file()

    import torch

    from studio.samplers import make_scheduler
    from training.evaluate import load_pipeline

    from safetensors import safe_open

    with safe_open(str(out / "unet" / "diffusion_pytorch_model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(k).dtype for k in weights.keys()} == {torch.float16}  # stored fp16
    pipe = load_pipeline(str(out))
    assert pipe.vae.config.scaling_factor == info["scaling_factor"]
    pipe.scheduler = make_scheduler("Euler", pipe.scheduler.config)
    image = pipe("a red circle on a blue background", num_inference_steps=2, height=64, width=64,
                 generator=torch.Generator().manual_seed(0)).images[0]
    assert image.size == (64, 64)
