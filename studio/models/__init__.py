"""The model library: finding, inspecting, hashing and safely loading weights.

Headless and light to import: torch and diffusers load only inside functions.
"""

from studio.builtin import BUILTIN_DIR
from studio.models.library import ModelLibrary
from studio.models.resolve import ModelNotFound, ModelRef

__all__ = ["BUILTIN_DIR", "ModelLibrary", "ModelNotFound", "ModelRef"]
