"""Interop: Debian's python3-paho-mqtt (1.6.1) against moatd.

Every test runs for MQTT 3.1.1 and 5 where both apply. Paho publishes to and
subscribes from moattest's raw MQTT Peer, so flags and properties are checked
on the wire; two paho clients share a $share group; and mosquitto_pub
publishes to a paho subscriber (cross-client).
"""
import queue
import socket
import threading
import time
import unittest

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import interop

VERSIONS = (("v311", mqtt.MQTTv311), ("v5", mqtt.MQTTv5))


class Paho:
    """One paho client on its own network thread; every wait is bounded."""

    def __init__(self, test, protocol, will=None):
        self.test = test
        self.v5 = protocol == mqtt.MQTTv5
        self.dropped = False
        self.client = mqtt.Client(client_id="", protocol=protocol,
                                  **({} if self.v5 else {"clean_session": True}))
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.subacks = queue.Queue()
        self.client.on_connect = lambda c, u, f, rc, props=None: self.connected.set()
        self.client.on_message = lambda c, u, msg: self.messages.put(msg)
        self.client.on_subscribe = self._on_subscribe
        if will:
            self.client.will_set(*will)
        self.port = test.next_port()
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        test.assertTrue(self.connected.wait(interop.WAIT_S), "paho: no CONNACK")
        test.peers.append(self)  # closed by InteropTest.tearDown

    def _on_subscribe(self, client, userdata, mid, granted, props=None):
        codes = [g.value if hasattr(g, "value") else g for g in granted]
        self.subacks.put(codes)

    def subscribe(self, topic, qos, props=None):
        """Subscribes and returns the granted codes from the SUBACK."""
        if self.v5:
            rc, _ = self.client.subscribe(topic, options=mqtt.SubscribeOptions(qos=qos),
                                          properties=props)
        else:
            rc, _ = self.client.subscribe(topic, qos)
        self.test.assertEqual(rc, mqtt.MQTT_ERR_SUCCESS)
        codes = self.subacks.get(timeout=interop.WAIT_S)
        self.test.subscribed(self.port)
        return codes

    def publish(self, topic, payload, qos, retain=False, props=None):
        """Publishes and waits until the QoS handshake is complete."""
        info = self.client.publish(topic, payload, qos, retain,
                                   **({"properties": props} if props else {}))
        info.wait_for_publish(timeout=interop.WAIT_S)
        self.test.assertTrue(info.is_published(), "paho: publish not acknowledged")

    def message(self, timeout=interop.WAIT_S):
        """The next message received (queue.Empty after timeout)."""
        return self.messages.get(timeout=timeout)

    def no_message(self, timeout=1.0):
        """Fails the test if a message arrives within timeout."""
        try:
            msg = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        self.test.fail("unexpected message %r %r" % (msg.topic, msg.payload))

    def drop(self):
        """Closes the socket without DISCONNECT, as a crashed client would."""
        self.client.loop_stop()
        sock = self.client.socket()
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        self.dropped = True

    def close(self):
        """DISCONNECT (unless dropped) and stop the network thread."""
        if not self.dropped:
            self.client.disconnect()
        self.client.loop_stop()


def publish_props(**values):
    """PUBLISH Properties with the given paho attribute names set."""
    props = Properties(PacketTypes.PUBLISH)
    for name, value in values.items():
        setattr(props, name, value)
    return props


def collect(members, count):
    """Payloads each member receives until <count> in all, then 1 s of quiet."""
    got = [[] for _ in members]
    deadline = time.monotonic() + interop.WAIT_S
    while sum(map(len, got)) < count and time.monotonic() < deadline:
        for i, m in enumerate(members):
            try:
                got[i].append(m.message(timeout=0.05).payload)
            except queue.Empty:
                pass
    for m in members:
        m.no_message()
    return got


class PahoInterop(interop.InteropTest):

    def test_publish_qos_0_1_2(self):
        for name, proto in VERSIONS:
            sub = self.peer()
            sub.subscribe("pp/%s/+" % name, qos=2)
            pub = Paho(self, proto)
            for qos in (0, 1, 2):
                with self.subTest(version=name, qos=qos):
                    topic = "pp/%s/q%d" % (name, qos)
                    pub.publish(topic, b"paho %d" % qos, qos)
                    p = sub.expect_publish()
                    self.assertEqual((p.topic, p.qos, p.retain, p.payload),
                                     (topic, qos, 0, b"paho %d" % qos))

    def test_subscribe_qos_0_1_2(self):
        for name, proto in VERSIONS:
            sub = Paho(self, proto)
            pub = self.peer()
            for qos in (0, 1, 2):
                with self.subTest(version=name, qos=qos):
                    topic = "ps/%s/q%d" % (name, qos)
                    self.assertEqual(sub.subscribe(topic, qos), [qos])
                    pub.publish(topic, b"to paho %d" % qos, qos=2)
                    msg = sub.message()
                    self.assertEqual((msg.topic, msg.qos, msg.retain, msg.payload),
                                     (topic, qos, False, b"to paho %d" % qos))

    def test_retained_set_receive_delete(self):
        for name, proto in VERSIONS:
            with self.subTest(version=name):
                topic = "pr/" + name
                Paho(self, proto).publish(topic, b"kept", 1, retain=True)
                self.retained_everywhere(topic, b"kept")
                late = Paho(self, proto)
                late.subscribe(topic, 1)
                msg = late.message()
                self.assertEqual((msg.payload, msg.qos, msg.retain), (b"kept", 1, True))
                live = self.peer()
                live.subscribe(topic, qos=1)
                self.assertEqual(live.expect_publish().retain, 1)
                late.publish(topic, b"", 1, retain=True)
                deleted = live.expect_publish()  # live subscribers see the empty publish
                self.assertEqual(deleted.payload, b"")
                self.retained_everywhere(topic, None)
                later = Paho(self, proto)
                later.subscribe(topic, 1)
                later.no_message()

    def test_will_on_dropped_socket(self):
        for name, proto in VERSIONS:
            with self.subTest(version=name):
                topic = "pw/" + name
                watcher = self.peer()
                watcher.subscribe(topic, qos=2)
                victim = Paho(self, proto, will=(topic, b"paho gone", 2, False))
                victim.drop()
                p = watcher.expect_publish(timeout=interop.WAIT_S)
                self.assertEqual((p.topic, p.qos, p.retain, p.payload),
                                 (topic, 2, 0, b"paho gone"))

    def test_v5_properties_publish(self):
        sub = self.peer()
        sub.subscribe("p5/req", qos=1)
        pub = Paho(self, mqtt.MQTTv5)
        pub.publish("p5/req", b"ping", 1, props=publish_props(
            UserProperty=[("a", "1"), ("b", "2")], ContentType="text/plain",
            ResponseTopic="p5/resp", CorrelationData=b"\x00\x01corr",
            MessageExpiryInterval=90))
        p = sub.expect_publish()
        self.assertEqual(p.payload, b"ping")
        self.assertEqual(p.props.get("user_property"), [("a", "1"), ("b", "2")])
        self.assertEqual(p.props.get("content_type"), "text/plain")
        self.assertEqual(p.props.get("response_topic"), "p5/resp")
        self.assertEqual(p.props.get("correlation_data"), b"\x00\x01corr")
        self.assertIn(p.props.get("message_expiry"), (89, 90))

    def test_v5_properties_subscribe(self):
        sub = Paho(self, mqtt.MQTTv5)
        sprops = Properties(PacketTypes.SUBSCRIBE)
        sprops.SubscriptionIdentifier = 42
        self.assertEqual(sub.subscribe("p5/in", 1, props=sprops), [1])
        self.peer().publish("p5/in", b"req", qos=1, props={
            "user_property": [("who", "peer")], "content_type": "application/octet-stream",
            "response_topic": "p5/out", "correlation_data": b"cd",
            "message_expiry": 300})
        msg = sub.message()
        got = msg.properties
        self.assertEqual(msg.payload, b"req")
        self.assertEqual(got.UserProperty, [("who", "peer")])
        self.assertEqual(got.ContentType, "application/octet-stream")
        self.assertEqual(got.ResponseTopic, "p5/out")
        self.assertEqual(got.CorrelationData, b"cd")
        self.assertIn(got.MessageExpiryInterval, (299, 300))
        self.assertEqual(got.SubscriptionIdentifier, [42])

    def test_request_response(self):
        """A paho responder answers on the request's response topic with its correlation data."""
        responder = Paho(self, mqtt.MQTTv5)
        responder.subscribe("p5/service", 1)
        requester = Paho(self, mqtt.MQTTv5)
        requester.subscribe("p5/reply/me", 1)
        requester.publish("p5/service", b"2+2", 1, props=publish_props(
            ResponseTopic="p5/reply/me", CorrelationData=b"id-7"))
        req = responder.message()
        responder.publish(req.properties.ResponseTopic, b"4", 1, props=publish_props(
            CorrelationData=req.properties.CorrelationData))
        reply = requester.message()
        self.assertEqual((reply.topic, reply.payload, reply.properties.CorrelationData),
                         ("p5/reply/me", b"4", b"id-7"))

    def test_shared_subscription(self):
        for name, proto in VERSIONS:
            with self.subTest(version=name):
                topic = "psh/" + name
                members = [Paho(self, proto) for _ in range(2)]
                for m in members:
                    self.assertEqual(m.subscribe("$share/g/" + topic, 1), [1])
                pub = self.peer()
                sent = [b"s%d" % i for i in range(20)]  # see test_mosquitto_clients
                for payload in sent:
                    pub.publish(topic, payload, qos=1)
                got = collect(members, len(sent))
                self.assertEqual(sorted(got[0] + got[1]), sorted(sent))
                self.assertTrue(got[0] and got[1], "one member got nothing: %r" % got)

    def test_cross_mosquitto_pub_to_paho_sub(self):
        for name, proto in VERSIONS:
            with self.subTest(version=name):
                topic = "px/" + name
                sub = Paho(self, proto)
                self.assertEqual(sub.subscribe(topic, 2), [2])
                argv = ["/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.next_port()),
                        "-V", "mqttv5", "-q", "2", "-t", topic, "-m", "from mosquitto",
                        "-D", "publish", "user-property", "src", "mosquitto_pub"]
                self.run_ok(argv)
                msg = sub.message()
                self.assertEqual((msg.topic, msg.qos, msg.payload),
                                 (topic, 2, b"from mosquitto"))
                if proto == mqtt.MQTTv5:
                    self.assertEqual(msg.properties.UserProperty, [("src", "mosquitto_pub")])


if __name__ == "__main__":
    unittest.main()
