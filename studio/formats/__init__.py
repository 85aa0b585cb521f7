"""Image metadata formats: what studio writes into images and what it reads from other tools.

Plain Python: no torch, no Textual, and nothing from studio's engine, store,
models or faces; a caller that wants models found locally passes a locator.
The engine writes through `png`; `importer` reads studio's own chunk,
AUTOMATIC1111, ComfyUI, InvokeAI and Fooocus, one module each.
"""

from studio import __version__

SOFTWARE = f"studio {__version__}"  # the name studio signs its images with
