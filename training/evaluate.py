"""Automatic prompt-adherence scoring for ``studio-tiny`` (and any 64x64 model of its kind).

Scoring an image against ``a {colour} {shape} on a {colour} background``:

* every pixel is classed as its nearest palette colour (Euclidean, sRGB);
* background = the majority class on the outer 2-pixel border;
* object colour = the most frequent class other than the background
  (an object needs at least ``MIN_OBJECT_PIXELS`` pixels, else it is "absent");
* size and position (only for captions that name them): from the bounding box of
  that region - "small" when its longer side is at most 32 px (the data's small
  objects are 18-28 px, large ones 36-46), and the 3x3 grid cell of its centre
  as the data generator defines it (``dataset._position_of``);
* shape = from the largest 4-connected region of the object class: the ratio of
  its area to its bounding box (square ~1.0, circle ~pi/4 ~0.785, triangle ~0.5).
  Thresholds (square >= 0.87 > circle >= 0.64 > triangle) sit between the
  measured ranges on dataset images (triangle 0.50-0.53, circle 0.77-0.79,
  square 1.0) and on their VAE reconstructions (triangle 0.52-0.78, circle
  0.73-0.83, square 0.89-1.0).  On dataset images the scorer is 100% correct
  (``--check-scorer``); on VAE round-trips of them, 100/100/96% - the ceiling
  a perfect UNet could reach through this VAE.

CLI::

    python -m training.evaluate --model studio/builtin/studio-tiny --n 48 --steps 20 --cfg 7 \
        --sampler "DPM++ 2M Karras" --sampler Euler
    python -m training.evaluate --rich ...   # prompts with a size and a position too
"""

from __future__ import annotations

import argparse
import json
import time
from collections import deque

import numpy as np
from PIL import Image

from training import dataset as ds

_PAL = np.array([ds.PALETTE[c] for c in ds.COLOURS], dtype=np.float32)
MIN_OBJECT_PIXELS = 20
SQUARE_MIN_FILL = 0.87
CIRCLE_MIN_FILL = 0.64
SMALL_MAX_SIDE = 32


def palette_classes(img) -> np.ndarray:
    """(H, W) array of palette indices (into ``dataset.COLOURS``)."""
    if isinstance(img, Image.Image):
        img = img.convert("RGB")
        if img.size != (ds.SIZE, ds.SIZE):
            img = img.resize((ds.SIZE, ds.SIZE), Image.BILINEAR)
        a = np.asarray(img, dtype=np.float32)
    else:
        a = np.asarray(img, dtype=np.float32)
    d = ((a[:, :, None, :] - _PAL[None, None]) ** 2).sum(-1)
    return d.argmin(-1)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    best: list[tuple[int, int]] = []
    ys, xs = np.nonzero(mask)
    for y0, x0 in zip(ys.tolist(), xs.tolist()):
        if seen[y0, x0]:
            continue
        comp = []
        q = deque([(y0, x0)])
        seen[y0, x0] = True
        while q:
            y, x = q.popleft()
            comp.append((y, x))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    q.append((ny, nx))
        if len(comp) > len(best):
            best = comp
    out = np.zeros_like(mask, dtype=bool)
    if best:
        yy, xx = zip(*best)
        out[list(yy), list(xx)] = True
    return out


def analyse(img) -> dict:
    """What the scorer sees: background, object colour, shape and fill ratio."""
    cls = palette_classes(img)
    border = np.concatenate([cls[:2].ravel(), cls[-2:].ravel(), cls[:, :2].ravel(), cls[:, -2:].ravel()])
    bg = int(np.bincount(border, minlength=len(_PAL)).argmax())
    counts = np.bincount(cls.ravel(), minlength=len(_PAL))
    counts[bg] = 0
    obj = int(counts.argmax())
    res = {"background": ds.COLOURS[bg], "object_colour": None, "shape": None, "fill": None,
           "size": None, "position": None}
    if counts[obj] < MIN_OBJECT_PIXELS:
        return res
    comp = _largest_component(cls == obj)
    ys, xs = np.nonzero(comp)
    height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    fill = comp.sum() / (height * width)
    shape = "square" if fill >= SQUARE_MIN_FILL else "circle" if fill >= CIRCLE_MIN_FILL else "triangle"
    side = int(max(height, width))
    centre_x, centre_y = (xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2
    res.update(object_colour=ds.COLOURS[obj], shape=shape, fill=round(float(fill), 3),
               size="small" if side <= SMALL_MAX_SIDE else "large",
               position=ds._position_of(centre_x, centre_y, side))
    return res


def score_image(img, caption: str) -> dict:
    """``{"background": bool, "object_colour": bool, "shape": bool}`` for one image, plus
    ``"size"`` and ``"position"`` when the caption names them."""
    obj, shape, bg = ds.parse_caption(caption)
    size, position = ds.parse_attributes(caption)
    a = analyse(img)
    score = {"background": a["background"] == bg, "object_colour": a["object_colour"] == obj,
             "shape": a["shape"] == shape}
    if size is not None:
        score["size"] = a["size"] == size
    if position is not None:
        score["position"] = a["position"] == position
    return score


def fixed_prompts(n: int = 48, seed: int = 0) -> list[str]:
    """``n`` basic-form captions, shapes in turn, colours drawn with a fixed seed."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        obj = ds.COLOURS[int(rng.integers(len(ds.COLOURS)))]
        bg = obj
        while bg == obj:
            bg = ds.COLOURS[int(rng.integers(len(ds.COLOURS)))]
        out.append(ds.basic_caption(obj, ds.SHAPES[i % len(ds.SHAPES)], bg))
    return out


def fixed_rich_prompts(n: int = 48, seed: int = 0) -> list[str]:
    """``n`` captions naming a size and a position as well: shapes, sizes and positions in turn."""
    out = []
    for i, basic in enumerate(fixed_prompts(n, seed + 1000)):
        obj, shape, bg = ds.parse_caption(basic)
        size = list(ds.SIZE_WORDS)[i % 2]
        position = ds.POSITIONS[(i * 4) % len(ds.POSITIONS)]  # 4 is coprime to 9: every cell in turn
        out.append(f"a {size} {obj} {shape} at the {position} on a {bg} background")
    return out


# ----------------------------------------------------------------------------- generation
SAMPLERS = ["DPM++ 2M Karras", "Euler", "Euler a", "DDIM"]


def make_sampler(name: str, config):
    """The scheduler studio itself builds for `name`, so the figures measure what users get."""
    from studio.samplers import SAMPLERS as KNOWN, make_scheduler

    if name not in KNOWN:
        raise ValueError(f"unknown sampler {name!r}; choose from {', '.join(KNOWN)}")
    return make_scheduler(name, config)


def load_pipeline(model: str):
    import torch
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(model, local_files_only=True, use_safetensors=True,
                                                   dtype=torch.float32, safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, prompts, steps, cfg, sampler, seed=0, batch=16):
    import torch

    pipe.scheduler = make_sampler(sampler, pipe.scheduler.config)
    images = []
    for i in range(0, len(prompts), batch):
        chunk = prompts[i:i + batch]
        gens = [torch.Generator("cpu").manual_seed(seed + i + j) for j in range(len(chunk))]
        with torch.inference_mode():
            out = pipe(chunk, num_inference_steps=steps, guidance_scale=cfg, generator=gens,
                       height=64, width=64, output_type="pil")
        images += out.images
    return images


def evaluate(pipe, prompts, steps, cfg, sampler, seed=0):
    imgs = generate(pipe, prompts, steps, cfg, sampler, seed)
    scores = [score_image(im, p) for im, p in zip(imgs, prompts)]
    acc = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
    acc["all_three"] = float(np.mean([s["background"] and s["object_colour"] and s["shape"] for s in scores]))
    return acc, imgs, scores


def time_per_image(pipe, steps, cfg, sampler, reps=5):
    import torch

    pipe.scheduler = make_sampler(sampler, pipe.scheduler.config)
    g = torch.Generator("cpu").manual_seed(0)
    with torch.inference_mode():
        pipe("a red circle on a blue background", num_inference_steps=steps, guidance_scale=cfg,
             generator=g, height=64, width=64)  # warm-up
        t = time.perf_counter()
        for _ in range(reps):
            pipe("a red circle on a blue background", num_inference_steps=steps, guidance_scale=cfg,
                 generator=g, height=64, width=64)
    return (time.perf_counter() - t) / reps


def check_scorer(n: int = 2000, seed: int = 7, rich: bool | None = None) -> float:
    """Scorer accuracy on ground-truth dataset images (every attribute the caption names right)."""
    rng = np.random.default_rng(seed)
    ok = 0
    for _ in range(n):
        img, cap = ds.make_sample(rng, rich=rich)
        ok += all(score_image(img, cap).values())
    return ok / n


def main(argv=None):
    import torch

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="studio/builtin/studio-tiny")
    p.add_argument("--n", type=int, default=48)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=7.0)
    p.add_argument("--sampler", action="append", help=f"repeatable; one of {SAMPLERS}")
    p.add_argument("--seed", type=int, default=0, help="prompt-set and noise seed")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--grid", default=None, help="save a contact sheet of the images here (PNG)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--time", action="store_true", help="also measure seconds per single image")
    p.add_argument("--rich", action="store_true",
                   help="prompts that also name a size and a position (scored as well)")
    p.add_argument("--check-scorer", action="store_true", help="only check the scorer on dataset images")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    if args.check_scorer:
        print(f"scorer accuracy on dataset images: {check_scorer():.4f}; "
              f"on those naming a size and/or position: {check_scorer(rich=True):.4f}")
        return

    pipe = load_pipeline(args.model)
    prompts = (fixed_rich_prompts if args.rich else fixed_prompts)(args.n, args.seed)
    results = {}
    for sampler in args.sampler or ["DPM++ 2M Karras"]:
        t = time.perf_counter()
        acc, imgs, _ = evaluate(pipe, prompts, args.steps, args.cfg, sampler, args.seed)
        el = time.perf_counter() - t
        res = dict(acc, n=args.n, steps=args.steps, cfg=args.cfg, batch_s_per_image=round(el / args.n, 3))
        if args.time:
            res["s_per_image"] = round(time_per_image(pipe, args.steps, args.cfg, sampler), 3)
        results[sampler] = res
        rich = "".join(f"  {k} {acc[k]:.1%}" for k in ("size", "position") if k in acc)
        print(f"{sampler:16s} n={args.n} steps={args.steps} cfg={args.cfg}: background {acc['background']:.1%}  "
              f"object colour {acc['object_colour']:.1%}  shape {acc['shape']:.1%}{rich}  "
              f"all three {acc['all_three']:.1%}"
              + (f"  ({res['s_per_image']:.3f} s/image)" if args.time else ""), flush=True)
        if args.grid:
            cols = 8
            rows = (len(imgs) + cols - 1) // cols
            sheet = Image.new("RGB", (cols * 64, rows * 64))
            for i, im in enumerate(imgs):
                sheet.paste(im, ((i % cols) * 64, (i // cols) * 64))
            sheet.save(args.grid.replace(".png", f"_{sampler.replace(' ', '_').replace('+', 'p')}.png"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
