#!/bin/sh
# Render alertmanager.yml from the environment, then exec the given command (the alertmanager).
# POSIX sh: it runs in the prom/alertmanager image (busybox) and in the tests.
#   ALERTMANAGER_TEMPLATE  template to read   (default /etc/alertmanager/alertmanager.yml)
#   ALERTMANAGER_RENDERED  config to write    (default /tmp/alertmanager/alertmanager.yml)
set -eu
template="${ALERTMANAGER_TEMPLATE:-/etc/alertmanager/alertmanager.yml}"
rendered="${ALERTMANAGER_RENDERED:-/tmp/alertmanager/alertmanager.yml}"
secrets_dir="$(dirname "$rendered")"
mkdir -p "$secrets_dir"
umask 077

slack_receiver=null
if [ -n "${SLACK_WEBHOOK_URL:-}" ]; then
  printf '%s' "$SLACK_WEBHOOK_URL" > "$secrets_dir/slack_webhook_url"
  slack_receiver=slack
fi
pagerduty_receiver=null
if [ -n "${PAGERDUTY_ROUTING_KEY:-}" ]; then
  printf '%s' "$PAGERDUTY_ROUTING_KEY" > "$secrets_dir/pagerduty_routing_key"
  pagerduty_receiver=pagerduty
fi
channel="${SLACK_CHANNEL:-#chenu-alerts}"
case "$channel" in
  *'|'*|*'"'*|*'\'*) echo "SLACK_CHANNEL must not contain | \" or \\: $channel" >&2; exit 2 ;;
esac

sed -e "s|__SLACK_RECEIVER__|$slack_receiver|" \
    -e "s|__PAGERDUTY_RECEIVER__|$pagerduty_receiver|" \
    -e "s|__SECRETS_DIR__|$secrets_dir|" \
    -e "s|__SLACK_CHANNEL__|$channel|" \
    "$template" > "$rendered"
echo "alertmanager: slack=$slack_receiver pagerduty=$pagerduty_receiver config=$rendered" >&2

if [ "$#" -gt 0 ]; then
  exec "$@"
fi
