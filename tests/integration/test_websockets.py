"""WebSocket listeners (`protocol websockets`, RFC 6455 with the `mqtt`
subprotocol), driven by a hand-written client: the HTTP upgrade, masked frames
and raw MQTT packets inside them, so the tests choose exactly how packets are
cut into frames. Also wss:// (TLS under the WebSocket) with a client certificate.
"""
import base64
import hashlib
import os
import shutil
import signal
import socket
import ssl
import struct
import time
import unittest

import moattest
from moattest import (BrokerTest, Closed, CONNACK, PINGRESP, PUBACK, PUBLISH, SUBACK,
                      packet)
from tlstest import client_ctx, make_certs, tls_refused

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def setUpModule():
    if moattest.is_mosquitto():
        raise unittest.SkipTest("mosquitto 2.0.11 (libwebsockets) cannot open a "
                                "websockets listener bound to 127.0.0.1")


def frame(payload, opcode=OP_BINARY, fin=True, mask=True):
    """One client frame (masked unless mask is False)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def upgrade_request(port, key, protocol="mqtt", extra=""):
    lines = ["GET /mqtt HTTP/1.1", "Host: 127.0.0.1:%d" % port, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
    if protocol is not None:
        lines.append("Sec-WebSocket-Protocol: " + protocol)
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def open_socket(port, ctx=None, timeout=moattest.READ_TIMEOUT_S):
    sk = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sk.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ctx is not None:
        sk = ctx.wrap_socket(sk, server_hostname="127.0.0.1")
    return sk


def read_response(sk, timeout=moattest.READ_TIMEOUT_S):
    """(HTTP response head, bytes after it); head is b"" if closed first."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data:
        sk.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sk.recv(4096)
        if not chunk:
            return data, b""
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


class WsPeer(moattest.Peer):
    """moattest.Peer over a WebSocket: each send() is one masked binary frame;
    received binary frames feed the MQTT reader, a close frame ends it."""

    def __init__(self, port, version=5, timeout=moattest.READ_TIMEOUT_S, ctx=None,
                 protocol="mqtt"):
        self.version, self.timeout = version, timeout
        self.buf, self.next_pid = b"", 1
        self.close_code = None
        self.sock = open_socket(port, ctx, timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(upgrade_request(port, key, protocol))
        head, self.raw = read_response(self.sock, timeout)
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            self.sock.close()
            raise AssertionError("upgrade refused: %r" % head)
        want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        hdrs = {k.strip().lower(): v.strip() for k, v in
                (line.split(":", 1) for line in lines[1:] if ":" in line)}
        assert hdrs.get("sec-websocket-accept") == want, head
        assert hdrs.get("sec-websocket-protocol") == protocol.split(",")[0].strip(), head

    def send(self, data):
        self.sock.sendall(frame(data))

    def send_frames(self, *frames):
        self.sock.sendall(b"".join(frames))

    def _fill(self, deadline):
        while True:
            got = self._parse_frame()
            if got:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("read timed out")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                data = b""
            if not data:
                raise Closed("connection closed by broker")
            self.raw += data

    def _parse_frame(self):
        """Consumes one whole server frame from self.raw; True if it added MQTT
        bytes. Raises Closed on a close frame (code in self.close_code)."""
        while True:
            r = self.raw
            if len(r) < 2:
                return False
            op, n, i = r[0] & 0x0F, r[1] & 0x7F, 2
            assert not r[1] & 0x80, "server frames must not be masked"
            if n == 126:
                if len(r) < 4:
                    return False
                n, i = struct.unpack("!H", r[2:4])[0], 4
            elif n == 127:
                if len(r) < 10:
                    return False
                n, i = struct.unpack("!Q", r[2:10])[0], 10
            if len(r) < i + n:
                return False
            payload, self.raw = r[i:i + n], r[i + n:]
            if op in (OP_BINARY, OP_CONT):
                self.buf += payload
                if payload:
                    return True
            elif op == OP_CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 \
                    else None
                raise Closed("WebSocket close %s" % self.close_code)
            elif op == OP_PING:
                self.sock.sendall(frame(payload, OP_PONG))
            else:
                raise AssertionError("unexpected frame opcode %d" % op)

    def disconnect(self, rc=0, props=None):
        body = b""
        if self.version == 5 and (rc or props):
            body = bytes([rc]) + moattest.props_block(props)
        self.send(packet(moattest.DISCONNECT, 0, body))
        try:
            self.expect_closed()
        finally:
            self.close()


class WebSocketTest(BrokerTest):
    CONFIG = "protocol websockets\n"

    def peer(self, version=5, **kw):
        p = WsPeer(self.port, version=version, **kw)
        self.peers.append(p)
        return p

    def upgrade_status(self, protocol, extra=""):
        sk = open_socket(self.port)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            sk.sendall(upgrade_request(self.port, key, protocol, extra))
            head, _ = read_response(sk)
            return head.split(b"\r\n")[0].decode("latin-1")
        finally:
            sk.close()


SLOW_READER_CONFIG = "max_inflight_messages 100\n"


def check_slow_reader(test, count=60, size=100000):
    """A QoS 1 subscriber that reads nothing while <count> messages of <size>
    random bytes are published gets them all, intact and in order, once it reads:
    the broker's partial writes keep the stream whole. With max_inflight_messages
    100, 6 MB are due at once, more than loopback's 4 MB send buffer plus the
    receive window, so the broker's writes do hit a full socket."""
    sub = test.client("slow-sub")
    sub.subscribe("bulk/t", qos=1)
    pub = test.client("bulk-pub")
    sent = [os.urandom(size) for _ in range(count)]
    for payload in sent:
        pub.publish("bulk/t", payload, qos=1)
    time.sleep(0.3)
    got = [sub.expect_publish(timeout=8).payload for _ in range(count)]
    test.assertEqual(len(got), count)
    for i, (a, b) in enumerate(zip(got, sent)):
        test.assertTrue(a == b, "message %d differs (len %d vs %d)" % (i, len(a), len(b)))
    sub.expect_nothing(timeout=0.3)


class WebSockets(WebSocketTest):

    def test_pub_sub_qos1_over_websocket(self):
        sub = self.client("ws-sub")
        self.assertEqual(sub.subscribe("ws/t", qos=1), [1])
        pub = self.client("ws-pub")
        pub.publish("ws/t", b"over ws", qos=1)
        p = sub.expect_publish()
        self.assertEqual((p.topic, p.qos, p.payload), ("ws/t", 1, b"over ws"))
        sub.disconnect()
        pub.disconnect()

    def test_packet_split_across_frames(self):
        a = self.peer()
        c = a.connect_bytes("split")
        # CONNECT in three separate binary messages
        a.send_frames(frame(c[:3]), frame(c[3:11]), frame(c[11:]))
        self.assertEqual(a.expect(CONNACK).rc, 0)
        # SUBSCRIBE in one fragmented message: binary + continuation frames
        s = a.subscribe_bytes([("sp/#", 1)], pid=7)
        a.send_frames(frame(s[:1], fin=False), frame(s[1:5], OP_CONT, fin=False),
                      frame(s[5:], OP_CONT))
        ack = a.expect(SUBACK)
        self.assertEqual((ack.pid, ack.codes), (7, [1]))
        # a PUBLISH cut into one frame per byte
        b = self.client("split-pub")
        pub = b.publish_bytes("sp/x", b"x" * 300, qos=1, pid=9)
        b.send_frames(*[frame(pub[i:i + 1]) for i in range(len(pub))])
        self.assertEqual(b.expect(PUBACK).pid, 9)
        p = a.expect_publish()
        self.assertEqual((p.topic, p.payload), ("sp/x", b"x" * 300))

    def test_several_packets_in_one_frame(self):
        a = self.peer()
        pingreq = packet(moattest.PINGREQ, 0, b"")
        a.send(a.connect_bytes("many") + a.subscribe_bytes([("mf/t", 1)], pid=1) +
               a.publish_bytes("mf/t", b"in one frame", qos=1, pid=2) + pingreq)
        self.assertEqual(a.expect(CONNACK).rc, 0)
        self.assertEqual(a.expect(SUBACK).codes, [1])
        rest = [a.recv() for _ in range(3)]
        self.assertEqual(sorted(p.type for p in rest), sorted([PUBACK, PUBLISH, PINGRESP]))
        delivered = [p for p in rest if p.type == PUBLISH][0]
        self.assertEqual(delivered.payload, b"in one frame")
        # and two PUBLISHes plus a PINGREQ in one frame from a connected client
        b = self.client("many-pub")
        b.send(b.publish_bytes("mf/t", b"one", qos=1, pid=5) +
               b.publish_bytes("mf/t", b"two", qos=1, pid=6) + pingreq)
        got = [b.recv() for _ in range(3)]
        self.assertEqual([(p.type, p.pid) for p in got],
                         [(PUBACK, 5), (PUBACK, 6), (PINGRESP, None)])
        a.send(a.ack_bytes(PUBACK, delivered.pid))
        self.assertEqual([a.expect_publish().payload for _ in range(2)], [b"one", b"two"])

    def test_frame_shorter_than_remaining_length_waits(self):
        """CVE-2026-25627: the end of a frame is not the end of an MQTT packet.
        A PUBLISH whose remaining length runs past its frame is completed by the
        next frames; meanwhile the connection just waits."""
        sub = self.client("short-sub")
        sub.subscribe("short/t", qos=1)
        pub = self.client("short-pub")
        data = pub.publish_bytes("short/t", bytes(range(256)) * 4, qos=1, pid=3)
        pub.send(data[:40])
        pub.expect_nothing(timeout=1.0)      # no error, no close, no PUBACK
        sub.expect_nothing(timeout=0.1)
        pub.send(data[40:41])                # header of the packet is long done
        pub.expect_nothing(timeout=0.3)
        pub.send(data[41:] + packet(moattest.PINGREQ, 0, b""))
        self.assertEqual(pub.expect(PUBACK).pid, 3)
        pub.expect(PINGRESP)
        self.assertEqual(sub.expect_publish().payload, bytes(range(256)) * 4)

    def test_frame_ending_inside_fixed_header_waits(self):
        pub = self.client("hdr")
        data = pub.publish_bytes("short/h", b"y" * 200, qos=1, pid=4)
        pub.send(data[:1])                   # type byte only
        pub.expect_nothing(timeout=0.5)
        pub.send(data[1:2])                  # first byte of a 2-byte remaining length
        pub.expect_nothing(timeout=0.5)
        pub.send(data[2:])
        self.assertEqual(pub.expect(PUBACK).pid, 4)

    def test_unmasked_frame_closes(self):
        a = self.client("unmasked")
        a.send_frames(frame(packet(moattest.PINGREQ, 0, b""), mask=False))
        with self.assertRaises(Closed):
            p = a.recv()
            raise AssertionError("answered an unmasked frame: %r" % p)
        self.assertEqual(a.close_code, 1002)
        self.assert_serves()

    def raw_frame(self, p, timeout=moattest.READ_TIMEOUT_S):
        """The next whole server frame read raw from peer p: (opcode, payload)."""
        deadline = time.monotonic() + timeout
        while True:
            r = p.raw
            if len(r) >= 2 and (r[1] & 0x7F) < 126 and len(r) >= 2 + (r[1] & 0x7F):
                n = r[1] & 0x7F
                p.raw = r[2 + n:]
                return r[0] & 0x0F, r[2:2 + n]
            p.sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = p.sock.recv(4096)
            if not data:
                raise Closed("closed")
            p.raw += data

    def test_ping_answered_with_pong_inside_fragmented_message(self):
        a = self.client("pinger")
        a.send_frames(frame(b"hello", OP_PING))
        self.assertEqual(self.raw_frame(a), (OP_PONG, b"hello"))
        # a control frame between the fragments of one MQTT-carrying message
        pingreq = packet(moattest.PINGREQ, 0, b"")
        a.send_frames(frame(pingreq[:1], fin=False), frame(b"mid", OP_PING),
                      frame(pingreq[1:], OP_CONT))
        self.assertEqual(self.raw_frame(a), (OP_PONG, b"mid"))
        self.assertEqual(self.raw_frame(a), (OP_BINARY, bytes([0xD0, 0])))

    def test_client_close_frame_echoed_and_connection_closed(self):
        a = self.client("closer")
        a.send_frames(frame(struct.pack("!H", 1000), OP_CLOSE))
        with self.assertRaises(Closed):
            a.recv()
        self.assertEqual(a.close_code, 1000)
        self.assert_serves()

    def test_text_frame_closes_1003(self):
        a = self.client("texter")
        a.send_frames(frame(packet(moattest.PINGREQ, 0, b""), OP_TEXT))
        with self.assertRaises(Closed):
            a.recv()
        self.assertEqual(a.close_code, 1003)
        self.assert_serves()

    def test_huge_declared_frame_length_closes_1009(self):
        """A header announcing 2^40 payload bytes: closed, nothing allocated up
        front (the broker keeps serving, ASan sees no leak)."""
        a = self.client("huge")
        head = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 40) + os.urandom(4)
        a.send_frames(head + b"\x30" * 64)
        # 1009 (frame over the limit) today; a broker streaming frames would find
        # the bytes a malformed PUBLISH and close as well
        a.expect_closed()
        self.assertIn(a.close_code, (1009, 1002, 1000))
        self.assert_serves()

    config_for_test_packet_over_max_packet_size_closes = "max_packet_size 1000\n"

    def test_packet_over_max_packet_size_closes(self):
        a = self.client("big")
        a.send(a.publish_bytes("big/t", b"z" * 5000, qos=0))
        seen = a.expect_closed()
        # the frame (1009) or the MQTT packet (v5 DISCONNECT 0x95) is over the limit
        self.assertTrue(a.close_code == 1009 or (seen is not None and seen.rc == 0x95),
                        (a.close_code, seen))
        self.assert_serves()

    def test_bad_websocket_version_426(self):
        sk = open_socket(self.port)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            sk.sendall(upgrade_request(self.port, key).replace(b"Version: 13", b"Version: 8"))
            head, _ = read_response(sk)
        finally:
            sk.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 426"), head)
        self.assertIn(b"Sec-WebSocket-Version: 13", head)

    config_for_test_large_messages_to_slow_reader = SLOW_READER_CONFIG

    def test_large_messages_to_slow_reader(self):
        check_slow_reader(self)

    def test_upgrade_and_connect_in_one_segment(self):
        """The client's first frame right behind its upgrade request, one send."""
        sk = open_socket(self.port)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            p = moattest.Peer.__new__(WsPeer)
            p.version, p.timeout, p.buf, p.next_pid, p.close_code = 5, 3.0, b"", 1, None
            p.sock = sk
            sk.sendall(upgrade_request(self.port, key) + frame(p.connect_bytes("pipelined")))
            head, p.raw = read_response(sk)
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
            self.assertEqual(p.expect(CONNACK).rc, 0)
            p.ping()
        finally:
            sk.close()

    def test_upgrade_and_large_frame_in_one_segment(self):
        """Request plus 20 kB of frames in one send: the bytes past the request
        (more than the 8 KiB request buffer) all reach MQTT."""
        sk = open_socket(self.port)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            p = moattest.Peer.__new__(WsPeer)
            p.version, p.timeout, p.buf, p.next_pid, p.close_code = 5, 3.0, b"", 1, None
            p.sock = sk
            big = os.urandom(20000)
            sk.sendall(upgrade_request(self.port, key) +
                       frame(p.connect_bytes("pipelined-big") +
                             p.subscribe_bytes([("pb/t", 1)], pid=1) +
                             p.publish_bytes("pb/t", big, qos=1, pid=2)))
            head, p.raw = read_response(sk)
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
            self.assertEqual(p.expect(CONNACK).rc, 0)
            self.assertEqual(p.expect(SUBACK).codes, [1])
            got = sorted([p.recv(), p.recv()], key=lambda k: k.type)
            self.assertEqual((got[0].type, got[0].payload), (PUBLISH, big))
            self.assertEqual((got[1].type, got[1].pid), (PUBACK, 2))
        finally:
            sk.close()

    def test_empty_frames_between_packet_parts(self):
        a = self.client("empty-frames")
        pingreq = packet(moattest.PINGREQ, 0, b"")
        a.send_frames(frame(b""), frame(pingreq[:1]), frame(b""),
                      frame(b"", fin=False), frame(pingreq[1:], OP_CONT, fin=False),
                      frame(b"", OP_CONT))
        a.expect(PINGRESP)
        a.ping()

    config_for_test_small_packets_in_a_frame_over_max_packet_size = "max_packet_size 1000\n"

    def test_small_packets_in_a_frame_over_max_packet_size(self):
        """[MQTT-6.0.0-2] packets are not aligned on frames: three 600-byte
        PUBLISHes in one 1800-byte frame are each within max_packet_size 1000."""
        sub = self.client("mp-sub")
        sub.subscribe("mp/t", qos=1)
        a = self.client("mp-pub")
        a.send(b"".join(a.publish_bytes("mp/t", bytes([i]) * 580, qos=1, pid=10 + i)
                        for i in range(3)))
        self.assertEqual([a.expect(PUBACK).pid for _ in range(3)], [10, 11, 12])
        self.assertEqual([sub.expect_publish().payload for _ in range(3)],
                         [bytes([i]) * 580 for i in range(3)])

    def test_upgrade_request_byte_by_byte(self):
        sk = open_socket(self.port)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            for b in upgrade_request(self.port, key):
                sk.sendall(bytes([b]))
            head, _ = read_response(sk)
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        finally:
            sk.close()

    def test_oversized_upgrade_request_refused(self):
        sk = open_socket(self.port)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            big = "X-Filler: %s\r\n" % ("a" * 9000)
            try:
                sk.sendall(upgrade_request(self.port, key, extra=big))
            except (BrokenPipeError, ConnectionResetError):
                pass
            head, _ = read_response(sk)
            self.assertTrue(head.startswith(b"HTTP/1.1 431"), head)
        finally:
            sk.close()
        self.assert_serves()

    config_for_test_unfinished_upgrade_closed_by_connect_timeout = "connect_timeout 1\n"

    def test_unfinished_upgrade_closed_by_connect_timeout(self):
        sk = open_socket(self.port, timeout=4)
        try:
            sk.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            start = time.monotonic()
            try:
                while sk.recv(4096):
                    pass
            except socket.timeout:
                self.fail("a half-sent upgrade request kept the connection open for 4 s")
            except ConnectionResetError:
                pass
            self.assertLess(time.monotonic() - start, 4)
        finally:
            sk.close()

    def test_shutdown_sends_disconnect_0x8b_then_close_frame(self):
        p = self.client("at-shutdown")
        self.broker.proc.send_signal(signal.SIGTERM)
        p.expect_closed(timeout=5, disconnect_rc=0x8B)
        self.broker.proc.wait(timeout=10)   # one SIGTERM only: exit 0 checked below
        self.assertIn(p.close_code, (1000, 1001, None))
        self.broker.stop(check=True)

    def test_browser_style_upgrade_headers(self):
        """Firefox sends "Connection: keep-alive, Upgrade" and several protocols."""
        status = self.upgrade_status("mqttv3.1, mqtt",
                                     "Origin: http://127.0.0.1\r\nUser-Agent: test\r\n")
        self.assertTrue(status.startswith("HTTP/1.1 101"), status)
        sk = open_socket(self.port)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            sk.sendall(upgrade_request(self.port, key).replace(
                b"Connection: Upgrade", b"Connection: keep-alive, Upgrade"))
            head, _ = read_response(sk)
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        finally:
            sk.close()

    def test_missing_mqtt_subprotocol_400(self):
        self.assertTrue(self.upgrade_status(None).startswith("HTTP/1.1 400"))
        self.assertTrue(self.upgrade_status("chat, superchat").startswith("HTTP/1.1 400"))
        self.assertTrue(self.upgrade_status("mqtt").startswith("HTTP/1.1 101"))
        self.assert_serves()

    def test_mqttv31_subprotocol_accepted(self):
        p = self.peer(version=3, protocol="mqttv3.1")
        self.assertEqual(p.connect("v31").rc, 0)


class SecureWebSockets(WebSocketTest):
    """wss://: TLS with require_certificate under the WebSocket listener."""

    @classmethod
    def setUpClass(cls):
        cls.certs = make_certs()
        cls.CONFIG = ("protocol websockets\ncertfile {0}/server.crt\nkeyfile {0}/server.key\n"
                      "cafile {0}/ca.crt\nrequire_certificate true\n"
                      "use_identity_as_username true\naudit_log file {0}/audit.log\n"
                      .format(cls.certs))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def peer(self, version=5, **kw):
        kw.setdefault("ctx", client_ctx(self.certs, "client"))
        return super().peer(version, **kw)

    def test_wss_with_client_certificate(self):
        sub = self.client("wss-sub")
        sub.subscribe("wss/t", qos=1)
        pub = self.client("wss-pub")
        pub.publish("wss/t", b"secure ws", qos=1)
        self.assertEqual(sub.expect_publish().payload, b"secure ws")
        self.assertEqual(sub.sock.version()[:5], "TLSv1")
        with open(os.path.join(self.certs, "audit.log")) as f:
            self.assertIn('"username":"client1"', f.read())

    def test_wss_without_client_certificate_refused(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=version.name):
                try:
                    p = self.peer(ctx=client_ctx(self.certs, None, version))
                except (ssl.SSLError, ConnectionResetError, BrokenPipeError, AssertionError):
                    continue        # refused in the handshake or before the 101
                with self.assertRaises(Closed):
                    p.connect("nocert")
        self.assert_serves()

    config_for_test_wss_large_messages_to_slow_reader = SLOW_READER_CONFIG

    def test_wss_large_messages_to_slow_reader(self):
        check_slow_reader(self)

    def test_wss_wrong_ca_certificate_refused_in_handshake(self):
        why = tls_refused(self.port, client_ctx(self.certs, "wrong", ssl.TLSVersion.TLSv1_2))
        self.assertIsNotNone(why)
        self.assertTrue(why.startswith("handshake"), why)
        self.assert_serves()


if __name__ == "__main__":
    moattest.main()
