"""Sweeps: X/Y/Z grids over any recipe field, prompt S/R, wildcards and dynamic prompts.

`axes` parses one axis, `sweep` expands a base recipe into cells, `wildcards`
resolves `__name__` and `{a|b}` from a job's seed, `grid` draws the labelled
grid PNG, `run` queues a sweep through the service and records its grids.
Plain Python at import: PIL loads only when a grid is drawn.
"""
