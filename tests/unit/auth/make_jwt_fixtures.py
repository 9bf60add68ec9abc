#!/usr/bin/python3
"""Generates the JWT test fixtures in tests/data/jwt/ with python3-jwt and
python3-cryptography: PEM public keys (Ed25519, P-256, RSA-2048 accepted;
RSA-1024 and P-384 refused), one private key (refused by the loader) and one
token per case that tests/unit/auth/test_jwt.c checks. Private signing keys
live only in memory; rerunning makes new keys and tokens (the outputs are
committed, so the tests never run this script).

Usage: /usr/bin/python3 tests/unit/auth/make_jwt_fixtures.py [outdir]
"""
import base64
import hashlib
import hmac
import json
import os
import sys

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "jwt")

GOOD_EXP = 4102444800  # 2100-01-01
OLD_EXP = 946684800  # 2000-01-01
ISS = "https://sc.example"
AUD = "moat-broker"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def pub_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def write(name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def claims(**over):
    c = {
        "iss": ISS,
        "aud": AUD,
        "sub": "dev-42",
        "username": "alice",
        "client_id": "dev-42",
        "roles": ["sensor", "reader"],
        "attrs": {"site": "plant-1", "floor": 3, "admin": False},
        "exp": GOOD_EXP,
        "iat": 1700000000,
        "jti": "t-1",
        "cnf": {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"},
    }
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def raw_jws(header_json, payload_json, sign):
    """Compact JWS from exact JSON texts (duplicate keys survive); sign(bytes) -> bytes."""
    si = b64u(header_json.encode()) + "." + b64u(payload_json.encode())
    return si + "." + b64u(sign(si.encode()))


def main():
    os.makedirs(OUT, exist_ok=True)
    ed = ed25519.Ed25519PrivateKey.generate()
    ed_other = ed25519.Ed25519PrivateKey.generate()
    p256 = ec.generate_private_key(ec.SECP256R1())
    p384 = ec.generate_private_key(ec.SECP384R1())
    r2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    r1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)

    write("ed25519.pub.pem", pub_pem(ed))
    write("p256.pub.pem", pub_pem(p256))
    write("rsa2048.pub.pem", pub_pem(r2048))
    write("rsa1024.pub.pem", pub_pem(r1024))
    write("p384.pub.pem", pub_pem(p384))
    write("p256.private.pem", p256.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    write("garbage.pem", "-----BEGIN PUBLIC KEY-----\nnot base64 at all!\n-----END PUBLIC KEY-----\n")

    # key set used by the tests: ed25519.pub.pem kid "ed1", p256.pub.pem kid "ec1",
    # rsa2048.pub.pem kid "rsa1"
    def tok(name, key, alg, kid, payload, typ="JWT", extra=None):
        headers = {"typ": typ}
        if kid is not None:
            headers["kid"] = kid
        if extra:
            headers.update(extra)
        write(name + ".jwt", jwt.encode(payload, key, algorithm=alg, headers=headers))

    tok("good_eddsa", ed, "EdDSA", "ed1", claims())
    tok("good_es256", p256, "ES256", "ec1", claims())
    tok("good_rs256", r2048, "RS256", "rsa1", claims())
    tok("good_nokid", ed, "EdDSA", None, claims(username=None, roles=None, attrs=None))
    tok("good_at_jwt", p256, "ES256", "ec1", claims(aud=["other", AUD]), typ="at+jwt")
    tok("expired", ed, "EdDSA", "ed1", claims(exp=OLD_EXP))
    tok("nbf_future", ed, "EdDSA", "ed1", claims(nbf=GOOD_EXP - 100))
    tok("wrong_aud", ed, "EdDSA", "ed1", claims(aud="another-broker"))
    tok("wrong_iss", ed, "EdDSA", "ed1", claims(iss="https://evil.example"))
    tok("no_exp", ed, "EdDSA", "ed1", claims(exp=None))
    tok("wrong_key", ed_other, "EdDSA", "ed1", claims())
    tok("kid_unknown", ed, "EdDSA", "ed9", claims())
    tok("crit", ed, "EdDSA", "ed1", claims(), extra={"crit": ["exp"]})
    tok("jku", ed, "EdDSA", "ed1", claims(), extra={"jku": "https://evil.example/keys"})
    tok("typ_bad", ed, "EdDSA", "ed1", claims(), typ="JOSE+JSON")
    tok("rs_with_ec_kid", r2048, "RS256", "ec1", claims())
    tok("es384", p384, "ES384", None, claims())

    body = b64u(json.dumps(claims()).encode())
    write("alg_none.jwt", b64u(b'{"alg":"none","typ":"JWT"}') + "." + body + ".")
    write("alg_None.jwt", b64u(b'{"alg":"None","typ":"JWT"}') + "." + body + ".")

    # the classic confusion: HS256 keyed with the verifier's public key PEM bytes
    pem = pub_pem(r2048)
    write("hs256_pubkey.jwt", raw_jws('{"alg":"HS256","typ":"JWT","kid":"rsa1"}',
                                      json.dumps(claims()),
                                      lambda si: hmac.new(pem, si, hashlib.sha256).digest()))

    good = open(os.path.join(OUT, "good_eddsa.jwt")).read()
    h, p, s = good.split(".")
    evil = b64u(json.dumps(claims(username="admin", roles=["admin"])).encode())
    write("tampered_payload.jwt", h + "." + evil + "." + s)
    mid = len(s) // 2
    write("tampered_sig.jwt", h + "." + p + "." + s[:mid] + ("A" if s[mid] != "A" else "B") + s[mid + 1:])
    write("bad_b64.jwt", h + "." + p[:5] + "*" + p[6:] + "." + s)

    # ES256 with an ASN.1 DER signature instead of JOSE's raw r||s
    write("es256_der.jwt", raw_jws('{"alg":"ES256","typ":"JWT","kid":"ec1"}', json.dumps(claims()),
                                   lambda si: p256.sign(si, ec.ECDSA(hashes.SHA256()))))
    # duplicate names, validly signed: parsers disagree on which one wins
    write("dup_header.jwt", raw_jws('{"alg":"EdDSA","kid":"ed1","kid":"ec1"}', json.dumps(claims()),
                                    ed.sign))
    write("dup_claims.jwt", raw_jws('{"alg":"EdDSA","kid":"ed1"}',
                                    '{"sub":"dev-42","exp":%d,"username":"alice","username":"admin"}'
                                    % GOOD_EXP, ed.sign))
    # exact-second tokens for the leeway boundaries (exp and nbf 2000000000)
    tok("exp_2e9", ed, "EdDSA", "ed1", claims(exp=2000000000))
    tok("nbf_2e9", ed, "EdDSA", "ed1", claims(nbf=2000000000))
    # claim shapes refused after a good signature
    tok("roles_too_many", ed, "EdDSA", "ed1", claims(roles=["r%d" % i for i in range(33)]))
    tok("role_too_long", ed, "EdDSA", "ed1", claims(roles=["x" * 65]))
    tok("attrs_nested", ed, "EdDSA", "ed1", claims(attrs={"a": {"b": "c"}}))
    tok("exp_string", ed, "EdDSA", "ed1", claims(exp="4102444800"))
    tok("nul_username", ed, "EdDSA", "ed1", claims(username="admin\u0000x"))


if __name__ == "__main__":
    main()
