# Progress lines for long build steps (scripts/build-collector, scripts/build-backends). Source it
# after common.sh, do not run it. Everything goes to stderr: the build scripts' stdout carries
# only binary paths.
#
#   with_progress "prometheus (prometheus promtool)" 180 build_prometheus "$staging"
#
# prints "building LABEL (a cold build takes about 3m00s on 2 cores)", then every
# CHENU_OTEL_PROGRESS_INTERVAL seconds (30) "building LABEL: 1m30s elapsed of about 3m00s", and
# returns the command's exit status. The command runs in the foreground (Ctrl-C reaches it);
# as with any command tested by `if`, `set -e` does not apply inside it: check each step.

duration() {  # seconds -> 1m05s / 42s
  local seconds="$1"
  if (( seconds >= 60 )); then
    printf '%dm%02ds' $(( seconds / 60 )) $(( seconds % 60 ))
  else
    printf '%ds' "$seconds"
  fi
}

# Its variables are prefixed: bash's dynamic scope shows a function's locals to the command.
with_progress() {  # label expected_seconds command...
  local _wp_label="$1" _wp_expected="$2" _wp_started _wp_ticker _wp_status=0 _wp_owner=$$
  local _wp_interval="${CHENU_OTEL_PROGRESS_INTERVAL:-30}"
  shift 2
  _wp_started=$(date +%s)
  log "building $_wp_label (a cold build takes about $(duration "$_wp_expected") on 2 cores)"
  # Wakes every second so that it also ends within a second when the build script dies; its
  # sleeps hold neither stdout nor stderr, so no caller waits on a pipe for them.
  (
    next="$_wp_interval"
    while sleep 1 </dev/null >/dev/null 2>&1 && kill -0 "$_wp_owner" 2>/dev/null; do
      elapsed=$(( $(date +%s) - _wp_started ))
      if (( elapsed >= next )); then
        log "building $_wp_label: $(duration "$elapsed") elapsed" \
          "of about $(duration "$_wp_expected")"
        next=$(( next + _wp_interval ))
      fi
    done
  ) >/dev/null &
  _wp_ticker=$!
  "$@" || _wp_status=$?
  kill "$_wp_ticker" 2>/dev/null || true
  wait "$_wp_ticker" 2>/dev/null || true
  return "$_wp_status"
}
