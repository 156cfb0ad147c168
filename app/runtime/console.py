"""What the serving commands (`casework up`, `worker`, `web`) tell the person at the terminal.

Its own module so that the stack and the dev server it starts can both speak
without importing each other; the CLI (above the runtime) catches `StackError` and
prints it as any other refusal, one line.
"""

from __future__ import annotations

import sys


class StackError(Exception):
    """The stack cannot start or run; the message says why and what to do."""


def say(message: str) -> None:
    """One short line for the person at the terminal (stderr: stdout is the banner's)."""
    print(f"casework: {message}", file=sys.stderr, flush=True)
