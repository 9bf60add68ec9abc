"""The broker process: configuration errors, defaults, $SYS, bad input handling
(connect timeout, oversized CONNECT, v5 reason codes), slow consumers, worker
threads and a clean SIGTERM."""
import os
import socket
import subprocess
import tempfile
import time

import moattest as mt
from moattest import packet, s, PUBLISH


def run_moatd(args, timeout=10):
    exe = os.environ.get("MOATD")
    if not exe:
        raise mt.unittest.SkipTest("MOATD is not set (path to moatd)")
    return subprocess.run([exe] + args, capture_output=True, text=True, timeout=timeout)


class TestConfigErrors(mt.unittest.TestCase):
    """A bad line stops start-up with FILE:LINE: what is wrong and how to fix it."""

    def check(self, text, line, *words):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write(text)
        try:
            r = run_moatd(["-c", f.name])
        finally:
            os.unlink(f.name)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("%s:%d:" % (f.name, line), r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)

    def test_unknown_option(self):
        self.check("allow_anonymous true\nmax_inflight_message 3\n", 2, "unknown option",
                   "max_inflight_message")

    def test_malformed_number(self):
        self.check("# comment\n\nmax_keepalive ten\n", 3, "max_keepalive", "ten")

    def test_number_out_of_range(self):
        self.check("listener 70000\n", 1, "listener port")

    def test_bad_boolean(self):
        self.check("allow_anonymous maybe\n", 1, "allow_anonymous")

    def test_later_issue_option_not_supported_yet(self):
        self.check("password_file /etc/passwd\n", 1, "not supported yet")

    def test_missing_file(self):
        r = run_moatd(["-c", "/nonexistent/moatd.conf"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/moatd.conf", r.stderr)

    def test_bad_port_flag(self):
        r = run_moatd(["-p", "0"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("-p", r.stderr)


class TestDefaults(mt.unittest.TestCase):

    def test_no_config_listens_on_loopback_1883_and_says_so(self):
        exe = os.environ.get("MOATD")
        if not exe:
            self.skipTest("MOATD is not set")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", 1883)) == 0:
                self.skipTest("port 1883 is in use here")
        p = subprocess.Popen([exe], stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", 1883), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.05)
            else:
                self.fail("moatd did not listen on 127.0.0.1:1883")
        finally:
            p.terminate()
            _, err = p.communicate(timeout=15)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("listening on 127.0.0.1:1883 only", err)


class TestServer(mt.BrokerTest):

    CONFIG = "sys_interval 1\nconnect_timeout 2\nmax_connect_packet_size 1024\n"

    def test_sys_topics(self):
        sub = self.client("sys")
        sub.subscribe("$SYS/broker/#", qos=0)
        got = {}
        deadline = time.monotonic() + 4
        # the retained values come first (published before this client connected),
        # then the next sys_interval brings live ones
        while time.monotonic() < deadline and (len(got) < 12 or
                                               got["$SYS/broker/clients/connected"] == b"0"):
            p = sub.expect_publish(timeout=3)
            got[p.topic] = p.payload
        for t in ("version", "uptime", "clients/connected", "messages/received",
                  "messages/sent", "bytes/received", "bytes/sent",
                  "publish/messages/dropped", "subscriptions/count"):
            self.assertIn("$SYS/broker/" + t, got)
        self.assertTrue(got["$SYS/broker/version"].startswith(b"moatd "))
        self.assertGreaterEqual(int(got["$SYS/broker/clients/connected"]), 1)

    def test_clients_may_not_publish_to_sys(self):
        sub = self.client("sys")
        sub.subscribe("$SYS/broker/fake", qos=1)
        p = self.client("pub")
        p.send(p.publish_bytes("$SYS/broker/fake", b"x", qos=1, pid=1))
        self.assertEqual(p.expect(mt.PUBACK).rc, 0x87)
        sub.expect_nothing(0.3)

    def test_silent_client_closed_at_connect_timeout(self):
        sk = socket.create_connection(("127.0.0.1", self.port))
        sk.settimeout(5)
        t0 = time.monotonic()
        self.assertEqual(sk.recv(1), b"")
        self.assertGreaterEqual(time.monotonic() - t0, 1.5)
        sk.close()

    def test_byte_by_byte_connect_closed_at_connect_timeout(self):
        p = self.peer()
        data = p.connect_bytes("slowpoke") + b"\x00" * 200
        t0 = time.monotonic()
        try:
            for b in data:
                p.send(bytes([b]))
                time.sleep(0.05)
        except OSError:
            pass
        p.expect_closed(timeout=5)
        self.assertLess(time.monotonic() - t0, 4.5)

    def test_oversized_connect_refused_before_connack(self):
        p = self.peer()
        p.send(p.connect_bytes("big", props={"user_property": [("k", "v" * 2000)]}))
        p.expect_closed()
        self.assert_serves()

    def test_malformed_packet_v5_disconnect_0x81_others_unaffected(self):
        other = self.client("other")
        other.subscribe("t", qos=1)
        bad = self.client("bad")
        bad.send(packet(PUBLISH, 6, s("t")))   # QoS 3 is malformed
        bad.expect_closed(disconnect_rc=0x81)
        pub = self.client("pub")
        pub.publish("t", b"fine", qos=1)
        self.assertEqual(other.expect_publish().payload, b"fine")

    def test_malformed_connect_v5_gets_connack_with_reason(self):
        p = self.peer()
        body = s("MQTT") + bytes([5, 0x03]) + b"\x00\x3c\x00" + s("x")   # reserved flag set
        p.send(packet(mt.CONNECT, 0, body))
        ack = p.expect(mt.CONNACK)
        self.assertEqual(ack.rc, 0x81)
        self.assertIn("reason_string", ack.props)
        p.expect_closed()

    def test_slow_consumer_does_not_stall_others(self):
        slow = self.peer()
        slow.connect("slow")
        slow.subscribe("bulk", qos=0)
        fast = self.client("fast")
        fast.subscribe("bulk", qos=0)
        pub = self.client("pub")
        payload = b"x" * 65536
        t0 = time.monotonic()
        for i in range(400):   # 26 MB; the slow one never reads, the fast one keeps up
            pub.send(pub.publish_bytes("bulk", payload + b"%d" % i, qos=0))
            self.assertEqual(fast.expect_publish(timeout=3).payload, payload + b"%d" % i)
        self.assertLess(time.monotonic() - t0, 20)
        sys_sub = self.client("sys")
        sys_sub.subscribe("$SYS/broker/publish/messages/dropped", qos=0)
        deadline = time.monotonic() + 3
        dropped = 0
        while time.monotonic() < deadline and dropped == 0:
            dropped = int(sys_sub.expect_publish(timeout=2).payload)
        self.assertGreater(dropped, 0)

    def test_sigterm_tells_v5_clients_and_exits_zero(self):
        p = self.client("bye")
        self.broker.proc.send_signal(mt.signal.SIGTERM)
        p.expect_closed(timeout=10, disconnect_rc=0x8B)
        self.broker.proc.wait(timeout=10)
        self.assertEqual(self.broker.proc.returncode, 0)


class TestWorkers(mt.BrokerTest):
    """Several workers: clients land on different loops and still meet."""

    CONFIG = "threads 4\n"

    def test_many_clients_across_workers(self):
        subs = [self.client("s%d" % i) for i in range(12)]
        for i, sb in enumerate(subs):
            sb.subscribe("w/%d" % (i % 3), "w/all", qos=1)
        pubs = [self.client("p%d" % i) for i in range(6)]
        for i, pb in enumerate(pubs):
            pb.publish("w/all", b"a%d" % i, qos=1)
            pb.publish("w/%d" % (i % 3), b"b%d" % i, qos=2)
        for i, sb in enumerate(subs):
            got = sorted(sb.expect_publish(timeout=5).payload for _ in range(8))
            want = sorted([b"a%d" % k for k in range(6)] +
                          [b"b%d" % k for k in range(6) if k % 3 == i % 3])
            self.assertEqual(got, want)

    def test_persistent_session_resumes_on_any_worker(self):
        for round_ in range(12):
            p = self.peer()
            ack = p.connect("roamer", clean=False, props={"session_expiry": 60})
            self.assertEqual(ack.session_present, 1 if round_ else 0)
            if round_ == 0:
                p.subscribe("roam", qos=1)
            else:
                self.assertEqual(p.expect_publish().payload, b"%d" % round_)
            p.disconnect()
            pub = self.client("roam-pub%d" % round_)
            pub.publish("roam", b"%d" % (round_ + 1), qos=1)
            pub.disconnect()


if __name__ == "__main__":
    mt.main()
