"""``python -m chenu_otel.doctor``: the same as ``chenu-otel doctor``."""

from chenu_otel.doctor.command import main

raise SystemExit(main())
