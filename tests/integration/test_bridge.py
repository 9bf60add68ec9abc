"""Bridges (docs/bridge.md) against a real Debian mosquitto, both ways.

moatd bridging to mosquitto (the remote) and mosquitto bridging to moatd:
both directions with topic remapping, TLS, notifications, a link cut by
stopping the remote for a while, and kill -9 of the bridging moatd while it
holds messages nobody has forwarded yet. Every broker runs on a free
loopback port with its own temporary configuration and is stopped by the
test, also when it fails.
"""
import os
import select
import signal
import socket
import threading
import time
import unittest
import urllib.request

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


class FreezingProxy:
    """A TCP relay to <port> that can freeze the connections it carries: no
    byte passes and none is closed, as when a link is cut without FIN. New
    connections after the freeze are relayed normally."""

    def __init__(self, port):
        self.target = port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.frozen = set()
        self.pairs, self.dead = [], []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def freeze(self):
        """Freezes every connection open now."""
        self.frozen.update(id(a) for a, _ in self.pairs)

    def _run(self):
        while not self.stopping:
            socks = [self.listener] + [x for pair in self.pairs for x in pair]
            readable, _, _ = select.select(socks, [], [], 0.2)
            for sk in readable:
                if sk is self.listener:
                    client, _ = self.listener.accept()
                    self.pairs.append((client, socket.create_connection(("127.0.0.1", self.target))))
                    continue
                pair = next(p for p in self.pairs if sk in p)
                other = pair[1] if sk is pair[0] else pair[0]
                try:
                    data = sk.recv(65536)
                except OSError:
                    data = b""
                if id(pair[0]) in self.frozen:
                    if not data:	# the far end gave up; nothing tells the other
                        self.pairs.remove(pair)
                        self.dead.append(pair)
                    continue	# swallowed
                if not data:
                    self.pairs.remove(pair)
                    for x in pair:
                        x.close()
                    continue
                other.sendall(data)

    def close(self):
        self.stopping = True
        self.thread.join()
        self.listener.close()
        for pair in self.pairs + self.dead:
            for x in pair:
                x.close()


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
        metrics_port = moattest.free_port()
        near = self.start(self.moatd_bridge(remote.port, extra="sys_interval 1\nmetrics_listener %d\n"
                                            % metrics_port))
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
        # counters: $SYS and /metrics
        self.wait_state(near.port, "$SYS/broker/bridge/site/messages/sent", b"2")
        self.wait_state(near.port, "$SYS/broker/bridge/site/messages/received", b"1")
        self.wait_state(near.port, "$SYS/broker/bridge/site/connected", b"1")
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port, timeout=10) as r:
            text = r.read().decode()
        self.assertIn('moat_bridge_connected{bridge="site"} 1', text)
        self.assertIn('moat_bridge_messages_sent_total{bridge="site"} 2', text)
        self.assertIn('moat_bridge_messages_received_total{bridge="site"} 1', text)
        self.stop(near)
        # the Will tells the remote side the bridge is gone
        self.wait_state(remote.port, "$SYS/broker/connection/site-bridge/state", b"0")

    def test_v5_bridge_keeps_properties_and_passes_the_acl(self):
        remote = self.start(Mosquitto())
        near = self.moatd_bridge(remote.port, extra="bridge_protocol_version mqttv50\n")
        acl = os.path.join(near.dir, "acl")
        with open(acl, "w") as f:	# anonymous: site/ and reading local/ only
            f.write("topic readwrite site/#\ntopic read local/#\n")
        with open(near.conf_path, "a") as f:
            f.write("acl_file %s\n" % acl)
        self.start(near)
        self.wait_state(remote.port, "$SYS/broker/connection/site-bridge/state", b"1")
        far_sub = self.peer(remote.port, "far-sub")
        far_sub.subscribe("central/#", qos=1)
        near_sub = self.peer(near.port, "near-sub")
        near_sub.subscribe("local/#", qos=1)
        props = [("content_type", "text/plain"), ("user_property", [("site", "17"), ("k", "v")]),
                 ("correlation_data", b"\x01\x02")]
        self.peer(near.port, "near-pub").publish("site/sensors/p", b"v5", qos=1, props=props)
        got = collect(far_sub, 1)
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0].props.get("content_type"), "text/plain")
        self.assertEqual(got[0].props.get("correlation_data"), b"\x01\x02")
        self.assertEqual(got[0].props.get("user_property"), [("site", "17"), ("k", "v")])
        # the bridge publishes local/cmd/... which anonymous clients may not:
        # its local link is internal and above the ACL, as mosquitto's bridges are
        self.peer(remote.port, "far-pub").publish("remote/cmd/go", b"1", qos=1)
        got = collect(near_sub, 1)
        self.assertEqual([p.topic for p in got], ["local/cmd/go"])
        self.stop(near)

    def test_failover_to_the_second_address(self):
        remote = self.start(Mosquitto())
        dead = moattest.free_port()	# nothing listens there
        near = Broker("")
        self.procs.append(near)
        with open(near.conf_path, "a") as f:
            f.write("connection site\naddress 127.0.0.1:%d 127.0.0.1:%d\nremote_clientid site-bridge\n"
                    "restart_timeout 1\ntopic sensors/# out 1\n" % (dead, remote.port))
        near.start()
        self.wait_state(remote.port, "$SYS/broker/connection/site-bridge/state", b"1")
        far_sub = self.peer(remote.port, "far-sub", version=4)
        far_sub.subscribe("sensors/#", qos=1)
        self.peer(near.port, "near-pub").publish("sensors/a", b"via b", qos=1)
        self.assertEqual([p.payload for p in collect(far_sub, 1)], [b"via b"])
        self.assertIn("connected to 127.0.0.1:%d" % remote.port, near.log())
        self.stop(near)

    def test_outgoing_retain_and_max_packet_size(self):
        remote = self.start(Mosquitto())
        near = self.start(self.moatd_bridge(remote.port, extra="bridge_max_packet_size 200\n"
                                            "connection plain\naddress 127.0.0.1:%d\n"
                                            "remote_clientid plain-bridge\n"
                                            "bridge_outgoing_retain false\n"
                                            "topic keep/# out 1 \"\" plain/\n" % remote.port))
        self.wait_state(remote.port, "$SYS/broker/connection/site-bridge/state", b"1")
        self.wait_state(remote.port, "$SYS/broker/connection/plain-bridge/state", b"1")
        far_sub = self.peer(remote.port, "far-sub", version=4)
        far_sub.subscribe("central/#", "plain/#", qos=1)
        pub = self.peer(near.port, "near-pub")
        pub.publish("site/sensors/r", b"kept", qos=1, retain=True)
        pub.publish("site/sensors/big", b"x" * 400, qos=1)	# over 200 bytes: not sent
        pub.publish("site/sensors/small", b"s", qos=1)
        pub.publish("keep/r", b"flag cleared", qos=1, retain=True)
        got = sorted(p.topic for p in collect(far_sub, 4, timeout=5.0))
        self.assertEqual(got, ["central/sensors/r", "central/sensors/small", "plain/keep/r"])
        self.assertIn("over bridge_max_packet_size", near.log())
        # retained on the remote as published; with bridge_outgoing_retain
        # false it arrived without the flag, so a new subscriber gets nothing
        late = self.peer(remote.port, "late-sub", version=4)
        late.subscribe("central/#", "plain/#", qos=1)
        got = collect(late, 2, timeout=2.0)
        self.assertEqual([(p.topic, p.payload, p.retain) for p in got],
                         [("central/sensors/r", b"kept", 1)])
        self.stop(near)

    def test_kill9_while_bringing_messages_in(self):
        remote = self.start(Mosquitto())
        near = self.start(self.moatd_bridge(remote.port))
        self.wait_state(remote.port, "$SYS/broker/connection/site-bridge/state", b"1")
        near_sub = connected(near.port, "near-sub", clean=False,
                             props={"session_expiry": 3600})
        near_sub.subscribe("local/#", qos=1)
        near_sub.close()
        far_pub = self.peer(remote.port, "far-pub", version=4)
        acked = []
        killer = threading.Timer(0.3, lambda: near.proc.send_signal(signal.SIGKILL))
        killer.start()
        for i in range(400):
            m = b"i%04d" % i
            far_pub.publish("remote/cmd/in", m, qos=1)	# acknowledged by mosquitto
            acked.append(m)
        killer.join()
        near.proc.wait()
        near.logf.close()
        near.proc = None
        near.start()
        near_sub = self.peer(near.port, "near-sub", clean=False,
                             props={"session_expiry": 3600})
        got = collect(near_sub, len(acked), timeout=60.0)
        got += collect(near_sub, 100000, timeout=2.0)
        first = []
        for p in got:
            if p.payload not in first:
                first.append(p.payload)
        self.assertEqual(first, acked, "in order, nothing mosquitto acknowledged lost")
        self.stop(near)

    def test_tls_to_mosquitto(self):
        certs = tlstest.make_certs()
        try:
            tls_port = moattest.free_port()
            remote = self.start(Mosquitto(
                "listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n"
                "require_certificate true\n" % (
                    tls_port, os.path.join(certs, "ca.crt"), os.path.join(certs, "server.crt"),
                    os.path.join(certs, "server.key"))))
            near = self.start(self.moatd_bridge(
                tls_port, extra="bridge_cafile %s\nbridge_certfile %s\nbridge_keyfile %s\n" % (
                    os.path.join(certs, "ca.crt"), os.path.join(certs, "client.crt"),
                    os.path.join(certs, "client.key"))))
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

    def test_link_cut_without_fin_is_found_by_keep_alive(self):
        remote = self.start(Mosquitto())
        proxy = FreezingProxy(remote.port)
        self.addCleanup(proxy.close)
        near = self.start(self.moatd_bridge(proxy.port, extra="keepalive_interval 5\n"))
        self.wait_state(remote.port, "$SYS/broker/connection/site-bridge/state", b"1")
        far_sub = self.peer(remote.port, "far-sub", version=4)
        far_sub.subscribe("central/#", qos=1)
        proxy.freeze()
        pub = self.peer(near.port, "near-pub")
        sent = [b"f%02d" % i for i in range(10)]
        for m in sent:
            pub.publish("site/sensors/frozen", m, qos=1)
        # keep alive 5 s: the PINGREQ goes unanswered, the bridge reconnects
        # through the proxy's fresh relay and sends the unacknowledged again
        got = collect(far_sub, len(sent), timeout=45.0)
        self.assertEqual([p.payload for p in got], sent)
        self.assertIn("connection to the remote broker lost", near.log())
        self.stop(near)

    def test_kill9_mid_stream_with_the_remote_up(self):
        remote = self.start(Mosquitto())
        near = self.start(self.moatd_bridge(remote.port))
        self.wait_state(remote.port, "$SYS/broker/connection/site-bridge/state", b"1")
        far_sub = self.peer(remote.port, "far-sub", version=4)
        far_sub.subscribe("central/#", qos=1)
        pub = connected(near.port, "near-pub")
        acked = []
        killer = threading.Timer(0.5, lambda: near.proc.send_signal(signal.SIGKILL))
        killer.start()
        try:
            for i in range(100000):
                m = b"s%05d" % i
                pub.publish("site/sensors/stream", m, qos=1)
                acked.append(m)
        except (moattest.Closed, OSError, AssertionError):
            pass
        finally:
            killer.join()
            pub.close()
        near.proc.wait()
        near.logf.close()
        near.proc = None
        self.assertGreater(len(acked), 0)
        near.start()
        got = collect(far_sub, len(acked), timeout=60.0)
        got += collect(far_sub, 100000, timeout=2.0)
        first = []
        seen = set()
        for p in got:
            if p.payload not in seen:
                seen.add(p.payload)
                first.append(p.payload)
        # what moatd acknowledged arrives, in order; a message sent but not
        # acknowledged before the kill may follow it (at least once)
        self.assertEqual(first[:len(acked)], acked)
        self.assertEqual(first, sorted(first))
        self.stop(near)

    # -- mosquitto bridging to moatd -----------------------------------------
    def test_mosquitto_to_moatd_with_try_private(self):
        central = self.start(Broker(""))
        site = Mosquitto(
            "connection central\naddress 127.0.0.1:%d\nremote_clientid mosq-site\n"
            "remote_username site\n"  # notifications need an authenticated bridge
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


    def test_kill9_of_moatd_as_the_remote(self):
        central = Broker("persistence true\npersistence_location store\n")
        self.start(central)
        site = self.start(Mosquitto(
            "connection central\naddress 127.0.0.1:%d\nremote_clientid mosq-site\n"
            "remote_username site\n"  # notifications need an authenticated bridge
            "restart_timeout 1\ntopic sensors/# out 1 site/ central/\n" % central.port))
        self.wait_state(central.port, "$SYS/broker/connection/mosq-site/state", b"1")
        sub = connected(central.port, "central-sub", clean=False, props={"session_expiry": 3600})
        sub.subscribe("central/#", qos=1)
        sub.close()
        pub = self.peer(site.port, "site-pub", version=4)
        sent = []
        for i in range(20):
            sent.append(b"r%02d" % i)
            pub.publish("site/sensors/x", sent[-1], qos=1)
        central.proc.send_signal(signal.SIGKILL)
        central.proc.wait()
        central.logf.close()
        central.proc = None
        for i in range(20, 40):	# mosquitto holds these for the bridge meanwhile
            sent.append(b"r%02d" % i)
            pub.publish("site/sensors/x", sent[-1], qos=1)
        central.start()
        sub = self.peer(central.port, "central-sub", clean=False, props={"session_expiry": 3600})
        got = collect(sub, len(sent))
        got += collect(sub, 1000, timeout=1.5)
        first = []
        for p in got:
            if p.payload not in first:
                first.append(p.payload)
        self.assertEqual(first, sent)
        self.stop(central)


if __name__ == "__main__":
    unittest.main()
