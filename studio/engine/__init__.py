"""The generation engine: the `Engine` seam, and `LocalEngine`, a worker thread with its job queue.

`import studio.engine` is cheap; torch and diffusers load on the worker thread.
"""

from studio.engine import events
from studio.engine.protocol import Engine, EngineFactory, Listener
from studio.engine.worker import Job, LocalEngine

__all__ = ["Engine", "EngineFactory", "Job", "Listener", "LocalEngine", "events"]
