"""The policy file (TOML): service levels per case type and stage, and the holiday region.

Read once at start-up; a malformed file stops start-up with a `PolicyError`
naming the full key (`sla.<case_type>.<stage>.<key>`), the reason and the line
(`(line 12)`; a missing key names its section's line), so an administrator can fix
it without reading code. Each case copies the part it
runs under (`Policy.for_case`), with `version` (the file's sha256), when it opens.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from domain.calendar import (
    DEFAULT_DAY_ENDS,
    DEFAULT_REGION,
    DEFAULT_TIMEZONE,
    WorkingCalendar,
    check_region,
    extra_days,
    time_of_day,
    zone,
)
from workflows.common import CasePolicy, StageDurations
from workflows.durations import Duration, parse_duration

# Every stage of DESIGN.md's table: each needs a section in the policy file.
REQUIRED_STAGES: dict[str, tuple[str, ...]] = {
    "ipa_approval": (
        "manager_endorsement",
        "sac_review",
        "awaiting_info",
        "awaiting_exception",
        "active",
    ),
    "policy_exception": ("triage", "awaiting_info", "risk_assessment", "decision", "active"),
    "abuse_investigation": ("triage", "investigation", "review"),
    "disciplinary_referral": ("hr_review", "hearing", "appeal_window", "appeal"),
}

# The policy file shipped with the code: CASEWORK_POLICY_FILE's default.
DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.toml")

_CALENDAR_KEYS = ("bank_holidays", "extra_holidays", "timezone", "working_day_ends")
_COMMON_KEYS = ("sla", "remind", "escalate_every")
# Stage-specific keys; every one of them is required where it is allowed.
_EXTRA_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("ipa_approval", "awaiting_info"): ("lapse",),
    ("policy_exception", "awaiting_info"): ("lapse",),
    ("ipa_approval", "active"): ("attest_every",),
    ("policy_exception", "active"): ("expiry_notice",),
}
# A reminder at or after its deadline would never be useful: (earlier, later) pairs.
_ORDERED = (("remind", "sla"), ("remind", "lapse"))
# Only to compare two ISO durations: months differ in length, 30 days is close enough.
_DAYS_PER_MONTH = 30


class PolicyError(ValueError):
    """The policy file is malformed; the message names the key and the reason."""


@dataclass(frozen=True)
class Retention:
    """How long a closed case of one type is kept ([retention.<type>]), and what then."""

    keep: str  # an ISO-8601 duration from the case's closing, e.g. "P2Y"
    action: str  # "anonymise" or "purge"


RETENTION_ACTIONS = ("anonymise", "purge")


@dataclass(frozen=True)
class Policy:
    version: str  # sha256 hex of the file's bytes
    bank_holidays: str  # region code, e.g. "GB-ENG"
    stages: dict[str, dict[str, StageDurations]]  # case type -> stage -> durations
    extra_holidays: tuple[str, ...] = ()  # ISO dates off besides the region's bank holidays
    retention: dict[str, Retention] = field(default_factory=dict)  # case type -> rule
    timezone: str = DEFAULT_TIMEZONE  # working days judged, and times shown, in this zone
    working_day_ends: str = DEFAULT_DAY_ENDS  # a working-day SLA is due at this local time

    @cached_property
    def calendar(self) -> WorkingCalendar:
        """The working-day calendar new cases run on."""
        return WorkingCalendar.of(
            self.bank_holidays, self.extra_holidays, self.timezone, self.working_day_ends
        )

    def for_case(self, case_type: str) -> CasePolicy:
        """The part a case of `case_type` runs under (a copy); KeyError for an unknown type."""
        if case_type not in self.stages:
            raise KeyError(f"no policy for case type {case_type!r}")
        return CasePolicy(
            version=self.version,
            bank_holidays=self.bank_holidays,
            extra_holidays=list(self.extra_holidays),
            timezone=self.timezone,
            working_day_ends=self.working_day_ends,
            stages={
                name: replace(durations, extra=dict(durations.extra))
                for name, durations in self.stages[case_type].items()
            },
        )


def load_policy(path: Path) -> Policy:
    """Read and check the policy file; PolicyError (prefixed with the path) if it is malformed."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise PolicyError(f"{path}: cannot read the policy file: {e.strerror}") from e
    try:
        return parse_policy(raw)
    except PolicyError as e:
        raise PolicyError(f"{path}: {e}") from None


def parse_policy(text: str | bytes) -> Policy:
    """Check a policy file's contents and return the `Policy`; PolicyError if malformed."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise PolicyError(f"the policy file is not UTF-8 text: {e}") from None
    except tomllib.TOMLDecodeError as e:  # its message names the line and column
        raise PolicyError(f"the policy file is not valid TOML: {e}") from None
    try:
        return _policy(data, raw)
    except PolicyError as e:
        raise PolicyError(_with_line(str(e), raw.decode("utf-8"))) from None


def _policy(data: dict[str, Any], raw: bytes) -> Policy:
    _reject_unknown(data, "", ("calendar", "sla", "retention"), "section")
    calendar = _table(data, "calendar", "", default={})
    _reject_unknown(calendar, "calendar.", _CALENDAR_KEYS, "key")
    region = calendar.get("bank_holidays", DEFAULT_REGION)  # DESIGN: England and Wales
    timezone = calendar.get("timezone", DEFAULT_TIMEZONE)
    day_ends = calendar.get("working_day_ends", DEFAULT_DAY_ENDS)
    for key, check, value in (
        ("bank_holidays", check_region, region),
        ("timezone", zone, timezone),
        ("working_day_ends", time_of_day, day_ends),
    ):
        try:
            check(value)
        except ValueError as e:
            raise PolicyError(f"calendar.{key}: {e}") from None
    extra = _extra_holidays(calendar.get("extra_holidays", []))
    retention = _retention(_table(data, "retention", "", default={}))
    sla = _table(data, "sla", "")
    _reject_unknown(sla, "sla.", REQUIRED_STAGES, "case type")
    stages: dict[str, dict[str, StageDurations]] = {}
    for case_type, stage_names in REQUIRED_STAGES.items():
        sections = _table(sla, case_type, "sla.")
        _reject_unknown(sections, f"sla.{case_type}.", stage_names, f"stage of {case_type}")
        stages[case_type] = {
            stage: _stage(case_type, stage, _table(sections, stage, f"sla.{case_type}."))
            for stage in stage_names
        }
    return Policy(
        hashlib.sha256(raw).hexdigest(), region, stages, extra, retention, timezone, day_ends
    )


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)
_ERROR_KEY = re.compile(r"^([A-Za-z0-9_.-]+): ")


def _dotted(path: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in path.split("."))


def _key_lines(text: str) -> dict[str, int]:
    """Each table's and key's full dotted name -> the line it is on (first mention).

    A line scanner, not a parser: tomllib has already checked the syntax, and this only
    has to find where a name is written. A table named only through its children (`sla`
    of `[sla.ipa_approval.active]`) is at the first line that names it.
    """
    lines: dict[str, int] = {}
    table = ""
    for n, line in enumerate(text.splitlines(), start=1):
        if header := _HEADER.match(line):
            table = _dotted(header.group(1))
            parts = table.split(".")
            for i in range(1, len(parts) + 1):
                lines.setdefault(".".join(parts[:i]), n)
        elif key := _KEY.match(line):
            name = _dotted(key.group(1))
            lines.setdefault(f"{table}.{name}" if table else name, n)
    return lines


def _with_line(message: str, text: str) -> str:
    """`message` (which starts with the dotted key) with the line of that key, or of the
    nearest section around it when the key itself is missing from the file."""
    found = _ERROR_KEY.match(message)
    if found is None:
        return message
    lines = _key_lines(text)
    parts = found.group(1).split(".")
    for i in range(len(parts), 0, -1):
        line = lines.get(".".join(parts[:i]))
        if line is not None:
            where = "line" if i == len(parts) else f"in [{'.'.join(parts[:i])}], line"
            return f"{message} ({where} {line})"
    return message


def _extra_holidays(value: Any) -> tuple[str, ...]:
    key = "calendar.extra_holidays"
    if not isinstance(value, list):
        raise PolicyError(f'{key}: must be a list of ISO dates, e.g. ["2026-06-08"]')
    # TOML may give real dates (2026-06-08) or strings ("2026-06-08"): kept as text.
    texts = [v.isoformat() if isinstance(v, date) else v for v in value]
    try:
        extra_days(texts)
    except ValueError as e:
        raise PolicyError(f"{key}: {e}") from None
    return tuple(sorted(set(texts)))


def _retention(table: dict[str, Any]) -> dict[str, Retention]:
    """[retention.<case type>] keep = "P2Y", action = "anonymise" | "purge"; optional."""
    _reject_unknown(table, "retention.", REQUIRED_STAGES, "case type")
    rules: dict[str, Retention] = {}
    for case_type in table:
        section = _table(table, case_type, "retention.")
        prefix = f"retention.{case_type}"
        _reject_unknown(section, f"{prefix}.", ("keep", "action"), "key")
        for key in ("keep", "action"):
            if key not in section:
                raise PolicyError(f"{prefix}.{key}: missing (required in this section)")
        keep = _duration(f"{prefix}.keep", section["keep"])
        if keep.working_days is not None:
            raise PolicyError(f'{prefix}.keep: {section["keep"]!r} must be ISO-8601, e.g. "P2Y"')
        action = section["action"]
        if action not in RETENTION_ACTIONS:
            raise PolicyError(
                f"{prefix}.action: {action!r} is not one of {', '.join(RETENTION_ACTIONS)}"
            )
        rules[case_type] = Retention(section["keep"], action)
    return rules


def _table(
    parent: dict[str, Any], name: str, prefix: str, default: dict[str, Any] | None = None
) -> dict[str, Any]:
    if name not in parent:
        if default is not None:
            return default
        raise PolicyError(f"{prefix}{name}: missing section")
    value = parent[name]
    if not isinstance(value, dict):
        raise PolicyError(f"{prefix}{name}: must be a section ([{prefix}{name}]), not a value")
    return value


def _reject_unknown(table: dict[str, Any], prefix: str, allowed: Iterable[str], what: str) -> None:
    allowed = tuple(allowed)
    for name in table:
        if name not in allowed:
            raise PolicyError(
                f"{prefix}{name}: unknown {what} (expected one of: {', '.join(allowed)})"
            )


def _stage(case_type: str, stage: str, table: dict[str, Any]) -> StageDurations:
    prefix = f"sla.{case_type}.{stage}"
    extras = _EXTRA_KEYS.get((case_type, stage), ())
    _reject_unknown(table, f"{prefix}.", _COMMON_KEYS + extras, "key")
    # Waiting on the requester stops the clock: that stage lapses instead of falling due.
    required = ("remind", *extras) if stage == "awaiting_info" else ("sla", *extras)
    for key in required:
        if key not in table:
            raise PolicyError(f"{prefix}.{key}: missing (required in this section)")
    parsed = {key: _duration(f"{prefix}.{key}", value) for key, value in table.items()}
    for earlier, later in _ORDERED:
        both = earlier in parsed and later in parsed
        if both and _shorter(parsed[earlier], parsed[later]) is False:
            raise PolicyError(
                f"{prefix}.{earlier}: {table[earlier]!r} must be shorter than "
                f"{later} {table[later]!r}"
            )
    return StageDurations(
        sla=table.get("sla"),
        remind=table.get("remind"),
        escalate_every=table.get("escalate_every"),
        extra={key: table[key] for key in extras},
    )


def _duration(key: str, value: Any) -> Duration:
    try:
        duration = parse_duration(value)
    except ValueError as e:
        raise PolicyError(f"{key}: {e}") from None
    if not duration.working_days and not duration.months and not duration.elapsed:
        raise PolicyError(f"{key}: {value!r} must be longer than zero")
    return duration


def _shorter(a: Duration, b: Duration) -> bool | None:
    """Whether `a` < `b`; None when one is working days and the other ISO (not comparable)."""
    if a.working_days is not None and b.working_days is not None:
        return a.working_days < b.working_days
    if a.working_days is None and b.working_days is None:
        return _approx_elapsed(a) < _approx_elapsed(b)
    return None


def _approx_elapsed(d: Duration) -> timedelta:
    return d.elapsed + timedelta(days=_DAYS_PER_MONTH * d.months)
