"""Errors the service layer raises, each with the HTTP status the API answers with.

The service layer knows nothing of HTTP, but each failure has exactly one
meaning in the contract (shared/API.md), so the status travels with the error
and the API, the CLI and the tests all read the same thing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from temporalio.service import RPCError, RPCStatusCode

from workflows.rules import CONFLICT, FORBIDDEN, INVALID, Refusal, plain_words


@dataclass(frozen=True)
class Problem:
    """One field's refusal among several: the field as the request names it
    (`details.account_kind`), the message (`details.account_kind: required`) and the same
    said to a person ("Choose the account kind")."""

    field: str | None
    message: str
    plain: str


class ServiceError(Exception):
    """A refusal or failure with a stable `code`, a message naming the field, and a status.

    `plain` says it to a person (the pages); `problems`, where several fields were
    refused at once, each of them (the first is `message`)."""

    code = "error"
    status = 500

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        plain: str | None = None,
        problems: tuple[Problem, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.plain = plain or plain_words(message)
        self.problems = problems
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return self.message


class BadRequest(ServiceError):
    code, status = "bad_request", 400


class Unauthorized(ServiceError):
    code, status = "unauthorized", 401


class Forbidden(ServiceError):
    code, status = "forbidden", 403


class NotFound(ServiceError):
    code, status = "not_found", 404


class Conflict(ServiceError):
    code, status = "conflict", 409


class Invalid(ServiceError):
    code, status = "invalid", 422


class Unavailable(ServiceError):
    code, status = "unavailable", 503


# Refusal codes (workflows.rules, and the `type` of a refused update's ApplicationError).
_BY_REFUSAL: dict[str, type[ServiceError]] = {
    FORBIDDEN: Forbidden,
    CONFLICT: Conflict,
    INVALID: Invalid,
}
REFUSAL_STATUS: dict[str, int] = {code: cls.status for code, cls in _BY_REFUSAL.items()}


def is_refusal(code: str | None) -> bool:
    return (code or "").lower() in _BY_REFUSAL


def for_refusal(code: str, message: str, plain: str | None = None) -> ServiceError:
    """The error for a refusal code ("forbidden", "conflict", "invalid"); unknown ones are 422."""
    return _BY_REFUSAL.get(code.lower(), Invalid)(message, plain=plain)


def from_refusal(refusal: Refusal) -> ServiceError:
    return for_refusal(refusal.code, refusal.message, refusal.plain)


def invalid_fields(refusals: list[Refusal], prefix: str = "") -> Invalid:
    """A 422 for several fields refused at once (`rules.field_problems`): its message is the
    first's, as the API has always answered; `problems` holds every one. `prefix` names
    the fields as the request does (`details.`)."""
    problems = tuple(
        Problem(
            f"{prefix}{r.field}" if r.field else None,
            f"{prefix}{r.message}" if r.field else r.message,
            r.plain,
        )
        for r in refusals
    )
    first = problems[0]
    return Invalid(first.message, plain=first.plain, problems=problems)


@contextmanager
def temporal_errors() -> Iterator[None]:
    """Temporal out of reach is a 503, not a crash."""
    try:
        yield
    except RPCError as e:
        if e.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            raise Unavailable(f"temporal: {e.message}") from e
        raise
    except RuntimeError as e:
        if str(e).startswith("Failed client connect"):  # a lazy client's first call
            raise Unavailable(f"temporal: {e}") from e
        raise
