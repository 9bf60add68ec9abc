#!/usr/bin/python3
"""Writes the seed corpus of the broker fuzzer into corpus/broker/.

Each file is a run of records [client 0-2][length][bytes] fed to three
interleaved broker connections: connects, subscriptions (plain, wildcard,
shared), publishes at every QoS with their acknowledgements, retained
messages, wills, takeover and disconnects, in MQTT 3.1.1 and 5.
"""
import os

from mqtt_bytes import pkt, s, u16, varint

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "broker")


def connect(cid, v=4, will=None, clean=True, props=b""):
    flags = 0x02 if clean else 0
    payload = s(cid)
    if will:
        flags |= 0x04 | 0x08
        payload += (varint(0) if v == 5 else b"") + s(will) + s("gone")
    body = s("MQTT") + bytes([v, flags]) + u16(30)
    body += (varint(len(props)) + props if v == 5 else b"") + payload
    return pkt(0x10, body)


def subscribe(pid, filt, qos=1, v=4, opts=0):
    return pkt(0x82, u16(pid) + (b"\x00" if v == 5 else b"") + s(filt) + bytes([qos | opts]))


def publish(topic, msg, qos=0, pid=1, v=4, retain=False):
    body = s(topic) + (u16(pid) if qos else b"") + (b"\x00" if v == 5 else b"") + msg
    return pkt(0x30 | (qos << 1) | (1 if retain else 0), body)


def ack(kind, pid):
    return pkt(kind, u16(pid))


def rec(client, data):
    out = bytearray()
    for i in range(0, len(data), 255):
        chunk = data[i:i + 255]
        out += bytes([client, len(chunk)]) + chunk
    return bytes(out)


SEEDS = {
    "qos_flows_v311": rec(0, connect("a")) + rec(1, connect("b")) + rec(1, subscribe(1, "t/#", 2))
    + rec(0, publish("t/1", b"x", 1, 5)) + rec(0, publish("t/2", b"y", 2, 6)) + rec(0, ack(0x62, 6))
    + rec(1, ack(0x40, 1)) + rec(1, ack(0x50, 2)) + rec(1, ack(0x62, 2)) + rec(1, ack(0x70, 2)),
    "retained_and_shared_v5": rec(0, connect("a", 5)) + rec(0, publish("r/x", b"keep", 1, 1, 5, True))
    + rec(1, connect("b", 5)) + rec(1, subscribe(1, "$share/g/r/#", 1, 5))
    + rec(2, connect("c", 5)) + rec(2, subscribe(2, "r/+", 1, 5, 0x04 | 0x08))
    + rec(0, publish("r/x", b"", 0, 0, 5, True)) + rec(0, publish("r/y", b"z", 1, 2, 5)),
    "will_and_takeover": rec(0, connect("a", 5, will="w/a", clean=False))
    + rec(1, connect("b")) + rec(1, subscribe(1, "w/#")) + rec(2, connect("a", 5))
    + rec(2, pkt(0xE0, b"")),
    "topic_alias_v5": rec(0, connect("a", 5)) + rec(0, subscribe(1, "#", 0, 5))
    + rec(0, pkt(0x30, s("al/t") + varint(3) + b"\x23\x00\x01" + b"p"))
    + rec(0, pkt(0x30, s("") + varint(3) + b"\x23\x00\x01" + b"q")),
}

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
