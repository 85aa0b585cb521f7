"""Making images bigger: the built-in upscalers, the user's own upscaler files, tiling.

Plain Python at import; torch and PIL are imported by the functions that need them.
"""
