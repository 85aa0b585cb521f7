"""Safety checkers: never loaded unless the user asks for one.

Official SD1.5/SD2 diffusers folders ship a `safety_checker` component that
blacks out whatever it flags. studio decides nothing on the user's behalf: a
folder's checker is passed over at load time (`component_overrides`), and only
`--safety-checker` (or `safety_checker = true` in the config) loads it. When an
opted-in checker fires, the job says so (`flagged_message`); a black square is
never saved as if it were the picture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.bounded import read_json_file

OPT_IN_HINT = "--safety-checker or safety_checker = true in the config"


def ships_safety_checker(folder: Path) -> bool:
    """Whether a diffusers folder's model_index.json names a safety checker component."""
    try:
        index = read_json_file(Path(folder) / "model_index.json", max_chars=1 << 20)
    except (OSError, ValueError):
        return False
    entry = index.get("safety_checker") if isinstance(index, dict) else None
    return isinstance(entry, list) and len(entry) == 2 and entry[0] is not None and entry[1] is not None


def component_overrides(folder: Path, enabled: bool) -> dict[str, Any]:
    """from_pretrained keywords: no checker (nor its image processor's use) unless `enabled`."""
    if enabled or not ships_safety_checker(folder):
        return {}
    return {"safety_checker": None, "requires_safety_checker": False}


class SafetyFlagged(RuntimeError):
    """An opted-in safety checker flagged images; the message is one line for the entry."""


def flagged_indices(output: Any) -> list[int]:
    """Which images of a pipeline output the checker flagged (none when no checker ran)."""
    flags = getattr(output, "nsfw_content_detected", None)
    if not flags:
        return []
    return [index for index, flag in enumerate(flags) if flag]


def flagged_message(flagged: list[int], total: int) -> str:
    which = (
        "the image" if total == 1
        else f"image{'s' if len(flagged) > 1 else ''} {', '.join(str(i + 1) for i in flagged)} of {total}"
    )
    return (
        f"the safety checker you turned on ({OPT_IN_HINT}) flagged {which}; it blacks flagged images out,"
        " so nothing was saved. Run without it to get the image"
    )


def refuse_flagged(output: Any, total: int) -> None:
    """An opted-in safety checker's blacked-out images fail the job, saying so."""
    flagged = flagged_indices(output)
    if flagged:
        raise SafetyFlagged(flagged_message(flagged, total))
