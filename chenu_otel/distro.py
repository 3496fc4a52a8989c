"""Zero-code set-up: ``opentelemetry-instrument python app.py`` with this package installed.

The OpenTelemetry launcher loads our `ChenuDistro` (entry point ``opentelemetry_distro``), then
our `ChenuConfigurator` (``opentelemetry_configurator``), then every installed instrumentation.
The result is the same pipeline as calling `chenu_otel.configure()` and
`chenu_otel.logging.setup_logging()` in code. Select them explicitly, when other distros are
installed too, with ``OTEL_PYTHON_DISTRO=chenu_otel OTEL_PYTHON_CONFIGURATOR=chenu_otel``.

The launcher requires a configurator to subclass the SDK's ``_BaseConfigurator`` (private by
name, the only base the ``opentelemetry_configurator`` entry point accepts; checked against
opentelemetry-sdk :data:`CHECKED_SDK`). ``tests/integration/test_otlp_export.py`` runs the
launcher for real and fails if that contract changes.
"""

from __future__ import annotations

import os
from importlib.metadata import EntryPoint
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _BaseConfigurator

from chenu_otel.httpx_client import INSTRUMENTOR_KWARGS as HTTPX_INSTRUMENTOR_KWARGS
from chenu_otel.logging import setup_logging
from chenu_otel.pipeline import configure

#: opentelemetry-sdk releases the configurator contract was checked against.
CHECKED_SDK = "==1.45.1"

#: Defaults the distro puts in the environment unless the user set them: stable HTTP semantic
#: conventions only (``http.server.request.duration`` in seconds, no double recording).
ENV_DEFAULTS = {"OTEL_SEMCONV_STABILITY_OPT_IN": "http"}

#: Keyword arguments given to particular instrumentations. FastAPI/ASGI: no per-message
#: ``http receive``/``http send`` spans, one server span per request. httpx: chenu-otel's
#: providers and the hooks scrubbing ``url.full`` and captured headers.
INSTRUMENTOR_KWARGS: dict[str, dict[str, Any]] = {
    "fastapi": {"exclude_spans": ["receive", "send"]},
    "asgi": {"exclude_spans": ["receive", "send"]},
    "httpx": HTTPX_INSTRUMENTOR_KWARGS,
}


class ChenuDistro(BaseDistro):  # type: ignore[misc]
    """Sets chenu-otel's environment defaults and instrumentation options."""

    def _configure(self, **kwargs: Any) -> None:
        for name, value in ENV_DEFAULTS.items():
            os.environ.setdefault(name, value)

    def load_instrumentor(self, entry_point: EntryPoint, **kwargs: Any) -> None:
        kwargs.update(INSTRUMENTOR_KWARGS.get(entry_point.name, {}))
        super().load_instrumentor(entry_point, **kwargs)


class ChenuConfigurator(_BaseConfigurator):
    """Builds the providers with `chenu_otel.configure()` and routes logging through them."""

    def _configure(self, **kwargs: Any) -> None:
        version = kwargs.get("auto_instrumentation_version")
        configure(resource_attributes={"telemetry.auto.version": version} if version else None)
        setup_logging(level=os.environ.get("CHENU_OTEL_LOG_LEVEL", "INFO"))
