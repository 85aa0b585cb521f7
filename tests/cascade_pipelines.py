"""Tiny random Stable Cascade stages on disk, from the real configs shrunk; nothing from a hub.

The shapes follow stabilityai/stable-cascade-prior (prior/config.json: 16 latent channels,
two levels, ResBlock + TimestepBlock + AttnBlock, "sca"/"crp" conditioning, CLIP-G text and
pooled inputs, 768-wide image embeddings) and stabilityai/stable-cascade (decoder/config.json:
4 channels, patch 4, EfficientNet and pixel mappers, repeat mappers; the Paella VQ model as
stage A) with every width cut to a few dozen. The schedulers, the resolution multiple
(42.67) and the latent scale (10.67) are the real ones, so a 128x128 image is 3x3 prior latents.
The model cards carry the real license front matter (stable-cascade-nc-community).
"""

from __future__ import annotations

from pathlib import Path

from tests.arch_pipelines import _clip

CARD = """---
license: other
license_name: stable-cascade-nc-community
license_link: LICENSE
{extra}---
# tiny Stable Cascade {stage} (random weights, for tests)
"""


def _prior_unet(text_width: int):
    from diffusers.models import StableCascadeUNet

    return StableCascadeUNet(
        in_channels=16, out_channels=16, timestep_ratio_embedding_dim=64, patch_size=1,
        conditioning_dim=32, block_out_channels=(32, 32), num_attention_heads=(2, 2),
        down_num_layers_per_block=(1, 1), up_num_layers_per_block=(1, 1),
        down_blocks_repeat_mappers=(1, 1), up_blocks_repeat_mappers=(1, 1),
        block_types_per_layer=(("SDCascadeResBlock", "SDCascadeTimestepBlock", "SDCascadeAttnBlock"),) * 2,
        clip_text_in_channels=text_width, clip_text_pooled_in_channels=text_width, clip_image_in_channels=768,
        clip_seq=4, effnet_in_channels=None, pixel_mapper_in_channels=None, kernel_size=3, dropout=(0.1, 0.1),
        self_attn=True, timestep_conditioning_type=("sca", "crp"), switch_level=(False,),
    )


def _decoder_unet(text_width: int):
    from diffusers.models import StableCascadeUNet

    return StableCascadeUNet(
        in_channels=4, out_channels=4, timestep_ratio_embedding_dim=64, patch_size=4,
        conditioning_dim=32, block_out_channels=(16, 32), num_attention_heads=(0, 2),
        down_num_layers_per_block=(1, 1), up_num_layers_per_block=(1, 1),
        down_blocks_repeat_mappers=(1, 1), up_blocks_repeat_mappers=(2, 2),
        block_types_per_layer=(("SDCascadeResBlock", "SDCascadeTimestepBlock"),
                               ("SDCascadeResBlock", "SDCascadeTimestepBlock", "SDCascadeAttnBlock")),
        clip_text_in_channels=None, clip_text_pooled_in_channels=text_width, clip_image_in_channels=None,
        clip_seq=4, effnet_in_channels=16, pixel_mapper_in_channels=3, kernel_size=3, dropout=(0.0, 0.1),
        self_attn=True, timestep_conditioning_type=("sca",), switch_level=None,
    )


def _vqgan():
    from diffusers.pipelines.deprecated.wuerstchen.modeling_paella_vq_model import (
        PaellaVQModel,
    )

    return PaellaVQModel(
        in_channels=3, out_channels=3, up_down_scale_factor=2, levels=2, bottleneck_blocks=1,
        embed_dim=16, latent_channels=4, num_vq_embeddings=64, scale_factor=0.3764,
    )


def build_tiny_cascade(root: Path, *, seed: int = 0, prior_name: str = "stable-cascade-prior",
                       decoder_name: str = "stable-cascade") -> tuple[Path, Path]:
    """Two diffusers folders, as the hub ships them: (prior, decoder)."""
    import torch
    from diffusers import (
        DDPMWuerstchenScheduler,
        StableCascadeDecoderPipeline,
        StableCascadePriorPipeline,
    )

    torch.manual_seed(seed)
    tokenizer, text_encoder = _clip(root / f"{prior_name}-clip-src", 32, projection=True)
    prior = StableCascadePriorPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, prior=_prior_unet(32),
        scheduler=DDPMWuerstchenScheduler(), resolution_multiple=42.67,
    )
    prior_dir = root / prior_name
    prior.save_pretrained(prior_dir, safe_serialization=True)
    (prior_dir / "README.md").write_text(CARD.format(extra="", stage="prior (stage C)"))
    decoder = StableCascadeDecoderPipeline(
        decoder=_decoder_unet(32), tokenizer=tokenizer, text_encoder=text_encoder,
        scheduler=DDPMWuerstchenScheduler(), vqgan=_vqgan(), latent_dim_scale=10.67,
    )
    decoder_dir = root / decoder_name
    decoder.save_pretrained(decoder_dir, safe_serialization=True)
    extra = f"prior:\n- stabilityai/{prior_name}\n"
    (decoder_dir / "README.md").write_text(CARD.format(extra=extra, stage="decoder (stage B)"))
    return prior_dir, decoder_dir


def build_tiny_combined(folder: Path, prior_dir: Path, decoder_dir: Path) -> Path:
    """The two stages saved as one StableCascadeCombinedPipeline folder (prior_prior, prior_text_encoder, ...)."""
    import torch
    from diffusers import StableCascadeCombinedPipeline

    from studio.models.cascade import load_stage

    prior, decoder = load_stage(prior_dir, torch.float32), load_stage(decoder_dir, torch.float32)
    StableCascadeCombinedPipeline(
        tokenizer=decoder.tokenizer, text_encoder=decoder.text_encoder, decoder=decoder.decoder,
        scheduler=decoder.scheduler, vqgan=decoder.vqgan, prior_prior=prior.prior,
        prior_text_encoder=prior.text_encoder, prior_tokenizer=prior.tokenizer, prior_scheduler=prior.scheduler,
    ).save_pretrained(folder, safe_serialization=True)
    return folder
