"""Retained messages: store, replace, delete, retain handling 0/1/2, retain-as-published."""
import moattest as mt


class TestRetain(mt.BrokerTest):

    def test_retained_delivered_to_new_subscriber(self):
        pub = self.client("pub")
        pub.publish("r/a", b"kept", qos=1, retain=True)
        sub = self.client("sub")
        sub.subscribe("r/#", qos=1)
        p = sub.expect_publish()
        self.assertEqual((p.topic, p.payload, p.retain), ("r/a", b"kept", 1))

    def test_retained_replaced(self):
        pub = self.client("pub")
        pub.publish("r/a", b"one", qos=1, retain=True)
        pub.publish("r/a", b"two", qos=1, retain=True)
        sub = self.client("sub")
        sub.subscribe("r/a", qos=1)
        self.assertEqual(sub.expect_publish().payload, b"two")
        sub.expect_nothing(0.3)

    def test_empty_payload_deletes_retained(self):
        pub = self.client("pub")
        pub.publish("r/a", b"gone", qos=1, retain=True)
        pub.publish("r/a", b"", qos=1, retain=True)
        sub = self.client("sub")
        sub.subscribe("r/a", qos=1)
        sub.expect_nothing(0.5)

    def test_retain_flag_cleared_on_live_delivery(self):
        sub = self.client("sub")
        sub.subscribe("r/a", qos=1)
        pub = self.client("pub")
        pub.publish("r/a", b"live", qos=1, retain=True)
        self.assertEqual(sub.expect_publish().retain, 0)

    def test_retain_as_published(self):
        sub = self.client("sub")
        sub.subscribe(("r/a", 0x09))          # QoS 1 + RAP
        pub = self.client("pub")
        pub.publish("r/a", b"live", qos=1, retain=True)
        self.assertEqual(sub.expect_publish().retain, 1)

    def test_retain_handling_1_only_new_subscription(self):
        self.client("pub").publish("r/a", b"kept", qos=1, retain=True)
        sub = self.client("sub")
        sub.subscribe(("r/a", 0x11))
        sub.expect_publish()
        sub.subscribe(("r/a", 0x11))
        sub.expect_nothing(0.5)

    def test_retain_handling_0_every_subscribe(self):
        self.client("pub").publish("r/a", b"kept", qos=1, retain=True)
        sub = self.client("sub")
        sub.subscribe(("r/a", 0x01))
        sub.expect_publish()
        sub.subscribe(("r/a", 0x01))
        self.assertEqual(sub.expect_publish().payload, b"kept")

    def test_retain_handling_2_never(self):
        self.client("pub").publish("r/a", b"kept", qos=1, retain=True)
        sub = self.client("sub")
        sub.subscribe(("r/a", 0x21))
        sub.expect_nothing(0.5)

    def test_retained_qos_is_min_of_both(self):
        self.client("pub").publish("r/a", b"kept", qos=2, retain=True)
        sub = self.client("sub")
        sub.subscribe("r/a", qos=1)
        self.assertEqual(sub.expect_publish().qos, 1)

    def test_wildcard_does_not_return_dollar_retained(self):
        self.client("pub").publish("$x/r", b"dollar", qos=1, retain=True)
        sub = self.client("sub")
        sub.subscribe("#", qos=1)
        sub.expect_nothing(0.5)
        sub.subscribe("$x/#", qos=1)
        self.assertEqual(sub.expect_publish().payload, b"dollar")


class TestRetainUnavailable(mt.BrokerTest):
    CONFIG = "retain_available false\n"

    def test_retain_available_false_advertised_and_refused(self):
        p = self.peer(5)
        ack = p.connect("nr")
        self.assertEqual(ack.props.get("retain_available"), 0)
        p.send(p.publish_bytes("r/a", b"x", qos=1, pid=1, retain=True))
        p.expect_closed(disconnect_rc=0x9A)
        self.assert_serves()


    def test_retained_will_refused_when_retain_unavailable(self):
        """[MQTT-3.2.2-13]: a Will with Retain 1 is refused, v5 with CONNACK 0x9A;
        3.1.1 has no code for it, so it is closed (any CONNACK must be a refusal)."""
        will = {"topic": "w/r", "payload": b"x", "retain": True}
        p = self.peer(5)
        self.assertEqual(p.connect("wr5", will=will, expect_rc=None).rc, 0x9A)
        p.expect_closed()
        p = self.peer(4)
        p.send(p.connect_bytes("wr4", will=will))
        try:
            self.assertNotEqual(p.expect(mt.CONNACK).rc, 0)
        except mt.Closed:
            pass
        p.expect_closed()
        self.assert_serves()


if __name__ == "__main__":
    mt.main()
