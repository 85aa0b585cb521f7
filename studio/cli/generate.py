"""`studio generate`: make images headlessly, with a progress bar on stderr."""

from __future__ import annotations

import argparse
import os
import queue
import sys
from pathlib import Path
from typing import Any

from studio.recipe import LoraRef, Recipe, RecipeError, parse_size, random_seed
from studio.samplers import SAMPLERS

DEFAULT_MODEL = "studio-tiny"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from studio.config import add_sessions_dir_argument

    parser.add_argument("prompt", help="what to make")
    parser.add_argument("--model", "-m", default=DEFAULT_MODEL, help="model name or path (default: %(default)s)")
    parser.add_argument("--negative", default="", metavar="TEXT", help="negative prompt")
    parser.add_argument("--steps", type=int, help="sampling steps (default: the model's, else 20)")
    parser.add_argument("--cfg", type=float, help="CFG scale (default: the model's, else 7)")
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
    parser.add_argument("--tokenizer", type=Path, metavar="DIR",
                        help="CLIP tokenizer files for single-file checkpoints (vocab.json, merges.txt)")
    parser.add_argument("--allow-pickle", action="store_true", help="allow pickled checkpoints (weights_only=True)")
    parser.add_argument("--attention-slicing", action="store_true", help="lower memory use, a little slower")
    parser.add_argument("--vae-tiling", action="store_true", help="decode large images in tiles")
    parser.add_argument("--cpu-offload", action="store_true", help="keep idle model parts in CPU memory")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    try:
        recipes = recipes_from_args(args)
    except (RecipeError, LookupError, ValueError) as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return 2
    session = _open_session(args)
    if session is None:
        return 1
    out_dir = args.out or session.path
    if args.seed is None:
        print(f"seed {recipes[0].seed}", file=sys.stderr)
    results = run_recipes(recipes, out_dir, session=session, quiet=args.quiet)
    return 0 if results.ok else 1


def recipes_from_args(args: argparse.Namespace) -> list[Recipe]:
    """One recipe per job; job i starts at seed + i * batch size so no seed repeats."""
    from studio.config import load_config
    from studio.models import resolve
    from studio.presets import model_defaults

    if args.tokenizer:  # the loader looks here for single-file checkpoints
        os.environ["STUDIO_TOKENIZER_DIR"] = str(args.tokenizer)
    config = load_config()

    ref = resolve(args.model)
    fields: dict[str, Any] = {"width": 512, "height": 512}
    fields.update(model_defaults(ref.path if ref.format == "diffusers" else None))
    given = {"steps": args.steps, "cfg_scale": args.cfg, "sampler": args.sampler}
    fields.update({key: value for key, value in given.items() if value is not None})
    if args.size:
        fields["width"], fields["height"] = parse_size(args.size)
    if args.count < 1:
        raise RecipeError(f"COUNT must be at least 1 (got {args.count})")
    seed = random_seed() if args.seed is None else args.seed
    base = Recipe(
        prompt=args.prompt,
        negative_prompt=args.negative,
        model=args.model,
        seed=seed,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
        loras=tuple(parse_lora(text) for text in args.lora),
        embeddings=tuple(args.embedding),
        vae=args.vae,
        allow_pickle=args.allow_pickle,
        attention_slicing=args.attention_slicing or config.attention_slicing,
        vae_tiling=args.vae_tiling or config.vae_tiling,
        cpu_offload=args.cpu_offload or config.cpu_offload,
        **fields,
    )
    return [base.replace(seed=seed + i * base.batch_size) for i in range(args.count)]


def parse_lora(text: str) -> LoraRef:
    """'name' or 'name:0.7' -> LoraRef."""
    name, _, weight = text.rpartition(":") if ":" in text else (text, "", "1")
    try:
        return LoraRef(name, float(weight))
    except ValueError:
        raise RecipeError(f"--lora takes NAME or NAME:WEIGHT (got {text!r})") from None


class RunResult:
    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.failed = 0
        self.cancelled = 0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled


def run_recipes(recipes: list[Recipe], out_dir: Path, session: Any = None, quiet: bool = False) -> RunResult:
    """Run recipes on a fresh engine, printing each image's path as it lands.

    Ctrl-C cancels what is queued and stops the running job within a step;
    images already written stay, and the session records every outcome.
    """
    from studio.engine import Engine
    from studio.recording import SessionRecorder

    inbox: queue.Queue = queue.Queue()
    # Keep a core free even headless: torch's OpenMP threads spin-wait, and on a
    # CPU shared with anything else two threads were 100x slower than one here.
    engine = Engine(inbox.put)
    run = _Run(_ProgressBar(quiet), SessionRecorder(session) if session is not None else None)
    try:
        for recipe in recipes:
            job_id, stem = run.recorder.queue(recipe) if run.recorder else (None, None)
            engine.submit(recipe, out_dir, stem=stem, job_id=job_id)
        while run.closed < len(recipes) and not run.engine_broken:
            try:
                run.handle(inbox.get(timeout=0.1))
            except queue.Empty:
                continue
    except KeyboardInterrupt:
        print("\ncancelling…", file=sys.stderr)
        engine.shutdown(wait=True)  # cancels everything; the running job stops within a step
        while not inbox.empty():
            run.handle(inbox.get_nowait())
        raise
    finally:
        run.bar.close()
        engine.shutdown(wait=True)
    return run.result


class _Run:
    """What one `run_recipes` call has seen: progress, the record, the outcome."""

    def __init__(self, bar: Any, recorder: Any) -> None:
        self.bar = bar
        self.recorder = recorder
        self.result = RunResult()
        self.closed = 0  # jobs that reached a final event
        self.engine_broken = False  # torch or diffusers would not even import

    def handle(self, event: Any) -> None:
        from studio.engine import events as ev

        self.bar.show(event)
        if self.recorder is not None:
            self.recorder.record(event)
        if isinstance(event, ev.Finished):
            for path in event.paths:
                print(path, flush=True)
            self.result.paths.extend(event.paths)
        elif isinstance(event, ev.Failed):
            print(f"studio: {'job failed: ' if event.job_id else ''}{event.reason}", file=sys.stderr)
            self.result.failed += 1
            self.engine_broken = not event.job_id
        elif isinstance(event, ev.Cancelled):
            self.result.cancelled += 1
        self.closed += isinstance(event, (ev.Finished, ev.Failed, ev.Cancelled)) and bool(event.job_id)


def _open_session(args: argparse.Namespace) -> Any:
    from studio.config import sessions_dir_from
    from studio.store.session import SessionError, SessionStore

    store = SessionStore(sessions_dir_from(args))
    try:
        if args.session and (store.root / args.session).is_dir():
            return store.open(args.session)
        return store.create(args.session)
    except (SessionError, OSError) as exc:
        print(f"studio: cannot create a session: {exc}", file=sys.stderr)
        return None


class _ProgressBar:
    """A rich progress bar on stderr: step k/n, it/s and ETA for the running job."""

    def __init__(self, quiet: bool) -> None:
        self._progress = None
        self._task = None
        if quiet:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._progress.start()

    def show(self, event: Any) -> None:
        from studio.engine import events as ev

        if self._progress is None:
            return
        if isinstance(event, ev.Loading):
            self._new_task(f"loading {event.model}", None)
        elif isinstance(event, ev.Started):
            self._new_task(f"job {event.job_id}", event.recipe.steps)
        elif isinstance(event, ev.Progress) and self._task is not None:
            self._progress.update(self._task, completed=event.step, total=event.total, rate=f"{event.its:.1f} it/s")

    def _new_task(self, description: str, total: int | None) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(description, total=total, rate="")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
