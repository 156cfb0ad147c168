"""`casework`: the command line of shared/API.md.

Case commands call the same service functions as the API, as the person named
by `--as`, and print a table on a terminal, JSON otherwise. Every failure exits
non-zero with one line on stderr, `casework: <field>: <reason>`, so scripts and people
both can act on it; a reader that stops early (`casework cases list | head -1`) is not
a failure: the command ends quietly with 0.
The grammar is `app.cli.parser`'s, what each command does `app.cli.commands`'.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from app.cli.commands import COMMANDS, CliError
from app.cli.parser import PROG, build_parser
from app.platform.settings import Settings, SettingsError
from app.runtime.console import StackError
from app.service.errors import ServiceError
from domain.policy import PolicyError

# Failures whose message is already the whole story.
EXPECTED = (ServiceError, SettingsError, PolicyError, CliError, StackError)


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        text = f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    elif isinstance(error, EXPECTED):
        text = str(error)
    else:  # a fault, not a refusal: its type helps whoever reads the report
        text = f"{type(error).__name__}: {error}"
    return " ".join(text.split())


def _reader_gone() -> int:
    """Whoever read our output stopped (`casework cases list | head -1`): not a failure.
    Nothing more is written: stdout goes to /dev/null, so the interpreter's last flush
    at exit has nowhere to fail either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as stop:  # --help, or a usage error already reported in one line
            sys.stdout.flush()
            return stop.code if isinstance(stop.code, int) else 2
        command = COMMANDS[(args.command, getattr(args, "subcommand", None))]
        try:
            code = command(Settings.from_env(), args)
            sys.stdout.flush()  # a closed pipe shows here, not at exit
            return code
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:
            raise
        except Exception as error:  # every failure is one line; a traceback helps no operator
            print(f"{PROG}: {_one_line(error)}", file=sys.stderr)
            return 1
    except BrokenPipeError:
        return _reader_gone()


if __name__ == "__main__":
    sys.exit(main())
