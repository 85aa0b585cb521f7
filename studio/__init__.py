"""studio: a keyboard-driven terminal studio for open-weight diffusion models.

Importing this package must stay cheap: no torch, no diffusers, no Textual.
"""

__version__ = "0.1.0"
