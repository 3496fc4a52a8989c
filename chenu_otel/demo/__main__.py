"""Serve the demo: ``python -m chenu_otel.demo [--port 8000]`` (binds 127.0.0.1 by default).

Telemetry goes where the standard OTEL_* variables say (OTLP to localhost:4317 by default). Redis
and SQLite come from CHENU_DEMO_REDIS_URL and CHENU_DEMO_DATABASE_URL.
"""

from __future__ import annotations

import argparse

import uvicorn

import chenu_otel
from chenu_otel.demo.app import app_from_env
from chenu_otel.logging import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m chenu_otel.demo")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    chenu_otel.configure(service_name="chenu-demo", service_version="0.1.0", environment="demo")
    setup_logging(level="INFO", format="json")
    uvicorn.run(app_from_env(), host=args.host, port=args.port, log_config=None)


if __name__ == "__main__":
    main()
