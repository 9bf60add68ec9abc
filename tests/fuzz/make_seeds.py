#!/usr/bin/python3
"""Writes the seed corpus of the packet fuzzer into corpus/packet/.

Each file is one byte selecting the connection's protocol version (3, 4 or 5;
the fuzzer takes it modulo 3 from 3) followed by one whole MQTT packet: valid
packets of every type and version, and the malformed forms the decoder must
refuse. Run it from anywhere; it rewrites the directory's seed files.
"""
import os

from mqtt_bytes import pkt, s, u16, u32, varint

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "packet")


def props(*items):
    body = b"".join(items)
    return varint(len(body)) + body


def user(k, v):
    return b"\x26" + s(k) + s(v)


def connect(level, flags, rest, name="MQTT"):
    return pkt(0x10, s(name) + bytes([level, flags]) + u16(60) + rest)


V31, V311, V5 = 3, 4, 5
seeds = {}

# CONNECT
seeds["v31-connect"] = (V31, connect(3, 0x02, s("c31"), name="MQIsdp"))
seeds["v311-connect-min"] = (V311, connect(4, 0x02, s("")))
seeds["v311-connect-full"] = (V311, connect(4, 0xEE, s("client") + s("will/t") + s("bye") + s("user") + s("pw")))
seeds["v5-connect-full"] = (V5, connect(5, 0xCE,
    props(b"\x11" + u32(3600), b"\x21" + u16(20), b"\x27" + u32(65536), b"\x22" + u16(10),
          b"\x17\x01", b"\x19\x01", b"\x15" + s("SCRAM"), b"\x16" + s(b"\x01\x02"), user("a", "b"))
    + s("client5")
    + props(b"\x18" + u32(30), b"\x01\x01", b"\x02" + u32(120), b"\x03" + s("text/plain"),
            b"\x08" + s("reply"), b"\x09" + s(b"\xff\x00"), user("w", "1"))
    + s("will/t") + s("bye") + s("user") + s("pw")))
seeds["v5-connect-password-only"] = (V5, connect(5, 0x42, props() + s("c") + s("pw")))
# CONNACK
seeds["v311-connack"] = (V311, pkt(0x20, b"\x01\x00"))
seeds["v311-connack-refused"] = (V311, pkt(0x20, b"\x00\x04"))
seeds["v5-connack-props"] = (V5, pkt(0x20, b"\x00\x00" + props(
    b"\x12" + s("auto-1"), b"\x13" + u16(30), b"\x24\x01", b"\x25\x00", b"\x28\x01", b"\x29\x01",
    b"\x2a\x00", b"\x1a" + s("resp/"), b"\x1c" + s("other"), b"\x1f" + s("ok"),
    b"\x21" + u16(100), b"\x22" + u16(5), b"\x27" + u32(1 << 20), b"\x11" + u32(0), user("k", "v"))))
# PUBLISH
seeds["v311-publish-qos0"] = (V311, pkt(0x30, s("a/b") + b"hello"))
seeds["v311-publish-qos1-retain"] = (V311, pkt(0x33, s("a/b") + u16(1) + b"x"))
seeds["v311-publish-qos2-dup"] = (V311, pkt(0x3C, s("a/b") + u16(65535)))
seeds["v5-publish-props"] = (V5, pkt(0x32, s("s/t") + u16(7) + props(
    b"\x01\x01", b"\x02" + u32(600), b"\x23" + u16(3), b"\x08" + s("r/t"), b"\x09" + s(b"\x00\x01"),
    b"\x03" + s("application/json"), b"\x0b\x01", b"\x0b\xff\xff\xff\x7f", user("x", "1"),
    user("y", "")) + b"{\"t\":21}"))
seeds["v5-publish-alias-only"] = (V5, pkt(0x30, s("") + props(b"\x23" + u16(7)) + b"x"))
seeds["v5-publish-users-between"] = (V5, pkt(0x30, s("a") + props(user("x", "1"), b"\x01\x00", user("y", ""))))
# acknowledgements
for t, name in ((0x40, "puback"), (0x50, "pubrec"), (0x62, "pubrel"), (0x70, "pubcomp")):
    seeds["v311-" + name] = (V311, pkt(t, u16(10)))
    seeds["v5-" + name] = (V5, pkt(t, u16(10) + b"\x10" + props(b"\x1f" + s("why"), user("k", "v"))))
seeds["v5-puback-short"] = (V5, pkt(0x40, u16(1)))
# SUBSCRIBE, SUBACK
seeds["v311-subscribe"] = (V311, pkt(0x82, u16(1) + s("a/+/c") + b"\x01" + s("#") + b"\x02"))
seeds["v5-subscribe"] = (V5, pkt(0x82, u16(2) + props(b"\x0b\x05", user("k", "v"))
                                 + s("s/#") + b"\x2e" + s("$share/g/t") + b"\x10"))
seeds["v311-suback"] = (V311, pkt(0x90, u16(1) + b"\x01\x02\x80"))
seeds["v5-suback"] = (V5, pkt(0x90, u16(2) + props(b"\x1f" + s("partly")) + b"\x01\x9e"))
# UNSUBSCRIBE, UNSUBACK
seeds["v311-unsubscribe"] = (V311, pkt(0xA2, u16(3) + s("a/+/c") + s("$share/g/#")))
seeds["v5-unsubscribe"] = (V5, pkt(0xA2, u16(3) + props(user("k", "v")) + s("a/b")))
seeds["v311-unsuback"] = (V311, pkt(0xB0, u16(3)))
seeds["v5-unsuback"] = (V5, pkt(0xB0, u16(3) + props(b"\x1f" + s("done")) + b"\x00\x11"))
# PING, DISCONNECT, AUTH
seeds["v311-pingreq"] = (V311, pkt(0xC0, b""))
seeds["v311-pingresp"] = (V311, pkt(0xD0, b""))
seeds["v311-disconnect"] = (V311, pkt(0xE0, b""))
seeds["v5-disconnect"] = (V5, pkt(0xE0, b"\x04" + props(b"\x11" + u32(10), b"\x1f" + s("bye"), b"\x1c" + s("b"))))
seeds["v5-auth"] = (V5, pkt(0xF0, b"\x18" + props(b"\x15" + s("SCRAM"), b"\x16" + s("nonce"))))

# malformed and refused forms
seeds["bad-varint-5-bytes"] = (V311, b"\x30\xff\xff\xff\xff\x01" + s("a"))
seeds["bad-varint-overlong"] = (V311, b"\x30\x80\x00")
seeds["bad-rl-max-short"] = (V311, b"\x30\xff\xff\xff\x7f\x00\x03a/b")
seeds["bad-publish-qos3"] = (V311, pkt(0x36, s("a") + u16(1)))
seeds["bad-publish-dup-qos0"] = (V311, pkt(0x38, s("a")))
seeds["bad-publish-id0"] = (V311, pkt(0x32, s("a") + u16(0)))
seeds["bad-publish-qos1-topic-only"] = (V311, pkt(0x32, s("a")))
seeds["bad-subscribe-flags0"] = (V311, pkt(0x80, u16(1) + s("a") + b"\x00"))
seeds["bad-subscribe-no-filters"] = (V5, pkt(0x82, u16(1) + props()))
seeds["bad-subscribe-options-reserved"] = (V5, pkt(0x82, u16(1) + props() + s("a") + b"\x40"))
seeds["bad-subscribe-retain-handling3"] = (V5, pkt(0x82, u16(1) + props() + s("a") + b"\x30"))
seeds["bad-subscribe-no-local-shared"] = (V5, pkt(0x82, u16(1) + props() + s("$share/g/t") + b"\x04"))
seeds["bad-connect-reserved-bit"] = (V311, connect(4, 0x03, s("c")))
seeds["bad-connect-will-qos-no-will"] = (V311, connect(4, 0x0A, s("c")))
seeds["bad-connect-password-no-user"] = (V311, connect(4, 0x42, s("c") + s("p")))
seeds["bad-connect-protocol-name"] = (V311, connect(4, 0x02, s("c"), name="MQTX"))
seeds["bad-connect-level"] = (V311, connect(6, 0x02, s("c")))
seeds["bad-props-duplicate"] = (V5, pkt(0x30, s("a") + props(b"\x01\x00", b"\x01\x00")))
seeds["bad-props-not-allowed"] = (V5, pkt(0x30, s("a") + props(b"\x11" + u32(0))))
seeds["bad-props-1025-users"] = (V5, pkt(0x30, s("a") + props(*([user("", "")] * 1025))))
# decodes: the broker refuses the filter itself with reason 0x8F
seeds["v5-subscribe-share-empty-group"] = (V5, pkt(0x82, u16(1) + props() + s("$share//t") + b"\x00"))
seeds["bad-utf8-surrogate"] = (V311, pkt(0x30, s(b"\xed\xa0\x80")))


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (version, data) in sorted(seeds.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes([version]) + data)
    print("wrote %d seeds to %s" % (len(seeds), OUT))


if __name__ == "__main__":
    main()
