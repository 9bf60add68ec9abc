#!/usr/bin/python3
"""Writes the seed corpus of the queue-file fuzzer into corpus/queue_file/.

Each seed is a mode byte (odd: the fuzzer recomputes the record CRCs before
replay) followed by a libmoat queue file (docs/client.md): the 8-byte header, then
records [magic "MQ"][len u32][crc32 u32][kind u8][seq u64][add: version u8,
PUBLISH]. Valid files with adds, acks and releases in both MQTT versions,
and the damaged forms replay must cut off: a torn tail, a CRC mismatch, a
bad magic, a seq that does not grow. Run it from anywhere.
"""
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "queue_file")
HEADER = b"MOATQF1\n"
ADD, ACK, REL = 1, 2, 3


def s(text):
    b = text.encode()
    return struct.pack("!H", len(b)) + b


def publish(topic, payload, pid, qos=1, version=5, props=b""):
    body = s(topic) + struct.pack("!H", pid)
    if version == 5:
        body += bytes([len(props)]) + props
    body += payload
    return bytes([0x30 | qos << 1, len(body)]) + body


def record(kind, seq, rest=b"", crc=None):
    body = bytes([kind]) + struct.pack("!Q", seq) + rest
    c = zlib.crc32(body) if crc is None else crc
    return struct.pack("!HII", 0x4D51, len(body), c) + body


def add(seq, pkt, version=5):
    return record(ADD, seq, bytes([version]) + pkt)


seeds = {
    "empty": HEADER,
    "one-add-v5": HEADER + add(1, publish("a/b", b"hello", 1)),
    "one-add-v311": HEADER + add(1, publish("a/b", b"hello", 1, version=4), version=4),
    "adds-acks-rel": HEADER + add(1, publish("t", b"1", 1)) + add(2, publish("t", b"2", 2, qos=2))
    + add(3, publish("t", b"3", 3)) + record(ACK, 1) + record(REL, 2) + record(ACK, 3),
    "props-v5": HEADER + add(7, publish("t/p", b"x", 9, props=b"\x02\x00\x00\x00\x1e\x03"
                                       + s("text/plain"))),
    "torn-tail": (HEADER + add(1, publish("t", b"1", 1)) + add(2, publish("t", b"2", 2)))[:-4],
    "crc-mismatch": HEADER + add(1, publish("t", b"1", 1)) + record(ACK, 1, crc=0x12345678),
    "bad-magic": HEADER + b"\x00\x00" + add(1, publish("t", b"1", 1))[2:],
    "seq-not-growing": HEADER + add(2, publish("t", b"1", 1)) + add(2, publish("t", b"2", 2)),
    "qos0-add": HEADER + add(1, publish("t", b"1", 1, qos=0)),
    "foreign": b"# not a queue file\n",
}

os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    for mode in (0, 1):
        if mode and name in ("crc-mismatch", "foreign", "empty"):
            continue
        with open(os.path.join(OUT, "%s-%d" % (name, mode)), "wb") as f:
            f.write(bytes([mode]) + data)
