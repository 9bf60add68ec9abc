"""libmoat's durable offline queue, end to end with `moat pub --queue-file`.

The broker is stopped (SIGTERM) for about a second while `moat pub` keeps
publishing, then restarted on the same port: nothing published is lost
between the client and the broker, order per topic is kept, and QoS 2
arrives exactly once. Then `moat pub` itself is killed with SIGKILL midway
and restarted on the same queue file with --repeat 0: every message it had
accepted (printed as "queued ..." with -d) arrives.

Without persistence moatd keeps no sessions across its restart, so the
subscriber connects and subscribes again after the restart while the
publisher is held with SIGSTOP; the assertions are about what the client
library promises. With persistence on (MOAT_TEST_PERSISTENCE=1) the
subscriber's session comes back, and a QoS 2 message in flight at the
restart is resent with DUP under the same packet id: the subscriber keeps
its QoS 2 state across the reconnect, as a receiver of a resumed session must.
"""
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from moattest import (PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, BrokerTest, Closed,
                      Peer)

COUNT = 300


class Collector(threading.Thread):
    """A subscriber on topic t that acknowledges as a QoS 2 receiver should
    (method B: a QoS 2 packet id counts once until its PUBREL) and survives
    the broker going away; connect() subscribes unless the session resumed."""

    def __init__(self, qos):
        super().__init__(daemon=True)
        self.qos = qos
        self.got = []
        self.peer = None
        self.done = threading.Event()
        self.last = time.monotonic()
        self.awaiting_rel = set()  # kept across reconnects: the session resumes
        self.lock = threading.Lock()

    def connect(self, port):
        p = Peer(port)
        ack = p.connect("queue-sub", clean=False, props={"session_expiry": 300})
        if not ack.session_present:
            self.awaiting_rel = set()  # a new session: no QoS 2 flow is pending
            p.subscribe("t", qos=self.qos)
        # else the subscription came back with the session, and the broker may
        # already be resending what was in flight: the collector thread reads it
        with self.lock:
            self.peer = p

    def run(self):
        while not self.done.is_set():
            p = self.peer
            if p is None:
                time.sleep(0.01)
                continue
            try:
                self.handle(p, p.recv(timeout=0.2))
            except socket.timeout:
                continue
            except (Closed, OSError):
                # the broker went away (read or write); connect() installs the next peer
                with self.lock:
                    if self.peer is p:
                        self.peer = None
                p.close()

    def handle(self, p, m):
        if m.type == PUBLISH:
            self.last = time.monotonic()
            if m.qos == 2:
                if m.pid not in self.awaiting_rel:
                    self.got.append(m.payload.decode())
                self.awaiting_rel.add(m.pid)
                p.send(p.ack_bytes(PUBREC, m.pid))
            else:
                self.got.append(m.payload.decode())
                if m.qos == 1:
                    p.send(p.ack_bytes(PUBACK, m.pid))
        elif m.type == PUBREL:
            self.awaiting_rel.discard(m.pid)
            p.send(p.ack_bytes(PUBCOMP, m.pid))

    def wait_quiet(self, want, timeout=20.0, quiet_s=0.5):
        """Until <want> messages arrived (or <timeout>) and none came for <quiet_s>."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(set(self.got)) >= want and time.monotonic() - self.last > quiet_s:
                break
            time.sleep(0.05)
        self.done.set()
        self.join(2)
        if self.peer is not None:
            self.peer.close()
        return list(self.got)


class ClientQueueTest(BrokerTest):

    def setUp(self):
        self.moat = os.environ.get("MOAT")
        if not self.moat:
            self.skipTest("MOAT is not set (path to the moat tool)")
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="moat-cq-")
        self.queue = os.path.join(self.tmp, "queue")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for name in os.listdir(self.tmp):
            os.unlink(os.path.join(self.tmp, name))
        os.rmdir(self.tmp)
        super().tearDown()

    def pub(self, qos, repeat, log, extra=(), port=None):
        cmd = [self.moat, "pub", "-p", str(port or self.port), "-i", "queue-pub", "-c", "-x", "300",
               "-t", "t", "-q", str(qos), "-m", "msg", "--queue-file", self.queue,
               "--repeat", str(repeat), "--interval-ms", "5", "--ack-timeout", "30", "-d"]
        with open(os.path.join(self.tmp, log), "wb") as err:
            p = subprocess.Popen(cmd + list(extra), stdout=subprocess.DEVNULL, stderr=err)
        self.procs.append(p)
        return p

    def log(self, name):
        with open(os.path.join(self.tmp, name)) as f:
            return f.read()

    def restart_broker_under(self, pub, col):
        """Stops the broker (SIGTERM) for about a second while <pub> keeps
        publishing, then restarts it on the same port and store and lets <col>
        subscribe again before <pub> may reconnect."""
        time.sleep(0.4)
        self.broker.stop(check=True)
        time.sleep(0.9)
        self.assertIsNone(pub.poll(), "moat pub ended while the broker was away:\n" +
                          self.log("pub.log")[-2000:])
        pub.send_signal(signal.SIGSTOP)
        try:
            self.broker.start()  # same port, config and store directory
            col.connect(self.port)
        finally:
            pub.send_signal(signal.SIGCONT)

    def check_in_order(self, got, expected, exactly_once, order=None):
        """Every message of <expected> arrived, and what arrived came in the
        order of <order> (default <expected>)."""
        missing = [m for m in expected if m not in set(got)]
        self.assertEqual(missing, [], "lost %d messages" % len(missing))
        firsts = []
        seen = set()
        for m in got:
            if m not in seen:
                seen.add(m)
                firsts.append(m)
        self.assertEqual(firsts, [m for m in (order or expected) if m in seen], "order changed")
        if exactly_once:
            self.assertEqual(got, expected)

    def run_broker_restart(self, qos):
        col = Collector(qos)
        col.connect(self.port)
        col.start()
        pub = self.pub(qos, COUNT, "pub.log", ["--drain-rate", "500"])
        self.restart_broker_under(pub, col)
        self.assertEqual(pub.wait(timeout=45), 0, self.log("pub.log")[-2000:])
        got = col.wait_quiet(COUNT)
        expected = ["msg %d" % i for i in range(1, COUNT + 1)]
        self.check_in_order(got, expected, exactly_once=qos == 2)
        # everything was acknowledged: the file is back to its header
        self.assertEqual(os.path.getsize(self.queue), 8)

    def test_broker_restart_qos1_at_least_once_in_order(self):
        self.run_broker_restart(1)

    def test_broker_restart_qos2_exactly_once_in_order(self):
        self.run_broker_restart(2)

    def test_killed_publisher_drains_its_queue_file_after_restart(self):
        col = Collector(1)
        col.connect(self.port)
        col.start()
        pub = self.pub(1, COUNT, "pub.log")
        time.sleep(0.3)
        self.broker.stop(check=True)  # the rest piles up in the queue file
        time.sleep(0.5)
        pub.kill()
        pub.wait()
        queued = [line[len("queued "):] for line in self.log("pub.log").splitlines()
                  if line.startswith("queued ")]
        self.assertGreater(len(queued), 10)
        self.assertLess(len(queued), COUNT)
        self.broker.start()
        col.connect(self.port)
        again = self.pub(1, 0, "drain.log")
        self.assertEqual(again.wait(timeout=30), 0, self.log("drain.log")[-2000:])
        got = col.wait_quiet(len(queued))
        # a message may be in the file (and so sent) without its "queued" line:
        # the kill can fall between the fsync and the print
        self.check_in_order(got, queued, exactly_once=False,
                            order=["msg %d" % i for i in range(1, COUNT + 1)])
        self.assertEqual(os.path.getsize(self.queue), 8)

    def test_damaged_tail_is_cut_reported_and_the_rest_sent(self):
        col = Collector(1)
        col.connect(self.port)
        col.start()
        with socket.socket() as unused:  # a port where nothing listens
            unused.bind(("127.0.0.1", 0))
            dead = unused.getsockname()[1]
        offline = self.pub(1, 5, "offline.log", ["--ack-timeout", "1"], port=dead)
        self.assertEqual(offline.wait(timeout=20), 1)
        self.assertIn("5 messages not acknowledged", self.log("offline.log"))
        with open(self.queue, "ab") as f:
            f.write(b"\x4d\x51\x00\x00")  # a record header cut by a power loss
        again = self.pub(1, 0, "drain.log")
        self.assertEqual(again.wait(timeout=30), 0, self.log("drain.log")[-2000:])
        self.assertIn("Warning: queue file damaged: torn record header", self.log("drain.log"))
        got = col.wait_quiet(5)
        self.check_in_order(got, ["msg %d" % i for i in range(1, 6)], exactly_once=False)

    def test_queue_file_needs_a_fixed_client_id(self):
        r = subprocess.run([self.moat, "pub", "-p", str(self.port), "-t", "t", "-m", "x",
                            "--queue-file", self.queue], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("-i", r.stderr)


if __name__ == "__main__":
    unittest.main()
