"""moatd cluster when NATS is unreachable (docs/cluster.md, "When NATS is
unreachable"): a real nats-server -js is stopped and started again on the
same port and store while two nodes run. Node a keeps serving its local
clients, queues what node b wants and acknowledges it; node b gets every
acknowledged message, in order, once NATS is back; $SYS reports the link;
the queue's bound refuses QoS 1 (v5 0x97) and drops QoS 0; with
persistence on, the queue survives kill -9 of node a."""
import shutil
import signal
import socket
import tempfile
import time
import unittest

from moattest import PUBACK, free_port
from test_cluster import CROSS_S, ClusterBase
from test_metrics import http_get, metric, parse_metrics

# a stopped nats-server and its restart are noticed, and the node
# reconnects (backoff up to 5 s), well within this
RECONNECT_S = 20.0
QUOTA_EXCEEDED = 0x97


class DegradedBase(ClusterBase):
    """Two nodes with $SYS every second; helpers to stop and restart NATS
    on its port and store, and to watch node a's $SYS."""
    node_config_a = "sys_interval 1\n"
    node_config_b = "sys_interval 1\n"

    def stop_nats(self):
        """Stops nats-server but keeps its store (NatsServer.stop removes it)."""
        self.nats.halt()

    def restart_without_nats(self, name, kill=False):
        """Stops node <name> (SIGTERM, or SIGKILL with <kill>), stops NATS and
        starts the node again on its port (and store): it serves its clients
        out of the cluster."""
        port = self.nodes[name].port
        if kill:
            self.kill9(name)
        else:
            self.nodes[name].stop(check=True)
            self.nodes[name].cleanup()
        self.stop_nats()
        node = self.start_node(name, port=port)
        self.assertIn("no NATS server reachable", node.log())
        return node

    def sys_value(self, peer, topic, want, timeout=RECONNECT_S):
        """Reads <peer>'s $SYS publishes until <topic> has the value <want>."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                p = peer.expect_publish(timeout=0.5)
            except socket.timeout:
                continue
            if p.topic == topic:
                seen.append(p.payload)
                if p.payload == want:
                    return
        self.fail("%s never became %r (seen %r)" % (topic, want, seen))

    def sys_nonzero(self, peer, topic, timeout=RECONNECT_S):
        """Reads <peer>'s $SYS publishes until <topic> is not 0; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                p = peer.expect_publish(timeout=0.5)
            except socket.timeout:
                continue
            if p.topic == topic and p.payload != b"0":
                return int(p.payload)
        self.fail("%s stayed 0" % topic)

    def cross_link(self, topic_filter, probe_topic, client_id="sub-deg"):
        sub = self.client("b", client_id)
        sub.subscribe((topic_filter, 1))
        self.link(sub, probe_topic)
        return sub


class DegradedTest(DegradedBase):
    def test_outage_queues_acknowledges_and_delivers_in_order(self):
        sub = self.cross_link("deg/#", "deg/probe")
        sys_a = self.client("a", "sys-a")
        sys_a.subscribe(("$SYS/broker/cluster/connected", 0))
        self.sys_value(sys_a, "$SYS/broker/cluster/connected", b"1")
        pub = self.client("a", "pub-deg")
        for i in range(20):
            pub.publish("deg/x", b"%d" % i, qos=1)
        self.stop_nats()
        self.sys_value(sys_a, "$SYS/broker/cluster/connected", b"0")
        started = time.monotonic()
        for i in range(20, 120):
            pub.publish("deg/x", b"%d" % i, qos=1)	# PUBACK: queued
        acked_s = time.monotonic() - started
        # node a serves its own clients meanwhile
        local_sub = self.client("a", "local-sub")
        local_sub.subscribe(("local/#", 1))
        self.client("a", "local-pub").publish("local/x", b"here", qos=1)
        self.assertEqual(local_sub.expect_publish(timeout=CROSS_S).payload, b"here")
        self.assertIn("lost the connection to NATS", self.nodes["a"].log())
        self.nats.start()
        self.sys_value(sys_a, "$SYS/broker/cluster/connected", b"1")
        got = [int(sub.expect_publish(timeout=RECONNECT_S).payload) for _ in range(120)]
        self.assertEqual(got, list(range(120)))
        sub.expect_nothing(timeout=1.5)
        # once per transition, not per reconnect attempt
        self.assertEqual(self.nodes["a"].log().count("lost the connection to NATS"), 1)
        self.assertEqual(self.nodes["a"].log().count("reconnected to NATS"), 1)
        print("\n100 QoS 1 PUBLISHes acknowledged while NATS was down in %.2f s" % acked_s)


    def test_short_outage_under_a_pipelining_publisher_keeps_order(self):
        """QoS 1 PUBLISHes 10 at a time while NATS stops for about a second:
        copies in flight at the disconnect are settled before the queue
        drains, so node b sees every acknowledged message in order."""
        sub = self.cross_link("pipe/#", "pipe/probe", "sub-pipe")
        pub = self.client("a", "pub-pipe")
        acked, sent, i = [], {}, 0
        started = time.monotonic()
        stopped_at = restarted = None
        while i < 400:
            for _ in range(10):
                sent[pub.publish("pipe/x", b"%d" % i, qos=1, complete=False)] = i
                i += 1
            for _ in range(10):
                ack = pub.expect(PUBACK, timeout=RECONNECT_S)
                acked.append(sent.pop(ack.pid))
            if i == 100:
                self.stop_nats()
                stopped_at = time.monotonic()
            if stopped_at is not None and restarted is None and \
                    time.monotonic() - stopped_at > 1.0:
                self.nats.start()
                restarted = True
            time.sleep(0.05)	# the outage spans some rounds on each side
        if restarted is None:
            self.nats.start()
        self.assertEqual(sorted(acked), list(range(400)))
        got = []
        while len(set(got)) < 400:
            payload = sub.expect_publish(timeout=RECONNECT_S).payload
            if payload != b"probe":	# a late one of link()'s
                got.append(int(payload))
        firsts = [v for k, v in enumerate(got) if v not in got[:k]]
        self.assertEqual(firsts, list(range(400)))	# duplicates allowed, not disorder
        print("\n400 pipelined QoS 1 messages across a NATS restart in %.1f s"
              % (time.monotonic() - started))


class QueueBoundTest(DegradedBase):
    """cluster_queue_max_bytes 4000: a few 500-byte copies fit. Node a's
    /metrics shows the link and the queue."""

    def setUp(self):
        self.metrics_port = free_port()
        self.node_config_a = ("sys_interval 1\ncluster_queue_max_bytes 4000\n"
                              "metrics_listener %d\n" % self.metrics_port)
        super().setUp()

    def metrics(self):
        status, _, body = http_get(self.metrics_port, "/metrics")
        self.assertEqual(status, 200)
        samples = parse_metrics(body)
        return lambda name: metric(samples, name)

    def test_full_queue_refuses_qos1_and_drops_qos0(self):
        sub = self.cross_link("bound/#", "bound/probe")
        pub = self.client("a", "pub-bound")
        sys_a = self.client("a", "sys-bound")
        sys_a.subscribe(("$SYS/broker/cluster/connected", 0))
        self.sys_value(sys_a, "$SYS/broker/cluster/connected", b"1")
        self.stop_nats()
        self.sys_value(sys_a, "$SYS/broker/cluster/connected", b"0")
        accepted = []
        refused = None
        for i in range(20):
            pid = pub.publish("bound/x", b"%d:" % i + b"x" * 500, qos=1, complete=False)
            ack = pub.expect(PUBACK, timeout=CROSS_S)
            self.assertEqual(ack.pid, pid)
            if ack.rc == QUOTA_EXCEEDED:
                refused = i
                break
            self.assertIn(ack.rc, (0, 0x10))	# 0x10: no subscriber on node a
            accepted.append(i)
        self.assertIsNotNone(refused, "the queue's bound was never reached")
        self.assertTrue(3 <= len(accepted) <= 6, accepted)
        for _ in range(3):	# queued while there is room, then dropped (counted)
            pub.publish("bound/x", b"q0:" + b"x" * 500, qos=0)
        sys_a.subscribe(("$SYS/broker/cluster/#", 0))
        dropped = self.sys_nonzero(sys_a, "$SYS/broker/cluster/dropped")
        m = self.metrics()
        self.assertEqual(m("moat_cluster_connected"), 0)
        self.assertEqual(m("moat_cluster_outbound_queued_messages"), len(accepted) + 3 - dropped)
        self.assertTrue(0 < m("moat_cluster_outbound_queued_bytes") <= 4000)
        self.assertEqual(m("moat_cluster_outbound_dropped_total"), dropped)
        self.assertEqual(m("moat_cluster_disconnects_total"), 1)
        self.nats.start()
        self.sys_value(sys_a, "$SYS/broker/cluster/connected", b"1")
        got = [sub.expect_publish(timeout=RECONNECT_S).payload.split(b":")[0]
               for _ in range(len(accepted) + 3 - dropped)]
        self.assertEqual(got, [b"%d" % i for i in accepted] + [b"q0"] * (3 - dropped))
        sub.expect_nothing(timeout=1.5)
        m = self.metrics()
        self.assertEqual(m("moat_cluster_connected"), 1)
        self.assertEqual(m("moat_cluster_outbound_queued_messages"), 0)
        self.assertEqual(m("moat_cluster_outbound_queued_bytes"), 0)


class StoredBase(DegradedBase):
    """Node a with persistence (its store in <self.store>)."""

    def setUp(self):
        self.store = tempfile.mkdtemp(prefix="moattest-store-")
        self.addCleanup(shutil.rmtree, self.store, True)
        self.node_config_a = ("sys_interval 1\npersistence true\npersistence_location %s\n"
                              % self.store)
        super().setUp()


class DurableQueueTest(StoredBase):
    """Node a with persistence: its queue is in its store."""

    def test_queue_survives_kill_9(self):
        sub = self.cross_link("dq/#", "dq/probe")
        sys_a = self.client("a", "sys-dq")
        sys_a.subscribe(("$SYS/broker/cluster/connected", 0))
        self.sys_value(sys_a, "$SYS/broker/cluster/connected", b"1")
        self.stop_nats()
        self.sys_value(sys_a, "$SYS/broker/cluster/connected", b"0")
        pub = self.client("a", "pub-dq")
        for i in range(30):
            pub.publish("dq/x", b"%d" % i, qos=1)	# PUBACK: in node a's store
        node_a = self.nodes["a"]
        node_a.proc.send_signal(signal.SIGKILL)
        node_a.proc.wait(timeout=10)
        node_a.proc = None
        node_a.logf.close()
        self.nats.start()
        node_a.cleanup()
        restarted = self.start_node("a", port=node_a.port)
        got = [int(sub.expect_publish(timeout=RECONNECT_S).payload) for _ in range(30)]
        self.assertEqual(got, list(range(30)))
        sub.expect_nothing(timeout=1.5)
        self.assertIn("30 copies queued for other cluster nodes restored", restarted.log())


if __name__ == "__main__":
    unittest.main()
