"""Observability: the $SYS/broker/... tree (mosquitto's topics, load averages,
moatd's refused counts) and the metrics_listener's HTTP server (Prometheus
/metrics per listener and QoS, /healthz, 404/405, slow clients, config
errors), checked against known numbers of QoS 0/1/2 messages."""
import math
import os
import re
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import moattest as mt

# QoS -> (messages, payload bytes each) the publisher sends
SENT = {0: (3, 10), 1: (4, 20), 2: (5, 30)}
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_metrics(text):
    """Prometheus text format 0.0.4, line by line: {(name, frozenset(labels)): value}.
    Fails on any line that is neither a comment nor a well-formed sample."""
    out, types = {}, {}
    assert text.endswith("\n"), "the text must end with a newline"
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert kind != "counter" or name.endswith("_total"), line
            types[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels, value = m.group(1), {}, float(m.group(4))
        assert not math.isnan(value), line
        rest = m.group(3) or ""
        while rest:
            lm = LABEL.match(rest)
            assert lm, "bad labels in %r" % line
            labels[lm.group(1)] = lm.group(2)
            rest = rest[lm.end():]
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and types.get(name[:-len(suffix)]) == "histogram":
                family = name[:-len(suffix)]
        assert family in types, "sample before its # TYPE: %r" % line
        key = (name, frozenset(labels.items()))
        assert key not in out, "duplicate sample %r" % line
        out[key] = value
    return out


def metric(samples, name, **labels):
    return samples[(name, frozenset((k, str(v)) for k, v in labels.items()))]


def http_get(port, path, method="GET"):
    """(status, headers, body) of one request to the metrics listener."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=3) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


class TestMetrics(mt.BrokerTest):

    def setUp(self):
        self.sys_port = mt.free_port()
        self.http_port = mt.free_port()
        self.CONFIG = ("sys_interval 1\nlistener %d 127.0.0.1\nmetrics_listener %d\n"
                       % (self.sys_port, self.http_port))
        super().setUp()
        deadline = time.monotonic() + 5   # the HTTP listener opens after the MQTT ones
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.http_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def sys_watcher(self):
        """A client on the second listener that reads $SYS/broker/#."""
        p = mt.Peer(self.sys_port)
        self.peers.append(p)
        p.connect("sys-watch")
        p.subscribe("$SYS/broker/#", qos=0)
        return p

    def traffic(self):
        """A subscriber and a publisher on the first listener; the known messages."""
        sub = self.client("sub")
        sub.subscribe("m/#", qos=2)
        pub = self.client("pub")
        got = {0: 0, 1: 0, 2: 0}
        for qos, (n, size) in SENT.items():
            for i in range(n):
                pub.publish("m/%d" % qos, b"x" * size, qos=qos)
                got[sub.expect_publish().qos] += 1
        self.assertEqual(got, {q: n for q, (n, _) in SENT.items()})
        return sub, pub

    def wait_sys(self, watcher, want, timeout=5):
        """Reads $SYS until every topic in <want> passed its check; returns the last values."""
        got, pending = {}, dict(want)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            try:
                p = watcher.expect_publish(timeout=max(0.1, deadline - time.monotonic()))
            except socket.timeout:
                break
            got[p.topic] = p.payload.decode()
            check = pending.get(p.topic)
            if check is not None and check(got[p.topic]):
                del pending[p.topic]
        self.assertEqual(list(pending), [], "topics that never had the right value: %r" % {
            t: got.get(t) for t in pending})
        return got

    def test_sys_tree_counts_known_messages(self):
        watcher = self.sys_watcher()
        self.traffic()
        n_total = sum(n for n, _ in SENT.values())
        bytes_total = sum(n * size for n, size in SENT.values())
        eq = lambda v: (lambda s: int(s) == v)
        at_least = lambda v: (lambda s: int(s) >= v)
        positive = lambda s: float(s) > 0
        got = self.wait_sys(watcher, {
            "$SYS/broker/publish/messages/received": eq(n_total),
            "$SYS/broker/publish/bytes/received": eq(bytes_total),
            # the watcher's own $SYS deliveries count as sent too
            "$SYS/broker/publish/messages/sent": at_least(n_total),
            "$SYS/broker/publish/bytes/sent": at_least(bytes_total),
            "$SYS/broker/messages/received": at_least(n_total),
            "$SYS/broker/messages/sent": at_least(n_total),
            "$SYS/broker/bytes/received": at_least(bytes_total),
            "$SYS/broker/bytes/sent": at_least(bytes_total),
            "$SYS/broker/clients/connected": eq(3),
            "$SYS/broker/clients/total": eq(3),
            "$SYS/broker/clients/disconnected": eq(0),
            "$SYS/broker/clients/maximum": eq(3),
            "$SYS/broker/clients/refused": eq(0),
            "$SYS/broker/subscriptions/count": eq(2),
            "$SYS/broker/shared_subscriptions/count": eq(0),
            "$SYS/broker/publish/messages/dropped": eq(0),
            "$SYS/broker/publish/messages/refused": eq(0),
            "$SYS/broker/load/publish/received/1min": positive,
            "$SYS/broker/load/messages/received/5min": positive,
            "$SYS/broker/load/connections/1min": positive,
            "$SYS/broker/load/sockets/15min": positive,
            "$SYS/broker/load/bytes/sent/1min": positive,
        })
        for t in ("version", "uptime", "clients/expired", "messages/stored", "store/messages/count",
                  "store/messages/bytes", "retained messages/count", "heap/current",
                  "heap/maximum", "load/publish/sent/1min", "load/publish/dropped/15min",
                  "load/bytes/received/5min", "load/messages/sent/1min"):
            self.assertIn("$SYS/broker/" + t, got)
        self.assertTrue(got["$SYS/broker/uptime"].endswith(" seconds"))
        self.assertRegex(got["$SYS/broker/load/publish/received/1min"], r"^\d+\.\d\d$")
        self.assertGreaterEqual(int(got["$SYS/broker/heap/maximum"]),
                                int(got["$SYS/broker/heap/current"]))

    def test_sys_counts_refusals_and_disconnected_sessions(self):
        watcher = self.sys_watcher()
        p = self.client("pub")
        p.send(p.publish_bytes("$SYS/broker/fake", b"x", qos=1, pid=1))
        self.assertEqual(p.expect(mt.PUBACK).rc, 0x87)
        q = self.peer(version=4)
        q.send(q.connect_bytes("", clean=False))
        self.assertEqual(q.expect(mt.CONNACK).rc, 2)    # identifier rejected
        k = self.client("keeper", clean=False, props={"session_expiry": 60})
        k.subscribe("$share/g/x", qos=1)
        k.disconnect()
        eq = lambda v: (lambda s: int(s) == v)
        self.wait_sys(watcher, {
            "$SYS/broker/publish/messages/refused": eq(1),
            "$SYS/broker/clients/refused": eq(1),
            "$SYS/broker/clients/disconnected": eq(1),
            "$SYS/broker/shared_subscriptions/count": eq(1),
            "$SYS/broker/subscriptions/count": eq(2),
        })

    def test_metrics_per_listener_and_qos(self):
        watcher = self.sys_watcher()
        self.traffic()
        deadline = time.monotonic() + 5   # the subscriber's last acknowledgements
        while True:
            status, headers, body = http_get(self.http_port, "/metrics")
            self.assertEqual(status, 200)
            m = parse_metrics(body)
            if metric(m, "moat_inflight_messages") == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
        main, other = self.port, self.sys_port
        for qos, (n, size) in SENT.items():
            self.assertEqual(metric(m, "moat_messages_received_total", listener=main, qos=qos), n)
            self.assertEqual(metric(m, "moat_messages_sent_total", listener=main, qos=qos), n)
            self.assertEqual(metric(m, "moat_publish_bytes_received_total", listener=main,
                                    qos=qos), n * size)
            self.assertEqual(metric(m, "moat_publish_bytes_sent_total", listener=main,
                                    qos=qos), n * size)
            self.assertEqual(metric(m, "moat_messages_received_total", listener=other, qos=qos), 0)
        self.assertEqual(metric(m, "moat_messages_sent_total", listener=other, qos=1), 0)
        self.assertEqual(metric(m, "moat_listener_connections", listener=main), 2)
        self.assertEqual(metric(m, "moat_listener_connections", listener=other), 1)
        self.assertGreaterEqual(metric(m, "moat_listener_connections_accepted_total",
                                       listener=main), 2)
        self.assertGreater(metric(m, "moat_bytes_received_total", listener=main),
                           sum(n * size for n, size in SENT.values()))
        self.assertEqual(metric(m, "moat_clients_connected"), 3)
        self.assertEqual(metric(m, "moat_sessions"), 3)
        self.assertEqual(metric(m, "moat_subscriptions"), 2)
        self.assertEqual(metric(m, "moat_queued_messages"), 0)
        self.assertEqual(metric(m, "moat_inflight_messages"), 0)
        self.assertEqual(metric(m, "moat_publish_dropped_total"), 0)
        self.assertEqual(metric(m, "moat_auth_failures_total"), 0)
        for name in ("moat_acl_denials_total", "moat_publish_refused_total",
                     "moat_clients_refused_total", "moat_retained_messages", "moat_heap_bytes",
                     "moat_uptime_seconds"):
            metric(m, name)
        # $SYS says the same: its totals are the sums over listeners and QoS
        total = lambda name: sum(metric(m, name, listener=l, qos=q)
                                 for l in (main, other) for q in range(3))
        self.wait_sys(watcher, {
            "$SYS/broker/publish/messages/received":
                lambda s: int(s) == total("moat_messages_received_total"),
            "$SYS/broker/publish/bytes/received":
                lambda s: int(s) == total("moat_publish_bytes_received_total")})

    def test_inflight_and_queue_gauges(self):
        sub = self.client("slow", clean=False, props={"session_expiry": 60, "receive_maximum": 2})
        sub.subscribe("q/#", qos=1)
        pub = self.client("pub")
        for i in range(5):
            pub.publish("q/x", b"12345", qos=1)
        time.sleep(0.2)
        m = parse_metrics(http_get(self.http_port, "/metrics")[2])
        self.assertEqual(metric(m, "moat_inflight_messages"), 2)
        self.assertEqual(metric(m, "moat_inflight_bytes"), 10)
        self.assertEqual(metric(m, "moat_queued_messages"), 3)
        self.assertEqual(metric(m, "moat_queued_bytes"), 15)
        for _ in range(5):
            sub.expect_publish()
        time.sleep(0.2)
        m = parse_metrics(http_get(self.http_port, "/metrics")[2])
        self.assertEqual(metric(m, "moat_inflight_messages"), 0)
        self.assertEqual(metric(m, "moat_queued_messages"), 0)

    def test_healthz_and_errors(self):
        self.assertEqual(http_get(self.http_port, "/healthz")[::2], (200, "ok\n"))
        self.assertEqual(http_get(self.http_port, "/nope")[0], 404)
        self.assertEqual(http_get(self.http_port, "/metrics?debug=1")[0], 200)
        status, headers, _ = http_get(self.http_port, "/metrics", method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers["Allow"], "GET, HEAD")
        status, headers, body = http_get(self.http_port, "/metrics", method="HEAD")
        self.assertEqual((status, body), (200, ""))
        self.assertGreater(int(headers["Content-Length"]), 100)

    def test_slow_client_does_not_block_another(self):
        slow = socket.create_connection(("127.0.0.1", self.http_port))
        slow.sendall(b"GET /metr")
        time.sleep(0.1)
        t0 = time.monotonic()
        self.assertEqual(http_get(self.http_port, "/healthz")[0], 200)
        self.assertLess(time.monotonic() - t0, 1.0)
        slow.settimeout(4)
        self.assertEqual(slow.recv(100), b"")   # closed at the 2 s head timeout
        slow.close()
        flood = socket.create_connection(("127.0.0.1", self.http_port))
        flood.settimeout(4)
        flood.sendall(b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 2000)
        self.assertTrue(flood.recv(100).startswith(b"HTTP/1.1 431 "))
        flood.close()
        self.assertEqual(http_get(self.http_port, "/healthz")[0], 200)


def run_moatd(args, timeout=10):
    exe = os.environ.get("MOATD")
    if not exe:
        raise mt.unittest.SkipTest("MOATD is not set (path to moatd)")
    return subprocess.run([exe] + args, capture_output=True, text=True, timeout=timeout)


class TestMetricsConfig(mt.unittest.TestCase):
    """metrics_listener errors name the file and line."""

    def start(self, text):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write(text)
        try:
            return f.name, run_moatd(["-c", f.name])
        finally:
            os.unlink(f.name)

    def check(self, text, line, *words):
        name, r = self.start(text)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("%s:%d:" % (name, line), r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)

    def test_bad_values(self):
        port = mt.free_port()
        self.check("listener %d 127.0.0.1\nmetrics_listener\n" % port, 2, "metrics_listener expects")
        self.check("listener %d 127.0.0.1\nmetrics_listener 0\n" % port, 2, "from 1 to 65535")
        self.check("metrics_listener 70000\n", 1, "metrics_listener port")
        self.check("metrics_listener 9100 127.0.0.1 x\n", 1, "metrics_listener expects")
        self.check("metrics_listener 9100\n\nmetrics_listener 9101\n", 3, "set twice", "line 1")

    def test_port_in_use(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = mt.free_port()
            self.check("listener %d 127.0.0.1\nallow_anonymous true\n\nmetrics_listener %d\n"
                       % (port, busy.getsockname()[1]), 4, "metrics_listener", "in use")


if __name__ == "__main__":
    mt.main()
