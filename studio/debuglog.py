"""The debug switch: `--debug` or STUDIO_DEBUG=1 writes studio's log, tracebacks included, to a file.

Without it, expected failures are one line on the terminal and tracebacks go nowhere.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

ENV_DEBUG = "STUDIO_DEBUG"


def wanted(flag: bool = False) -> bool:
    return flag or os.environ.get(ENV_DEBUG, "").strip().lower() not in ("", "0", "false", "no")


def log_path() -> Path:
    from platformdirs import user_log_dir

    return Path(user_log_dir("studio")) / "studio.log"


def enable(path: Path | None = None) -> Path:
    """Append studio's log at DEBUG level to `path` (default: the user log folder); returns the path."""
    path = path or log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(threadName)s %(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("studio")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return path
