"""Request and response shapes of the HTTP API, for validation and the OpenAPI document.

Responses are built by `domain.views` as plain dicts; these models describe them
(the `responses=` of each route) rather than re-validating every reply.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class OpenCase(BaseModel):
    type: str = Field(description="case type, e.g. ipa_approval")
    details: dict[str, Any] = Field(default_factory=dict, description="the type's details")


class Action(BaseModel):
    """`{"action": "...", ...fields}`: the action's fields are the other top-level keys."""

    model_config = ConfigDict(extra="allow")

    action: str = Field(description="an action name of the case's type, e.g. endorse")


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: str


class Me(BaseModel):
    email: str
    name: str
    roles: list[str]
    manager: str | None


class LinkOut(BaseModel):
    id: str
    relation: str


class CaseOut(BaseModel):
    """A case. Confidential cases seen in outline carry only id, type, status, stage,
    outcome and actions."""

    id: str
    type: str
    status: str
    stage: str
    outcome: str | None
    requester: str | None = None
    assignee: str | None = None
    team: str | None = None
    due_at: str | None = None
    overdue: bool | None = None
    escalation_level: int | None = None
    opened_at: str | None = None
    updated_at: str | None = None
    closed_at: str | None = None
    details: dict[str, Any] | None = None
    links: list[LinkOut] | None = None
    actions: list[str]


class CaseList(BaseModel):
    items: list[CaseOut]
    total: int


class EventOut(BaseModel):
    seq: int
    at: str
    actor: str
    kind: str
    stage: str | None
    data: dict[str, Any]
    hash: str
    prev_hash: str


class EventList(BaseModel):
    items: list[EventOut]
