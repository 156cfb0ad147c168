"""The HTTP API of shared/API.md: thin routes over `app.service` (`routes`), its request
and response shapes, its error answers, body limits and request metrics. Knows nothing
of the pages; `app.runtime.webapp` mounts both (docs/ARCHITECTURE.md)."""
