"""The broker process: configuration errors, defaults, $SYS, bad input handling
(connect timeout, oversized CONNECT, v5 reason codes), slow consumers, worker
threads and a clean SIGTERM."""
import os
import select
import socket
import subprocess
import tempfile
import time

import moattest as mt
from moattest import packet, s, CONNACK, PUBLISH


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
        self.check("include_dir /etc/moat/conf.d\n", 1, "not supported yet")

    def test_bridge_errors_name_the_line(self):
        self.check("connection bridge-to-cloud\n", 1, "connection bridge-to-cloud has no address")
        self.check("connection c\naddress h\nbridge_psk 00ff\n", 3,
                   "bridge option bridge_psk is not supported by moatd", "use certificates")

    def test_tls_option_without_certfile(self):
        self.check("listener 8883\ncafile /etc/ssl/ca.pem\n", 1, "no certfile", "keyfile")

    def test_certfile_without_keyfile(self):
        self.check("allow_anonymous true\nlistener 8883\ncertfile /x.pem\n", 2, "no keyfile")

    def test_require_certificate_without_ca(self):
        self.check("listener 8883\ncertfile /x.pem\nkeyfile /k.pem\nrequire_certificate true\n",
                   1, "require_certificate needs cafile")

    def test_identity_as_username_without_require_certificate(self):
        self.check("listener 8883\ncertfile /x.pem\nkeyfile /k.pem\ncafile /c.pem\n"
                   "use_identity_as_username true\n", 1, "need require_certificate")

    def test_unknown_protocol(self):
        self.check("listener 9001\nprotocol http\n", 2, "protocol expects mqtt or websockets")

    def test_bad_audit_log(self):
        self.check("audit_log stdout\n", 1, "audit_log expects")

    def test_missing_file(self):
        r = run_moatd(["-c", "/nonexistent/moatd.conf"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/moatd.conf", r.stderr)

    def test_bad_port_flag(self):
        r = run_moatd(["-p", "0"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("-p", r.stderr)


def listening_addresses(pid):
    """The local addresses of the TCP sockets process <pid> listens on, as
    (ip, port) from /proc/net/tcp and tcp6 matched by socket inode."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    found = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        if not os.path.exists(table):   # no IPv6 in this kernel
            continue
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[3] != "0A" or cols[9] not in inodes:   # 0A: LISTEN
                    continue
                hexip, hexport = cols[1].split(":")
                raw = bytes.fromhex(hexip)
                # the kernel prints each 32-bit word in host (little-endian) order
                ip = b"".join(raw[i:i + 4][::-1] for i in range(0, width, 4))
                found.add((socket.inet_ntop(socket.AF_INET if width == 4 else socket.AF_INET6,
                                            ip), int(hexport, 16)))
    return found


class TestDefaults(mt.unittest.TestCase):

    def test_no_config_listens_on_loopback_1883_only_and_says_so(self):
        """No -c and no -p: 127.0.0.1:1883 and nothing else, and the log says so.
        Skipped when 1883 is taken (e.g. Debian's mosquitto service); the broker
        is stopped as soon as its sockets have been read."""
        exe = os.environ.get("MOATD")
        if not exe or mt.is_mosquitto():
            self.skipTest("moatd only (MOATD is not set, or testing mosquitto)")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", 1883)) == 0:
                self.skipTest("port 1883 is in use here")
        p = subprocess.Popen([exe], stderr=subprocess.PIPE, text=True)
        try:
            addrs = set()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not addrs and p.poll() is None:
                time.sleep(0.05)
                addrs = listening_addresses(p.pid)
        finally:
            p.terminate()
            _, err = p.communicate(timeout=15)
        if not addrs and "in use" in err:
            self.skipTest("port 1883 was taken meanwhile: " + err)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(addrs, {("127.0.0.1", 1883)}, err)
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
                                               got.get("$SYS/broker/clients/connected",
                                                       b"0") == b"0"):
            p = sub.expect_publish(timeout=3)
            got[p.topic] = p.payload
        for t in ("version", "uptime", "clients/connected", "messages/received",
                  "messages/sent", "bytes/received", "bytes/sent",
                  "publish/messages/dropped", "subscriptions/count"):
            self.assertIn("$SYS/broker/" + t, got)
        self.assertTrue(got["$SYS/broker/version"].startswith(b"moatd "))
        self.assertEqual(int(got["$SYS/broker/clients/connected"]), 1)
        others = [self.client("sys-extra%d" % i) for i in range(2)]
        deadline = time.monotonic() + 3   # sys_interval 1: the next round counts them
        while time.monotonic() < deadline:
            p = sub.expect_publish(timeout=3)
            if p.topic == "$SYS/broker/clients/connected" and p.payload == b"3":
                break
        else:
            self.fail("clients/connected never said 3")
        received = int(got["$SYS/broker/messages/received"])
        bytes_in = int(got["$SYS/broker/bytes/received"])
        for _ in range(10):
            others[0].publish("sys/load", b"z" * 100, qos=1)
        want = {"$SYS/broker/messages/received": received + 10,
                "$SYS/broker/bytes/received": bytes_in + 10 * 100}
        deadline = time.monotonic() + 3
        while want and time.monotonic() < deadline:
            p = sub.expect_publish(timeout=3)
            if p.topic in want and int(p.payload) >= want[p.topic]:
                del want[p.topic]
        self.assertEqual(want, {}, "counters that did not count the 10 publishes")
        for o in others:
            o.disconnect()

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
        took = time.monotonic() - t0
        sk.close()
        self.assertGreaterEqual(took, 1.9)   # connect_timeout 2, checked once a second
        self.assertLess(took, 3.8)   # 2x would be 4 s

    def test_byte_by_byte_connect_closed_at_connect_timeout(self):
        """A valid 300-byte CONNECT trickled at 20 bytes/s is still incomplete at
        connect_timeout (2 s): closed then, without a CONNACK, however busy it looks."""
        p = self.peer()
        data = p.connect_bytes("slowpoke", props={"user_property": [("k", "v" * 280)]})
        t0 = time.monotonic()
        try:
            for b in data:
                p.send(bytes([b]))
                if select.select([p.sock], [], [], 0.05)[0]:
                    break   # closed, or answered (which recv() below rejects)
        except OSError:
            pass
        with self.assertRaises(mt.Closed):
            p.recv(5)   # any packet, a CONNACK included, fails the test
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 1.9)
        self.assertLess(took, 3.8)   # 2x would be 4 s

    def test_oversized_connect_refused_before_connack(self):
        """A CONNECT over max_connect_packet_size (1024) is refused from its fixed
        header: closed with no CONNACK, or (v5) CONNACK 0x95 at most."""
        for version in (5, 4):
            p = self.peer(version)
            p.send(p.connect_bytes("big", props={"user_property": [("k", "v" * 2000)]},
                                   username="u" * 2000))
            try:
                self.assertEqual(p.expect(CONNACK).rc, 0x95 if version == 5 else None)
            except mt.Closed:
                pass
            p.expect_closed()
        small = self.peer()
        small.connect("small", props={"user_property": [("k", "v" * 800)]})
        small.ping()
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

    def test_malformed_input_logged_rate_limited(self):
        """Bad input is logged, but 40 bad clients in a burst write at most 10
        lines per 10 s window (two windows at most here), not 40."""
        if mt.is_mosquitto():
            self.skipTest("moatd's log lines")
        for i in range(40):
            bad = self.client("bad%d" % i)
            bad.send(packet(PUBLISH, 6, s("t")))
            bad.expect_closed(disconnect_rc=0x81)
        lines = [ln for ln in self.broker.log().splitlines() if ln.endswith(", closing")]
        self.assertGreaterEqual(len(lines), 1)
        self.assertLessEqual(len(lines), 20, "\n".join(lines))
        self.assertIn("bad0", lines[0])
        self.assert_serves()

    def test_malformed_connect_v5_gets_connack_with_reason(self):
        p = self.peer()
        body = s("MQTT") + bytes([5, 0x03]) + b"\x00\x3c\x00" + s("x")   # reserved flag set
        p.send(packet(mt.CONNECT, 0, body))
        ack = p.expect(mt.CONNACK)
        self.assertEqual(ack.rc, 0x81)
        self.assertIn("reason_string", ack.props)
        p.expect_closed()

    def dropped_count(self, sys_sub, above):
        """The next $SYS publish/messages/dropped value above <above> (sys_interval 1)."""
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            dropped = int(sys_sub.expect_publish(timeout=3).payload)
            if dropped > above:
                return dropped
        self.fail("publish/messages/dropped stayed at %d" % above)

    def test_slow_consumer_does_not_stall_others(self):
        """A subscriber that never reads gets its outbound buffer filled, then its
        QoS 0 messages dropped and counted in $SYS; a second subscriber of the same
        topic gets every 64 KiB message within a second of its publication."""
        slow = self.peer()
        slow.connect("slow")
        slow.subscribe("bulk", qos=0)
        fast = self.client("fast")
        fast.subscribe("bulk", qos=0)
        sys_sub = self.client("sys")
        sys_sub.subscribe("$SYS/broker/publish/messages/dropped", qos=0)
        pub = self.client("pub")
        payload = b"x" * 65536
        dropped = 0
        for flood in range(2):   # 2 x 13 MB; the slow one never reads
            worst = 0.0
            for i in range(200):
                t0 = time.monotonic()
                pub.send(pub.publish_bytes("bulk", payload + b"%d" % i, qos=0))
                self.assertEqual(fast.expect_publish(timeout=3).payload, payload + b"%d" % i)
                worst = max(worst, time.monotonic() - t0)
            self.assertLess(worst, 1.0, "a message took %.2f s to the fast subscriber" % worst)
            dropped = self.dropped_count(sys_sub, dropped)   # and it keeps growing
        self.assertTrue(self.broker.alive())

    def test_sigterm_tells_v5_clients_and_exits_zero(self):
        p = self.client("bye")
        self.broker.proc.send_signal(mt.signal.SIGTERM)
        p.expect_closed(timeout=10, disconnect_rc=0x8B)
        self.broker.proc.wait(timeout=10)
        self.assertEqual(self.broker.proc.returncode, 0)


class TestConfigKeys(mt.BrokerTest):
    """Configuration keys of the issue whose effect is visible from outside."""

    def test_max_connections_refuses_extra_and_frees_slots(self):
        peers = [self.client("mc%d" % i) for i in range(3)]
        extra = self.peer()
        extra.send(extra.connect_bytes("mc-extra"))
        with self.assertRaises(mt.Closed):
            extra.recv()   # no CONNACK: closed at accept, as mosquitto does
        peers[0].disconnect()
        time.sleep(0.2)
        self.client("mc-again").ping()   # the slot came back

    config_for_test_max_connections_refuses_extra_and_frees_slots = "max_connections 3\n"

    def test_legacy_port_and_bind_address(self):
        port = mt.free_port()
        b = mt.Broker("port %d\nbind_address 127.0.0.1\n" % port, port=port,
                      with_listener=False)
        b.start()
        try:
            p = mt.Peer(port)
            p.connect("legacy")
            p.ping()
            p.close()
        finally:
            b.stop()
            b.cleanup()

    def test_second_broker_on_same_port_fails_to_start(self):
        """A port already served must stop a second broker at start-up (as mosquitto:
        "Address already in use", exit 1), not share it: with SO_REUSEPORT both
        would listen and the kernel would split clients between two brokers."""
        second = mt.Broker(port=self.port)
        second.start(wait=False)
        try:
            second.proc.wait(timeout=10)
        except mt.subprocess.TimeoutExpired:
            pass
        running = second.alive()
        second.stop(check=False)
        text = second.log()
        second.cleanup()
        self.assertFalse(running, "a second broker started on port %d" % self.port)
        self.assertIn("in use", text)

    def log_file_after_connect(self, log_type):
        path = os.path.join(self.broker.dir, "file-%s.log" % log_type)
        b = mt.Broker("log_dest file %s\nlog_type %s\n" % (path, log_type))
        b.start()
        try:
            p = mt.Peer(b.port)
            p.connect("logged")
            p.disconnect()
        finally:
            b.stop()
            b.cleanup()
        with open(path) as f:
            return f.read()

    def test_log_dest_file_and_log_type(self):
        text = self.log_file_after_connect("all")
        self.assertIn("starting", text)
        self.assertIn("client logged connected", text)
        text = self.log_file_after_connect("error")
        self.assertNotIn("starting", text)
        self.assertNotIn("logged", text)


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

    def test_takeover_across_workers(self):
        """Ten takeovers of one client id: each old connection, wherever it lives,
        hears DISCONNECT 0x8E and its queued QoS 1 message follows the session."""
        pub = self.client("tk-pub")
        old = self.client("tk", clean=False, props={"session_expiry": 60})
        old.subscribe("tk/t", qos=1)
        for i in range(10):
            pub.publish("tk/t", b"%d" % i, qos=1)
            self.assertEqual(old.expect_publish(ack=False).payload, b"%d" % i)
            new = self.client("tk", clean=False, props={"session_expiry": 60})
            old.expect_closed(disconnect_rc=0x8E)
            again = new.expect_publish()
            self.assertEqual((again.payload, again.dup), (b"%d" % i, 1))
            old = new

    def test_shared_round_robin_across_workers(self):
        members = [self.client("sh%d" % i) for i in range(4)]
        for m in members:
            m.subscribe("$share/g/w/sh", qos=1)
        pub = self.client("sh-pub")
        for i in range(20):
            pub.publish("w/sh", b"%d" % i, qos=1)
        counts = [len(m.drain_publishes()) for m in members]
        self.assertEqual(counts, [5, 5, 5, 5])

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
