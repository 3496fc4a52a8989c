"""A small CHE·NU-like service to exercise chenu-otel: threads and messages in SQLite, a Redis
cache, a deterministic fake agent calling a fake LLM provider (a second service, over httpx), a
websocket, and an endpoint that fails now and then. ``python -m chenu_otel.demo`` serves both;
``python -m chenu_otel.demo.load`` drives it."""

from chenu_otel.demo.app import create_app

__all__ = ["create_app"]
