"""A small CHE·NU-like service to exercise chenu-otel: threads and messages in SQLite, a Redis
cache, a deterministic fake agent calling a fake LLM, a websocket, and an endpoint that fails now
and then. ``python -m chenu_otel.demo`` serves it; ``python -m chenu_otel.demo.load`` drives it."""

from chenu_otel.demo.app import create_app

__all__ = ["create_app"]
