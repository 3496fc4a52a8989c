"""Fixtures shared by every layer: a clean OTEL_* environment and a reset chenu-otel per test.

`capotel` and `otlp_sink` come from chenu-otel's own pytest plugin (chenu_otel.testing)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from chenu_otel import pipeline


@pytest.fixture(autouse=True)
def clean_otel_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No OTEL_* variable of the machine leaks into a test; globals are reset after it."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    yield
    pipeline.reset()


@pytest.fixture
def memory_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No exporter from the environment: only what a test passes in is used."""
    for signal in ("TRACES", "METRICS", "LOGS"):
        monkeypatch.setenv(f"OTEL_{signal}_EXPORTER", "none")
