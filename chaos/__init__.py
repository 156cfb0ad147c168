"""Fault injection: Casework's real parts (dev server, worker processes, records database,
SMTP relay) broken on purpose while cases run, then counted: nothing lost, nothing twice.

`python -m chaos` (or `make chaos`) runs every scenario; see `chaos/__main__.py`.
"""
