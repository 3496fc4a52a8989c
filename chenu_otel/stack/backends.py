"""Ask the backends what landed: the Prometheus, Jaeger and VictoriaLogs query APIs."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

__all__ = ["JaegerAPI", "PrometheusAPI", "VictoriaLogsAPI", "http_json"]


def http_json(url: str, *, data: dict[str, str] | None = None, timeout: float = 10) -> Any:
    """GET (or form POST) `url` and decode its JSON answer."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    with urllib.request.urlopen(url, data=body, timeout=timeout) as response:
        return json.loads(response.read().decode())


@dataclass(frozen=True)
class PrometheusAPI:
    """Prometheus' query API at `url`."""

    url: str

    def query(self, expr: str) -> dict[str, Any]:
        """Instant query; returns Prometheus' `data` object, raises on an error answer."""
        answer = http_json(f"{self.url}/api/v1/query", data={"query": expr})
        if answer.get("status") != "success":
            raise RuntimeError(f"query failed: {expr}: {answer}")
        return dict(answer["data"])

    def series_names(self) -> set[str]:
        """Every metric name Prometheus holds."""
        return set(http_json(f"{self.url}/api/v1/label/__name__/values")["data"])

    def exemplars(self, expr: str, window_s: float = 3600) -> list[dict[str, Any]]:
        """The exemplars of the series `expr` selects over the last `window_s` seconds."""
        now = time.time()
        answer = http_json(
            f"{self.url}/api/v1/query_exemplars",
            data={"query": expr, "start": str(now - window_s), "end": str(now + 60)},
        )
        return list(answer["data"])

    def exemplar_trace_ids(self, expr: str) -> list[str]:
        """The distinct trace ids of those exemplars, in order."""
        ids: list[str] = []
        for series in self.exemplars(expr):
            for exemplar in series["exemplars"]:
                trace_id = exemplar["labels"].get("trace_id")
                if trace_id and trace_id not in ids:
                    ids.append(trace_id)
        return ids

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Prometheus holds now (pending or firing)."""
        return list(http_json(f"{self.url}/api/v1/alerts")["data"]["alerts"])

    def rule_groups(self) -> list[dict[str, Any]]:
        """The rule groups Prometheus loaded, with each rule's health."""
        return list(http_json(f"{self.url}/api/v1/rules")["data"]["groups"])


@dataclass(frozen=True)
class JaegerAPI:
    """Jaeger's query API at `url`."""

    url: str

    def services(self) -> list[str]:
        """The services Jaeger holds traces of."""
        return list(http_json(f"{self.url}/api/services").get("data") or [])

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """Jaeger's ``/api/traces/{id}`` answer for one trace; None when Jaeger does not know
        it."""
        try:
            answer = http_json(f"{self.url}/api/traces/{trace_id}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        data = answer.get("data") or []
        return dict(data[0]) if data else None


@dataclass(frozen=True)
class VictoriaLogsAPI:
    """VictoriaLogs' HTTP API at `url`: LogsQL queries and its web UI."""

    url: str

    @property
    def ui_url(self) -> str:
        """Its web UI (vmui)."""
        return f"{self.url}/select/vmui/"

    def query_url(self, query: str) -> str:
        """The URL that runs LogsQL `query` (answers JSON lines, one per log line)."""
        return f"{self.url}/select/logsql/query?" + urllib.parse.urlencode({"query": query})

    def force_flush(self) -> None:
        """Make what was just ingested searchable (it buffers for about a second otherwise)."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10):
            pass

    def logsql(self, query: str) -> list[dict[str, Any]]:
        """Flush, then run LogsQL `query`; its log lines as dicts."""
        self.force_flush()
        with urllib.request.urlopen(self.query_url(query), timeout=10) as response:
            return [json.loads(line) for line in response.read().decode().splitlines() if line]
