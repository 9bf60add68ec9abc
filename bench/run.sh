#!/usr/bin/env bash
# make bench: moatd against Debian's mosquitto on loopback, same `moat bench`
# cases against each, interleaved (moatd case, mosquitto case, next case) so
# both share the machine's noise. Each throughput case runs unthrottled
# (msgs/s, saturated p99) and again at a fixed rate both brokers sustain (p99
# latency that is not queueing); the idle case reports broker resident memory
# per connection. Both brokers also get the same TLS listener (certificates
# from tests/data/make_certs.sh) for two TLS cases: connection rate (full
# handshakes) and QoS 1 pairs. Then a second pair of brokers with
# persistence on (moatd: `persistence_sync batch`; mosquitto: its periodic
# snapshot) runs QoS 1/2 cases whose clients keep their sessions, so moatd
# stores every message before acknowledging it. Prints a table, the
# geometric mean of the throughput ratios of the plain cases, and the TLS and
# persistence ratios separately. Last, what end-to-end sealed payloads cost:
# seal/open per message size (e2e_cost) and through moatd (bench/e2e.py), and
# the Security Center's key-release latency for 1, 100 and 10,000 devices
# (keyrel_latency: in process, and through moatd + moat-sc serve).
#
# Environment: BENCH_BUILD (a build dir that has bin/moatd and bin/moat; when
# unset, the release preset is built into build/), BENCH_SECONDS (8),
# BENCH_LAT_SECONDS (4), BENCH_IDLE (5000), BENCH_OUT (results file),
# BENCH_MOATD_THREADS (moatd's `threads`; unset = its default, one per core).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_THR=${BENCH_SECONDS:-8}
SECONDS_LAT=${BENCH_LAT_SECONDS:-4}
IDLE_N=${BENCH_IDLE:-5000}
MOSQUITTO=/usr/sbin/mosquitto
PY=/usr/bin/python3

if [ -z "${BENCH_BUILD:-}" ]; then
	BENCH_BUILD=$ROOT/build
	(cd "$ROOT" && cmake --preset release >/dev/null && cmake --build build -j "$(nproc)")
fi
MOATD=$BENCH_BUILD/bin/moatd
MOAT=$BENCH_BUILD/bin/moat
for f in "$MOATD" "$MOAT" "$MOSQUITTO"; do
	[ -x "$f" ] || { echo "bench: $f not found" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/moat-bench.XXXXXX)
OUT=${BENCH_OUT:-$WORK/results.jsonl}
: >"$OUT"
declare -A PID PORT TLS_PORT
cleanup() {
	for b in "${!PID[@]}"; do
		kill "${PID[$b]}" 2>/dev/null || true
		wait "${PID[$b]}" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

# Test PKI for the TLS listeners. mosquitto, started as root, drops to its own
# user before it reads them: make the directory and these test-only files readable.
sh "$ROOT/tests/data/make_certs.sh" "$WORK/certs" >/dev/null 2>&1
chmod 755 "$WORK" "$WORK/certs"
chmod 644 "$WORK/certs/ca.crt" "$WORK/certs/server.crt" "$WORK/certs/server.key"
CAFILE=$WORK/certs/ca.crt

# Both brokers get the same limits; raise the open-file limit for the idle case.
ulimit -n "$(ulimit -Hn)"

# shellcheck source=bench/cases.sh
. "$ROOT/bench/cases.sh"

start_broker() {	# name: moatd or mosquitto, "-p" appended for persistence on
	local name=$1 port tls_port conf
	port=$(free_port)
	tls_port=$(free_port)
	conf=$WORK/$name.conf
	printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 10000\n' \
		"$port" >"$conf"
	if [ "${name%-p}" != "$name" ]; then
		mkdir -p "$WORK/$name-store"
		chmod 777 "$WORK/$name-store"	# mosquitto writes as its own user
		printf 'persistence true\npersistence_location %s/\n' "$WORK/$name-store" >>"$conf"
	fi
	if [ "${name%-p}" = moatd ] && [ -n "${BENCH_MOATD_THREADS:-}" ]; then
		echo "threads $BENCH_MOATD_THREADS" >>"$conf"
	fi
	printf 'listener %s 127.0.0.1\ncertfile %s\nkeyfile %s\ncafile %s\n' "$tls_port" \
		"$WORK/certs/server.crt" "$WORK/certs/server.key" "$CAFILE" >>"$conf"
	if [ "${name%-p}" = moatd ]; then
		"$MOATD" -c "$conf" >"$WORK/$name.log" 2>&1 &
	else
		"$MOSQUITTO" -c "$conf" >"$WORK/$name.log" 2>&1 &
	fi
	PID[$name]=$!
	PORT[$name]=$port
	TLS_PORT[$name]=$tls_port
	wait_port "$port" "${PID[$name]}"
	wait_port "$tls_port" "${PID[$name]}"
}

rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

established() {	# port
	ss -Htn state established "( sport = :$1 )" | wc -l
}

# One `moat bench` run; appends its JSON line, tagged (as moatd or
# mosquitto, whichever persistence), to $OUT.
run_case() {	# case-name broker mode args...
	local name=$1 broker=$2 mode=$3 json
	shift 3
	echo "== $name / $broker / $mode" >&2
	json=$("$MOAT" bench -h 127.0.0.1 -p "${PORT[$broker]}" "$@" 2>"$WORK/progress.log" | tail -n 1) || true
	echo "$json" | "$PY" -c "$TAG" "$name" "${broker%-p}" "$mode" >>"$OUT"
}
TAG='import json,sys
try:
    r = json.loads(sys.stdin.read())
except ValueError:
    r = {"failed": True}
r.update(case=sys.argv[1], broker=sys.argv[2], mode=sys.argv[3])
if len(sys.argv) > 4:
    r.update(rss_before_kb=int(sys.argv[4]), rss_after_kb=int(sys.argv[5]))
print(json.dumps(r))'

# Idle connections: broker VmRSS before, and while all N are held.
run_idle() {	# broker
	local broker=$1 before after n bench_pid
	before=$(rss_kb "${PID[$broker]}")
	echo "== idle $IDLE_N / $broker" >&2
	"$MOAT" bench -h 127.0.0.1 -p "${PORT[$broker]}" --scenario idle \
		--connections "$IDLE_N" --duration 5 >"$WORK/idle.out" 2>"$WORK/progress.log" &
	bench_pid=$!
	for _ in $(seq 300); do
		n=$(established "${PORT[$broker]}")
		[ "$n" -ge "$IDLE_N" ] && break
		kill -0 "$bench_pid" 2>/dev/null || break
		sleep 0.1
	done
	sleep 1	# let the broker finish every CONNACK
	after=$(rss_kb "${PID[$broker]}")
	wait "$bench_pid" || true
	tail -n 1 "$WORK/idle.out" | "$PY" -c "$TAG" idle "$broker" idle "$before" "$after" >>"$OUT"
}

start_broker moatd
start_broker mosquitto
echo "bench: moatd on port ${PORT[moatd]} (TLS ${TLS_PORT[moatd]}, threads ${BENCH_MOATD_THREADS:-default}), mosquitto on port ${PORT[mosquitto]} (TLS ${TLS_PORT[mosquitto]}), results in $OUT" >&2

# Idle first, while both brokers are fresh.
run_idle moatd
run_idle mosquitto

CASES=("${CORE_CASES[@]}")
# Each case unthrottled, then at its fixed rate, on brokers $1 and $2.
run_cases() {	# moatd-broker mosquitto-broker
	local c name args rate broker
	for c in "${CASES[@]}"; do
		IFS='|' read -r name args rate <<<"$c"
		for broker in "$1" "$2"; do
			# shellcheck disable=SC2086
			run_case "$name" "$broker" max $args -s 64 --duration "$SECONDS_THR" --drain 5
		done
		for broker in "$1" "$2"; do
			# shellcheck disable=SC2086
			run_case "$name" "$broker" fixed $args -s 64 --rate "$rate" --duration "$SECONDS_LAT" --drain 5
		done
	done
}
run_cases moatd mosquitto

# TLS: the same listener options on both brokers; the later -p wins over run_case's.
# Connection rate: 50 clients each connecting (full handshake, no resumption),
# CONNACK, DISCONNECT, close, again, for the throughput time.
for broker in moatd mosquitto; do
	run_case "tls connect rate" "$broker" max -p "${TLS_PORT[$broker]}" --cafile "$CAFILE" \
		--scenario connect --connections 50 --duration "$SECONDS_THR"
done
for mode in max fixed; do
	for broker in moatd mosquitto; do
		if [ "$mode" = max ]; then
			set -- --duration "$SECONDS_THR"
		else
			set -- --rate 500 --duration "$SECONDS_LAT"
		fi
		run_case "tls qos1 20 pairs" "$broker" "$mode" -p "${TLS_PORT[$broker]}" \
			--cafile "$CAFILE" --scenario pairs --pairs 20 -q 1 -s 64 --drain 5 "$@"
	done
done

# Persistence on: clients keep their sessions (an hour), so every QoS 1/2
# message goes to the store before moatd acknowledges it.
start_broker moatd-p
start_broker mosquitto-p
CASES=(
	"persist qos1 fan-out 1->50|--scenario fanout --subscribers 50 -q 1 --session-expiry 3600|200"
	"persist qos1 20 pairs|--scenario pairs --pairs 20 -q 1 --session-expiry 3600|500"
	"persist qos2 20 pairs|--scenario pairs --pairs 20 -q 2 --session-expiry 3600|500"
)
run_cases moatd-p mosquitto-p

"$PY" "$ROOT/bench/report.py" "$OUT" "$IDLE_N"
echo
"$BENCH_BUILD/bin/e2e_cost"
"$PY" "$ROOT/bench/e2e.py" "$BENCH_BUILD"
"$BENCH_BUILD/bin/keyrel_latency" --dir "$WORK"
if [ -n "${BENCH_OUT:-}" ]; then
	echo "bench: results kept in $OUT" >&2
fi
