"""The application side of the secret-canary tests, in its own process for clean globals.

A FastAPI app instrumented by chenu_otel (``instrument_app`` with a SQLite engine), set up from
the OTEL_* variables the test passes, is fed requests that carry one canary secret per place a
secret usually leaks from, then flushes and exits:

``url_query``  the request URL's ``?token=`` (middleware span and access log), the app logging
               ``str(request.url)``, and a client span's ``url.full`` with ``?api_key=``
``sql``        a SQL statement with the canary as a literal (the SQLAlchemy CLIENT span)
``exception``  an exception whose message holds a DSN with the canary as password, logged with
               ``log.exception`` and raised through the middleware (span event and status)
``header``     ``Authorization``/``X-Api-Key``/``Cookie`` captured by the contrib ASGI
               instrumentation (``http.request.header.*``), and a JWT sent as ``X-Request-ID``
               that chenu's middleware records
``baggage``    a W3C ``baggage`` entry ``auth_token=…``, copied onto spans by a span processor
               doing what opentelemetry-processor-baggage does
``structlog``  structlog keys: ``password=…``, a nested dict with ``api_key``, bound context

Usage: ``canary_app.py CANARIES_JSON`` (case → canary); prints a JSON summary as its last line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
from fastapi import FastAPI, Request
from opentelemetry import baggage
from opentelemetry.context import Context
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind
from sqlalchemy import create_engine, text

import chenu_otel
from chenu_otel.instrumentation import instrument_app
from chenu_otel.logging import bind_context, get_logger, setup_logging
from chenu_otel.tracing import create_span

CAPTURED_HEADERS = ["authorization", "x-api-key", "cookie"]


class BaggageSpanProcessor(SpanProcessor):
    """Copies every baggage entry onto each span as it starts (the contrib baggage processor
    with its allow-all predicate), which is how baggage reaches exported telemetry."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for key, value in baggage.get_all(parent_context).items():
            span.set_attribute(key, str(value))

    def on_end(self, span: ReadableSpan) -> None:
        pass


def jwt_with(canary: str) -> str:
    """A JWT-shaped token (header.payload.signature) whose payload is the canary."""
    return f"eyJhbGciOiJIUzI1NiJ9.{canary}.c2lnbmF0dXJl"


def build_app(canaries: dict[str, str]) -> FastAPI:
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE users (id INTEGER PRIMARY KEY, api_secret TEXT)"))
    app = FastAPI()
    log = get_logger("canary.app")

    @app.get("/items/{item_id}")
    async def item(item_id: int, request: Request) -> dict[str, Any]:
        log.info("upstream_request", url=str(request.url))
        with create_span(
            "GET",
            {
                "url.full": f"https://api.example/v1/items/{item_id}?api_key={canaries['url_query']}",
                "http.request.method": "GET",
            },
            kind=SpanKind.CLIENT,
        ):
            pass
        with engine.connect() as connection:
            connection.execute(text(f"SELECT id FROM users WHERE api_secret = '{canaries['sql']}'"))
        return {"item": item_id}

    @app.get("/fail")
    async def fail() -> None:
        try:
            raise ConnectionError(
                f"could not connect to postgresql://app:{canaries['exception']}@db:5432/app"
            )
        except ConnectionError:
            log.exception("upstream_failed")
            raise

    @app.post("/login")
    async def login() -> dict[str, bool]:
        secret = canaries["structlog"]
        bind_context(session_token=secret)
        log.info("login", password=secret, user={"name": "ana", "api_key": secret})
        return {"ok": True}

    instrument_app(app, engine=engine)
    return app


async def captured_headers_app(scope: Any, receive: Any, send: Any) -> None:
    """A bare ASGI app for the contrib instrumentation to wrap."""
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def drive(canaries: dict[str, str]) -> dict[str, Any]:
    app = build_app(canaries)
    statuses: dict[str, int] = {}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        statuses["url_query"] = (
            await client.get(f"/items/1?token={canaries['url_query']}&page=2")
        ).status_code
        statuses["header"] = (
            await client.get(
                "/items/2",
                headers={
                    "Authorization": f"Bearer {canaries['header']}",
                    "X-Request-ID": jwt_with(canaries["header"]),
                },
            )
        ).status_code
        statuses["baggage"] = (
            await client.get(
                "/items/3", headers={"baggage": f"auth_token={canaries['baggage']},tenant=acme"}
            )
        ).status_code
        statuses["exception"] = (await client.get("/fail")).status_code
        statuses["structlog"] = (await client.post("/login")).status_code
    instrumented = OpenTelemetryMiddleware(
        captured_headers_app, http_capture_headers_server_request=CAPTURED_HEADERS
    )
    transport = httpx.ASGITransport(app=instrumented)
    async with httpx.AsyncClient(transport=transport, base_url="http://contrib.test") as client:
        statuses["header_contrib"] = (
            await client.get(
                "/captured",
                headers={
                    "Authorization": f"Bearer {canaries['header']}",
                    "X-Api-Key": canaries["header"],
                    "Cookie": f"session={canaries['header']}",
                },
            )
        ).status_code
    return statuses


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    canaries: dict[str, str] = json.loads(argv[0])
    chenu_otel.configure(service_name="canary-app", span_processors=[BaggageSpanProcessor()])
    setup_logging(level="INFO", format="json", stream=sys.stderr)
    statuses = asyncio.run(drive(canaries))
    flushed = chenu_otel.shutdown(10_000)
    print(json.dumps({"statuses": statuses, "flushed": flushed}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
