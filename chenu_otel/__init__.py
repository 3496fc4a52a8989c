"""chenu-otel: OpenTelemetry-first telemetry for CHE·NU FastAPI services."""
