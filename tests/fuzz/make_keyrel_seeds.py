#!/usr/bin/python3
"""Writes the seed corpus of fuzz_keyrel: requests, responses (key grant,
token, refusal), an epoch announcement and a tamper alert, built by
tests/integration/keyrel_oracle.py with the fixed keys of fuzz_keyrel.c.
Run: make_keyrel_seeds.py CORPUS_DIR (writes CORPUS_DIR/keyrel)"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import keyrel_oracle as k  # noqa: E402

OUT = os.path.join(sys.argv[1], "keyrel")
DEV, SC, AGREE = b"\x42" * 32, b"\x24" * 32, b"\x33" * 32
HASH, GROUP = b"\x11" * 32, bytes(range(1, 9))
agree_pub = k.x25519_pub(AGREE)
seeds = {
    "req_get_key": k.request(DEV, "dev1", agree_pub, topic="plant/+/temp", intent=2, epoch=3,
                             nonce=b"n" * 16, iat=1764567890)[0],
    "req_get_token": k.request(DEV, "dev1", agree_pub, op=2, nonce=b"t" * 16, iat=1)[0],
    "resp_key": k.response_seal(SC, "dev1", HASH, agree_pub, sc_time=5, group_id=GROUP, epoch=3,
                                filt="plant/#", signed=True, max_age=30, not_after=99,
                                sender_id=b"\x01\x02", ms=bytes(range(32))),
    "resp_denied": k.response_seal(SC, "dev1", HASH, agree_pub, status=1, reason="denied"),
    "resp_token": k.sign1(SC, "sc", "$sc/resp/dev1",
                          k.dumps({1: 0, 2: HASH, 3: 1, 11: 99, 15: "eyJ.a.b"})),
    "epoch": k.epoch_build(SC, GROUP, 7, "plant/#", 1764567890),
    "alert": k.alert(DEV, "dev1", 1764567890, "case opened"),
}
os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
