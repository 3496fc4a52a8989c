"""The demo FastAPI service (see the package docstring)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import redis
from fastapi import FastAPI, HTTPException, WebSocket, WebSocketDisconnect
from pydantic import BaseModel
from sqlalchemy import ForeignKey, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from chenu_otel.demo.provider import API_KEY_ENV, COMPLETIONS_PATH, DEFAULT_API_KEY, complete
from chenu_otel.genai import TokenBudget, agent_run, llm_call, tool_call
from chenu_otel.instrumentation import instrument_app
from chenu_otel.logging import get_logger
from chenu_otel.metrics import record_thread_event

__all__ = ["create_app"]


MODEL = "chenu-fake-1"
PROVIDER = "chenu-fake"
PRICE_PER_1K_INPUT = 0.0005
PRICE_PER_1K_OUTPUT = 0.0015
THREAD_TOKEN_BUDGET = 4_000


class Base(DeclarativeBase):
    pass


class Thread(Base):
    __tablename__ = "threads"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    tokens_used: Mapped[int] = mapped_column(default=0)


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    content: Mapped[str] = mapped_column(String(4000))


class NewThread(BaseModel):
    title: str = "untitled"


class NewMessage(BaseModel):
    content: str


#: (reply, input tokens, output tokens) for a prompt.
Completion = Callable[[str], tuple[str, int, int]]


def provider_completion(client: httpx.Client) -> Completion:
    """Completions from the provider service behind `client` (its base URL and API key set):
    one outbound HTTP call per LLM call, traced into the provider."""

    def call(prompt: str) -> tuple[str, int, int]:
        response = client.post(COMPLETIONS_PATH, json={"model": MODEL, "prompt": prompt})
        response.raise_for_status()
        body = response.json()
        usage = body["usage"]
        return str(body["text"]), int(usage["input_tokens"]), int(usage["output_tokens"])

    return call


def run_agent(thread_id: int, prompt: str, budget: TokenBudget, llm: Completion = complete) -> str:
    """The fake agent: one tool call and one LLM call through `llm`, with GenAI telemetry."""
    with agent_run(
        "NOVA", agent_id="agent-001", thread_id=str(thread_id), token_budget=budget,
        provider=PROVIDER,
    ):  # fmt: skip
        with tool_call("lookup_context"):
            context = prompt[:64]
        with llm_call(MODEL, provider=PROVIDER) as call:
            reply, tokens_in, tokens_out = llm(context + prompt)
            cost = tokens_in / 1000 * PRICE_PER_1K_INPUT + tokens_out / 1000 * PRICE_PER_1K_OUTPUT
            call.record_usage(
                input_tokens=tokens_in, output_tokens=tokens_out, cost_usd=cost,
                response_model=MODEL, finish_reason="stop",
            )  # fmt: skip
    return reply


def create_app(
    database_url: str = "sqlite:///chenu-demo.db",
    redis_url: str = "redis://127.0.0.1:6379/0",
    llm_url: str | None = None,
) -> FastAPI:
    """Build the demo app on `database_url` and `redis_url`, fully instrumented. With `llm_url`
    the agent's LLM calls go over HTTP to the provider service there (see
    `chenu_otel.demo.provider`); without, the same fake LLM answers in process."""
    llm: Completion = complete
    if llm_url is not None:
        api_key = os.environ.get(API_KEY_ENV, DEFAULT_API_KEY)
        llm_client = httpx.Client(
            base_url=llm_url, timeout=10, headers={"Authorization": f"Bearer {api_key}"}
        )
        llm = provider_completion(llm_client)
    engine = create_engine(database_url)
    Base.metadata.create_all(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    cache = redis.Redis.from_url(redis_url, socket_timeout=2)
    app = FastAPI(title="chenu-otel demo")
    # Created here, after setup_logging(), so the logger uses the configured processors.
    log = get_logger("chenu_otel.demo")
    state: dict[str, int] = {"flaky_calls": 0}

    def thread_payload(session: Session, thread_id: int) -> dict[str, Any]:
        key = f"thread:{thread_id}"
        cached = cache.get(key)
        if cached is not None:
            return dict(orjson.loads(cached))
        thread = session.get(Thread, thread_id)
        if thread is None:
            raise HTTPException(status_code=404, detail="thread not found")
        messages = session.scalars(
            select(Message).where(Message.thread_id == thread_id).order_by(Message.id)
        ).all()
        payload = {
            "id": thread.id,
            "title": thread.title,
            "tokens_used": thread.tokens_used,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        cache.set(key, orjson.dumps(payload), ex=60)
        return payload

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/threads", status_code=201)
    def create_thread(body: NewThread) -> dict[str, Any]:
        with sessions() as session, session.begin():
            thread = Thread(title=body.title)
            session.add(thread)
        record_thread_event("created", str(thread.id))
        log.info("thread_created", thread_id=thread.id)
        return {"id": thread.id, "title": thread.title}

    @app.get("/threads/{thread_id}")
    def get_thread(thread_id: int) -> dict[str, Any]:
        with sessions() as session:
            return thread_payload(session, thread_id)

    @app.post("/threads/{thread_id}/messages", status_code=201)
    def post_message(thread_id: int, body: NewMessage) -> dict[str, Any]:
        with sessions() as session, session.begin():
            thread = session.get(Thread, thread_id)
            if thread is None:
                raise HTTPException(status_code=404, detail="thread not found")
            if thread.tokens_used >= THREAD_TOKEN_BUDGET:
                raise HTTPException(status_code=429, detail="thread token budget exhausted")
            budget = TokenBudget(limit=THREAD_TOKEN_BUDGET, used=thread.tokens_used)
            reply = run_agent(thread_id, body.content, budget, llm)
            thread.tokens_used = budget.used
            session.add_all([
                Message(thread_id=thread_id, role="user", content=body.content),
                Message(thread_id=thread_id, role="assistant", content=reply),
            ])  # fmt: skip
        record_thread_event("message", str(thread_id), role="user")
        record_thread_event("message", str(thread_id), role="assistant")
        cache.delete(f"thread:{thread_id}")
        log.info("agent_replied", thread_id=thread_id, tokens_used=budget.used)
        return {"reply": reply, "tokens_used": budget.used}

    @app.get("/flaky")
    def flaky() -> dict[str, int]:
        state["flaky_calls"] += 1
        if state["flaky_calls"] % 5 == 0:
            raise RuntimeError("flaky dependency failed (every 5th call)")
        return {"call": state["flaky_calls"]}

    @app.websocket("/ws/threads/{thread_id}")
    async def thread_socket(ws: WebSocket, thread_id: int) -> None:
        await ws.accept()
        try:
            while True:
                text = await ws.receive_text()
                reply, _, _ = complete(text)
                await ws.send_text(reply)
        except WebSocketDisconnect:
            return

    instrument_app(app, engine=engine, redis=cache)
    app.state.engine = engine
    app.state.cache = cache
    return app


#: The LLM provider's base URL; unset, the agent's fake LLM answers in process.
LLM_URL_ENV = "CHENU_DEMO_LLM_URL"


def app_from_env() -> FastAPI:
    """The app configured by CHENU_DEMO_DATABASE_URL, CHENU_DEMO_REDIS_URL and
    CHENU_DEMO_LLM_URL."""
    return create_app(
        os.environ.get("CHENU_DEMO_DATABASE_URL", "sqlite:///chenu-demo.db"),
        os.environ.get("CHENU_DEMO_REDIS_URL", "redis://127.0.0.1:6379/0"),
        os.environ.get(LLM_URL_ENV),
    )
