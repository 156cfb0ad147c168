"""The worker's workflow cache is bounded, by a setting (bench/memory.py measures why)."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from app.platform.db import make_engine
from app.platform.settings import DEFAULT_WORKFLOW_CACHE_SIZE, Settings, SettingsError
from worker import build_worker


def test_the_cache_size_is_a_setting_with_a_bounded_default() -> None:
    assert Settings.from_env({}).workflow_cache_size == DEFAULT_WORKFLOW_CACHE_SIZE == 250
    env = {"CASEWORK_WORKFLOW_CACHE_SIZE": "40"}
    assert Settings.from_env(env).workflow_cache_size == 40
    for bad in ("0", "many", "-5"):
        with pytest.raises(SettingsError, match="CASEWORK_WORKFLOW_CACHE_SIZE: must be a whole"):
            Settings.from_env({"CASEWORK_WORKFLOW_CACHE_SIZE": bad})


async def test_build_worker_takes_the_cache_size_from_settings(temporal_client: Client) -> None:
    client = temporal_client
    engine = make_engine("sqlite://")
    try:
        settings = Settings.from_env({"CASEWORK_WORKFLOW_CACHE_SIZE": "40"})
        worker = build_worker(client, settings=settings, engine=engine)
        assert worker.config()["max_cached_workflows"] == 40
        # Another task queue: one worker per queue and process.
        none = build_worker(
            client, settings=settings, engine=engine, task_queue="no-cache", max_cached_workflows=0
        )
        assert none.config()["max_cached_workflows"] == 0  # 0 is "no cache", not "default"
    finally:
        engine.dispose()
