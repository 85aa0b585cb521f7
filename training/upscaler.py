"""Train the built-in 2x upscaler ``studio-2x`` from scratch on the CPU.

One command, fixed seeds (reproduces the shipped weights)::

    python -m training.upscaler --out studio/builtin/upscale_models --steps 2400 --threads 1

Data: ``training.dataset.make_sample(rng, scale=k)`` draws a shapes picture at
k = 2 (128x128) or k = 4 (256x256), sharp at that resolution. The input is the
same render shrunk 2x by box filtering (averaging each 2x2 block) and rounded
to 8 bits, as a 64x64 (or 128x128) image is; the target is the render. Each
step takes a random 48x48 input crop from each of 16 fresh samples.

Loss L1 on [0, 1] pixels, Adam, learning rate 2e-3 with 100 warm-up steps and
cosine decay. Evaluation: PSNR against the true render on held-out pictures
(another seed, never seen in training), for PIL's bicubic and Lanczos and for
the network after its fp16 round trip, at 64->128 and 128->256.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from studio.upscale.net import StudioSR
from training.dataset import make_sample

TRAIN_SEED = 2024
HELD_OUT_SEED = 77
CROP = 48
BATCH = 16


def pair(rng: np.random.Generator, k: int) -> tuple[Image.Image, Image.Image]:
    """(the input: the render shrunk 2x, the target: the render at 64*k)."""
    hr, _ = make_sample(rng, scale=k)
    lr = hr.resize((hr.width // 2, hr.height // 2), Image.BOX)
    return lr, hr


def to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)


def batch(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    lows, highs = [], []
    for _ in range(BATCH):
        lr, hr = pair(rng, 2 if rng.random() < 0.5 else 4)
        x = int(rng.integers(0, lr.width - CROP + 1))
        y = int(rng.integers(0, lr.height - CROP + 1))
        lows.append(to_tensor(lr)[:, y:y + CROP, x:x + CROP])
        highs.append(to_tensor(hr)[:, 2 * y:2 * (y + CROP), 2 * x:2 * (x + CROP)])
    return torch.stack(lows), torch.stack(highs)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * math.log10(255.0**2 / mse) if mse else float("inf")


def run_net(net: StudioSR, image: Image.Image) -> np.ndarray:
    with torch.inference_mode():
        out = net(to_tensor(image)[None])[0].clamp(0, 1)
    return (out.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


def evaluate(net: StudioSR, count: int) -> dict[str, dict[str, float]]:
    """Mean PSNR (dB) per method at 64->128 and 128->256 on `count` held-out pictures each."""
    table: dict[str, dict[str, float]] = {}
    for k, label in ((2, "64->128"), (4, "128->256")):
        rng = np.random.default_rng(HELD_OUT_SEED + k)
        scores: dict[str, list[float]] = {"bicubic": [], "lanczos": [], "studio-2x": []}
        for _ in range(count):
            lr, hr = pair(rng, k)
            truth = np.asarray(hr)
            scores["bicubic"].append(psnr(np.asarray(lr.resize(hr.size, Image.BICUBIC)), truth))
            scores["lanczos"].append(psnr(np.asarray(lr.resize(hr.size, Image.LANCZOS)), truth))
            scores["studio-2x"].append(psnr(run_net(net, lr), truth))
        table[label] = {name: round(float(np.mean(v)), 2) for name, v in scores.items()}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=2400)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--eval-count", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(TRAIN_SEED)
    rng = np.random.default_rng(TRAIN_SEED)
    net = StudioSR(2, args.channels, args.blocks)
    params = sum(p.numel() for p in net.parameters())
    print(f"studio-2x: {params} parameters", flush=True)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    warm = 100
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        low, high = batch(rng)
        loss = F.l1_loss(net(low), high)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        if step % 100 == 0 or step == 1:
            print(f"step {step}/{args.steps} loss {loss.item():.5f} {time.perf_counter() - started:.0f}s", flush=True)
    seconds = time.perf_counter() - started

    from safetensors.torch import load_file, save_file

    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / "studio-2x.safetensors"
    save_file({k: v.detach().half().contiguous() for k, v in net.state_dict().items()}, str(weights),
              metadata=net.metadata())
    shipped = StudioSR(2, args.channels, args.blocks)
    shipped.load_state_dict({k: v.float() for k, v in load_file(str(weights)).items()})
    shipped.eval()
    table = evaluate(shipped, args.eval_count)
    info = {
        "parameters": params, "steps": args.steps, "batch": BATCH, "crop": CROP,
        "train_seed": TRAIN_SEED, "held_out_seed": HELD_OUT_SEED, "eval_count": args.eval_count,
        "train_seconds": round(seconds), "threads": args.threads,
        "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
        "psnr_db": table,
    }
    (args.out / "studio-2x.train_info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2), flush=True)


if __name__ == "__main__":
    main()
