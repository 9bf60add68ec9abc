#!/usr/bin/python3
"""Writes the seed corpora of fuzz_keyrel (requests, responses: key grant,
token, refusal; an epoch announcement and a tamper alert) and
fuzz_sc_request (requests of dev1), built by
tests/integration/keyrel_oracle.py with the fixed keys of those targets.
Run: make_keyrel_seeds.py CORPUS_DIR (writes CORPUS_DIR/keyrel, /sc_request)"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import keyrel_oracle as k  # noqa: E402

DEV, SC, AGREE = b"\x42" * 32, b"\x24" * 32, b"\x33" * 32
HASH, GROUP = b"\x11" * 32, bytes(range(1, 9))
agree_pub = k.x25519_pub(AGREE)
seeds = {
    "req_get_key": k.request(DEV, "dev1", agree_pub, topic="plant/+/temp", intent=2, epoch=3,
                             nonce=b"n" * 16, iat=1764567890)[0],
    "req_get_token": k.request(DEV, "dev1", agree_pub, op=2, nonce=b"t" * 16, iat=1)[0],
    "resp_key": k.response_seal(SC, "dev1", HASH, agree_pub, sc_time=5, group_id=GROUP, epoch=3,
                                filt="plant/#", signed=True, max_age=30, not_after=99,
                                sender_id=b"\x01\x02", ms=bytes(range(32)), ikm_e=b"e" * 32),
    "resp_denied": k.response_seal(SC, "dev1", HASH, agree_pub, status=1, reason="denied"),
    "resp_token": k.sign1(SC, "sc", "$sc/resp/dev1",
                          k.dumps({1: 0, 2: HASH, 3: 1, 11: 99, 15: "eyJ.a.b"})),
    "epoch": k.epoch_build(SC, GROUP, 7, "plant/#", 1764567890),
    "alert": k.alert(DEV, "dev1", 1764567890, "case opened"),
}
requests = {
    "publish": k.request(DEV, "dev1", agree_pub, topic="plant/1/temp", intent=1,
                         nonce=b"p" * 16, iat=1764567890)[0],
    "subscribe_filter": k.request(DEV, "dev1", agree_pub, topic="plant/#", intent=2,
                                  nonce=b"s" * 16, iat=1764567890)[0],
    "old_epoch": seeds["req_get_key"],
    "get_token": seeds["req_get_token"],
    "no_policy": k.request(DEV, "dev1", agree_pub, topic="other/x", intent=1, nonce=b"o" * 16,
                           iat=1764567890)[0],
}
for sub, files in (("keyrel", seeds), ("sc_request", requests)):
    os.makedirs(os.path.join(sys.argv[1], sub), exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(sys.argv[1], sub, name), "wb") as f:
            f.write(data)
