"""Two-model recipes on tiny random models: Stable Cascade (prior + decoder) and the SDXL refiner.

    python -m bench.two_stage [--rounds 3] [--threads 2]

Cascade: one job through the engine with previews off, with previews at every step of both
stages (interval 0, the worst case), and the same two stages called bare; the preview cost
is the time spent projecting (counted inside the step wrapper) over the job's time, and the
one-off fit of both projections is timed apart. Refiner: the SDXL base alone against base
plus refiner at the same steps. The rounds alternate so machine noise hits every side alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    import studio.engine.cascade as cascade
    from studio.engine import LocalEngine
    from studio.engine import events as ev
    from studio.models.library import ModelLibrary
    from studio.recipe import Recipe
    from tests.cascade_pipelines import build_tiny_cascade
    from tests.models_fixtures import build_tiny_sdxl_pipeline
    from tests.refiner_pipelines import build_tiny_refiner
    from tests.test_engine import Recorder, plain_save

    wrappers: list = []
    init = cascade._Previewing.__init__

    def counting(self, *a, **k):
        init(self, *a, **k)
        wrappers.append(self)

    cascade._Previewing.__init__ = counting
    work = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    prior_dir, decoder_dir = build_tiny_cascade(work / "models")
    base = build_tiny_sdxl_pipeline(work / "models" / "sdxl-base")
    build_tiny_refiner(work / "models" / "sdxl-refiner", base)
    library = ModelLibrary([work / "models"], use_hf_cache=False)
    steps = args.steps

    def engine(previews: bool):
        rec = Recorder()
        return LocalEngine(rec, library=library, saver=plain_save, previews=previews, preview_interval=0.0,
                           reserve_core=False), rec

    def timed(eng, rec, recipe) -> float:
        started = time.perf_counter()
        rec.until(ev.Finished, eng.submit(recipe, work / "out"), timeout=600)
        return time.perf_counter() - started

    c = Recipe(prompt="a red circle", model="stable-cascade", width=128, height=128, steps=steps, cfg_scale=0.0,
               prior_steps=steps, prior_cfg_scale=4.0, seed=1)
    off, rec_off = engine(False)
    on, rec_on = engine(True)
    timed(off, rec_off, c), timed(on, rec_on, c)  # loads and the projections' one-off fit
    loaded = next(iter(on._cache._entries.values()))
    prior = next(v for k, v in loaded.extras.items() if isinstance(k, tuple) and k[0] == "cascade-prior")
    for key in ("cascade-prior-projection", "cascade-decoder-projection"):
        loaded.extras.pop(key)
    t = time.perf_counter()
    cascade._prior_projection(loaded, prior, loaded.pipe)
    fit_prior = time.perf_counter() - t
    t = time.perf_counter()
    cascade._decoder_projection(loaded, loaded.pipe)
    fit_decoder = time.perf_counter() - t

    def bare() -> float:
        g = [torch.Generator().manual_seed(1)]
        t0 = time.perf_counter()
        with torch.inference_mode():
            emb = prior(prompt="a red circle", width=128, height=128, num_inference_steps=steps, guidance_scale=4.0,
                        generator=g).image_embeddings
            loaded.pipe(image_embeddings=emb, prompt="a red circle", num_inference_steps=steps, guidance_scale=0.0,
                        generator=g)
        return time.perf_counter() - t0

    sides: dict[str, list[float]] = {"bare": [], "studio, previews off": [], "studio, previews every step": []}
    share: list[float] = []
    for _ in range(args.rounds):
        sides["bare"].append(bare())
        sides["studio, previews off"].append(timed(off, rec_off, c))
        wrappers.clear()
        seconds = timed(on, rec_on, c)
        sides["studio, previews every step"].append(seconds)
        share.append(sum(w.seconds for w in wrappers) / seconds)
    print(f"Stable Cascade, tiny, 128x128, {steps}+{steps} steps, {args.threads} threads, {args.rounds} rounds")
    for name, values in sides.items():
        print(f"  {name:30s} median {statistics.median(values):.3f} s  ({', '.join(f'{v:.3f}' for v in values)})")
    print(f"  preview projection share of the job: median {statistics.median(share):.2%}")
    print(f"  one-off projection fits: prior {fit_prior:.3f} s (a 2-step decoder run), decoder {fit_decoder:.3f} s")
    off.shutdown(), on.shutdown()

    r_eng, r_rec = engine(False)
    alone = Recipe(prompt="a red circle", model="sdxl-base", width=64, height=64, steps=steps, seed=1, sampler="Euler")
    refined = alone.replace(refiner="sdxl-refiner", refiner_switch=0.8)
    timed(r_eng, r_rec, alone), timed(r_eng, r_rec, refined)
    rows: dict[str, list[float]] = {"base alone": [], "base + refiner at 0.8": []}
    for _ in range(args.rounds):
        rows["base alone"].append(timed(r_eng, r_rec, alone))
        rows["base + refiner at 0.8"].append(timed(r_eng, r_rec, refined))
    print(f"SDXL refiner, tiny, 64x64, {steps} steps")
    for name, values in rows.items():
        print(f"  {name:30s} median {statistics.median(values):.3f} s")
    r_eng.shutdown()


if __name__ == "__main__":
    main()
