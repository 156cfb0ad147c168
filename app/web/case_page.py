"""The case page (`/cases/{id}`) and its action forms (`/cases/{id}/actions/{action}`).

What it shows is what `service.get_case` gives this viewer: a confidential case
seen in outline shows only its outline (and any action the viewer still has, such
as a subject's appeal). Each form is an action of the case's `actions`, its fields
from the action's table. Beside them:

- every refused field at once, in plain words, in an error summary linked to each field;
- the question beside the answer box, when the requester is asked for information;
- for an action of this stage that is not the viewer's, the reason (`check_action`'s own
  words, through `service.unavailable_actions`): "You assessed this policy exception;
  another SAC lead must approve it (four eyes, policy 5.2)";
- an action the table marks `irreversible` asks for confirmation on a page of its own
  before it is sent;
- a page opened before the case moved on answers with what changed, not a raw refusal.

The timeline (MOJ Frontend's) shows people's names beside their emails, values in the
contract's words, the system's emails folded away, and filters by kind and order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from app import service
from app.service.errors import NotFound, ServiceError
from app.web.fields import OBJECT_FIELDS, Shown, Widget, all_names, from_form, placed, widgets
from app.web.forms import Form, posted_form
from app.web.render import render
from app.web.resume import take_typed
from app.web.session import flash, services_of, signed_in
from domain import text
from domain.sla import sla_badge
from domain.views import may_export
from workflows.common import OPEN, Actor
from workflows.registry import CASE_TYPES
from workflows.rules import ActionRule, CaseTypeRules, Field

router = APIRouter()
Me = Annotated[Actor, Depends(signed_in)]
Posted = Annotated[Form, Depends(posted_form)]

# Fields the API's evidence upload fills in, not a person typing into a form.
FILLED_BY_UPLOAD = {("add_evidence", "size"), ("add_evidence", "media_type")}
UPLOAD = "upload_evidence"  # the evidence upload form's name (app.web.evidence)
# An irreversible action that ends or refuses something: a red button (GOV.UK's warning
# button). Which actions are irreversible is the type's table's (`ActionRule.irreversible`).
ENDS = {"decline", "reject", "revoke", "withdraw", "retire", "no_further_action"}
# The page's own fields, posted beside the action's: the stage the page showed, and the
# answer of the confirmation page.
SEEN_STAGE, CONFIRMED = "seen_stage", "confirmed"
# Events the system writes about its own mail: folded away on the timeline.
SYSTEM_MAIL = ("emailed", "email_failed")
ORDERS = ("oldest", "newest")


@dataclass(frozen=True)
class ActionForm:
    name: str
    label: str
    policy: str | None
    fields: list[Widget]
    danger: bool
    irreversible: bool = False
    question: str | None = None  # what the requester was asked, beside their answer box


@dataclass(frozen=True)
class TypedBack:
    """A form whose sign-in ended before it was sent (`app.web.resume`), shown again."""

    action: str
    label: str
    open: bool  # still an action of the viewer's here: its form is filled in again
    values: dict[str, str]


@dataclass(frozen=True)
class Refused:
    """An action the service refused (or a page that is stale), and what was typed."""

    action: str
    error: ServiceError
    values: dict[str, str]
    seen_stage: str | None = None


@dataclass(frozen=True)
class Entry:
    """One event of the timeline, as people read it."""

    kind: str
    title: str
    at: str
    by: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    moved_to: str | None = None
    evidence: dict[str, Any] | None = None


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
    """A value as its field's kind reads best: choices in the contract's words, an
    object's parts in the order of its table."""
    if spec.kind == "choice":
        return text.label(value)
    parts = OBJECT_FIELDS.get(spec.name)
    if parts and isinstance(value, dict):
        ordered = {p.name: shown(p, value[p.name]) for p in parts if p.name in value}
        return {**ordered, **{k: v for k, v in value.items() if k not in ordered}}
    return value


def _label(rule: ActionRule) -> str:
    return rule.label or text.label(rule.name)


def action_forms(
    rules: CaseTypeRules,
    case: dict[str, Any],
    pickers: dict[str, list[dict[str, str]]] | None = None,
    question: str | None = None,
) -> list[ActionForm]:
    """A form per action the viewer may take; an assigning action's person field is a
    picker of `pickers[action]`, the people it may assign (`service.eligible_assignees`);
    the requester's answer box has the `question` they were asked above it."""
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
                label=_label(rule),
                policy=rule.policy,
                fields=fields,
                danger=name in ENDS,
                irreversible=rule.irreversible,
                question=question if name == "provide_info" else None,
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


def open_question(events: list[dict[str, Any]]) -> str | None:
    """The question the requester was last asked (`request_info`), to show above their
    answer box."""
    for event in reversed(events):
        if event["kind"] == "request_info":
            return str((event.get("data") or {}).get("question") or "") or None
    return None


def person(email: str | None, names: dict[str, str]) -> str:
    """`Alex Employee (alex.employee@dwp.gov.uk)`; the email alone if the directory has
    no name; `Casework` for the system."""
    if not email:
        return "-"
    if email == "system":
        return "Casework"
    name = names.get(email.lower())
    return f"{name} ({email})" if name else email


def _field_specs(rules: CaseTypeRules, kind: str) -> dict[str, Field]:
    rule = rules.by_name.get(kind)
    specs = {f.name: f for f in rule.fields} if rule else {}
    return {**{f.name: f for f in rules.details}, **specs}


def _value(spec: Field | None, value: Any) -> str:
    if spec is not None:
        value = shown(spec, value)
    elif isinstance(value, str) and value.isidentifier() and value.islower() and "_" in value:
        value = text.label(value)  # a stage, outcome or party named in code: in words
    return text.show(value)


def timeline(
    rules: CaseTypeRules, events: list[dict[str, Any]], names: dict[str, str]
) -> list[Entry]:
    """The audit trail as people read it: each event's title and data in words, values
    in the contract's words (`DWP managed`), people by name."""
    out = []
    for event in events:
        kind, data = event["kind"], dict(event.get("data") or {})
        specs = _field_specs(rules, kind)
        moved_to = data.pop("to", None)
        rows: list[tuple[str, str]] = []
        if kind == "opened" and isinstance(data.get("details"), dict):
            rows = [(lbl, text.show(v)) for lbl, v, _ in detail_rows(rules, data.pop("details"))]
        evidence = None
        if kind == "add_evidence" and data.get("size") is not None and data.get("sha256"):
            evidence = {"sha256": data["sha256"], "size": data["size"]}
        for key, value in data.items():
            shown_value = _value(specs.get(key), value)
            if key in ("assignee", "investigator", "caseworker", "subject") and isinstance(
                value, str
            ):
                shown_value = person(value, names)
            rows.append((text.label(key), shown_value))
        rule = rules.by_name.get(kind)
        out.append(
            Entry(
                kind=kind,
                title=_label(rule) if rule else text.label(kind),
                at=event["at"],
                by=person(event.get("actor"), names),
                rows=rows,
                moved_to=text.label(moved_to) if moved_to else None,
                evidence=evidence,
            )
        )
    return out


def waiting_on(case: dict[str, Any], names: dict[str, str]) -> str:
    """Whom an open case waits on: a person by name, a team's leads, or its queue."""
    if case.get("owner"):
        return person(case["owner"], names)
    queue = str(case.get("queue") or case.get("team") or "")
    if queue.endswith("_lead"):
        return f"{text.words(queue.removesuffix('_lead'))} leads"
    return f"{text.words(queue)} queue"


def stale_words(refused: Refused, case: dict[str, Any]) -> str | None:
    """What changed since the page was opened, where a refusal (409) is only that: "This
    case moved to Active since you opened the page"."""
    if refused.error.status != 409 or not refused.seen_stage:
        return None
    if case["status"] != OPEN:
        outcome = f" ({text.words(case.get('outcome'))})" if case.get("outcome") else ""
        return f"This case was closed{outcome} since you opened the page"
    if case["stage"] != refused.seen_stage:
        return f"This case moved to {text.label(case['stage'])} since you opened the page"
    return None


async def show_case(
    request: Request,
    me: Actor,
    case_id: str,
    refused: Refused | None = None,
    kinds: list[str] | None = None,
    order: str = "oldest",
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
    forms = action_forms(rules, case, pickers, open_question(events))
    upload = upload_form(rules, forms)
    not_yours = await service.unavailable_actions(svc, actor=me, case_id=case_id)
    emails = [case.get("requester"), case.get("assignee"), case.get("owner")]
    emails += [e.get("actor") for e in events]
    emails += [v for e in events for v in (e.get("data") or {}).values() if isinstance(v, str)]
    names = await service.names_of(svc, [e for e in emails if e and "@" in e])

    field_errors: dict[str, dict[str, str]] = {}
    values: dict[str, dict[str, str]] = {}
    summary: list[Shown] = []
    stale = None
    if refused is not None:
        every = [*forms, *([upload] if upload else [])]
        form = next((f for f in every if f.name == refused.action), None)
        form_id = f"action-{refused.action}" if refused.action != UPLOAD else "upload"
        if form is not None:
            names_in_form = all_names(form.fields) | ({"file"} if form is upload else set())
            values[form.name] = refused.values
            field_errors[form.name], summary = placed(refused.error, form_id, names_in_form)
        else:
            _, summary = placed(refused.error, form_id, set())
        stale = stale_words(refused, case)

    entries = timeline(rules, events, names)
    mail = [e for e in entries if e.kind in SYSTEM_MAIL]
    kinds_here = list(dict.fromkeys(e.kind for e in entries if e.kind not in SYSTEM_MAIL))
    chosen = [k for k in (kinds or []) if k in kinds_here]
    shown_entries = [e for e in entries if e.kind not in SYSTEM_MAIL]
    if chosen:
        shown_entries = [e for e in shown_entries if e.kind in chosen]
    if order == "newest":
        shown_entries.reverse()
        mail.reverse()
    kind_labels = {e.kind: e.title for e in entries}
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
        status_code=refused.error.status if refused else 200,
        active="work",
        case=case,
        whole=whole,
        badge=sla_badge(case),
        stages=stage_path(rules, case),
        details=detail_rows(rules, case.get("details") or {}),
        requester=person(case.get("requester"), names),
        waiting_on=waiting_on(case, names),
        assignee=person(case.get("assignee"), names) if case.get("assignee") else None,
        entries=shown_entries,
        mail=mail,
        kinds=[(k, kind_labels[k]) for k in kinds_here],
        chosen=chosen,
        order=order if order in ORDERS else "oldest",
        forms=forms,
        upload=upload,
        not_yours=not_yours,
        max_upload_mb=max(svc.settings.evidence_max_bytes // (1024 * 1024), 1),
        field_errors=field_errors,
        values=values,
        refused=refused,
        summary=summary,
        stale=stale,
        refused_label=_refused_label(rules, case, refused),
        page_error=bool(refused),
        typed=typed_back,
        audits=whole and may_export(me),
    )


def _refused_label(rules: CaseTypeRules, case: dict[str, Any], refused: Refused | None) -> str:
    if refused is None:
        return ""
    if refused.action == UPLOAD:
        return "Upload"
    rule = rules.by_name.get(refused.action)
    return _label(rules.action(refused.action, case["stage"])) if rule else refused.action


@router.get("/cases/{case_id}")
async def case_page(
    request: Request,
    me: Me,
    case_id: str,
    kind: Annotated[list[str] | None, Query()] = None,
    order: str = "oldest",
) -> Response:
    return await show_case(request, me, case_id, kinds=kind or [], order=order)


def irreversible(rules: CaseTypeRules, action: str) -> bool:
    """Whether the type's table marks `action` irreversible (at any of its stages)."""
    return any(a.irreversible for a in rules.actions if a.name == action)


def _typed(form: Form) -> dict[str, str]:
    return {k: v for k, v in form.items() if k not in ("csrf_token", SEEN_STAGE, CONFIRMED)}


@router.post("/cases/{case_id}/actions/{action}")
async def take_action(
    request: Request, me: Me, case_id: str, action: str, form: Posted
) -> Response:
    rules = rules_for_id(case_id)
    rule = rules.by_name.get(action) if rules else None
    fields = from_form(rule.fields, form) if rule else {}
    svc = services_of(request)
    seen = form.get(SEEN_STAGE) or None
    try:
        if rules is not None and irreversible(rules, action) and form.get(CONFIRMED) != "yes":
            # Refused as `act` would refuse it (and recorded so), or asked to confirm.
            case = await service.preview_action(
                svc, actor=me, case_id=case_id, action=action, fields=fields
            )
            stage_rule = rules.action(action, case["stage"])
            return confirm_page(request, case, stage_rule, _typed(form), seen)
        after = await service.act(svc, actor=me, case_id=case_id, action=action, fields=fields)
    except NotFound:
        raise
    except ServiceError as e:
        if e.status >= 500:
            raise
        if e.status in (403, 409):
            e = await _in_plain_words(request, me, case_id, action, fields, e)
        return await show_case(request, me, case_id, Refused(action, e, _typed(form), seen))
    label = _label(rule) if rule else text.label(action)
    if after["status"] == OPEN:
        now = f"now at the {text.words(after['stage'])} stage"
    else:
        now = f"closed: {text.words(after.get('outcome'))}"
    flash(request, f"{label}: done. {case_id} is {now}.")
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


async def _in_plain_words(
    request: Request, me: Actor, case_id: str, action: str, fields: dict[str, Any], e: ServiceError
) -> ServiceError:
    """The workflow's refusal with `check_action`'s words for a person, where the read
    model gives the same refusal (the workflow's validator sends only its message)."""
    again = await service.refusal_words(
        services_of(request), actor=me, case_id=case_id, action=action, fields=fields
    )
    if again is not None and again.status == e.status:
        return type(e)(e.message, code=e.code, status=e.status, plain=again.plain)
    return e


def confirm_page(
    request: Request,
    case: dict[str, Any],
    rule: ActionRule,
    typed: dict[str, str],
    seen: str | None,
) -> Response:
    """Before an irreversible action is sent: what it will do and what was typed, a
    button that sends it, and the way back."""
    label = _label(rule)
    rules = CASE_TYPES[case["type"]]
    specs = {f.name: f for f in rule.fields}
    answers = [
        (text.label(name), _value(specs.get(name), value))
        for name, value in typed.items()
        if value.strip()
    ]
    return render(
        request,
        "confirm.html",
        active="work",
        case=case,
        kind=text.words(rules.type),
        action=rule.name,
        label=label,
        policy=rule.policy,
        danger=rule.name in ENDS,
        answers=answers,
        hidden=[*typed.items(), (SEEN_STAGE, seen or case["stage"]), (CONFIRMED, "yes")],
        back=f"/cases/{case['id']}",
    )
