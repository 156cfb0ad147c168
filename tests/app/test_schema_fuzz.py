"""schemathesis against the real app's `/openapi.json`: the real service layer, a worker
on the time-skipping Temporal server, SQLite, served by uvicorn over real HTTP.

Every operation gets inputs that fit its schema and inputs that do not: no answer may
be a 5xx, and every error from the API is in API.md's shape `{"error": {"code",
"message"}}`. The short form (run by `make test`) is derandomised, so it is the same
run every time; the long form explores afresh:

    CASEWORK_FUZZ_EXAMPLES=500 .venv/bin/pytest -q tests/app/test_schema_fuzz.py

(`CASEWORK_FUZZ_EXAMPLES` examples per operation and generation mode; any value but the
default also turns derandomisation off.)
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import nullcontext
from typing import Any

import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode

from app.runtime.webapp import create_app
from app.service.services import Services
from tests.app.investigations import add_people, bearer, open_investigation

DEFAULT_EXAMPLES = 20
EXAMPLES = int(os.environ.get("CASEWORK_FUZZ_EXAMPLES") or DEFAULT_EXAMPLES)
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# Only the API promises the error shape; anything else (pages) may answer in HTML.
API_PATHS = ("/api/", "/healthz")


@pytest.fixture
async def served(services: Services) -> AsyncIterator[str]:
    """The app over real HTTP on a free port, in this event loop beside the worker."""
    app = create_app(lambda: nullcontext(services))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def problem_with(case: Case, response: requests.Response) -> str | None:
    """Why this answer breaks the contract, or None."""
    if response.status_code >= 500:
        return f"{response.status_code}: {response.text[:300]}"
    if response.status_code < 400 or not case.path.startswith(API_PATHS):
        return None
    try:
        body = response.json()
    except json.JSONDecodeError:
        return f"{response.status_code} is not JSON: {response.text[:300]}"
    error = body.get("error") if isinstance(body, dict) else None
    if (
        not isinstance(body, dict)
        or set(body) != {"error"}
        or not isinstance(error, dict)
        or set(error) != {"code", "message"}
        or not all(isinstance(v, str) and v for v in error.values())
    ):
        return f"{response.status_code} not in the error shape: {response.text[:300]}"
    return None


def explore(
    operation: Any, mode: GenerationMode, base_url: str, session: requests.Session, headers: Any
) -> str | None:
    """One operation in one generation mode: the (shrunk) failure, with a curl to repeat it."""
    seen: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=EXAMPLES == DEFAULT_EXAMPLES,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Case) -> None:
        response = case.call(base_url=base_url, session=session, headers=headers)
        problem = problem_with(case, response)
        if problem is not None:
            seen.append(f"{case.method} {case.path}: {problem}\n  {case.as_curl_command()}")
            raise AssertionError(problem)

    try:
        check()
    except AssertionError:
        return seen[-1]  # the shrunk example: hypothesis runs it last
    except Unsatisfiable:
        pass  # nothing invalid to generate for this operation in this mode
    return None


def fuzz(base_url: str, headers: dict[str, str], case_id: str) -> list[str]:
    """Every operation, both generation modes; the failures."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in MODES:
                started = time.monotonic()
                failure = explore(operation, mode, base_url, session, headers)
                if failure is not None:
                    failures.append(failure)
                took = time.monotonic() - started
                print(f"{operation.label} {mode.value}: {took:.1f} s")  # -s: where time goes
        # A real case too: random ids mostly meet 404, this meets the real handlers.
        for path in ("/api/cases/{id}", "/api/cases/{id}/events"):
            response = session.get(base_url + path.format(id=case_id), headers=headers)
            if response.status_code >= 500:
                failures.append(f"GET {path}: {response.status_code}")
    return failures


@pytest.mark.parametrize("empty_db_url", ["sqlite"], indirect=True)
async def test_no_input_gets_a_5xx_or_an_error_out_of_shape(
    services: Services, served: str
) -> None:
    add_people(services.sessions)
    case_id = await open_investigation(services)
    token = bearer(services.sessions, "admin@dwp.gov.uk")["admin@dwp.gov.uk"]
    failures = await asyncio.to_thread(fuzz, served, token, case_id)
    assert failures == [], "\n".join(failures)


def test_the_error_check_can_fail() -> None:
    """problem_with finds what it is there to find (a control for the test above)."""

    class Reply(requests.Response):
        def __init__(self, status: int, body: Any) -> None:
            super().__init__()
            self.status_code = status
            self._content = json.dumps(body).encode() if body is not None else b"<html>"

    class Where:
        path = "/api/cases"

    case: Any = Where()
    assert problem_with(case, Reply(500, {"error": {"code": "x", "message": "y"}}))
    assert problem_with(case, Reply(422, {"detail": "nope"}))
    assert problem_with(case, Reply(404, {"error": {"code": "x"}}))
    assert problem_with(case, Reply(400, None))
    assert problem_with(case, Reply(404, {"error": {"code": "not_found", "message": "m"}})) is None
