"""`RayEngine`: the `Engine` protocol's second implementation, jobs spread over Ray actors.

Each actor (`_Worker`) holds one `LocalEngine` on one GPU (`num_gpus=1`), or
on one CPU core on a CPU box, and keeps its pipeline loaded between jobs. This
process stays the only writer: an actor makes the image in a temp folder and
returns the PNG bytes with the final recipe; `RayEngine` writes them
(atomically) under `out_dir` and only then reports `Finished`, as the protocol
asks, so the service records the session exactly as with the local engine.

One dispatcher thread here hands queued jobs to idle actors, preferring an
actor that last ran the same model (its pipeline is loaded), polls running
jobs for progress, and forwards cancels to the actor running the job. An actor
that dies has its job put back at the head of the queue for another actor; a
job is reported final once, when its one successful result comes back, so no
job is lost or recorded twice, and a new actor takes the dead one's place. Seeds give the same pixels on any worker: the
initial noise is drawn on the CPU (`studio.engine.worker`).

`ray` is an optional extra (`pip install "studio[ray]"`), imported only here.
"""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.atomic import atomic_writer
from studio.engine import events as ev
from studio.engine.protocol import Listener
from studio.errors import first_line
from studio.recipe import Recipe

POLL_SECONDS = 0.2
MAX_DEATHS = 2  # actors a job may take down before it fails
_FINAL = (ev.Finished, ev.Failed, ev.Cancelled)


class RayUnavailable(ValueError):
    """Ray is missing or the cluster cannot be reached; one line for the user."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable('ray is not installed: pip install "studio[ray]"') from None
    return ray


@dataclass(frozen=True)
class LibrarySpec:
    """What rebuilds the client's ModelLibrary inside an actor (a library holds locks; it does not pickle)."""

    dirs: tuple[str, ...]
    tokenizer_dirs: tuple[str, ...] = ()
    use_hf_cache: bool = False

    @classmethod
    def of(cls, library: Any) -> LibrarySpec:
        return cls(tuple(map(str, library.dirs)), tuple(map(str, library.tokenizer_dirs)), library.use_hf_cache)

    def build(self) -> Any:
        from studio.models.library import ModelLibrary

        return ModelLibrary([Path(d) for d in self.dirs], tokenizer_dirs=[Path(d) for d in self.tokenizer_dirs],
                            use_hf_cache=self.use_hf_cache)


class _Worker:
    """One actor: one LocalEngine. `run` blocks until the job ends; `progress` and `cancel` come in beside it."""

    def __init__(self, library: LibrarySpec, cache_size: int, threads: int) -> None:
        from studio.engine.worker import LocalEngine

        if threads:
            import torch

            torch.set_num_threads(threads)
        self._latest: dict[str, ev.Event] = {}
        self._final: dict[str, ev.Event] = {}
        self._ended = threading.Condition()
        self._dir = Path(tempfile.mkdtemp(prefix="studio-ray-"))
        self._engine = LocalEngine(self._hear, library=library.build(), cache_size=cache_size, reserve_core=False)

    def _hear(self, event: ev.Event) -> None:
        with self._ended:
            if isinstance(event, _FINAL):
                self._final[event.job_id] = event
                self._ended.notify_all()
            elif isinstance(event, (ev.Loading, ev.Started, ev.Progress, ev.Notice)):
                self._latest[event.job_id] = event

    def run(self, job_id: str, recipe: Recipe, stem: str) -> tuple[ev.Event, list[tuple[str, bytes]]]:
        """Make the job; its final event (paths are bare names) and each image's (name, PNG bytes)."""
        folder = self._dir / job_id
        self._engine.submit(recipe, folder, stem=stem, job_id=job_id)
        with self._ended:
            self._ended.wait_for(lambda: job_id in self._final)
            final = self._final.pop(job_id)
            self._latest.pop(job_id, None)
        images = []
        if isinstance(final, ev.Finished):
            images = [(Path(path).name, Path(path).read_bytes()) for path in final.paths]
        shutil.rmtree(folder, ignore_errors=True)
        return final, images

    def progress(self, job_id: str) -> ev.Event | None:
        return self._latest.get(job_id)

    def cancel(self, job_id: str) -> bool:
        return self._engine.cancel(job_id)

    def pid(self) -> int:
        return os.getpid()


@dataclass
class _Job:
    job_id: str
    recipe: Recipe
    out_dir: Path
    stem: str
    actor: Any = None
    ref: Any = None
    started: bool = False
    last: ev.Event | None = None
    cancelled: bool = False
    deaths: int = 0  # actors that died running it
    began: float = field(default_factory=time.monotonic)


class RayEngine:
    """Jobs on Ray actors; events through `on_event` on the dispatcher thread (Queued on the caller's).

    `address`: "ray" starts a local Ray instance (`start_local_instance`: loopback
    only, token authentication on) or uses the one this process already has;
    "ray://HOST:PORT" or a cluster address joins one.
    `workers`: how many actors (default: one per GPU, else one per CPU core
    but one). `threads`: torch threads per CPU actor (default 1).
    """

    def __init__(
        self, on_event: Listener, *, address: str, library: Any, cache_size: int = 1,
        workers: int | None = None, threads: int = 1,
    ) -> None:
        ray = self._ray = import_ray_secured() if address == "ray" else import_ray()
        self._on_event = on_event
        self._owns_ray = False
        if not ray.is_initialized():
            self._owns_ray = True
            if address == "ray":
                start_local_instance(threads, workers)
            else:
                try:
                    ray.init(address=address, log_to_driver=False)
                except Exception as exc:  # noqa: BLE001  (a wrong address, a cluster that is down: one line)
                    raise RayUnavailable(f"cannot reach Ray at {address}: {first_line(exc)}") from None
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        count = workers or gpus or max(1, int(resources.get("CPU", 1)) - 1)
        options = {"num_gpus": 1, "num_cpus": 0} if gpus else {"num_gpus": 0, "num_cpus": 1}
        actor_class = ray.remote(max_concurrency=4, max_restarts=0, **options)(_Worker)
        spec = LibrarySpec.of(library)
        self._new_actor = lambda: actor_class.remote(spec, cache_size, 0 if gpus else threads)
        self._actors: list[Any] = [self._new_actor() for _ in range(count)]
        self.replaced = 0  # actors started in place of dead ones
        self._models: dict[Any, str] = {}  # actor -> the model it last ran (its pipeline is loaded)
        self._queue: deque[_Job] = deque()
        self._running: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._wake: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._stopping = False
        self._ids = 0
        self._thread = threading.Thread(target=self._dispatch_forever, name="studio-ray", daemon=True)
        self._thread.start()

    # -- the Engine protocol ---------------------------------------------------

    def submit(self, recipe: Recipe, out_dir: Path, stem: str | None = None, job_id: str | None = None) -> str:
        with self._lock:
            self._ids += 1
            job_id = job_id or f"ray{self._ids}"
            job = _Job(job_id, recipe, Path(out_dir), stem or job_id)
            self._queue.append(job)
        self._on_event(ev.Queued(job_id, recipe))
        self._wake.put(None)
        return job_id

    def preload(self, recipe: Recipe) -> str:
        return ""  # each actor loads on its first job and keeps the pipeline; nothing to do ahead

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            queued = next((job for job in self._queue if job.job_id == job_id), None)
            if queued is not None:
                self._queue.remove(queued)
            running = self._running.get(job_id)
            if running is not None:
                running.cancelled = True
        if queued is not None:
            self._on_event(ev.Cancelled(job_id, 0))
            self._idle_check()
            return True
        if running is None:
            return False
        if running.actor is not None:
            running.actor.cancel.remote(job_id)
        return True

    def cancel_all(self) -> None:
        for job_id in self.pending():
            self.cancel(job_id)

    def pending(self) -> list[str]:
        with self._lock:
            return [job.job_id for job in self._queue] + list(self._running)

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: not self._queue and not self._running, timeout)

    def shutdown(self, wait: bool = True) -> None:
        self.cancel_all()
        if wait:
            self.wait_idle(timeout=60)
        self._stopping = True
        self._wake.put(None)
        if wait:
            self._thread.join(timeout=10)
        for actor in self._actors:
            self._ray.kill(actor)
        if self._owns_ray:
            self._ray.shutdown()

    # -- the dispatcher ----------------------------------------------------------

    def _dispatch_forever(self) -> None:
        ray = self._ray
        while not self._stopping:
            self._assign()
            refs = {job.ref: job for job in list(self._running.values()) if job.ref is not None}
            if not refs:
                try:
                    self._wake.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    pass
                continue
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=POLL_SECONDS)
            for ref in ready:
                self._collect(refs[ref], ref)
            self._poll_progress()

    def _assign(self) -> None:
        """Give each idle actor a job: one for the model it has loaded if any is queued, else the oldest."""
        with self._lock:
            busy = {id(job.actor) for job in self._running.values()}
            for actor in [a for a in self._actors if id(a) not in busy]:
                if not self._queue:
                    break
                loaded = self._models.get(id(actor))
                job = next((j for j in self._queue if j.recipe.model == loaded), self._queue[0])
                self._queue.remove(job)
                job.actor = actor
                job.ref = actor.run.remote(job.job_id, job.recipe, job.stem)
                self._models[id(actor)] = job.recipe.model
                self._running[job.job_id] = job

    def _collect(self, job: _Job, ref: Any) -> None:
        ray = self._ray
        try:
            final, images = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError):
            self._lost_actor(job)
            return
        except Exception as exc:  # noqa: BLE001  (a task error: the job fails, the engine goes on)
            final, images = ev.Failed(job.job_id, f"Ray worker: {first_line(exc)}"), []
        if isinstance(final, ev.Finished):
            try:
                paths = tuple(self._write(job, name, data) for name, data in images)
                final = ev.Finished(job.job_id, final.recipe, paths, final.seconds, final.load_seconds)
            except OSError as exc:
                final = ev.Failed(job.job_id, f"cannot write the image: {exc.strerror or exc}")
        with self._lock:
            self._running.pop(job.job_id, None)
        if not job.started and isinstance(final, ev.Finished):
            self._on_event(ev.Started(job.job_id, job.recipe))
        self._on_event(final)
        self._idle_check()

    def _write(self, job: _Job, name: str, data: bytes) -> Path:
        path = job.out_dir / Path(name).name
        job.out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_writer(path) as handle:
            handle.write(data)
        return path

    def _lost_actor(self, job: _Job) -> None:
        """The actor died mid-job: start another in its place and run the job again at the head of the
        queue. A job that has taken two actors down with it fails rather than kill a third."""
        job.deaths += 1
        with self._lock:
            self._running.pop(job.job_id, None)
            self._models.pop(id(job.actor), None)
            if not self._stopping:
                self._actors = [self._new_actor() if a is job.actor else a for a in self._actors]
                self.replaced += 1
            retry = not job.cancelled and job.deaths < MAX_DEATHS and not self._stopping
            if retry:
                job.actor = job.ref = None
                job.last = None
                self._queue.appendleft(job)
        if job.cancelled:
            self._on_event(ev.Cancelled(job.job_id, 0))
        elif not retry:
            times = f" {job.deaths} times" if job.deaths > 1 else ""
            self._on_event(ev.Failed(job.job_id, f"its Ray worker died{times}"))
        self._idle_check()

    def _poll_progress(self) -> None:
        ray = self._ray
        for job in list(self._running.values()):
            try:
                latest = ray.get(job.actor.progress.remote(job.job_id), timeout=5)
            except Exception:  # noqa: BLE001  (a dying actor: its run() reports it)
                continue
            if latest is None or latest == job.last:
                continue
            job.last = latest
            if isinstance(latest, ev.Progress) and not job.started:  # the poll missed Started: say it first
                self._on_event(ev.Started(job.job_id, job.recipe))
            job.started = job.started or isinstance(latest, (ev.Started, ev.Progress))
            self._on_event(latest)

    def _idle_check(self) -> None:
        with self._idle:
            if not self._queue and not self._running:
                self._idle.notify_all()


def import_ray_secured() -> Any:
    """Ray, imported with this process set for a local instance that only this machine can reach:
    token authentication on, with a fresh token kept in this process's environment (Ray's own
    processes inherit it; nothing writes it to disk), and every address on loopback (Ray's switch
    for its single-machine mode, read when ray is imported)."""
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    return import_ray()


def start_local_instance(threads: int = 1, workers: int | None = None) -> str:
    """Start this machine's Ray instance (loopback only, token auth on); its GCS address.

    Checked after the start, not assumed: an instance that came up on another address or
    without authentication is shut down again and refused."""
    ray = import_ray_secured()
    cores = os.cpu_count() or 1
    try:
        ray.init(
            num_cpus=max(cores, workers or 0),
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}},
        )
    except Exception as exc:  # noqa: BLE001  (ports taken, /tmp full: one line)
        raise RayUnavailable(f"cannot start a local Ray instance: {first_line(exc)}") from None
    address, auth = local_instance_facts(ray)
    if not address.startswith("127.0.0.1:") or auth != "token":
        ray.shutdown()
        raise RayUnavailable(f"the local Ray instance came up on {address} with auth {auth}; refusing to use it")
    return address


def local_instance_facts(ray: Any) -> tuple[str, str]:
    """The running instance's GCS address and authentication mode ("token" or "disabled")."""
    from ray._private.authentication.authentication_utils import is_token_auth_enabled

    return ray.get_runtime_context().gcs_address, "token" if is_token_auth_enabled() else "disabled"


def ray_engine_factory(address: str, library: Any, cache_size: int = 1, workers: int | None = None) -> Any:
    """An `EngineFactory` for the service: the Ray engine on `address`."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:  # a one-line error now, before anything is recorded
        raise RayUnavailable('ray is not installed: pip install "studio[ray]"')

    def factory(listener: Listener) -> RayEngine:
        return RayEngine(listener, address=address, library=library, cache_size=cache_size, workers=workers)

    return factory
