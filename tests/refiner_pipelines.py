"""A tiny random SDXL refiner on disk, from the real refiner config shrunk; nothing from a hub.

stabilityai/stable-diffusion-xl-refiner-1.0 has only the second text encoder (OpenCLIP bigG,
`text_encoder: [null, null]`), a UNet that cross-attends to it alone and takes the aesthetic
score among its time ids (`requires_aesthetics_score: true`, 5 time ids: 5 x 256 + 1280 = 2560
inputs to the added embedding), and the base's VAE. Here every width is cut as in
`build_tiny_sdxl_pipeline` (text_encoder_2 32 wide, time ids 8 wide), so the two pair up.
"""

from __future__ import annotations

from pathlib import Path


def build_tiny_refiner(folder: Path, base: Path, *, seed: int = 1, share: bool = True) -> Path:
    """A refiner for the tiny SDXL `base`; `share`: its text_encoder_2 and VAE are the base's, byte for byte."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLImg2ImgPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(seed)
    text_encoder_2 = CLIPTextModelWithProjection.from_pretrained(base / "text_encoder_2")
    vae = AutoencoderKL.from_pretrained(base / "vae")
    if not share:  # the same shapes, other weights: nothing may be shared
        text_encoder_2 = CLIPTextModelWithProjection(text_encoder_2.config)
        vae = AutoencoderKL.from_config(vae.config)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8, use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=8 * 5 + 32,
    )
    pipe = StableDiffusionXLImg2ImgPipeline(
        vae=vae, text_encoder=None, tokenizer=None, text_encoder_2=text_encoder_2,
        tokenizer_2=CLIPTokenizer.from_pretrained(base / "tokenizer_2"), unet=unet,
        scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
        requires_aesthetics_score=True, force_zeros_for_empty_prompt=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
