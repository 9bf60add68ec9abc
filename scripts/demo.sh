#!/usr/bin/env bash
# The README's main job (`make demo`): the whole system on this machine, on
# loopback, secured end to end, from embedded defaults:
#   moatd            mutual TLS for devices and the historian (certificates
#                    from the Security Center's CA), a loopback password
#                    listener for the Security Center itself, an ACL
#   moat-sc serve    registry, CA, topic policies, group keys released over MQTT
#   moat-device      10 simulated things (role=sensor), a sealed JSON reading
#                    every 5 s, ON/OFF commands signed by the historian
#   moat-historian   stores the readings (SQLite), serves the dashboard
# It prints the dashboard's URL and login. Ctrl-C stops everything cleanly.
# State lives in one directory (MOAT_DEMO_DIR, default ./demo-state) that a
# second run reuses: same CA, things, keys, readings and password. Also:
# MOAT_DEMO_DEVICES (10), MOAT_DEMO_INTERVAL (5 s), MOAT_DEMO_MQTT_PORT
# (8883), MOAT_DEMO_HTTP_PORT (8080), MOAT_DEMO_BIN and MOAT_DEMO_WEB (the
# release build's; tests/integration/test_demo.py runs the dev build's).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${MOAT_DEMO_BIN:-build/bin}
web=${MOAT_DEMO_WEB:-build/web/dist}
state=$(realpath -m "${MOAT_DEMO_DIR:-demo-state}")
devices=${MOAT_DEMO_DEVICES:-10}
interval=${MOAT_DEMO_INTERVAL:-5}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {	# preferred port, or the next free one after it
	local p=$1
	while port_busy "$p"; do p=$((p + 1)); done
	echo "$p"
}
wait_port() {	# port pid name
	for _ in $(seq 100); do
		port_busy "$1" && return 0
		kill -0 "$2" 2>/dev/null || { echo "demo: $3 did not start; see $state/logs/$3.log" >&2; exit 1; }
		sleep 0.1
	done
	echo "demo: $3 does not listen on $1" >&2
	exit 1
}
secret() { head -c 18 /dev/urandom | base64 | tr '+/' 'xy'; }

pids=()
stop_all() {
	trap - INT TERM EXIT
	[ "${#pids[@]}" -gt 0 ] || return 0
	echo
	echo "== stopping"
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
	echo "== stopped; state kept in $state (run make demo again to reuse it)"
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

start() {	# name command...
	local name=$1
	shift
	"$@" >>"$state/logs/$name.log" 2>&1 &
	pids+=($!)
}

mqtt_port=$(free_port "${MOAT_DEMO_MQTT_PORT:-8883}")
sc_port=$(free_port $((mqtt_port + 1)))
http_port=$(free_port "${MOAT_DEMO_HTTP_PORT:-8080}")
mkdir -p "$state/logs"
chmod 700 "$state"
sc=$state/sc

# ---- first run: the Security Center, the broker's certificate, the things
if [ ! -f "$sc/registry.db" ]; then
	echo "== first run: creating the Security Center in $sc"
	"$bin/moat-sc" --dir "$sc" init --name demo >/dev/null
	"$bin/moat-sc" --dir "$sc" thing add broker --broker --san DNS:localhost \
		--san IP:127.0.0.1 --out "$state/broker" >/dev/null
	"$bin/moat-sc" --dir "$sc" crl --out "$state/broker/crl.pem" >/dev/null
	secret >"$state/sc.pw"
	"$bin/moat" passwd -c -b "$state/passwd" sc "$(cat "$state/sc.pw")"
	admin_pw=$(secret)
	"$bin/moat" passwd -c -b "$state/users" admin "$admin_pw"
	echo "$admin_pw" >"$state/admin.pw"
	chmod 600 "$state/sc.pw" "$state/admin.pw"
fi

cat >"$state/acl" <<'ACL'
# devices (certificate CN = thing name): their own topics only
pattern write moat/%u/telemetry
pattern write moat/%u/status
pattern write moat/%u/online
pattern read moat/%u/cmd
pattern write alerts/%u/tamper
user historian
topic read moat/#
topic write moat/+/cmd
topic read alerts/#
user sc
topic read alerts/#
ACL

cat >"$state/moatd.conf" <<CONF
# written by scripts/demo.sh
persistence true
persistence_location $state/store
acl_file $state/acl
password_file $state/passwd
sc_username sc
sc_public_key $sc/token.pub

# devices and the historian: mutual TLS, the certificate names the client
listener $mqtt_port 127.0.0.1
certfile $state/broker/cert.pem
keyfile $state/broker/key.pem
cafile $sc/ca.pem
crlfile $state/broker/crl.pem
require_certificate true
use_identity_as_username true

# the Security Center: loopback, password
listener $sc_port 127.0.0.1
CONF

echo "== moatd: mutual TLS on 127.0.0.1:$mqtt_port, Security Center listener on 127.0.0.1:$sc_port"
start moatd "$bin/moatd" -c "$state/moatd.conf"
wait_port "$mqtt_port" "${pids[-1]}" moatd

echo "== moat-sc serve (keys over MQTT, admin socket $sc/admin.sock)"
start moat-sc "$bin/moat-sc" --dir "$sc" serve --broker "127.0.0.1:$sc_port" --username sc \
	--password-file "$state/sc.pw" --broker-url "mqtts://127.0.0.1:$mqtt_port"
for _ in $(seq 100); do
	[ -S "$sc/admin.sock" ] && break
	sleep 0.1
done
ctl() { "$bin/moat" ctl --sc-dir "$sc" "$@"; }

if [ ! -d "$state/historian" ]; then
	echo "== topic policies, the historian and $devices devices (moat ctl)"
	ctl policy set 'moat/+/telemetry' --publish 'role == sensor' --subscribe 'role == historian' >/dev/null
	ctl policy set 'moat/+/status' --publish 'role == sensor' --subscribe 'role == historian' >/dev/null
	ctl policy set 'moat/+/cmd' --publish 'role == historian' --subscribe 'role == sensor' \
		--signed --max-age 30 >/dev/null
	ctl thing create historian --attr role=historian --out "$state/historian" >/dev/null
	mkdir -p "$state/devices"
	for i in $(seq 1 "$devices"); do
		ctl thing create "dev-$i" --attr role=sensor --attr site=plant-7 \
			--out "$state/devices/dev-$i" >/dev/null
	done
	openssl pkey -in "$state/historian/sign.key" -pubout -out "$state/historian.pub"
fi

echo "== moat-historian on http://127.0.0.1:$http_port"
start moat-historian "$bin/moat-historian" --bundle "$state/historian" \
	--broker "127.0.0.1:$mqtt_port" --cafile "$sc/ca.pem" --cert "$state/historian/cert.pem" \
	--key "$state/historian/key.pem" --state "$state" --db "sqlite:$state/historian.db" \
	--http "127.0.0.1:$http_port" --users "$state/users" --web-root "$web"
wait_port "$http_port" "${pids[-1]}" moat-historian

echo "== moat-device: $devices devices, a reading every $interval s"
start moat-device "$bin/moat-device" --bundles "$state/devices" --count "$devices" \
	--interval "$interval" --broker "127.0.0.1:$mqtt_port" --command-signer "$state/historian.pub"

cat <<EOF

  Dashboard:  http://127.0.0.1:$http_port/
  Login:      admin / $(cat "$state/admin.pw")

  Tamper alert:  $bin/moat-device --bundles $state/devices --tamper dev-3
  Things:        $bin/moat ctl --sc-dir $sc thing list
  Audit log:     $bin/moat ctl --sc-dir $sc audit tail
  Logs:          $state/logs/

Ctrl-C stops everything.
EOF

# until Ctrl-C, or until one of them stops by itself
while true; do
	for p in "${pids[@]}"; do
		if ! kill -0 "$p" 2>/dev/null; then
			echo "demo: a component stopped (pid $p); see $state/logs/" >&2
			exit 1
		fi
	done
	sleep 1
done
