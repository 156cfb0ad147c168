"""The command line for people: every option and argument explains itself in --help,
and a closed pipe (`casework cases list | head -1`) ends it quietly with exit 0."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from app.cli.parser import build_parser
from app.service.people import import_people

CASEWORK = Path(sys.executable).with_name("casework")
PEOPLE = "email,name,manager_email,roles\njo@dwp.gov.uk,Jo,,\n"


def parsers(
    parser: argparse.ArgumentParser, path: str = "casework"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, f"{path} {name}")


def test_every_option_and_argument_has_help() -> None:
    missing = []
    for path, parser in parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                helped = {a.dest for a in action._choices_actions if a.help}
                missing += [f"{path} {n}" for n in action.choices if n not in helped]
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_help_shows_it() -> None:
    shown = subprocess.run(
        [CASEWORK, "cases", "list", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--limit" in shown and "at most this many" in shown


def run_into_closed_pipe(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run `casework` with its stdout a pipe whose reader has gone, as after `| head -1`."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before a byte is written: every write fails
    try:
        done = subprocess.run(
            [CASEWORK, *argv], stdout=write, stderr=subprocess.PIPE, env=env, timeout=120
        )
    finally:
        os.close(write)
    return done.returncode, done.stderr.decode()


def test_a_closed_pipe_ends_quietly(
    sessions: sessionmaker[Session], db_url: str, tmp_path: Path
) -> None:
    with sessions.begin() as session:
        import_people(session, PEOPLE)
    env = {
        **os.environ,
        "CASEWORK_DATA_DIR": str(tmp_path),
        "CASEWORK_DATABASE_URL": db_url,
        "CASEWORK_SMTP_HOST": "127.0.0.1",
    }
    for argv in (
        ["cases", "list", "--as", "jo@dwp.gov.uk", "--json"],
        ["cases", "list", "--as", "jo@dwp.gov.uk", "--format", "table"],
        ["audit", "verify"],
        ["--help"],
    ):
        code, err = run_into_closed_pipe(argv, env)
        assert (code, err) == (0, ""), argv
    # Through a shell, as people type it.
    shell = subprocess.run(
        f"set -o pipefail; '{CASEWORK}' users token jo@dwp.gov.uk | head -c0",
        shell=True,
        executable="/bin/bash",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (shell.returncode, shell.stderr) == (0, "")
