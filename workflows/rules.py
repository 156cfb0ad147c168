"""The shape of a case type's stage/action/actor table, and the one place that reads it.

Each case type declares its table with these types (see `ipa_types.py`). The
workflow's update validator, the service layer's "actions you may take now",
the pages and the authorisation tests all call `check_action`, so a rule is
written once. Standard library only: it runs inside the workflow sandbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from workflows.common import OPEN, Actor, CaseSnapshot

# Refusal codes: the API maps them to 403, 409 and 422.
FORBIDDEN = "forbidden"
CONFLICT = "conflict"
INVALID = "invalid"

EMAIL_RE = re.compile(r"^[^@\s<>,;\"\r\n]+@[^@\s<>,;\"\r\n]+\.[^@\s<>,;\"\r\n]+$")
DURATION_RE = re.compile(
    r"^(\d+wd|P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?)$"
)
MAX_TEXT = 10_000


class Refusal(Exception):
    """An action or an intake refused, with the code the API maps to a status.

    `message` names the field as a request does (`account_kind: required`); `plain` says
    the same to a person filling in a form ("Choose the account kind"), and is derived
    from `message` where no wording of its own is given (`plain_words`)."""

    def __init__(
        self, code: str, message: str, field: str | None = None, plain: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.plain = plain or plain_words(message)


def plain_words(message: str) -> str:
    """A refusal's message without the name of the field it leads with, as a sentence:
    `account_kind: personal accounts need no approval (policy 5.1)` -> `Personal accounts
    need no approval (policy 5.1)`."""
    head, sep, rest = message.partition(": ")
    said = rest if sep and " " not in head else message
    return said[:1].upper() + said[1:]


def _spoken(name: str) -> str:
    """A field's name inside a sentence: `contact_email` -> `contact email`, `sac` -> `SAC`."""
    return " ".join(_SPOKEN.get(w, w) for w in name.split(".")[-1].split("_"))


_SPOKEN = {"ipa": "IPA", "sac": "SAC", "sirt": "SIRT", "hr": "HR", "url": "URL", "urls": "URLs"}


@dataclass(frozen=True)
class Field:
    """One input field of an action or of a case's details."""

    name: str
    kind: str = "text"  # text, choice, bool, email, emails, int, duration, date, url, urls, object
    required: bool = True
    choices: tuple[str, ...] = ()
    min: int | None = None
    max: int | None = None
    policy: str | None = None  # the policy section a refusal of this field cites


@dataclass(frozen=True)
class ActionRule:
    """An action: the stages it may be taken in and who may take it.

    `who` names parties: `role:<role>` (a role the actor holds), `party:<name>`
    (the person the case names so, e.g. `party:requester`), `lead` (the lead of
    the team that owns the case) and `viewer` (anyone who may see the whole case).
    `not_party` lists parties who may never take it (four eyes).
    `irreversible` marks an action that cannot be undone: the pages confirm it first.
    """

    name: str
    stages: frozenset[str]
    who: tuple[str, ...]
    fields: tuple[Field, ...] = ()
    not_party: tuple[str, ...] = ()
    policy: str | None = None
    label: str = ""
    # Cannot be undone (a decision, a closure, a withdrawal): the pages ask the person to
    # confirm it first (app.web.case_page); the workflow takes it as any other.
    irreversible: bool = False
    # An action that hands the case to a person (`reassign`, `assign`, `accept`): which
    # field names them, and for which stage's work (`assignment_refusal`).
    assigns: Assigns | None = None


@dataclass(frozen=True)
class Assigns:
    """The field of an assigning action that names the person, and the stage whose row
    says which role they must hold (`Stage.assignee_role`); None: the case's stage."""

    field: str
    stage: str | None = None


# What a stage's owner is (`Stage.owner`) when no party of the case owns it.
ASSIGNEE = "assignee"  # whoever the case is assigned to, else the team's queue
QUEUE = "queue"  # always the queue: a decision for the team's leads, whoever is assigned
# What happens when a stage falls due (`Stage.when_due`), unless it ends itself then.
ESCALATE = "escalate"


@dataclass(frozen=True)
class Stage:
    """One row of a case type's process: whom the stage waits on, which queue is told,
    when its clock starts and what happens when it falls due."""

    name: str
    # `party:<name>` (the person the case names so: `party:requester_manager`), ASSIGNEE,
    # or QUEUE.
    owner: str = ASSIGNEE
    # The queue told while the stage waits on one: a team (`sac`) or its leads
    # (`sac_lead`); None is the case type's team. Escalations go to the team's lead.
    queue: str | None = None
    # ESCALATE (the owner's line manager, a queue's lead, then one level up each period),
    # or the name of the workflow's method that ends the stage instead (a question
    # unanswered lapses, an appeal window closes, an exception expires).
    when_due: str = ESCALATE
    # The policy file's key (of this stage's section) whose duration after the stage
    # starts its clock starts (`attest_every`), or that an action counts back from the
    # due time it sets (`expiry_notice`); None: the clock starts with the stage.
    clock_starts: str | None = None
    # The role whoever is assigned the stage must hold (API.md: "holding the role the stage
    # needs"); None is the case type's team role. A stage only a lead decides needs theirs.
    assignee_role: str | None = None

    @property
    def party(self) -> str | None:
        """The party who owns the stage (`requester_manager`), if a party does."""
        kind, _, name = self.owner.partition(":")
        return name if kind == "party" else None


@dataclass(frozen=True)
class CaseTypeRules:
    type: str
    prefix: str
    team: str  # the team whose queue holds the case and whose lead is escalated to first
    rows: tuple[Stage, ...]  # the stages, in order
    actions: tuple[ActionRule, ...]
    details: tuple[Field, ...]
    confidential: bool = False
    # Who sees the whole of the case (a confidential one, or one on a need to know):
    # `role:` holders, `party:` names, and `chain:<party>` (that party's management chain,
    # `Actor.manages`). Empty on a type that is neither: everyone sees it whole.
    full_viewers: tuple[str, ...] = ()
    # Parties who see only a confidential case's outline (id, type, status, stage,
    # outcome): an investigation's reporter, a referral's subject.
    partial_viewers: tuple[str, ...] = ("party:requester",)
    # Parties named by the details at intake: (party, dotted path into details), e.g.
    # ("subject", "subject") or ("perpetrator", "perpetrator.email").
    detail_parties: tuple[tuple[str, str], ...] = ()
    # Parties to the matter itself (an investigation's alleged perpetrator, a referral's
    # subject): whatever roles they hold, they never see the case whole, are never
    # mailed or escalated to, and take no action but one the table gives their party by
    # name (`party:subject` appeals). Where they are also a partial viewer (a
    # perpetrator who reported), the outline.
    parties_in_conflict: tuple[str, ...] = ()
    # Details listing people the matter is about beside the parties in conflict (an
    # investigation's targets): never given the case (`assignment_refusal`), so the
    # pickers, the service and the workflow refuse them alike.
    unassignable_lists: tuple[str, ...] = ()
    workflow: str = ""
    stages: tuple[str, ...] = field(init=False)  # the rows' names, in order
    by_name: dict[str, ActionRule] = field(default_factory=dict, compare=False, hash=False)
    _rows: dict[str, Stage] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(row.name for row in self.rows))
        self._rows.update((row.name, row) for row in self.rows)
        # One name may have a rule per stage (a policy exception is rejected by a SAC
        # officer at triage, by a SAC lead at decision): `by_name` keeps the first.
        for a in self.actions:
            self.by_name.setdefault(a.name, a)

    def stage(self, name: str) -> Stage:
        """The row of stage `name`; KeyError for a stage the type does not have."""
        return self._rows[name]

    @property
    def need_to_know(self) -> bool:
        """Whether only `full_viewers` see the case whole (else anyone does)."""
        return self.confidential or bool(self.full_viewers)

    def role_for(self, stage: str) -> str:
        """The role a person assigned `stage` must hold: its row's, else the team's."""
        row = self._rows.get(stage)
        return (row.assignee_role if row else None) or self.team

    def team_stages(self) -> tuple[str, ...]:
        """Stages that wait on the team's queue (or whoever it assigns): not on a party
        (a manager's endorsement, a requester's answer) nor on the leads alone."""
        return tuple(
            r.name
            for r in self.rows
            if r.owner in (ASSIGNEE, QUEUE) and r.queue in (None, self.team)
        )

    def lead_stages(self) -> dict[str, str]:
        """Stages that wait on a role's holders alone (a SAC lead's decision): stage -> role."""
        return {
            r.name: r.queue
            for r in self.rows
            if r.owner in (ASSIGNEE, QUEUE) and r.queue not in (None, self.team)
        }

    def action(self, name: str, stage: str | None = None) -> ActionRule:
        """The rule for `name`: where the name has a rule per stage, the one for `stage`."""
        rule = self.by_name.get(name)
        if rule is None:
            raise Refusal(INVALID, f"action: unknown action {name!r} for {self.type}", "action")
        if stage is not None and stage not in rule.stages:
            rule = next((a for a in self.actions if a.name == name and stage in a.stages), rule)
        return rule


def common_actions(team: str, open_stages: frozenset[str]) -> tuple[ActionRule, ...]:
    """`comment` and `reassign`, open to every case type (API.md)."""
    return (
        ActionRule(
            "comment",
            open_stages,
            ("viewer",),
            (Field("text"),),
            label="Comment",
        ),
        ActionRule(
            "reassign",
            open_stages,
            ("lead", "role:admin"),
            (Field("assignee", "email"),),
            label="Reassign",
            assigns=Assigns("assignee"),
        ),
    )


def parties_from_details(rules: CaseTypeRules, details: dict[str, Any]) -> dict[str, str]:
    """The people a case's details name, by party (see `CaseTypeRules.detail_parties`)."""
    found = {}
    for party, path in rules.detail_parties:
        value: Any = details
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str) and value:
            found[party] = value.lower()
    return found


# Waiting on the requester's answer (`ask_requester_actions`): the clock stops, and a
# question never answered lets the case lapse (`CaseWorkflow.lapse`).
AWAITING_INFO_STAGE = Stage("awaiting_info", owner="party:requester", when_due="lapse")


def ask_requester_actions(asking: frozenset[str], who: tuple[str, ...]) -> tuple[ActionRule, ...]:
    """`request_info` where a stage asks, `provide_info` while awaiting the answer: the
    pair behind the engine's `ask_requester` and `resume_after_answer`."""
    return (
        ActionRule("request_info", asking, who, (Field("question"),), label="Ask the requester"),
        ActionRule(
            "provide_info",
            frozenset({"awaiting_info"}),
            ("party:requester",),
            (Field("answer"),),
            label="Answer",
        ),
    )


def holds(who: str, actor: Actor, case: CaseSnapshot, rules: CaseTypeRules) -> bool:
    """Whether `actor` is the party `who` names on `case`."""
    kind, _, name = who.partition(":")
    if kind == "role":
        return name in actor.roles
    if kind == "party":
        return bool(case.parties.get(name)) and case.parties.get(name) == actor.email
    if kind == "lead":
        return f"{rules.team}_lead" in actor.roles
    if kind == "chain":
        # Someone in the party's management chain: they manage them, directly or not.
        named = case.parties.get(name) or (case.requester if name == "requester" else None)
        return bool(named) and named in actor.manages
    if kind == "viewer":
        # Auditors read everything and change nothing, unless the case is their own.
        if "auditor" in actor.roles and actor.email not in case.parties.values():
            return False
        return may_see_whole(actor, case, rules)
    raise ValueError(f"unknown party {who!r}")


def party_in_conflict(actor: Actor, case: CaseSnapshot, rules: CaseTypeRules) -> str | None:
    """Which of `case`'s parties in conflict (`rules.parties_in_conflict`) `actor` is, if
    any: `perpetrator`, `subject`."""
    for party in rules.parties_in_conflict:
        named = case.parties.get(party)
        if named and named == actor.email:
            return party
    return None


def may_see_whole(actor: Actor, case: CaseSnapshot, rules: CaseTypeRules) -> bool:
    """Whether `actor` may read every field of `case` (confidentiality rule)."""
    if party_in_conflict(actor, case, rules) is not None:
        return False
    if not rules.need_to_know:
        return True
    return any(holds(w, actor, case, rules) for w in rules.full_viewers)


def assignment_refusal(
    rules: CaseTypeRules,
    case: CaseSnapshot,
    rule: ActionRule,
    fields: dict[str, Any],
    assignee: Actor | None,
) -> Refusal | None:
    """Why the person an assigning action names (`rule.assigns`) may not be given the
    case, if they may not: not in the directory (`assignee` None), without the role the
    stage needs, or (a confidential case) a party to it. The workflow's validator and the
    service ask this alike; the service looks `assignee` up in the directory."""
    if rule.assigns is None:
        return None
    name = rule.assigns.field
    email = fields.get(name)
    if not email:
        return None
    if assignee is None or assignee.email != email:
        return Refusal(INVALID, f"{name}: {email} is not in the directory", name)
    role = rules.role_for(rule.assigns.stage or case.stage)
    if role not in assignee.roles:
        return Refusal(
            INVALID, f"{name}: {email} does not hold the role {role} this stage needs", name
        )
    party = party_in_conflict(assignee, case, rules) if rules.confidential else None
    if party is not None:
        return Refusal(INVALID, f"{name}: {email} is the {party} of {case.id}, a party to it", name)
    for listed in rules.unassignable_lists:
        if email in (case.details.get(listed) or ()):
            return Refusal(
                INVALID, f"{name}: {email} is among the {listed} of {case.id}, a party to it", name
            )
    return None


def check_action(rules: CaseTypeRules, case: CaseSnapshot, actor: Actor, action: str) -> ActionRule:
    """The rule for `action` if `actor` may take it on `case` now; else raise a Refusal
    (its `plain` says why to the person, as the pages show it beside the action)."""
    rule = rules.action(action, case.stage)
    doing = (rule.label or action.replace("_", " ")).lower()
    if case.status != OPEN or case.stage not in rule.stages:
        raise Refusal(
            CONFLICT,
            f"action: {action!r} is not allowed in stage {case.stage!r} of {case.id}",
            "action",
            f"You cannot {doing} this case at the {_spoken(case.stage)} stage",
        )
    section = f", policy {rule.policy}" if rule.policy else ""
    for party in rule.not_party:
        if case.parties.get(party) == actor.email:
            raise Refusal(
                FORBIDDEN,
                f"actor: the {party} of {case.id} may not also {action} it (four eyes)",
                plain=f"{_party_did(party, rules)}; another {_who_words(rule.who)} must "
                f"{doing} it (four eyes{section})",
            )
    in_conflict = party_in_conflict(actor, case, rules)
    if in_conflict is not None and f"party:{in_conflict}" not in rule.who:
        raise Refusal(
            FORBIDDEN,
            f"actor: {actor.email} is the {in_conflict} of {case.id}, a party to it, and may"
            f" not {action} it (conflict of interest)",
            plain=f"You are the {_spoken(in_conflict)} of this case, so you may not {doing} it"
            " (conflict of interest)",
        )
    if not any(holds(w, actor, case, rules) for w in rule.who):
        raise Refusal(
            FORBIDDEN,
            f"actor: {actor.email} may not {action} {case.id}",
            plain=f"Only {_who_words(rule.who, rules, article=True)} may {doing} this case"
            + (f" (policy {rule.policy})" if rule.policy else ""),
        )
    return rule


# What a party did, said to them: why the four-eyes rule keeps an action from them.
_PARTY_DID = {
    "assessor": "You assessed this {noun}",
    "requester": "You raised this {noun}",
    "investigator": "You investigated this {noun}",
    "caseworker": "You are the caseworker on this {noun}",
}


def _party_did(party: str, rules: CaseTypeRules) -> str:
    noun = _spoken(rules.type).replace("IPA approval", "IPA request")
    return _PARTY_DID.get(party, "You are the {party} of this {noun}").format(
        noun=noun, party=_spoken(party)
    )


# A party as a sentence names them.
_PARTY_NOUNS = {"requester_manager": "requester's manager"}
# A role as a person is called by it (API.md's roles).
_ROLE_NOUNS = {
    "sac": "SAC officer",
    "sirt": "SIRT officer",
    "hr": "HR caseworker",
    "admin": "administrator",
    "auditor": "auditor",
    "monitoring": "monitoring officer",
}


def _who_words(
    who: tuple[str, ...], rules: CaseTypeRules | None = None, *, article: bool = False
) -> str:
    """Who may take an action, in words: `("role:sac_lead",)` -> `SAC lead` (with
    `article`: `a SAC lead`)."""
    said = []
    for w in who:
        kind, _, name = w.partition(":")
        if kind == "lead":
            kind, name = "role", f"{rules.team}_lead" if rules else "team_lead"
        if kind == "role":
            noun = _ROLE_NOUNS.get(name, _spoken(name))
            an = "an" if noun[:1].lower() in "aeiou" or noun.startswith("HR") else "a"
            said.append(f"{an} {noun}" if article else noun)
        elif kind == "party":
            said.append(f"the {_PARTY_NOUNS.get(name, _spoken(name))}")
        elif kind == "chain":
            said.append(f"the {_PARTY_NOUNS.get(name, _spoken(name))}'s management chain")
        elif kind == "viewer":
            said.append("those who may see the whole case")
    return " or ".join(dict.fromkeys(said)) or "someone else"


def allowed_actions(rules: CaseTypeRules, case: CaseSnapshot, actor: Actor) -> list[str]:
    """Names of the actions `actor` may take on `case` now, in table order."""
    names = []
    for name in rules.by_name:
        try:
            check_action(rules, case, actor, name)
        except Refusal:
            continue
        names.append(name)
    return names


def clean_fields(specs: tuple[Field, ...], given: dict[str, Any]) -> dict[str, Any]:
    """Validate `given` against `specs`: the cleaned values, or a Refusal naming the field."""
    if not isinstance(given, dict):
        raise Refusal(INVALID, "fields: expected an object", "fields")
    cleaned: dict[str, Any] = {}
    for spec in specs:
        value = given.get(spec.name)
        if value is None or value == "":
            if spec.required:
                raise _required(spec)
            continue
        cleaned[spec.name] = _clean(spec, value)
    return cleaned


def field_problems(specs: tuple[Field, ...], given: dict[str, Any]) -> list[Refusal]:
    """Every field's refusal at once, in table order: what `clean_fields` would refuse,
    field by field (it raises the first). The pages show them all together."""
    if not isinstance(given, dict):
        return [Refusal(INVALID, "fields: expected an object", "fields")]
    problems = []
    for spec in specs:
        try:
            clean_fields((spec,), given)
        except Refusal as r:
            problems.append(r)
    return problems


def _required(spec: Field) -> Refusal:
    name = _spoken(spec.name)
    if spec.kind == "choice":
        plain = f"Choose the {name}"
    elif spec.kind == "bool":
        plain = f"Answer yes or no: {name}"
    elif spec.kind in ("emails", "urls"):
        plain = f"Enter at least one {name[:-1] if name.endswith('s') else name}"
    else:
        plain = f"Enter the {name}"
    return Refusal(INVALID, f"{spec.name}: required", spec.name, plain)


# What a value of each kind must be, as a person is told (`_refuse`).
_PLAIN = {
    "text": "Enter the {name} as text",
    "url": "Enter the {name} as a link starting with http:// or https://",
    "urls": "Enter each of the {name} as a link starting with http:// or https://",
    "choice": "Choose the {name} from the list",
    "bool": "Answer yes or no: {name}",
    "email": "Enter the {name} as an email address, like name@example.com",
    "emails": "Enter the {name} as email addresses, like name@example.com, one per line",
    "int": "Enter the {name} as a whole number",
    "duration": "Enter the {name} as working days such as 5wd, or a period such as P14D",
    "date": "Enter the {name} as a date in the form YYYY-MM-DD",
    "object": "Enter the {name}",
}


def _refuse(spec: Field, reason: str, plain: str | None = None) -> Refusal:
    where = f" (policy {spec.policy})" if spec.policy else ""
    said = plain or _PLAIN.get(spec.kind, "Check the {name}").format(name=_spoken(spec.name))
    return Refusal(INVALID, f"{spec.name}: {reason}{where}", spec.name, f"{said}{where}")


def _clean(spec: Field, value: Any) -> Any:
    kind = spec.kind
    if kind in ("text", "url"):
        if not isinstance(value, str):
            raise _refuse(spec, "must be text")
        value = value.strip()
        most = spec.max or MAX_TEXT
        if len(value) > most:
            name = _spoken(spec.name)
            limit = f"The {name} must be {most:,} characters or fewer"
            raise _refuse(spec, f"at most {most} characters", limit[:1].upper() + limit[1:])
        if kind == "url" and not re.match(r"^https?://\S+$", value):
            raise _refuse(spec, "must be an http(s) URL")
        return value
    if kind == "choice":
        if value not in spec.choices:
            raise _refuse(spec, f"must be one of {', '.join(spec.choices)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise _refuse(spec, "must be true or false")
        return value
    if kind == "email":
        if not isinstance(value, str) or not EMAIL_RE.match(value.strip()):
            raise _refuse(spec, "must be an email address")
        return value.strip().lower()
    if kind == "emails":
        if not isinstance(value, list) or not value:
            raise _refuse(spec, "must be a list of email addresses")
        try:
            return [_clean(Field(spec.name, "email", policy=spec.policy), v) for v in value]
        except Refusal as r:  # the item's message, the list's wording
            raise Refusal(r.code, r.message, r.field, _refuse(spec, "").plain) from None
    if kind == "urls":
        if not isinstance(value, list) or not value:
            raise _refuse(spec, "must be a list of http(s) URLs")
        item = Field(spec.name, "url", max=spec.max, policy=spec.policy)
        try:
            return [_clean(item, v) for v in value]
        except Refusal as r:
            raise Refusal(r.code, r.message, r.field, _refuse(spec, "").plain) from None
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _refuse(spec, "must be a whole number")
        if (spec.min is not None and value < spec.min) or (
            spec.max is not None and value > spec.max
        ):
            between = f"The {_spoken(spec.name)} must be between {spec.min} and {spec.max}"
            raise _refuse(spec, f"must be between {spec.min} and {spec.max}", between)
        return value
    if kind == "duration":
        if not isinstance(value, str) or not DURATION_RE.match(value):
            raise _refuse(spec, 'must be a duration such as "5wd" or "P14D"')
        return value
    if kind == "date":
        try:
            return date.fromisoformat(value).isoformat()
        except (TypeError, ValueError):
            raise _refuse(spec, "must be a date YYYY-MM-DD") from None
    if kind == "object":
        if not isinstance(value, dict):
            raise _refuse(spec, "must be an object")
        return value
    raise ValueError(f"unknown field kind {kind!r}")
