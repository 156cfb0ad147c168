"""Secrets the embedded stack makes for itself, once, in its data directory."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, make: Callable[[], str]) -> str:
    """The text of `path`, written first from `make()` when there is none.

    Written whole to a private temporary file (mode 0600) and linked into place, so
    two processes starting at once agree on one secret and neither reads half of it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(make())
            # Another process may have got there first: theirs stands.
            with contextlib.suppress(FileExistsError):
                os.link(partial, path)
        finally:
            os.unlink(partial)
    return path.read_text(encoding="ascii")
