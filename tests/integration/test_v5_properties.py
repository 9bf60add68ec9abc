"""MQTT 5 properties: user properties, request/response, message expiry, subscription ids."""
import time

import moattest as mt


class TestV5Properties(mt.BrokerTest):

    def pair(self, sub_props=None, filt="p/t"):
        sub = self.client("sub")
        sub.subscribe(filt, qos=1, props=sub_props)
        return self.client("pub"), sub

    def test_user_properties_forwarded_in_order(self):
        pub, sub = self.pair()
        ups = [("a", "1"), ("b", "2"), ("a", "3")]
        pub.publish("p/t", b"m", qos=1, props=[("user_property", ups)])
        self.assertEqual(sub.expect_publish().props.get("user_property"), ups)

    def test_request_response_properties_forwarded(self):
        pub, sub = self.pair()
        pub.publish("p/t", b"req", qos=1, props=[("response_topic", "p/resp"),
                                                 ("correlation_data", b"\x00\xffid")])
        p = sub.expect_publish()
        self.assertEqual(p.props.get("response_topic"), "p/resp")
        self.assertEqual(p.props.get("correlation_data"), b"\x00\xffid")

    def test_request_response_round_trip(self):
        responder = self.client("responder")
        responder.subscribe("svc/req", qos=1)
        req = self.client("requester")
        req.subscribe("svc/resp/1", qos=1)
        req.publish("svc/req", b"ping", qos=1, props=[("response_topic", "svc/resp/1"),
                                                      ("correlation_data", b"c1")])
        p = responder.expect_publish()
        responder.publish(p.props["response_topic"], b"pong", qos=1,
                          props=[("correlation_data", p.props["correlation_data"])])
        r = req.expect_publish()
        self.assertEqual((r.payload, r.props.get("correlation_data")), (b"pong", b"c1"))

    def test_content_type_and_payload_format_forwarded(self):
        pub, sub = self.pair()
        pub.publish("p/t", "é", qos=1, props=[("payload_format", 1), ("content_type", "x/y")])
        p = sub.expect_publish()
        self.assertEqual((p.props.get("payload_format"), p.props.get("content_type")), (1, "x/y"))

    def test_message_expiry_decremented(self):
        sub = self.client("sub", clean=False, props={"session_expiry": 60})
        sub.subscribe("p/t", qos=1)
        sub.disconnect()
        self.client("pub").publish("p/t", b"m", qos=1, props={"message_expiry": 30})
        time.sleep(2.1)
        sub = self.client("sub", clean=False, props={"session_expiry": 60})
        p = sub.expect_publish()
        self.assertLessEqual(p.props.get("message_expiry"), 28)
        self.assertGreater(p.props.get("message_expiry"), 20)

    def test_message_expired_not_delivered(self):
        sub = self.client("sub", clean=False, props={"session_expiry": 60})
        sub.subscribe("p/t", qos=1)
        sub.disconnect()
        self.client("pub").publish("p/t", b"m", qos=1, props={"message_expiry": 1})
        time.sleep(2.2)
        sub = self.client("sub", clean=False, props={"session_expiry": 60})
        sub.expect_nothing(0.5)

    def test_retained_message_expiry(self):
        self.client("pub").publish("p/r", b"m", qos=1, retain=True, props={"message_expiry": 1})
        time.sleep(2.2)
        sub = self.client("sub")
        sub.subscribe("p/r", qos=1)
        sub.expect_nothing(0.5)

    def test_subscription_identifier(self):
        pub, sub = self.pair(sub_props={"subscription_id": 42})
        pub.publish("p/t", b"m", qos=1)
        self.assertEqual(sub.expect_publish().props.get("subscription_id"), [42])

    def test_subscription_identifiers_of_overlapping_subs(self):
        sub = self.client("sub")
        sub.subscribe("p/#", qos=1, props={"subscription_id": 1})
        sub.subscribe("p/+", qos=1, props={"subscription_id": 2})
        self.client("pub").publish("p/t", b"m", qos=1)
        ids = [i for p in sub.drain_publishes() for i in p.props.get("subscription_id", [])]
        self.assertEqual(sorted(ids), [1, 2])

    def test_subscription_identifier_zero_is_protocol_error(self):
        sub = self.client("sub")
        sub.send(sub.subscribe_bytes([("p/t", 1)], 5, props={"subscription_id": 0}))
        sub.expect_closed(disconnect_rc=(0x81, 0x82))
        self.assert_serves()

    def test_reason_string_not_sent_when_problem_info_off(self):
        """[MQTT-3.1.2-29]: with Request Problem Information 0, no Reason String on
        anything but PUBLISH, CONNACK and DISCONNECT. The refused $SYS publish
        (PUBACK 0x87) carries one by default, so the check is not vacuous."""
        results = {}
        for info in (1, 0):
            p = self.peer()
            p.connect("rp%d" % info, props={"request_problem_info": info})
            p.send(p.publish_bytes("$SYS/x", b"x", qos=1, pid=3))
            ack = p.expect(mt.PUBACK)
            self.assertEqual(ack.rc, 0x87)
            results[info] = ack.props
        self.assertIn("reason_string", results[1])
        self.assertNotIn("reason_string", results[0])
        self.assertNotIn("user_property", results[0])

    def test_request_response_information_is_optional(self):
        """Response Information is optional (3.2.2.3.15): the request is
        accepted and, as in mosquitto, none is returned unless configured."""
        p = self.peer()
        ack = p.connect("rri", props={"request_response_info": 1})
        self.assertEqual(ack.rc, 0)
        self.assertNotIn("response_info", ack.props)


    def check_connect_props_refused(self, props):
        self.assert_connect_refused(lambda p: p.connect_bytes("badprops", props=props), (0x82,))

    def test_receive_maximum_zero_protocol_error(self):
        # 3.1.2.11.3: a Receive Maximum of 0 is a Protocol Error
        self.check_connect_props_refused({"receive_maximum": 0})

    def test_maximum_packet_size_zero_protocol_error(self):
        # 3.1.2.11.4: a Maximum Packet Size of 0 is a Protocol Error
        self.check_connect_props_refused({"maximum_packet_size": 0})

    def test_duplicate_receive_maximum_protocol_error(self):
        # 3.1.2.11.3: including Receive Maximum more than once is a Protocol Error
        self.check_connect_props_refused([("receive_maximum", 5), ("receive_maximum", 6)])

    def test_client_publish_with_subscription_id_protocol_error(self):
        # [MQTT-3.3.4-6] a client PUBLISH MUST NOT carry a Subscription Identifier
        self.assert_offender_closed(
            lambda p: p.publish_bytes("p/t", b"x", qos=1, pid=3, props={"subscription_id": 4}),
            (0x82,))

    def test_payload_format_invalid_0x99(self):
        """3.3.2.3.2: a Server that checks a Payload Format Indicator of 1 answers a
        non-UTF-8 payload with Reason Code 0x99 (Payload format invalid), in the
        PUBACK or a DISCONNECT; nothing reaches subscribers."""
        sub = self.client("sub")
        sub.subscribe("p/t", qos=1)
        p = self.client("pfi")
        p.send(p.publish_bytes("p/t", b"\xff\xfe", qos=1, pid=3, props={"payload_format": 1}))
        ack = p.recv()
        self.assertIn(ack.type, (mt.PUBACK, mt.DISCONNECT))
        self.assertEqual(ack.rc, 0x99)
        sub.expect_nothing(0.3)


    def test_retained_message_expiry_decremented(self):
        # 3.3.2.3.3: the forwarded Message Expiry Interval is what is left of it
        self.client("pub").publish("p/r", b"m", qos=1, retain=True,
                                   props={"message_expiry": 30})
        time.sleep(2.1)
        sub = self.client("sub")
        sub.subscribe("p/r", qos=1)
        left = sub.expect_publish().props.get("message_expiry")
        self.assertLessEqual(left, 28)
        self.assertGreater(left, 20)

    def test_invalid_utf8_in_string_properties_malformed(self):
        # [MQTT-1.5.4-1] UTF-8 strings in properties: Content Type, User Property
        for props in ({"content_type": b"\xff"}, {"user_property": [(b"\xc0\x80", "v")]},
                      {"response_topic": b"a\xed\xa0\x80"}):
            p = self.client("badutf8")
            p.send(p.publish_bytes("p/t", b"1", qos=1, pid=3, props=props))
            p.expect_closed(disconnect_rc=0x81)
        self.assert_serves()


    def test_subscription_identifier_on_retained_and_replaced(self):
        """3.8.2.1.2: retained messages sent for a SUBSCRIBE carry its identifier; a
        new SUBSCRIBE of the same filter replaces the identifier, or removes it."""
        self.client("pub").publish("p/r", b"kept", qos=1, retain=True)
        sub = self.client("sub")
        for sid in (7, 9, None):
            sub.subscribe("p/#", qos=1, props={"subscription_id": sid} if sid else None)
            got = sub.expect_publish().props.get("subscription_id")
            self.assertEqual(got, [sid] if sid else None)


if __name__ == "__main__":
    mt.main()
