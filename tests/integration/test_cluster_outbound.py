"""What a node exports to the cluster, under faults (docs/cluster.md, "When
NATS is unreachable" and "Shared subscriptions"): with NATS down, a QoS 1
PUBLISH that makes several copies (two other nodes and a share) is either
queued whole and acknowledged, or refused with 0x97; a queued copy sent
again (its store record replayed) is stored once by JetStream (Nats-Msg-Id);
a share's consumer that JetStream deleted while no node was subscribed is
joined again after the reconnection; a node that starts while NATS is down
serves its clients and joins later, exporting what they published
meanwhile (kept in its store across kill -9); a message that more than 64
nodes want is logged and counted."""
import re
import shutil
import socket
import struct
import tempfile
import time
import unittest

from moattest import PUBACK, free_port
from test_cluster import CROSS_S, NatsWatcher
from test_cluster_degraded import QUOTA_EXCEEDED, RECONNECT_S, DegradedBase, StoredBase
from test_cluster_shared import js_request, share_id
from test_metrics import http_get, metric, parse_metrics


class OutboundBase(DegradedBase):
    """DegradedBase with node a's /metrics (more config for node a in
    <config_a>)."""
    config_a = ""

    def setUp(self):
        self.metrics_port = free_port()
        self.node_config_a = ("sys_interval 1\nmetrics_listener %d\n" % self.metrics_port
                              + self.config_a)
        super().setUp()

    def sessions_ended_a(self):
        """Waits until node a has no session left (link()'s probes gone, their
        sessions bucket entries deleted): a session ending while NATS stops
        holds its worker for the bucket's request timeout."""
        self.wait_metric_a("moat_sessions", 0)

    def metric_a(self, name):
        status, _, body = http_get(self.metrics_port, "/metrics")
        self.assertEqual(status, 200)
        return metric(parse_metrics(body), name)

    def wait_metric_a(self, name, want, timeout=RECONNECT_S):
        """Polls node a's /metrics (its listener may not be up yet) until <name> is <want>."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.metric_a(name) == want:
                    return
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, "%s never became %r" % (name, want))
            time.sleep(0.1)


def link_share(test, member, topic, origin="a"):
    """Publishes QoS 0 probes on <topic> from node <origin> until <member>
    (of a share, on another node) gets one, then drains the rest."""
    probe = test.client(origin, "probe-%d" % len(test.peers))
    deadline = time.monotonic() + 2 * CROSS_S
    while time.monotonic() < deadline:
        probe.publish(topic, b"probe")
        try:
            if member.expect_publish(timeout=0.2).payload == b"probe":
                break
        except socket.timeout:
            pass
    else:
        test.fail("the share never got node %s's probes" % origin)
    probe.disconnect()
    member.drain_publishes(quiet_s=1.0)


class QueueReservesEveryCopyTest(OutboundBase):
    """Node a's queue holds 8000 bytes; what a publishes on rq/x goes to node
    b, node c and the share $share/g/rq/# (a member on b): three copies."""

    config_a = "cluster_queue_max_bytes 8000\n"

    def setUp(self):
        super().setUp()
        self.start_node("c")

    def test_all_copies_queued_or_refused(self):
        plain_b = self.cross_link("rq/#", "rq/probe", "plain-b")
        plain_c = self.client("c", "plain-c")
        plain_c.subscribe(("rq/#", 1))
        self.link(plain_c, "rq/probe")
        member = self.client("b", "member-b")
        member.subscribe(("$share/g/rq/#", 1))
        link_share(self, member, "rq/probe")
        plain_b.drain_publishes(quiet_s=0.5)
        plain_c.drain_publishes(quiet_s=0.5)
        self.sessions_ended_a()
        self.stop_nats()
        self.wait_metric_a("moat_cluster_connected", 0)
        pub = self.client("a", "pub-rq")
        # one copy of 3000 bytes fits, three do not: refused before routing
        # (the queue cannot promise every copy), the client stays connected
        pid = pub.publish("rq/x", b"big:" + b"x" * 3000, qos=1, complete=False)
        ack = pub.expect(PUBACK, timeout=CROSS_S)
        self.assertEqual((ack.pid, ack.rc), (pid, QUOTA_EXCEEDED))
        self.assertEqual(self.metric_a("moat_cluster_outbound_queued_messages"), 0)
        # 1000 bytes: every acknowledged PUBLISH has its three copies queued
        accepted = []
        for i in range(10):
            pid = pub.publish("rq/x", b"%d:" % i + b"x" * 1000, qos=1, complete=False)
            ack = pub.expect(PUBACK, timeout=CROSS_S)
            self.assertEqual(ack.pid, pid)
            if ack.rc == QUOTA_EXCEEDED:
                break
            self.assertIn(ack.rc, (0, 0x10))	# 0x10: no subscriber on node a
            accepted.append(b"%d" % i)
            self.assertEqual(self.metric_a("moat_cluster_outbound_queued_messages"),
                             3 * len(accepted))
        self.assertTrue(accepted and len(accepted) < 10, accepted)
        self.assertLessEqual(self.metric_a("moat_cluster_outbound_queued_bytes"), 8000)
        self.nats.start()
        for peer in (plain_b, plain_c, member):
            got = [peer.expect_publish(timeout=RECONNECT_S).payload.split(b":")[0]
                   for _ in accepted]
            self.assertEqual(got, accepted)
        for peer in (plain_b, plain_c, member):
            peer.expect_nothing(timeout=1.0)


class ResentRecordTest(OutboundBase):
    """Node a with its store: the records of its queue are replayed from a
    copy of the store after they were sent, so each goes to JetStream a
    second time with the same Nats-Msg-Id."""

    def setUp(self):
        self.store = tempfile.mkdtemp(prefix="moattest-store-")
        self.addCleanup(shutil.rmtree, self.store, True)
        self.backup = self.store + ".backup"
        self.addCleanup(shutil.rmtree, self.backup, True)
        self.config_a = "persistence true\npersistence_location %s\n" % self.store
        super().setUp()

    def kill9_a(self):
        self.port_a = self.nodes["a"].port
        self.kill9("a")

    def restart_a(self):
        return self.start_node("a", port=self.port_a)

    def test_a_copy_sent_again_is_delivered_once(self):
        sub = self.cross_link("rr/#", "rr/probe")
        self.sessions_ended_a()
        self.stop_nats()
        self.wait_metric_a("moat_cluster_connected", 0)
        pub = self.client("a", "pub-rr")
        for i in range(10):
            pub.publish("rr/x", b"%d" % i, qos=1)	# PUBACK: in node a's store
        pub.close()
        self.peers.remove(pub)
        self.kill9_a()
        shutil.copytree(self.store, self.backup)
        self.nats.start()
        node = self.restart_a()
        got = [int(sub.expect_publish(timeout=RECONNECT_S).payload) for _ in range(10)]
        self.assertEqual(got, list(range(10)))
        self.wait_metric_a("moat_cluster_outbound_queued_messages", 0)
        self.assertIn("10 copies queued for other cluster nodes restored", node.log())
        # the same ten records again: JetStream knows their ids
        self.kill9_a()
        shutil.rmtree(self.store)
        shutil.copytree(self.backup, self.store)
        node = self.restart_a()
        self.assertIn("10 copies queued for other cluster nodes restored", node.log())
        self.wait_metric_a("moat_cluster_outbound_queued_messages", 0)
        sub.expect_nothing(timeout=3.0)


class ShareConsumerGoneTest(OutboundBase):
    """A share's consumer deleted by JetStream (as its InactiveThreshold does
    when no node is subscribed, e.g. through a long outage of NATS) is
    created again when node b, holding a member, reconnects."""

    def test_share_joined_again_after_its_consumer_was_deleted(self):
        share = "$share/g/sg/#"
        member = self.client("b", "member-b")
        member.subscribe((share, 1))
        link_share(self, member, "sg/probe")
        durable = "share-" + share_id(share)
        answer = js_request(self.nats.port,
                            "$JS.API.CONSUMER.DELETE.test_shares." + durable)
        self.assertTrue(answer.get("success"), answer)
        self.sessions_ended_a()
        self.stop_nats()
        self.nats.start()
        pub = self.client("a", "pub-sg")
        pub.publish("sg/x", b"after", qos=1)	# waits in the stream for a consumer
        self.assertEqual(member.expect_publish(timeout=2 * RECONNECT_S).payload, b"after")
        self.assertIn("was gone (JetStream deleted it", self.nodes["b"].log())
        info = js_request(self.nats.port, "$JS.API.CONSUMER.INFO.test_shares." + durable)
        self.assertEqual(info.get("name"), durable, info)


class StartWithoutNatsTest(DegradedBase):
    """Node a (re)starts while nats-server is down: it serves its clients,
    keeps what they publish, and joins once NATS is back; node b's
    subscriber, known from the interest bucket then, gets it."""

    def test_start_while_nats_is_down_then_join(self):
        sub = self.cross_link("cold/#", "cold/probe")
        node = self.restart_without_nats("a")
        local_sub = self.client("a", "local-sub")
        local_sub.subscribe(("local/#", 1))
        self.client("a", "local-pub").publish("local/x", b"here", qos=1)
        self.assertEqual(local_sub.expect_publish(timeout=CROSS_S).payload, b"here")
        pub = self.client("a", "pub-cold")
        for i in range(5):
            pub.publish("cold/x", b"%d" % i, qos=1)	# PUBACK: kept until the join
        self.nats.start()
        got = [int(sub.expect_publish(timeout=RECONNECT_S).payload) for _ in range(5)]
        self.assertEqual(got, list(range(5)))
        sub.expect_nothing(timeout=1.5)
        self.assertIn("joined cluster test", node.log())
        # local/x and the five (each worker logs its own): every message
        # waited, as no interest was known
        waited = re.findall(r"(\d+) messages published before this node joined", node.log())
        self.assertEqual(sum(map(int, waited)), 6, waited)
        # joined: what a publishes now crosses as usual
        pub.publish("cold/x", b"5", qos=1)
        self.assertEqual(sub.expect_publish(timeout=CROSS_S).payload, b"5")


class StartWithoutNatsStoredTest(StoredBase):
    """The same with node a's store on, and node a killed before NATS came
    back: what it acknowledged is in its store and crosses after its
    restart."""

    def test_kept_messages_survive_kill_9_before_the_join(self):
        sub = self.cross_link("cold/#", "cold/probe")
        port = self.restart_without_nats("a").port
        pub = self.client("a", "pub-cold")
        for i in range(5):
            pub.publish("cold/x", b"%d" % i, qos=1)	# PUBACK: in node a's store
        pub.close()
        self.peers.remove(pub)
        self.kill9("a")
        self.nats.start()
        node = self.start_node("a", port=port)
        got = [int(sub.expect_publish(timeout=RECONNECT_S).payload) for _ in range(5)]
        self.assertEqual(got, list(range(5)))
        sub.expect_nothing(timeout=1.5)
        self.assertIn("5 copies queued for other cluster nodes restored", node.log())


class ManyNodesTest(DegradedBase):
    """65 other nodes (interest entries written into NATS directly) want
    many/#: 64 get a copy, and the one left out is logged."""

    def test_nodes_beyond_64_are_logged(self):
        spy = NatsWatcher(self.nats.port, "test.n.>")
        self.addCleanup(spy.close)
        value = struct.pack("!H", len(b"many/#")) + b"many/#"
        for i in range(65):
            spy.sock.sendall(b"PUB $KV.test_interest.far%02d %d\r\n%s\r\n"
                             % (i, len(value), value))
        pub = self.client("a", "pub-many")
        deadline = time.monotonic() + CROSS_S
        while "matched more than 64 nodes" not in self.nodes["a"].log():
            self.assertLess(time.monotonic(), deadline, "node a did not log it")
            pub.publish("many/x", b"m")
            time.sleep(0.2)
        spy.drain()
        pub.publish("many/x", b"last")
        copies = spy.subjects(quiet_s=1.0)
        self.assertEqual(len(copies), 64)
        self.assertEqual(len(set(copies)), 64)
        self.assertEqual(self.nodes["a"].log().count("matched more than 64 nodes"), 1)


if __name__ == "__main__":
    unittest.main()
