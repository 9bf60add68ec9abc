#!/usr/bin/python3
"""Writes the seed corpora of fuzz_cbor and fuzz_cose: envelopes sealed and
signed by the C code (build/dev/tests/e2e_tool) with the fixed key material
of fuzz_cose.c, and a few CBOR items made with python3-cbor2.
Run: make_e2e_seeds.py E2E_TOOL CORPUS_DIR (writes CORPUS_DIR/cbor, /cose)"""
import os
import subprocess
import sys

import cbor2

TOOL, OUT = sys.argv[1], sys.argv[2]
MS = bytes(range(32)).hex()
GROUP = b"fuzzgrp1".hex()
SEED = ("42" * 32)
TOPIC = "fuzz/topic"


def tool(*args):
    out = subprocess.run([TOOL, *map(str, args)], check=True, capture_output=True, text=True)
    return bytes.fromhex(out.stdout.strip())


def write(sub, name, data):
    os.makedirs(os.path.join(OUT, sub), exist_ok=True)
    with open(os.path.join(OUT, sub, name), "wb") as f:
        f.write(data)


envs = {
    "chacha": tool("seal", "chacha20-poly1305", MS, GROUP, 1, "01", 0, "-", TOPIC, "68656c6c6f"),
    "gcm_iat": tool("seal", "aes-256-gcm", MS, GROUP, 1, "a1b2c3", 70000, 1764547200, TOPIC,
                    "7b2274223a32312e357d"),
    "chacha_long_id": tool("seal", "chacha20-poly1305", MS, GROUP, 1, "010203040506",
                           2**40 - 1, -1, TOPIC, ""),
    "other_epoch": tool("seal", "chacha20-poly1305", MS, GROUP, 2, "01", 1, "-", TOPIC, "00"),
}
envs["sign1"] = tool("sign", SEED, b"dev".hex(), TOPIC, envs["chacha"].hex())
for name, env in envs.items():
    write("cose", name, env)
    write("cbor", "cose_" + name, env)

items = {
    "ints": [0, 23, 24, 255, 256, 65535, 65536, 2**32, 2**64 - 1, -1, -24, -25, -2**64],
    "strings": [b"", b"\x00\xff", "", "ü€😀", "moat/1"],
    "map": {1: 24, 4: b"\x01", 6: b"\x00", 10: bytes(12), 15: {6: 1764547200}, "a": [True, None]},
    "nested": [[[[[[[0]]]]]]],
    "tagged": cbor2.CBORTag(16, [b"\xa0", {}, b""]),
}
for name, value in items.items():
    write("cbor", name, cbor2.dumps(value))
