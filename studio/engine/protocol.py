"""What every engine offers: the seam between the service and whatever runs the jobs.

`LocalEngine` (one worker thread on this machine) is the first implementation;
an engine that spreads jobs over a cluster is another. An engine is built with
one listener, `Listener`, and reports every job through it: `Queued`, then
`Loading`/`Started`/`Progress`/`Preview`, then exactly one of `Finished`,
`Failed` or `Cancelled`. Images are written (atomically) under `out_dir`
before their `Finished` event, so a crash loses none.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from studio.engine.events import Event
from studio.recipe import Recipe

Listener = Callable[[Event], None]


class Engine(Protocol):
    def submit(self, recipe: Recipe, out_dir: Path, stem: str | None = None, job_id: str | None = None) -> str:
        """Queue `recipe`; images go to `out_dir` as `<stem>.png` (`<stem>-<i>.png` for a batch)."""
        ...

    def preload(self, recipe: Recipe) -> str:
        """Load `recipe`'s model now, so the first image starts at once."""
        ...

    def cancel(self, job_id: str) -> bool:
        """Stop a queued job now or a running one at its next step; False if unknown or done."""
        ...

    def cancel_all(self) -> None: ...

    def pending(self) -> list[str]:
        """Ids of jobs queued or running, oldest first."""
        ...

    def wait_idle(self, timeout: float | None = None) -> bool: ...

    def shutdown(self, wait: bool = True) -> None:
        """Cancel everything and stop; `wait` blocks until the running step ends."""
        ...


EngineFactory = Callable[[Listener], Engine]
