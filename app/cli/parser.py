"""The command line's grammar: every command, subcommand and option of `casework`."""

from __future__ import annotations

import argparse
from typing import NoReturn

PROG = "casework"
CASE_ID = "the case's id, e.g. IPA-2026-000001"
LIST_FILTERS = {
    "type": "only this case type, e.g. ipa_approval",
    "status": "open or closed",
    "stage": "only cases at this stage, e.g. sac_review",
    "team": "only this team's queue: sac, sirt or hr",
    "assignee": "only cases assigned to this email",
    "q": "only cases whose text holds every word of this",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other failure; `--help` shows the usage.
        self.exit(2, f"{PROG}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Case management on Temporal.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("up", help="the whole embedded stack, in the foreground").add_argument(
        "--oidc-demo",
        action="store_true",
        help="also start a local OpenID Connect provider with the demo people (single sign-on)",
    )
    commands.add_parser("worker", help="one Temporal worker")
    commands.add_parser("web", help="one web server")
    commands.add_parser("migrate", help="apply database migrations")

    people = commands.add_parser("people", help="the directory").add_subparsers(
        dest="subcommand", required=True, metavar="SUBCOMMAND"
    )
    people.add_parser("import", help="load or update people from CSV").add_argument(
        "file",
        metavar="FILE.csv",
        help="columns email,name,manager_email,roles (roles ;-separated)",
    )
    people.add_parser(
        "deactivate", help="a leaver: no more sign-in or mail; their open work moves on"
    ).add_argument("email", help="the leaver's email, as in the directory")
    users = commands.add_parser("users", help="API tokens").add_subparsers(
        dest="subcommand", required=True, metavar="SUBCOMMAND"
    )
    users.add_parser("token", help="print a new API token").add_argument(
        "email", help="the person's email, as in the directory"
    )

    as_person = _Parser(add_help=False)
    as_person.add_argument(
        "--as", dest="as_email", required=True, metavar="EMAIL", help="act as this person"
    )
    case_output = _Parser(add_help=False)
    case_output.add_argument(
        "--format",
        choices=("table", "json"),
        help="how to print cases: table for people (times in the policy's time zone), json "
        "for scripts (the API's objects); default: table on a terminal, json otherwise",
    )
    # `list` and `show` take `--json` for `--format json`; on `open` and `act` it names
    # the input file (API.md).
    json_output = _Parser(add_help=False)
    json_output.add_argument(
        "--json", dest="format", action="store_const", const="json", help="--format json"
    )
    cases = commands.add_parser("cases", help="cases, as --as EMAIL").add_subparsers(
        dest="subcommand", required=True, metavar="SUBCOMMAND"
    )
    listing = cases.add_parser(
        "list", parents=[as_person, case_output, json_output], help="cases you may see"
    )
    for name, explained in LIST_FILTERS.items():
        listing.add_argument(f"--{name}", help=explained)
    listing.add_argument(
        "--overdue",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="only cases past their due time (--no-overdue: only those that are not)",
    )
    listing.add_argument(
        "--limit", type=int, default=50, help="at most this many cases (default 50, up to 200)"
    )
    listing.add_argument(
        "--offset", type=int, default=0, help="skip this many first (default 0), to page on"
    )
    listing.add_argument(
        "--sort",
        choices=("newest", "due"),
        default="newest",
        help="newest first, or soonest due first (among cases due at once, the oldest first)",
    )
    cases.add_parser(
        "show", parents=[as_person, case_output, json_output], help="one case"
    ).add_argument("id", help=CASE_ID)
    opening = cases.add_parser("open", parents=[as_person, case_output], help="open a case")
    opening.add_argument(
        "type",
        help="ipa_approval, policy_exception, abuse_investigation or disciplinary_referral",
    )
    opening.add_argument(
        "--json",
        dest="json_file",
        required=True,
        metavar="FILE",
        help="the case's details as a JSON object (- for stdin)",
    )
    acting = cases.add_parser(
        "act", parents=[as_person, case_output], help="take an action on a case"
    )
    acting.add_argument("id", help=CASE_ID)
    acting.add_argument("action", help="the action's name, e.g. endorse, approve, reject")
    acting.add_argument("--json", dest="json_file", metavar="FILE", help="the action's fields")
    evidence = cases.add_parser(
        "evidence", parents=[as_person], help="download an evidence file, its hash checked"
    )
    evidence.add_argument("id", help=CASE_ID)
    evidence.add_argument("sha256", help="the file's SHA-256, as the case's timeline records it")
    evidence.add_argument("--out", required=True, metavar="FILE", help="- for stdout")

    export = commands.add_parser("export", help="cases or events for auditors, as --as EMAIL")
    export_what = export.add_subparsers(dest="subcommand", required=True, metavar="WHAT")
    for what in ("cases", "events"):
        exporting = export_what.add_parser(what, parents=[as_person], help=f"export {what}")
        exporting.add_argument(
            "--format", choices=("csv", "jsonl"), default="jsonl", help="default: jsonl"
        )
        exporting.add_argument("--out", metavar="FILE", help="write here (default: stdout)")
        exporting.add_argument("--type", help="one case type")
        exporting.add_argument("--since", help="ISO date or date-time")
        exporting.add_argument("--case", help="one case id")

    policy = commands.add_parser("policy", help="the policy file").add_subparsers(
        dest="subcommand", required=True, metavar="SUBCOMMAND"
    )
    applying = policy.add_parser("apply", help="bring open cases under a new policy file")
    applying.add_argument("file", metavar="FILE", help="the new policy file (TOML)")
    applying.add_argument("--dry-run", action="store_true", help="list what would move")

    retention = commands.add_parser("retention", help="closed cases past retention")
    retention.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND").add_parser(
        "report", help="what the daily retention run would anonymise or purge now"
    )

    audit = commands.add_parser("audit", help="the audit trail").add_subparsers(
        dest="subcommand", required=True, metavar="SUBCOMMAND"
    )
    audit.add_parser("verify", help="check event hash chains").add_argument(
        "id", nargs="?", help="one case's chain (default: every case's)"
    )
    return parser
