"""The worker's memory with many open cases, against a bare worker holding as many.

    python -m bench.memory [--counts 5000,10000,20000] [--budget S] [--users C] [--quick]

Starts its own dev server, a migrated SQLite records database with people, an SMTP
sink (`python -m bench.sink`), and two workers as processes of their own: `casework worker`
(the product, as deployed, its workflow cache at the default
`CASEWORK_WORKFLOW_CACHE_SIZE`) and a bare worker running `bench/bare.py`'s no-op
workflow with the same cache size. Opens IPA cases through the service layer, each
left waiting in `manager_endorsement` (a timer running), and starts as many bare
workflows, each left waiting on its timer; after each count in `--counts` it reads
both workers' resident memory (VmRSS, and its peak VmHWM, from /proc). A side that
has not reached the next count within `--budget` seconds stops there, and the report
says how far it got.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shlex
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.api.workflowservice.v1 import CountWorkflowExecutionsRequest
from temporalio.client import Client
from temporalio.worker import Worker

from app import service
from app.platform.db import migrate
from app.platform.settings import DEFAULT_WORKFLOW_CACHE_SIZE, Settings
from app.runtime.bootstrap import running
from app.service.services import Services
from bench import rig
from bench.bare import OPENED, BareActivities, BareCase
from bench.ipa_throughput import IPA_PLAN, User, load_users
from bench.report import machine
from workflows import ipa_types

TARGET_MB = 300
CASEWORK_QUEUE = "casework-memory"
BARE_QUEUE = "bare-memory"
SETTLE_SECONDS = 3.0  # no mail for this long: the opened cases' background work is done


def rss_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) megabytes of a process, from /proc/<pid>/status."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024  # kB
    return fields["VmRSS"], fields["VmHWM"]


@dataclass
class Reading:
    opened: int
    seconds: float  # since the side started opening
    rss: float
    peak: float
    running: int  # open workflows on the server, both sides


@dataclass
class Side:
    name: str
    pid: int
    readings: list[Reading] = field(default_factory=list)
    reached: int = 0


async def running_workflows(client: Client, queue: str) -> int:
    count = await client.workflow_service.count_workflow_executions(
        CountWorkflowExecutionsRequest(
            namespace=rig.NAMESPACE,
            query=f"ExecutionStatus = 'Running' AND TaskQueue = '{queue}'",
        )
    )
    return int(count.count)


async def fill(
    side: Side,
    open_one: Callable[[int], Awaitable[None]],
    counts: list[int],
    users: int,
    budget: float,
    client: Client,
    queue: str,
    settled: Callable[[], Awaitable[None]],
) -> None:
    """Open cases `users` at a time, reading memory at each of `counts`."""
    numbers = itertools.count()
    start = time.perf_counter()
    deadline = time.monotonic() + budget
    for target in counts:

        async def user(target: int = target) -> None:
            while side.reached < target and time.monotonic() < deadline:
                side.reached += 1
                await open_one(next(numbers))

        await asyncio.gather(*(user() for _ in range(users)))
        await settled()
        rss, peak = rss_mb(side.pid)
        reading = Reading(
            side.reached,
            time.perf_counter() - start,
            rss,
            peak,
            await running_workflows(client, queue),
        )
        side.readings.append(reading)
        print(
            f"{side.name}: {reading.opened} opened in {reading.seconds:.0f} s,"
            f" {reading.running} running; RSS {rss:.0f} MB (peak {peak:.0f} MB)",
            flush=True,
        )
        if side.reached < target:
            return


def casework_opener(users: list[User], svc: Services) -> Callable[[int], Awaitable[None]]:
    async def open_one(n: int) -> None:
        user = users[n % len(users)]
        case = await service.open_case(
            svc,
            actor=user.employee,
            case_type=ipa_types.TYPE,
            details={
                "account_kind": "individual_professional",
                "platform": "X",
                "handle": f"@memory_{n}",
                "justification": "Promote job fairs",
                "device": "dwp_managed",
                "contact_email": user.employee.email,
            },
        )
        if case["stage"] != ipa_types.MANAGER_ENDORSEMENT:
            raise RuntimeError(f"{case['id']} is in {case['stage']}")

    return open_one


def bare_opener(client: Client) -> Callable[[int], Awaitable[None]]:
    run = uuid.uuid4().hex[:8]

    async def open_one(n: int) -> None:
        handle = await client.start_workflow(
            BareCase.run, IPA_PLAN, id=f"bare-{run}-{n}", task_queue=BARE_QUEUE
        )
        await handle.execute_update(OPENED, result_type=int)

    return open_one


async def quiet(counter: rig.SmtpSink) -> None:
    seen, since = counter.received, time.monotonic()
    while time.monotonic() - since < SETTLE_SECONDS:
        await asyncio.sleep(0.2)
        if counter.received != seen:
            seen, since = counter.received, time.monotonic()


async def settle_briefly() -> None:
    await asyncio.sleep(SETTLE_SECONDS)


async def start_process(*args: str, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            *args, env={**os.environ, **env}, stdout=out, stderr=asyncio.subprocess.STDOUT
        )


async def wait_polling(client: Client, queue: str, process: asyncio.subprocess.Process) -> None:
    """Until a worker polls `queue` (or its process has died)."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise SystemExit(f"the worker for {queue} exited with {process.returncode}")
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=rig.NAMESPACE,
                task_queue=TaskQueue(name=queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        if described.pollers:
            return
        await asyncio.sleep(0.3)
    raise SystemExit(f"no worker polled {queue} within a minute")


async def run(args: argparse.Namespace) -> None:
    sides: list[Side] = []
    with tempfile.TemporaryDirectory(prefix="casework-memory-") as tmp:
        workdir = Path(tmp)
        async with rig.smtp_sink(workdir) as mail, rig.dev_server(workdir) as server:
            url = f"sqlite:///{workdir / 'casework.db'}"
            migrate(url)
            env = {
                "CASEWORK_DATA_DIR": str(workdir / "casework"),
                "CASEWORK_DATABASE_URL": url,
                "CASEWORK_TEMPORAL_ADDRESS": server.address,
                "CASEWORK_TASK_QUEUE": CASEWORK_QUEUE,
                "CASEWORK_SMTP_HOST": "127.0.0.1",
                "CASEWORK_SMTP_PORT": str(mail.port),
            }
            settings = Settings.from_env(env)
            client = await Client.connect(server.address, namespace=rig.NAMESPACE)
            bin_dir = Path(sys.executable).parent
            bare = await start_process(
                sys.executable,
                "-m",
                "bench.memory",
                "--bare-worker",
                server.address,
                str(settings.workflow_cache_size),
                env={},
                log=workdir / "bare-worker.log",
            )
            casework = await start_process(
                str(bin_dir / "casework"),
                "worker",
                env=env,
                log=workdir / "casework-worker.log",
            )
            try:
                await wait_polling(client, BARE_QUEUE, bare)
                await wait_polling(client, CASEWORK_QUEUE, casework)
                for name, process in (("bare", bare), ("casework", casework)):
                    rss, _ = rss_mb(process.pid)
                    print(f"{name} worker idle: RSS {rss:.0f} MB", flush=True)
                bare_side = Side("bare", bare.pid)
                sides.append(bare_side)
                await fill(
                    bare_side,
                    bare_opener(client),
                    args.counts,
                    args.users,
                    args.budget,
                    client,
                    BARE_QUEUE,
                    settle_briefly,
                )
                async with running(settings) as svc:
                    users = await load_users(svc, args.users)
                    cw_side = Side("casework", casework.pid)
                    sides.append(cw_side)
                    await fill(
                        cw_side,
                        casework_opener(users, svc),
                        args.counts,
                        args.users,
                        args.budget,
                        client,
                        CASEWORK_QUEUE,
                        lambda: quiet(mail),
                    )
            finally:
                await rig.stop_process(casework)
                await rig.stop_process(bare)
                for log in ("casework-worker.log", "bare-worker.log"):
                    tail = (workdir / log).read_text(errors="replace")[-1500:]
                    if "Traceback" in tail or "Error" in tail:
                        print(f"--- {log} (tail)\n{tail}")
    print()
    print(report(sides, args.counts, settings.workflow_cache_size))


def report(sides: list[Side], counts: list[int], cache: int) -> str:
    by_side = {s.name: {r.opened: r for r in s.readings} for s in sides}
    lines = [
        f"workflow cache: {cache} per worker; target: Casework worker < {TARGET_MB} MB resident",
        "open cases  bare RSS MB (peak)  Casework RSS MB (peak)  Casework/bare  under target",
        "----------  ------------------  ----------------------  -------------  ------------",
    ]
    reached = sorted({n for readings in by_side.values() for n in readings})
    for n in reached:
        b, c = by_side.get("bare", {}).get(n), by_side.get("casework", {}).get(n)
        bare_cell = f"{b.rss:.0f} ({b.peak:.0f})" if b else "-"
        cw_cell = f"{c.rss:.0f} ({c.peak:.0f})" if c else "-"
        ratio = f"{c.rss / b.rss:.2f}" if b and c else "-"
        under = ("yes" if c.peak < TARGET_MB else "NO") if c else "-"
        lines.append(f"{n:>10}  {bare_cell:>18}  {cw_cell:>22}  {ratio:>13}  {under:>12}")
    for s in sides:
        if s.reached < counts[-1]:
            lines.append(
                f"{s.name}: reached {s.reached} of {counts[-1]} open cases within the budget"
                f" ({counts[-1] - s.reached} short)"
            )
    return "\n".join(lines)


async def bare_worker(address: str, cache: int) -> None:
    """The baseline worker process: bench/bare.py's workflow, no-op activities."""
    client = await Client.connect(address, namespace=rig.NAMESPACE)
    acts = BareActivities()
    worker = Worker(
        client,
        task_queue=BARE_QUEUE,
        workflows=[BareCase],
        activities=[acts.local, acts.activity],
        max_cached_workflows=cache,
    )
    await worker.run()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    p.add_argument("--counts", default="5000,10000,20000", help="open cases to read memory at")
    p.add_argument("--budget", type=float, default=1200.0, help="seconds per side, at most")
    p.add_argument("--users", type=int, default=20, help="cases opened at once")
    p.add_argument("--quick", action="store_true", help="200 and 400 cases: to try it")
    p.add_argument("--bare-worker", nargs=2, metavar=("ADDRESS", "CACHE"), help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.bare_worker:
        address, cache = args.bare_worker
        asyncio.run(bare_worker(address, int(cache)))
        return
    args.counts = sorted(int(c) for c in ("200,400" if args.quick else args.counts).split(","))
    if min(args.counts) < 1 or args.users < 1:
        raise SystemExit("--counts and --users must be 1 or more")
    print(machine())
    print(f"command: {shlex.join(['python', '-m', 'bench.memory', *sys.argv[1:]])}", end="\n\n")
    print(f"default workflow cache: {DEFAULT_WORKFLOW_CACHE_SIZE}")
    # SIGTERM too (a shell's background job ignores SIGINT): clean up, as for Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupted)
    asyncio.run(run(args))


def _interrupted(*_: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
