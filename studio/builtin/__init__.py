"""The models that ship inside studio, and the one it uses when none is named."""

from pathlib import Path

BUILTIN_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = "studio-tiny"
