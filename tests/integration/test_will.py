"""Will messages: on abrupt close, not on DISCONNECT 0, on DISCONNECT 0x04, v5 will delay."""
import time

import moattest as mt
from moattest import s


class TestWill(mt.BrokerTest):

    def watcher(self):
        w = self.client("watcher")
        w.subscribe("will/#", qos=2)
        return w

    def test_will_sent_on_abrupt_close(self):
        w = self.watcher()
        c = self.client("dier", will={"topic": "will/a", "payload": b"bye", "qos": 1})
        c.close()
        p = w.expect_publish()
        self.assertEqual((p.topic, p.payload), ("will/a", b"bye"))

    def test_will_v311_sent_on_abrupt_close(self):
        w = self.watcher()
        c = self.client("dier", version=4, will={"topic": "will/a", "payload": b"b", "qos": 2})
        c.close()
        self.assertEqual(w.expect_publish().payload, b"b")

    def test_will_not_sent_on_normal_disconnect(self):
        w = self.watcher()
        c = self.client("dier", will={"topic": "will/a", "payload": b"bye"})
        c.disconnect()
        w.expect_nothing(0.7)

    def test_will_sent_on_disconnect_0x04(self):
        w = self.watcher()
        c = self.client("dier", will={"topic": "will/a", "payload": b"w4"})
        c.disconnect(rc=0x04)
        self.assertEqual(w.expect_publish().payload, b"w4")

    def test_will_retained(self):
        c = self.client("dier", will={"topic": "will/r", "payload": b"kept", "retain": True})
        c.close()
        time.sleep(0.3)
        w = self.watcher()
        p = w.expect_publish()
        self.assertEqual((p.payload, p.retain), (b"kept", 1))

    def test_will_sent_on_keepalive_timeout(self):
        w = self.watcher()
        self.client("dier", keepalive=1, will={"topic": "will/ka", "payload": b"ka"})
        self.assertEqual(w.expect_publish(timeout=6).payload, b"ka")

    def test_will_sent_on_protocol_error(self):
        w = self.watcher()
        c = self.client("dier", will={"topic": "will/pe", "payload": b"pe"})
        c.send(bytes([0x00, 0x00]))
        self.assertEqual(w.expect_publish().payload, b"pe")

    def test_will_delay_postpones(self):
        w = self.watcher()
        c = self.client("dier", props={"session_expiry": 10},
                        will={"topic": "will/d", "payload": b"late", "props": {"will_delay": 1}})
        t0 = time.monotonic()
        c.close()
        p = w.expect_publish(timeout=4)
        self.assertEqual(p.payload, b"late")
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)

    def test_will_delay_cancelled_by_reconnect(self):
        w = self.watcher()
        will = {"topic": "will/d", "payload": b"late", "props": {"will_delay": 2}}
        c = self.client("dier", clean=False, props={"session_expiry": 10}, will=will)
        c.close()
        time.sleep(0.3)
        self.client("dier", clean=False, props={"session_expiry": 10})
        w.expect_nothing(2.5)

    def test_will_properties_forwarded(self):
        w = self.watcher()
        props = [("content_type", "text/plain"), ("response_topic", "will/resp"),
                 ("correlation_data", b"\x01\x02"), ("user_property", ("k", "v")),
                 ("payload_format", 1)]
        c = self.client("dier", will={"topic": "will/p", "payload": b"p", "props": props})
        c.close()
        p = w.expect_publish()
        self.assertEqual(p.props.get("content_type"), "text/plain")
        self.assertEqual(p.props.get("response_topic"), "will/resp")
        self.assertEqual(p.props.get("correlation_data"), b"\x01\x02")
        self.assertEqual(p.props.get("user_property"), [("k", "v")])
        self.assertEqual(p.props.get("payload_format"), 1)


    def check_connect_refused(self, flags, tail, codes):
        """CONNECT v5 with <flags> and payload <tail> after the client id: refused
        with a CONNACK in <codes> [MQTT-4.13.1-1 allows it first], then closed."""
        body = s("MQTT") + bytes([5, flags]) + b"\x00\x3c\x00" + s("bad-will") + tail
        self.assert_connect_refused(mt.packet(mt.CONNECT, 0, body), codes)

    def test_will_qos_3_is_malformed(self):
        # [MQTT-3.1.2-12] Will QoS MUST NOT be 3
        self.check_connect_refused(0x02 | 0x04 | 0x18, b"\x00" + s("will/q") + s("x"), (0x81,))

    def test_will_retain_without_will_flag_is_malformed(self):
        # [MQTT-3.1.2-13] Will Flag 0 means Will Retain 0
        self.check_connect_refused(0x02 | 0x20, b"", (0x81,))

    def test_will_qos_without_will_flag_is_malformed(self):
        # [MQTT-3.1.2-11] Will Flag 0 means Will QoS 0
        self.check_connect_refused(0x02 | 0x08, b"", (0x81,))

    def test_will_topic_with_wildcard_refused(self):
        # A Will Topic is a Topic Name: no wildcards [MQTT-3.3.2-2]
        self.check_connect_refused(0x02 | 0x04, b"\x00" + s("will/+") + s("x"),
                                   (0x81, 0x82, 0x90))


    def test_will_published_on_session_takeover(self):
        """[MQTT-3.1.3-9]: the old connection closes without DISCONNECT 0 and has no
        Will Delay, so its Will is published when a new connection takes over."""
        w = self.watcher()
        self.client("taken", will={"topic": "will/tk", "payload": b"taken"})
        self.client("taken")
        self.assertEqual(w.expect_publish().payload, b"taken")
        w.expect_nothing(0.3)


    def test_will_sent_at_session_end_when_delay_is_longer(self):
        """3.1.3.2.2: the Will is published when the Will Delay ends or the Session
        ends, whichever is first: Session Expiry 1 s beats Will Delay 5 s."""
        w = self.watcher()
        c = self.client("short", props={"session_expiry": 1},
                        will={"topic": "will/s", "payload": b"s", "props": {"will_delay": 5}})
        t0 = time.monotonic()
        c.close()
        self.assertEqual(w.expect_publish(timeout=4).payload, b"s")
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        self.assertLess(time.monotonic() - t0, 3.0)


if __name__ == "__main__":
    mt.main()
