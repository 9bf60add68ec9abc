"""moatd cluster failover with real processes (docs/cluster.md "Failover"):

- a 3-server NATS cluster (nats-server -js --cluster --routes) holding the
  stream and buckets with 3 replicas (cluster_replicas 3): the server that
  leads the message stream is killed while QoS 1 publishers on node a send
  to a subscriber on node b; every acknowledged message arrives;
- kill -9 of node a under QoS 1 load: its publishers reconnect to node b and
  send again what was not acknowledged; a subscriber on node c receives
  every message that was acknowledged (duplicates are allowed for QoS 1 and
  counted).

Publishers keep a window of QoS 1 messages in flight; when their connection
breaks or a PUBACK does not come, they connect again (to the next node of
their list) and resend every message not yet acknowledged, in order.
"""
import json
import os
import socket
import threading
import time
import unittest

from moattest import DISCONNECT, PUBACK, Closed, Peer, free_port
from test_cluster import NATS_SERVER, ClusterBase, NatsServer

# a PUBACK that takes longer than this makes the publisher reconnect and resend
PUBACK_WAIT_S = 15.0
# every publisher must be done within this (the machine is shared and noisy)
PUBLISH_DEADLINE_S = 40.0
# then every acknowledged message must arrive within this (a run of the sanitizer
# build on a machine loaded by a benchmark once still had a backlog after 20 s)
DELIVERY_WAIT_S = float(os.environ.get("MOAT_TEST_DELIVERY_WAIT", 30))


def nats_request(port, subject, payload=b"", timeout=2.0):
    """The JSON answer to a NATS request on <subject> (the text protocol), or
    None when nothing answers within <timeout> (JetStream not ready yet)."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return None
    buf = b""
    try:
        sock.sendall(b'CONNECT {"verbose":false}\r\nSUB _INBOX.moattest 1\r\n'
                     b"PUB %s _INBOX.moattest %d\r\n%s\r\n" % (subject.encode(), len(payload),
                                                              payload))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\r\n" in buf:
                line, rest = buf.split(b"\r\n", 1)
                if line.startswith(b"PING"):
                    sock.sendall(b"PONG\r\n")
                elif line.startswith(b"MSG "):
                    size = int(line.split()[-1])
                    if len(rest) < size:
                        break
                    return json.loads(rest[:size])
                buf = rest
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            data = sock.recv(65536)
            if not data:
                return None
            buf += data
    except (OSError, ValueError):
        return None
    finally:
        sock.close()
    return None


class NatsCluster:
    """Three nats-server -js on loopback routed into one NATS cluster."""

    def __init__(self, size=3):
        self.route_ports = [free_port() for _ in range(size)]
        routes = ",".join("nats://127.0.0.1:%d" % p for p in self.route_ports)
        self.servers = [NatsServer(extra_args=[
            "-n", "n%d" % i, "--cluster_name", "moattest",
            "--cluster", "nats://127.0.0.1:%d" % self.route_ports[i], "--routes", routes])
            for i in range(size)]

    def start(self):
        for s in self.servers:
            s.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            info = nats_request(self.servers[0].port, "$JS.API.INFO")
            if info is not None and "error" not in info:
                return self
            time.sleep(0.5)
        raise AssertionError("the NATS cluster elected no JetStream leader within 30 s")

    def urls(self):
        return "".join("cluster_url nats://127.0.0.1:%d\n" % s.port for s in self.servers)

    def stop(self):
        for s in self.servers:
            s.stop()


class Publisher(threading.Thread):
    """Sends <count> QoS 1 messages on <topic>, <window> in flight, to the
    first node of <ports>; on a broken connection or a missing PUBACK moves
    to the next node and resends what was not acknowledged."""

    def __init__(self, name, topic, count, ports, window=8):
        super().__init__(name=name, daemon=True)
        self.topic, self.count, self.ports, self.window = topic, count, ports, window
        self.acked = set()
        self.reconnects = 0
        self.error = None

    def payload(self, i):
        return b"%s-%05d" % (self.name.encode(), i)

    def connect(self, node):
        while time.monotonic() < self.deadline:
            try:
                p = Peer(self.ports[node % len(self.ports)], timeout=PUBACK_WAIT_S)
                p.connect(self.name, clean=True)
                return p
            except (OSError, Closed, AssertionError):
                node += 1
                time.sleep(0.2)
        raise AssertionError("%s could not connect to any node" % self.name)

    def run(self):
        self.deadline = time.monotonic() + PUBLISH_DEADLINE_S
        try:
            self.publish_all()
        except Exception as e:  # reported by the test's thread
            self.error = e

    def publish_all(self):
        node, nxt, resend, inflight = 0, 0, [], {}
        conn = self.connect(node)
        while len(self.acked) < self.count:
            if time.monotonic() > self.deadline:
                raise AssertionError("%s: %d of %d acknowledged in %.0f s" % (
                    self.name, len(self.acked), self.count, PUBLISH_DEADLINE_S))
            try:
                while len(inflight) < self.window and (resend or nxt < self.count):
                    if resend:
                        i = resend.pop(0)
                    else:
                        i, nxt = nxt, nxt + 1
                    inflight[conn.publish(self.topic, self.payload(i), qos=1,
                                          complete=False)] = i
                ack = conn.recv()
                if ack.type == DISCONNECT:
                    raise Closed("DISCONNECT 0x%02x" % ack.rc)
                if ack.type != PUBACK or ack.rc >= 0x80:
                    raise AssertionError("%s: expected a PUBACK, got %r" % (self.name, ack))
                self.acked.add(self.payload(inflight.pop(ack.pid)))
            except (OSError, Closed):
                conn.close()
                resend = sorted(set(inflight.values()) | set(resend))
                inflight = {}
                self.reconnects += 1
                node += 1
                conn = self.connect(node)
        conn.disconnect()


class Subscriber(threading.Thread):
    """Collects every payload (and how often it came) a QoS 1 subscription of
    <peer> receives until stop()."""

    def __init__(self, peer):
        super().__init__(daemon=True)
        self.peer = peer
        self.got = {}
        self.lock = threading.Lock()
        self.running = True
        self.error = None

    def run(self):
        while self.running:
            try:
                p = self.peer.expect_publish(timeout=0.3)
            except socket.timeout:
                continue
            except Exception as e:
                self.error = e
                return
            with self.lock:
                self.got[p.payload] = self.got.get(p.payload, 0) + 1

    def missing(self, wanted):
        with self.lock:
            return sorted(w for w in wanted if w not in self.got)

    def stop(self):
        self.running = False
        self.join(timeout=5)


class FailoverBase(ClusterBase):
    """Helpers shared by both failover cases; setUp is each case's own."""

    def setUp(self):
        self.peers = []
        self.nodes = {}

    def node_config(self, name):
        return ("%scluster_name test\nnode_name %s\n%s"
                % (self.nats_urls, name, getattr(self, "node_config_" + name, "")))

    def run_load(self, sub_node, publishers, during):
        """Subscribes on <sub_node>, starts <publishers>, calls <during>()
        once a third of their messages is acknowledged, and asserts that
        every acknowledged message reached the subscriber."""
        sub = self.client(sub_node, "collector", clean=True)
        sub.subscribe(("fo/#", 1))
        for origin in sorted(set(self.nodes) - {sub_node}):
            self.link(sub, "fo/probe", origin=origin)
        collector = Subscriber(sub)
        collector.start()
        total = sum(p.count for p in publishers)
        for p in publishers:
            p.start()
        deadline = time.monotonic() + PUBLISH_DEADLINE_S
        while sum(len(p.acked) for p in publishers) < total // 3:
            self.assertLess(time.monotonic(), deadline, "the load never got going")
            self.assertTrue(all(p.error is None for p in publishers),
                            [p.error for p in publishers])
            time.sleep(0.05)
        during()
        for p in publishers:
            p.join(timeout=PUBLISH_DEADLINE_S + 10)
            self.assertIsNone(p.error, p.name)
        acked = set().union(*(p.acked for p in publishers))
        done = time.monotonic()
        while collector.missing(acked) and time.monotonic() < done + DELIVERY_WAIT_S:
            time.sleep(0.2)
        collector.stop()
        self.assertIsNone(collector.error)
        missing = collector.missing(acked)
        dups = sum(n - 1 for n in collector.got.values())
        print("\n%s: %d acknowledged, %d received (the last %.1f s after the publishers "
              "finished), %d duplicates, %d reconnects" % (
                  self._testMethodName, len(acked), len(collector.got), time.monotonic() - done,
                  dups, sum(p.reconnects for p in publishers)))
        self.assertEqual(missing, [], "acknowledged but never delivered")
        self.assertEqual(len(acked), total)


@unittest.skipUnless(os.path.exists(NATS_SERVER), "nats-server is not installed (make deps)")
class NatsServerKilled(FailoverBase):
    def setUp(self):
        super().setUp()
        self.nats_cluster = NatsCluster()
        self.addCleanup(self.nats_cluster.stop)
        self.nats_cluster.start()
        self.nats_urls = self.nats_cluster.urls() + "cluster_replicas 3\n"
        for name in ("a", "b"):
            self.start_node(name)

    def test_stream_leader_killed_under_qos1_load(self):
        info = nats_request(self.nats_cluster.servers[0].port, "$JS.API.STREAM.INFO.test_msgs")
        self.assertEqual(info["config"]["num_replicas"], 3, info)
        names = ["n%d" % i for i in range(3)]
        leader = info["cluster"]["leader"]
        bucket = nats_request(self.nats_cluster.servers[0].port,
                              "$JS.API.STREAM.INFO.KV_test_retained")
        self.assertEqual(bucket["config"]["num_replicas"], 3, bucket)

        def kill_leader():
            server = self.nats_cluster.servers[names.index(leader)]
            server.proc.kill()
            server.proc.wait()

        publishers = [Publisher("pub%d" % i, "fo/%d" % i, 300, [self.nodes["a"].port])
                      for i in range(2)]
        self.run_load("b", publishers, kill_leader)


@unittest.skipUnless(os.path.exists(NATS_SERVER), "nats-server is not installed (make deps)")
class NodeKilled(FailoverBase):
    def setUp(self):
        super().setUp()
        self.nats = NatsServer()
        self.addCleanup(self.nats.stop)
        self.nats.start()
        self.nats_urls = "cluster_url nats://127.0.0.1:%d\n" % self.nats.port
        for name in ("a", "b", "c"):
            self.start_node(name)

    def test_kill9_node_under_qos1_load(self):
        ports = [self.nodes["a"].port, self.nodes["b"].port]
        publishers = [Publisher("pub%d" % i, "fo/%d" % i, 300, ports) for i in range(3)]
        self.run_load("c", publishers, lambda: self.kill9("a"))
        self.assertTrue(all(p.reconnects > 0 for p in publishers))


if __name__ == "__main__":
    unittest.main()
