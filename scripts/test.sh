#!/usr/bin/env bash
# make test: the whole suite, integration tests included. Installs what the
# tests need from Debian's packages if missing (ClickHouse, Chromium, wrk,
# promtool, kcat), starts ClickHouse on loopback, then runs gofmt, go vet,
# go test -race over every package, and each fuzz target for a short time.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  local missing=()
  for pair in "$@"; do
    local cmd=${pair%%:*} pkg=${pair##*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
    $sudo apt-get update -qq >/dev/null
    $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  }
}
apt_install chromium:chromium wrk:wrk promtool:prometheus kcat:kcat curl:curl

# The tests' ClickHouse keeps its data in memory when it can: the tests need
# no durability across reboots, and on ext4 without a journal (this
# project's CI machines) ClickHouse's file churn makes it several times
# slower (see warn_slow_fs in scripts/clickhouse.sh).
if [ -z "${CLICKHOUSE_DATA_DIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  export CLICKHOUSE_DATA_DIR=/dev/shm/adserver-test-clickhouse
fi
scripts/clickhouse.sh start

export ADSERVER_TEST_CLICKHOUSE=${ADSERVER_TEST_CLICKHOUSE:-127.0.0.1:9000}
export ADSERVER_TEST_REQUIRE_ALL=1   # tests needing ClickHouse, Chromium, wrk fail instead of skipping
export LOADTEST_REQUIRE_WRK=1

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './data/*'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted"; exit 1; fi

echo "== go vet"
go vet ./...

# Tests save what a reader may want to look at (the dashboard's screenshots
# from headless Chromium) with t.ArtifactDir, kept under test-artifacts/.
artifacts=${TEST_ARTIFACTS:-$PWD/test-artifacts}
mkdir -p "$artifacts" && rm -rf "$artifacts/_artifacts" # go test writes under _artifacts/

echo "== go test -race"
go test -race -count=1 -timeout 20m -artifacts -outputdir "$artifacts" ./... 2>&1 | tee /tmp/adserver-test.log
echo "test artifacts (screenshots): $(find "$artifacts" -type f | wc -l) files under $artifacts"
find "$artifacts" -name '*.png' | sed 's/^/  /'

echo "== allocation pins (without -race, where allocation counts are meaningful)"
go test -count=1 -run 'Alloc' ./... 2>&1 | grep -v 'no test files' | tee -a /tmp/adserver-alloc.log

echo "== fuzz (short, fixed time per target)"
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  dir=$(dirname "$f")
  for t in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "-- $dir $t"
    # A short minimize time: minimizing a new input can outlast -fuzztime,
    # and a worker stopped mid-minimization is reported as a failure.
    if go test -run '^$' -fuzz "^$t\$" -fuzztime "${FUZZTIME:-5s}" -fuzzminimizetime 2s "$dir" >/tmp/adserver-fuzz.log 2>&1; then
      tail -2 /tmp/adserver-fuzz.log
    else
      cat /tmp/adserver-fuzz.log
      echo "FAIL	$dir $t" | tee -a /tmp/adserver-test.log
    fi
  done
done

echo "== promtool (alerting rules and their unit tests)"
if ! { promtool check rules deploy/alerts.yml && promtool test rules deploy/alerts_test.yml; }; then
  echo "FAIL	deploy/alerts.yml (promtool)" | tee -a /tmp/adserver-test.log
fi

echo "== summary"
pass=$(grep -c '^ok ' /tmp/adserver-test.log || true)
fail=$(grep -c '^FAIL' /tmp/adserver-test.log || true)
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
