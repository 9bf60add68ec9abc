"""A cluster node restarted with its store while NATS is down (docs/cluster.md,
"A node dies" and "When NATS is unreachable"): a real nats-server -js and two
moatd nodes, node a with persistence. Sessions that clients make on node a
before it joins are claimed at the join (an old delete marker of the client
id does not end them; the entry names node a even where it named another
node); the delayed Wills of the sessions from the store are held until the
join settles them: sent once by node a when the sessions bucket still names
it (a session whose expiry passed meanwhile ends then, with its Will),
dropped when node b adopted the session (and sent its Will) meanwhile. A
session its client resumed on node a before the join ends node b's adopted
copy without its Will (the claim at the join says "resumed"). A session that
node b adopted and its client then started clean there is not handed node a's
queued messages when node a restarts (the entry says it was not resumed). A
held Will whose delay passed goes out once at the join also when its client
came back on node a before it."""
import signal
import time
import unittest

from moattest import Peer
from test_cluster import CROSS_S
from test_cluster_degraded import RECONNECT_S, StoredBase
from test_cluster_sessions import NODE_DEATH_S

PERSISTENT = {"session_expiry": 600}
# a restored node joins once NATS is back (reconnect backoff up to 5 s) and
# settles its sessions at its next loop pass: well within this
JOIN_S = RECONNECT_S + 10.0


class RestoreWhileNatsDownTest(StoredBase):
    def wait_log(self, node, text, timeout=JOIN_S):
        deadline = time.monotonic() + timeout
        while text not in node.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertIn(text, node.log())

    def connect(self, node, client_id, **kw):
        """A client of node <node>, and its CONNACK."""
        p = Peer(self.nodes[node].port)
        self.peers.append(p)
        return p, p.connect(client_id, **kw)

    def join(self, node):
        self.nats.start()
        self.wait_log(node, "joined cluster test")

    def test_session_made_before_the_join_survives_an_old_delete_marker(self):
        old = self.client("a", "c1", clean=False, props=PERSISTENT)
        old.subscribe(("old/#", 1))
        old.disconnect()
        # a clean start on node b ends it there: its entry is deleted
        fresh = self.client("b", "c1", clean=True)
        fresh.disconnect()
        time.sleep(1.0)
        node = self.restart_without_nats("a")
        made = self.client("a", "c1", clean=False, props=PERSISTENT)
        made.subscribe(("keep/#", 1))
        made.disconnect()
        pub = self.client("a", "pub-keep")
        for i in range(3):
            pub.publish("keep/x", b"%d" % i, qos=1)
        self.join(node)
        self.wait_log(node, "sessions made while no claim could be written")
        back, ack = self.connect("a", "c1", clean=False, props=PERSISTENT)
        self.assertEqual(ack.session_present, 1)
        got = [back.expect_publish(timeout=CROSS_S).payload for _ in range(3)]
        self.assertEqual(got, [b"0", b"1", b"2"])
        back.expect_nothing(timeout=1.0)
        self.assertNotIn("ended on another node while this node was down", node.log())

    def test_session_made_before_the_join_takes_over_another_nodes(self):
        there = self.client("b", "c2", clean=False, props=PERSISTENT)
        there.subscribe(("there/#", 1))
        there.disconnect()
        time.sleep(1.0)  # its entry names node b, with its subscription
        node = self.restart_without_nats("a")
        here, ack = self.connect("a", "c2", clean=True, props=PERSISTENT)
        self.assertEqual(ack.session_present, 0)
        here.subscribe(("here/#", 1))
        here.disconnect()
        self.join(node)
        self.wait_log(node, "sessions made while no claim could be written")
        # node a's claim at the join named it: the session resumes on node
        # b from node a's entry, with the subscription made on node a
        moved, ack = self.connect("b", "c2", clean=False, props=PERSISTENT)
        self.assertEqual(ack.session_present, 1)
        self.link(moved, "here/x")

    def offline_will(self, client_id, topic, delay_s):
        """A session on node a whose client went without DISCONNECT: its
        Will (delay <delay_s>) waits in node a's store."""
        gone = self.client("a", client_id, clean=False, props=PERSISTENT,
                           will={"topic": topic, "payload": client_id.encode(), "qos": 1,
                                 "props": {"will_delay": delay_s}})
        gone.close()
        self.peers.remove(gone)
        time.sleep(0.5)

    def test_held_will_goes_out_once_when_the_bucket_keeps_the_session(self):
        watch = self.client("a", "watch-kept", clean=False, props=PERSISTENT)
        watch.subscribe(("wills/#", 1))
        watch.disconnect()
        b = self.nodes.pop("b")
        b.stop(check=True)  # no node can adopt node a's sessions
        b.cleanup()
        self.offline_will("kept", "wills/kept", 2)
        node = self.restart_without_nats("a", kill=True)
        time.sleep(4.0)  # its delay has passed: held all the same
        watch = self.client("a", "watch-kept", clean=False, props=PERSISTENT)
        watch.expect_nothing(timeout=2.0)
        self.join(node)
        will = watch.expect_publish(timeout=JOIN_S)
        self.assertEqual((will.topic, will.payload), ("wills/kept", b"kept"))
        watch.expect_nothing(timeout=3.0)

    def test_held_will_past_its_delay_goes_out_when_its_client_is_back_first(self):
        watch = self.client("a", "watch-back", clean=False, props=PERSISTENT)
        watch.subscribe(("wills/#", 1))
        watch.disconnect()
        b = self.nodes.pop("b")
        b.stop(check=True)  # no node can adopt node a's sessions
        b.cleanup()
        self.offline_will("back", "wills/back", 2)
        node = self.restart_without_nats("a", kill=True)
        time.sleep(4.0)  # its delay has passed while it was held
        back, ack = self.connect("a", "back", clean=False, props=PERSISTENT)
        self.assertEqual(ack.session_present, 1)
        watch = self.client("a", "watch-back", clean=False, props=PERSISTENT)
        watch.expect_nothing(timeout=1.0)
        # the claim at the join finds the entry naming node a: the Will
        # that was due goes out then, once
        self.join(node)
        will = watch.expect_publish(timeout=JOIN_S)
        self.assertEqual((will.topic, will.payload), ("wills/back", b"back"))
        watch.expect_nothing(timeout=3.0)

    def test_will_of_a_session_adopted_meanwhile_goes_out_once(self):
        watch = self.client("b", "watch-adopted", clean=False, props=PERSISTENT)
        watch.subscribe(("wills/#", 1))
        self.link(watch, "wills/probe")
        self.offline_will("adopted", "wills/adopted", 2)
        port = self.nodes["a"].port
        self.kill9("a")
        will = watch.expect_publish(timeout=NODE_DEATH_S)  # node b adopted the session
        self.assertEqual((will.topic, will.payload), ("wills/adopted", b"adopted"))
        self.stop_nats()
        node = self.start_node("a", port=port)  # its store still has the session and its Will
        self.assertIn("no NATS server reachable", node.log())
        time.sleep(3.0)
        self.join(node)
        self.wait_log(node, "moved to node b while this node was down")
        watch.expect_nothing(timeout=8.0)


    def test_will_of_a_session_that_expired_while_held_goes_out(self):
        watch = self.client("a", "watch-expired", clean=False, props=PERSISTENT)
        watch.subscribe(("wills/#", 1))
        watch.disconnect()
        b = self.nodes.pop("b")
        b.stop(check=True)  # no node can adopt node a's sessions
        b.cleanup()
        gone = self.client("a", "expired", clean=False, props={"session_expiry": 4},
                           will={"topic": "wills/expired", "payload": b"expired", "qos": 1,
                                 "props": {"will_delay": 600}})
        gone.close()
        self.peers.remove(gone)
        time.sleep(0.5)
        node = self.restart_without_nats("a", kill=True)
        time.sleep(5.0)  # its expiry passes while it is held: it ends once settled
        self.join(node)
        watch = self.client("a", "watch-expired", clean=False, props=PERSISTENT)
        will = watch.expect_publish(timeout=JOIN_S)
        self.assertEqual((will.topic, will.payload), ("wills/expired", b"expired"))
        watch.expect_nothing(timeout=2.0)

    def test_session_resumed_before_the_join_keeps_the_adopters_will(self):
        watch = self.client("b", "watch-resumed", clean=False, props=PERSISTENT)
        watch.subscribe(("wills/#", 1))
        self.link(watch, "wills/probe")
        self.offline_will("resumer", "wills/resumer", 60)
        port = self.nodes["a"].port
        self.kill9("a")
        self.wait_log(self.nodes["b"], "sessions of node a", timeout=NODE_DEATH_S)
        self.stop_nats()
        node = self.start_node("a", port=port)
        self.assertIn("no NATS server reachable", node.log())
        back, ack = self.connect("a", "resumer", clean=False, props=PERSISTENT)
        self.assertEqual(ack.session_present, 1)
        # the claim at the join says the session went on here: node b's
        # adopted copy is handed over, its delayed Will dropped, not sent.
        # Node a joins once node b is back on NATS, to hear its notice
        node.proc.send_signal(signal.SIGSTOP)
        try:
            self.nats.start()
            self.wait_log(self.nodes["b"], "reconnected to NATS")
            time.sleep(0.5)
        finally:
            node.proc.send_signal(signal.SIGCONT)
        self.wait_log(node, "joined cluster test")
        self.wait_log(self.nodes["b"], "session resumer taken over by node a")
        watch.expect_nothing(timeout=3.0)

    def test_clean_start_after_adoption_gets_no_restored_messages(self):
        gone = self.client("a", "cleaned", clean=False, props=PERSISTENT)
        gone.subscribe(("cleaned/#", 1))
        gone.disconnect()
        pub = self.client("a", "pub-cleaned")
        for i in range(3):
            pub.publish("cleaned/x", b"%d" % i, qos=1)  # PUBACK: queued in node a's store
        port = self.nodes["a"].port
        self.kill9("a")
        self.wait_log(self.nodes["b"], "sessions of node a", timeout=NODE_DEATH_S)
        fresh, ack = self.connect("b", "cleaned", clean=True, props=PERSISTENT)
        self.assertEqual(ack.session_present, 0)
        fresh.subscribe(("cleaned/#", 1))
        node = self.start_node("a", port=port)  # NATS is up: it settles its store at once
        self.wait_log(node, "session cleaned was started clean on node b")
        fresh.expect_nothing(timeout=3.0)

if __name__ == "__main__":
    unittest.main()
