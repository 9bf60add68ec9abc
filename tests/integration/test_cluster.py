"""moatd cluster over NATS JetStream (docs/cluster.md): a real nats-server -js
on loopback (its own store directory and free port) and two moatd nodes.
Cross-node QoS 0/1/2, v5 properties, retained set and delete across nodes,
no echo or duplicates, order per publisher, and a restarted node resuming
its durable consumer."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from moattest import PUBACK, Broker, Peer, free_port

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
# what crosses the cluster arrives within this (a shared, noisy machine)
CROSS_S = 10.0


class NatsServer:
    """nats-server -js on a free loopback port with a temporary store."""

    def __init__(self, max_payload=None, extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="moattest-nats-")
        self.port = free_port()
        self.proc = None
        self.max_payload = max_payload
        self.extra_args = list(extra_args)  # e.g. a NATS cluster's --cluster and --routes

    def start(self):
        self.logf = open(os.path.join(self.dir, "nats.log"), "wb")
        args = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", self.dir]
        if self.max_payload is not None:
            conf = os.path.join(self.dir, "nats.conf")
            with open(conf, "w") as f:
                f.write("max_payload: %d\n" % self.max_payload)
            args += ["-c", conf]
        args += self.extra_args
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT)
        # ready once it says so: it listens before it has loaded everything
        # (an operator's accounts: a client that comes too early is refused)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with open(os.path.join(self.dir, "nats.log"), "rb") as f:
                if b"Server is ready" in f.read():
                    socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                    return self
            time.sleep(0.05)
        raise AssertionError("nats-server did not start on %d:\n%s" % (
            self.port, open(os.path.join(self.dir, "nats.log"), errors="replace").read()[-2000:]))

    def halt(self):
        """Stops nats-server but keeps its store and port: start() again resumes it."""
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc = None
        self.logf.close()

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.logf.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def nats_publish(port, subjects_payloads):
    """Publishes each (subject, payload) with the NATS text protocol and
    waits until the server has them all (PING/PONG)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        data = b'CONNECT {"verbose":false}\r\n'
        for subject, payload in subjects_payloads:
            data += b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(payload), payload)
        sock.sendall(data + b"PING\r\n")
        buf = b""
        while b"PONG\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError("nats-server closed the connection")
            buf += chunk
    finally:
        sock.close()


class NatsWatcher:
    """A plain NATS subscriber (the text protocol) that sees what the nodes
    publish to each other."""

    def __init__(self, port, subject):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self._line()	# INFO
        self.sock.sendall(b'CONNECT {"verbose":false}\r\nSUB %s 1\r\nPING\r\n'
                          % subject.encode())
        while self._line() != b"PONG":
            pass

    def _line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("nats-server closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def subjects(self, quiet_s):
        """Subjects of the messages that arrive until none comes for quiet_s."""
        return [subject for subject, _ in self.messages(quiet_s)]

    def messages(self, quiet_s):
        """(subject, data without headers) of the messages that arrive until
        none comes for quiet_s."""
        got = []
        self.sock.settimeout(quiet_s)
        try:
            while True:
                line = self._line()
                if line.startswith(b"PING"):
                    self.sock.sendall(b"PONG\r\n")
                    continue
                if not line.startswith((b"MSG ", b"HMSG ")):
                    continue
                parts = line.split()
                size = int(parts[-1])
                headers = int(parts[-2]) if line.startswith(b"HMSG ") else 0
                while len(self.buf) < size + 2:
                    self.buf += self.sock.recv(65536)
                got.append((parts[1].decode(), self.buf[headers:size]))
                self.buf = self.buf[size + 2:]
        except socket.timeout:
            return got

    def drain(self):
        self.subjects(quiet_s=0.5)

    def close(self):
        self.sock.close()


@unittest.skipUnless(os.path.exists(NATS_SERVER), "nats-server is not installed (make deps)")
class ClusterBase(unittest.TestCase):
    """Two nodes "a" and "b" on one nats-server (max_payload: nats_max_payload)."""
    nats_max_payload = None

    def setUp(self):
        self.peers = []
        self.nodes = {}
        self.nats = self.make_nats()
        self.addCleanup(self.nats.stop)
        self.nats.start()
        for name in ("a", "b"):
            self.start_node(name)

    def make_nats(self):
        return NatsServer(self.nats_max_payload)

    def node_config(self, name):
        return ("cluster_url nats://127.0.0.1:%d\ncluster_name test\nnode_name %s\n"
                % (self.nats.port, name)) + getattr(self, "node_config_" + name, "")

    def start_node(self, name, port=None):
        """Starts node <name> (on <port>, else a free one). It is stopped and
        its directory removed after the test even when setUp or the test
        fails before tearDown (cleanups run last in, first out: the nodes
        before the nats-server started ahead of them)."""
        node = Broker(self.node_config(name), port=port)
        self.nodes[name] = node
        self.addCleanup(node.cleanup)
        self.addCleanup(node.stop, check=False)	# a no-op once tearDown stopped it
        node.start()
        return node

    def start_node_with_env(self, name, env, port=None):
        """ClusterBase.start_node with <env> (test hooks of debug builds) in
        the node's environment only (a subclass's start_node may call it)."""
        os.environ.update(env)
        try:
            return ClusterBase.start_node(self, name, port)
        finally:
            for key in env:
                del os.environ[key]

    def wait_log(self, name, text, timeout=CROSS_S):
        """Waits until node <name>'s log has <text>; fails with its log's end."""
        deadline = time.monotonic() + timeout
        while text not in self.nodes[name].log():
            if time.monotonic() > deadline:
                self.fail("node %s never logged %r:\n%s" % (name, text,
                                                             self.nodes[name].log()[-3000:]))
            time.sleep(0.05)

    def tearDown(self):
        for p in self.peers:
            p.close()
        errors = []
        failed = hasattr(self._outcome, "success") and not self._outcome.success
        for name, node in self.nodes.items():
            if failed:
                print("\n---- node %s log ----\n%s" % (name, node.log()[-4000:]))
            try:
                node.stop(check=True)
            except AssertionError as e:
                errors.append(str(e))
            node.cleanup()
        if errors:
            raise AssertionError("\n".join(errors))

    def client(self, node, client_id, **kw):
        p = Peer(self.nodes[node].port)
        self.peers.append(p)
        p.connect(client_id, **kw)
        return p

    def restart_with_store(self, name):
        """Stops node <name> and starts it again on its port with a store of
        its own (removed after the test); returns the port."""
        store = tempfile.mkdtemp(prefix="moattest-store-")
        self.addCleanup(shutil.rmtree, store, True)
        port = self.nodes[name].port
        self.nodes[name].stop(check=True)
        self.nodes[name].cleanup()
        setattr(self, "node_config_" + name,
                "persistence true\npersistence_location %s\n" % store)
        self.start_node(name, port=port)
        return port

    def kill9(self, name):
        """Kills node <name> (SIGKILL: no goodbye, its store as it is) and forgets it."""
        node = self.nodes.pop(name)
        node.proc.kill()
        node.proc.wait()
        node.proc = None
        node.logf.close()
        node.cleanup()

    def link(self, sub, topic, origin="a"):
        """Waits until node <origin> sends what <sub> (on another node)
        subscribed to, by publishing QoS 0 probes on <topic> from <origin>
        until one arrives; the nodes learn each other's filters through the
        interest bucket."""
        probe = self.client(origin, "probe-%d" % len(self.peers))
        deadline = time.monotonic() + CROSS_S
        while time.monotonic() < deadline:
            probe.publish(topic, b"probe")
            try:
                if sub.expect_publish(timeout=0.3).payload == b"probe":
                    sub.drain_publishes(quiet_s=0.5)
                    probe.disconnect()
                    return
            except socket.timeout:
                pass
        self.fail("node %s never sent what %s matches" % (origin, topic))

    def refused(self, url, lines, hint):
        """A third node on NATS at <url> with <lines> stops at start-up, saying
        it cannot connect to NATS and naming <hint> (what to check)."""
        node = Broker("cluster_url %s\ncluster_name test\nnode_name c\n%s" % (url, lines))
        self.addCleanup(node.cleanup)
        node.start(wait=False)
        try:
            node.proc.wait(timeout=CROSS_S + 10)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            node.proc.wait()
            self.fail("a node that NATS refuses started:\n" + node.log())
        self.assertNotEqual(node.proc.returncode, 0)
        self.assertIn("cannot connect to NATS", node.log())
        self.assertIn(hint, node.log())
        node.logf.close()
        node.proc = None

    def cross(self, topic, payload, qos=0, retain=False, props=None, sub_qos=2, sub_props=None):
        """Publishes on node a to a subscriber on node b; returns what b delivered."""
        sub = self.client("b", "sub-" + topic.replace("/", "-"))
        sub.subscribe((topic, sub_qos), props=sub_props)
        self.link(sub, topic)
        pub = self.client("a", "pub-" + topic.replace("/", "-"))
        pub.publish(topic, payload, qos=qos, retain=retain, props=props)
        return sub.expect_publish(timeout=CROSS_S)


class ClusterTest(ClusterBase):
    def test_qos_0_1_2_cross_nodes_with_downgrade(self):
        for qos in (0, 1, 2):
            got = self.cross("q/%d" % qos, b"m%d" % qos, qos=qos)
            self.assertEqual((got.topic, got.payload, got.qos), ("q/%d" % qos, b"m%d" % qos, qos))
        got = self.cross("down/x", b"d", qos=2, sub_qos=1)
        self.assertEqual(got.qos, 1)

    def test_properties_cross_nodes(self):
        props = [("payload_format", 1), ("content_type", "text/plain"),
                 ("response_topic", "reply/here"), ("correlation_data", b"\x00\x01"),
                 ("user_property", [("k1", "v1"), ("k2", "v2")]), ("message_expiry", 300)]
        got = self.cross("props/x", b"hello", qos=1, props=props,
                         sub_props=[("subscription_id", 7)])
        self.assertEqual(got.props["content_type"], "text/plain")
        self.assertEqual(got.props["response_topic"], "reply/here")
        self.assertEqual(got.props["correlation_data"], b"\x00\x01")
        self.assertEqual(got.props["payload_format"], 1)
        self.assertEqual(got.props["user_property"], [("k1", "v1"), ("k2", "v2")])
        self.assertEqual(got.props["subscription_id"], [7])
        self.assertTrue(0 < got.props["message_expiry"] <= 300)

    def test_escaped_topics_cross_nodes(self):
        sub = self.client("b", "sub-esc")
        sub.subscribe(("#", 1))
        self.link(sub, "probe/x")
        pub = self.client("a", "pub-esc")
        topics = ["a.b/*/>", "with space/x", "//empty//levels/", "caf\u00e9/\u6e29\u5ea6",
                  "=3D/%41", "$app/x"]
        for t in topics:
            pub.publish(t, t.encode(), qos=1)
        got = [sub.expect_publish(timeout=CROSS_S).topic for _ in topics[:-1]]
        self.assertEqual(got, topics[:-1])	# '#' does not match '$' topics
        sub.subscribe(("$app/#", 1))
        self.link(sub, "$app/probe")
        pub.publish("$app/x", b"x", qos=1)
        self.assertEqual(sub.expect_publish(timeout=CROSS_S).topic, "$app/x")

    def test_retain_as_published_and_no_echo(self):
        sub_b = self.client("b", "rap")
        sub_b.subscribe(("r/#", 1 | 0x08))	# retain as published
        self.link(sub_b, "r/probe")
        sub_a = self.client("a", "local")
        sub_a.subscribe(("r/#", 1))
        pub = self.client("a", "pub-rap")
        pub.publish("r/x", b"v", qos=1, retain=True)
        got = sub_b.expect_publish(timeout=CROSS_S)
        self.assertEqual((got.payload, got.retain), (b"v", 1))
        # node a's subscriber has it once: its own message does not come back
        self.assertEqual(sub_a.expect_publish(timeout=CROSS_S).payload, b"v")
        sub_a.expect_nothing(timeout=2.0)
        sub_b.expect_nothing(timeout=1.0)
        pub.publish("r/x", b"", qos=1, retain=True)	# clean up the bucket entry

    def test_retained_set_and_delete_across_nodes(self):
        pub = self.client("a", "pub-ret")
        pub.publish("ret/one", b"kept", qos=1, retain=True)
        deadline = time.monotonic() + CROSS_S
        got = None
        while got is None and time.monotonic() < deadline:
            sub = self.client("b", "sub-ret")
            sub.subscribe(("ret/#", 1))
            try:
                got = sub.expect_publish(timeout=0.5)
            except socket.timeout:
                pass
            sub.disconnect()
        self.assertIsNotNone(got, "node b never had the retained message")
        self.assertEqual((got.topic, got.payload, got.retain), ("ret/one", b"kept", 1))
        pub.publish("ret/one", b"", qos=1, retain=True)
        deadline = time.monotonic() + CROSS_S
        while time.monotonic() < deadline:
            sub = self.client("b", "sub-ret2")
            sub.subscribe(("ret/#", 1))
            try:
                sub.expect_publish(timeout=0.5)
                sub.disconnect()
            except socket.timeout:
                sub.disconnect()
                return
        self.fail("node b still delivers the deleted retained message")

    def test_order_per_publisher_and_no_duplicates(self):
        sub = self.client("b", "sub-order")
        sub.subscribe(("ord/#", 1), ("ord/+", 1))	# overlapping: still once each
        self.link(sub, "ord/probe")
        pub = self.client("a", "pub-order")
        for i in range(200):
            pub.publish("ord/%d" % (i % 3), b"%d" % i, qos=i % 2)
        got = [int(sub.expect_publish(timeout=CROSS_S).payload) for _ in range(200)]
        # QoS 0 passes queued QoS 1 messages (as on one node): order per QoS
        self.assertEqual([i for i in got if i % 2 == 0], list(range(0, 200, 2)))
        self.assertEqual([i for i in got if i % 2 == 1], list(range(1, 200, 2)))
        sub.expect_nothing(timeout=1.5)

    def test_only_interested_nodes_get_a_copy(self):
        watcher = NatsWatcher(self.nats.port, "test.n.>")
        self.addCleanup(watcher.close)
        sub = self.client("b", "sub-int")
        sub.subscribe(("int/wanted/+", 1))
        self.link(sub, "int/wanted/probe")
        watcher.drain()
        pub = self.client("a", "pub-int")
        pub.publish("int/unwanted", b"no one", qos=1)
        pub.publish("int/wanted/x", b"b only", qos=1)
        self.assertEqual(sub.expect_publish(timeout=CROSS_S).payload, b"b only")
        self.assertEqual(watcher.subjects(quiet_s=1.0), ["test.n.b.int.wanted.x"])
        sub.unsubscribe("int/wanted/+")
        deadline = time.monotonic() + CROSS_S
        while time.monotonic() < deadline:	# until node a has learnt it
            pub.publish("int/wanted/x", b"late", qos=1)
            if not watcher.subjects(quiet_s=0.3):
                break
        else:
            self.fail("node a still sends node b what it unsubscribed from")

    def test_puback_waits_for_jetstream(self):
        sub = self.client("b", "sub-gate")
        sub.subscribe(("gate/#", 1))
        self.link(sub, "gate/probe")
        pub = self.client("a", "pub-gate")
        self.nats.proc.send_signal(signal.SIGSTOP)	# JetStream cannot answer
        try:
            pid = pub.publish("gate/x", b"held", qos=1, complete=False)
            pub.expect_nothing(timeout=1.5)
        finally:
            self.nats.proc.send_signal(signal.SIGCONT)
        ack = pub.expect(PUBACK, timeout=CROSS_S)
        self.assertEqual(ack.pid, pid)
        self.assertEqual(sub.expect_publish(timeout=CROSS_S).payload, b"held")

    def test_restarted_node_resumes_its_durable_consumer(self):
        port = self.restart_with_store("b")
        sub = self.client("b", "durable", clean=False, props=[("session_expiry", 600)])
        sub.subscribe(("dur/#", 1))
        self.link(sub, "dur/probe")
        sub.disconnect()
        self.nodes["b"].stop(check=True)
        self.nodes["b"].cleanup()
        pub = self.client("a", "pub-dur")
        for i in range(5):
            pub.publish("dur/x", b"%d" % i, qos=1)	# stored by JetStream: node b is down
        self.start_node("b", port=port)
        sub = self.client("b", "durable", clean=False, props=[("session_expiry", 600)])
        got = [sub.expect_publish(timeout=CROSS_S).payload for _ in range(5)]
        self.assertEqual(got, [b"%d" % i for i in range(5)])
        sub.expect_nothing(timeout=1.0)


class InterestLimitTest(ClusterBase):
    """A node's filter set above NATS's max_payload: logged (once a
    minute), not retried on every pass, and SUBSCRIBE keeps working."""
    nats_max_payload = 4096

    def test_interest_above_max_payload_is_logged(self):
        sub = self.client("b", "sub-big")
        for i in range(12):
            sub.subscribe(("big/%d/%s" % (i, "x" * 400), 1))
        want = "cannot write this node's interest"
        deadline = time.monotonic() + CROSS_S
        while want not in self.nodes["b"].log() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn(want, self.nodes["b"].log())
        time.sleep(2.5)	# retried about every second meanwhile: still logged once
        sub.subscribe(("small/+", 1))
        self.assertEqual(self.nodes["b"].log().count(want), 1)


class RevocationAcrossNodesTest(ClusterBase):
    """A revocation list the Security Center pushes to node a is installed
    by node b too (it verifies the signature itself: NATS is not trusted
    for it): a revoked client on b is disconnected and refused."""

    def setUp(self):
        from authkit import moat_passwd_file
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
        self.dir = tempfile.mkdtemp(prefix="moat-cluster-sc-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        moat_passwd_file(os.path.join(self.dir, "passwd"), [("sc", "sc-pw")])
        self.key = Ed25519PrivateKey.generate()
        with open(os.path.join(self.dir, "sc.pub.pem"), "wb") as f:
            f.write(self.key.public_key().public_bytes(Encoding.PEM,
                                                       PublicFormat.SubjectPublicKeyInfo))
        self.node_config_a = self.node_config_b = (
            "password_file {0}/passwd\nsc_username sc\nsc_public_key {0}/sc.pub.pem\n"
            .format(self.dir))
        super().setUp()

    def test_list_pushed_to_one_node_is_enforced_by_the_other(self):
        from test_sc_revocation import signed_list
        victim = self.client("b", "dev1", version=5)
        other = self.client("b", "dev2", version=5)
        center = self.client("a", "moat-sc", username="sc", password="sc-pw")
        # b must want $sc/revoked for the routed copy; the retained bucket
        # reaches it either way
        center.publish("$sc/revoked", signed_list(self.key, 1, ["dev1"]), qos=1, retain=True)
        victim.expect_closed(timeout=CROSS_S, disconnect_rc=0x87)
        other.ping()
        deadline = time.monotonic() + CROSS_S
        while "revocation list 1" not in self.nodes["b"].log() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn("revocation list 1", self.nodes["b"].log())
        again = Peer(self.nodes["b"].port)
        self.peers.append(again)
        self.assertEqual(again.connect("dev1", version=5, expect_rc=None).rc, 0x87)
        # the same list seen twice by b (bucket, and at a's restart) is no news, no warning
        self.assertNotIn("from another cluster node refused", self.nodes["b"].log())


if __name__ == "__main__":
    unittest.main()
