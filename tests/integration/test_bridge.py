"""Bridges (docs/bridge.md) against a real Debian mosquitto, both ways.

moatd bridging to mosquitto (the remote) and mosquitto bridging to moatd:
both directions with topic remapping, TLS, notifications, a link cut by
stopping the remote for a while, and kill -9 of the bridging moatd while it
holds messages nobody has forwarded yet. Every broker runs on a free
loopback port with its own temporary configuration and is stopped by the
test, also when it fails.
"""
import os
import signal
import socket
import time
import unittest

import moattest
import tlstest
from moattest import Broker, Peer

NOTIFY_WAIT_S = 10.0
DELIVERY_WAIT_S = 20.0


class Mosquitto(Broker):
    """Debian's mosquitto with Broker's configuration file and log; run as
    root it stays root, so it reads and writes the test's private files."""

    def __init__(self, config="", **kw):
        if os.geteuid() == 0:
            config = "user root\n" + config
        super().__init__(config, **kw)

    def command(self):
        if not os.path.exists(moattest.MOSQUITTO):
            raise unittest.SkipTest("mosquitto is not installed (make deps)")
        return [moattest.MOSQUITTO, "-c", self.conf_path]


def connected(port, client_id, version=5, clean=True, **kw):
    p = Peer(port, version=version, timeout=DELIVERY_WAIT_S)
    p.connect(client_id, clean=clean, **kw)
    return p


def collect(peer, count, timeout=DELIVERY_WAIT_S):
    """<count> PUBLISH packets (acknowledged), or fewer when <timeout> passes."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        try:
            got.append(peer.expect_publish(timeout=max(0.1, deadline - time.monotonic())))
        except socket.timeout:
            break
    return got


class BridgeTest(unittest.TestCase):
    def setUp(self):
        self.procs = []
        self.peers = []

    def tearDown(self):
        for p in self.peers:
            p.close()
        for b in reversed(self.procs):
            if b.proc is not None and b.proc.poll() is None:
                b.proc.kill()
                b.proc.wait()
            if b.logf is not None:
                b.logf.close()
            b.cleanup()

    def start(self, broker):
        self.procs.append(broker)
        broker.start()
        return broker

    def peer(self, port, client_id, **kw):
        p = connected(port, client_id, **kw)
        self.peers.append(p)
        return p

    def stop(self, broker):
        """SIGTERM; moatd must exit 0 without sanitizer reports."""
        broker.stop(check=not isinstance(broker, Mosquitto))

    def wait_state(self, port, topic, want, version=5):
        """The retained notification on <topic> becomes <want>."""
        deadline = time.monotonic() + NOTIFY_WAIT_S
        last = None
        while time.monotonic() < deadline:
            p = connected(port, "state-watch", version=version)
            try:
                p.subscribe(topic, qos=1)
                try:
                    last = p.expect_publish(timeout=1.0).payload
                except socket.timeout:
                    last = None
            finally:
                p.close()
            if last == want:
                return
            time.sleep(0.2)
        self.fail("%s on port %d is %r, not %r" % (topic, port, last, want))

    def moatd_bridge(self, remote_port, extra="", persistence=True, port=None):
        broker = Broker("", port=port)
        lines = []
        if persistence:
            lines += ["persistence true", "persistence_location %s" % os.path.join(broker.dir, "store")]
        lines += ["connection site",
                  "address 127.0.0.1:%d" % remote_port,
                  "remote_clientid site-bridge",
                  "restart_timeout 1",
                  "topic sensors/# out 1 site/ central/",
                  "topic cmd/# in 1 local/ remote/"]
        with open(broker.conf_path, "a") as f:
            f.write("\n".join(lines) + "\n" + extra)
        return broker

    # -- moatd bridging to mosquitto -----------------------------------------
    def test_moatd_to_mosquitto_both_directions_remapped(self):
        remote = self.start(Mosquitto())
        near = self.start(self.moatd_bridge(remote.port))
        self.wait_state(remote.port, "$SYS/broker/connection/site-bridge/state", b"1")
        self.wait_state(near.port, "$SYS/broker/connection/site-bridge/state", b"1")
        far_sub = self.peer(remote.port, "far-sub", version=4)
        far_sub.subscribe("#", qos=1)
        near_sub = self.peer(near.port, "near-sub")
        near_sub.subscribe("local/#", qos=1)
        near_pub = self.peer(near.port, "near-pub")
        near_pub.publish("site/sensors/t1", b"21.5", qos=1)
        near_pub.publish("site/other/t1", b"not bridged", qos=1)
        got = collect(far_sub, 1)
        self.assertEqual([(p.topic, p.payload) for p in got], [("central/sensors/t1", b"21.5")])
        far_sub.expect_nothing(0.5)
        far_pub = self.peer(remote.port, "far-pub", version=4)
        far_pub.publish("remote/cmd/open", b"go", qos=1)
        got = collect(near_sub, 1)
        self.assertEqual([(p.topic, p.payload, p.qos) for p in got], [("local/cmd/open", b"go", 1)])
        # what came in is not sent back out (no loop)
        far_sub.drain_publishes()
        near_pub.publish("site/sensors/t2", b"x", qos=1)
        got = collect(far_sub, 2, timeout=2.0)
        self.assertEqual([p.topic for p in got], ["central/sensors/t2"])
        self.stop(near)
        # the Will tells the remote side the bridge is gone
        self.wait_state(remote.port, "$SYS/broker/connection/site-bridge/state", b"0")

    def test_tls_to_mosquitto(self):
        certs = tlstest.make_certs()
        try:
            tls_port = moattest.free_port()
            remote = self.start(Mosquitto(
                "listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n" % (
                    tls_port, os.path.join(certs, "ca.crt"), os.path.join(certs, "server.crt"),
                    os.path.join(certs, "server.key"))))
            near = self.start(self.moatd_bridge(tls_port, extra="bridge_cafile %s\n" %
                                                os.path.join(certs, "ca.crt")))
            self.wait_state(remote.port, "$SYS/broker/connection/site-bridge/state", b"1")
            far_sub = self.peer(remote.port, "far-sub", version=4)
            far_sub.subscribe("central/#", qos=1)
            self.peer(near.port, "near-pub").publish("site/sensors/tls", b"sealed", qos=1)
            got = collect(far_sub, 1)
            self.assertEqual([(p.topic, p.payload) for p in got], [("central/sensors/tls", b"sealed")])
            self.assertIn("over TLS", near.log())
            self.stop(near)
        finally:
            import shutil
            shutil.rmtree(certs, ignore_errors=True)

    def test_link_cut_by_stopping_the_remote(self):
        remote_port = moattest.free_port()
        mosq_conf = "persistence true\npersistence_location %s/\n"
        remote = Mosquitto(port=remote_port)
        with open(remote.conf_path, "a") as f:
            f.write(mosq_conf % remote.dir)
        self.start(remote)
        near = self.start(self.moatd_bridge(remote_port))
        self.wait_state(remote_port, "$SYS/broker/connection/site-bridge/state", b"1")
        far_sub = connected(remote_port, "far-sub", version=4, clean=False)
        far_sub.subscribe("central/#", qos=1)
        far_sub.close()
        remote.stop(check=False)	# SIGTERM: mosquitto saves far-sub's session
        self.wait_state(near.port, "$SYS/broker/connection/site-bridge/state", b"0")
        pub = self.peer(near.port, "near-pub")
        sent = [b"m%03d" % i for i in range(30)]
        for m in sent:
            pub.publish("site/sensors/cut", m, qos=1)	# acknowledged by moatd
        time.sleep(1.0)
        remote.start()	# same port, same directory
        far_sub = self.peer(remote_port, "far-sub", version=4, clean=False)
        got = collect(far_sub, len(sent))
        self.assertEqual([p.payload for p in got], sent)
        self.wait_state(near.port, "$SYS/broker/connection/site-bridge/state", b"1")
        self.stop(near)

    def test_kill9_of_the_bridging_moatd_loses_nothing_acknowledged(self):
        remote_port = moattest.free_port()
        remote = Mosquitto(port=remote_port)
        with open(remote.conf_path, "a") as f:
            f.write("persistence true\npersistence_location %s/\n" % remote.dir)
        self.start(remote)
        near = self.start(self.moatd_bridge(remote_port))
        self.wait_state(remote_port, "$SYS/broker/connection/site-bridge/state", b"1")
        far_sub = connected(remote_port, "far-sub", version=4, clean=False)
        far_sub.subscribe("central/#", qos=1)
        far_sub.close()
        remote.stop(check=False)
        pub = connected(near.port, "near-pub")
        acked = []
        for i in range(40):
            m = b"k%03d" % i
            pub.publish("site/sensors/k9", m, qos=1)
            acked.append(m)
        pub.close()
        near.proc.send_signal(signal.SIGKILL)
        near.proc.wait()
        near.logf.close()
        near.proc = None
        remote.start()
        near.start()
        far_sub = self.peer(remote_port, "far-sub", version=4, clean=False)
        got = collect(far_sub, len(acked))
        got += collect(far_sub, 1000, timeout=1.5)	# duplicates QoS 1 may bring
        payloads = [p.payload for p in got]
        first = []
        for m in payloads:
            if m not in first:
                first.append(m)
        self.assertEqual(first, acked, "delivered in order, nothing acknowledged lost")
        self.stop(near)

    # -- mosquitto bridging to moatd -----------------------------------------
    def test_mosquitto_to_moatd_with_try_private(self):
        central = self.start(Broker(""))
        site = Mosquitto(
            "connection central\naddress 127.0.0.1:%d\nremote_clientid mosq-site\n"
            "restart_timeout 1\ncleansession true\n"
            "topic sensors/# out 1 site/ central/\n"
            "topic cmd/# in 1 local/ remote/\n"
            "topic chat/# both 1\n" % central.port)
        self.start(site)
        self.wait_state(central.port, "$SYS/broker/connection/mosq-site/state", b"1")
        self.assertIn("as a bridge", central.log())
        central_sub = self.peer(central.port, "central-sub")
        central_sub.subscribe("central/#", "chat/#", qos=1)
        site_sub = self.peer(site.port, "site-sub", version=4)
        site_sub.subscribe("local/#", "chat/#", qos=1)
        self.peer(site.port, "site-pub", version=4).publish("site/sensors/a", b"1", qos=1)
        got = collect(central_sub, 1)
        self.assertEqual([(p.topic, p.payload) for p in got], [("central/sensors/a", b"1")])
        self.peer(central.port, "central-pub").publish("remote/cmd/b", b"2", qos=1)
        got = collect(site_sub, 1)
        self.assertEqual([(p.topic, p.payload) for p in got], [("local/cmd/b", b"2")])
        # both ways on one topic: each side gets it once, nothing loops back
        self.peer(site.port, "site-chat", version=4).publish("chat/x", b"hi", qos=1)
        self.assertEqual([p.payload for p in collect(central_sub, 5, timeout=2.0)], [b"hi"])
        self.assertEqual([p.payload for p in collect(site_sub, 5, timeout=2.0)], [b"hi"])
        self.stop(site)
        self.stop(central)


if __name__ == "__main__":
    unittest.main()
