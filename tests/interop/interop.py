"""Interoperability-test harness: a real moatd for third-party clients.

Reuses tests/integration/moattest.py's Broker (free loopback port, temp
config with `listener <port> 127.0.0.1` and `allow_anonymous true`, SIGTERM
stop asserting exit 0 and no sanitizer report). InteropTest gives each test a
fresh broker; `run` and `spawn` start client programs with bounded waits.
Python 3 standard library only (the paho test imports paho itself).

With MOAT_INTEROP_CLUSTER=1 each test gets a two-node cluster instead (a
nats-server -js and nodes a and b, docs/cluster.md): clients take the nodes
in turn as they connect (next_port), so a publisher and its subscriber are
on different nodes, and every subscription returns only once the other node
routes to it (subscribed). Every case runs there, shared subscriptions
included (balanced across nodes by NATS queue groups).
"""
import os
import select
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import moattest  # noqa: E402  (path set just above)
from test_cluster import NatsServer  # noqa: E402

WAIT_S = 10.0  # longest wait for any single client step
MOSQUITTO_SUB = "/usr/bin/mosquitto_sub"
CLUSTER = os.environ.get("MOAT_INTEROP_CLUSTER") == "1"


class SpreadPeer(moattest.Peer):
    """A raw MQTT client whose subscribe() returns once every node routes to it."""

    def __init__(self, test, port, version):
        super().__init__(port, version=version)
        self.test, self.port = test, port

    def subscribe(self, *filters, **kw):
        codes = super().subscribe(*filters, **kw)
        self.test.subscribed(self.port)
        return codes


class InteropTest(unittest.TestCase):
    """Starts moatd ($MOATD) before each test and stops it after, failing the
    test on a non-zero exit or a sanitizer report."""

    def setUp(self):
        if not os.environ.get("MOATD"):
            self.fail("MOATD is not set (path to moatd); run through ctest")
        if not CLUSTER:
            self.use_brokers([moattest.Broker()])
            return
        self.nats = NatsServer()
        self.addCleanup(self.nats.stop)
        self.nats.start()
        self.use_brokers([moattest.Broker(
            "cluster_url nats://127.0.0.1:%d\ncluster_name interop\nnode_name %s\n"
            % (self.nats.port, name)) for name in ("a", "b")])

    def use_brokers(self, brokers):
        """Starts <brokers> (not yet started) for this test; the first is self.broker."""
        self.procs, self.peers = [], []
        self.brokers = brokers
        self.turn = self.probes = 0
        for b in brokers:
            b.start()
        self.broker = brokers[0]
        self.port = self.broker.port

    def next_port(self):
        """The port of the node the next client connects to: the nodes in turn."""
        self.turn += 1
        return self.brokers[(self.turn - 1) % len(self.brokers)].port

    def subscribed(self, port):
        """In the cluster run, returns once every other node routes what was
        just subscribed on the node at <port>: a probe subscription made after
        it on that node reaches it from each other node (a node's interest
        travels as one list, so the probe's carries the earlier filters)."""
        if len(self.brokers) == 1:
            return
        self.probes += 1
        topic = "interop-probe/%d" % self.probes
        watcher = moattest.Peer(port)
        watcher.connect("")
        watcher.subscribe((topic, 0))
        for other in (b.port for b in self.brokers if b.port != port):
            sender = moattest.Peer(other)
            sender.connect("")
            deadline = time.monotonic() + WAIT_S
            while True:
                self.assertLess(time.monotonic(), deadline,
                                "node %d never routed to a subscription on %d" % (other, port))
                sender.publish(topic, b"probe")
                try:
                    watcher.expect_publish(timeout=0.3)
                    break
                except OSError:  # socket.timeout
                    pass
            sender.close()
        watcher.close()

    def retained_everywhere(self, topic, payload):
        """In the cluster run, returns once a new subscriber on every node gets
        <payload> as the retained message of <topic> (None: gets none); the
        nodes mirror the retained bucket asynchronously."""
        if len(self.brokers) == 1:
            return
        deadline = time.monotonic() + WAIT_S
        for b in self.brokers:
            while True:
                check = moattest.Peer(b.port)
                check.connect("")
                check.subscribe((topic, 0))
                try:
                    got = check.expect_publish(timeout=0.3).payload
                except OSError:  # socket.timeout: no retained message
                    got = None
                check.close()
                if got == payload:
                    break
                self.assertLess(time.monotonic(), deadline, "node %d still has %r as %s's "
                                "retained message, not %r" % (b.port, got, topic, payload))

    def tearDown(self):
        for p in self.peers:
            p.close()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.communicate()  # reaps it and closes its pipes
        errors = []
        for b in self.brokers:
            try:
                b.stop(check=True)
            except AssertionError as e:
                errors.append(str(e))
            b.cleanup()
        if errors:
            raise AssertionError("\n".join(errors))

    def peer(self, version=5):
        """A raw MQTT client (moattest.Peer) connected with an assigned id."""
        p = SpreadPeer(self, self.next_port(), version)
        self.peers.append(p)
        p.connect("")
        return p

    def spawn(self, argv, env=None):
        """Starts argv with pipes (env: extra variables); killed at tearDown if
        still running."""
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=dict(os.environ, **(env or {})))
        self.procs.append(p)
        return p

    def finish(self, proc, timeout=WAIT_S):
        """Waits for proc; asserts exit 0; returns its stdout as text."""
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            self.fail("%s timed out after %.0f s; stdout %r stderr %r\nbroker log:\n%s"
                      % (proc.args, timeout, out, err, self.broker.log()[-4000:]))
        self.assertEqual(proc.returncode, 0, "%s exited %d; stdout %r stderr %r"
                         % (proc.args, proc.returncode, out, err))
        return out.decode("utf-8", "replace")

    def run_ok(self, argv, timeout=WAIT_S, env=None):
        """Runs argv to completion (bounded) and returns its stdout."""
        return self.finish(self.spawn(argv, env), timeout)

    def mosquitto_sub(self, version, *args):
        """Starts Debian's mosquitto_sub (-V version, debug on, stdout line-buffered
        by stdbuf so its SUBACK line is seen at once) on this broker and
        returns once it has printed its SUBACK, so a publish after this reaches it.
        Read its messages with mosquitto_output."""
        port = self.next_port()
        p = self.spawn(["stdbuf", "-oL", MOSQUITTO_SUB, "-h", "127.0.0.1", "-p",
                        str(port), "-V", version, "-d"] + list(args))
        p.head = b""
        deadline = time.monotonic() + WAIT_S
        while b"received SUBACK" not in p.head:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([p.stdout], [], [], max(left, 0))
            chunk = os.read(p.stdout.fileno(), 4096) if ready else b""
            if not chunk:
                self.fail("mosquitto_sub %s: no SUBACK within %.0f s (exit %s); output %r"
                          % (args, WAIT_S, p.poll(), p.head))
            p.head += chunk
        self.subscribed(port)
        return p

    def mosquitto_output(self, proc, timeouts_ok=False):
        """The message lines a mosquitto_sub printed (its debug lines removed),
        after it exits 0 (or 27, its -W timeout, with timeouts_ok)."""
        try:
            out, err = proc.communicate(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            self.fail("mosquitto_sub timed out; output %r" % (proc.head + out))
        self.assertIn(proc.returncode, (0, 27) if timeouts_ok else (0,),
                      "mosquitto_sub exit %d: %r" % (proc.returncode, err))
        text = (proc.head + out).decode("utf-8", "replace")
        return [line for line in text.splitlines()
                if not line.startswith(("Client ", "Subscribed (mid"))]
