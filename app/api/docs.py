"""The API's documentation pages, served by Casework itself and working offline:
Swagger UI at `/docs` and ReDoc at `/redoc`, both reading `/openapi.json`.

Their assets come from the npm registry through the project's own `package.json`
(`swagger-ui-dist` 5, which reads OpenAPI 3.1, and `redoc` 2), installed into
`node_modules/` by `make install` (`npm ci`), never a CDN at run time. The pages hold
no inline script (the Content-Security-Policy forbids it, `app.runtime.headers`):
Swagger UI starts from `static/swagger-init.js`, ReDoc from its `<redoc>` element.
Without `node_modules/` the two pages say how to install them (503).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
SWAGGER_UI = NODE_MODULES / "swagger-ui-dist"
REDOC = NODE_MODULES / "redoc" / "bundles"
OWN_STATIC = Path(__file__).with_name("static")

SWAGGER_PAGE = """<!doctype html>
<html lang="en-GB">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} - Swagger UI</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-url="{openapi}"></div>
  <script src="/docs/assets/swagger-ui/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/casework/swagger-init.js"></script>
</body>
</html>
"""

REDOC_PAGE = """<!doctype html>
<html lang="en-GB">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} - ReDoc</title>
</head>
<body>
  <redoc spec-url="{openapi}"></redoc>
  <script src="/redoc/assets/redoc.standalone.js"></script>
</body>
</html>
"""

MISSING = """<!doctype html>
<html lang="en-GB">
<head><meta charset="utf-8"><title>{what} is not installed</title></head>
<body>
  <h1>{what} is not installed</h1>
  <p>Run <code>make install</code> (it runs <code>npm ci</code>) in the Casework checkout,
  then reload. The API's description is at <a href="{openapi}">{openapi}</a>.</p>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Add `/docs` and `/redoc` (and their assets) to an app built with
    `docs_url=None, redoc_url=None`."""
    openapi = escape(app.openapi_url or "/openapi.json")
    title = escape(app.title)

    def page(template: str, what: str, needs: Path) -> HTMLResponse:
        if not needs.is_file():
            return HTMLResponse(MISSING.format(what=what, openapi=openapi), status_code=503)
        return HTMLResponse(template.format(title=title, openapi=openapi))

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return page(SWAGGER_PAGE, "Swagger UI", SWAGGER_UI / "swagger-ui-bundle.js")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return page(REDOC_PAGE, "ReDoc", REDOC / "redoc.standalone.js")

    app.mount(
        "/docs/assets/swagger-ui",
        StaticFiles(directory=SWAGGER_UI, check_dir=False),
        name="swagger-ui",
    )
    app.mount("/docs/assets/casework", StaticFiles(directory=OWN_STATIC), name="docs-own")
    app.mount("/redoc/assets", StaticFiles(directory=REDOC, check_dir=False), name="redoc")
