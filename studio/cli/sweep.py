"""`studio sweep PROMPT --x FIELD=v1,v2 [--y ...] [--z ...]`: an X/Y/Z grid, every cell an entry.

Takes every `studio generate` option for the base recipe. Each cell's image
path is printed as it lands; the last line printed is the grid's path (one
grid per Z value, the last of them last). `studio rerun SESSION --resume`
finishes a sweep a crash cut short: the missing cells, then the grid.
"""

from __future__ import annotations

import argparse
import os
import sys

from studio.cli import generate

CLUSTERS = "local, ray, ray://HOST:PORT or auto (RAY_ADDRESS)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    generate.add_arguments(parser)
    group = parser.add_argument_group("sweep")
    for axis in ("x", "y", "z"):
        group.add_argument(f"--{axis}", metavar="FIELD=V1,V2,...", help=f"the {axis.upper()} axis: any recipe field "
                           "(steps, cfg, sampler, seed, size, model, strength, clip-skip, ...), lora:NAME, or "
                           "sr=FIND,REPLACE,...; ranges 10-40(+10) and 4-8[3]" if axis == "x" else f"the {axis.upper()} axis")
    group.add_argument("--cluster", default="local", metavar="WHERE", help=f"where cells run: {CLUSTERS} (default: local)")
    group.add_argument("--workers", type=int, metavar="N", help="Ray actors to start (default: one per GPU, else one per core but one)")
    group.add_argument("--dry-run", action="store_true", help="print the cells and their count; run nothing")


def run(args: argparse.Namespace) -> int:
    from studio.cli.run import library_for, make_studio, open_session, run_jobs, say
    from studio.config import load_config
    from studio.printable import printable
    from studio.recipe import RecipeError
    from studio.sweeps.run import finish_sweeps, submit_sweep
    from studio.sweeps.sweep import Sweep
    from studio.sweeps.wildcards import Wildcards

    if args.count != 1:
        say("a sweep makes one job per cell; sweep seeds with --x seed=1,2,3 rather than -n")
        return 2
    config = load_config()
    library = library_for(config, args.tokenizer)
    try:
        base = generate.recipes_from_args(args, library, config)[0]
        sweep = Sweep.build(base, args.x, args.y, args.z, Wildcards.for_user(args.wildcards, config.wildcard_dirs))
        engine_factory = engine_factory_for(args.cluster, library, config, args.workers)
    except (RecipeError, LookupError, ValueError) as exc:
        say(str(exc))
        return 2
    print(printable(sweep.describe()), file=sys.stderr)
    if args.dry_run:
        for cell in sweep.cells():
            print(printable(f"{cell.at}: {' | '.join(l for l in cell.labels if l)}: {cell.recipe.prompt}"))
        return 0
    session = open_session(args, config)
    if session is None:
        return 1
    if args.seed is None:
        print(f"seed {base.seed}", file=sys.stderr)
    studio = make_studio(session, library, config, out_dir=args.out, engine_factory=engine_factory)
    try:
        studio.start()  # a cluster that cannot be reached is refused before any cell is recorded
    except ValueError as exc:
        say(str(exc))
        return 1
    result = run_jobs(studio, lambda s: submit_sweep(s, sweep), quiet=args.quiet)
    grids = finish_sweeps(session, args.out, only={sweep.id})
    for path in grids:
        print(printable(path), flush=True)
    if not grids:
        say(f"no grid: no cell of sweep {sweep.id} made an image")
    return 0 if result.ok and grids else 1


def engine_factory_for(cluster: str, library, config, workers: int | None = None):  # type: ignore[no-untyped-def]
    """None for the local engine, else a factory for the Ray engine on `cluster`; ValueError if unknown."""
    if cluster == "local":
        return None
    if cluster == "auto":
        cluster = os.environ.get("RAY_ADDRESS", "") or "ray"
    if cluster != "ray" and not cluster.startswith("ray://"):
        raise ValueError(f"--cluster must be {CLUSTERS} (got {cluster!r})")
    from studio.engine.ray_engine import ray_engine_factory

    return ray_engine_factory(cluster, library, cache_size=config.cache_models, workers=workers)
