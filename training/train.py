"""Train the built-in ``studio-tiny`` model from scratch on the CPU.

One command, fixed seeds (this reproduces the shipped weights; about 90 min on 2 idle cores)::

    python -m training.train --out studio/builtin/studio-tiny --threads 2

Stages
------
1. Tokenizer: a CLIP-style byte-level BPE tokenizer whose vocabulary is the 256
   byte symbols (with and without the ``</w>`` end-of-word mark) plus merges
   added until every dataset word is a single token.
2. VAE (``AutoencoderKL``, 64x64x3 <-> 16x16x4) trained on fresh synthetic
   images every step with L1 + MSE reconstruction and a very small KL weight.
   ``scaling_factor`` = 1 / std of the latents; the 4x3 live-preview map is
   fitted by least squares on the scaled latents.
3. A bank of encoded training latents (posterior means) with their captions.
4. UNet (``UNet2DConditionModel``) + CLIP text encoder trained jointly with
   v-prediction and the plain (unweighted) v-loss, 10% caption dropout (empty
   prompt, for classifier-free guidance), AdamW with warm-up + cosine decay and
   an EMA (0.999) of both networks.  The EMA weights are what is saved.
   ``--min-snr`` weights the loss by min-SNR-gamma instead (version 1 of the
   model trained its first phase that way; the model card says why the
   default changed, and this file's git history has that two-phase run).
5. ``StableDiffusionPipeline.save_pretrained(..., safe_serialization=True)``,
   fp16 weights by default, plus ``preview.json`` and ``train_info.json``.

``--threads`` defaults to 1: on a 2-core machine shared with other work, 2 torch
threads were measured over 10x slower per step than 1.  With the machine to
itself, 2 threads ran a UNet step in 0.43 s against 0.71 s for 1.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import random
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from training import dataset as ds

SEED = 1234
MAX_TOKENS = 16


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


# ----------------------------------------------------------------------------- tokenizer
def _bytes_to_unicode() -> list[str]:
    """The 256 printable stand-ins GPT-2/CLIP byte-level BPE uses for raw bytes."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = []
    extra = 0
    for b in range(256):
        if b in keep:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def _bpe(word_syms: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Plain BPE: repeatedly merge the adjacent pair with the lowest rank."""
    syms = list(word_syms)
    while len(syms) > 1:
        pairs = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(syms, syms[1:]))]
        r, i = min(pairs)
        if r == 1 << 30:
            break
        a, b = syms[i], syms[i + 1]
        out, j = [], 0
        while j < len(syms):
            if j < len(syms) - 1 and syms[j] == a and syms[j + 1] == b:
                out.append(a + b)
                j += 2
            else:
                out.append(syms[j])
                j += 1
        syms = out
    return syms


def build_tokenizer_files(words: list[str]) -> tuple[dict[str, int], list[str]]:
    """vocab.json contents and merges.txt lines for the given word list.

    Base symbols are CLIP's 256 byte-level symbols, with and without ``</w>``;
    merges are added until every word BPE-encodes to a single token.
    """
    byte_syms = _bytes_to_unicode()
    vocab: list[str] = list(byte_syms) + [s + "</w>" for s in byte_syms]
    seen = set(vocab)
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for _ in range(100):
        changed = False
        for w in words:
            syms = _bpe(list(w[:-1]) + [w[-1] + "</w>"], ranks)
            # join what is left, left to right; new merges rank after all earlier ones
            while len(syms) > 1:
                pair = (syms[0], syms[1])
                if pair not in ranks:
                    ranks[pair] = len(merges)
                    merges.append(pair)
                merged = syms[0] + syms[1]
                if merged not in seen:
                    vocab.append(merged)
                    seen.add(merged)
                syms = [merged] + syms[2:]
                changed = True
        if not changed:
            break
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab)}, [f"{a} {b}" for a, b in merges]


def build_tokenizer(tmpdir: str):
    from transformers import CLIPTokenizer

    vocab, merges = build_tokenizer_files(ds.VOCAB_WORDS)
    tok = CLIPTokenizer(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges],
                        model_max_length=MAX_TOKENS)
    # round-trip through disk so training uses exactly what ships
    tok.save_pretrained(tmpdir)
    tok = CLIPTokenizer.from_pretrained(tmpdir, local_files_only=True)
    # sanity: every caption word is one token
    for w in ds.VOCAB_WORDS:
        ids = tok(w, add_special_tokens=False).input_ids
        assert len(ids) == 1, (w, ids, tok.convert_ids_to_tokens(ids))
    return tok


def tokenize(tok, captions: list[str]) -> torch.Tensor:
    return tok(captions, padding="max_length", max_length=tok.model_max_length,
               truncation=True, return_tensors="pt").input_ids


# ----------------------------------------------------------------------------- models
def make_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 64), layers_per_block=1, norm_num_groups=8,
    )


def make_text_encoder(tok):
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(
        vocab_size=len(tok), hidden_size=128, intermediate_size=512,
        num_hidden_layers=3, num_attention_heads=4, max_position_embeddings=MAX_TOKENS,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        projection_dim=128,
    )
    return CLIPTextModel(cfg)


def make_unet(channels=(48, 96, 192)):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=tuple(channels), layers_per_block=1, cross_attention_dim=128,
        attention_head_dim=4, norm_num_groups=16,
    )


def make_scheduler(prediction_type: str):
    """A standard DDPM 'linear' beta schedule (0.0001..0.02).

    Its terminal signal-to-noise ratio is ~4e-5 (SD's 'scaled_linear' leaves
    ~5e-3), so a 16x16 latent's mean colour no longer leaks through at t=999 and
    sampling from pure noise matches training.
    """
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
        prediction_type=prediction_type, timestep_spacing="trailing", steps_offset=1,
    )


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def lr_at(step: int, total: int, base: float, warmup: int, floor: float = 0.1) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


# ----------------------------------------------------------------------------- VAE
def train_vae(args, rng):
    vae = make_vae()
    log(f"VAE params {n_params(vae)/1e6:.3f} M")
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    vae.train()
    t0 = time.time()
    for step in range(args.vae_steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.vae_steps, args.vae_lr, 50)
        x, _ = ds.make_batch(rng, args.vae_batch)
        x = torch.from_numpy(x)
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample()).sample
        l1 = (rec - x).abs().mean()
        mse = F.mse_loss(rec, x)
        kl = post.kl().mean() / (16 * 16 * 4)
        loss = l1 + mse + args.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == args.vae_steps - 1:
            with torch.no_grad():
                acc = palette_accuracy(((rec.detach().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy(),
                                       ((x + 1) / 2).permute(0, 2, 3, 1).numpy())
            log(f"vae {step}/{args.vae_steps} l1 {l1.item():.4f} mse {mse.item():.5f} kl {kl.item():.3f} pal {acc:.4f} "
                f"({(time.time()-t0)/(step+1):.2f}s/step)")
    vae.eval()
    return vae, time.time() - t0


@torch.no_grad()
def palette_accuracy(rgb01: np.ndarray, ref01: np.ndarray) -> float:
    """Share of pixels whose nearest palette colour matches the reference's."""
    pal = np.array(list(ds.PALETTE.values()), dtype=np.float32) / 255.0

    def cls(a):
        a = a.reshape(-1, 3)
        return ((a[:, None, :] - pal[None]) ** 2).sum(-1).argmin(1)

    return float((cls(rgb01) == cls(ref01)).mean())


@torch.no_grad()
def vae_stats(vae, rng, n=512):
    x, _ = ds.make_batch(rng, n)
    x = torch.from_numpy(x)
    lat = torch.cat([vae.encode(x[i:i + 128]).latent_dist.mean for i in range(0, n, 128)])
    std = lat.std().item()
    mean = lat.mean().item()
    rec = torch.cat([vae.decode(lat[i:i + 128]).sample for i in range(0, n, 128)]).clamp(-1, 1)
    rgb = ((rec + 1) / 2).permute(0, 2, 3, 1).numpy()
    ref = ((x + 1) / 2).permute(0, 2, 3, 1).numpy()
    acc = palette_accuracy(rgb, ref)
    mae = float(np.abs(rgb - ref).mean() * 255)
    return dict(latent_mean=mean, latent_std=std, recon_palette_pixel_acc=acc, recon_mae_8bit=mae), lat, x


def fit_preview(lat_scaled: torch.Tensor, x: torch.Tensor) -> dict:
    """Least-squares 4->3 linear map (+bias) from scaled latents to RGB in [0, 1] at 16x16."""
    rgb = F.avg_pool2d((x + 1) / 2, 4)  # (n,3,16,16)
    A = lat_scaled.permute(0, 2, 3, 1).reshape(-1, 4).double()
    A = torch.cat([A, torch.ones(A.shape[0], 1, dtype=A.dtype)], 1)
    B = rgb.permute(0, 2, 3, 1).reshape(-1, 3).double()
    sol = torch.linalg.lstsq(A, B).solution  # (5,3)
    pred = (A @ sol).clamp(0, 1)
    rmse = float(((pred - B) ** 2).mean().sqrt())
    return {
        "format": "rgb = clamp(latent @ weights + bias, 0, 1); latent = 4 channels as the UNet sees them "
                  "(VAE mean * scaling_factor), one RGB pixel per latent pixel (1/4 resolution)",
        "weights": [[round(float(v), 6) for v in row] for row in sol[:4]],
        "bias": [round(float(v), 6) for v in sol[4]],
        "fit_rmse": round(rmse, 4),
    }


# ----------------------------------------------------------------------------- UNet
@torch.no_grad()
def encode_bank(vae, rng, tok, n, scaling):
    lats, ids = [], []
    for i in range(0, n, 256):
        x, caps = ds.make_batch(rng, min(256, n - i))
        lats.append(vae.encode(torch.from_numpy(x)).latent_dist.mean * scaling)
        ids.append(tokenize(tok, caps))
    return torch.cat(lats), torch.cat(ids)


class EMA:
    def __init__(self, modules, decay):
        self.decay = decay
        self.shadow = [copy.deepcopy(m).eval().requires_grad_(False) for m in modules]
        self.modules = modules

    @torch.no_grad()
    def update(self, step):
        d = min(self.decay, (1 + step) / (10 + step))
        for sm, m in zip(self.shadow, self.modules):
            for ps, p in zip(sm.parameters(), m.parameters()):
                ps.lerp_(p.detach(), 1 - d)
            for bs, b in zip(sm.buffers(), m.buffers()):
                bs.copy_(b)


def fix_scheduler_config(out):
    path = os.path.join(out, "scheduler", "scheduler_config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg.update(clip_sample=False, set_alpha_to_one=False, skip_prk_steps=True)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)


def save_pipeline(out, vae, text_encoder, tok, unet, scheduler, fp16: bool):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        vae=copy.deepcopy(vae), text_encoder=copy.deepcopy(text_encoder), tokenizer=tok,
        unet=copy.deepcopy(unet), scheduler=scheduler, safety_checker=None,
        feature_extractor=None, image_encoder=None, requires_safety_checker=False,
    )
    if fp16:
        pipe.to(torch.float16)
    os.makedirs(out, exist_ok=True)
    pipe.save_pretrained(out, safe_serialization=True)
    # DDIM/PNDM read these from a shared config; latents are not in [-1, 1], so no clipping
    # (the same keys Stable Diffusion 1.x ships).  Extra keys survive `from_config`.
    fix_scheduler_config(out)
    # classic slow-tokenizer files too (transformers 5 writes only tokenizer.json)
    vocab, merges = build_tokenizer_files(ds.VOCAB_WORDS)
    with open(os.path.join(out, "tokenizer", "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out, "tokenizer", "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    for root, _, files in os.walk(out):
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)


def train_unet(args, tok, bank_lat, bank_ids, scheduler, on_checkpoint):
    """UNet + text encoder from scratch: ``--unet-steps`` of warm-up + cosine decay, the plain
    v-loss (or min-SNR-``--min-snr`` weighting).  Returns the EMA networks, the seconds taken
    and the raw (non-EMA) networks."""
    total, lr, min_snr, warmup = args.unet_steps, args.lr, args.min_snr, args.warmup
    torch.manual_seed(args.seed + 2)
    unet = make_unet(args.unet_channels)
    te = make_text_encoder(tok)
    log(f"UNet params {n_params(unet)/1e6:.3f} M, text encoder {n_params(te)/1e6:.3f} M, "
        f"{total} steps, lr {lr}, min-SNR {min_snr}")
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, betas=(0.9, 0.99))
    ema = EMA([unet, te], args.ema)
    empty_ids = tokenize(tok, [""])[0]
    ac = scheduler.alphas_cumprod.float()
    snr_all = ac / (1 - ac)
    g = torch.Generator().manual_seed(args.seed + 3)
    unet.train(); te.train()
    t0 = time.time()
    n = bank_lat.shape[0]
    run_loss = None
    for step in range(total):
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step, total, lr, warmup)
        idx = torch.randint(0, n, (args.batch,), generator=g)
        lat = bank_lat[idx]
        ids = bank_ids[idx].clone()
        drop = torch.rand(args.batch, generator=g) < args.cond_drop
        ids[drop] = empty_ids
        noise = torch.randn(lat.shape, generator=g)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (args.batch,), generator=g)
        a = ac[t].sqrt().view(-1, 1, 1, 1)
        s = (1 - ac[t]).sqrt().view(-1, 1, 1, 1)
        noisy = a * lat + s * noise
        if args.prediction == "v_prediction":
            target = a * noise - s * lat
        else:
            target = noise
        cond = te(ids).last_hidden_state
        pred = unet(noisy, t, cond).sample
        per = ((pred.float() - target) ** 2).mean(dim=(1, 2, 3))
        snr = snr_all[t]
        if min_snr > 0:
            w = torch.clamp(snr, max=min_snr)
            w = w / (snr + 1) if args.prediction == "v_prediction" else w / snr
        else:
            w = torch.ones_like(snr)
        loss = (w * per).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.update(step)
        run_loss = loss.item() if run_loss is None else 0.98 * run_loss + 0.02 * loss.item()
        if step % 50 == 0 or step == total - 1:
            el = time.time() - t0
            log(f"unet {step}/{total} loss {run_loss:.4f} lr {opt.param_groups[0]['lr']:.2e} "
                f"({el/(step+1):.2f}s/step, eta {el/(step+1)*(total-step-1)/60:.1f} min)")
        if args.ckpt_every and (step + 1) % args.ckpt_every == 0 and step + 1 < total:
            on_checkpoint(ema.shadow[0], ema.shadow[1], step + 1, time.time() - t0)
    return ema.shadow[0], ema.shadow[1], time.time() - t0, (unet.eval(), te.eval())


# ----------------------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="studio/builtin/studio-tiny")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--vae-steps", type=int, default=1500)
    p.add_argument("--vae-batch", type=int, default=8)
    p.add_argument("--vae-lr", type=float, default=1e-3)
    p.add_argument("--kl-weight", type=float, default=1e-4, help="per-latent-element KL weight")
    p.add_argument("--bank", type=int, default=30000, help="encoded training samples for the UNet")
    p.add_argument("--unet-steps", type=int, default=10000)
    p.add_argument("--unet-channels", type=int, nargs=3, default=[48, 96, 192])
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--cond-drop", type=float, default=0.1)
    p.add_argument("--prediction", choices=["v_prediction", "epsilon"], default="v_prediction")
    p.add_argument("--min-snr", type=float, default=0.0, help="min-SNR-gamma weighting; 0 (default) disables")
    p.add_argument("--ckpt-every", type=int, default=500)
    p.add_argument("--fp32", action="store_true", help="store fp32 weights (default fp16)")
    p.add_argument("--also-fp32", default=None, help="additionally save an fp32 copy here")
    p.add_argument("--also-raw", default=None, help="additionally save the non-EMA weights (fp32) here")
    p.add_argument("--ckpt-copy", default=None, help="also keep every checkpoint in DIR/step_N")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads; 1 measured far faster than 2 on a shared 2-core machine")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    t_start = time.time()
    info = {"command": "python -m training.train " + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
            "args": vars(args), "torch": torch.__version__, "threads": args.threads,
            "machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu_model"] = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except Exception:
        pass

    tmp = tempfile.mkdtemp(prefix="studio_tok_")
    tok = build_tokenizer(tmp)
    log(f"tokenizer: {len(tok)} tokens; example {tok.tokenize('a red circle on a blue background')}")

    rng_vae = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed + 1)
    vae, vae_time = train_vae(args, rng_vae)
    stats, lat, x = vae_stats(vae, np.random.default_rng(args.seed + 100))
    vae.register_to_config(scaling_factor=round(1.0 / stats["latent_std"], 5))
    log(f"VAE stats {stats}; scaling_factor {vae.config.scaling_factor}")
    preview = fit_preview(lat * vae.config.scaling_factor, x)
    log(f"preview fit rmse {preview['fit_rmse']}")
    info.update(vae_time_s=round(vae_time), vae_stats=stats, scaling_factor=vae.config.scaling_factor,
                vae_params=n_params(vae))

    t_b = time.time()
    bank_lat, bank_ids = encode_bank(vae, np.random.default_rng(args.seed + 200), tok, args.bank,
                                     vae.config.scaling_factor)
    info["bank_time_s"] = round(time.time() - t_b)
    log(f"bank {tuple(bank_lat.shape)} std {bank_lat.std():.3f} in {info['bank_time_s']}s")

    scheduler = make_scheduler(args.prediction)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "preview.json"), "w") as f:
        json.dump(preview, f, indent=1)

    def write_info(step, unet_time, final):
        info.update(unet_steps_done=step, unet_time_s=round(unet_time), final=final,
                    total_time_s=round(time.time() - t_start))
        with open(os.path.join(args.out, "train_info.json"), "w") as f:
            json.dump(info, f, indent=1)

    def on_ckpt(unet_ema, te_ema, step, unet_time):
        save_pipeline(args.out, vae, te_ema, tok, unet_ema, scheduler, fp16=not args.fp32)
        write_info(step, unet_time, False)
        if args.ckpt_copy:
            save_pipeline(os.path.join(args.ckpt_copy, f"step_{step}"), vae, te_ema, tok, unet_ema, scheduler,
                          fp16=False)
        log(f"checkpoint at step {step} saved to {args.out}")

    unet, te, unet_time, (raw_unet, raw_te) = train_unet(args, tok, bank_lat, bank_ids, scheduler, on_ckpt)
    info.update(unet_params=n_params(unet), text_encoder_params=n_params(te))
    save_pipeline(args.out, vae, te, tok, unet, scheduler, fp16=not args.fp32)
    if args.also_fp32:
        save_pipeline(args.also_fp32, vae, te, tok, unet, scheduler, fp16=False)
    if args.also_raw:
        save_pipeline(args.also_raw, vae, raw_te, tok, raw_unet, scheduler, fp16=False)
    write_info(args.unet_steps, unet_time, True)
    log(f"done in {(time.time()-t_start)/60:.1f} min -> {args.out}")


if __name__ == "__main__":
    main()
