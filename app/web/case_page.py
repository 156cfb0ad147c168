"""The case page (`/cases/{id}`) and its action forms (`/cases/{id}/actions/{action}`).

What it shows is what `service.get_case` gives this viewer: a confidential case
seen in outline shows only its outline (and any action the viewer still has, such
as a subject's appeal). Each form is an action of the case's `actions`, its fields
from the action's table; a refusal comes back beside the field it names.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from app import service
from app.service.errors import NotFound, ServiceError
from app.web.fields import OBJECT_FIELDS, Widget, error_field, from_form, widgets
from app.web.forms import Form, posted_form
from app.web.render import render
from app.web.resume import take_typed
from app.web.session import flash, services_of, signed_in
from domain import text
from domain.sla import sla_badge
from domain.views import may_export
from workflows.common import OPEN, Actor
from workflows.registry import CASE_TYPES
from workflows.rules import CaseTypeRules, Field

router = APIRouter()
Me = Annotated[Actor, Depends(signed_in)]
Posted = Annotated[Form, Depends(posted_form)]

# Fields the API's evidence upload fills in, not a person typing into a form.
FILLED_BY_UPLOAD = {("add_evidence", "size"), ("add_evidence", "media_type")}
UPLOAD = "upload_evidence"  # the evidence upload form's name (app.web.evidence)
DANGEROUS = {"decline", "reject", "revoke", "withdraw", "retire", "no_further_action"}


@dataclass(frozen=True)
class ActionForm:
    name: str
    label: str
    policy: str | None
    fields: list[Widget]
    danger: bool


@dataclass(frozen=True)
class TypedBack:
    """A form whose sign-in ended before it was sent (`app.web.resume`), shown again."""

    action: str
    label: str
    open: bool  # still an action of the viewer's here: its form is filled in again
    values: dict[str, str]


@dataclass(frozen=True)
class Refused:
    """An action the service refused: its message, and the field it names, if any."""

    action: str
    message: str
    status: int
    field: str | None
    values: dict[str, str]


def rules_for_id(case_id: str) -> CaseTypeRules | None:
    """A case's type from its id's prefix (IPA-2026-000001), before reading it."""
    prefix = case_id.split("-", 1)[0].upper()
    return next((r for r in CASE_TYPES.values() if r.prefix == prefix), None)


def stage_path(rules: CaseTypeRules, case: dict[str, Any]) -> list[tuple[str, str]]:
    """Each stage of the type's own list with where the case is: done, current or later."""
    if case["status"] != OPEN:
        return [(stage, "done") for stage in rules.stages]
    here = rules.stages.index(case["stage"]) if case["stage"] in rules.stages else -1
    return [
        (stage, "done" if i < here else "current" if i == here else "later")
        for i, stage in enumerate(rules.stages)
    ]


def detail_rows(rules: CaseTypeRules, details: dict[str, Any]) -> list[tuple[str, Any, str | None]]:
    """(label, value, policy section) in the order of the type's details table."""
    known = {spec.name for spec in rules.details}
    rows = [
        (text.label(f.name), shown(f, details[f.name]), f.policy)
        for f in rules.details
        if f.name in details
    ]
    rows += [
        (text.label(name), value, None) for name, value in details.items() if name not in known
    ]
    return rows


def shown(spec: Field, value: Any) -> Any:
    """A value as its field's kind reads best: choices in words, an object's parts in
    the order of its table."""
    if spec.kind == "choice":
        return text.words(value)
    parts = OBJECT_FIELDS.get(spec.name)
    if parts and isinstance(value, dict):
        ordered = {p.name: shown(p, value[p.name]) for p in parts if p.name in value}
        return {**ordered, **{k: v for k, v in value.items() if k not in ordered}}
    return value


def action_forms(
    rules: CaseTypeRules,
    case: dict[str, Any],
    pickers: dict[str, list[dict[str, str]]] | None = None,
) -> list[ActionForm]:
    """A form per action the viewer may take; an assigning action's person field is a
    picker of `pickers[action]`, the people it may assign (`service.eligible_assignees`)."""
    forms = []
    for name in case["actions"]:
        rule = rules.action(name, case["stage"])
        specs = tuple(f for f in rule.fields if (name, f.name) not in FILLED_BY_UPLOAD)
        fields = widgets(rules.type, specs, "")
        if rule.assigns is not None and pickers is not None and name in pickers:
            options = tuple(
                (p["email"], f"{p['name']} ({p['email']})" if p["name"] else p["email"])
                for p in pickers[name]
            )
            fields = [
                replace(w, control="person", options=options) if w.name == rule.assigns.field else w
                for w in fields
            ]
        forms.append(
            ActionForm(
                name=name,
                label=rule.label or text.label(name),
                policy=rule.policy,
                fields=fields,
                danger=name in DANGEROUS,
            )
        )
    return forms


def upload_form(rules: CaseTypeRules, forms: list[ActionForm]) -> ActionForm | None:
    """Where the viewer may add evidence, a second form for it: a file, uploaded (the
    API's evidence upload, which takes `add_evidence` with the file's SHA-256)."""
    evidence = next((f for f in forms if f.name == "add_evidence"), None)
    if evidence is None:
        return None
    fields = [w for w in evidence.fields if w.name in ("description", "url")]
    return ActionForm(UPLOAD, "Upload an evidence file", evidence.policy, fields, False)


async def show_case(
    request: Request, me: Actor, case_id: str, refused: Refused | None = None
) -> Response:
    svc = services_of(request)
    case = await service.get_case(svc, actor=me, case_id=case_id, owner=True)
    rules = CASE_TYPES[case["type"]]
    whole = "details" in case
    events = await service.case_events(svc, actor=me, case_id=case_id) if whole else []
    pickers = {
        name: await service.eligible_assignees(svc, actor=me, case_id=case_id, action=name)
        for name in case["actions"]
        if rules.action(name, case["stage"]).assigns is not None
    }
    forms = action_forms(rules, case, pickers)
    upload = upload_form(rules, forms)
    field_errors: dict[str, dict[str, str]] = {}
    values: dict[str, dict[str, str]] = {}
    top_error = None
    if refused is not None:
        every = [*forms, *([upload] if upload else [])]
        form = next((f for f in every if f.name == refused.action), None)
        names = {w.name for w in form.fields} | {"file"} if form else set()
        if form is not None:
            values[form.name] = refused.values
            if refused.field in names:
                field_errors[form.name] = {str(refused.field): refused.message}
        top_error = refused
    typed_back = None
    if refused is None and (typed := take_typed(request, me)) and typed.action:
        still = any(f.name == typed.action for f in forms)
        if still:
            values[typed.action] = typed.values
        label = rules.by_name[typed.action].label if typed.action in rules.by_name else None
        typed_back = TypedBack(typed.action, label or text.label(typed.action), still, typed.values)
    return render(
        request,
        "case.html",
        status_code=refused.status if refused else 200,
        active="work",
        case=case,
        whole=whole,
        badge=sla_badge(case),
        stages=stage_path(rules, case),
        details=detail_rows(rules, case.get("details") or {}),
        events=events,
        forms=forms,
        upload=upload,
        max_upload_mb=max(svc.settings.evidence_max_bytes // (1024 * 1024), 1),
        field_errors=field_errors,
        values=values,
        refused=top_error,
        typed=typed_back,
        audits=whole and may_export(me),
    )


@router.get("/cases/{case_id}")
async def case_page(request: Request, me: Me, case_id: str) -> Response:
    return await show_case(request, me, case_id)


@router.post("/cases/{case_id}/actions/{action}")
async def take_action(
    request: Request, me: Me, case_id: str, action: str, form: Posted
) -> Response:
    rules = rules_for_id(case_id)
    rule = rules.by_name.get(action) if rules else None
    fields = from_form(rule.fields, form) if rule else {}
    svc = services_of(request)
    try:
        after = await service.act(svc, actor=me, case_id=case_id, action=action, fields=fields)
    except NotFound:
        raise
    except ServiceError as e:
        if e.status >= 500:
            raise
        typed = {k: v for k, v in form.items() if k != "csrf_token"}
        refused = Refused(action, e.message, e.status, error_field(e.message), typed)
        return await show_case(request, me, case_id, refused)
    label = (rule.label if rule and rule.label else text.label(action)) or action
    if after["status"] == OPEN:
        now = f"now at the {text.words(after['stage'])} stage"
    else:
        now = f"closed: {text.words(after.get('outcome'))}"
    flash(request, f"{label}: done. {case_id} is {now}.")
    return RedirectResponse(f"/cases/{case_id}", status_code=303)
