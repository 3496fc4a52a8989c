"""What the stack runs: the config files of a chenu-otel checkout and the binaries' paths."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chenu_otel import environment_variables as env
from chenu_otel.stack.binaries import find_binary

__all__ = ["StackBinaries", "StackFiles", "find_repo"]


def find_repo(start: Path | None = None) -> Path:
    """The chenu-otel checkout whose ``collector/`` and ``deploy/`` files the stack runs:
    ``$CHENU_OTEL_REPO``, else the first folder up from `start` (the current directory) that
    holds them, else the checkout this package was installed from (editable install)."""
    explicit = os.environ.get(env.CHENU_OTEL_REPO)
    candidates = [Path(explicit)] if explicit else []
    here = (start or Path.cwd()).resolve()
    candidates += [here, *here.parents, Path(__file__).resolve().parents[2]]
    for candidate in candidates:
        if (candidate / "collector" / "otelcol.yaml").exists() and (
            candidate / "deploy" / "compose.yaml"
        ).exists():
            return candidate
    raise FileNotFoundError(
        "chenu-otel stack runs the collector/ and deploy/ files of a chenu-otel checkout: run it "
        f"inside one or set {env.CHENU_OTEL_REPO} to its path"
    )


@dataclass(frozen=True)
class StackFiles:
    """The config files of a checkout that the stack runs."""

    repo: Path

    @property
    def collector_config(self) -> Path:
        return self.repo / "collector" / "otelcol.yaml"

    def overlay(self, name: str) -> Path:
        """``collector/overlays/<name>.yaml``."""
        return self.repo / "collector" / "overlays" / f"{name}.yaml"

    @property
    def agent_configs(self) -> list[Path]:
        """The fleet's agent: the base config plus ``collector/fleet/agent.yaml``."""
        return [self.collector_config, self.repo / "collector" / "fleet" / "agent.yaml"]

    @property
    def gateway_configs(self) -> list[Path]:
        """The fleet's gateway: the base config plus ``collector/fleet/gateway.yaml``."""
        return [self.collector_config, self.repo / "collector" / "fleet" / "gateway.yaml"]

    @property
    def deploy(self) -> Path:
        return self.repo / "deploy"

    @property
    def jaeger_config(self) -> Path:
        return self.deploy / "jaeger" / "config.yaml"

    @property
    def prometheus_dir(self) -> Path:
        return self.deploy / "prometheus"

    def compose_service(self, name: str) -> dict[str, Any]:
        """One service of ``deploy/compose.yaml``."""
        import yaml  # type: ignore[import-untyped]  # the dev extra; only the stack needs it

        compose = yaml.safe_load((self.deploy / "compose.yaml").read_text())
        return dict(compose["services"][name])

    def prometheus_flags(self) -> list[str]:
        """The flags compose gives its Prometheus (one source for both runs)."""
        return [str(flag) for flag in self.compose_service("prometheus")["command"]]


@dataclass(frozen=True)
class StackBinaries:
    """Paths of the binaries the stack runs."""

    collector: Path
    prometheus: Path
    jaeger: Path
    alertmanager: Path
    redis_server: Path
    #: The native logs backend; None when the stack runs the Loki stand-in instead.
    victoria_logs: Path | None = None

    @classmethod
    def find(cls, repo: Path | None = None, *, victoria_logs: bool = True) -> StackBinaries:
        """Each from its ``CHENU_OTEL_*_BIN`` variable, the build cache or PATH (see
        `chenu_otel.stack.binaries`); `MissingBinaryError` names the first one missing."""
        return cls(
            collector=find_binary("chenu-otelcol", repo=repo),
            prometheus=find_binary("prometheus"),
            jaeger=find_binary("jaeger"),
            alertmanager=find_binary("alertmanager"),
            redis_server=find_binary("redis-server"),
            victoria_logs=find_binary("victoria-logs") if victoria_logs else None,
        )
