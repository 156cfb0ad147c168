"""The security headers of every answer, in one middleware (`SecurityHeaders`).

Every response, page, API, static file or docs alike, carries:

- `Content-Security-Policy`: `default-src 'self'`, `frame-ancestors 'none'` and no
  inline script anywhere but the GOV.UK template's one-line snippet that marks the page
  `js-enabled`, allowed by its hash (`app.web.render.INLINE_SCRIPT_HASHES`; the pages'
  own script is a static file, as is Swagger UI's start-up).
  Two routes loosen one thing each: ReDoc (`/redoc`) styles itself with inline `<style>`
  and runs its search in a `blob:` worker; a caught email's page (`/mail/<name>`) shows
  the email's own inline styles in its sandboxed frame (which inherits the policy).
  With single sign-on, `form-action` also names the provider's origin: signing out
  ends the provider's session too, by a redirect there.
- `X-Frame-Options: DENY`, for browsers older than `frame-ancestors`;
- `Referrer-Policy: no-referrer`: a case id in an address never leaves in a Referer;
- `X-Content-Type-Options: nosniff`.

Everything but the static assets (`/static/`, `/assets/`, `/docs/assets/`, `/redoc/assets/`) is also
`Cache-Control: no-store`: a signed-in page or an API answer is never kept by the
browser or a proxy, so after signing out, Back shows no case. A route that set its own
`Cache-Control` keeps it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.render import INLINE_SCRIPT_HASHES

BASE_POLICY = (
    "default-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
    "img-src 'self' data:",
    " ".join(("script-src 'self'", *INLINE_SCRIPT_HASHES)),
)
INLINE_STYLES = "style-src 'self' 'unsafe-inline'"
# Routes whose policy adds to the base, by path prefix (the first that matches).
LOOSER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/redoc/assets/", ()),
    ("/redoc", (INLINE_STYLES, "worker-src 'self' blob:")),
    ("/mail/", (INLINE_STYLES,)),
)
CACHEABLE = ("/static/", "/assets/", "/docs/assets/", "/redoc/assets/")
FIXED = {
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


def content_security_policy(path: str, form_origin: str | None = None) -> str:
    """The policy of `path`; `form_origin`: the single sign-on provider's origin, which a
    form may also lead to (Sign out ends the provider's session with a redirect there)."""
    extra = next((more for prefix, more in LOOSER if path.startswith(prefix)), ())
    base: tuple[str, ...] = BASE_POLICY
    if form_origin:
        base = tuple(
            f"form-action 'self' {form_origin}" if p == "form-action 'self'" else p for p in base
        )
    return "; ".join((*base, *extra))


def _provider_origin(scope: Scope) -> str | None:
    """The origin of CASEWORK_OIDC_ISSUER, from the app's services, if one is configured."""
    services = getattr(getattr(scope.get("app"), "state", None), "services", None)
    issuer = getattr(getattr(services, "settings", None), "oidc_issuer", None)
    if not isinstance(issuer, str):
        return None
    parts = urlsplit(issuer)
    return f"{parts.scheme}://{parts.netloc}"


def cacheable(path: str) -> bool:
    return path.startswith(CACHEABLE)


class SecurityHeaders:
    """Adds the headers above to each HTTP response's start."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        policy = content_security_policy(path, _provider_origin(scope))
        store = not cacheable(path)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["content-security-policy"] = policy
                for name, value in FIXED.items():
                    headers[name] = value
                if store and "cache-control" not in headers:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
