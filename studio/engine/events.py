"""What the engine tells its listeners. Small frozen dataclasses, one per event.

Events are delivered on the worker thread; a listener (the CLI's progress bar,
the TUI's message pump) must hand them to its own thread before touching UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.recipe import Recipe


@dataclass(frozen=True)
class Event:
    job_id: str


@dataclass(frozen=True)
class Ready(Event):
    """The worker has imported torch and diffusers (job_id is "")."""

    device: str  # what "auto" resolves to on this machine
    dtype: str


@dataclass(frozen=True)
class Loaded(Event):
    """A preload finished: the model is in the cache (job_id is the preload's id)."""

    model: str
    seconds: float


@dataclass(frozen=True)
class Queued(Event):
    recipe: Recipe


@dataclass(frozen=True)
class Loading(Event):
    """The job's model is being loaded (first use or evicted from the cache)."""

    model: str


@dataclass(frozen=True)
class Started(Event):
    """Sampling begins; `recipe` now names the device and dtype actually used."""

    recipe: Recipe


@dataclass(frozen=True)
class Notice(Event):
    """Something in the job that cannot be honoured as written, said once; the job goes on."""

    message: str  # one line, may quote the prompt (show it through `printable`)


@dataclass(frozen=True)
class Progress(Event):
    step: int  # steps done, 1..total
    total: int
    its: float  # iterations per second so far
    eta: float  # seconds left at that rate
    stage: str = ""  # which pass, when there are two (hires fix): "pass 2/2 hires 128x128"


@dataclass(frozen=True)
class Preview(Event):
    step: int
    image: Any  # PIL.Image.Image, a cheap latent projection at latent resolution


@dataclass(frozen=True)
class Finished(Event):
    recipe: Recipe
    paths: tuple[Path, ...]
    seconds: float  # wall time of the job, loading included
    load_seconds: float = 0.0


@dataclass(frozen=True)
class Failed(Event):
    reason: str  # one line, for the user


@dataclass(frozen=True)
class Cancelled(Event):
    step: int  # steps completed before the job stopped; 0 if it never started
