"""`studio generate`: make images headlessly, with a progress bar on stderr."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.builtin import DEFAULT_MODEL
from studio.cli import hires_args, iterate_args, stage_args
from studio.recipe import LoraRef, Recipe, RecipeError, parse_size, random_seed
from studio.samplers import SAMPLERS

if TYPE_CHECKING:
    from studio.config import Config
    from studio.models.library import ModelLibrary

WARM_UP = True  # the engine runs here: `studio.cli.main` starts torch's import before parsing the line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from studio.config import add_sessions_dir_argument

    parser.add_argument("prompt", help="what to make")
    parser.add_argument("--model", "-m", default=DEFAULT_MODEL, help="model name or path (default: %(default)s)")
    parser.add_argument("--negative", default="", metavar="TEXT", help="negative prompt")
    parser.add_argument("--steps", type=int, help="sampling steps (default: the model's, else 20)")
    parser.add_argument("--cfg", type=float, help="CFG scale (default: the model's, else 7)")
    parser.add_argument("--clip-skip", type=int, default=1, metavar="N",
                        help="stop N-1 layers before the text encoder's last, as A1111's Clip skip (default: 1)")
    parser.add_argument("--seed", type=int, help="seed (default: a random one, printed and recorded)")
    parser.add_argument("--size", metavar="WxH", help="image size (default: the model's, else 512x512)")
    parser.add_argument("--sampler", choices=list(SAMPLERS), metavar="NAME", help="sampler: " + ", ".join(SAMPLERS))
    parser.add_argument("-n", "--count", type=int, default=1, metavar="COUNT", help="how many jobs, seeds counting up")
    parser.add_argument("--batch-size", type=int, default=1, help="images per job (default: 1)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="where PNGs go (default: the session folder)")
    add_sessions_dir_argument(parser)
    parser.add_argument("--session", metavar="NAME", help="add to this session (made if new; default: a new one)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--dtype", default="auto", help="auto, float32, float16 or bfloat16")
    parser.add_argument("--lora", action="append", default=[], metavar="NAME[:WEIGHT]",
                        help="apply a LoRA (repeatable); <lora:name:weight> in the prompt works too")
    parser.add_argument("--embedding", action="append", default=[], metavar="NAME",
                        help="load a textual-inversion embedding (repeatable)")
    parser.add_argument("--vae", default="", metavar="NAME", help="use this VAE instead of the model's")
    parser.add_argument("--text-encoder", action="append", default=[], metavar="NAME",
                        help="a text encoder file for a Flux transformer file (CLIP-L, T5; repeatable;"
                        " default: those in its ComfyUI models/text_encoders)")
    parser.add_argument("--no-t5", action="store_true",
                        help="SD3: run without the T5 text encoder (less memory; recorded in the recipe)")
    parser.add_argument("--tokenizer", type=Path, metavar="DIR",
                        help="CLIP tokenizer files for single-file checkpoints (vocab.json, merges.txt)")
    parser.add_argument("--allow-pickle", action="store_true", help="load pickled checkpoints (.ckpt, .pt, .bin) with torch's restricted weights-only unpickler")
    parser.add_argument("--attention-slicing", action="store_true", help="lower memory use, a little slower")
    parser.add_argument("--vae-tiling", action="store_true", help="decode large images in tiles")
    parser.add_argument("--cpu-offload", action="store_true", help="keep idle model parts in CPU memory")
    parser.add_argument("--sequential-offload", action="store_true",
                        help="move each layer to the GPU only while it runs: least memory, slowest")
    parser.add_argument("--safety-checker", action="store_true",
                        help="load the safety checker a model folder ships (off by default; flagged images fail the job)")
    parser.add_argument("--wildcards", action="append", type=Path, default=[], metavar="DIR",
                        help="a folder of NAME.txt files for __NAME__ in the prompt (repeatable; searched "
                        "before the config's wildcard_dirs and A1111's and ComfyUI's usual ones)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    iterate_args.add_arguments(parser)
    hires_args.add_arguments(parser)
    stage_args.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from studio.cli.run import library_for, make_studio, open_session, run_jobs, say
    from studio.config import load_config
    from studio.engine.warmup import import_in_background
    from studio.sweeps.wildcards import Wildcards, resolve_prompts

    import_in_background()  # started by `studio.cli.main` already; here for callers of `run` alone
    config = load_config()
    library = library_for(config, args.tokenizer)
    try:
        recipes = recipes_from_args(args, library, config)
        # __name__ and {a|b} drawn from each job's seed; the template is recorded beside the prompt
        wildcards = Wildcards.for_user(args.wildcards, config.wildcard_dirs)
        jobs = [resolve_prompts(recipe, wildcards) for recipe in recipes]
    except (RecipeError, LookupError, ValueError) as exc:
        say(str(exc))
        return 2
    session = open_session(args, config)
    if session is None:
        return 1
    if args.seed is None:
        print(f"seed {recipes[0].seed}", file=sys.stderr)
    studio = make_studio(session, library, config, out_dir=args.out)
    return 0 if run_jobs(studio, lambda s: [s.submit(r, template=t) for r, t in jobs], quiet=args.quiet).ok else 1


def recipes_from_args(args: argparse.Namespace, library: ModelLibrary, config: Config) -> list[Recipe]:
    """One recipe per job; job i starts at seed + i * batch size so no seed repeats."""
    from studio.models.architectures import check_sampler, scheduler_config_for
    from studio.models.comfy_layout import with_companions
    from studio.samplers import DEFAULT_SAMPLER

    ref = library.resolve(args.model)  # a missing model is a one-line error before anything is recorded
    fields: dict[str, Any] = {"width": 512, "height": 512}
    fields.update(library.defaults(args.model))
    given = {"steps": args.steps, "cfg_scale": args.cfg, "sampler": args.sampler}
    fields.update({key: value for key, value in given.items() if value is not None})
    if args.size:
        fields["width"], fields["height"] = parse_size(args.size)
    # Flux, SD3: only flow-matching samplers; refused before anything is recorded
    check_sampler(fields.get("sampler", DEFAULT_SAMPLER), scheduler_config_for(Path(ref.path)), ref.name)
    seed = random_seed() if args.seed is None else args.seed
    base = Recipe(
        prompt=args.prompt,
        negative_prompt=args.negative,
        model=args.model,
        seed=seed,
        batch_size=args.batch_size,
        clip_skip=args.clip_skip,
        device=args.device,
        dtype=args.dtype,
        loras=tuple(parse_lora(text) for text in args.lora),
        embeddings=tuple(args.embedding),
        vae=args.vae,
        text_encoders=tuple(args.text_encoder or config.text_encoders),
        t5=not (args.no_t5 or config.no_t5),
        allow_pickle=args.allow_pickle,
        attention_slicing=args.attention_slicing or config.attention_slicing,
        vae_tiling=args.vae_tiling or config.vae_tiling,
        cpu_offload=args.cpu_offload or config.cpu_offload,
        sequential_offload=args.sequential_offload or config.sequential_offload,
        safety_checker=args.safety_checker or config.safety_checker,
        **fields,
    )
    base = iterate_args.apply(args, base, config, size_given=bool(args.size))
    base = hires_args.apply(args, base, library)
    base = stage_args.apply(args, base, library)
    base = with_companions(base, library)  # a transformer file's text encoders and VAE, found before anything is recorded
    return base.series(args.count)


def parse_lora(text: str) -> LoraRef:
    """'name' or 'name:0.7' -> LoraRef."""
    name, _, weight = text.rpartition(":") if ":" in text else (text, "", "1")
    try:
        return LoraRef(name, float(weight))
    except ValueError:
        raise RecipeError(f"--lora takes NAME or NAME:WEIGHT (got {text!r})") from None
