"""Interop: Debian's mosquitto_pub / mosquitto_sub (2.0.x) against moatd.

Each test runs for MQTT 3.1.1 and 5 (-V mqttv311 / mqttv5) where both apply;
the other side of each exchange is moattest's raw MQTT Peer, so every flag
and property the mosquitto client sent or received is checked on the wire.
"""
import signal
import unittest

import interop

PUB = "/usr/bin/mosquitto_pub"
VERSIONS = ("mqttv311", "mqttv5")
FIELDS = "%t|%q|%r|%p"  # topic, QoS, retain flag, payload


class MosquittoClients(interop.InteropTest):

    def cmd(self, prog, version, *args):
        """argv for a mosquitto client program on this test's broker (its next node)."""
        return [prog, "-h", "127.0.0.1", "-p", str(self.next_port()), "-V", version] + list(args)

    def test_publish_qos_0_1_2(self):
        """mosquitto_pub at each QoS reaches a QoS 2 subscriber at that QoS."""
        for version in VERSIONS:
            sub = self.peer()
            sub.subscribe("mp/%s/+" % version, qos=2)
            for qos in (0, 1, 2):
                with self.subTest(version=version, qos=qos):
                    topic = "mp/%s/q%d" % (version, qos)
                    self.run_ok(self.cmd(PUB, version, "-q", str(qos), "-t", topic,
                                         "-m", "hello %d" % qos))
                    p = sub.expect_publish()
                    self.assertEqual((p.topic, p.qos, p.retain, p.payload),
                                     (topic, qos, 0, b"hello %d" % qos))
            sub.close()

    def test_subscribe_qos_0_1_2(self):
        """mosquitto_sub at each QoS gets a QoS 2 publish at its granted QoS."""
        for version in VERSIONS:
            for qos in (0, 1, 2):
                with self.subTest(version=version, qos=qos):
                    topic = "ms/%s/q%d" % (version, qos)
                    sub = self.mosquitto_sub(version, "-q", str(qos), "-t", topic,
                                             "-C", "1", "-W", "10", "-F", FIELDS)
                    self.peer().publish(topic, b"to sub %d" % qos, qos=2)
                    self.assertEqual(self.mosquitto_output(sub),
                                     ["%s|%d|0|to sub %d" % (topic, qos, qos)])

    def test_retained_set_receive_delete(self):
        """-r stores; a later mosquitto_sub sees retain 1; -r -n deletes it."""
        for version in VERSIONS:
            with self.subTest(version=version):
                topic = "mr/" + version
                self.run_ok(self.cmd(PUB, version, "-r", "-q", "1", "-t", topic, "-m", "kept"))
                self.retained_everywhere(topic, b"kept")
                sub = self.mosquitto_sub(version, "-q", "1", "-t", topic, "-C", "1",
                                         "-W", "10", "-F", FIELDS)
                self.assertEqual(self.mosquitto_output(sub), ["%s|1|1|kept" % topic])
                self.run_ok(self.cmd(PUB, version, "-r", "-n", "-t", topic))
                self.retained_everywhere(topic, None)
                check = self.peer()
                check.subscribe(topic, qos=1)
                check.expect_nothing(timeout=1.0)
                check.close()

    def test_will_on_killed_client(self):
        """mosquitto_sub killed without DISCONNECT: its will is published."""
        for version in VERSIONS:
            with self.subTest(version=version):
                topic = "mw/" + version
                watcher = self.peer()
                watcher.subscribe(topic, qos=1)
                sub = self.mosquitto_sub(version, "-t", "mw-idle", "--will-topic", topic,
                                         "--will-payload", "gone", "--will-qos", "1",
                                         "--will-retain")
                sub.send_signal(signal.SIGKILL)
                sub.wait(timeout=interop.WAIT_S)
                p = watcher.expect_publish(timeout=interop.WAIT_S)
                self.assertEqual((p.topic, p.qos, p.payload), (topic, 1, b"gone"))
                watcher.close()
                self.retained_everywhere(topic, b"gone")
                late = self.peer()
                late.subscribe(topic, qos=1)
                r = late.expect_publish()
                self.assertEqual((r.topic, r.retain, r.payload), (topic, 1, b"gone"))
                late.close()

    def test_v5_properties_publish(self):
        """-D publish properties reach a v5 subscriber unchanged (expiry may only drop)."""
        sub = self.peer()
        sub.subscribe("m5/props", qos=1)
        self.run_ok(self.cmd(PUB, "mqttv5", "-q", "1", "-t", "m5/props", "-m", "{}",
                             "-D", "publish", "user-property", "k1", "v1",
                             "-D", "publish", "user-property", "k2", "v2",
                             "-D", "publish", "content-type", "application/json",
                             "-D", "publish", "response-topic", "m5/reply",
                             "-D", "publish", "correlation-data", "corr-42",
                             "-D", "publish", "message-expiry-interval", "120",
                             "-D", "publish", "payload-format-indicator", "1"))
        p = sub.expect_publish()
        self.assertEqual(p.payload, b"{}")
        self.assertEqual(p.props.get("user_property"), [("k1", "v1"), ("k2", "v2")])
        self.assertEqual(p.props.get("content_type"), "application/json")
        self.assertEqual(p.props.get("response_topic"), "m5/reply")
        self.assertEqual(p.props.get("correlation_data"), b"corr-42")
        self.assertEqual(p.props.get("payload_format"), 1)
        self.assertIn(p.props.get("message_expiry"), (119, 120))

    def test_v5_properties_subscribe(self):
        """mosquitto_sub prints the properties and its subscription identifier."""
        topic = "m5/in"
        sub = self.mosquitto_sub("mqttv5", "-q", "1", "-t", topic, "-C", "1", "-W", "10",
                                 "-D", "subscribe", "subscription-identifier", "7",
                                 "-F", "%p|%P|%C|%R|%D|%E|%S")
        self.peer().publish(topic, b"req", qos=1, props={
            "user_property": [("who", "peer")], "content_type": "text/plain",
            "response_topic": "m5/out", "correlation_data": b"c9",
            "message_expiry": 300})
        lines = self.mosquitto_output(sub)
        self.assertEqual(len(lines), 1, lines)
        out = lines[0].split("|")
        self.assertEqual(out[:5], ["req", "who:peer", "text/plain", "m5/out", "c9"])
        self.assertIn(out[5], ("299", "300"))
        self.assertEqual(out[6], "7")

    def test_shared_subscription(self):
        """Two mosquitto_sub in $share/g/t: each of 20 messages reaches exactly one
        (20: across cluster nodes NATS picks a node at random per message, so one
        member getting none has a chance of 2 in 2^20)."""
        for version in VERSIONS:
            with self.subTest(version=version):
                topic = "msh/" + version
                subs = [self.mosquitto_sub(version, "-q", "1", "-t", "$share/g/" + topic,
                                           "-W", "4", "-F", "%p")
                        for _ in range(2)]
                pub = self.peer()
                sent = ["m%d" % i for i in range(20)]
                for m in sent:
                    pub.publish(topic, m.encode(), qos=1)
                pub.close()
                got = [self.mosquitto_output(s, timeouts_ok=True) for s in subs]
                self.assertEqual(sorted(got[0] + got[1]), sorted(sent))
                self.assertTrue(got[0] and got[1], "one member got nothing: %r" % got)


if __name__ == "__main__":
    unittest.main()
