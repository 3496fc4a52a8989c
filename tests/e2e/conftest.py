"""Fixtures for e2e tests that run the real collector on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.collector_fixtures import build_collector


@pytest.fixture(scope="session")
def collector_binary() -> Path:
    """chenu-otelcol from scripts/build-collector; fails (never skips) if it cannot be built."""
    return build_collector()
