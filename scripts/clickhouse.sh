#!/usr/bin/env bash
# clickhouse.sh start|stop|status|wait|restart
#
# Runs a private, loopback-only ClickHouse server for development, tests and
# `make run`. Idempotent:
#
#   start   if something already answers on the native/http ports, do nothing;
#           otherwise install Debian's clickhouse-server/clickhouse-client if
#           missing, write a minimal config into ./data/clickhouse (inside the
#           repository), start clickhouse-server in the background, wait until
#           `SELECT 1` answers (up to CLICKHOUSE_WAIT seconds, default 60) and
#           print the server version.
#   stop    stop the server this script started (by its pid file) and wait.
#   status  print whether a server answers and whether ours is running;
#           exit 0 when a server answers, 1 otherwise.
#   wait    wait until a server answers (same timeout as start).
#
# Environment:
#   CLICKHOUSE_TCP_PORT   native protocol port (default 9000)
#   CLICKHOUSE_HTTP_PORT  HTTP port (default 8123)
#   CLICKHOUSE_DATA_DIR   data directory (default <repo>/data/clickhouse; keep it
#                         off ext4 without a journal, see warn_slow_fs)
#   CLICKHOUSE_WAIT       seconds to wait for readiness (default 60)
#   CLICKHOUSE_NICE       niceness of the server (default 0); 19 keeps a
#                         ClickHouse sharing the cores of a measured ad server
#                         out of its way, as a separate machine would
#
# The server listens on 127.0.0.1 only, user "default" without password, and
# logs to $CLICKHOUSE_DATA_DIR/log/. Works without systemd; runs as root or not.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TCP_PORT="${CLICKHOUSE_TCP_PORT:-9000}"
HTTP_PORT="${CLICKHOUSE_HTTP_PORT:-8123}"
DATA_DIR="${CLICKHOUSE_DATA_DIR:-$ROOT/data/clickhouse}"
WAIT_SECS="${CLICKHOUSE_WAIT:-60}"
NICE="${CLICKHOUSE_NICE:-0}"
PID_FILE="$DATA_DIR/clickhouse-server.pid"
LOG_DIR="$DATA_DIR/log"

log() { echo "clickhouse.sh: $*" >&2; }

# http_query prints the answer to a query over HTTP, or fails.
http_query() {
	curl -fsS --max-time 3 --data-binary "$1" "http://127.0.0.1:${HTTP_PORT}/" 2>/dev/null
}

# answers succeeds when some ClickHouse answers SELECT 1 (HTTP first, then the
# native port through clickhouse-client when it is installed).
answers() {
	if command -v curl >/dev/null 2>&1 && [ "$(http_query 'SELECT 1' || true)" = "1" ]; then
		return 0
	fi
	if command -v clickhouse-client >/dev/null 2>&1; then
		[ "$(clickhouse-client --host 127.0.0.1 --port "$TCP_PORT" --query 'SELECT 1' 2>/dev/null || true)" = "1" ] && return 0
	fi
	return 1
}

# port_open succeeds when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

version() {
	local v
	v="$(http_query 'SELECT version()' || true)"
	if [ -z "$v" ] && command -v clickhouse-client >/dev/null 2>&1; then
		v="$(clickhouse-client --host 127.0.0.1 --port "$TCP_PORT" --query 'SELECT version()' 2>/dev/null || true)"
	fi
	echo "${v:-unknown}"
}

our_pid() {
	[ -f "$PID_FILE" ] || return 1
	local pid
	pid="$(cat "$PID_FILE" 2>/dev/null || true)"
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_server() {
	local server_bin
	server_bin="$(command -v clickhouse-server || true)"
	[ -z "$server_bin" ] && [ -x /usr/sbin/clickhouse-server ] && server_bin=/usr/sbin/clickhouse-server
	if [ -n "$server_bin" ] && command -v clickhouse-client >/dev/null 2>&1; then
		return 0
	fi
	log "installing clickhouse-server and clickhouse-client with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	if ! as_root apt-get install -y -q clickhouse-server clickhouse-client; then
		log "apt-get install failed; running apt-get update and retrying"
		as_root apt-get update -q
		as_root apt-get install -y -q clickhouse-server clickhouse-client
	fi
}

server_binary() {
	if command -v clickhouse-server >/dev/null 2>&1; then
		command -v clickhouse-server
	elif [ -x /usr/sbin/clickhouse-server ]; then
		echo /usr/sbin/clickhouse-server
	elif command -v clickhouse >/dev/null 2>&1; then
		echo "$(command -v clickhouse) server"
	else
		return 1
	fi
}

write_config() {
	mkdir -p "$DATA_DIR/db/tmp" "$DATA_DIR/db/user_files" "$DATA_DIR/db/format_schemas" "$LOG_DIR"
	cat >"$DATA_DIR/config.xml" <<EOF
<?xml version="1.0"?>
<!-- Written by scripts/clickhouse.sh; rewritten on every start. -->
<yandex>
  <logger>
    <level>warning</level>
    <log>$LOG_DIR/clickhouse-server.log</log>
    <errorlog>$LOG_DIR/clickhouse-server.err.log</errorlog>
    <size>100M</size>
    <count>3</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$TCP_PORT</tcp_port>
  <http_port>$HTTP_PORT</http_port>
  <path>$DATA_DIR/db/</path>
  <tmp_path>$DATA_DIR/db/tmp/</tmp_path>
  <user_files_path>$DATA_DIR/db/user_files/</user_files_path>
  <format_schema_path>$DATA_DIR/db/format_schemas/</format_schema_path>
  <users_config>$DATA_DIR/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <max_connections>1024</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>100</max_concurrent_queries>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mlock_executable>false</mlock_executable>
</yandex>
EOF
	cat >"$DATA_DIR/users.xml" <<'EOF'
<?xml version="1.0"?>
<!-- Written by scripts/clickhouse.sh: loopback-only user "default", no password. -->
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <load_balancing>random</load_balancing>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks>
        <ip>127.0.0.1</ip>
        <ip>::1</ip>
      </networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
EOF
}

wait_ready() {
	local deadline=$((SECONDS + WAIT_SECS))
	while ! answers; do
		if [ -n "${1:-}" ] && ! kill -0 "$1" 2>/dev/null; then
			log "clickhouse-server exited during startup; last log lines:"
			tail -n 20 "$LOG_DIR/clickhouse-server.err.log" "$LOG_DIR/stdout.log" 2>/dev/null >&2 || true
			return 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "no answer on 127.0.0.1:$HTTP_PORT / :$TCP_PORT after ${WAIT_SECS}s"
			return 1
		fi
		sleep 0.5
	done
}

# warn_slow_fs warns when the data directory lies on ext4 without a journal.
# There, every file creation makes ext4 skip the inodes deleted in the last
# minutes, reading their inode table blocks one by one (the kernel's
# recently_deleted(), used only without a journal); ClickHouse creates and
# deletes dozens of files per insert (a part per table and per materialized
# view, a file or two per column, and again for every merge), and ends up
# spending most of its CPU in the kernel: ingest falls to a fraction of what
# the same server does on a journaled file system or tmpfs (README, Results,
# Events). Put CLICKHOUSE_DATA_DIR on ext4 with a journal, XFS or tmpfs.
warn_slow_fs() {
	local src fstype dev
	read -r src fstype < <(df --output=source,fstype "$DATA_DIR" 2>/dev/null | tail -n 1) || return 0
	[ "$fstype" = ext4 ] || return 0
	dev="$(basename "$(readlink -f "$src")")"
	if [ -d /proc/fs/jbd2 ] && ! ls /proc/fs/jbd2/ 2>/dev/null | grep -q "^${dev}-"; then
		log "warning: $DATA_DIR is on ext4 without a journal ($src); ClickHouse inserts are several times slower there (see warn_slow_fs in this script); set CLICKHOUSE_DATA_DIR to a journaled file system or tmpfs"
	fi
}

cmd_start() {
	if answers; then
		echo "ClickHouse already answers on 127.0.0.1:$TCP_PORT (version $(version))"
		return 0
	fi
	if port_open "$TCP_PORT" || port_open "$HTTP_PORT"; then
		# Something holds a port but does not answer yet: it may be a server
		# that is still starting (ours or not). Wait for it rather than racing.
		log "port $TCP_PORT or $HTTP_PORT is open; waiting for it to answer"
		wait_ready "$(our_pid || true)"
		echo "ClickHouse $(version) answers on 127.0.0.1:$TCP_PORT"
		return 0
	fi
	if pid="$(our_pid)"; then
		log "our server (pid $pid) runs but does not answer; stopping it first"
		cmd_stop
	fi
	install_server
	local bin
	bin="$(server_binary)" || { log "clickhouse-server not found after install"; return 1; }
	write_config
	warn_slow_fs
	# setsid + nohup: the server survives the calling shell and test runners.
	# shellcheck disable=SC2086
	setsid nohup nice -n "$NICE" $bin --config-file="$DATA_DIR/config.xml" \
		>"$LOG_DIR/stdout.log" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$PID_FILE"
	if ! wait_ready "$pid"; then
		return 1
	fi
	echo "ClickHouse $(version) started (pid $pid) on 127.0.0.1:$TCP_PORT (native), 127.0.0.1:$HTTP_PORT (http); data $DATA_DIR"
}

cmd_stop() {
	local pid
	if ! pid="$(our_pid)"; then
		rm -f "$PID_FILE"
		if answers; then
			echo "no ClickHouse started by this script; another server answers on :$TCP_PORT and is left alone"
		else
			echo "ClickHouse is not running"
		fi
		return 0
	fi
	kill "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + 30))
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "pid $pid did not exit in 30s; sending SIGKILL"
			kill -9 "$pid" 2>/dev/null || true
			sleep 0.5
			break
		fi
		sleep 0.2
	done
	rm -f "$PID_FILE"
	echo "ClickHouse (pid $pid) stopped"
}

cmd_status() {
	local pid ours="not running"
	pid="$(our_pid)" && ours="running (pid $pid, data $DATA_DIR)"
	if answers; then
		echo "ClickHouse $(version) answers on 127.0.0.1:$TCP_PORT; script-managed server: $ours"
		return 0
	fi
	echo "ClickHouse does not answer on 127.0.0.1:$TCP_PORT; script-managed server: $ours"
	return 1
}

cmd_wait() {
	wait_ready "" && echo "ClickHouse $(version) answers on 127.0.0.1:$TCP_PORT"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
restart) cmd_stop && cmd_start ;;
status) cmd_status ;;
wait) cmd_wait ;;
*)
	echo "usage: $0 start|stop|status|wait|restart" >&2
	exit 2
	;;
esac
