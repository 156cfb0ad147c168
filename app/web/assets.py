"""The GOV.UK Frontend and MOJ Frontend assets at `/assets`, served from `node_modules/`.

`make assets` (run by `make install`, `make run` and `make test`) installs them from the
npm registry at the versions `package-lock.json` pins; nothing comes from a CDN. Both
stylesheets ask for `/assets/fonts/...` and `/assets/images/...`, so one mount looks in
each package's `assets/` folder, then in each package's own folder (for
`/assets/govuk-frontend.min.css`, `/assets/moj-frontend.min.js`, ...).
"""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.staticfiles import StaticFiles

ROOT = Path(__file__).resolve().parent.parent.parent
NODE_MODULES = ROOT / "node_modules"
GOVUK = NODE_MODULES / "govuk-frontend" / "dist" / "govuk"
MOJ = NODE_MODULES / "@ministryofjustice" / "frontend" / "moj"
# Where `/assets/<path>` is looked for, in this order.
FOLDERS = (GOVUK / "assets", MOJ / "assets", GOVUK, MOJ)
# What the pages link to: the stylesheets and modules base.html and init.js name.
LINKED = (
    "govuk-frontend.min.css",
    "moj-frontend.min.css",
    "govuk-frontend.min.js",
    "moj-frontend.min.js",
)

log = logging.getLogger(__name__)


def missing() -> list[str]:
    """The linked assets not installed (empty once `make assets` has run)."""
    return [name for name in LINKED if not any((f / name).is_file() for f in FOLDERS)]


def assets_app() -> StaticFiles:
    """The static files app for `/assets`, over every folder of FOLDERS."""
    if absent := missing():
        log.warning("page assets missing (%s): run `make assets`", ", ".join(absent))
    app = StaticFiles(directory=FOLDERS[0], check_dir=False)
    app.all_directories = [str(folder) for folder in FOLDERS]
    return app
