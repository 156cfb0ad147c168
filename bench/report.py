"""Figures of a benchmark run: percentiles, tallies per side, and the printed table."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.rig import ActivityStats, temporal_binary


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0-100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


@dataclass
class Tally:
    """One side (bare or Casework) at one concurrency, summed over its batches."""

    cases: int = 0
    seconds: float = 0.0  # from the first case starting to the last one's activities done
    opens: list[float] = field(default_factory=list)  # open a case, until it is recorded
    acts: list[float] = field(default_factory=list)  # one action (update), until it returns
    rpc: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    activities: dict[str, ActivityStats] = field(default_factory=lambda: defaultdict(ActivityStats))
    worker_cpu: float = 0.0  # this process: driver, service layer, workers
    server_cpu: float = 0.0
    other_cpu: float = 0.0  # the rest of the machine: the SMTP sink, and noise if much

    def rate(self) -> float:
        return self.cases / self.seconds if self.seconds else math.nan

    def others_busy(self) -> float:
        """CPUs' worth of other processes while this side ran (0.5: half a CPU)."""
        # Clock ticks are coarse: a quiet machine can come out a hair below zero.
        return max(0.0, self.other_cpu / self.seconds) if self.seconds else math.nan

    def cpu_per_case(self, seconds: float) -> float:
        return seconds / self.cases if self.cases else math.nan


def ratio(casework: float, bare: float) -> str:
    if math.isnan(casework) or math.isnan(bare) or not bare:
        return "-"
    return f"{casework / bare:.2f}"


def table(rows: list[tuple[str, str, str, str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def comparison(bare: Tally, casework: Tally, label: str) -> list[tuple[str, str, str, str]]:
    """Rows for one concurrency: throughput, latency, CPU per case."""
    rows = [
        (
            f"cases/s, {label}",
            f"{bare.rate():.1f}",
            f"{casework.rate():.1f}",
            ratio(casework.rate(), bare.rate()),
        )
    ]
    for name, p in (("p50", 50.0), ("p99", 99.0)):
        b, c = percentile(bare.acts, p), percentile(casework.acts, p)
        rows.append((f"update {name} ms, {label}", ms(b), ms(c), ratio(c, b)))
    b, c = percentile(bare.opens, 50), percentile(casework.opens, 50)
    rows.append((f"open p50 ms, {label}", ms(b), ms(c), ratio(c, b)))
    for name, attr in (("Python process", "worker_cpu"), ("dev server", "server_cpu")):
        b = bare.cpu_per_case(getattr(bare, attr))
        c = casework.cpu_per_case(getattr(casework, attr))
        rows.append((f"CPU ms/case, {name}, {label}", ms(b), ms(c), ratio(c, b)))
    b, c = bare.others_busy(), casework.others_busy()
    rows.append((f"other processes, CPUs busy, {label}", f"{b:.2f}", f"{c:.2f}", ""))
    return rows


def breakdown(tally: Tally) -> list[str]:
    """Where a Casework update's time goes: the Temporal update inside the service call,
    and the activities the worker ran (mean per call)."""
    lines = []
    for name in sorted(tally.rpc):
        values = tally.rpc[name]
        lines.append(
            f"  {name:<28} n={len(values):<4} p50 {ms(percentile(values, 50)):>7} ms"
            f"  p99 {ms(percentile(values, 99)):>7} ms"
        )
    for name in sorted(tally.activities):
        s = tally.activities[name]
        mean = s.seconds / s.count if s.count else math.nan
        lines.append(f"  activity {name:<19} n={s.count:<4} mean {ms(mean):>6} ms")
    return lines


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    try:
        version = subprocess.run(
            [temporal_binary(), "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        version = "temporal: unknown version"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{when}; {os.cpu_count()} CPUs, {model}; Python {platform.python_version()}; {version}"
        f"; Casework {revision()}"
    )


def revision() -> str:
    """The commit measured, and whether tracked files differ from it (read-only git)."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = _git(repo, "rev-parse", "--short", "HEAD")
        dirty = _git(repo, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "(not a git checkout)"
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()
