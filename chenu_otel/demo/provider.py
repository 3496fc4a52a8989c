"""The demo's fake LLM provider as a service of its own (``service.name`` chenu-llm-provider).

``python -m chenu_otel.demo.provider --port 8100`` serves ``POST /v1/completions`` on
127.0.0.1: a deterministic reply and token counts derived from a hash of the prompt. Instrumented
by chenu-otel like any service, so its server span continues the trace of the demo's outbound
httpx call (``traceparent``) and one user request yields one trace across both services.
``python -m chenu_otel.demo`` starts it by itself (see `start_provider`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from typing import Any, Final

import uvicorn
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel

import chenu_otel
from chenu_otel.instrumentation import instrument_app
from chenu_otel.logging import setup_logging

__all__ = [
    "API_KEY_ENV",
    "PROVIDER_SERVICE_NAME",
    "complete",
    "create_provider_app",
    "start_provider",
]

PROVIDER_SERVICE_NAME: Final = "chenu-llm-provider"
#: The bearer token the provider expects (a demo value, scrubbed from telemetry all the same).
API_KEY_ENV: Final = "CHENU_DEMO_LLM_API_KEY"
DEFAULT_API_KEY: Final = "demo-llm-key-0123456789"
COMPLETIONS_PATH: Final = "/v1/completions"


def complete(prompt: str) -> tuple[str, int, int]:
    """Deterministic "LLM": the reply and token counts derive from a hash of the prompt."""
    digest = hashlib.sha256(prompt.encode()).digest()
    input_tokens = max(len(prompt.split()), 1) * 4 + digest[0] % 16
    output_tokens = 20 + digest[1] % 80
    return f"NOVA says: {digest.hex()[:16]}", input_tokens, output_tokens


class CompletionRequest(BaseModel):
    model: str
    prompt: str


def create_provider_app(api_key: str | None = None) -> FastAPI:
    """The provider app; requests must carry ``Authorization: Bearer <api_key>``."""
    expected = f"Bearer {api_key or os.environ.get(API_KEY_ENV, DEFAULT_API_KEY)}"
    app = FastAPI(title="chenu fake LLM provider")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(COMPLETIONS_PATH)
    def completions(
        body: CompletionRequest, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        if authorization != expected:
            raise HTTPException(status_code=401, detail="invalid API key")
        reply, input_tokens, output_tokens = complete(body.prompt)
        return {
            "model": body.model,
            "text": reply,
            "finish_reason": "stop",
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }

    instrument_app(app, httpx=False)
    return app


def start_provider(host: str, port: int) -> subprocess.Popen[bytes]:
    """Start ``python -m chenu_otel.demo.provider`` on `host`:`port` with this process's
    environment, except ``OTEL_SERVICE_NAME`` (the provider is its own service). It stays in
    this process group, so a signal to the demo's group reaches it too."""
    environ = {**os.environ, "OTEL_SERVICE_NAME": PROVIDER_SERVICE_NAME}
    argv = [sys.executable, "-m", "chenu_otel.demo.provider", "--host", host, "--port", str(port)]
    return subprocess.Popen(argv, env=environ)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m chenu_otel.demo.provider")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args()
    chenu_otel.configure(
        service_name=PROVIDER_SERVICE_NAME, service_version="0.1.0", environment="demo"
    )
    setup_logging(level="INFO", format="json")
    uvicorn.run(create_provider_app(), host=args.host, port=args.port, log_config=None)


if __name__ == "__main__":
    main()
