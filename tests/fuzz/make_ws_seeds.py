#!/usr/bin/python3
"""Writes the seed corpus of the WebSocket fuzzer into corpus/ws/.

Byte 0 of each seed is the fuzzer's set-up byte (bit 0: valid upgrade first;
bits 1-5: max_frame = 2^n; bits 6-7: chunk size), the rest is client bytes:
upgrade requests (good and bad) or masked frames. Includes CVE-2026-25627
(NanoMQ: a WebSocket frame shorter than the MQTT remaining length it
carries) and an MQTT packet split across frames.
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "ws")
MASK = b"\x12\x34\x56\x78"
REQ = (b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mqtt\r\n"
       b"Sec-WebSocket-Version: 13\r\n\r\n")
CONNECT = bytes([0x10, 0x0D, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 1]) + b"a"


def frame(b0, payload, mask=True, length=None):
    n = len(payload) if length is None else length
    if n < 126:
        hdr = bytes([b0, (0x80 if mask else 0) | n])
    elif n <= 0xFFFF:
        hdr = bytes([b0, (0x80 if mask else 0) | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([b0, (0x80 if mask else 0) | 127]) + struct.pack(">Q", n)
    if not mask:
        return hdr + payload
    return hdr + MASK + bytes(c ^ MASK[i % 4] for i, c in enumerate(payload))


def setup(upgrade=True, max_pow=0, chunk=3):
    return bytes([(1 if upgrade else 0) | (max_pow << 1) | (chunk << 6)])


SEEDS = {
    "upgrade-only": setup(False) + REQ,
    "upgrade-bytewise": setup(False, chunk=0) + REQ + frame(0x82, CONNECT),
    "upgrade-no-version": setup(False) + REQ.replace(b"Sec-WebSocket-Version: 13\r\n", b""),
    "upgrade-no-protocol": setup(False) + REQ.replace(b"Protocol: mqtt", b"Protocol: chat"),
    "upgrade-oversize": setup(False, chunk=2) + b"GET / HTTP/1.1\r\nX: " + b"a" * 8200,
    "connect-one-frame": setup() + frame(0x82, CONNECT),
    "connect-split-frames": setup() + frame(0x02, CONNECT[:3]) + frame(0x00, CONNECT[3:9])
    + frame(0x80, CONNECT[9:]),
    "many-packets-one-frame": setup() + frame(0x82, CONNECT + b"\xc0\x00" * 5),
    # CVE-2026-25627: the frame ends before the MQTT remaining length does
    "cve-2026-25627-short-frame": setup() + frame(0x82, bytes([0x30, 0x7F, 0x00, 0x01]) + b"t"),
    "cve-2026-25627-rl-over-frame": setup(chunk=0) + frame(0x82, bytes([0x30, 0xFF, 0xFF, 0xFF, 0x7F]))
    + frame(0x88, b"\x03\xe8"),
    "ping-in-fragments": setup() + frame(0x02, CONNECT[:4]) + frame(0x89, b"ping")
    + frame(0x80, CONNECT[4:]),
    "pong-and-close": setup() + frame(0x8A, b"x") + frame(0x88, b"\x03\xe8bye"),
    "text-frame": setup() + frame(0x81, b"hello"),
    "unmasked": setup() + frame(0x82, b"\xc0\x00", mask=False),
    "huge-length": setup(max_pow=31) + frame(0x82, b"\xab" * 10, length=1 << 62),
    "top-bit-length": setup(max_pow=31) + frame(0x82, b"\xab" * 4, length=1 << 63),
    "over-max-frame": setup(max_pow=4) + frame(0x82, b"\x00" * 17),
    "ext16": setup(chunk=1) + frame(0x82, b"\xc0\x00" * 100),
}

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
