"""The model library: finding, inspecting, hashing and safely loading weights.

Headless and light to import: torch and diffusers load only inside functions.
"""

from studio.models.resolve import BUILTIN_DIR, ModelNotFound, ModelRef, resolve

__all__ = ["BUILTIN_DIR", "ModelNotFound", "ModelRef", "resolve"]
