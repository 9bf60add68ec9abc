"""An independent Python side of the key-release protocol (src/e2e/keyrel.h),
written on python3-cbor2 and python3-cryptography: COSE_Sign1 with
external_aad ["moat/1", topic], requests, tamper alerts, and the opening of
responses and epoch announcements with RFC 9180 HPKE (the HPKE of
tests/unit/e2e/hpke_xcheck.py, itself checked against the RFC's vectors).
Used by tests/fuzz/make_keyrel_seeds.py and the integration tests."""
import hashlib
import os
import sys

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "e2e"))
import hpke_xcheck  # noqa: E402

CHACHA = 0x0003
STATUS = ["ok", "denied", "unknown", "revoked", "stale", "replay", "rate-limited", "bad-request",
          "internal", "no-epoch"]


def dumps(obj):
    return cbor2.dumps(obj, canonical=True)


def ed25519_pub(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)


def x25519_pub(sk):
    return X25519PrivateKey.from_private_bytes(sk).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)


def _tbs(prot, topic, payload):
    ext = dumps(["moat/1", topic])
    return dumps(["Signature1", prot, ext, payload])


def sign1(seed, kid, topic, payload):
    """COSE_Sign1 of the bytes <payload>, kid <kid> (str), bound to <topic>."""
    prot = dumps({1: -8, 4: kid.encode()})
    sig = Ed25519PrivateKey.from_private_bytes(seed).sign(_tbs(prot, topic, payload))
    return dumps(cbor2.CBORTag(18, [prot, {}, payload, sig]))


def sign1_open(msg, pub, topic):
    """Verifies a COSE_Sign1 and returns (kid, decoded payload map)."""
    tag = cbor2.loads(msg)
    assert tag.tag == 18, "not a COSE_Sign1"
    prot, unprot, payload, sig = tag.value
    hdr = cbor2.loads(prot)
    assert hdr[1] == -8 and unprot == {}
    Ed25519PublicKey.from_public_bytes(pub).verify(sig, _tbs(prot, topic, payload))
    return hdr[4].decode(), cbor2.loads(payload)


def request(seed, client_id, agree_pub, op=1, topic=None, intent=None, epoch=None, nonce=None,
            iat=None, now=None):
    """A signed request; returns (bytes, req_hash). now: a clock for iat."""
    m = {1: op, 2: client_id, 6: nonce if nonce is not None else os.urandom(16),
         7: iat if iat is not None else int(now if now is not None else __import__("time").time()),
         8: hashlib.sha256(agree_pub).digest()}
    if topic is not None:
        m[3] = topic
    if intent is not None:
        m[4] = intent
    if epoch is not None:
        m[5] = epoch
    msg = sign1(seed, client_id, "$sc/req/" + client_id, dumps(m))
    return msg, hashlib.sha256(msg).digest()


def hpke_info(client_id, group_id, epoch):
    return b"moat key release\x00" + client_id.encode() + b"\x00" + group_id + epoch.to_bytes(4, "big")


def response_seal(sc_seed, client_id, req_hash, agree_pub, status=0, reason=None, sc_time=0,
                  group_id=b"\x01" * 8, epoch=1, alg=24, filt="a/#", signed=False, max_age=0,
                  not_after=0, sender_id=None, ms=bytes(32), ikm_e=None):
    """The SC's response, built independently of keyrel.c (seeds, cross-checks).
    ikm_e: a fixed HPKE ephemeral seed for reproducible seeds, never in real use."""
    m = {1: status, 2: req_hash, 3: sc_time}
    if status != 0 and reason:
        m[4] = reason
    if status == 0:
        enc, ct = hpke_xcheck.seal(CHACHA, agree_pub, hpke_info(client_id, group_id, epoch),
                                   req_hash, ms, ikm_e)
        m.update({5: group_id, 6: epoch, 7: alg, 8: filt, 9: signed, 10: max_age,
                  11: not_after, 13: enc, 14: ct})
        if sender_id:
            m[12] = sender_id
    return sign1(sc_seed, "sc", "$sc/resp/" + client_id, dumps(m))


def response_open(msg, client_id, req_hash, sc_pub, agree_sk):
    """Checks a response like keyrel_response_open; returns its map with
    'status' (name) and, for a key, 'ms' (the opened master secret)."""
    kid, m = sign1_open(msg, sc_pub, "$sc/resp/" + client_id)
    assert kid == "sc", "response not signed by the SC"
    assert m[2] == req_hash, "response is for another request"
    out = dict(m)
    out["status"] = STATUS[m[1]]
    if m[1] == 0 and 14 in m:
        out["ms"] = hpke_xcheck.open_(CHACHA, agree_sk, m[13], hpke_info(client_id, m[5], m[6]),
                                      req_hash, m[14])
    return out


def epoch_build(sc_seed, group_id, epoch, filt, issued):
    m = {1: group_id, 2: epoch, 3: filt, 4: issued}
    return sign1(sc_seed, "sc", "$sc/epoch/" + group_id.hex(), dumps(m))


def epoch_open(msg, topic, sc_pub):
    """Returns (group_id, epoch, filter) of a verified epoch announcement."""
    kid, m = sign1_open(msg, sc_pub, topic)
    assert kid == "sc" and topic == "$sc/epoch/" + m[1].hex()
    return m[1], m[2], m[3]


def alert(seed, client_id, iat, detail=""):
    m = {1: "tamper", 2: iat, 3: detail}
    return sign1(seed, client_id, "alerts/%s/tamper" % client_id, dumps(m))
