"""Preview cost: the share of sampling time spent drawing live previews, per architecture and preview kind.

Tiny random SD1, SDXL, SD3 and Flux pipelines (the test ones, built here from
shrunk real configs) run through the local engine at the latent size asked
for, once per preview kind (none, latent, x0, taesd), in one process. The
TAESD decoder is full-size (madebyollin's 64 channels, 3-3-3-1 blocks) with
random weights: its cost is a real TAESD's. For each run the engine's
preview calls are timed, so the ratio printed is

    preview seconds / sampling seconds (Started to Finished)   goal: <= 0.05

beside how many previews were drawn and the run's time over the no-preview
run's (noisier: it includes machine noise). Previews are asked for as the TUI
asks (at most one per 0.2 s, and within studio's 5% budget).

    python bench/previews.py [--latent 16 128] [--steps 20] [--threads 2] [--arch sd1 sdxl sd3 flux]
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

KINDS = ("none", "latent", "x0", "taesd")


def build(arch: str, folder: Path) -> Path:
    from tests.arch_pipelines import build_tiny_flux, build_tiny_sd3
    from tests.models_fixtures import build_tiny_sdxl_pipeline
    from tests.tiny_pipeline import build_tiny_pipeline

    builders = {"sd1": build_tiny_pipeline, "sdxl": build_tiny_sdxl_pipeline, "sd3": build_tiny_sd3,
                "flux": lambda path: build_tiny_flux(path, dev=False)}
    return builders[arch](folder / arch)


def full_size_taesd(folder: Path, channels: int) -> None:
    """A real-sized TAESD decoder, random weights, in the decoder-only file layout."""
    import torch
    from diffusers import AutoencoderTiny
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = AutoencoderTiny(latent_channels=channels)
    state = {}
    for key, tensor in model.decoder.state_dict().items():
        index, rest = key.removeprefix("layers.").split(".", 1)
        state[f"{int(index) + 1}.{rest}"] = tensor.contiguous()
    (folder / "models" / "vae_approx").mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "models" / "vae_approx" / f"bench{channels}_decoder.safetensors"))


class Timed:
    """Wraps the engine's one preview call: seconds spent and previews drawn since `reset`."""

    def __init__(self) -> None:
        from studio.engine import preview

        self.module, self.real = preview, preview.preview_image
        self.seconds, self.drawn = 0.0, 0
        preview.preview_image = self

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        image = self.real(*args, **kwargs)
        self.seconds += time.perf_counter() - start
        self.drawn += image is not None
        return image

    def reset(self) -> None:
        self.seconds, self.drawn = 0.0, 0


def run(engine, inbox: queue.Queue, timed: Timed, model: Path, size: int, steps: int) -> tuple[float, float, int]:
    """(sampling seconds, preview seconds, previews drawn) for one job on `engine`."""
    from studio.engine import events as ev
    from studio.recipe import Recipe

    cfg = 0.0 if "flux" in model.name else 5.0
    recipe = Recipe(prompt="a red circle", model=str(model), steps=steps, width=size, height=size, seed=3,
                    sampler="Euler", cfg_scale=cfg, device="cpu", dtype="float32")
    timed.reset()
    job = engine.submit(recipe, Path(tempfile.gettempdir()))
    started = None
    while True:
        event = inbox.get(timeout=1800)
        if isinstance(event, ev.Started) and event.job_id == job:
            started = time.perf_counter()
        if isinstance(event, ev.Failed) and event.job_id == job:
            raise SystemExit(f"{model.name}: {event.reason}")
        if isinstance(event, ev.Finished) and event.job_id == job:
            return time.perf_counter() - started, timed.seconds, timed.drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latent", type=int, nargs="+", default=[16, 128], help="latent sides to run at")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1, help="runs per cell; the median is printed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--arch", nargs="+", default=["sd1", "sdxl", "sd3", "flux"])
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import torch

    from studio.models.library import ModelLibrary
    from studio.models.loading import load_pipeline

    torch.set_num_threads(args.threads)
    workdir = Path(tempfile.mkdtemp(prefix="studio-bench-previews-"))
    full_size_taesd(workdir, 4)  # every tiny test pipeline has 4 latent channels
    from studio.engine import LocalEngine

    timed = Timed()
    print(f"{args.steps} steps, {torch.get_num_threads()} threads, CPU; ratio = preview s / sampling s")
    print(f"{'arch':5s} {'latents':>8s} {'image':>9s}  " + "  ".join(f"{k:>22s}" for k in KINDS[1:]))
    for arch in args.arch:
        model = build(arch, workdir / "models")
        library = ModelLibrary([workdir, model.parent], use_hf_cache=False)
        pipe = load_pipeline(library.resolve(str(model)), "cpu", "float32")
        pipe.set_progress_bar_config(disable=True)
        inbox: queue.Queue = queue.Queue()
        # One engine per model, as in the TUI: the TAESD decoder loads once, at the first preview that wants it.
        engine = LocalEngine(inbox.put, library=library, reserve_core=False, loader=lambda *a: pipe,
                             saver=lambda *a: None)
        limit = getattr(getattr(pipe, "transformer", None), "config", {}).get("pos_embed_max_size") or 1 << 16
        for side in args.latent:
            size = side * pipe.vae_scale_factor
            if side > limit:  # the tiny SD3's position embedding is built for 32x32 latents
                print(f"{arch:5s} {side:>4d}x{side:<3d} skipped: this tiny model's pos_embed_max_size is {limit}")
                continue
            cells, base = [], 0.0
            once = []
            for kind in KINDS:
                engine.set_preview(kind)
                # Warm, with a preview at every step: the allocator, and the once-per-model costs
                # (fitting the projection, loading the TAESD decoder), printed apart below.
                engine._preview_interval, engine._preview_spacing = 0.0, 0.0
                run(engine, inbox, timed, model, size, 2)
                once.append(f"{kind} {timed.seconds:.2f} s")
                engine._preview_interval, engine._preview_spacing = 0.2, 19.0
                runs = [run(engine, inbox, timed, model, size, args.steps) for _ in range(args.rounds)]
                sampling = statistics.median(r[0] for r in runs)
                shown = statistics.median(r[1] for r in runs)
                drawn = statistics.median(r[2] for r in runs)
                if kind == "none":
                    base = sampling
                    continue
                cells.append(f"{shown / sampling:6.1%} ({drawn:2.0f} drawn, {sampling / base - 1:+5.1%})")
            print(f"{arch:5s} {side:>4d}x{side:<3d} {size:>4d}x{size:<4d}  " + "  ".join(f"{c:>22s}" for c in cells),
                  flush=True)
            print(f"      warm-up previews (2 steps, every step; the first fits or loads, once a model): {', '.join(once[1:])}")
        engine.shutdown()


if __name__ == "__main__":
    main()
