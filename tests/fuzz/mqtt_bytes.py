"""Byte builders shared by the seed-corpus scripts: MQTT's variable byte
integer, length-prefixed strings, big-endian integers and a framed packet."""
import struct


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def s(x):
    x = x.encode() if isinstance(x, str) else x
    return struct.pack(">H", len(x)) + x


def u16(n):
    return struct.pack(">H", n)


def u32(n):
    return struct.pack(">I", n)


def pkt(first, body):
    return bytes([first]) + varint(len(body)) + body
