"""Cluster-wide sessions (docs/cluster.md, "Sessions"): a real nats-server -js
and two moatd nodes. The same client id on the other node takes the session
over (DISCONNECT 0x8E on v5, a plain close on v3.1.1); a persistent session
made on one node resumes on the other with its queued messages in order;
clean start discards it; a Will with delay fires once when its node is
killed (kill -9) and not when its client came back on the other node."""
import time
import unittest

from test_cluster import CROSS_S, ClusterBase
from moattest import Peer

SESSION_TAKEN_OVER = 0x8E
PERSISTENT = {"session_expiry": 600}
# a killed node is found silent after 6 s (nodes.c), then its Wills wait
# their delay: allow for a loaded machine
NODE_DEATH_S = 30.0


class ClusterSessionsTest(ClusterBase):
    def test_takeover_on_another_node_v5_gets_disconnect_0x8e(self):
        old = self.client("a", "roamer", clean=False, props=PERSISTENT)
        old.subscribe(("roam/#", 1))	# after CONNECT: written at the end of that pass
        new = Peer(self.nodes["b"].port)
        self.peers.append(new)
        ack = new.connect("roamer", clean=False, props=PERSISTENT)
        self.assertEqual(ack.session_present, 1)
        old.expect_closed(timeout=CROSS_S, disconnect_rc=SESSION_TAKEN_OVER)
        # the subscription came along: node a sends node b what it matches
        self.link(new, "roam/x")

    def test_takeover_on_another_node_v311_is_closed(self):
        old = Peer(self.nodes["a"].port, version=4)
        self.peers.append(old)
        old.connect("roamer311")
        new = Peer(self.nodes["b"].port, version=4)
        self.peers.append(new)
        new.connect("roamer311")
        self.assertIsNone(old.expect_closed(timeout=CROSS_S))

    def make_offline_session_with_queue(self, client_id, topic, count):
        """A QoS 1 subscription on node a, then offline while <count>
        messages are published to it."""
        sub = self.client("a", client_id, clean=False, props=PERSISTENT)
        sub.subscribe((topic + "/#", 1))
        sub.disconnect()
        pub = self.client("a", "pub-" + client_id)
        for i in range(count):
            pub.publish(topic + "/x", b"%d" % i, qos=1)
        pub.disconnect()

    def test_persistent_session_resumes_on_another_node_in_order(self):
        self.make_offline_session_with_queue("mover", "resume", 10)
        moved = Peer(self.nodes["b"].port)
        self.peers.append(moved)
        ack = moved.connect("mover", clean=False, props=PERSISTENT)
        self.assertEqual(ack.session_present, 1)
        got = [moved.expect_publish(timeout=CROSS_S).payload for _ in range(10)]
        self.assertEqual(got, [b"%d" % i for i in range(10)])
        moved.expect_nothing(timeout=1.0)
        # its subscription lives on node b now: node a sends it what it publishes
        self.link(moved, "resume/later")
        # and node a dropped its copy
        back = self.client("a", "probe-back", clean=True)
        back.disconnect()

    def test_clean_start_on_another_node_discards_the_session(self):
        self.make_offline_session_with_queue("cleaner", "clean", 3)
        fresh = Peer(self.nodes["b"].port)
        self.peers.append(fresh)
        ack = fresh.connect("cleaner", clean=True)	# no session expiry: ends with it
        self.assertEqual(ack.session_present, 0)
        fresh.expect_nothing(timeout=1.5)
        fresh.disconnect()
        time.sleep(1.0)	# node b ends the session (deletes its entry) as it closes
        # node a dropped its copy, and nothing of it is left in the cluster
        again = Peer(self.nodes["a"].port)
        self.peers.append(again)
        ack = again.connect("cleaner", clean=False, props=PERSISTENT)
        self.assertEqual(ack.session_present, 0)
        again.expect_nothing(timeout=1.0)

    def test_will_with_delay_fires_once_when_its_node_dies(self):
        watcher = self.client("b", "will-watcher")
        watcher.subscribe(("wills/#", 1))
        for cid in ("lost", "back"):
            self.client("a", cid, clean=False,
                        props={"session_expiry": 60},
                        will={"topic": "wills/" + cid, "payload": cid.encode(), "qos": 1,
                              "props": {"will_delay": 3}})
        self.kill9("a")
        back = Peer(self.nodes["b"].port)
        self.peers.append(back)
        ack = back.connect("back", clean=False, props={"session_expiry": 60})
        self.assertEqual(ack.session_present, 1)
        will = watcher.expect_publish(timeout=NODE_DEATH_S)
        self.assertEqual((will.topic, will.payload), ("wills/lost", b"lost"))
        # once, and none for the client that came back within its delay
        watcher.expect_nothing(timeout=5.0)

    def test_restarted_node_drops_a_session_taken_over_meanwhile(self):
        port = self.restart_with_store("a")
        watcher = self.client("b", "will-watcher")
        watcher.subscribe(("wills/#", 1))
        gone = self.client("a", "twice", clean=False, props={"session_expiry": 60},
                           will={"topic": "wills/twice", "payload": b"twice", "qos": 1,
                                 "props": {"will_delay": 3}})
        gone.close()	# no DISCONNECT: node a keeps the delayed Will in its store
        time.sleep(0.5)
        self.kill9("a")
        will = watcher.expect_publish(timeout=NODE_DEATH_S)	# node b adopted the session
        self.assertEqual((will.topic, will.payload), ("wills/twice", b"twice"))
        self.start_node("a", port=port)	# its store still has the session and its Will
        watcher.expect_nothing(timeout=5.0)

    def test_will_already_sent_is_not_sent_again_when_its_node_dies(self):
        watcher = self.client("b", "will-watcher")
        watcher.subscribe(("wills/#", 1))
        gone = self.client("a", "sent", clean=False, props={"session_expiry": 60},
                           will={"topic": "wills/sent", "payload": b"sent", "qos": 1,
                                 "props": {"will_delay": 1}})
        gone.close()	# no DISCONNECT: the Will goes out after its delay
        self.assertEqual(watcher.expect_publish(timeout=CROSS_S).topic, "wills/sent")
        time.sleep(1.0)	# node a rewrites the entry without the Will
        self.kill9("a")
        # node b adopts the session (its key is silent after 6 s): no second Will
        deadline = time.monotonic() + NODE_DEATH_S
        while "stopped answering" not in self.nodes["b"].log() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertIn("stopped answering", self.nodes["b"].log())
        watcher.expect_nothing(timeout=3.0)

    def test_nats_outage_longer_than_node_silence_adopts_nothing(self):
        """An outage of NATS is every node's silence: after it, no node takes
        over a session whose client is still connected to another node."""
        watcher = self.client("b", "will-watcher")
        watcher.subscribe(("wills/#", 1))
        live = self.client("a", "live", clean=False, props={"session_expiry": 600},
                           will={"topic": "wills/live", "payload": b"live", "qos": 1})
        self.nats.halt()
        time.sleep(9.0)	# longer than the 6 s after which a silent node counts as dead
        self.nats.start()
        watcher.expect_nothing(timeout=10.0)
        live.ping()
        for name in ("a", "b"):
            self.assertNotIn("took over", self.nodes[name].log())


if __name__ == "__main__":
    unittest.main()
