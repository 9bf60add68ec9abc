#!/usr/bin/env bash
# Installs Moat's build and test dependencies on Debian 12 when they are
# missing: Debian packages with apt-get, JavaScript test clients and the
# dashboard's packages (web/) with npm ci.
# Idempotent and quiet; safe to run before every make target.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
	cmake ninja-build gcc clang pkg-config make
	libcmocka-dev libssl-dev libsodium-dev libcjson-dev libwslay-dev openssl
	liblmdb-dev libsqlite3-dev zlib1g-dev
	libclang-rt-14-dev
	mosquitto mosquitto-clients python3 python3-paho-mqtt python3-jwt python3-cryptography
	python3-cbor2 valgrind
	softhsm2 opensc libengine-pkcs11-openssl libp11-kit-dev
	libpq-dev postgresql libmicrohttpd-dev
	chromium
	nats-server libnats-dev
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	missing+=(nodejs npm)
fi

if [ "${#missing[@]}" -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	echo "deps: installing ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
fi

# Debian's mosquitto package enables a system service on 1883; our tests and
# benchmarks start their own brokers on free ports, so leave it alone but do
# not depend on it.

for dir in tests/interop web; do
	if [ -f "$dir/package-lock.json" ] && [ ! -d "$dir/node_modules" ]; then
		echo "deps: npm ci in $dir"
		(cd "$dir" && npm ci --silent --no-audit --no-fund)
	fi
done
