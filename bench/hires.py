"""Hires-fix overhead: studio's two-pass job vs the same two passes by hand with bare diffusers calls.

The bare side runs the first pass with `output_type="latent"`, interpolates the
latents 2x (bilinear, A1111's "Latent"), and runs an img2img pipeline derived
once with `from_pipe` over them at the hires denoising strength; then decodes
and writes a PNG. The studio side submits one recipe with `hires_scale=2`
through the service (recorded in a session, run by the local engine, PNG with
metadata). Both share one loaded pipeline, the scheduler, seed and thread
count, and alternate in one process so machine noise hits both alike. The last
line ends with the ratio studio/bare of the median wall time (goal: <= 1.05).

    python bench/hires.py [--rounds 8] [--steps 10] [--denoise 0.7] [--model studio-tiny]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--denoise", type=float, default=0.7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides")
    parser.add_argument("--model", default="studio-tiny", help="a model name or path; falls back to a tiny test model")
    args = parser.parse_args()
    # Both sides on the same thread count: the engine sets its worker's threads itself
    # (every core headless) unless OMP_NUM_THREADS says otherwise.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import torch
    import torch.nn.functional as F
    from diffusers import AutoPipelineForImage2Image
    from PIL import Image

    from studio.models import ModelLibrary, ModelNotFound
    from studio.models.loading import load_pipeline
    from studio.recipe import Recipe
    from studio.samplers import make_scheduler
    from bench.sidebyside import ThroughStudio, alternate

    workdir = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    library = ModelLibrary()
    try:
        ref = library.resolve(args.model)
    except ModelNotFound:
        from tests.tiny_pipeline import build_tiny_pipeline

        ref = library.resolve(str(build_tiny_pipeline(workdir / "tiny-sd")))
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(ref, "cpu", "float32")
    pipe.set_progress_bar_config(disable=True)
    base_config = dict(pipe.scheduler.config)
    recipe = Recipe(prompt="a red circle on a blue background", model=str(ref.path), steps=args.steps,
                    width=64, height=64, seed=7, sampler="Euler", device="cpu", dtype="float32",
                    hires_scale=2.0, hires_denoise=args.denoise)
    img2img = AutoPipelineForImage2Image.from_pipe(pipe, dtype=pipe.dtype)
    img2img.set_progress_bar_config(disable=True)
    width, height = recipe.hires_size

    def bare(index: int) -> float:
        start = time.perf_counter()
        scheduler = make_scheduler(recipe.sampler, base_config, recipe.seed)
        pipe.scheduler = img2img.scheduler = scheduler
        generator = [torch.Generator("cpu").manual_seed(recipe.seed)]
        with torch.inference_mode():
            latents = pipe(prompt=recipe.prompt, num_inference_steps=recipe.steps, guidance_scale=recipe.cfg_scale,
                           width=recipe.width, height=recipe.height, generator=generator, output_type="latent").images
            factor = pipe.vae_scale_factor
            latents = F.interpolate(latents, size=(height // factor, width // factor), mode="bilinear", align_corners=False)
            image = img2img(prompt=recipe.prompt, image=latents, strength=recipe.hires_denoise,
                            num_inference_steps=recipe.steps, guidance_scale=recipe.cfg_scale,
                            generator=generator).images[0]
        assert image.size == (width, height), image.size
        image.save(workdir / f"bare-{index}.png")
        return time.perf_counter() - start

    studio = ThroughStudio(workdir, library, pipe)
    bare_median, engine_median = alternate(bare, lambda index: studio.seconds(recipe), args.rounds)
    studio.studio.shutdown()
    print(f"model {ref.name}, {args.steps} steps, {recipe.size}, {torch.get_num_threads()} threads, {args.rounds} rounds")
    import numpy as np

    same = np.array_equal(np.asarray(Image.open(studio.made[-1])), np.asarray(Image.open(workdir / f"bare-{args.rounds - 1}.png")))
    print(f"studio's image is the bare two passes' image, pixel for pixel: {same}")
    print(f"hires fix studio/bare wall time per image: {engine_median / bare_median:.3f}")

if __name__ == "__main__":
    main()
