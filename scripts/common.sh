# Shared by the scripts in this folder: where things live. Source it, do not run it.
# Built binaries and downloads are cached outside the clone so that a fresh clone (as in CI)
# reuses them; override with CHENU_OTEL_CACHE.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${CHENU_OTEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chenu-otel}"
VENV="${CHENU_OTEL_VENV:-$REPO_ROOT/.venv}"
mkdir -p "$CACHE_DIR"
log() { printf '[chenu-otel] %s\n' "$*" >&2; }
