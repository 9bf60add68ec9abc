# shellcheck shell=bash
# Sourced by bench/run.sh (`make bench`) and bench/cluster.sh (`make
# bench-cluster`): the broker-core cases both run, and the helpers that find
# a free loopback port and wait for a broker to listen on it. Needs $PY.

# case name | moat bench arguments | per-publisher rate of the latency run
# shellcheck disable=SC2034  # used by the scripts that source this file
CORE_CASES=(
	"qos0 fan-in 8->1|--scenario fanin --publishers 8 -q 0|1000"
	"qos0 fan-out 1->50|--scenario fanout --subscribers 50 -q 0|200"
	"qos0 20 pairs|--scenario pairs --pairs 20 -q 0|500"
	"qos1 fan-out 1->50|--scenario fanout --subscribers 50 -q 1|200"
	"qos1 20 pairs|--scenario pairs --pairs 20 -q 1|500"
	"qos2 20 pairs|--scenario pairs --pairs 20 -q 2|500"
)

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {	# port pid
	for _ in $(seq 200); do
		kill -0 "$2" 2>/dev/null || { echo "bench: process $2 exited" >&2; return 1; }
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "bench: nothing listens on port $1" >&2
	return 1
}
