"""Persistence: what moatd acknowledged survives SIGTERM and kill -9.

Every test keeps one persistence directory across broker processes (stopped
with SIGTERM or killed with SIGKILL) and checks, over real sockets, that
acknowledged QoS 1 messages arrive at least once and QoS 2 messages exactly
once, that sessions, subscriptions, retained messages, inbound QoS 2 ids and
in-flight packet ids come back, that a damaged record stops the start with a
way out (--check-store / --repair-store), and that a full store refuses new
QoS 1/2 messages instead of acknowledging them.
"""
import os
import random
import signal
import socket
import subprocess
import threading
import time
import unittest
import urllib.request

from moattest import (Broker, Closed, Peer, free_port, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL,
                      SUBACK, is_mosquitto)

# Kill points tried per run of the randomized test (each a full kill/restart cycle).
KILL_ROUNDS = int(os.environ.get("MOAT_KILL_ROUNDS", "6"))


class Node:
    """One persistence directory and port, served by successive moatd processes."""

    def __init__(self, extra=""):
        self.extra = extra
        self.broker = None
        self.port = None
        self.store_dir = None

    def start(self):
        if self.broker is None:
            self.broker = Broker("")
            self.port = self.broker.port
            self.store_dir = os.path.join(self.broker.dir, "store")
        cfg = ("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\n"
               "persistence_location %s\n%s" % (self.port, self.store_dir, self.extra))
        with open(self.broker.conf_path, "w") as f:
            f.write(cfg)
        self.broker.start()
        return self

    def kill(self):
        self.broker.proc.send_signal(signal.SIGKILL)
        self.broker.proc.wait()
        self.broker.logf.close()
        self.broker.proc = None

    def stop(self):
        self.broker.stop(check=True)

    def cleanup(self):
        if self.broker is not None:
            if self.broker.alive():
                self.kill()
            self.broker.cleanup()

    def peer(self, version=5):
        return Peer(self.port, version=version)


def persistent(node, client_id, version=5, expect_present=None):
    p = node.peer(version)
    kw = {"clean": False}
    if version == 5:
        kw["props"] = {"session_expiry": 3600}
    ack = p.connect(client_id, **kw)
    if expect_present is not None:
        assert ack.session_present == expect_present, (client_id, ack)
    return p


def collect(peer, quiet_s=1.5, until=None):
    """Every PUBLISH until none comes for quiet_s (or the monotonic time
    <until>, or the connection ends), each acknowledged (QoS 2 flows
    interleave: several may be in flight at once); returns them."""
    got = []
    while until is None or time.monotonic() < until:
        try:
            p = peer.recv(timeout=quiet_s if until is None else min(quiet_s, until - time.monotonic()))
        except (socket.timeout, Closed, OSError):
            return got
        if p.type == PUBLISH:
            got.append(p)
            if p.qos == 1:
                peer.send(peer.ack_bytes(PUBACK, p.pid))
            elif p.qos == 2:
                peer.send(peer.ack_bytes(PUBREC, p.pid))
        elif p.type == PUBREL:
            peer.send(peer.ack_bytes(PUBCOMP, p.pid))
    return got


class Publisher(threading.Thread):
    """Pipelines numbered QoS 1 or 2 messages and records which the broker
    acknowledged (PUBACK, or PUBREC for QoS 2) before the connection died."""

    def __init__(self, port, client_id, topic, qos, count, window=40):
        super().__init__(daemon=True)
        self.peer = Peer(port)
        self.peer.connect(client_id, clean=False, props={"session_expiry": 3600})
        self.topic, self.qos, self.count, self.window = topic, qos, count, window
        self.acked = set()
        self.pending_rel = set()

    def payload(self, i):
        return ("%s-%d" % (self.topic, i)).encode()

    def run(self):
        sent, outstanding = 0, {}
        try:
            while sent < self.count or outstanding:
                while sent < self.count and len(outstanding) < self.window:
                    pid = sent % 65000 + 1
                    self.peer.send(self.peer.publish_bytes(self.topic, self.payload(sent),
                                                           self.qos, pid=pid))
                    outstanding[pid] = sent
                    sent += 1
                p = self.peer.recv(timeout=5)
                if p.type == PUBACK and self.qos == 1:
                    assert p.rc < 0x80, p
                    self.acked.add(outstanding.pop(p.pid))
                elif p.type == PUBREC and self.qos == 2:
                    assert p.rc < 0x80, p
                    self.acked.add(outstanding.pop(p.pid))
                    self.pending_rel.add(p.pid)
                    self.peer.send(self.peer.ack_bytes(PUBREL, p.pid))
                elif p.type == PUBCOMP:
                    self.pending_rel.discard(p.pid)
        except (Closed, OSError, socket.timeout):
            pass
        finally:
            self.peer.close()


@unittest.skipIf(is_mosquitto(), "moatd's persistence keys and kill -9 guarantees")
class PersistenceTest(unittest.TestCase):
    def setUp(self):
        self.nodes = []

    def tearDown(self):
        for n in self.nodes:
            n.cleanup()

    def node(self, extra=""):
        n = Node(extra)
        self.nodes.append(n)
        return n.start()

    def test_sigterm_restart_restores_sessions_queues_and_retained(self):
        n = self.node()
        sub = persistent(n, "keeper", expect_present=0)
        self.assertEqual(sub.subscribe(("t/#", 2), ("u/+", 1)), [2, 1])
        sub.disconnect()
        pub = n.peer()
        pub.connect("pub")
        for i in range(3):
            pub.publish("t/a", "q1-%d" % i, qos=1)
            pub.publish("t/b", "q2-%d" % i, qos=2)
        pub.publish("u/x", "kept", qos=1, retain=True)
        pub.disconnect()
        n.stop()
        n.start()
        sub = persistent(n, "keeper", expect_present=1)
        got = [m.payload for m in collect(sub)]
        self.assertEqual(got, [b"q1-0", b"q2-0", b"q1-1", b"q2-1", b"q1-2", b"q2-2", b"kept"])
        # the subscriptions came back too: a new message is routed
        pub = n.peer()
        pub.connect("pub2")
        pub.publish("u/y", "after", qos=1)
        self.assertEqual(sub.expect_publish().payload, b"after")
        fresh = n.peer()
        fresh.connect("fresh")
        fresh.subscribe(("u/#", 1))
        retained = fresh.expect_publish()
        self.assertEqual((retained.topic, retained.payload, retained.retain), ("u/x", b"kept", 1))
        for p in (sub, pub, fresh):
            p.close()
        n.stop()

    def test_kill9_with_offline_subscribers_loses_no_acknowledged_message(self):
        rng = random.Random(os.environ.get("MOAT_KILL_SEED") or time.time_ns())
        for round_no in range(KILL_ROUNDS):
            with self.subTest(round=round_no):
                n = self.node("max_queued_messages 10000\npersistence_sync %s\n" %
                              rng.choice(["batch 2", "always", "none"]))
                for cid, qos in (("off1", 1), ("off2", 2)):
                    s = persistent(n, cid)
                    s.subscribe(("k/#", qos))
                    s.disconnect()
                pubs = [Publisher(n.port, "p1", "k/one", 1, 3000),
                        Publisher(n.port, "p2", "k/two", 2, 3000)]
                for p in pubs:
                    p.start()
                time.sleep(rng.uniform(0.05, 0.6))
                n.kill()
                for p in pubs:
                    p.join(10)
                n.start()
                got = {}
                for cid in ("off1", "off2"):
                    s = persistent(n, cid, expect_present=1)
                    got[cid] = [m.payload for m in collect(s)]
                    s.close()
                for cid in ("off1", "off2"):
                    for p in pubs:
                        mine = [x for x in got[cid] if x.startswith(p.topic.encode() + b"-")]
                        missing = [i for i in p.acked if p.payload(i) not in mine]
                        self.assertEqual(missing, [], "%s lost acknowledged %s messages" % (cid, p.topic))
                        numbers = [int(x.split(b"-")[1]) for x in mine]
                        self.assertEqual(numbers, sorted(numbers), "order of one publisher kept")
                        if p.qos == 2 and cid == "off2":
                            self.assertEqual(len(numbers), len(set(numbers)), "QoS 2 delivered twice")
                n.stop()

    def test_inbound_qos2_state_survives_kill(self):
        n = self.node()
        sub = persistent(n, "watcher")
        sub.subscribe(("q2/#", 2))
        pub = n.peer()
        pub.connect("q2pub", clean=False, props={"session_expiry": 3600})
        pub.send(pub.publish_bytes("q2/x", b"once", 2, pid=7))
        self.assertEqual(pub.expect(PUBREC).pid, 7)
        self.assertEqual(sub.expect_publish().payload, b"once")
        n.kill()
        n.start()
        pub = n.peer()
        self.assertEqual(pub.connect("q2pub", clean=False,
                                     props={"session_expiry": 3600}).session_present, 1)
        sub = persistent(n, "watcher", expect_present=1)
        # the publisher did not see PUBCOMP: it resends the PUBLISH (DUP), then PUBREL
        pub.send(pub.publish_bytes("q2/x", b"once", 2, dup=True, pid=7))
        self.assertEqual(pub.expect(PUBREC).pid, 7)
        pub.send(pub.ack_bytes(PUBREL, 7))
        comp = pub.expect(PUBCOMP)
        self.assertEqual((comp.pid, comp.rc), (7, 0))
        # the subscriber's PUBCOMP may not have reached the disk before the kill,
        # so a PUBREL may come again; the message itself must not
        self.assertEqual(collect(sub, 1.0), [], "a QoS 2 message was delivered twice")
        n.stop()

    def test_qos2_in_flight_is_resent_with_dup_and_same_packet_id(self):
        n = self.node()
        sub = persistent(n, "slow")
        sub.subscribe(("f/#", 2))
        pub = n.peer()
        pub.connect("fpub")
        pub.publish("f/1", "in flight", qos=2)
        first = sub.expect(PUBLISH)	# not acknowledged
        self.assertEqual(first.dup, 0)
        n.kill()
        n.start()
        sub = persistent(n, "slow", expect_present=1)
        again = sub.expect(PUBLISH)
        self.assertEqual((again.payload, again.pid, again.dup), (b"in flight", first.pid, 1))
        sub.send(sub.ack_bytes(PUBREC, again.pid))
        self.assertEqual(sub.expect(PUBREL).pid, again.pid)
        # the PUBREL state is durable too: after another kill it is PUBREL that comes back
        n.kill()
        n.start()
        sub = persistent(n, "slow", expect_present=1)
        rel = sub.expect(PUBREL)
        self.assertEqual(rel.pid, again.pid)
        sub.send(sub.ack_bytes(PUBCOMP, rel.pid))
        sub.expect_nothing(1.0)
        n.stop()

    def test_online_qos2_subscriber_gets_each_message_once_across_kill(self):
        n = self.node()
        sub = persistent(n, "online2")
        sub.subscribe(("o/#", 2))
        pub = Publisher(n.port, "opub", "o/x", 2, 2000)
        pub.start()
        received = [m.payload for m in collect(sub, 2.0, until=time.monotonic() + 0.4)]
        n.kill()
        pub.join(10)
        sub.close()
        n.start()
        sub = persistent(n, "online2", expect_present=1)
        received += [m.payload for m in collect(sub)]
        numbers = [int(x.split(b"-")[1]) for x in received]
        self.assertEqual(len(numbers), len(set(numbers)), "a QoS 2 message arrived twice")
        self.assertEqual([i for i in pub.acked if pub.payload(i) not in received], [])
        sub.close()
        n.stop()

    def test_expired_sessions_are_dropped_at_start(self):
        n = self.node()
        s = n.peer()
        s.connect("brief", clean=False, props={"session_expiry": 1})
        s.subscribe(("e/#", 1))
        s.disconnect()
        n.stop()
        time.sleep(1.5)
        n.start()
        self.assertIn("expired", n.broker.log())
        s = n.peer()
        self.assertEqual(s.connect("brief", clean=False,
                                   props={"session_expiry": 1}).session_present, 0)
        s.close()
        n.stop()

    def test_messages_that_expired_while_down_are_dropped(self):
        n = self.node()
        sub = persistent(n, "late")
        sub.subscribe(("x/#", 1))
        sub.disconnect()
        pub = n.peer()
        pub.connect("xpub")
        pub.publish("x/short", "gone", qos=1, props={"message_expiry": 1})
        pub.publish("x/long", "kept", qos=1, props={"message_expiry": 600})
        pub.publish("x/retained", "gone too", qos=1, retain=True, props={"message_expiry": 1})
        pub.close()
        n.stop()
        time.sleep(1.6)
        n.start()
        sub = persistent(n, "late", expect_present=1)
        got = collect(sub, 1.0)
        self.assertEqual([m.payload for m in got], [b"kept"])
        # the expiry interval left is what remains of the 600 s, not 600 again
        self.assertLess(got[0].props["message_expiry"], 600)
        self.assertGreater(got[0].props["message_expiry"], 590)
        fresh = n.peer()
        fresh.connect("fresh")
        fresh.subscribe(("x/#", 1))
        self.assertEqual(collect(fresh, 1.0), [])
        for p in (sub, fresh):
            p.close()
        n.stop()

    def test_damaged_record_stops_start_and_repair_deletes_it(self):
        n = self.node()
        pub = n.peer()
        pub.connect("dmg")
        pub.publish("d/1", "MARKER-0123456789", qos=1, retain=True)
        pub.publish("d/2", "healthy", qos=1, retain=True)
        pub.close()
        n.stop()
        data = os.path.join(n.store_dir, "data.mdb")
        with open(data, "r+b") as f:	# every copy: old page versions may hold it too
            blob = f.read()
            self.assertIn(b"MARKER-0123456789", blob)
            f.seek(0)
            f.write(blob.replace(b"MARKER-0123456789", b"XARKER-0123456789"))
        start = subprocess.run(n.broker.command(), cwd=n.broker.dir, capture_output=True,
                               timeout=20)
        self.assertNotEqual(start.returncode, 0)
        err = start.stdout.decode() + start.stderr.decode()
        self.assertIn("damaged", err)
        self.assertIn("--check-store", err)
        check = subprocess.run(n.broker.command() + ["--check-store"], capture_output=True,
                               timeout=20)
        self.assertEqual(check.returncode, 1, check)
        self.assertIn("Rd/1", check.stdout.decode())
        repair = subprocess.run(n.broker.command() + ["--repair-store"], capture_output=True,
                                timeout=20)
        self.assertEqual(repair.returncode, 0, repair)
        self.assertIn("Rd/1", repair.stdout.decode())
        n.start()
        s = n.peer()
        s.connect("after")
        s.subscribe(("d/#", 1))
        self.assertEqual([m.payload for m in collect(s, 1.0)], [b"healthy"])
        s.close()
        n.stop()

    def test_full_store_refuses_qos1_instead_of_acknowledging(self):
        n = self.node("persistence_max_bytes 2000000\n")
        pub = n.peer()
        pub.connect("filler")
        big = b"z" * 60000
        refused = None
        for i in range(200):
            pid = pub.publish("fill/%d" % i, big, qos=1, retain=True, complete=False)
            ack = pub.expect(PUBACK)
            self.assertEqual(ack.pid, pid)
            if ack.rc == 0x97:
                refused = i
                break
            time.sleep(0.01)	# lets the commit thread measure the store's size
        self.assertIsNotNone(refused, "the store never reported full")
        pid = pub.publish("other", b"small", qos=1, complete=False)
        self.assertEqual(pub.expect(PUBACK).rc, 0x97)
        v3 = n.peer(version=4)
        v3.connect("old")
        v3.send(v3.publish_bytes("other", b"x", 1, pid=1))
        v3.expect_closed()	# 3.1.1 has no refusal: the connection closes unacknowledged
        # QoS 0 still flows
        s = n.peer()
        s.connect("reader")
        s.subscribe(("live", 0))
        pub.publish("live", "zero")
        self.assertEqual(s.expect_publish().payload, b"zero")
        for p in (pub, s):
            p.close()
        n.stop()

    def test_store_figures_in_metrics(self):
        mport = free_port()
        n = self.node("metrics_listener %d 127.0.0.1\n" % mport)
        sub = persistent(n, "metered")
        sub.subscribe(("m/#", 1))
        sub.disconnect()
        pub = n.peer()
        pub.connect("mpub")
        for i in range(5):
            pub.publish("m/x", "v%d" % i, qos=1)
        pub.close()
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5).read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        self.assertGreaterEqual(values["moat_store_commits_total"], 1)
        self.assertGreaterEqual(values["moat_store_records_written_total"], 10)	# 5 messages + 5 entries
        self.assertEqual(values["moat_store_refusing"], 0)
        self.assertGreaterEqual(values['moat_store_sync_seconds_bucket{le="+Inf"}'],
                                values["moat_store_sync_seconds_count"])
        self.assertGreaterEqual(values["moat_store_sync_seconds_count"], 1)
        n.stop()


@unittest.skipIf(is_mosquitto(), "moatd's persistence")
class PersistenceScaleTest(unittest.TestCase):
    """Start-up with 100k retained messages and 10k persistent sessions."""

    RETAINED = 100000
    SESSIONS = 10000

    def test_restart_with_100k_retained_and_10k_sessions(self):
        n = Node()
        try:
            n.start()
            pub = n.peer()
            pub.connect("bulk")
            chunk = []
            for i in range(self.RETAINED):
                chunk.append(pub.publish_bytes("r/%d/%d" % (i // 1000, i), b"v%d" % i, 0, retain=True))
                if len(chunk) == 2000:
                    pub.send(b"".join(chunk))
                    chunk = []
            pub.send(b"".join(chunk))
            pub.ping()

            def make_sessions(first, count):
                for i in range(first, first + count):
                    p = n.peer()
                    p.connect("sess-%d" % i, clean=False, props={"session_expiry": 86400})
                    p.subscribe(("s/%d" % i, 1))
                    p.disconnect()

            per = self.SESSIONS // 4
            workers = [threading.Thread(target=make_sessions, args=(k * per, per)) for k in range(4)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            pub.close()
            n.stop()
            began = time.monotonic()
            n.start()
            took = time.monotonic() - began
            self.assertIn("%d sessions" % self.SESSIONS, n.broker.log())
            self.assertIn("%d retained messages restored" % self.RETAINED, n.broker.log())
            print("\nstart-up with %d retained, %d sessions: %.2f s" % (self.RETAINED,
                                                                     self.SESSIONS, took))
            for i in random.Random(5).sample(range(self.SESSIONS), 20):
                s = persistent(n, "sess-%d" % i, expect_present=1)
                s.close()
            s = n.peer()
            s.connect("count")
            s.subscribe(("r/42/#", 0))
            self.assertEqual(len(collect(s, 1.0)), 1000)
            s.close()
            n.stop()
        finally:
            n.cleanup()


if __name__ == "__main__":
    unittest.main()
