"""Engine overhead: the same pipeline and recipe, bare diffusers vs studio's service.

Both sides share one loaded pipeline, the same scheduler, seed and thread
count, and both write a PNG; the studio side goes the way `studio generate`
goes (the service records each job in a session, the local engine runs it,
the PNG carries its metadata). They alternate in one process so machine noise
hits both alike. Prints per-round times; the last line ends with the ratio
engine/bare of the median wall time per image (goal: <= 1.03).

    python bench/overhead.py [--rounds 10] [--steps 20] [--model studio-tiny]
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
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides")
    parser.add_argument("--model", default="studio-tiny", help="a model name or path; falls back to a tiny test model")
    args = parser.parse_args()
    # Both sides on the same thread count: the engine sets its worker's threads itself
    # (every core headless) unless OMP_NUM_THREADS says otherwise.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import torch

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
                    width=64, height=64, seed=7, sampler="Euler", device="cpu", dtype="float32")

    def bare(index: int) -> float:
        start = time.perf_counter()
        pipe.scheduler = make_scheduler(recipe.sampler, base_config, recipe.seed)
        with torch.inference_mode():
            image = pipe(prompt=recipe.prompt, num_inference_steps=recipe.steps, guidance_scale=recipe.cfg_scale,
                         width=recipe.width, height=recipe.height,
                         generator=[torch.Generator("cpu").manual_seed(recipe.seed)]).images[0]
        image.save(workdir / f"bare-{index}.png")
        return time.perf_counter() - start

    studio = ThroughStudio(workdir, library, pipe)
    bare_median, engine_median = alternate(bare, lambda index: studio.seconds(recipe), args.rounds)
    studio.studio.shutdown()
    print(f"model {ref.name}, {args.steps} steps, {recipe.size}, {torch.get_num_threads()} threads, {args.rounds} rounds")
    print(f"engine/bare wall time per image: {engine_median / bare_median:.3f}")

if __name__ == "__main__":
    main()
