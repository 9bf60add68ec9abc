#!/usr/bin/env bash
# The README's main job: starts moatd on loopback with embedded defaults and
# shows a moat sub / moat pub exchange (QoS 0, 1 and 2, a retained message and
# a v5 user property), then stops the broker. Later issues extend it into the
# full demo (Security Center, devices, historian).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=build/bin
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=${MOAT_DEMO_PORT:-1883}
if [ -z "${MOAT_DEMO_PORT:-}" ] && port_busy "$port"; then
	# e.g. Debian's mosquitto service, which its package starts on 1883
	for p in $(seq 1884 1999); do
		port_busy "$p" || { port=$p; break; }
	done
	echo "== 1883 is taken on this machine; the demo uses port $port"
fi
work=$(mktemp -d)
trap 'kill "$broker" 2>/dev/null || true; wait "$broker" 2>/dev/null || true; rm -rf "$work"' EXIT

# Anonymous access is off by default; the demo opens a loopback-only listener
# for anonymous clients explicitly, and keeps its state in a store.
cat >"$work/moatd.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence true
persistence_location $work/store
CONF

start_broker() {
	"$bin/moatd" -c "$work/moatd.conf" &
	broker=$!
	for _ in $(seq 50); do
		port_busy "$port" && return 0
		kill -0 "$broker" 2>/dev/null || { echo "moatd did not start" >&2; exit 1; }
		sleep 0.1
	done
}

echo "== starting moatd on 127.0.0.1:$port (persistence in $work/store)"
start_broker

echo "== moat sub -t 'demo/#' -v (waits for 4 messages)"
"$bin/moat" sub -p "$port" -V 5 -t 'demo/#' -v -C 4 -W 10 >"$work/sub.out" &
sub=$!
sleep 0.5

echo "== moat pub: QoS 0, 1 and 2, and one retained message"
"$bin/moat" pub -p "$port" -V 5 -t demo/qos0 -m "hello at QoS 0" -q 0
"$bin/moat" pub -p "$port" -V 5 -t demo/qos1 -m "hello at QoS 1" -q 1
"$bin/moat" pub -p "$port" -V 5 -t demo/qos2 -m "hello at QoS 2" -q 2 -D publish user-property from demo
"$bin/moat" pub -p "$port" -V 5 -t demo/status -m "retained: broker is up" -q 1 -r
wait "$sub"
echo "== moat sub received:"
cat "$work/sub.out"

echo "== a late subscriber still gets the retained message:"
"$bin/moat" sub -p "$port" -t demo/status -v -C 1 -W 5

echo "== kill -9 moatd, start it again: the acknowledged retained message is still there"
kill -9 "$broker"
wait "$broker" 2>/dev/null || true
start_broker
"$bin/moat" sub -p "$port" -t demo/status -v -C 1 -W 5
echo "== done; moatd stops now"
