"""What each `casework` command does. Case commands call the same service functions as
the API, as the person named by `--as`; heavy modules are imported when a command runs,
so `casework --help` stays quick."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import make_url
from sqlalchemy.orm import Session

from app.cli.output import case_lines, case_table
from app.platform.settings import Settings

if TYPE_CHECKING:
    from app.service.services import Services


class CliError(Exception):
    """A reason to stop, already worded for the person at the terminal."""


def _read_json(path: str | None) -> Any:
    """A JSON file's contents (`-` is stdin); {} when no file is given."""
    if path is None:
        return {}
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CliError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _in_session(settings: Settings, work: Callable[[Session], Any]) -> Any:
    from app.platform.db import make_engine, session_factory

    engine = make_engine(settings.database_url)
    try:
        with session_factory(engine).begin() as session:
            return work(session)
    finally:
        engine.dispose()


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from app.platform.db import migrate

    migrate(settings.database_url)
    print(f"migrated {make_url(settings.database_url).render_as_string(hide_password=True)}")
    return 0


def _people_import(settings: Settings, args: argparse.Namespace) -> int:
    from app.service.people import import_people

    text = Path(args.file).read_text(encoding="utf-8")
    result = _in_session(settings, lambda s: import_people(s, text))
    print(f"created {result.created}, updated {result.updated}")
    return 0


async def _people_deactivate(settings: Settings, args: argparse.Namespace) -> int:
    from app.runtime.bootstrap import running
    from app.service.leavers import deactivate

    async with running(settings) as svc:
        done = await deactivate(svc, email=args.email, reason="casework people deactivate")
    state = "deactivated" if done.was_active else "already deactivated"
    print(f"{done.email}: {state}, {done.tokens_revoked} tokens revoked")
    for case_id, moved in done.moved.items():
        print(f"{case_id}: {', '.join(moved)}")
    for case_id, why in done.stuck.items():
        print(f"{case_id}: not moved: {why}", file=sys.stderr)
    return 0


def _users_token(settings: Settings, args: argparse.Namespace) -> int:
    from app.service.auth import issue_token

    print(_in_session(settings, lambda s: issue_token(s, args.email)))
    return 0


def _audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from app.service.audit import verify

    result = _in_session(settings, lambda s: verify(s, args.id))
    if not result.ok:
        raise CliError(f"audit: {result.first_problem}")
    print(f"ok: {result.cases_checked} cases, {result.events_checked} events")
    return 0


async def _cases(settings: Settings, args: argparse.Namespace) -> int:
    from app import service
    from app.runtime.bootstrap import running

    async with running(settings) as svc:
        actor = await service.actor_for(svc, email=args.as_email)
        if args.subcommand == "list":
            items, total = await service.list_cases(
                svc,
                actor=actor,
                type=args.type,
                status=args.status,
                stage=args.stage,
                team=args.team,
                assignee=args.assignee,
                overdue=args.overdue,
                q=args.q,
                limit=args.limit,
                offset=args.offset,
                sort=args.sort,
            )
            if _as_table(args):
                print(case_table(items, total, svc.policy.timezone))
            else:
                _print_json({"items": items, "total": total})
        elif args.subcommand == "show":
            _print_case(args, svc, await service.get_case(svc, actor=actor, case_id=args.id))
        elif args.subcommand == "open":
            details = _read_json(args.json_file)
            opened = await service.open_case(svc, actor=actor, case_type=args.type, details=details)
            _print_case(args, svc, opened)
        elif args.subcommand == "evidence":
            found = await service.evidence_download(
                svc, actor=actor, case_id=args.id, sha256=args.sha256
            )
            await asyncio.to_thread(_save, found.chunks(), args.out)
            if args.out != "-":
                print(f"{args.out}: {found.size} bytes, {found.media_type}, sha256 {found.sha256}")
        else:
            fields = _read_json(args.json_file)
            done = await service.act(
                svc, actor=actor, case_id=args.id, action=args.action, fields=fields
            )
            _print_case(args, svc, done)
    return 0


def _as_table(args: argparse.Namespace) -> bool:
    """Whether to print for a person: asked for, or by default on a terminal."""
    return bool(args.format == "table" or (args.format is None and sys.stdout.isatty()))


def _print_case(args: argparse.Namespace, svc: Services, case: dict[str, Any]) -> None:
    if _as_table(args):
        print(case_lines(case, svc.policy.timezone))
    else:
        _print_json(case)


async def _export(settings: Settings, args: argparse.Namespace) -> int:
    from app import service
    from app.runtime.bootstrap import running
    from app.service import exports

    async with running(settings) as svc:
        actor = await service.actor_for(svc, email=args.as_email)
        export = await exports.export(
            svc,
            actor=actor,
            what=args.subcommand,
            format=args.format,
            type=args.type,
            since=args.since,
            case_id=args.case,
        )
        if not args.out:
            async for chunk in export.chunks:
                sys.stdout.write(chunk)
            return 0
        # Written as it is read, beside the file: a failed export leaves no half a file.
        out = Path(args.out)
        partial = out.with_name(f".{out.name}.partial")
        try:
            with partial.open("w", encoding="utf-8", newline="") as f:
                async for chunk in export.chunks:
                    f.write(chunk)
            partial.replace(out)
        finally:
            partial.unlink(missing_ok=True)
    return 0


async def _policy_apply(settings: Settings, args: argparse.Namespace) -> int:
    from app.runtime.bootstrap import running
    from app.service.policy_apply import apply_policy
    from domain.policy import load_policy
    from domain.times import iso

    policy = load_policy(Path(args.file))  # malformed: one line naming the key, nothing told
    async with running(settings) as svc:
        moves = await apply_policy(svc, policy=policy, dry_run=args.dry_run)
    for move in moves:
        if move.moves:
            old, new = iso(move.old_due) or "none", iso(move.new_due) or "none"
            print(f"{move.case_id} {move.stage}: due {old} -> {new}")
    moved = sum(m.moves for m in moves)
    version = policy.version[:12]
    if args.dry_run:
        print(f"dry run: {moved} of {len(moves)} open cases would move under policy {version}")
    else:
        told = sum(m.outcome in ("moved", "unchanged") for m in moves)
        print(f"policy {version}: {told} open cases now under it, {moved} due times moved")
        if policy.version != svc.policy.version:
            print(f"new cases open under CASEWORK_POLICY_FILE: point it at {args.file}, restart")
    return 0


def _save(chunks: Iterable[bytes], out: str) -> None:
    """Write a download to `out` (`-`: stdout) a chunk at a time; a failed one leaves no file."""
    if out == "-":
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return
    target = Path(out)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("wb") as f:
            for chunk in chunks:
                f.write(chunk)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _retention_report(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from domain.policy import load_policy
    from domain.retention import retention_due
    from domain.times import iso

    policy = load_policy(settings.policy_file)
    items = _in_session(settings, lambda s: retention_due(s, policy, datetime.now(UTC)))
    for item in items:
        closed = iso(item.closed_at)
        print(f"{item.case_id} {item.type} {item.outcome} closed {closed}: {item.action}")
    counts = {a: sum(i.action == a for i in items) for a in ("anonymise", "purge")}
    kept = ", ".join(f"{t} {r.keep} then {r.action}" for t, r in sorted(policy.retention.items()))
    print(
        f"would anonymise {counts['anonymise']}, purge {counts['purge']} "
        f"(retention: {kept or 'none set, every case kept'})"
    )
    return 0


def _up(settings: Settings, args: argparse.Namespace) -> int:
    from app.runtime.stack import run_up  # heavy: imported when run

    if getattr(args, "oidc_demo", False):
        return asyncio.run(run_up(settings, oidc_demo=True))
    return asyncio.run(run_up(settings))


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from app.runtime.stack import run_worker

    return asyncio.run(run_worker(settings))


def _web(settings: Settings, args: argparse.Namespace) -> int:
    from app.runtime.stack import run_web

    return asyncio.run(run_web(settings))


def _async(
    command: Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]],
) -> Callable[[Settings, argparse.Namespace], int]:
    return lambda settings, args: asyncio.run(command(settings, args))


COMMANDS: dict[tuple[str, str | None], Callable[[Settings, argparse.Namespace], int]] = {
    ("up", None): _up,
    ("worker", None): _worker,
    ("web", None): _web,
    ("migrate", None): _migrate,
    ("people", "import"): _people_import,
    ("people", "deactivate"): _async(_people_deactivate),
    ("users", "token"): _users_token,
    ("audit", "verify"): _audit_verify,
    ("policy", "apply"): _async(_policy_apply),
    ("retention", "report"): _retention_report,
    **{("export", what): _async(_export) for what in ("cases", "events")},
    **{("cases", sub): _async(_cases) for sub in ("list", "show", "open", "act", "evidence")},
}
