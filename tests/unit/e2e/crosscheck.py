#!/usr/bin/python3
"""Cross-checks src/e2e against independent implementations: python3-cbor2
decodes the envelopes the C code seals and python3-cryptography opens them
with keys and nonces derived here from SECURITY-DESIGN §2.3 (RFC 8613 §3.2,
§5.2); the other way round, envelopes built here are opened by the C code.
COSE_Sign1 is checked both ways with Ed25519. Usage: crosscheck.py E2E_TOOL"""
import os
import subprocess
import sys

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (Encoding, NoEncryption,
                                                          PrivateFormat, PublicFormat)

TOOL = sys.argv[1]
ALGS = {"chacha20-poly1305": (24, ChaCha20Poly1305), "aes-256-gcm": (3, AESGCM)}


def tool(*args, ok=True):
    r = subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True)
    if ok and r.returncode != 0:
        sys.exit(f"e2e_tool {args[0]} failed: {r.stderr}")
    return bytes.fromhex(r.stdout.strip()) if r.returncode == 0 else None


def hkdf(ms, salt, info, n):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=salt, info=info).derive(ms)


def keys(ms, kc, sid, alg):
    key = hkdf(ms, kc, cbor2.dumps([sid, kc, alg, "Key", 32]), 32)
    iv = hkdf(ms, kc, cbor2.dumps([b"", kc, alg, "IV", 12]), 12)
    return key, iv


def nonce(iv, sid, seq):
    x = bytes([len(sid)]) + sid.rjust(6, b"\0") + seq.to_bytes(5, "big")
    return bytes(a ^ b for a, b in zip(iv, x))


def aad(prot, topic):
    return cbor2.dumps(["Encrypt0", prot, cbor2.dumps(["moat/1", topic])])


def piv(seq):
    return seq.to_bytes(max(1, (seq.bit_length() + 7) // 8), "big")


def check_c_seals(name, ms, gid, epoch, sid, seq, iat, topic, pt):
    alg, cls = ALGS[name]
    env = tool("seal", name, ms.hex(), gid.hex(), epoch, sid.hex(), seq,
               "-" if iat is None else iat, topic, pt.hex())
    obj = cbor2.loads(env)
    assert isinstance(obj, cbor2.CBORTag) and obj.tag == 16, obj
    prot, unprot, ct = obj.value
    assert unprot == {}, unprot
    hdr = cbor2.loads(prot)
    kc = gid + epoch.to_bytes(4, "big")
    want = {1: alg, 4: sid, 6: piv(seq), 10: kc}
    if iat is not None:
        want[15] = {6: iat}
    assert hdr == want, (hdr, want)
    assert cbor2.dumps(hdr, canonical=True) == prot, "protected header not deterministic"
    key, iv = keys(ms, kc, sid, alg)
    got = cls(key).decrypt(nonce(iv, sid, seq), ct, aad(prot, topic))
    assert got == pt, (got, pt)
    return env


def py_seal(name, ms, gid, epoch, sid, seq, topic, pt):
    alg, cls = ALGS[name]
    kc = gid + epoch.to_bytes(4, "big")
    prot = cbor2.dumps({1: alg, 4: sid, 6: piv(seq), 10: kc}, canonical=True)
    key, iv = keys(ms, kc, sid, alg)
    ct = cls(key).encrypt(nonce(iv, sid, seq), pt, aad(prot, topic))
    return cbor2.dumps(cbor2.CBORTag(16, [prot, {}, ct]))


def main():
    n = 0
    for name in ALGS:
        for sid, seq, iat, size in [(b"\x01", 0, None, 0), (b"\x2a", 255, 1764547200, 1),
                                    (b"\x00\x07", 256, -5, 100),
                                    (b"\xff" * 6, 2**40 - 1, None, 1000),
                                    (b"\x03", 9, None, 5000)]:  # above aead.c's switch
            ms, gid = os.urandom(32), os.urandom(8)
            epoch, topic = int.from_bytes(os.urandom(4), "big"), "plant/ü/temp"
            pt = os.urandom(size)
            env = check_c_seals(name, ms, gid, epoch, sid, seq, iat, topic, pt)
            assert tool("open", name, ms.hex(), gid.hex(), epoch, topic, env.hex()) == pt
            env = py_seal(name, ms, gid, epoch, sid, seq, topic, pt)
            assert tool("open", name, ms.hex(), gid.hex(), epoch, topic, env.hex()) == pt
            bad = bytearray(env)
            bad[len(bad) // 2] ^= 1
            assert tool("open", name, ms.hex(), gid.hex(), epoch, topic, bad.hex(),
                        ok=False) is None
            assert tool("open", name, ms.hex(), gid.hex(), epoch, topic + "x", env.hex(),
                        ok=False) is None
            n += 1

    sk = Ed25519PrivateKey.generate()
    seed = sk.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pub = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kid, topic, payload = b"device-1", "alerts/d1/tamper", os.urandom(40)
    env = tool("sign", seed.hex(), kid.hex(), topic, payload.hex())
    obj = cbor2.loads(env)
    assert obj.tag == 18 and obj.value[1] == {} and obj.value[2] == payload
    prot = obj.value[0]
    assert cbor2.loads(prot) == {1: -8, 4: kid}
    tbs = cbor2.dumps(["Signature1", prot, cbor2.dumps(["moat/1", topic]), payload])
    sk.public_key().verify(obj.value[3], tbs)
    prot = cbor2.dumps({1: -8, 4: kid}, canonical=True)
    tbs = cbor2.dumps(["Signature1", prot, cbor2.dumps(["moat/1", topic]), payload])
    env = cbor2.dumps(cbor2.CBORTag(18, [prot, {}, payload, sk.sign(tbs)]))
    assert tool("verify", pub.hex(), topic, env.hex()) == payload
    assert tool("verify", pub.hex(), "alerts/d2/tamper", env.hex(), ok=False) is None
    print(f"crosscheck: {n} Encrypt0 cases both ways, Sign1 both ways: ok")


main()
