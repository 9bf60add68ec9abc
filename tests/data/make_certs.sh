#!/bin/sh
# Generates test PKI material (ECDSA P-256) into directory $1 with the
# openssl CLI: ca.crt/ca.key (test CA), wrongca.crt/.key (an unrelated CA),
# server.crt/.key (CN localhost, SAN localhost + 127.0.0.1), client certs
# signed by the test CA: client.crt (good, CN client1), expired.crt,
# revoked.crt (listed in crl.pem), and wrong.crt signed by the wrong CA.
# For tests only: keys are unencrypted.
set -eu
out=${1:?usage: make_certs.sh DIR}
mkdir -p "$out"
cd "$out"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

mkca() { # name CN
	key "$1.key"
	openssl req -new -x509 -key "$1.key" -out "$1.crt" -days 3650 -subj "/O=Moat Test/CN=$2" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
	mkdir -p "$1.db/new"
	: >"$1.db/index.txt"
	echo 1000 >"$1.db/serial"
	echo 1000 >"$1.db/crlnumber"
	cat >"$1.cnf" <<CNF
[ ca ]
default_ca = this
[ this ]
dir = $out/$1.db
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
crlnumber = \$dir/crlnumber
certificate = $out/$1.crt
private_key = $out/$1.key
default_md = sha256
default_crl_days = 3650
policy = any
unique_subject = no
copy_extensions = copy
[ any ]
commonName = supplied
organizationName = optional
[ client ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
[ server ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
CNF
}

sign() { # ca name CN ext [startdate enddate]
	key "$2.key"
	openssl req -new -key "$2.key" -out "$2.csr" -subj "/O=Moat Test/CN=$3"
	if [ $# -ge 6 ]; then
		openssl ca -batch -config "$1.cnf" -extensions "$4" -in "$2.csr" -out "$2.crt" \
			-startdate "$5" -enddate "$6" -notext 2>/dev/null
	else
		openssl ca -batch -config "$1.cnf" -extensions "$4" -in "$2.csr" -out "$2.crt" \
			-days 3650 -notext 2>/dev/null
	fi
	rm -f "$2.csr"
}

mkca ca "Moat Test CA"
mkca wrongca "Wrong CA"
sign ca server localhost server
sign ca client client1 client
sign ca expired expired1 client 20200101000000Z 20210101000000Z
sign ca revoked revoked1 client
sign wrongca wrong wrong1 client
openssl ca -config ca.cnf -revoke revoked.crt 2>/dev/null
openssl ca -config ca.cnf -gencrl -out crl.pem 2>/dev/null
