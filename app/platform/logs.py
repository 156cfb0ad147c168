"""Logs an operator can search by case: one JSON object a line, each carrying its case ID.

`CASEWORK_LOG_FORMAT=json` (production) or `text` (a terminal). The case ID comes from,
in order: an explicit `extra={"case_id": ...}`; Temporal's logger extras (`activity.logger`
and `workflow.logger` add the workflow ID, which is the case ID); the case the current
activity works for (`CaseIdInterceptor`, so a database or SMTP library's own log lines
inside an activity carry it too); the case in the path of the HTTP request being served
(`CaseIdMiddleware`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

current_case: ContextVar[str | None] = ContextVar("casework_case_id", default=None)

# /api/cases/IPA-2026-000001/..., /cases/IPA-2026-000001 (the pages)
_CASE_IN_PATH = re.compile(r"^(?:/api)?/cases/([A-Z]{2,5}-[0-9]{4}-[0-9]+)(?:/|$)")
# LogRecord's own attributes: anything else on a record came from `extra`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(case_suffix)s: %(message)s"


def case_id_of(record: logging.LogRecord) -> str | None:
    explicit = getattr(record, "case_id", None)
    if explicit:
        return str(explicit)
    for extra in ("temporal_activity", "temporal_workflow"):
        details = getattr(record, extra, None)
        if isinstance(details, dict) and details.get("workflow_id"):
            return str(details["workflow_id"])
    return current_case.get()


class CaseIdFilter(logging.Filter):
    """Puts `case_id` on every record (None when there is no case) for either format."""

    def filter(self, record: logging.LogRecord) -> bool:
        case_id = case_id_of(record)
        record.case_id = case_id
        record.case_suffix = f" [{case_id}]" if case_id else ""
        return True


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", "case_id", ...extras, "exception"?}."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "case_id": case_id_of(record),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry and key != "case_suffix":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def handler(log_format: str) -> logging.Handler:
    out = logging.StreamHandler(sys.stderr)
    out.addFilter(CaseIdFilter())
    out.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(_TEXT_FORMAT))
    return out


def configure(log_format: str, *, level: int = logging.INFO) -> None:
    """Route every logger (uvicorn's and Temporal's included) to one stderr handler."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "casework", False):
            root.removeHandler(old)
    new = handler(log_format)
    new.casework = True  # type: ignore[attr-defined]
    root.addHandler(new)
    root.setLevel(level)
    if log_format == "json":
        # The IDs go in the object, not tacked onto the message as a dict's repr.
        activity.logger.activity_info_on_message = False


def uvicorn_log_config(log_format: str) -> dict[str, Any] | None:
    """None (uvicorn leaves logging alone, its records reach our handler) for JSON;
    uvicorn's own coloured lines for text."""
    if log_format == "json":
        return None
    from uvicorn.config import LOGGING_CONFIG

    return LOGGING_CONFIG


class CaseIdMiddleware:
    """Marks the request's case (from its path) for every log line written while serving it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _CASE_IN_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        token = current_case.set(match[1])
        try:
            await self.app(scope, receive, send)
        finally:
            current_case.reset(token)


class CaseIdInterceptor(Interceptor):
    """Marks each activity's case (its workflow ID) for every log line the activity writes."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CaseIdActivityInbound(next)


class _CaseIdActivityInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        # The SDK runs a blocking activity in a copy of this context: the mark holds there.
        token = current_case.set(activity.info().workflow_id)
        try:
            return await self.next.execute_activity(input)
        finally:
            current_case.reset(token)
