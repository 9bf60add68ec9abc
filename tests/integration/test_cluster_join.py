"""moatd joining and leaving the cluster (docs/cluster.md, "Joining" and
"Stopping"): a real nats-server -js on loopback and moatd nodes.

- A node stops promptly when NATS is gone (no wait for answers that cannot
  come), whether it had joined or never could.
- A node stopped while it adopts a dead node's sessions (a test hook of
  debug builds holds an adoption between its claim and its session) makes
  the claimed sessions before it leaves: with a store, the session is there
  when it starts again (its delayed Will goes out from there); without, its
  Will goes out at the stop.
- A join that fails (NATS without JetStream) is tried again until it works:
  the node then exchanges messages with the others."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from moattest import Broker, Peer
from test_cluster import CROSS_S, NATS_SERVER, ClusterBase, NatsServer

# a node stops within this once NATS is gone (it used to take 5 s and more)
STOP_S = 4.0
# a killed node is found silent after 6 s, then adopted: allow for a loaded machine
NODE_DEATH_S = 30.0
HOLD_MS = 60000
# the interest watch's first entry held past the join's 5 s wait
INTEREST_HOLD_MS = 8000


def stop_timed(node):
    """SIGTERM to <node>; returns how long it took to exit (exit code 0 asserted)."""
    started = time.monotonic()
    node.proc.send_signal(signal.SIGTERM)
    node.proc.wait(timeout=30)
    took = time.monotonic() - started
    node.logf.close()
    code = node.proc.returncode
    node.proc = None
    if code != 0:
        raise AssertionError("node exit code %d:\n%s" % (code, node.log()[-4000:]))
    return took


class ClusterStopTest(ClusterBase):
    def test_stop_with_nats_gone_is_prompt(self):
        self.wait_log("a", "cluster: node a joined")
        self.nats.halt()
        self.wait_log("a", "lost the connection to NATS")
        took = stop_timed(self.nodes["a"])
        print("\nnode a stopped in %.2f s with NATS gone" % took)
        self.assertLess(took, STOP_S)

    def test_stop_with_nats_stalled_is_bounded(self):
        # a NATS server that keeps the connection but answers nothing (a
        # stalled server or a partition): every wait for it ends together
        self.wait_log("a", "cluster: node a joined")
        os.kill(self.nats.proc.pid, signal.SIGSTOP)
        self.addCleanup(os.kill, self.nats.proc.pid, signal.SIGCONT)
        time.sleep(1.5)	# the heartbeat waits for an answer now
        took = stop_timed(self.nodes["a"])
        print("\nnode a stopped in %.2f s with NATS stalled" % took)
        self.assertLess(took, STOP_S)
        self.assertIn("NATS did not answer", self.nodes["a"].log())

    def test_stop_before_joining_is_prompt(self):
        self.nats.halt()
        node = Broker("cluster_url nats://127.0.0.1:%d\ncluster_name test\nnode_name c\n"
                      % self.nats.port)
        self.addCleanup(node.cleanup)
        node.start()
        time.sleep(1.0)	# the join thread waits for NATS
        took = stop_timed(node)
        print("\nnode c (never joined) stopped in %.2f s" % took)
        self.assertLess(took, STOP_S)
        self.nats.start()	# tearDown stops it


class ClusterStopWhileAdoptingTest(ClusterBase):
    """Nodes a, b, c; node a is killed and node b, holding its adoption of
    session "kept" between the claim and the session (MOAT_TEST_ADOPT_HOLD_MS),
    is stopped then: the entry names node b, so node b must make the session
    before it leaves."""
    hold_b = True

    def setUp(self):
        super().setUp()
        self.start_node("c")

    def start_node(self, name, port=None):
        if name != "b" or not self.hold_b:
            return super().start_node(name, port)
        return self.start_node_with_env(name, {"MOAT_TEST_ADOPT_HOLD_MS": str(HOLD_MS)}, port)

    def stop_b_while_adopting(self, will_delay_s):
        """Opens session "kept" (Will "wills/kept") on node a, kills node a,
        and stops node b once it holds the adoption; returns node b's log."""
        self.wait_log("b", "cluster: node b joined")
        if "test hook" not in self.nodes["b"].log():
            self.skipTest("moatd built without test hooks (a release build)")
        self.client("a", "kept", clean=False, props={"session_expiry": 300},
                    will={"topic": "wills/kept", "payload": b"kept", "qos": 1,
                          "props": {"will_delay": will_delay_s}})
        time.sleep(1.0)	# its entry is written
        self.kill9("a")
        self.wait_log("b", "holding the adoption of kept ", timeout=NODE_DEATH_S)
        stop_timed(self.nodes["b"])
        return self.nodes["b"].log()

    def test_stopped_with_a_store_keeps_the_session(self):
        store = tempfile.mkdtemp(prefix="moattest-store-")
        self.addCleanup(shutil.rmtree, store, True)
        port = self.nodes["b"].port
        self.nodes["b"].stop(check=True)
        self.nodes["b"].cleanup()
        self.node_config_b = "persistence true\npersistence_location %s\n" % store
        self.start_node("b", port=port)
        watcher = self.client("c", "will-watcher")
        watcher.subscribe(("wills/#", 1))
        log = self.stop_b_while_adopting(will_delay_s=5)
        self.nodes["b"].cleanup()
        self.hold_b = False
        self.start_node("b", port=port)
        self.wait_log("b", "cluster: node b joined")
        # node b's store gave the session back, with its delayed Will
        will = watcher.expect_publish(timeout=CROSS_S + 10)
        self.assertEqual((will.topic, will.payload), ("wills/kept", b"kept"))
        back = Peer(port)
        self.peers.append(back)
        ack = back.connect("kept", clean=False, props={"session_expiry": 300})
        self.assertEqual(ack.session_present, 1)
        self.assertIn("made the 1 sessions claimed for adoption last (the store keeps them)", log)

    def test_stopped_without_a_store_sends_the_will(self):
        watcher = self.client("c", "will-watcher")
        watcher.subscribe(("wills/#", 1))
        self.link(watcher, "wills/probe", origin="b")
        log = self.stop_b_while_adopting(will_delay_s=0)
        will = watcher.expect_publish(timeout=CROSS_S)
        self.assertEqual((will.topic, will.payload), ("wills/kept", b"kept"))
        watcher.expect_nothing(timeout=2.0)
        self.assertIn("made the 1 sessions claimed for adoption last (their Wills sent)", log)


class ClusterJoinRetryTest(ClusterBase):
    """Node c starts while no NATS server listens; a nats-server without
    JetStream comes first (the join fails), then one with it on the same
    port: node c joins then, and exchanges messages with node b."""

    def setUp(self):
        self.peers = []
        self.nodes = {}
        self.nats = NatsServer()
        self.addCleanup(self.nats.stop)

    def start_plain_nats(self):
        """nats-server without -js on the NATS port; stopped at cleanup."""
        logf = open(os.path.join(self.nats.dir, "plain.log"), "wb")
        self.addCleanup(logf.close)
        proc = subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.nats.port)],
                                stdout=logf, stderr=subprocess.STDOUT)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        return proc

    def test_failed_join_is_tried_again(self):
        self.start_node("c")
        plain = self.start_plain_nats()
        self.wait_log("c", "joining again in", timeout=CROSS_S + 10)
        plain.terminate()
        plain.wait(timeout=10)
        self.nats.start()
        self.start_node("b")
        # the pause grows (1, 2, 4 s ...): a few rounds at most
        self.wait_log("c", "cluster: node c joined", timeout=40)
        for origin, target in (("c", "b"), ("b", "c")):
            sub = self.client(target, "sub-" + target)
            sub.subscribe(("from/" + origin, 1))
            self.link(sub, "from/" + origin, origin=origin)
            pub = self.client(origin, "pub-" + origin)
            pub.publish("from/" + origin, b"hello", qos=1)
            got = sub.expect_publish(timeout=CROSS_S)
            self.assertEqual((got.topic, got.payload), ("from/" + origin, b"hello"))
        self.assertNotIn("stays out of the cluster", self.nodes["c"].log())


class ClusterExportAfterInterestTest(ClusterBase):
    """Node a restarted while NATS is down keeps what its clients publish
    until it has read the other nodes' interest, even when that takes longer
    than the join's 5 s wait (a test hook of debug builds holds the interest
    watch's first entry 8 s): node b, subscribed all along, gets it; a
    retained message that waited does not overwrite the value node b set
    for its topic meanwhile."""

    def restart_a_without_nats(self):
        """Restarts node a while NATS is down, its interest watch's first
        entry to be held INTEREST_HOLD_MS once NATS is back."""
        port = self.nodes["a"].port
        self.nodes["a"].stop(check=True)
        self.nodes["a"].cleanup()
        self.nats.halt()
        self.start_node_with_env("a", {"MOAT_TEST_INTEREST_HOLD_MS": str(INTEREST_HOLD_MS)}, port)

    def join_a_slowly(self):
        """NATS back: node a joins without the interest (5 s)."""
        self.nats.start()
        self.wait_log("a", "cluster: node a joined", timeout=CROSS_S + 10)
        if "test hook" not in self.nodes["a"].log():
            self.skipTest("moatd built without test hooks (a release build)")
        self.assertIn("interest is not read yet", self.nodes["a"].log())

    def test_waiting_message_waits_for_the_interest(self):
        sub = self.client("b", "sub-late")
        sub.subscribe(("late/t", 1))
        self.link(sub, "late/t")
        self.restart_a_without_nats()
        pub = self.client("a", "pub-late")
        pub.publish("late/t", b"waited", qos=1)	# acknowledged: it waits for the join
        self.join_a_slowly()
        got = sub.expect_publish(timeout=CROSS_S + 10)
        self.assertEqual((got.topic, got.payload), ("late/t", b"waited"))

    def test_waited_retained_does_not_overwrite_a_newer_one(self):
        self.restart_a_without_nats()
        self.client("a", "pub-old").publish("r/t", b"old", qos=1, retain=True)
        time.sleep(0.1)	# "new" is published later by the wall clock
        self.join_a_slowly()
        # node a's exports still wait for the interest: node b sets the topic now
        self.wait_log("b", "reconnected to NATS", timeout=CROSS_S + 10)
        self.client("b", "pub-new").publish("r/t", b"new", qos=1, retain=True)
        self.wait_log("a", "before this node joined the cluster are exported now",
                      timeout=CROSS_S + 10)
        for name in ("a", "b"):
            deadline = time.monotonic() + CROSS_S
            while True:
                sub = self.client(name, "sub-r-%s-%d" % (name, len(self.peers)))
                sub.subscribe(("r/t", 1))
                got = sub.expect_publish(timeout=CROSS_S)
                sub.disconnect()
                if got.payload == b"new" or time.monotonic() > deadline:
                    break
                time.sleep(0.2)	# node a's mirror of the bucket is on its way
            self.assertEqual((name, got.payload), (name, b"new"))
        self.assertIn("is not written to the cluster", self.nodes["a"].log())


if __name__ == "__main__":
    unittest.main()
