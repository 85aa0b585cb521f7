"""The generation engine: a worker thread, its job queue and its events.

`import studio.engine` is cheap; torch and diffusers load on the worker thread.
"""

from studio.engine import events
from studio.engine.worker import Engine, Job

__all__ = ["Engine", "Job", "events"]
