"""Cluster sessions' handover and entry writes (docs/cluster.md, "Sessions"):
a real nats-server -js and two moatd nodes. A node restarted with its store
hands the queued messages of a session that moved to another node while it
was down over to that node (which waits for them if it has not restored the
session yet), and drops (without its Will) a session that ended on another
node meanwhile (its entry deleted), and writes again the entry of one it
keeps; a node without persistence deletes its sessions' entries when it
stops (at once, waiting once), so no node resumes what is lost; a stalled
JetStream holds a CONNECT about a second, not half a minute; forged takeover
notices and handed-over messages (anyone on NATS can publish them) neither
kick a client nor reach a session its subscriptions would not; a handover
is not bounded by the outbound queue; and a session entry's conditional
delete leaves another writer's newer claim (cluster_kv_writers, two writers
on one key)."""
import os
import signal
import subprocess
import time
import unittest

from test_cluster import CROSS_S, ClusterBase, NatsServer, NatsWatcher, nats_publish
from moattest import Peer

PERSISTENT = {"session_expiry": 600}


def persisted_everywhere():
    return bool(os.environ.get("MOAT_TEST_PERSISTENCE"))


class HandoverTest(ClusterBase):
    def restart(self, name, port):
        self.nodes[name].stop(check=True)
        self.nodes[name].cleanup()
        return self.start_node(name, port=port)

    def wait_deleted(self, entries, timeout):
        """Waits until <entries> (a NatsWatcher on a session's key) sees its
        delete marker (a message without data)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(data == b"" for _, data in entries.messages(quiet_s=1.0)):
                return
        self.fail("the session's entry was not deleted")

    def test_restarted_node_hands_over_what_its_store_queued(self):
        port = self.restart_with_store("a")
        sub = self.client("a", "mover", clean=False, props=PERSISTENT)
        sub.subscribe(("stored/#", 1))
        sub.disconnect()
        pub = self.client("a", "pub-stored")
        for i in range(10):
            pub.publish("stored/x", b"%d" % i, qos=1)
        pub.disconnect()
        self.nodes["a"].stop(check=True)	# a clean stop: its store keeps the session
        moved = Peer(self.nodes["b"].port)
        self.peers.append(moved)
        ack = moved.connect("mover", clean=False, props=PERSISTENT)
        self.assertEqual(ack.session_present, 1)	# node b resumed it from its entry
        moved.expect_nothing(timeout=1.0)	# the queue is in node a's store
        self.nodes["a"].cleanup()
        self.start_node("a", port=port)
        got = [moved.expect_publish(timeout=CROSS_S).payload for _ in range(10)]
        self.assertEqual(got, [b"%d" % i for i in range(10)])
        moved.expect_nothing(timeout=1.0)
        self.wait_log("a", "moved to node b while this node was down")
        # node a dropped its copy: the session goes on on node b alone
        self.restart("a", port)
        self.wait_log("a", "worker 0 settled")
        self.assertNotIn("moved to node b", self.nodes["a"].log())

    def test_handed_over_messages_wait_for_their_restored_session(self):
        """Node a hands messages over to node b while b is down; b consumes
        them when it starts, once its store gave its sessions back: they go
        into the restored session, in their order."""
        port_a = self.restart_with_store("a")
        port_b = self.restart_with_store("b")
        sub = self.client("a", "waiter", clean=False, props=PERSISTENT)
        sub.subscribe(("waiting/#", 1))
        sub.disconnect()
        pub = self.client("a", "pub-waiting")
        for i in range(10):
            pub.publish("waiting/x", b"%d" % i, qos=1)
        pub.disconnect()
        self.nodes["a"].stop(check=True)
        moved = self.client("b", "waiter", clean=False, props=PERSISTENT)
        moved.disconnect()	# offline on node b, in its store
        self.nodes["b"].stop(check=True)	# b is down when a hands over
        self.nodes["a"].cleanup()
        self.start_node("a", port=port_a)
        self.wait_log("a", "moved to node b while this node was down")
        self.nodes["b"].cleanup()
        self.start_node("b", port=port_b)
        back = Peer(self.nodes["b"].port)
        self.peers.append(back)
        self.assertEqual(back.connect("waiter", clean=False, props=PERSISTENT).session_present, 1)
        got = [back.expect_publish(timeout=CROSS_S).payload for _ in range(10)]
        self.assertEqual(got, [b"%d" % i for i in range(10)])
        back.expect_nothing(timeout=1.0)
        self.assertNotIn("no such session here", self.nodes["b"].log())

    def test_restarted_node_drops_a_session_ended_elsewhere(self):
        port = self.restart_with_store("a")
        watcher = self.client("b", "will-watcher")
        watcher.subscribe(("wills/#", 1))
        entries = NatsWatcher(self.nats.port, "$KV.test_sessions.ended")
        self.addCleanup(entries.close)
        gone = self.client("a", "ended", clean=False, props=PERSISTENT,
                           will={"topic": "wills/ended", "payload": b"ended", "qos": 1,
                                 "props": {"will_delay": 5}})
        gone.close()	# no DISCONNECT: node a keeps the session and its delayed Will in its store
        time.sleep(0.5)
        self.kill9("a")
        # the client comes back on node b within the delay, with clean start, and
        # leaves: the session ends there (no Will: its client came back), its entry
        # is deleted
        back = self.client("b", "ended", clean=True)
        back.disconnect()
        self.wait_deleted(entries, CROSS_S)
        self.start_node("a", port=port)	# its store still has the session and its Will
        watcher.expect_nothing(timeout=8.0)
        self.assertIn("ended on another node while this node was down", self.nodes["a"].log())

    def test_restarted_node_claims_again_a_session_it_keeps(self):
        """The entry still names node a when it restarts: a writes it again
        (at the revision it read), so an adopter's claim at the same moment
        cannot also succeed."""
        port = self.restart_with_store("a")
        kept = self.client("a", "kept", clean=False, props=PERSISTENT)
        kept.subscribe(("kept/#", 1))
        kept.disconnect()
        time.sleep(0.5)	# its offline entry is written
        self.nodes["a"].stop(check=True)
        entries = NatsWatcher(self.nats.port, "$KV.test_sessions.kept")
        self.addCleanup(entries.close)
        self.nodes["a"].cleanup()
        self.start_node("a", port=port)
        written = [data for _, data in entries.messages(quiet_s=2.0) if data]
        self.assertEqual(len(written), 1, "node a did not write the entry again")
        back = Peer(self.nodes["b"].port)
        self.peers.append(back)
        self.assertEqual(back.connect("kept", clean=False, props=PERSISTENT).session_present, 1)

    def test_forged_notice_naming_the_node_itself_is_ignored(self):
        """A takeover notice on node a's subject that names node a as the
        new owner, at every revision the entry may have (the bucket confirms
        one of them: its entry names node a): node a keeps its client."""
        victim = self.client("a", "victim", clean=False, props=PERSISTENT)
        victim.subscribe(("forged/#", 1))
        nats_publish(self.nats.port, [("test.s.a", b"%d %d a victim" % (hand, rev))
                                      for rev in range(0, 200) for hand in (0, 1)])
        victim.expect_nothing(timeout=2.0)	# no DISCONNECT 0x8E, not closed
        pub = self.client("a", "pub-forged")
        pub.publish("forged/x", b"still here", qos=1)
        self.assertEqual(victim.expect_publish(timeout=CROSS_S).payload, b"still here")
        self.assertNotIn("victim taken over", self.nodes["a"].log())

    def test_forged_handover_goes_only_where_a_subscription_takes_it(self):
        """A real handed-over message replayed on node b's stream subject
        for other sessions (its session key changed): one not subscribed to
        its topic does not get it, one subscribed at QoS 0 gets it at QoS 0."""
        stream = NatsWatcher(self.nats.port, "test.n.b.>")
        self.addCleanup(stream.close)
        sub = self.client("a", "mover", clean=False, props=PERSISTENT)
        sub.subscribe(("moving/#", 1))
        sub.disconnect()
        pub = self.client("a", "pub-moving")
        pub.publish("moving/x", b"queued", qos=1)
        moved = self.client("b", "mover", clean=False, props=PERSISTENT)
        self.assertEqual(moved.expect_publish(timeout=CROSS_S).payload, b"queued")
        real = [data for _, data in stream.messages(quiet_s=1.0) if data[:1] == b"\x02"]
        self.assertEqual(len(real), 1)
        none = self.client("b", "vnone", clean=False, props=PERSISTENT)
        none.subscribe(("unrelated/#", 2))
        zero = self.client("b", "vzero", clean=False, props=PERSISTENT)
        zero.subscribe(("moving/#", 0))
        data = real[0]
        ids = data[3]
        at = 4 + 4 * ids
        key_len = int.from_bytes(data[at:at + 2], "big")
        rest = data[at + 2 + key_len:]
        nats_publish(self.nats.port, [("test.n.b.moving.x",
                                       data[:at] + len(key).to_bytes(2, "big") + key + rest)
                                      for key in (b"vnone", b"vzero")])
        got = zero.expect_publish(timeout=CROSS_S)
        self.assertEqual((got.payload, got.qos), (b"queued", 0))
        none.expect_nothing(timeout=2.0)
        self.assertIn("vnone: it matches none of the session's subscriptions",
                      self.nodes["b"].log())

    def test_stalled_jetstream_holds_a_connect_about_a_second(self):
        """nats-server stopped with SIGSTOP: the connections stay up but no
        request is answered. A CONNECT's claim gives up after the worker's
        1 s wait instead of 3 tries of two 5 s requests: at its read ("cannot
        claim it"), or at its write when the read was answered just before
        the stop (the claim is then read again every second)."""
        self.nats.proc.send_signal(signal.SIGSTOP)
        try:
            start = time.monotonic()
            self.client("a", "stalled", clean=False, props=PERSISTENT)
            took = time.monotonic() - start
        finally:
            self.nats.proc.send_signal(signal.SIGCONT)
        self.assertLess(took, 5.0, "the CONNECT took %.2f s" % took)
        log = self.nodes["a"].log()
        self.assertTrue("stalled: cannot claim it in the sessions bucket" in log or
                        "stalled: the sessions bucket did not answer its claim" in log, log)

    @unittest.skipIf(persisted_everywhere(), "both nodes keep their sessions in a store")
    def test_clean_stop_without_persistence_ends_its_sessions(self):
        sub = self.client("a", "volatile", clean=False, props=PERSISTENT)
        sub.subscribe(("volatile/#", 1))
        sub.disconnect()
        time.sleep(0.5)	# its offline entry is written
        self.nodes["a"].stop(check=True)
        # what node a had is lost with it: node b does not resume it
        again = Peer(self.nodes["b"].port)
        self.peers.append(again)
        ack = again.connect("volatile", clean=False, props=PERSISTENT)
        self.assertEqual(ack.session_present, 0)
        self.assertIn("1 sessions end with this node", self.nodes["a"].log())

    @unittest.skipIf(persisted_everywhere(), "both nodes keep their sessions in a store")
    def test_clean_stop_with_a_stalled_jetstream_waits_once_for_all_deletes(self):
        """30 sessions, then nats-server stopped with SIGSTOP: node a's clean
        stop sends its 30 conditional deletes at once and waits once (5 s),
        not 1 s per session."""
        for i in range(30):
            self.client("a", "many-%d" % i, clean=False, props=PERSISTENT).disconnect()
        time.sleep(0.5)	# their offline entries are written
        self.nats.proc.send_signal(signal.SIGSTOP)
        try:
            start = time.monotonic()
            self.nodes["a"].stop(check=True)
            took = time.monotonic() - start
        finally:
            self.nats.proc.send_signal(signal.SIGCONT)
        self.assertLess(took, 14.0, "the stop took %.2f s" % took)
        self.assertIn("30 sessions end with this node", self.nodes["a"].log())


class HandoverOverTheQueueBoundTest(ClusterBase):
    """Node a's outbound queue holds 4 KiB: a session's handover is not
    bounded by it (nothing acknowledged is lost), and does not fill it for
    the node's publishers."""
    node_config_a = "cluster_queue_max_bytes 4096\n"

    def test_handover_larger_than_the_queue_bound_arrives_whole(self):
        sub = self.client("a", "big-mover", clean=False, props=PERSISTENT)
        sub.subscribe(("big/#", 1))
        sub.disconnect()
        pub = self.client("a", "pub-big")
        for i in range(20):
            pub.publish("big/x", b"%02d" % i + b"." * 1000, qos=1)
        moved = Peer(self.nodes["b"].port)
        self.peers.append(moved)
        self.assertEqual(moved.connect("big-mover", clean=False, props=PERSISTENT)
                         .session_present, 1)
        got = [moved.expect_publish(timeout=CROSS_S).payload[:2] for _ in range(20)]
        self.assertEqual(got, [b"%02d" % i for i in range(20)])
        moved.expect_nothing(timeout=1.0)
        self.assertNotIn("cannot be handed over", self.nodes["a"].log())


@unittest.skipUnless(os.environ.get("MOAT_KV_WRITERS"), "MOAT_KV_WRITERS is not set")
class ConditionalDeleteTest(unittest.TestCase):
    def test_two_writers_a_delete_leaves_the_newer_claim(self):
        nats = NatsServer()
        self.addCleanup(nats.stop)
        nats.start()
        run = subprocess.run([os.environ["MOAT_KV_WRITERS"], "nats://127.0.0.1:%d" % nats.port],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stderr)


if __name__ == "__main__":
    unittest.main()
