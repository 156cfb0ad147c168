"""SCIM 2.0 provisioning at `/scim/v2` (RFC 7643, 7644): the identity provider keeps
the directory: Users with the enterprise extension's `manager`, and Groups, a group
named as a role giving it to its members.

On only with `CASEWORK_SCIM_TOKEN` (404 otherwise), which every call must bring as its
bearer secret (401 without or with a wrong one). Resources and messages are
`scim2-models`'; every refusal is SCIM's error shape with the right status and
`scimType`, and changes nothing. Supported filters: `userName eq "…"` on Users and
`displayName eq "…"` on Groups (others 400 `invalidFilter`). `active: false`, by PUT or
PATCH, and DELETE deactivate the person and move their open work on
(`app.service.leavers`).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field, ValidationError
from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    Email,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    GroupMember,
    GroupMembership,
    ListResponse,
    Manager,
    Meta,
    Name,
    Patch,
    PatchOp,
    Reference,
    Required,
    ResourceType,
    ResponseParameters,
    ServiceProviderConfig,
    Sort,
    User,
)
from scim2_models import Error as ScimError

from app.service import directory
from app.service.errors import Conflict, NotFound, ServiceError
from app.service.services import Services

PREFIX = "/scim/v2"
MEDIA_TYPE = "application/scim+json"
MAX_RESULTS = 200
T = TypeVar("T")

router = APIRouter(prefix=PREFIX, include_in_schema=False)
_READ_ONLY = ("ServiceProviderConfig", "ResourceTypes", "Schemas")


class CaseworkManager(Manager):
    """The enterprise `manager` with its `$ref` optional, as identity providers send it
    (Entra ID and Okta send only `value`, the manager's id)."""

    ref: Annotated[Reference[User] | None, Required.false] = Field(  # type: ignore[type-arg]
        None, serialization_alias="$ref", validation_alias="$ref"
    )


class CaseworkEnterpriseUser(EnterpriseUser):
    __schema__ = URN("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
    manager: CaseworkManager | None = None


ScimUser = User[CaseworkEnterpriseUser]


class ScimFailure(Exception):
    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def _error(status: int, detail: str, scim_type: str | None = None) -> Response:
    error = ScimError(status=status, scim_type=scim_type, detail=detail)
    return _answer(error.model_dump(), status)


def _services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def _check_secret(request: Request, svc: Services) -> None:
    secret = svc.settings.scim_token
    if not secret:
        raise ScimFailure(404, "SCIM is not enabled here (CASEWORK_SCIM_TOKEN)")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode("utf-8"), secret.encode("utf-8")
    ):
        raise ScimFailure(401, "authorization: a bearer token is required, and must be right")


async def _handled(request: Request, work: Callable[[Services], Awaitable[Response]]) -> Response:
    """Check the secret, run `work`, and answer any refusal in SCIM's error shape."""
    svc = _services(request)
    try:
        _check_secret(request, svc)
        return await work(svc)
    except ScimFailure as f:
        return _error(f.status, f.detail, f.scim_type)
    except ValidationError as e:
        first = e.errors()[0] if e.errors() else {"loc": (), "msg": str(e)}
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        return _error(400, f"{where}: {first.get('msg')}", "invalidValue")
    except NotFound as e:
        return _error(404, e.message)
    except Conflict as e:
        return _error(409, e.message, "uniqueness")
    except ServiceError as e:
        # SCIM says 400 invalidValue for a value refused (Casework's own 422).
        status = e.status if e.status in (401, 403, 503) else 400
        return _error(status, e.message, "invalidValue" if status == 400 else None)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ScimFailure(400, "body: not valid JSON", "invalidSyntax") from None
    if not isinstance(body, dict):
        raise ScimFailure(400, "body: expected a JSON object", "invalidSyntax")
    return body


# ---- what is offered ---------------------------------------------------------------------


@router.get("/ServiceProviderConfig")
async def service_provider_config(request: Request) -> Response:
    async def work(svc: Services) -> Response:
        config = ServiceProviderConfig(
            documentation_uri=None,
            patch=Patch(supported=True),
            bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
            filter=Filter(supported=True, max_results=MAX_RESULTS),
            change_password=ChangePassword(supported=False),
            sort=Sort(supported=False),
            etag=ETag(supported=False),
            authentication_schemes=[
                AuthenticationScheme(
                    type=AuthenticationScheme.Type.oauthbearertoken,
                    name="Bearer token",
                    description="The secret CASEWORK_SCIM_TOKEN, as a bearer token",
                    primary=True,
                )
            ],
            meta=Meta(
                resource_type="ServiceProviderConfig",
                location=_url(request, "/ServiceProviderConfig"),
            ),
        )
        return _answer(config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))

    return await _handled(request, work)


def _resource_types(request: Request) -> list[ResourceType]:
    found = []
    for model in (ScimUser, Group):
        kind = ResourceType.from_resource(model)
        kind.meta = Meta(
            resource_type="ResourceType", location=_url(request, f"/ResourceTypes/{kind.id}")
        )
        found.append(kind)
    return found


@router.get("/ResourceTypes")
async def resource_types(request: Request) -> Response:
    async def work(svc: Services) -> Response:
        kinds = _resource_types(request)
        listed = ListResponse[ResourceType](
            total_results=len(kinds), start_index=1, items_per_page=len(kinds), resources=kinds
        )
        return _answer(listed.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))

    return await _handled(request, work)


@router.get("/ResourceTypes/{name}")
async def resource_type(request: Request, name: str) -> Response:
    async def work(svc: Services) -> Response:
        for kind in _resource_types(request):
            if kind.id == name:
                return _answer(kind.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
        raise ScimFailure(404, f"no resource type {name}")

    return await _handled(request, work)


def _schemas(request: Request) -> list[Any]:
    found = []
    for model in (User, CaseworkEnterpriseUser, Group):
        schema = model.to_schema()
        if model is User:
            _email_required(schema)
        schema.meta = Meta(resource_type="Schema", location=_url(request, f"/Schemas/{schema.id}"))
        found.append(schema)
    return found


def _email_required(schema: Any) -> None:
    """Casework's people are keyed by email: a User needs one (its userName if that is an
    address, else `emails`), so the published schema says `emails` is required."""
    for attribute in schema.attributes or []:
        if attribute.name == "emails":
            attribute.required = Required.true
            for sub in attribute.sub_attributes or []:
                if sub.name == "value":
                    sub.required = Required.true


@router.get("/Schemas")
async def schemas(request: Request) -> Response:
    async def work(svc: Services) -> Response:
        found = _schemas(request)
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": len(found),
            "startIndex": 1,
            "itemsPerPage": len(found),
            "Resources": [s.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE) for s in found],
        }
        return _answer(body)

    return await _handled(request, work)


@router.get("/Schemas/{schema_id}")
async def schema(request: Request, schema_id: str) -> Response:
    async def work(svc: Services) -> Response:
        for found in _schemas(request):
            if found.id == schema_id:
                return _answer(found.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
        raise ScimFailure(404, f"no schema {schema_id}")

    return await _handled(request, work)


# ---- Users ---------------------------------------------------------------------------------


def _url(request: Request, path: str) -> str:
    return f"{str(request.base_url).rstrip('/')}{PREFIX}{path}"


def _kept(user: Any) -> dict[str, Any]:
    """What is stored of a resource the provider sent: all of it but what Casework keeps
    itself (id, meta, and, for a User, its groups)."""
    kept: dict[str, Any] = user.model_dump()
    for key in ("id", "meta", "groups"):
        kept.pop(key, None)
    return kept


def _user(request: Request, record: directory.PersonRecord) -> ScimUser:
    """The User as the provider last sent it, with the directory's fields laid over."""
    if record.resource:
        user = ScimUser.model_validate(record.resource)
    else:
        user = ScimUser(
            display_name=record.name,
            name=Name(formatted=record.name),
            emails=[Email(value=record.email, primary=True, type=Email.Type.work)],
        )
    user.id, user.user_name = record.id, record.user_name
    # Active unless deactivated: left unsaid where the provider never said it.
    said = record.resource is None or record.resource.get("active") is not None
    user.active = record.active if said or not record.active else None
    user.external_id = record.external_id
    user.groups = [
        GroupMembership(value=gid, display=name, ref=None, type=None) for gid, name in record.groups
    ] or None
    user.meta = Meta(resource_type="User", location=_url(request, f"/Users/{record.id}"))
    extension = user[CaseworkEnterpriseUser] or CaseworkEnterpriseUser()
    extension.manager = (
        CaseworkManager(
            value=record.manager_id,
            ref=Reference(_url(request, f"/Users/{record.manager_id}")),
        )
        if record.manager_id
        else None
    )
    user[CaseworkEnterpriseUser] = extension
    return user


def _shown(request: Request, resource: Any) -> dict[str, Any]:
    """`resource` as a response, cut to `attributes` / `excludedAttributes` if asked."""
    asked = {
        k: request.query_params[k]
        for k in ("attributes", "excludedAttributes")
        if request.query_params.get(k)
    }
    parameters: ResponseParameters[Any] | None = (
        ResponseParameters.model_validate(asked) if asked else None
    )
    shown: dict[str, Any] = resource.model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=parameters
    )
    return shown


def _user_answer(request: Request, record: directory.PersonRecord, status: int = 200) -> Response:
    return _answer(_shown(request, _user(request, record)), status)


def _name_of(user: ScimUser) -> str | None:
    if user.display_name:
        return user.display_name
    name = user.name
    if name is not None:
        if name.formatted:
            return name.formatted
        parts = [p for p in (name.given_name, name.family_name) if p]
        if parts:
            return " ".join(parts)
    return None


def _emails(user: ScimUser) -> list[str]:
    """Its email addresses, the primary first."""
    found = sorted(user.emails or [], key=lambda e: not e.primary)
    return [str(e.value) for e in found if e.value]


def _manager_of(user: ScimUser) -> str | None:
    extension = user[CaseworkEnterpriseUser]
    manager = extension.manager if extension is not None else None
    return manager.value if manager is not None else None


_FILTER = re.compile(r'^\s*([A-Za-z][\w.]*)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)


def _filter(value: str | None, attribute: str) -> str | None:
    """The value of `attribute eq "…"`, the one filter offered; 400 invalidFilter else."""
    if value is None or not value.strip():
        return None
    match = _FILTER.match(value)
    if match is None or match.group(1).lower() != attribute.lower():
        raise ScimFailure(
            400, f'filter: only {attribute} eq "value" is supported, not {value!r}', "invalidFilter"
        )
    return match.group(2).replace('\\"', '"').replace("\\\\", "\\")


def _paging(request: Request) -> tuple[int, int]:
    def number(name: str, default: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise ScimFailure(400, f"{name}: must be a whole number", "invalidValue") from None

    start = max(1, number("startIndex", 1))
    count = min(max(0, number("count", MAX_RESULTS)), MAX_RESULTS)
    return start, count


def _listed(request: Request, total: int, start: int, resources: list[Any]) -> Response:
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": [_shown(request, r) for r in resources],
    }
    return _answer(body)


@router.get("/Users")
async def list_users(request: Request) -> Response:
    async def work(svc: Services) -> Response:
        user_name = _filter(request.query_params.get("filter"), "userName")
        start, count = _paging(request)
        total, page = await svc.run(
            lambda s: directory.list_people(s, user_name=user_name, start=start, count=count)
        )
        return _listed(request, total, start, [_user(request, r) for r in page])

    return await _handled(request, work)


@router.post("/Users")
async def create_user(request: Request) -> Response:
    async def work(svc: Services) -> Response:
        user = ScimUser.model_validate(
            await _body(request), scim_ctx=Context.RESOURCE_CREATION_REQUEST
        )
        record = await svc.run(
            lambda s: directory.create_person(
                s,
                user_name=user.user_name or "",
                email=directory.email_of(user.user_name or "", _emails(user)),
                name=_name_of(user),
                manager=_manager_of(user),
                active=user.active is not False,
                external_id=user.external_id,
                resource=_kept(user),
            )
        )
        return _user_answer(request, record, 201)

    return await _handled(request, work)


@router.get("/Users/{user_id}")
async def get_user(request: Request, user_id: str) -> Response:
    async def work(svc: Services) -> Response:
        return _user_answer(request, await svc.run(lambda s: directory.get_person(s, user_id)))

    return await _handled(request, work)


async def _replace(request: Request, svc: Services, user_id: str, user: ScimUser) -> Response:
    _, active = await svc.run(
        lambda s: directory.update_person(
            s,
            user_id,
            user_name=user.user_name or "",
            name=_name_of(user),
            manager=_manager_of(user),
            external_id=user.external_id,
            resource=_kept(user),
        )
    )
    wanted = user.active is not False
    if wanted != active:
        await directory.set_active(svc, user_id, wanted)
    return _user_answer(request, await svc.run(lambda s: directory.get_person(s, user_id)))


@router.put("/Users/{user_id}")
async def replace_user(request: Request, user_id: str) -> Response:
    async def work(svc: Services) -> Response:
        body = await _body(request)
        user = ScimUser.model_validate(body, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
        await svc.run(lambda s: directory.get_person(s, user_id))  # 404 first
        return await _replace(request, svc, user_id, user)

    return await _handled(request, work)


@router.patch("/Users/{user_id}")
async def patch_user(request: Request, user_id: str) -> Response:
    async def work(svc: Services) -> Response:
        body = await _body(request)
        patch = PatchOp[ScimUser].model_validate(body, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
        user = _user(request, await svc.run(lambda s: directory.get_person(s, user_id)))
        try:
            patch.patch(user)
        except Exception as e:  # scim2-models' own refusals of a path or a value
            raise ScimFailure(
                400, f"Operations: {e}", getattr(e, "scim_type", "invalidValue")
            ) from None
        return await _replace(request, svc, user_id, user)

    return await _handled(request, work)


@router.delete("/Users/{user_id}")
async def delete_user(request: Request, user_id: str) -> Response:
    async def work(svc: Services) -> Response:
        await directory.delete_person(svc, user_id)
        return Response(status_code=204)

    return await _handled(request, work)


# ---- Groups --------------------------------------------------------------------------------


def _group(request: Request, record: directory.GroupRecord) -> Group:
    group = Group.model_validate(record.resource) if record.resource else Group()
    sent = {m.value: m.display for m in group.members or []}  # each as the provider named it
    group.id, group.external_id = record.id, record.external_id
    group.display_name = record.display_name
    group.members = [
        GroupMember(
            value=pid,
            display=sent.get(pid) or email,
            ref=Reference(_url(request, f"/Users/{pid}")),
            type="User",
        )
        for pid, email in record.members
    ] or None
    group.meta = Meta(resource_type="Group", location=_url(request, f"/Groups/{record.id}"))
    return group


def _group_answer(request: Request, record: directory.GroupRecord, status: int = 200) -> Response:
    return _answer(_shown(request, _group(request, record)), status)


def _member_ids(group: Group) -> list[str]:
    return [m.value for m in group.members or [] if m.value]


@router.get("/Groups")
async def list_groups(request: Request) -> Response:
    async def work(svc: Services) -> Response:
        name = _filter(request.query_params.get("filter"), "displayName")
        start, count = _paging(request)
        total, page = await svc.run(
            lambda s: directory.list_groups(s, display_name=name, start=start, count=count)
        )
        return _listed(request, total, start, [_group(request, r) for r in page])

    return await _handled(request, work)


@router.post("/Groups")
async def create_group(request: Request) -> Response:
    async def work(svc: Services) -> Response:
        group = Group.model_validate(
            await _body(request), scim_ctx=Context.RESOURCE_CREATION_REQUEST
        )
        record = await svc.run(
            lambda s: directory.save_group(
                s,
                None,
                display_name=group.display_name or "",
                member_ids=_member_ids(group),
                external_id=group.external_id,
                resource=_kept(group),
            )
        )
        return _group_answer(request, record, 201)

    return await _handled(request, work)


@router.get("/Groups/{group_id}")
async def get_group(request: Request, group_id: str) -> Response:
    async def work(svc: Services) -> Response:
        return _group_answer(request, await svc.run(lambda s: directory.get_group(s, group_id)))

    return await _handled(request, work)


async def _save(request: Request, svc: Services, group_id: str, group: Group) -> Response:
    record = await svc.run(
        lambda s: directory.save_group(
            s,
            group_id,
            display_name=group.display_name or "",
            member_ids=_member_ids(group),
            external_id=group.external_id,
            resource=_kept(group),
        )
    )
    return _group_answer(request, record)


@router.put("/Groups/{group_id}")
async def replace_group(request: Request, group_id: str) -> Response:
    async def work(svc: Services) -> Response:
        group = Group.model_validate(
            await _body(request), scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST
        )
        await svc.run(lambda s: directory.get_group(s, group_id))
        return await _save(request, svc, group_id, group)

    return await _handled(request, work)


@router.patch("/Groups/{group_id}")
async def patch_group(request: Request, group_id: str) -> Response:
    async def work(svc: Services) -> Response:
        patch = PatchOp[Group].model_validate(
            await _body(request), scim_ctx=Context.RESOURCE_PATCH_REQUEST
        )
        group = _group(request, await svc.run(lambda s: directory.get_group(s, group_id)))
        try:
            patch.patch(group)
        except Exception as e:
            raise ScimFailure(
                400, f"Operations: {e}", getattr(e, "scim_type", "invalidValue")
            ) from None
        return await _save(request, svc, group_id, group)

    return await _handled(request, work)


@router.delete("/Groups/{group_id}")
async def delete_group(request: Request, group_id: str) -> Response:
    async def work(svc: Services) -> Response:
        await svc.run(lambda s: directory.delete_group(s, group_id))
        return Response(status_code=204)

    return await _handled(request, work)


@router.post("/.search")
@router.post("/{resource}/.search")
async def search(request: Request, resource: str = "") -> Response:
    async def work(svc: Services) -> Response:
        raise ScimFailure(501, "POST .search is not supported: use GET with filter")

    return await _handled(request, work)


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def nothing_here(request: Request, path: str) -> Response:
    """Anything else under /scim/v2: SCIM's 404, once the secret is checked."""

    async def work(svc: Services) -> Response:
        if path.strip("/") in _READ_ONLY:
            raise ScimFailure(405, f"{request.method} is not allowed on {PREFIX}/{path}")
        raise ScimFailure(404, f"no such endpoint: {PREFIX}/{path}")

    return await _handled(request, work)
