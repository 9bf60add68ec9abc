#!/usr/bin/python3
"""Writes the seed corpus of fuzz_store_record: one sound record of each
type, laid out as src/broker/record.h describes (mode byte 0, key length,
key, value with its CRC-32). Run: make_store_record_seeds.py DIR"""
import os
import struct
import sys
import zlib


def u16s(b):
    return struct.pack("!H", len(b)) + b


def u32s(b):
    return struct.pack("!I", len(b)) + b


def ident(user, cid, roles=(), attrs=()):
    out = b"\x01" + u16s(user) if user is not None else b"\x00"
    out += u16s(cid) + struct.pack("!H", len(roles)) + b"".join(u16s(r) for r in roles)
    return out + struct.pack("!H", len(attrs)) + b"".join(u16s(a) for a in attrs)


def msg(topic, payload, qos=1, retain=False, expiry=None, author=None):
    flags = (1 if retain else 0) | (2 if expiry is not None else 0) | (4 if author else 0)
    out = bytes([qos, flags])
    if expiry is not None:
        out += struct.pack("!Q", expiry)
    out += struct.pack("!Q", 0) + b"\x00" + u32s(topic) + u32s(payload)
    out += u32s(b"") * 4 + struct.pack("!I", 0)
    return out + (author or b"")


def record(key, body):
    value = b"\x01" + body
    return bytes([0, len(key)]) + key + value + struct.pack("!I", zlib.crc32(key + value))


SEEDS = {
    "session": record(b"Sdev-1", b"\x05" + struct.pack("!IQ", 3600, 1796000000000) +
                      ident(b"alice", b"dev-1", [b"sensor"], [b"site", b"north"])),
    "sub": record(b"Bdev-1\x00t/#", b"\x01\x06" + struct.pack("!I", 7) + u32s(b"t/#")),
    "entry_shared": record(b"Qdev-1\x00" + struct.pack("!Q", 12),
                           b"\x01\x00\x01" + struct.pack("!H", 3) + b"\x01" +
                           struct.pack("!IQ", 7, 11)),
    "entry_inline": record(b"Qdev-1\x00" + struct.pack("!Q", 13),
                           b"\x02\x01\x00" + struct.pack("!H", 0) + b"\x00" + struct.pack("!Q", 0) +
                           msg(b"t/x", b"inline", 2, True)),
    "qos2_in": record(b"Idev-1\x00\x00\x07", b""),
    "will": record(b"Wdev-1", struct.pack("!Q", 1796000005000) + msg(b"dev/1/status", b"gone")),
    "msg": record(b"M" + struct.pack("!Q", 11), msg(b"t/x", b"21.5", 1, False, 1796000009000)),
    "retained": record(b"Rt/x", msg(b"t/x", b"kept", 1, True, None,
                                    ident(None, b"dev-2", [], []))),
}

if __name__ == "__main__":
    os.makedirs(sys.argv[1], exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(sys.argv[1], name), "wb") as f:
            f.write(data)
