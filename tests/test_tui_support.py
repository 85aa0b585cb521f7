"""Helpers shared by the TUI tests (no tests here): sessions with known images,
engines that do nothing, and a poll-until for pilot tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.engine import events as ev
from studio.recipe import Recipe
from studio.store.session import SessionStore

SNAP_SEED = 1234


def gradient_png(path: Path, hue: int) -> Path:
    """A small deterministic image, so snapshots never depend on torch's numerics."""
    from PIL import Image

    image = Image.new("RGB", (64, 64))
    image.putdata([((x * 4 + hue) % 256, (y * 4) % 256, (hue * 2) % 256) for y in range(64) for x in range(64)])
    image.save(path)
    return path


def seeded_session(root: Path, name: str = "snap", count: int = 2) -> Any:
    """A session with `count` finished entries, each with a gradient image."""
    session = SessionStore(root).create(name)
    prompts = ["a lighthouse at dusk, oil painting", "a lighthouse at dawn, watercolour", "a red circle"]
    for i in range(count):
        recipe = Recipe(
            prompt=prompts[i % len(prompts)], model="studio-tiny", steps=20 + i, width=64, height=64,
            seed=100 + i, sampler="Euler" if i else "DDIM", cfg_scale=7.0 - i,
        )
        entry = session.queue(recipe)
        session.start(entry.id)
        gradient_png(session.path / f"{entry.stem}.png", hue=60 * i)
        used = recipe.replace(device="cpu", dtype="float32", model_hash="0123456789")
        session.finish(entry.id, used, [f"{entry.stem}.png"], 1.5 + i)
    return session


class IdleEngine:
    """An engine that is ready at once and never runs anything (for layout tests)."""

    def __init__(self, on_event: Callable[[Any], None]) -> None:
        self.on_event = on_event
        self.submitted: list[tuple[str, Recipe]] = []
        on_event(ev.Ready("", "cpu", "float32"))

    def submit(self, recipe: Recipe, out_dir: Path, stem: str | None = None, job_id: str | None = None) -> str:
        job_id = job_id or f"job{len(self.submitted) + 1}"
        self.submitted.append((job_id, recipe))
        self.on_event(ev.Queued(job_id, recipe))
        return job_id

    def preload(self, recipe: Recipe) -> str:
        return "preload"

    def cancel(self, job_id: str) -> bool:
        return False

    def cancel_all(self) -> None:
        pass

    def pending(self) -> list[str]:
        return []

    def wait_idle(self, timeout: float | None = None) -> bool:
        return True

    def shutdown(self, wait: bool = True) -> None:
        pass


async def wait_until(pilot: Any, predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Let the app run until `predicate()` is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {getattr(predicate, '__name__', predicate)}")
        await pilot.pause(0.05)
        await asyncio.sleep(0)


def no_blink(app: Any) -> None:
    """Blinking cursors make screenshots depend on timing."""
    from textual.widgets import Input, TextArea

    for widget in app.query("Input, TextArea"):
        if isinstance(widget, (Input, TextArea)):
            widget.cursor_blink = False


async def started(pilot: Any) -> None:
    """Wait for the parts of the window that mount just after the first frame."""
    app = pilot.app
    await wait_until(
        pilot,
        lambda: app.params.ready and app.engine is not None and app.query("#history-list") and app.query("#queue-list")
        and not app.loading,
        timeout=30,
    )
    await pilot.pause()


async def open_browser(pilot: Any) -> Any:
    """Start the window, open the session browser and wait for its rows; the browser."""
    from studio.tui.widgets.sessions_browser import SessionsScreen

    await started(pilot)
    await pilot.press("ctrl+b")
    browser = await wait_until(pilot, lambda: isinstance(pilot.app.screen, SessionsScreen) and pilot.app.screen)
    await wait_until(pilot, lambda: browser.rows)
    return browser


async def written(pilot: Any) -> None:
    """Wait for the session writes the history keys queued (they run off the event loop)."""
    app = pilot.app
    while True:
        await app.workers.wait_for_complete([w for w in app.workers if w.group == "session-writes"])
        await pilot.pause()  # the SessionWritten messages, and any write they started
        if not any(w.group == "session-writes" and not w.is_finished for w in app.workers):
            return
