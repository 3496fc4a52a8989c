"""What the base config's `redaction` promises, pattern by pattern, on the real collector.

Every blocked key pattern and every blocked value pattern removes its secret from span
attributes, span event attributes, log record attributes and body, and metric data point
attributes; harmless look-alikes (token counts, routes, query strings) pass unchanged. The
cases are chosen so that each configured pattern is the only one that catches at least one of
them (checked first, offline): a config that lacks any one pattern leaks that case's secret and
fails here. One collector, all cases in one request per signal.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.collector_fixtures import (
    BASE_CONFIG,
    OVERLAY_DIR,
    CollectorProcess,
    attribute_value,
    attributes_of,
    build_collector,
)
from tests.support import poll_until

pytestmark = pytest.mark.slow

MASK = "****"  # what the redaction processor writes over a secret
CASE_KEY = "test.case"
RUN = secrets.token_hex(4)


def canary(tag: str) -> str:
    """A secret that fits every pattern's character class: lowercase letters and digits."""
    return f"c{tag}{RUN}{secrets.token_hex(5)}"


@dataclass(frozen=True)
class Case:
    """One attribute sent in every signal. `secret` must vanish; None means: pass unchanged."""

    name: str
    key: str
    value: str | int
    secret: str | None

    @property
    def masked_by_key(self) -> bool:
        return self.name.startswith("key-")


def _key_case(name: str, key: str) -> Case:
    secret = canary(name.removeprefix("key-").replace("-", "")[:6])
    return Case(name, key, f"hunter2 {secret}", secret)  # no value pattern matches this value


def _value_case(name: str, template: str) -> Case:
    secret = canary(name.removeprefix("value-").replace("-", "")[:6])
    return Case(name, "note", template.format(secret=secret), secret)


# Key patterns: one case per credential word, the key boundary (start, ".", "_", "-") and
# letter case varied, so each word and each boundary is exercised.
KEY_CASES = [
    _key_case("key-password-alone", "password"),
    _key_case("key-authorization", "http.request.header.authorization"),
    _key_case("key-proxy-authorization", "Proxy-Authorization"),
    _key_case("key-cookie", "http.request.header.cookie"),
    _key_case("key-set-cookie", "set-cookie"),
    _key_case("key-x-api-key", "X-API-Key"),
    _key_case("key-apikey", "vendor.apikey"),
    _key_case("key-api-key", "service_api_key"),
    _key_case("key-token", "session_token"),
    _key_case("key-token-alone", "Token"),
    _key_case("key-secret", "client_secret"),
    _key_case("key-passwd", "db.passwd"),
    _key_case("key-pwd", "smtp-pwd"),
    _key_case("key-db-password", "db.Password"),
    _key_case("key-passphrase", "ssh.passphrase"),
    _key_case("key-credential", "aws_credential"),
    _key_case("key-credentials", "gcp.credentials"),
]
# Value patterns: a credential inside an otherwise harmless value, each scheme and parameter
# name with its first letter in each case (U+017F, long s, is a third case of s under Unicode
# folding).
VALUE_CASES = [
    _value_case("value-bearer", "calling upstream with Bearer {secret} now"),
    _value_case("value-bearer-lower", "authorization: bearer {secret}"),
    _value_case("value-basic", "Basic {secret}=="),
    _value_case("value-basic-lower", "header basic {secret}"),
    _value_case("value-jwt", "session eyJ{secret}.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl"),
    _value_case("value-password-param", "/login?user=ann&Password={secret}&next=/"),
    _value_case("value-pwd-param", "dsn host=db pwd={secret} sslmode=require"),
    _value_case("value-passwd-param", "passwd={secret}"),
    _value_case("value-secret-param", "/hook?secret={secret}"),
    _value_case("value-secret-upper", "SECRET={secret}"),
    _value_case("value-secret-long-s", "\u017fecret={secret}"),
    _value_case("value-token-param", "/callback?code=x&token={secret}"),
    _value_case("value-token-title", "Token={secret}"),
    _value_case("value-api-key-param", "/v1/search?api_key={secret}&q=x"),
    _value_case("value-api-key-upper", "API-KEY={secret}"),
    _value_case("value-url-userinfo", "postgres://app:{secret}@db.internal:5432/chenu"),
]
# Harmless look-alikes: they must come out exactly as they went in.
LOOKALIKE_CASES = [
    Case("same-input-tokens", "gen_ai.usage.input_tokens", 42, None),
    Case("same-output-tokens", "gen_ai.usage.output_tokens", 7, None),
    Case("same-max-tokens", "gen_ai.request.max_tokens", 1024, None),
    Case("same-route", "http.route", "/api/v1/tokens/{token_id}", None),
    Case("same-method", "http.request.method", "POST", None),
    Case("same-tokenizer", "tokenizer", "cl100k_base", None),
    Case("same-password-policy", "password_policy", "min length 12", None),
    Case("same-secretary", "note", "secretary=alice", None),
    Case("same-query", "url.path", "/api/v1/search?q=basic+plan&tokens=3&page=2", None),
    Case("same-bearer-less", "note", "Bearer-less requests are refused", None),
    Case(
        "same-user-agent",
        "user_agent.original",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0",
        None,
    ),
]
CASES = KEY_CASES + VALUE_CASES + LOOKALIKE_CASES


# --- offline: every configured pattern is needed by some case -------------------------------


@dataclass(frozen=True)
class RedactionConfig:
    key_patterns: list[str]
    value_patterns: list[str]
    ignored_keys: list[str]


def redaction_config(path: Path = BASE_CONFIG) -> RedactionConfig:
    settings = yaml.safe_load(path.read_text())["processors"]["redaction"]
    return RedactionConfig(
        key_patterns=list(settings.get("blocked_key_patterns") or []),
        value_patterns=list(settings.get("blocked_values") or []),
        ignored_keys=list(settings.get("ignored_keys") or []),
    )


def matching(patterns: list[str], text: str) -> list[str]:
    # Python's re reads these RE2 patterns the same way (scoped flags, \s, classes, folding).
    return [p for p in patterns if re.search(p, text)]


def test_every_configured_pattern_is_the_only_one_catching_some_case() -> None:
    """Removing any one pattern from the config would let at least one case's secret through."""
    config = redaction_config()
    assert config.key_patterns and config.value_patterns, "the redaction patterns are gone"
    value_strings = {c.name: str(c.value) for c in CASES}
    for pattern in config.key_patterns:
        sole = [
            c.name
            for c in KEY_CASES
            if matching(config.key_patterns, c.key) == [pattern]
            and not matching(config.value_patterns, value_strings[c.name])
        ]
        assert sole, f"no case is caught by the key pattern {pattern!r} alone"
    for pattern in config.value_patterns:
        sole = [
            c.name
            for c in VALUE_CASES
            if not matching(config.key_patterns, c.key)
            and matching(config.value_patterns, value_strings[c.name]) == [pattern]
        ]
        assert sole, f"no case is caught by the value pattern {pattern!r} alone"


def test_cases_reach_the_patterns_and_lookalikes_match_none() -> None:
    """Secrets are never on an ignored key; look-alikes match no key and no value pattern."""
    config = redaction_config()
    for case in KEY_CASES + VALUE_CASES:
        assert case.key not in config.ignored_keys, case
    for case in KEY_CASES:
        assert matching(config.key_patterns, case.key), case
    for case in VALUE_CASES:
        assert matching(config.value_patterns, str(case.value)), case
    for case in LOOKALIKE_CASES:
        assert not matching(config.key_patterns, case.key), case
        if isinstance(case.value, str) and case.key not in config.ignored_keys:
            assert not matching(config.value_patterns, case.value), case


def test_no_ignored_key_is_credential_like() -> None:
    """An ignored key skips every check, so none may look like a credential's key."""
    config = redaction_config()
    for key in config.ignored_keys:
        assert not matching(config.key_patterns, key), key


# --- on the real collector -------------------------------------------------------------------


def _any_value(value: str | int | dict[str, str | int]) -> dict[str, Any]:
    if isinstance(value, dict):
        items = [{"key": k, "value": _any_value(v)} for k, v in value.items()]
        return {"kvlistValue": {"values": items}}
    if isinstance(value, int):
        return {"intValue": str(value)}
    return {"stringValue": value}


def _attributes(case: Case) -> list[dict[str, Any]]:
    return [
        {"key": CASE_KEY, "value": _any_value(case.name)},
        {"key": case.key, "value": _any_value(case.value)},
    ]


def _body(case: Case) -> dict[str, Any]:
    # Key patterns apply to the keys of a map body; value patterns to a string body.
    if case.masked_by_key or not isinstance(case.value, str):
        return _any_value({case.key: case.value})
    return _any_value(case.value)


def _requests(service: str) -> dict[str, dict[str, Any]]:
    now = time.time_ns()
    resource = {"attributes": [{"key": "service.name", "value": _any_value(service)}]}
    scope = {"name": "test_redaction"}
    spans = [
        {
            "traceId": secrets.token_hex(16),
            "spanId": secrets.token_hex(8),
            "name": case.name,
            "kind": 2,
            "startTimeUnixNano": str(now - 1_000_000),
            "endTimeUnixNano": str(now),
            "attributes": _attributes(case),
            "events": [
                {"name": "exception", "timeUnixNano": str(now), "attributes": _attributes(case)}
            ],
        }
        for case in CASES
    ]
    logs = [
        {
            "timeUnixNano": str(now),
            "severityNumber": 9,
            "body": _body(case),
            "attributes": _attributes(case),
        }
        for case in CASES
    ]
    points = [
        {
            "asInt": "1",
            "startTimeUnixNano": str(now - 1_000_000),
            "timeUnixNano": str(now),
            "attributes": _attributes(case),
        }
        for case in CASES
    ]
    metric = {
        "name": "test.redaction.cases",
        "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": points},
    }
    return {
        "/v1/traces": {
            "resourceSpans": [
                {"resource": resource, "scopeSpans": [{"scope": scope, "spans": spans}]}
            ]
        },
        "/v1/logs": {
            "resourceLogs": [
                {"resource": resource, "scopeLogs": [{"scope": scope, "logRecords": logs}]}
            ]
        },
        "/v1/metrics": {
            "resourceMetrics": [
                {"resource": resource, "scopeMetrics": [{"scope": scope, "metrics": [metric]}]}
            ]
        },
    }


@dataclass
class Exported:
    """Per case: what the collector wrote for it in each place, and the raw files."""

    span_attributes: dict[str, dict[str, Any]]
    event_attributes: dict[str, dict[str, Any]]
    log_attributes: dict[str, dict[str, Any]]
    log_bodies: dict[str, Any]
    point_attributes: dict[str, dict[str, Any]]
    raw: str

    def complete(self) -> bool:
        names = {c.name for c in CASES}
        return all(
            set(found) >= names
            for found in (self.span_attributes, self.log_attributes, self.point_attributes)
        )


def read_exported(export_dir: Path, service: str) -> Exported:
    result = Exported({}, {}, {}, {}, {}, "")
    raw: list[str] = []
    for name in ("traces", "logs", "metrics"):
        path = export_dir / f"{name}.json"
        text = path.read_text(errors="replace") if path.exists() else ""
        raw.append(text)
        for line in text.splitlines():
            try:
                request = json.loads(line)
            except json.JSONDecodeError:  # a line still being written
                continue
            _collect(request, service, result)
    result.raw = "\n".join(raw)
    return result


def _mine(resource: dict[str, Any], service: str) -> bool:
    return (
        attributes_of(resource.get("resource", {}).get("attributes")).get("service.name") == service
    )


def _collect(request: dict[str, Any], service: str, into: Exported) -> None:
    for rs in request.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []) if _mine(rs, service) else []:
            for span in ss.get("spans", []):
                attributes = attributes_of(span.get("attributes"))
                case = str(attributes.get(CASE_KEY, span.get("name")))
                into.span_attributes[case] = attributes
                for event in span.get("events", []):
                    into.event_attributes[case] = attributes_of(event.get("attributes"))
    for rl in request.get("resourceLogs", []):
        for sl in rl.get("scopeLogs", []) if _mine(rl, service) else []:
            for record in sl.get("logRecords", []):
                attributes = attributes_of(record.get("attributes"))
                case = str(attributes.get(CASE_KEY))
                into.log_attributes[case] = attributes
                into.log_bodies[case] = attribute_value(record.get("body", {}))
    for rm in request.get("resourceMetrics", []):
        for sm in rm.get("scopeMetrics", []) if _mine(rm, service) else []:
            for metric in sm.get("metrics", []):
                for point in metric.get("sum", {}).get("dataPoints", []):
                    attributes = attributes_of(point.get("attributes"))
                    into.point_attributes[str(attributes.get(CASE_KEY))] = attributes


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    """Every case sent once per signal through the base config (+ debug-file overlay)."""
    root = tmp_path_factory.mktemp("redaction")
    export_dir = root / "export"
    export_dir.mkdir()
    collector = CollectorProcess(
        build_collector(),
        [BASE_CONFIG, OVERLAY_DIR / "debug-file.yaml"],
        log_dir=root / "logs",
        storage_dir=root / "storage",
        env={"OTELCOL_DEBUG_DIR": str(export_dir)},
    ).start()
    service = f"redaction-test-{RUN}"
    try:
        for path, payload in _requests(service).items():
            request = urllib.request.Request(
                collector.http_endpoint + path,
                data=json.dumps(payload).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200, f"{path}: {response.status}"

        def everything() -> Exported | None:
            found = read_exported(export_dir, service)
            return found if found.complete() else None

        yield poll_until(everything, timeout=30, what="every case in traces, logs and metrics")
    finally:
        collector.stop()


def _check_attribute(where: str, case: Case, attributes: dict[str, Any]) -> None:
    value = attributes.get(case.key)
    if case.secret is None:
        assert value == case.value, f"{where}: look-alike {case.name} was changed to {value!r}"
    elif case.masked_by_key:
        assert value == MASK, f"{where}: {case.key} of {case.name} not masked: {value!r}"
    else:
        assert isinstance(value, str), f"{where}: {case.name} lost its attribute: {value!r}"
        assert case.secret not in value, f"{where}: {case.name} leaked: {value!r}"
        assert MASK in value, f"{where}: {case.name} has no mask: {value!r}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_span_attributes(exported: Exported, case: Case) -> None:
    """Span attributes: secrets masked, look-alikes unchanged."""
    _check_attribute("span", case, exported.span_attributes[case.name])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_span_event_attributes(exported: Exported, case: Case) -> None:
    """Span event attributes (exception events carry messages and headers): the same."""
    attributes = exported.event_attributes.get(case.name)
    assert attributes is not None, f"the event of {case.name} is gone"
    if case.masked_by_key and case.key not in attributes:
        return  # deleted rather than masked: the secret is gone all the same
    _check_attribute("span event", case, attributes)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_log_record_attributes(exported: Exported, case: Case) -> None:
    """Log record attributes: the same."""
    _check_attribute("log record", case, exported.log_attributes[case.name])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_log_record_body(exported: Exported, case: Case) -> None:
    """Log bodies: string bodies by the value patterns, map bodies by the key patterns."""
    body = exported.log_bodies[case.name]
    if isinstance(body, dict):
        _check_attribute("log body map", case, body)
    elif case.secret is None:
        assert body == case.value, f"log body of look-alike {case.name}: {body!r}"
    else:
        assert case.secret not in body and MASK in body, f"log body of {case.name}: {body!r}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_metric_data_point_attributes(exported: Exported, case: Case) -> None:
    """Metric data point attributes: the same (the app does not scrub these)."""
    _check_attribute("data point", case, exported.point_attributes[case.name])


def test_no_secret_anywhere_in_the_output(exported: Exported) -> None:
    """Not one secret in any byte the collector wrote, whatever the place."""
    leaked = [c.name for c in CASES if c.secret is not None and c.secret in exported.raw]
    assert not leaked, f"secrets written by the collector: {leaked}"
