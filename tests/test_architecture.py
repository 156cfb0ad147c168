"""The import contract of docs/ARCHITECTURE.md (`.importlinter`, run by `make lint`) holds,
and fails when an import crosses a line it forbids; worker.py, a module import-linter
cannot take as a root, is read here."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOMS = ("app", "domain", "activities", "models", "workflows", "migrations")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the repository's contract over the packages under `root`."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), str(REPO / ".importlinter"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def copy_of_the_rooms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rooms")
    for room in ROOMS:
        shutil.copytree(REPO / room, root / room, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_the_rooms_keep_the_contract(copy_of_the_rooms: Path) -> None:
    result = lint_imports(copy_of_the_rooms)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # The domain importing a front end, the service layer importing the runtime, an
        # activity importing the platform, a workflow importing the read model.
        ("domain/_bad.py", "import app.web.render", "Rooms"),
        ("app/service/_bad.py", "from app.runtime import bootstrap", "Rooms"),
        ("activities/_bad.py", "import app.platform.settings", "Rooms"),
        ("workflows/_bad.py", "import models", "Rooms"),
        # The API and the pages are independent of each other.
        ("app/api/_bad.py", "import app.web.session", "Rooms"),
        # Two modules of one room in a circle (domain.times imports domain.calendar).
        ("domain/calendar_bad.py", "import domain.times", None),
    ],
)
def test_a_forbidden_import_breaks_it(
    copy_of_the_rooms: Path, module: str, line: str, broken: str | None
) -> None:
    bad = copy_of_the_rooms / module
    if broken is None:  # a circle: the bad module is imported by one it imports
        times = copy_of_the_rooms / "domain" / "times.py"
        original = times.read_text()
        times.write_text(original + "\nimport domain.calendar_bad  # noqa\n")
    bad.write_text(f"{line}\n")
    try:
        result = lint_imports(copy_of_the_rooms)
    finally:
        bad.unlink()
        if broken is None:
            times.write_text(original)
    assert result.returncode != 0, result.stdout
    name = module.removesuffix(".py").replace("/", ".")
    if broken:
        assert f"{broken}: each imports only the rooms below it BROKEN" in result.stdout
        assert name in result.stdout
    else:
        assert "No room's modules import each other in a circle BROKEN" in result.stdout
        assert ".times -> .calendar_bad" in result.stdout


# What worker.py may import: the rooms below it (docs/ARCHITECTURE.md).
WORKER_MAY_IMPORT = ("activities", "domain", "app.platform", "models", "workflows")


def test_worker_imports_only_the_rooms_below_it() -> None:
    tree = ast.parse((REPO / "worker.py").read_text())
    ours = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            ours.add(node.module)
        elif isinstance(node, ast.Import):
            ours |= {alias.name for alias in node.names}
    ours = {m for m in ours if m.split(".")[0] in ROOMS}
    assert ours, "worker.py imports nothing of ours?"
    beyond = sorted(m for m in ours if not m.startswith(WORKER_MAY_IMPORT))
    assert beyond == []
