"""Rendering a page: one Jinja2 environment on `templates/web/`, HTML always escaped.

Every page gets `me` (the signed-in Actor, or None), `csrf_token` for its forms,
the navigation and any flash messages left by the previous request.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from fastapi.responses import HTMLResponse
from starlette.requests import Request

from app.service.dashboard import may_see_dashboard
from app.web.resume import forget_typed
from app.web.session import csrf_token, pop_flashes, services_of
from domain import text, times
from domain.calendar import DEFAULT_TIMEZONE
from workflows.common import Actor

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "templates" / "web"


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    key: str  # what `active` names on the pages that belong to it


NAV = (
    NavItem("My work", "/", "work"),
    NavItem("New case", "/cases/new", "new"),
    NavItem("Dashboard", "/dashboard", "dashboard"),
    NavItem("Mail", "/mail", "mail"),
)


@jinja2.pass_context
def when(context: jinja2.runtime.Context, value: object) -> str:
    """An ISO instant (or datetime) as `Wed 9 Dec 2026, 17:00 GMT`, in the zone of the
    policy the page's services run under; blank for none."""
    return times.short(value, context.get("timezone") or DEFAULT_TIMEZONE)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every template, whatever its name: pages show people's input
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["label"] = text.label  # `account_kind` -> `Account kind`
    env.filters["words"] = text.words  # `sac_review` -> `SAC review`
    env.filters["show"] = text.show  # a details value as a person reads it
    env.filters["when"] = when
    return env


ENV = _environment()


def current_actor(request: Request) -> Actor | None:
    me = getattr(request.state, "me", None)
    return me if isinstance(me, Actor) else None


def _in_nav(item: NavItem, me: Actor | None, mail_caught: bool) -> bool:
    """The mail page only while the catcher is in use; the dashboard only for its readers."""
    if item.key == "mail":
        return mail_caught
    if item.key == "dashboard":
        return me is not None and may_see_dashboard(me)
    return True


def render(
    request: Request, template_name: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """The page `template_name` (relative to templates/web/) with the common context."""
    services = services_of(request)
    settings = services.settings
    me = current_actor(request)
    page = {
        "request": request,
        "me": me,
        "csrf_token": csrf_token(request),
        "nav": [item for item in NAV if _in_nav(item, me, settings.smtp_host is None)],
        "active": None,
        "flashes": pop_flashes(request),
        "timezone": services.policy.timezone,  # times are shown where the staff are
        "oidc": settings.oidc_issuer is not None,  # the sign-in page offers single sign-on
        **context,
    }
    html = ENV.get_template(template_name).render(page)
    response = HTMLResponse(html, status_code=status_code)
    forget_typed(request, response)
    return response
