"""``chenu-otel doctor``: when "nothing shows up", one command says where telemetry stops.

Run it with the same ``OTEL_*`` environment as the app::

    chenu-otel doctor                     # settings, warnings, a test export of each signal
    chenu-otel doctor --jaeger http://127.0.0.1:16686 --prometheus http://127.0.0.1:9090 \\
        --logs http://127.0.0.1:9428     # ... and did the test data arrive?
    python -m chenu_otel.doctor ...       # the same, without the console script

What it does, one line per check (✔ ✘ ! ○, or ok/FAIL/warn/skip when stdout is not UTF-8):

1. prints the ``OTEL_*`` settings as chenu-otel resolves them (`chenu_otel.settings`; header
   values never shown) and every warning about a rejected value;
2. sends one test span, one log record written inside it and one histogram point recorded
   inside it (so it carries an exemplar with the span's trace id) through the OTLP exporter
   chenu-otel builds from those settings, gRPC or HTTP as configured, each export bounded by
   ``--timeout``, and reports each result and latency;
3. with ``--jaeger``, ``--prometheus``, ``--logs``: polls until ``--wait`` runs out for the test
   trace in Jaeger, Prometheus' OTLP receiver and exemplar storage, the test histogram of this
   run (``instance`` = the run id) and its exemplar, and the log record by trace id in
   VictoriaLogs or Loki.

A failed check comes with one hint: nothing listening (wrong port), gRPC spoken to an HTTP port
or the reverse, TLS mismatches, the collector refusing (401/UNAUTHENTICATED without a token,
429/503 when full), Prometheus without ``--web.enable-otlp-receiver`` or without exemplar
storage, data accepted by the collector that never reached a backend. The exit status is 0 when
nothing failed and 1 otherwise. The test data goes out as ``service.name=chenu-otel-doctor``
(``--service-name``) with a fresh ``service.instance.id``, never on the app's own series.
"""

from chenu_otel.doctor.command import (
    DoctorOptions,
    add_arguments,
    add_doctor_parser,
    main,
    run_doctor,
    run_doctor_command,
)

__all__ = [
    "DoctorOptions",
    "add_arguments",
    "add_doctor_parser",
    "main",
    "run_doctor",
    "run_doctor_command",
]
