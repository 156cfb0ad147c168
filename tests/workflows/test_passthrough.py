"""Workflow modules passed through the sandbox (worker.PASSTHROUGH) are not watched by it
at run time: a clock read, randomness or I/O there would go unnoticed until a replay
broke. These checks read their source instead."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from worker import PASSTHROUGH

# Calls that would make a workflow non-deterministic or do I/O (workflow.now() and
# workflow.random() are Temporal's own and fine).
FORBIDDEN_ATTRIBUTES = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "sleep"}
FORBIDDEN_MODULES = {"random", "uuid", "os", "time", "socket", "threading", "subprocess", "io"}
FORBIDDEN_NAMES = {"open", "input", "print"}


def source_of(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    return Path(spec.origin)


def offences(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(node.module)
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_NAMES:
                found.append(f"{func.id}() at line {node.lineno}")
            elif isinstance(func, ast.Attribute) and func.attr in FORBIDDEN_ATTRIBUTES:
                owner = func.value
                if not (isinstance(owner, ast.Name) and owner.id == "workflow"):
                    found.append(f".{func.attr}() at line {node.lineno}")
    return found


@pytest.mark.parametrize("module", [m for m in PASSTHROUGH if m.startswith("workflows.")])
def test_a_passed_through_workflow_module_reads_no_clock_and_does_no_io(module: str) -> None:
    assert offences(source_of(module)) == []


def test_the_check_finds_a_clock_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from datetime import datetime\nimport random\nx = datetime.now()\n")
    assert offences(bad) == ["random", ".now() at line 3"]
