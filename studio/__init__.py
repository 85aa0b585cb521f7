"""studio: a keyboard-driven terminal studio for open-weight diffusion models.

Importing this package must stay cheap: no torch, no diffusers, no Textual.
"""

__version__ = "0.1.0"

import logging

# A library's manners: studio's log records go nowhere unless a face turns on
# the debug log (`--debug` or STUDIO_DEBUG=1), so a failed job is one line on
# the terminal, never a traceback.
logging.getLogger("studio").addHandler(logging.NullHandler())
