"""Rendering a page: one Jinja2 environment on `templates/web/`, HTML always escaped.

The pages are built from the GOV.UK Design System's own components: the macros of
`govuk-frontend-jinja` (reached as `govuk_frontend_jinja/...`) and MOJ Frontend's
timeline, badge and sortable table ported to Jinja in `templates/web/moj/`. Those
templates test for parameters they were not given (`params.classes`); `GovukUndefined`
lets them, and only them: a name missing in one of ours is still an error.

Every page gets `me` (the signed-in Actor, or None), `csrf_token` for its forms,
the navigation and any flash messages left by the previous request.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

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
GOVUK_PREFIX = "govuk_frontend_jinja"
# Templates written to the design system's conventions, where a parameter not given is
# simply absent: the package's own, and our ports of MOJ Frontend's.
_LENIENT = (f"/{GOVUK_PREFIX}/", f"{TEMPLATES_DIR}/moj/")


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


def _in_lenient_template() -> bool:
    """Whether the template code asking is one of `_LENIENT`'s (the nearest template frame:
    Jinja compiles a template with its file's name)."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.endswith(".html"):
            return any(part in name for part in _LENIENT)
        frame = frame.f_back  # type: ignore[assignment]
    return False


class GovukUndefined(jinja2.ChainableUndefined):
    """Chainable and blank (`params.label.text` is empty) inside the design system's
    templates, which rely on it; strict, as StrictUndefined, everywhere else."""

    __slots__ = ()

    def _strict(self) -> None:
        if not _in_lenient_template():
            self._fail_with_undefined_error()

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        self._strict()
        return self

    def __getitem__(self, *_args: Any, **_kwargs: Any) -> GovukUndefined:  # type: ignore[override]
        self._strict()
        return self

    def __str__(self) -> str:
        self._strict()
        return ""

    def __iter__(self) -> Any:
        self._strict()
        return iter(())

    def __bool__(self) -> bool:
        self._strict()
        return False

    def __len__(self) -> int:
        self._strict()
        return 0

    def __eq__(self, other: object) -> bool:
        self._strict()
        return type(self) is type(other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return id(type(self))

    def __contains__(self, _item: object) -> bool:
        self._strict()
        return False

    def _fail(self, *_args: object, **_kwargs: object) -> NoReturn:
        self._fail_with_undefined_error()

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail
    __lt__ = __le__ = __gt__ = __ge__ = __int__ = __float__ = __call__ = _fail


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader(TEMPLATES_DIR),
                jinja2.PrefixLoader({GOVUK_PREFIX: jinja2.PackageLoader(GOVUK_PREFIX)}),
            ]
        ),
        autoescape=True,  # every template, whatever its name: pages show people's input
        undefined=GovukUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["label"] = text.label  # `account_kind` -> `Account kind`
    env.filters["words"] = text.words  # `sac_review` -> `SAC review`
    env.filters["show"] = text.show  # a details value as a person reads it
    env.filters["when"] = when
    return env


ENV = _environment()


def _inline_script_hashes() -> tuple[str, ...]:
    """CSP source expressions (`'sha256-...'`) of the inline scripts every page carries:
    only the GOV.UK template's snippet that marks the body `js-enabled`. init.js sets the
    same classes, so a policy without it (`script-src 'self'`) loses nothing."""
    assert ENV.loader is not None
    source, _, _ = ENV.loader.get_source(ENV, f"{GOVUK_PREFIX}/template.html")
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", source, re.S)
    return tuple(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in scripts
    )


INLINE_SCRIPT_HASHES = _inline_script_hashes()


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
