#!/usr/bin/env bash
# make run: start a local ClickHouse if none answers, start the adserver with
# the embedded Kafka broker, load the demo catalog from examples/, print the
# URLs, and keep running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export ADSERVER_DATA_DIR=${ADSERVER_DATA_DIR:-$root/data}
mkdir -p "$ADSERVER_DATA_DIR"

scripts/clickhouse.sh start

[ -x bin/adserver ] || go build -o bin/ ./cmd/...

bin/adserver "$@" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' INT TERM EXIT

listen=${ADSERVER_LISTEN:-:8080}
admin=${ADSERVER_ADMIN_LISTEN:-:8081}
serve_url="http://127.0.0.1:${listen##*:}"
admin_url="http://127.0.0.1:${admin##*:}"

for _ in $(seq 1 300); do
  if curl -fsS "$serve_url/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 $pid 2>/dev/null; then echo "adserver exited during start" >&2; exit 1; fi
  sleep 0.1
done
curl -fsS "$serve_url/readyz" >/dev/null || { echo "adserver did not become ready" >&2; exit 1; }

token=$(cat "$ADSERVER_DATA_DIR/admin-token")
adctl() { bin/adctl -admin "$admin_url" -token "$token" "$@"; }
adctl advertisers put examples/advertisers.json
adctl placements put examples/placements.json
adctl campaigns put examples/campaigns.json

cat <<MSG

adserver is running with the demo catalog (examples/).
  serving     $serve_url   (POST /v1/ad, POST /openrtb2/bid, /healthz, /readyz)
  management  $admin_url   (/v1/campaigns, /v1/reports, /metrics, /debug/pprof/)
  dashboard   $admin_url/dashboard/   (sign in with the demo key demo-acme-key-0123456789)
  admin token $token   (also in $ADSERVER_DATA_DIR/admin-token)

Try:
  curl -s $serve_url/v1/ad -d @examples/ad-request.json
  bin/adctl -admin $admin_url campaigns list

Ctrl-C stops the server.
MSG
wait $pid
