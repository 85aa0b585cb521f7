"""Phase 3: a short, wall-clock-budgeted fine-tune of the shipped ``studio-tiny`` UNet.

    python -m training.finetune --minutes 22 --out /tmp/studio-tiny-ft

* Starts from the shipped EMA UNet (the fp32 copy in ``--init-fp32`` when it exists,
  else the fp16 weights of ``--model``); the text encoder, VAE, tokenizer and
  scheduler are the shipped ones and stay frozen, so only ``unet/`` changes.
* Plain v-prediction loss, 10% caption dropout, AdamW (fresh optimiser), batch 24,
  LR constant at ``--lr`` for the first ``--const-frac`` of the time budget, then
  cosine-decayed to ``--lr-min`` at the end of the budget.
* EMA 0.999 whose shadow starts at the initial (already EMA) weights; no EMA warm-up.
* Training latents: a fresh bank of ``--bank`` dataset samples (a new seed, not the
  phase-1/2 bank) encoded by the shipped VAE with ``training.train.encode_bank``.
* ``--out`` is a full pipeline folder: a copy of ``--model`` with ``unet/`` replaced
  by the final EMA weights (fp16 like the shipped model unless ``--fp32``).  Every
  ``--ckpt-minutes`` an EMA checkpoint is written the same way to ``OUT-<minutes>``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import time

import numpy as np
import torch

from training import train as tr


def save_unet_pipeline(model_dir: str, out: str, unet, fp16: bool) -> None:
    """Copy the shipped pipeline folder to ``out`` and overwrite only its ``unet/``."""
    tmp = out + ".tmp"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    shutil.copytree(model_dir, tmp)
    u = copy.deepcopy(unet).eval()
    if fp16:
        u = u.to(torch.float16)
    shutil.rmtree(os.path.join(tmp, "unet"))
    u.save_pretrained(os.path.join(tmp, "unet"), safe_serialization=True)
    for root, _, files in os.walk(tmp):
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(tmp, out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="studio/builtin/studio-tiny")
    p.add_argument("--init-fp32", default="/tmp/studio-tiny-fp32",
                   help="fp32 copy of the shipped EMA weights, used as the start when present")
    p.add_argument("--out", default="/tmp/studio-tiny-ft")
    p.add_argument("--minutes", type=float, default=22.0, help="wall-clock budget, bank encoding included")
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=tr.SEED + 3000)
    p.add_argument("--bank", type=int, default=6000)
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--lr-min", type=float, default=1e-5)
    p.add_argument("--const-frac", type=float, default=0.4)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--cond-drop", type=float, default=0.1)
    p.add_argument("--fp32", action="store_true", help="store fp32 weights (default fp16 like the shipped model)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t_start = time.time()
    budget = args.minutes * 60

    init = args.init_fp32 if args.init_fp32 and os.path.isdir(os.path.join(args.init_fp32, "unet")) else args.model
    unet = UNet2DConditionModel.from_pretrained(init, subfolder="unet", local_files_only=True).float()
    te = CLIPTextModel.from_pretrained(args.model, subfolder="text_encoder", local_files_only=True).float().eval()
    te.requires_grad_(False)
    vae = AutoencoderKL.from_pretrained(args.model, subfolder="vae", local_files_only=True).float().eval()
    tok = CLIPTokenizer.from_pretrained(args.model, subfolder="tokenizer", local_files_only=True)
    scheduler = tr.make_scheduler("v_prediction")
    tr.log(f"phase 3: UNet from {init}, {tr.n_params(unet)/1e6:.3f} M params; budget {args.minutes} min")

    bank_lat, bank_ids = tr.encode_bank(vae, np.random.default_rng(args.seed), tok, args.bank,
                                        vae.config.scaling_factor)
    tr.log(f"bank {tuple(bank_lat.shape)} std {bank_lat.std():.3f} in {time.time()-t_start:.0f}s")

    with torch.no_grad():
        empty_cond = te(tr.tokenize(tok, [""])).last_hidden_state[0]
    ac = scheduler.alphas_cumprod.float()
    unet.train().requires_grad_(True)
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    params = list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01, betas=(0.9, 0.99))
    g = torch.Generator().manual_seed(args.seed + 1)
    n = bank_lat.shape[0]
    t_train = time.time()
    train_budget = budget - (t_train - t_start) - 30  # leave time for the final save
    next_ckpt = args.ckpt_minutes * 60
    run_loss, step = None, 0
    info = {"command": "python -m training.finetune " + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
            "args": vars(args), "init": init, "checkpoints": []}

    def lr_now(frac):
        if frac < args.const_frac:
            return args.lr
        q = min(1.0, (frac - args.const_frac) / max(1e-9, 1 - args.const_frac))
        return args.lr_min + (args.lr - args.lr_min) * 0.5 * (1 + math.cos(math.pi * q))

    while True:
        el = time.time() - t_train
        if el >= train_budget:
            break
        lr = lr_now(el / train_budget)
        for gr in opt.param_groups:
            gr["lr"] = lr
        idx = torch.randint(0, n, (args.batch,), generator=g)
        lat = bank_lat[idx]
        ids = bank_ids[idx]
        drop = torch.rand(args.batch, generator=g) < args.cond_drop
        noise = torch.randn(lat.shape, generator=g)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (args.batch,), generator=g)
        a = ac[t].sqrt().view(-1, 1, 1, 1)
        s = (1 - ac[t]).sqrt().view(-1, 1, 1, 1)
        noisy = a * lat + s * noise
        target = a * noise - s * lat
        with torch.no_grad():
            cond = te(ids).last_hidden_state
            cond[drop] = empty_cond
        pred = unet(noisy, t, cond).sample
        loss = ((pred.float() - target) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            for pe, pr in zip(ema.parameters(), unet.parameters()):
                pe.lerp_(pr.detach(), 1 - args.ema)
        step += 1
        run_loss = loss.item() if run_loss is None else 0.98 * run_loss + 0.02 * loss.item()
        if step % 50 == 0:
            el = time.time() - t_train
            tr.log(f"p3 step {step} loss {run_loss:.4f} lr {lr:.2e} ({el/step:.2f}s/step, {el/60:.1f} min)")
        if time.time() - t_start >= next_ckpt:
            mins = int(round(next_ckpt / 60))
            path = f"{args.out}-{mins}"
            save_unet_pipeline(args.model, path, ema, fp16=not args.fp32)
            info["checkpoints"].append({"minutes": mins, "step": step, "path": path})
            tr.log(f"checkpoint at {mins} min (step {step}) -> {path}")
            next_ckpt += args.ckpt_minutes * 60

    save_unet_pipeline(args.model, args.out, ema, fp16=not args.fp32)
    info.update(steps=step, train_time_s=round(time.time() - t_train), total_time_s=round(time.time() - t_start),
                final_loss=run_loss)
    with open(os.path.join(args.out, "finetune_info.json"), "w") as f:
        json.dump(info, f, indent=1)
    tr.log(f"done: {step} steps in {(time.time()-t_start)/60:.1f} min -> {args.out}")


if __name__ == "__main__":
    main()
