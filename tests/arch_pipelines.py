"""Tiny random Flux and SD3 pipelines on disk, from the real configs shrunk; nothing from a hub.

The shapes follow black-forest-labs/FLUX.1-{dev,schnell} and stabilityai/stable-diffusion-3.5
configs with every width cut to a few dozen: the same classes, the same scheduler settings
(shift, dynamic shifting), the same VAE scaling and shift factors.
"""

from __future__ import annotations

from pathlib import Path

from tests.tiny_pipeline import _write_vocab


def _clip(folder: Path, hidden: int, *, projection: bool):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    tokenizer = CLIPTokenizer(*_write_vocab(folder), model_max_length=16)
    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=16, projection_dim=hidden,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)
    return tokenizer, model


def tiny_t5_tokenizer():
    """A T5 tokenizer built with the `tokenizers` library: a Unigram model over letters and a few words, as T5's is."""
    import string

    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    words = ["<pad>", "</s>", "<unk>", *string.ascii_lowercase, "red", "blue", "circle", "square", "a", "cat"]
    tok = Tokenizer(models.Unigram([(word, -float(i)) for i, word in enumerate(words)], unk_id=2))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                           extra_ids=0, model_max_length=32)


def _t5(vocab_size: int, width: int):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(
        vocab_size=vocab_size, d_model=width, d_ff=2 * width, d_kv=8, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    ))


def _vae(latent_channels: int, scaling: float, shift: float):
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=latent_channels, norm_num_groups=8, sample_size=32,
        scaling_factor=scaling, shift_factor=shift, use_quant_conv=False, use_post_quant_conv=False,
    )


def build_tiny_flux(folder: Path, *, dev: bool = True, seed: int = 0) -> Path:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    torch.manual_seed(seed)
    tokenizer, text_encoder = _clip(folder.parent / f"{folder.name}-clip-src", 32, projection=False)
    tokenizer_2 = tiny_t5_tokenizer()
    text_encoder_2 = _t5(len(tokenizer_2), 32)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=dev,
        axes_dims_rope=(4, 6, 6),
    )
    scheduler = FlowMatchEulerDiscreteScheduler(  # FLUX.1's scheduler_config.json
        num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
        base_image_seq_len=256, max_image_seq_len=4096,
    )
    pipe = FluxPipeline(
        scheduler=scheduler, vae=_vae(4, 0.3611, 0.1159), text_encoder=text_encoder, tokenizer=tokenizer,
        text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2, transformer=transformer,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def build_tiny_sd3(folder: Path, *, seed: int = 0, t5: bool = False, as_released: bool = False) -> Path:
    """SD3.5 without its T5 encoder (text_encoder_3 = None), as diffusers allows; with a tiny one if `t5`.

    `as_released`: CLIP-L and CLIP-G of different widths and CLIP-L's projection the identity,
    as in Stability's single files (diffusers tells the two CLIPs apart by width).
    """
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    torch.manual_seed(seed)
    tokenizer, text_encoder = _clip(folder.parent / f"{folder.name}-clip-src", 16, projection=True)
    width_2, joint = (24, 48) if as_released else (16, 32)
    tokenizer_2, text_encoder_2 = _clip(folder.parent / f"{folder.name}-clip2-src", width_2, projection=True)
    if as_released:
        with torch.no_grad():
            text_encoder.text_projection.weight.copy_(torch.eye(16))
    transformer = SD3Transformer2DModel(
        sample_size=32, patch_size=1, in_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=4,
        joint_attention_dim=joint, caption_projection_dim=32, pooled_projection_dim=16 + width_2, out_channels=4,
        pos_embed_max_size=32,
    )
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0),
        vae=_vae(4, 1.5305, 0.0609), text_encoder=text_encoder, tokenizer=tokenizer,
        text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2,
        text_encoder_3=_t5(len(tiny_t5_tokenizer()), joint) if t5 else None, tokenizer_3=tiny_t5_tokenizer() if t5 else None,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
