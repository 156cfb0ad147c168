"""Histories of real runs, saved under tests/histories/, replay against today's code.

A change to a workflow that would break a running case fails here. Make such a
change with `workflow.patched(...)` (README, "Changing a workflow safely").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from worker import WORKFLOWS, workflow_runner

HISTORY_DIR = Path(__file__).resolve().parents[1] / "histories"
# Each folder under histories/ keeps the runs recorded before one patch (README).
HISTORIES = sorted(HISTORY_DIR.rglob("*.json"))


def test_there_are_saved_histories_of_every_workflow_type() -> None:
    types = {
        json.loads(p.read_text())["events"][0]["workflowExecutionStartedEventAttributes"][
            "workflowType"
        ]["name"]
        for p in HISTORIES
    }
    assert types == {w.__temporal_workflow_definition.name for w in WORKFLOWS}  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: str(p.relative_to(HISTORY_DIR)))
async def test_saved_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, workflow_runner=workflow_runner())
    await replayer.replay_workflow(history)
