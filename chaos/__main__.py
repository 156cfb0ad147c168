"""Run the fault injection scenarios and print, for each, what was injected and what
was counted; exit 1 if anything was lost or duplicated (or a scenario broke).

    python -m chaos [--form short|long] [SCENARIO ...]

`short` (the default, and what CI runs) uses a few dozen cases per scenario; `long`
the sizes of docs/RELIABILITY.md (200 lifecycles under worker kills, 1,000 timers
across a server kill). CHAOS_SEED=<n> repeats a run's random moments; CHAOS_KEEP=1
keeps each scenario's work directory (server and worker logs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable

from chaos import database_outage, server_restart, smtp_outage, worker_kills
from chaos.forms import Form, form_from
from chaos.report import Report

Scenario = Callable[[Form, Report], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {
    worker_kills.NAME: worker_kills.run,
    server_restart.NAME: server_restart.run,
    smtp_outage.NAME: smtp_outage.run,
    database_outage.POSTGRES: database_outage.run_postgres,
    database_outage.SQLITE: database_outage.run_sqlite,
}


async def run_one(name: str, form: Form) -> Report:
    report = Report(name)
    began = time.monotonic()
    print(f"-- {name} ({form.name}, seed {form.seed}) ...", flush=True)
    try:
        await SCENARIOS[name](form, report)
    except Exception as exc:
        report.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    report.seconds = time.monotonic() - began
    print(report.text(), flush=True)
    return report


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--form", default=os.environ.get("CHAOS") or "short")
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=", ".join(SCENARIOS))
    args = parser.parse_args(argv)
    form = form_from(args.form)
    names = args.scenarios or list(SCENARIOS)
    for name in names:
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name!r} (one of {', '.join(SCENARIOS)})")
    reports = [await run_one(name, form) for name in names]
    failed = [r.scenario for r in reports if not r.ok]
    print(
        f"chaos {form.name} (seed {form.seed}): {len(reports) - len(failed)} of {len(reports)}"
        f" scenarios passed" + (f"; FAILED: {', '.join(failed)}" if failed else ""),
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
