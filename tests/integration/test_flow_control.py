"""Receive maximum (both ways), maximum packet size (both ways), inflight limits."""
import moattest as mt



class TestFlowControl(mt.BrokerTest):

    def test_client_receive_maximum_respected(self):
        sub = self.client("sub", props={"receive_maximum": 2})
        sub.subscribe("f/t", qos=1)
        pub = self.client("pub")
        for i in range(5):
            pub.publish("f/t", b"%d" % i, qos=1)
        first = [sub.expect_publish(ack=False) for _ in range(2)]
        sub.expect_nothing(0.5)
        sub.send(sub.ack_bytes(mt.PUBACK, first[0].pid))
        self.assertEqual(sub.expect_publish(ack=False).payload, b"2")
        sub.expect_nothing(0.3)

    def test_server_receive_maximum_exceeded_0x93(self):
        p = self.peer()
        ack = p.connect("rm")
        rmax = ack.props.get("receive_maximum", 65535)
        if rmax > 200:
            self.skipTest("server receive maximum %d too large to exceed cheaply" % rmax)
        for i in range(1, rmax + 2):
            p.send(p.publish_bytes("f/t", b"x", qos=2, pid=i))
        for _ in range(rmax):
            p.expect(mt.PUBREC)
        p.expect_closed(disconnect_rc=0x93)

    config_for_test_server_receive_maximum_exceeded_0x93 = "max_inflight_messages 5\n"

    def test_client_maximum_packet_size_drops_big(self):
        sub = self.client("sub", props={"maximum_packet_size": 100})
        sub.subscribe("f/t", qos=1)
        pub = self.client("pub")
        pub.publish("f/t", b"x" * 200, qos=1)
        pub.publish("f/t", b"small", qos=1)
        self.assertEqual(sub.expect_publish().payload, b"small")

    def test_too_big_for_client_counts_as_sent(self):
        """[MQTT-3.1.2-25]: a message too large for the client is discarded "as if it
        had completed sending", so it cannot hold the only slot of Receive Maximum 1
        for ever (with 2 slots the next messages do arrive)."""
        sub = self.client("sub", props={"maximum_packet_size": 100, "receive_maximum": 1})
        sub.subscribe("f/t", qos=1)
        pub = self.client("pub")
        pub.publish("f/t", b"x" * 200, qos=1)
        pub.publish("f/t", b"small", qos=1)
        self.assertEqual([p.payload for p in sub.drain_publishes()], [b"small"])

    def test_reason_string_left_out_to_fit_client_maximum_packet_size(self):
        """[MQTT-3.4.2-2]: a Reason String is not sent if it would make the PUBACK
        larger than the client's Maximum Packet Size (12 here): the refused $SYS
        publish still gets its PUBACK 0x87, and the connection stays up."""
        p = self.client("small", props={"maximum_packet_size": 12})
        p.send(p.publish_bytes("$SYS/x", b"x", qos=1, pid=3))
        ack = p.expect(mt.PUBACK)
        self.assertEqual((ack.pid, ack.rc), (3, 0x87))
        self.assertLessEqual(1 + len(mt.vbi(len(ack.body))) + len(ack.body), 12)
        p.ping()

    def test_disconnect_fits_client_maximum_packet_size(self):
        """[MQTT-3.14.2-3]: the DISCONNECT for a malformed packet leaves out its Reason
        String rather than exceed the client's Maximum Packet Size (12 here)."""
        p = self.client("small", props={"maximum_packet_size": 12})
        p.send(mt.packet(mt.PUBLISH, 6, mt.s("t")))   # QoS 3
        seen = p.expect_closed(disconnect_rc=0x81)
        self.assertLessEqual(1 + len(mt.vbi(len(seen.body))) + len(seen.body), 12)
        self.assert_serves()

    def test_server_maximum_packet_size_announced_and_enforced(self):
        # config_for_ adds max_packet_size 1000
        p = self.peer()
        ack = p.connect("mps")
        self.assertEqual(ack.props.get("maximum_packet_size"), 1000)
        p.send(p.publish_bytes("f/t", b"x" * 2000, qos=0))
        p.expect_closed(disconnect_rc=0x95)
        self.assert_serves()

    config_for_test_server_maximum_packet_size_announced_and_enforced = "max_packet_size 1000\n"

    def test_max_inflight_messages_limits_outbound(self):
        sub = self.client("sub", version=4)
        sub.subscribe("f/t", qos=1)
        pub = self.client("pub")
        for i in range(4):
            pub.publish("f/t", b"%d" % i, qos=1)
        first = [sub.expect_publish(ack=False) for _ in range(2)]
        self.assertEqual([p.payload for p in first], [b"0", b"1"])
        sub.expect_nothing(0.5)
        sub.send(sub.ack_bytes(mt.PUBACK, first[0].pid))
        self.assertEqual(sub.expect_publish(ack=False).payload, b"2")
        sub.expect_nothing(0.3)

    config_for_test_max_inflight_messages_limits_outbound = "max_inflight_messages 2\n"

    def test_message_size_limit_drops_publish(self):
        sub = self.client("sub")
        sub.subscribe("f/t", qos=0)
        pub = self.client("pub", version=4)
        pub.publish("f/t", b"x" * 100, qos=1)
        pub.publish("f/t", b"ok", qos=1)
        self.assertEqual(sub.expect_publish().payload, b"ok")

    config_for_test_message_size_limit_drops_publish = "message_size_limit 50\n"

    def test_max_queued_messages_bounds_offline_queue(self):
        sub, _ = self.queue_while_offline("q", "f/t", [b"%d" % i for i in range(10)])
        got = [p.payload for p in sub.drain_publishes()]
        self.assertEqual(got, [b"0", b"1", b"2"])   # the newest are dropped, as mosquitto

    config_for_test_max_queued_messages_bounds_offline_queue = "max_queued_messages 3\n"

    def test_max_queued_bytes_bounds_offline_queue(self):
        """Ten 43-byte QoS 1 messages for an offline session with max_queued_bytes
        100: the oldest are kept, at most what the limit holds (mosquitto admits
        one message past it, 3; a strict bound keeps 2)."""
        sub, _ = self.queue_while_offline("qb", "f/t",
                                          [b"%d" % i + b"x" * 42 for i in range(10)])
        got = [p.payload[:1] for p in sub.drain_publishes()]
        self.assertIn(got, ([b"0", b"1"], [b"0", b"1", b"2"]))

    config_for_test_max_queued_bytes_bounds_offline_queue = "max_queued_bytes 100\n"


if __name__ == "__main__":
    mt.main()

    def test_inflight_too_big_after_reconnect_is_dropped(self):
        """A QoS 1 message left in flight is not resent to a client that comes back
        with a Maximum Packet Size it does not fit; it frees its slot [MQTT-3.1.2-25]."""
        sub = self.client("sub", clean=False, props={"session_expiry": 60})
        sub.subscribe("f/t", qos=1)
        pub = self.client("pub")
        pub.publish("f/t", b"x" * 200, qos=1)
        self.assertEqual(sub.expect_publish(ack=False).payload, b"x" * 200)
        sub.close()
        again = self.peer()
        again.connect("sub", clean=False,
                      props={"session_expiry": 60, "maximum_packet_size": 100,
                             "receive_maximum": 1})
        again.expect_nothing(0.3)
        pub.publish("f/t", b"small", qos=1)
        self.assertEqual([p.payload for p in again.drain_publishes()], [b"small"])

    def test_user_property_limits_0x97(self):
        p = self.client("up")
        p.send(p.publish_bytes("f/t", b"x", qos=0,
                               props={"user_property": [("k%d" % i, "v") for i in range(5)]}))
        p.expect_closed(disconnect_rc=0x97)
        q = self.client("up2")
        q.send(q.publish_bytes("f/t", b"x", qos=0, props={"user_property": [("k", "v" * 200)]}))
        q.expect_closed(disconnect_rc=0x97)
        r = self.client("up3")
        r.subscribe("f/t")
        r.send(r.publish_bytes("f/t", b"ok", qos=0, props={"user_property": [("k", "v")] * 4}))
        self.assertEqual(r.expect_publish().payload, b"ok")

    config_for_test_user_property_limits_0x97 = "max_user_properties 4\nmax_user_property_bytes 100\n"

    def test_topic_over_max_topic_length_not_delivered(self):
        sub = self.client("s")
        sub.subscribe("#")
        pub = self.client("p")
        pub.send(pub.publish_bytes("t" * 40, b"long", qos=1, pid=7))
        self.assertEqual(pub.expect(mt.PUBACK).rc, 0x83)
        pub.publish("t" * 10, b"short", qos=1)
        self.assertEqual([m.payload for m in sub.drain_publishes()], [b"short"])

    config_for_test_topic_over_max_topic_length_not_delivered = "max_topic_length 32\n"
