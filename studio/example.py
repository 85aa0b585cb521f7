"""Make the repository's example session with the built-in model.

    python -m studio.example [--sessions-dir sessions] [--name example]

A few small images with fixed seeds, one favourite with a note, so a new user
(and `studio show example`) sees what a session looks like.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studio.builtin import DEFAULT_MODEL
from studio.recipe import Recipe

# Prompts in the built-in model's own vocabulary (see its model card).
PROMPTS = [
    ("a red circle on a blue background", 1),
    ("a large yellow triangle on a purple background", 2),
    ("a small white square at the top left on a black background", 3),
    ("a orange circle at the bottom right on a green background", 4),  # the trained caption form
]


def make_example(root: Path, name: str = "example", model: str = DEFAULT_MODEL) -> Path:
    from studio.models.library import ModelLibrary
    from studio.service import Studio
    from studio.store.session import SessionStore

    session = SessionStore(root).create(name)
    studio = Studio(session, ModelLibrary())
    for prompt, seed in PROMPTS:
        studio.submit(Recipe(prompt=prompt, model=model, seed=seed, steps=20, cfg_scale=7.0, width=64, height=64,
                             device="cpu", sampler="DPM++ 2M Karras" if seed % 2 else "Euler"))
    studio.wait_idle()
    studio.shutdown()
    session.mark(1, favourite=True, rating=4, note="the example's favourite")
    return session.path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions-dir", type=Path, default=Path("sessions"))
    parser.add_argument("--name", default="example")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    print(make_example(args.sessions_dir, args.name, args.model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
