"""The terminal studio: a Textual face on the engine and the session store.

`studio.tui.app` must stay free of torch and diffusers at import time; the
engine imports them on its own thread once the window has painted.
"""
