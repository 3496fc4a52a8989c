"""Serve the demo: ``python -m chenu_otel.demo [--port 8000]`` (binds 127.0.0.1 by default).

Two services: the demo app and its LLM provider (`chenu_otel.demo.provider`, service
``chenu-llm-provider``), which this command starts as a child process on a free loopback port
and stops on exit; the agent calls it through httpx, so a message posted to a thread yields one
trace across both services. With CHENU_DEMO_LLM_URL set, that provider is used instead.

Telemetry goes where the standard OTEL_* variables say (OTLP to localhost:4317 by default), with
the stable HTTP semantic conventions unless OTEL_SEMCONV_STABILITY_OPT_IN says otherwise. Redis
and SQLite come from CHENU_DEMO_REDIS_URL and CHENU_DEMO_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import os
import subprocess

import uvicorn

import chenu_otel
from chenu_otel.demo.app import LLM_URL_ENV, app_from_env
from chenu_otel.demo.provider import start_provider
from chenu_otel.distro import ENV_DEFAULTS
from chenu_otel.logging import setup_logging
from chenu_otel.stack.processes import free_port, http_ok, poll_until


def _provider(host: str) -> subprocess.Popen[bytes] | None:
    """Start the provider unless CHENU_DEMO_LLM_URL names one; wait until it answers."""
    if os.environ.get(LLM_URL_ENV):
        return None
    port = free_port()
    process = start_provider(host, port)
    url = f"http://{host}:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the LLM provider exited with {process.returncode}")
        return http_ok(f"{url}/health")

    try:
        poll_until(ready, timeout=60, what="the LLM provider")
    except BaseException:
        process.terminate()
        raise
    os.environ[LLM_URL_ENV] = url
    return process


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m chenu_otel.demo")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    for name, value in ENV_DEFAULTS.items():  # the distro's defaults, read by contrib code
        os.environ.setdefault(name, value)
    provider = _provider(args.host)
    try:
        chenu_otel.configure(service_name="chenu-demo", service_version="0.1.0", environment="demo")
        setup_logging(level="INFO", format="json")
        uvicorn.run(app_from_env(), host=args.host, port=args.port, log_config=None)
    finally:
        if provider is not None:
            provider.terminate()
            try:
                provider.wait(timeout=15)
            except subprocess.TimeoutExpired:
                provider.kill()
                provider.wait(timeout=5)


if __name__ == "__main__":
    main()
