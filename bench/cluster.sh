#!/usr/bin/env bash
# make bench-cluster: the broker-core cases of `make bench` (bench/cases.sh)
# on one moatd, across a two-node moatd cluster (publishers on node a,
# subscribers on node b, one `nats-server -js` on loopback) and on Debian's
# mosquitto, interleaved case by case so all three share the machine's
# noise. Each case runs unthrottled and again at a fixed rate (p99 that is
# not queueing). Around every run the CPU time (user + system) of each
# process is read from /proc, so the report gives each process's CPU time
# per message carried: what NATS costs per message, beside the latency it
# adds. Prints the cross-node throughput and p99 as ratios to the single
# node and to mosquitto (bench/cluster_report.py). Figures only, no timed
# assertions; exits non-zero when a run failed or lost a QoS 1/2 message.
#
# Environment: BENCH_BUILD (a build dir with bin/moatd and bin/moat; unset =
# the release preset, built into build/), BENCH_SECONDS (5), BENCH_LAT_SECONDS
# (3), BENCH_SETTLE (2: seconds for node a to learn node b's subscriptions),
# BENCH_CASES (an extended regular expression: only the cases it matches),
# BENCH_FIXED (1; 0 skips the fixed-rate runs), BENCH_OUT (results file).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_THR=${BENCH_SECONDS:-5}
SECONDS_LAT=${BENCH_LAT_SECONDS:-3}
SETTLE=${BENCH_SETTLE:-2}
MOSQUITTO=/usr/sbin/mosquitto
NATS_SERVER=/usr/sbin/nats-server
PY=/usr/bin/python3
# shellcheck source=bench/cases.sh
. "$ROOT/bench/cases.sh"

if [ -z "${BENCH_BUILD:-}" ]; then
	BENCH_BUILD=$ROOT/build
	(cd "$ROOT" && cmake --preset release >/dev/null && cmake --build build -j "$(nproc)")
fi
MOATD=$BENCH_BUILD/bin/moatd
MOAT=$BENCH_BUILD/bin/moat
for f in "$MOATD" "$MOAT" "$MOSQUITTO" "$NATS_SERVER"; do
	[ -x "$f" ] || { echo "bench-cluster: $f not found (make deps)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/moat-bench-cluster.XXXXXX)
OUT=${BENCH_OUT:-$WORK/results.jsonl}
: >"$OUT"
declare -A PID PORT
cleanup() {
	local p
	# nodes before NATS, so they do not log a lost server on the way out
	for p in single a b mosquitto nats; do
		[ -n "${PID[$p]:-}" ] || continue
		kill "${PID[$p]}" 2>/dev/null || true
		wait "${PID[$p]}" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

start() {	# name command...: runs it in the background as PID[name]
	local name=$1
	shift
	"$@" >"$WORK/$name.log" 2>&1 &
	PID[$name]=$!
	wait_port "${PORT[$name]}" "${PID[$name]}"
}

moatd_conf() {	# name [cluster node name]
	printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 10000\n' \
		"${PORT[$1]}"
	if [ $# -gt 1 ]; then
		printf 'cluster_url nats://127.0.0.1:%s\ncluster_name bench\nnode_name %s\n' \
			"${PORT[nats]}" "$2"
	fi
}

for p in nats single a b mosquitto; do
	PORT[$p]=$(free_port)
done
mkdir "$WORK/nats"
start nats "$NATS_SERVER" -js -a 127.0.0.1 -p "${PORT[nats]}" -sd "$WORK/nats"
moatd_conf single >"$WORK/single.conf"
moatd_conf a a >"$WORK/a.conf"
moatd_conf b b >"$WORK/b.conf"
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 10000\n' \
	"${PORT[mosquitto]}" >"$WORK/mosquitto.conf"
start single "$MOATD" -c "$WORK/single.conf"
start a "$MOATD" -c "$WORK/a.conf"
start b "$MOATD" -c "$WORK/b.conf"
start mosquitto "$MOSQUITTO" -c "$WORK/mosquitto.conf"
echo "bench-cluster: single moatd on ${PORT[single]}, nodes a ${PORT[a]} and b ${PORT[b]}" \
	"on nats-server ${PORT[nats]}, mosquitto on ${PORT[mosquitto]}; results in $OUT" >&2

# "name=seconds ..." of CPU time (user + system) used so far by each process.
cpu_all() {
	local p
	for p in single a b nats mosquitto; do
		awk -v p="$p" -v hz="$(getconf CLK_TCK)" '{ printf "%s=%.2f ", p, ($14 + $15) / hz }' \
			"/proc/${PID[$p]}/stat"
	done
}

# One `moat bench` run on <setup> (single, cross or mosquitto); appends its
# JSON line, tagged with case, setup, mode and the CPU each process used, to $OUT.
run_case() {	# case-name setup mode args...
	local name=$1 setup=$2 mode=$3 json before after
	shift 3
	case $setup in
	single | mosquitto) set -- -p "${PORT[$setup]}" "$@" ;;
	cross) set -- -p "${PORT[a]}" --sub-port "${PORT[b]}" --settle "$SETTLE" "$@" ;;
	esac
	echo "== $name / $setup / $mode" >&2
	before=$(cpu_all)
	json=$("$MOAT" bench -h 127.0.0.1 "$@" 2>"$WORK/progress.log" | tail -n 1) || true
	after=$(cpu_all)
	echo "$json" | "$PY" -c "$TAG" "$name" "$setup" "$mode" "$before" "$after" >>"$OUT"
}
TAG='import json,sys
try:
    r = json.loads(sys.stdin.read())
except ValueError:
    r = {"failed": True}
cpu = [dict((kv.split("=")[0], float(kv.split("=")[1])) for kv in a.split()) for a in sys.argv[4:6]]
r.update(case=sys.argv[1], setup=sys.argv[2], mode=sys.argv[3],
         cpu_s=dict((p, cpu[1][p] - cpu[0][p]) for p in cpu[0]))
print(json.dumps(r))'

for c in "${CORE_CASES[@]}"; do
	IFS='|' read -r name args rate <<<"$c"
	[[ $name =~ ${BENCH_CASES:-.} ]] || continue
	for setup in single cross mosquitto; do
		# shellcheck disable=SC2086
		run_case "$name" "$setup" max $args -s 64 --duration "$SECONDS_THR" --drain 5
	done
	[ "${BENCH_FIXED:-1}" = 1 ] || continue
	for setup in single cross mosquitto; do
		# shellcheck disable=SC2086
		run_case "$name" "$setup" fixed $args -s 64 --rate "$rate" --duration "$SECONDS_LAT" \
			--drain 5
	done
done

"$PY" "$ROOT/bench/cluster_report.py" "$OUT"
