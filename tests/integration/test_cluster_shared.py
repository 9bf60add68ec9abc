"""Shared subscriptions across cluster nodes (docs/cluster.md, "Shared
subscriptions"): a real nats-server -js and three nodes; members of one
share on nodes a and b, the publisher on node c. Every message reaches
exactly one member in the whole cluster, both nodes' members get some, a
plain subscriber next to a member still gets each message once, and QoS 1
stays at least once while a member with a persistent session is away; when
the last member on a node leaves, the other node's members get it all.
A member next to its publisher gets every message right after its SUBACK
(before the share crossed NATS), a share name with JSON quotes in it works
and injects nothing into the consumer NATS creates for it, one client's
hundreds of shares do not crowd out another share, and a message put into
NATS on a share's subject with a topic outside the share's filter is
dropped. A node frees a share no node holds any more ($SYS/broker/cluster/
shares goes back down), and a share subscribed to again afterwards still
balances across nodes."""
import hashlib
import json
import socket
import time
import unittest

from test_cluster import CROSS_S, ClusterBase, NatsWatcher

SHARE = "$share/g/t/#"


class SharedBase(ClusterBase):
    """Nodes a, b and c."""

    def setUp(self):
        super().setUp()
        self.start_node("c")

    def link_share(self, members, topic="t/probe"):
        """Publishes QoS 0 probes on node c until every member has had one
        (each node joined the share's queue group), then drains them."""
        probe = self.client("c", "probe-%d" % len(self.peers))
        seen = set()
        deadline = time.monotonic() + 2 * CROSS_S
        while len(seen) < len(members) and time.monotonic() < deadline:
            probe.publish(topic, b"probe")
            for i, m in enumerate(members):
                try:
                    if m.expect_publish(timeout=0.1).payload == b"probe":
                        seen.add(i)
                except socket.timeout:
                    pass
        self.assertEqual(len(seen), len(members), "not every member joined the share")
        probe.disconnect()
        time.sleep(1.0)  # the last probes are on their way
        for m in members:
            m.drain_publishes(quiet_s=1.0)

    def collect(self, peers, want, seconds=CROSS_S):
        """Payloads each peer receives until <want> arrived in total and
        nothing more comes for a second."""
        got = [[] for _ in peers]
        deadline = time.monotonic() + seconds
        quiet = None
        while time.monotonic() < deadline:
            any_new = False
            for i, p in enumerate(peers):
                try:
                    got[i].append(p.expect_publish(timeout=0.05).payload)
                    any_new = True
                except socket.timeout:
                    pass
            if any_new:
                quiet = None
            elif sum(map(len, got)) >= want:
                quiet = quiet or time.monotonic()
                if time.monotonic() - quiet > 1.0:
                    break
        return got

    def balanced(self, members, topic, n=50):
        """Publishes <n> QoS 1 messages on <topic> from node c: each reaches
        one of <members> (on different nodes), and every member gets some."""
        pub = self.client("c", "publisher-%d" % len(self.peers))
        for i in range(n):
            pub.publish(topic, b"%d" % i, qos=1)
        got = self.collect(members, n)
        self.assertEqual(sorted(sum(got, []), key=int), [b"%d" % i for i in range(n)])
        for g in got:
            self.assertGreater(len(g), 0)


class ClusterSharedTest(SharedBase):
    def test_each_message_once_per_share_across_nodes(self):
        n = 200
        ma = self.client("a", "member-a")
        ma.subscribe((SHARE, 1))
        mb = self.client("b", "member-b")
        mb.subscribe((SHARE, 1))
        plain = self.client("b", "plain-b")
        plain.subscribe(("t/#", 1))
        self.link_share([ma, mb])
        plain.drain_publishes(quiet_s=1.0)
        pub = self.client("c", "publisher")
        for i in range(n):
            pub.publish("t/x", b"%d" % i, qos=1)
        got_a, got_b = self.collect([ma, mb], n)
        everything = sorted(got_a + got_b, key=int)
        self.assertEqual(everything, [b"%d" % i for i in range(n)])  # once each, in total
        self.assertGreater(len(got_a), 0)
        self.assertGreater(len(got_b), 0)
        got_plain = self.collect([plain], n)[0]
        self.assertEqual(got_plain, [b"%d" % i for i in range(n)])  # not doubled by the share

    def test_qos1_at_least_once_while_a_member_is_away(self):
        n = 100
        expiry = [("session_expiry", 300)]
        ma = self.client("a", "member-a", clean=False, props=expiry)
        ma.subscribe((SHARE, 1))
        mb = self.client("b", "member-b")
        mb.subscribe((SHARE, 1))
        self.link_share([ma, mb])
        pub = self.client("c", "publisher")
        for i in range(n // 2):
            pub.publish("t/x", b"%d" % i, qos=1)
        first_a, first_b = self.collect([ma, mb], n // 2)
        ma.close()  # away: its session keeps its share of what comes
        for i in range(n // 2, n):
            pub.publish("t/x", b"%d" % i, qos=1)
        time.sleep(2.0)
        back = self.client("a", "member-a", clean=False, props=expiry)
        later_a, later_b = self.collect([back, mb], n - len(first_a) - len(first_b))
        everything = set(first_a + first_b + later_a + later_b)
        self.assertEqual(everything, {b"%d" % i for i in range(n)})
        self.assertGreater(len(later_a), 0, "the away member's session got none")

    def test_last_member_leaving_a_node_moves_the_share(self):
        n = 50
        ma = self.client("a", "member-a")
        ma.subscribe((SHARE, 1))
        mb = self.client("b", "member-b")
        mb.subscribe((SHARE, 1))
        self.link_share([ma, mb])
        ma.unsubscribe(SHARE)
        time.sleep(2.0)  # node a leaves the share's queue group
        pub = self.client("c", "publisher")
        for i in range(n):
            pub.publish("t/x", b"%d" % i, qos=1)
        got_b = self.collect([mb], n)[0]
        self.assertEqual(sorted(got_b, key=int), [b"%d" % i for i in range(n)])
        ma.expect_nothing(timeout=0.5)

    def test_member_next_to_publisher_right_after_suback(self):
        # the share reaches the cluster's index only after a round trip
        # through the interest bucket: until then node a delivers directly,
        # and no PUBACKed message is lost on the way
        n = 50
        member = self.client("a", "member-a")
        pub = self.client("a", "publisher")
        member.subscribe(("$share/g/q/#", 1))
        for i in range(n):
            pub.publish("q/x", b"%d" % i, qos=1)
        got = self.collect([member], n)[0]
        self.assertEqual(sorted(got, key=int), [b"%d" % i for i in range(n)])

    def test_share_name_with_json_quotes(self):
        share = '$share/g/x","headers_only":true,"y":"z'
        topic = 'x","headers_only":true,"y":"z'
        n = 20
        ma = self.client("a", "member-a")
        ma.subscribe((share, 1))
        mb = self.client("b", "member-b")
        mb.subscribe((share, 1))
        self.link_share([ma, mb], topic)
        pub = self.client("c", "publisher")
        for i in range(n):
            pub.publish(topic, b"%d" % i, qos=1)
        got_a, got_b = self.collect([ma, mb], n)
        self.assertEqual(sorted(got_a + got_b, key=int), [b"%d" % i for i in range(n)])
        durable = "share-" + share_id(share)
        info = js_request(self.nats.port, "$JS.API.CONSUMER.INFO.test_shares." + durable)
        self.assertEqual(info.get("name"), durable, info)
        for injected in ("headers_only", "y", "description"):
            self.assertNotIn(injected, info["config"])

    def test_many_shares_of_one_client_crowd_out_none(self):
        n = 5
        hog = self.client("b", "hog")
        hog.subscribe(*[("$share/g%d/t/#" % i, 0) for i in range(300)])
        member = self.client("a", "member-a")
        member.subscribe(("$share/other/t/#", 0))
        self.link_share([member])
        hog.drain_publishes(quiet_s=1.0)
        pub = self.client("c", "publisher")
        for i in range(n):
            pub.publish("t/x", b"%d" % i)
        got = self.collect([member], n)[0]
        self.assertEqual(got, [b"%d" % i for i in range(n)])
        self.assertEqual(len(hog.drain_publishes(quiet_s=1.0)), 300 * n)

    def test_message_outside_the_shares_filter_is_dropped(self):
        # a copy of a real share message ("a/x"), put into NATS on the
        # subject of the share "$share/g/b/#" by someone with NATS access
        ma = self.client("a", "member-a")
        ma.subscribe(("$share/g/a/#", 1))
        mb = self.client("b", "member-b")
        mb.subscribe(("$share/g/b/#", 1))
        self.link_share([ma], "a/probe")
        self.link_share([mb], "b/probe")
        spy = NatsWatcher(self.nats.port, "test.g.>")
        self.addCleanup(spy.close)
        self.client("c", "publisher").publish("a/x", b"not for b", qos=1)
        self.assertEqual(ma.expect_publish(timeout=CROSS_S).payload, b"not for b")
        data = next(d for subject, d in spy.messages(quiet_s=1.0) if subject.endswith(".a.x"))
        subject = "test.g.%s.b.x" % share_id("$share/g/b/#")
        spy.sock.sendall(b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(data), data))
        mb.expect_nothing(timeout=3.0)
        deadline = time.monotonic() + CROSS_S
        while "its topic is not one of the share's" not in self.nodes["b"].log():
            self.assertLess(time.monotonic(), deadline, "node b did not log the drop")
            time.sleep(0.2)


class ShareLifetimeTest(SharedBase):
    """$SYS/broker/cluster/shares every second on nodes a and b."""
    node_config_a = node_config_b = "sys_interval 1\n"

    def wait_shares(self, watchers, want):
        """Reads each watcher's $SYS/broker/cluster/shares until it is <want>."""
        for node, w in watchers.items():
            deadline = time.monotonic() + 3 * CROSS_S
            seen = None
            while seen != want:
                self.assertLess(time.monotonic(), deadline,
                                "node %s keeps %s shares, not %d" % (node, seen, want))
                try:
                    p = w.expect_publish(timeout=0.5)
                except socket.timeout:
                    continue
                if p.topic == "$SYS/broker/cluster/shares":
                    seen = int(p.payload)

    def test_shares_no_node_holds_are_freed(self):
        watchers = {}
        for node in ("a", "b"):
            watchers[node] = self.client(node, "sys-" + node)
            watchers[node].subscribe(("$SYS/broker/cluster/shares", 0))
        self.wait_shares(watchers, 0)
        shares = ["$share/g%d/s/%d" % (i, i) for i in range(200)]
        user = self.client("a", "many-shares")
        user.subscribe(*[(f, 1) for f in shares])
        self.wait_shares(watchers, 200)	# node b knows them from node a's interest
        # a message through one of them: its worker and worker 0 held the share
        user.publish("s/5", b"through g5", qos=1)
        self.assertEqual(user.expect_publish(timeout=CROSS_S).payload, b"through g5")
        user.unsubscribe(*shares)
        self.wait_shares(watchers, 0)
        # one of them again, now on two nodes: it balances as before
        ma = self.client("a", "member-a")
        ma.subscribe((shares[7], 1))
        mb = self.client("b", "member-b")
        mb.subscribe((shares[7], 1))
        self.link_share([ma, mb], "s/7")
        self.wait_shares(watchers, 1)
        self.balanced([ma, mb], "s/7")


def share_id(share):
    return hashlib.sha256(share.encode()).hexdigest()[:16]


def js_request(port, subject, payload=b""):
    """A JetStream API request over NATS's text protocol: its JSON answer."""
    inbox = "_INBOX.moattest.%d" % time.monotonic_ns()
    w = NatsWatcher(port, inbox)
    try:
        w.sock.sendall(b"PUB %s %s %d\r\n%s\r\n"
                       % (subject.encode(), inbox.encode(), len(payload), payload))
        while True:
            line = w._line()
            if line.startswith(b"PING"):
                w.sock.sendall(b"PONG\r\n")
            elif line.startswith(b"MSG "):
                size = int(line.split()[-1])
                while len(w.buf) < size + 2:
                    w.buf += w.sock.recv(65536)
                return json.loads(w.buf[:size])
    finally:
        w.close()


if __name__ == "__main__":
    unittest.main()
