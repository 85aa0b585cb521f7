"""The generation engine: the `Engine` seam, and `LocalEngine`, a worker thread with its job queue.

`import studio.engine` is cheap: the events and the protocol are plain
dataclasses; `LocalEngine` (and the model library it loads through) is
imported on first use, and torch and diffusers load on its worker thread.
The TUI imports the protocol before its first paint and the engine after it.
"""

from typing import TYPE_CHECKING, Any

from studio.engine import events
from studio.engine.protocol import Engine, EngineFactory, Listener

if TYPE_CHECKING:
    from studio.engine.worker import Job, LocalEngine

__all__ = ["Engine", "EngineFactory", "Job", "Listener", "LocalEngine", "events"]


def __getattr__(name: str) -> Any:
    if name in ("Job", "LocalEngine"):
        from studio.engine import worker

        return getattr(worker, name)
    raise AttributeError(f"module 'studio.engine' has no attribute {name!r}")
