"""The engine: one long-lived worker thread that owns the pipelines and a job queue.

Everything heavy (torch, diffusers, the weights) lives on this thread. Callers
submit recipes and listen to events; they never wait on the GPU themselves.

A cancelled job stops at the next step boundary and leaves no image: its partial latents are
noise, not a picture, and skipping the VAE decode makes the cancel take effect within one step.
Images a job has finished are written (atomically) before its Finished event: a crash loses none.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from studio.engine import events as ev
from studio.engine.model_hash import HashBeside
from studio.engine.preview_choice import PreviewChoice, parse_preview
from studio.engine.pipelines import LoadedPipeline, PipelineCache, cache_key, free_accelerator_memory
from studio.engine.protocol import Listener
from studio.errors import first_line
from studio.iterate import recorded
from studio.models.architectures import without_unused_negative
from studio.models.inspect import TEXT_ENCODER
from studio.models.library import ModelLibrary
from studio.models.loading import explain_oom, is_oom
from studio.models.resolve import ModelRef, name_for
from studio.recipe import Recipe

if TYPE_CHECKING:
    from PIL.Image import Image

    from studio.models.extras import Extras

log = logging.getLogger("studio.engine")

# (model, device, dtype, recipe) -> a diffusers pipeline
Loader = Callable[[ModelRef, str, str, Recipe], Any]
Saver = Callable[["Image", Path, Recipe], None]


@dataclass
class Job:
    job_id: str
    recipe: Recipe
    out_dir: Path
    stem: str
    preload_only: bool = False  # load the model into the cache, make nothing
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    started: bool = False  # set by the worker, under the engine's lock
    model_path: Path | None = None  # once resolved: what an out-of-memory hint is about


class _Cancelled(Exception):
    """Raised from the step callback to unwind the pipeline at a step boundary."""

    def __init__(self, step: int) -> None:
        super().__init__(step)
        self.step = step


class LocalEngine:
    """Run recipes on one background thread of this process; report through `on_event`.

    `on_event` is called on the worker thread. `library` finds models, LoRAs, embeddings and VAEs
    (default: the built-in models only). `cache_size` bounds how many pipelines stay loaded.
    `previews` turns on live previews (True: the default kind; or a kind, see preview_choice.py), at
    most one per `preview_interval` seconds, spaced so that drawing them takes at most
    `preview_budget` of the time (None: one every interval, for tests). `reserve_core` leaves a CPU
    core for a UI in the same process (the TUI); without it torch uses every core. `loader` and
    `saver` replace loading and PNG writing (benches and tests).
    """

    def __init__(
        self,
        on_event: Listener,
        *,
        library: ModelLibrary | None = None,
        cache_size: int = 1,
        previews: bool | str = False,
        preview_interval: float = 0.2,
        preview_budget: float | None = 0.05,
        reserve_core: bool = True,
        loader: Loader | None = None,
        saver: Saver | None = None,
    ) -> None:
        self._on_event = on_event
        self._library = library or ModelLibrary()
        self._cache = PipelineCache(loader or self._load_pipeline, cache_size)
        self._hashes = HashBeside(self._library)
        self._saver = saver or _save_png
        self._preview = parse_preview(previews)
        self._preview_interval = preview_interval
        # A preview that cost c seconds waits c * (1 - budget) / budget before the next: c / (c + wait) = budget.
        self._preview_spacing = 0.0 if not preview_budget else (1 - preview_budget) / preview_budget
        self._reserve_core = reserve_core
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._thread = threading.Thread(target=self._run_forever, name="studio-engine", daemon=True)
        self._thread.start()

    # -- the caller's side ---------------------------------------------------

    def submit(self, recipe: Recipe, out_dir: Path, stem: str | None = None, job_id: str | None = None) -> str:
        """Queue `recipe`; images go to `out_dir` as `<stem>.png` (`<stem>-<i>.png` for batches)."""
        job_id = job_id or f"job{next(self._ids)}"
        job = Job(job_id, recipe, Path(out_dir), stem or job_id)
        with self._lock:
            if job_id in self._jobs:
                raise ValueError(f"job id {job_id!r} is already queued")
            self._jobs[job_id] = job
        self._emit(ev.Queued(job_id, recipe))
        self._hashes.start(recipe)  # read beside the worker's imports and load (engine/model_hash.py)
        self._queue.put(job)
        return job_id

    def preload(self, recipe: Recipe) -> str:
        """Load `recipe`'s model into the cache now, so the first image starts at once."""
        job_id = f"preload{next(self._ids)}"
        job = Job(job_id, recipe, Path("."), job_id, preload_only=True)
        with self._lock:
            self._jobs[job_id] = job
        self._hashes.start(recipe)
        self._queue.put(job)
        return job_id

    def cancel(self, job_id: str) -> bool:
        """Stop a queued job now, or a running one at its next step; False if unknown or done."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return False
            job.cancel_requested.set()
            dropped = not job.started
            if dropped:
                del self._jobs[job_id]  # the worker skips it when it comes up
        if dropped:
            self._emit(ev.Cancelled(job_id, 0))
        return True

    def cancel_all(self) -> None:
        with self._lock:
            job_ids = list(self._jobs)
        for job_id in job_ids:
            self.cancel(job_id)

    def pending(self) -> list[str]:
        """Ids of jobs queued or running, oldest first."""
        with self._lock:
            return list(self._jobs)

    def set_preview(self, previews: bool | str | PreviewChoice) -> None:
        """Change the live preview kind from the next step on (ValueError, one line, for a bad one)."""
        self._preview = parse_preview(previews)

    @property
    def pipeline_loads(self) -> int:
        return self._cache.loads

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is queued or running (for scripts and tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.pending():
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def shutdown(self, wait: bool = True) -> None:
        """Cancel everything and stop the worker thread."""
        self.cancel_all()
        self._queue.put(None)
        if wait:
            self._thread.join()

    # -- the worker thread ---------------------------------------------------

    def _run_forever(self) -> None:
        try:
            self._import_libraries()
        except BaseException as exc:
            log.exception("torch/diffusers failed to import")
            self._emit(ev.Failed("", f"cannot start the engine: {one_line(exc)}"))
        while True:
            job = self._queue.get()
            if job is None:
                self._cache.clear()
                return
            with self._lock:
                job.started = not job.cancel_requested.is_set()
            if not job.started:
                continue  # cancelled while queued; already reported
            try:
                self._run(job)
            except BaseException as exc:  # the worker outlives every job
                log.exception("job %s failed", job.job_id)
                if is_oom(exc):
                    free_accelerator_memory()  # so the next, smaller job can fit
                self._emit(ev.Failed(job.job_id, one_line(exc, job)))
            finally:
                with self._lock:
                    self._jobs.pop(job.job_id, None)

    def _import_libraries(self) -> None:
        """Pay for the heavy imports here, on the worker (silenced: see warmup.import_libraries)."""
        from studio.engine.device import resolve_device
        from studio.engine.warmup import import_libraries

        import_libraries()  # the lazy pipeline imports too, before the first job needs them
        self._emit(ev.Ready("", *resolve_device()))

    def _run(self, job: Job) -> None:
        started = time.perf_counter()
        if job.recipe.upscaler and not job.preload_only:  # no diffusion: studio/upscale/job.py
            self._upscale(job, started)
            return
        loaded, recipe, prompts = self._prepare(job)
        load_seconds = time.perf_counter() - started
        if job.preload_only:
            self._emit(ev.Loaded(job.job_id, loaded.ref.name, load_seconds))
            return
        if job.cancel_requested.is_set():
            self._emit(ev.Cancelled(job.job_id, 0))
            return
        self._emit(ev.Started(job.job_id, recipe))
        try:
            images = self._sample(job, loaded, recipe, prompts)
        except _Cancelled as stop:
            self._emit(ev.Cancelled(job.job_id, stop.step))
            return
        recipe = self._hashed(job, loaded, recipe)  # the image's metadata needs them; now, not before sampling
        paths = self._save(job, images, recipe)
        seconds = time.perf_counter() - started
        self._emit(ev.Finished(job.job_id, recipe, tuple(paths), seconds, load_seconds))

    def _upscale(self, job: Job, started: float) -> None:
        from studio.engine.device import resolve_device, set_cpu_threads
        from studio.upscale.job import upscale_job, with_upscaler_hash

        device, _ = resolve_device(job.recipe.device, "float32")
        if device == "cpu":
            set_cpu_threads(self._reserve_core)
        recipe = with_upscaler_hash(recorded(job.recipe), self._library).replace(device=device)
        self._emit(ev.Started(job.job_id, recipe))
        begun = time.perf_counter()

        def on_tile(done: int, total: int) -> None:  # progress per tile; a cancel lands between tiles
            if job.cancel_requested.is_set():
                raise _Cancelled(done)
            its = done / max(time.perf_counter() - begun, 1e-9)
            self._emit(ev.Progress(job.job_id, done, total, its, (total - done) / its, "upscale tiles"))

        try:
            image = upscale_job(recipe, self._library, device, on_tile)
        except _Cancelled as stop:
            self._emit(ev.Cancelled(job.job_id, stop.step))
            return
        if job.cancel_requested.is_set():
            self._emit(ev.Cancelled(job.job_id, 0))
            return
        paths = self._save(job, [image], recipe)
        self._emit(ev.Finished(job.job_id, recipe, tuple(paths), time.perf_counter() - started))

    def _prepare(self, job: Job) -> tuple[LoadedPipeline, Recipe, tuple[str, str]]:
        """Load (or reuse) the pipeline and dress it with the recipe's LoRAs and embeddings.

        Returns the recipe as it will be recorded (the model as the user named
        it, so it resolves again; LoRA hashes, device and dtype filled in; the
        model's hash comes later, from `_hashed`) and the prompts the pipeline sees, with A1111's
        `<lora:name:weight>` tags taken out.
        """
        from studio.engine.cascade import with_stages
        from studio.engine.device import resolve_device, set_cpu_threads
        from studio.models.extras import prepare_extras

        job.recipe = with_stages(job.recipe, self._library)  # Stable Cascade: the decoder and its prior
        self._hashes.start(job.recipe)  # a new model is read for its hash beside the load, not before
        path = self._library.locate(job.recipe.model) or Path(self._library.resolve(job.recipe.model).path)
        job.model_path = path.resolve()
        extras = prepare_extras(job.recipe, self._library)
        self._hashes.start_files(extras.recipe.text_encoders, TEXT_ENCODER)  # a T5 file: ~10 GB to read
        device, dtype = resolve_device(job.recipe.device, job.recipe.dtype)
        key = cache_key(path, extras.recipe, device, dtype)
        if key not in self._cache:
            self._emit(ev.Loading(job.job_id, name_for(job.recipe.model, path)))
            if device == "cpu":  # a load's dtype casts are brief and the UI waits on them: every core
                set_cpu_threads(reserve_core=False)
        unhashed = ModelRef(name_for(job.recipe.model, path), job.model_path,
                            "diffusers" if path.is_dir() else "single_file", "")
        loaded = self._cache.get(key, unhashed, extras.recipe, device, dtype)
        if device == "cpu":
            set_cpu_threads(self._reserve_core)
        _dress(loaded, extras, job.recipe.allow_pickle)
        if "license" not in loaded.extras:  # read once per loaded model: the card or the header
            from studio.models.license import recorded_license

            loaded.extras["license"] = recorded_license(job.model_path)
        recipe = recorded(extras.recipe.replace(device=device, dtype=dtype, model_license=loaded.extras["license"]))
        if recipe.hires_scale:
            from studio.upscale.job import with_upscaler_hash

            recipe = with_upscaler_hash(recipe, self._library)
        if recipe.refiner:
            from studio.engine.refiner import with_refiner

            recipe = with_refiner(recipe, self._library)
        recipe, dropped = without_unused_negative(recipe)  # Flux: no negative pass
        if dropped and not job.preload_only:
            self._emit(ev.Notice(job.job_id, dropped))
        return loaded, recipe, (extras.prompt, "" if dropped else extras.negative_prompt)

    def _hashed(self, job: Job, loaded: LoadedPipeline, recipe: Recipe) -> Recipe:
        """`recipe` with the model's and text encoders' hashes: read beside the load and sampling, waited for here."""
        loaded.ref = self._library.resolve(job.recipe.model)
        hashes = tuple(self._library.resolve(name, kind=TEXT_ENCODER).hash for name in recipe.text_encoders)
        return recipe.replace(model_hash=loaded.ref.hash, text_encoder_hashes=hashes)

    def _load_pipeline(self, ref: ModelRef, device: str, dtype: str, recipe: Recipe) -> Any:
        from studio.models.loading import load_pipeline_for_recipe

        return load_pipeline_for_recipe(ref, device, dtype, recipe, self._library)

    def _sample(self, job: Job, loaded: LoadedPipeline, recipe: Recipe, prompts: tuple[str, str]) -> list[Any]:
        import torch

        from studio.engine.encode import conditioning_for
        from studio.engine.modes import plan
        from studio.engine.x0 import watch_x0
        from studio.samplers import make_scheduler

        # One CPU generator per image: image i is the same whatever the batch
        # size or device, so any single image can be made again from seed + i.
        generators = [torch.Generator("cpu").manual_seed(recipe.seed + i) for i in range(recipe.batch_size)]
        if recipe.prior or getattr(loaded.pipe, "studio_prior", None) is not None:  # Stable Cascade
            return self._cascade(job, loaded, recipe, prompts, generators)
        mode = plan(loaded, recipe, generators)  # txt2img, img2img or inpaint; variation noise
        if mode.images is not None:
            return mode.images
        pipe = mode.pipe
        pipe.scheduler = watch_x0(make_scheduler(recipe.sampler, loaded.base_scheduler_config, recipe.seed))
        prompt, negative = prompts
        with torch.inference_mode(), mode.around():
            notice = lambda text: self._emit(ev.Notice(job.job_id, text))  # noqa: E731
            inputs = conditioning_for(loaded, prompt, negative, recipe, notice)

            def reporter(stage: str, steps: int, switch: Any) -> _StepReporter:
                return _StepReporter(self, job, loaded, steps, switch, stage)

            if recipe.refiner:  # two models: studio/engine/refiner.py
                from studio.engine.refiner import RefinerCall, refine

                images = refine(RefinerCall(loaded, recipe, mode, inputs, prompts, reporter, notice, self._library))
                return mode.finish(images)
            if recipe.hires_scale:  # two passes: studio/engine/hires.py
                from studio.engine.hires import HiresCall, hires_fix

                return hires_fix(HiresCall(loaded, recipe, mode, inputs, prompts, reporter, notice, self._library))
            callback = _StepReporter(self, job, loaded, recipe.steps, inputs.switch)
            output = pipe(
                **inputs.kwargs,
                num_inference_steps=recipe.steps,
                guidance_scale=recipe.cfg_scale,
                num_images_per_prompt=recipe.batch_size,
                generator=mode.generators,
                callback_on_step_end=callback,
                **mode.kwargs,
            )
        from studio.models.safety import refuse_flagged

        refuse_flagged(output, recipe.batch_size)
        return mode.finish(list(output.images))

    def _cascade(self, job: Job, loaded: LoadedPipeline, recipe: Recipe, prompts: tuple[str, str],
                 generators: list[Any]) -> list[Any]:
        from studio.engine.cascade import CascadeCall, cascade_sample

        def preview(step: int, image: Any) -> None:
            self._emit(ev.Preview(job.job_id, step, image))

        return cascade_sample(CascadeCall(
            loaded, recipe, prompts, generators,
            reporter=lambda stage, steps: _StepReporter(self, job, loaded, steps, None, stage),
            preview=preview if self._preview.enabled else None, preview_interval=self._preview_interval,
            library=self._library, notice=lambda text: self._emit(ev.Notice(job.job_id, text)),
        ))

    def _save(self, job: Job, images: list[Any], recipe: Recipe) -> list[Path]:
        job.out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for index, image in enumerate(images):
            name = job.stem if len(images) == 1 else f"{job.stem}-{index}"
            path = _free_path(job.out_dir, name)
            self._saver(image, path, recipe.for_image(index))
            paths.append(path)
        return paths

    def _emit(self, event: ev.Event) -> None:
        try:
            self._on_event(event)
        except Exception:  # a listener's bug must not take the worker down
            log.exception("event listener failed on %r", event)


class _StepReporter:
    """The pipeline's step callback: progress, throttled previews, cancellation."""

    def __init__(
        self, engine: LocalEngine, job: Job, loaded: LoadedPipeline, steps: int,
        switch: Callable[[Any, int, dict], None] | None = None, stage: str = "",
    ) -> None:
        self.engine = engine
        self.stage = stage  # which pass of a hires fix, for the status bar
        self.switch = switch  # prompt editing: the next step's embeddings
        self.job = job
        self.loaded = loaded
        self.total = steps
        self.started = time.perf_counter()
        # The first preview waits one interval too: a job done sooner needs none, and its cost is not yet known.
        self.last_preview = self.started
        # What the last preview of this kind on this pipeline cost (this job's or an earlier one's):
        # the next waits long enough to keep the budget, so a job shorter than that draws none.
        self.preview_key = ("preview_seconds", str(engine._preview))
        self.preview_seconds = loaded.extras.get(self.preview_key, 0.0)

    def __call__(self, pipe: Any, index: int, timestep: Any, kwargs: dict) -> dict:
        step = index + 1
        # Second-order samplers (Heun, DPM2) call back once per model evaluation.
        total = getattr(pipe, "_num_timesteps", None) or self.total
        if self.job.cancel_requested.is_set():
            raise _Cancelled(step)
        now = time.perf_counter()
        its = step / max(now - self.started, 1e-9)
        self.engine._emit(ev.Progress(self.job.job_id, step, total, its, (total - step) / its, self.stage))
        wait = max(self.engine._preview_interval, self.engine._preview_spacing * self.preview_seconds)
        if self.engine._preview.enabled and now - self.last_preview >= wait:
            self._preview(pipe, step, kwargs.get("latents"))
            self.last_preview = time.perf_counter()
            self.preview_seconds = self.loaded.extras[self.preview_key] = self.last_preview - now
        if self.switch is not None:
            self.switch(pipe, index, kwargs)
        return kwargs

    def _preview(self, pipe: Any, step: int, latents: Any) -> None:
        from studio.engine.preview import preview_image

        recipe = self.job.recipe
        size = recipe.hires_size if self.stage.startswith("pass 2") else (recipe.width, recipe.height)
        image = preview_image(self.loaded, self.engine._preview, latents, pipe.scheduler, size, self.engine._library)
        notice = self.loaded.extras.pop("preview_notice", None)
        if notice:
            self.engine._emit(ev.Notice(self.job.job_id, notice))
        if image is not None:
            self.engine._emit(ev.Preview(self.job.job_id, step, image))


def _free_path(folder: Path, name: str) -> Path:
    """`name.png` in `folder`, or `name_2.png`… so nothing is ever overwritten."""
    path = folder / f"{name}.png"
    for n in itertools.count(2):
        if not path.exists():
            return path
        path = folder / f"{name}_{n}.png"
    raise AssertionError("unreachable")


def one_line(exc: BaseException, job: Job | None = None) -> str:
    """A reason fit for a status bar: what to do about running out of memory (for the job's model), else the first line."""
    if not is_oom(exc):
        return first_line(exc)
    if job is None:
        return explain_oom(exc)
    from studio.models.memory_hints import model_family, oom_hint

    return oom_hint(model_family(job.model_path) if job.model_path else "", job.recipe, exc)


def _dress(loaded: LoadedPipeline, extras: Extras, allow_pickle: bool) -> None:
    """Swap LoRAs only when the set changes; embeddings stay once loaded."""
    from studio.models.loading import apply_loras, load_embeddings

    wanted = [(str(ref.path), weight) for ref, weight in extras.loras]
    if wanted != loaded.extras.get("loras", []):
        apply_loras(loaded.pipe, extras.loras, allow_pickle=allow_pickle)
        loaded.extras["loras"] = wanted
    if extras.embeddings:
        load_embeddings(loaded.pipe, extras.embeddings, allow_pickle=allow_pickle)


def _save_png(image: Image, path: Path, recipe: Recipe) -> None:
    from studio.formats.png import save_png

    save_png(image, path, recipe)
