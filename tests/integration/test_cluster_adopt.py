"""Adoption of a dead node's sessions (docs/cluster.md, "A node dies"): a real
nats-server -js and three moatd nodes a, b, c; node a is killed (kill -9) and
node b, the living node with the lowest name, adopts its sessions.

- 10,000 sessions, more than node b can adopt within the 6 s after which a
  silent node counts as dead: node b adopts them on a thread of its own, so
  node c never finds node b silent (no cascade: node c would adopt them again
  and send their Wills twice); every Will arrives once and the sessions then
  expire.
- A client that claims its session on node c while node b is between its
  claim for the adoption and the session it makes (a test hook of debug
  builds holds it there): the takeover notice is kept for the adoption, so
  node b publishes no Will for a resumed session, and one for a clean start.
- Garbage keys in the alive bucket (more than the nodes a node tracks, and
  names no node may have) do not keep a real node from being watched."""
import os
import socket
import time
import unittest

from moattest import CONNACK, Peer
from test_cluster import ClusterBase, nats_publish

# a killed node is found silent after 6 s, then adopted: allow for a loaded machine
NODE_DEATH_S = 30.0
# enough that adopting them takes longer than the 6 s after which a silent
# node counts as dead (7.7 s in the sanitizer build on the 2-core test machine)
MANY = int(os.environ.get("MOAT_TEST_ADOPT_SESSIONS", 10000))
HOLD_MS = 4000


class AdoptBase(ClusterBase):
    """Nodes a, b and c; node b is the adopter once node a is gone."""

    def setUp(self):
        super().setUp()
        self.start_node("c")

    def wait_log(self, node, text, timeout=NODE_DEATH_S):
        super().wait_log(node, text, timeout)


class ClusterAdoptTest(AdoptBase):
    # every Will reaches the watcher, however many go out at once
    node_config_b = "sys_interval 1\nmax_queued_messages 0\n"

    def open_sessions(self, node, ids, expiry_s, will_delay_s, batch=200):
        """Connects a v5 client per id to <node> (persistent, with a QoS 1
        Will "many/<id>" delayed by <will_delay_s>), <batch> CONNECTs at a
        time; returns the connected peers."""
        peers = []
        for start in range(0, len(ids), batch):
            chunk = []
            for cid in ids[start:start + batch]:
                p = Peer(self.nodes[node].port, timeout=30)
                p.send(p.connect_bytes(cid, clean=False, props={"session_expiry": expiry_s},
                                       will={"topic": "many/" + cid, "payload": cid.encode(),
                                             "qos": 1, "props": {"will_delay": will_delay_s}}))
                chunk.append(p)
            for p in chunk:
                self.assertEqual(p.expect(CONNACK).rc, 0)
            peers += chunk
        return peers

    def sessions_on_b(self, sys_watcher, until, timeout):
        """Node b's session count ($SYS/broker/clients/total, every second)
        until <until>(count) holds; returns the counts seen."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                seen.append(int(sys_watcher.expect_publish(timeout=1.0).payload))
            except socket.timeout:
                continue
            if until(seen[-1]):
                return seen
        self.fail("node b's sessions: %s" % seen[-10:])

    def test_many_sessions_adopted_without_silencing_the_adopter(self):
        watcher = self.client("b", "will-watcher")
        watcher.subscribe(("many/#", 1))
        counter = self.client("b", "sys-watcher")
        counter.subscribe(("$SYS/broker/clients/total", 0))
        ids = ["many-%d" % i for i in range(MANY)]
        started = time.monotonic()
        peers = self.open_sessions("a", ids, expiry_s=20, will_delay_s=3)
        print("\n%d sessions opened on node a in %.1f s" % (MANY, time.monotonic() - started))
        self.kill9("a")
        for p in peers:
            p.close()
        # node b makes them all offline sessions of its own
        self.sessions_on_b(counter, lambda n: n >= MANY, NODE_DEATH_S + 30)
        got = []
        deadline = time.monotonic() + 30
        while len(got) < MANY and time.monotonic() < deadline:
            try:
                got.append(watcher.expect_publish(timeout=1.0).payload.decode())
            except socket.timeout:
                pass
        got += [p.payload.decode() for p in watcher.drain_publishes(quiet_s=3.0)]
        print("node b: %s" % [line for line in self.nodes["b"].log().splitlines()
                              if "took over" in line])
        # every Will once: none lost, none sent twice by a second adopter
        self.assertEqual(len(got), MANY)
        self.assertEqual(sorted(got), sorted(ids))
        # node c heard node b all along: it adopted nothing
        self.assertNotIn("node b stopped answering", self.nodes["c"].log())
        self.assertNotIn("took over", self.nodes["c"].log())
        self.assertIn("node a stopped answering", self.nodes["c"].log())
        # and they expire 20 s after their adoption: only the two watchers are left
        self.sessions_on_b(counter, lambda n: n <= 2, 40)


class ClusterAdoptRaceTest(AdoptBase):
    def start_node(self, name, port=None):
        """Node b holds each adoption between its claim and its session
        (MOAT_TEST_ADOPT_HOLD_MS, a hook of debug builds)."""
        if name != "b":
            return super().start_node(name, port)
        return self.start_node_with_env(name, {"MOAT_TEST_ADOPT_HOLD_MS": str(HOLD_MS)}, port)

    def test_claim_on_a_third_node_during_adoption_is_not_lost(self):
        self.wait_log("b", "cluster: node b joined", timeout=10)
        if "test hook" not in self.nodes["b"].log():
            self.skipTest("moatd built without test hooks (a release build)")
        watcher = self.client("b", "will-watcher")
        watcher.subscribe(("wills/#", 1))
        for cid in ("resumed", "restarted"):
            self.client("a", cid, clean=False, props={"session_expiry": 60},
                        will={"topic": "wills/" + cid, "payload": cid.encode(), "qos": 1,
                              "props": {"will_delay": 2}})
        self.kill9("a")
        # node b claimed an entry and holds its adoption: the client comes
        # back on node c now, whose notice reaches node b before the session
        # exists there
        seen = set()
        deadline = time.monotonic() + NODE_DEATH_S
        while len(seen) < 2 and time.monotonic() < deadline:
            log = self.nodes["b"].log()
            for cid in ("resumed", "restarted"):
                if cid not in seen and "holding the adoption of %s " % cid in log:
                    seen.add(cid)
                    back = Peer(self.nodes["c"].port)
                    self.peers.append(back)
                    ack = back.connect(cid, clean=cid == "restarted",
                                       props={"session_expiry": 60})
                    self.assertEqual(ack.session_present, 1 if cid == "resumed" else 0)
            time.sleep(0.05)
        self.assertEqual(seen, {"resumed", "restarted"})
        # a clean start ends the session as on its old node (its Will goes
        # out, once); the resumed one goes on at node c without its Will
        wills = watcher.drain_publishes(quiet_s=HOLD_MS / 1000.0 + 4.0)
        self.assertEqual([w.topic for w in wills], ["wills/restarted"])
        self.wait_log("b", "session resumed taken over by node c", timeout=1.0)
        self.wait_log("b", "session restarted taken over by node c", timeout=1.0)


class ClusterAliveBucketTest(AdoptBase):
    def test_garbage_in_the_alive_bucket_does_not_hide_a_node(self):
        watcher = self.client("a", "will-watcher", keepalive=0)	# waits long
        watcher.subscribe(("wills/#", 1))
        garbage = [("$KV.test_alive.ghost-%d" % i, b"alive") for i in range(270)]
        invalid = [("$KV.test_alive.%s" % k, b"alive")
                   for k in ("dotted.name", "eq=sign", "x" * 65, "slash/name")]
        nats_publish(self.nats.port, garbage + invalid)
        # node c joins again after the garbage: its key is listed after all of it
        self.nodes["c"].stop(check=True)
        self.nodes["c"].cleanup()
        self.start_node("c")
        self.client("c", "doomed", clean=False, props={"session_expiry": 60},
                    will={"topic": "wills/doomed", "payload": b"doomed", "qos": 1})
        time.sleep(1.0)	# its entry is written
        self.kill9("c")
        # the ghosts stay silent: node a adopts nothing of theirs and deletes
        # their keys, then watches node c, finds it silent and adopts its session
        will = watcher.expect_publish(timeout=3 * NODE_DEATH_S)
        self.assertEqual((will.topic, will.payload), ("wills/doomed", b"doomed"))
        watcher.expect_nothing(timeout=2.0)
        log = self.nodes["a"].log()
        self.assertIn("name no node", log)
        self.assertIn("is not watched", log)
        self.assertNotIn("node dotted.name", log)


if __name__ == "__main__":
    unittest.main()
