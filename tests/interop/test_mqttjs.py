"""Interop: MQTT.js (npm `mqtt` 5.x, tests/interop/node_modules) against moatd.

test_mqttjs_suite runs mqttjs_test.js (MQTT.js on both sides, 3.1.1 and 5).
The other tests make MQTT.js publish once (`mqttjs_test.js pub ...`) and check
what arrives: on the wire at a raw Peer, and at mosquitto_sub (cross-client).
Missing node or node_modules is a failure with the fix in the message.
"""
import os
import shutil
import unittest

import interop

SCRIPT = os.path.join(interop.HERE, "mqttjs_test.js")
MQTT_JS = os.path.join(interop.HERE, "node_modules", "mqtt", "package.json")


class MqttJs(interop.InteropTest):

    def setUp(self):
        self.node = shutil.which("node")
        self.assertIsNotNone(self.node, "node is not installed (make deps installs nodejs)")
        self.assertTrue(os.path.exists(MQTT_JS), "MQTT.js is missing: %s not found "
                        "(run `npm ci` in tests/interop, or `make deps`)" % MQTT_JS)
        super().setUp()

    def run_node(self, *args, timeout=interop.WAIT_S):
        """Runs mqttjs_test.js with args against this test's broker (its next node); its stdout."""
        return self.run_ok([self.node, SCRIPT] + list(args), timeout=timeout,
                           env={"MOAT_PORT": str(self.next_port())})

    def test_mqttjs_suite(self):
        # in the cluster run its clients take the nodes in turn (MOAT_PORTS), and it
        # skips its two shared-subscription cases
        out = self.run_ok([self.node, SCRIPT], timeout=150, env={
            "MOAT_PORTS": ",".join(str(b.port) for b in self.brokers)})
        self.assertNotIn("FAIL", out)
        self.assertEqual(out.count("ok   "), 9, out)

    def test_publish_qos_on_the_wire(self):
        """MQTT.js PUBLISH at each QoS (3.1.1 and 5) as a raw Peer sees it."""
        sub = self.peer()
        sub.subscribe("jw/#", qos=2)
        for version in ("4", "5"):
            for qos in (0, 1, 2):
                with self.subTest(version=version, qos=qos):
                    topic = "jw/%s/%d" % (version, qos)
                    self.run_node("pub", version, topic, "w%d" % qos, str(qos))
                    p = sub.expect_publish()
                    self.assertEqual((p.topic, p.qos, p.retain, p.payload),
                                     (topic, qos, 0, b"w%d" % qos))
                    if version == "5":
                        self.assertEqual(p.props.get("user_property"), [("src", "mqttjs")])

    def test_cross_mqttjs_pub_to_mosquitto_sub(self):
        for version, sub_version in (("4", "mqttv311"), ("5", "mqttv5")):
            with self.subTest(version=version):
                topic = "jx/" + version
                fmt = "%t|%q|%p|%P" if version == "5" else "%t|%q|%p"
                sub = self.mosquitto_sub(sub_version, "-q", "2", "-t", topic, "-C", "1",
                                         "-W", "10", "-F", fmt)
                self.run_node("pub", version, topic, "from mqttjs", "2")
                want = "%s|2|from mqttjs" % topic + ("|src:mqttjs" if version == "5" else "")
                self.assertEqual(self.mosquitto_output(sub), [want])


if __name__ == "__main__":
    unittest.main()
