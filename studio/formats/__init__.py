"""Image metadata formats: what studio writes into images and what it reads from other tools.

Plain Python: no torch, no Textual. The engine writes through `png`; the
importers read AUTOMATIC1111, ComfyUI, InvokeAI, Fooocus and studio's own chunks.
"""
