"""The headless core never imports Textual, and nothing heavy loads on `import studio`."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "diffusers", "transformers", "textual")


def loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "module",
    ["studio", "studio.recipe", "studio.engine", "studio.models", "studio.store.session", "studio.formats.png",
     "studio.config", "studio.cli"],
)
def test_headless_modules_stay_light(module):
    assert not loaded_after(f"import {module}") & set(HEAVY)


def test_cli_parser_stays_light():
    assert not loaded_after("from studio.cli import build_parser; build_parser()") & {"torch", "diffusers"}
