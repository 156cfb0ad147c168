"""`casework`: the command line of shared/API.md.

Case commands call the same service functions as the API, as the person named
by `--as`, and print JSON. Every failure exits non-zero with one line on
stderr, `casework: <field>: <reason>`, so scripts and people both can act on it.
The grammar is `app.cli.parser`'s, what each command does `app.cli.commands`'.
"""

from __future__ import annotations

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


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error already reported in one line
        return stop.code if isinstance(stop.code, int) else 2
    command = COMMANDS[(args.command, getattr(args, "subcommand", None))]
    try:
        return command(Settings.from_env(), args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # every failure is one line; a traceback helps no operator
        print(f"{PROG}: {_one_line(error)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
