"""Wildcards, $-topics, unsubscribe, no-local, overlapping subscriptions, bad filters."""
import moattest as mt


class TestSubscriptions(mt.BrokerTest):

    def deliver(self, filt, topic, version=5):
        sub = self.client("sub", version=version)
        sub.subscribe(filt, qos=1)
        self.client("pub", version=version).publish(topic, b"m", qos=1)
        return sub

    def test_plus_matches_one_level(self):
        self.assertEqual(self.deliver("a/+/c", "a/b/c").expect_publish().topic, "a/b/c")

    def test_plus_does_not_match_two_levels(self):
        self.deliver("a/+/c", "a/b/x/c").expect_nothing(0.4)

    def test_hash_matches_parent(self):
        self.assertEqual(self.deliver("a/#", "a").expect_publish().topic, "a")

    def test_hash_matches_deep(self):
        self.assertEqual(self.deliver("#", "a/b/c/d").expect_publish().topic, "a/b/c/d")

    def test_empty_levels_match(self):
        self.assertEqual(self.deliver("+/+", "/x").expect_publish().topic, "/x")

    def test_hash_excludes_dollar_topics(self):
        self.deliver("#", "$app/x").expect_nothing(0.4)

    def test_plus_excludes_dollar_topics(self):
        self.deliver("+/x", "$app/x").expect_nothing(0.4)

    def test_explicit_dollar_filter_matches(self):
        self.assertEqual(self.deliver("$app/#", "$app/x").expect_publish().topic, "$app/x")

    def test_unsubscribe_stops_delivery(self):
        sub = self.client("sub")
        sub.subscribe("u/t", qos=1)
        self.assertEqual(sub.unsubscribe("u/t"), [0])
        self.client("pub").publish("u/t", b"m", qos=1)
        sub.expect_nothing(0.4)

    def test_unsubscribe_unknown_filter_v5_0x11(self):
        sub = self.client("sub")
        self.assertEqual(sub.unsubscribe("never/subscribed"), [0x11])

    def test_overlapping_subscriptions_max_qos(self):
        sub = self.client("sub")
        sub.subscribe(("o/#", 0), ("o/t", 1))
        self.client("pub").publish("o/t", b"m", qos=1)
        copies = [sub.expect_publish()]
        try:
            copies.append(sub.expect_publish(timeout=0.4))
        except mt.socket.timeout:
            pass
        # v5 allows one copy per matching subscription (mosquitto) or one in all.
        self.assertEqual(max(p.qos for p in copies), 1)
        self.assertEqual({p.payload for p in copies}, {b"m"})

    def test_no_local(self):
        c = self.client("nl")
        c.subscribe(("nl/t", 0x05))     # QoS 1 + no-local
        c.publish("nl/t", b"mine", qos=1)
        c.expect_nothing(0.5)

    def test_without_no_local_gets_own(self):
        c = self.client("nl")
        c.subscribe(("nl/t", 0))
        c.publish("nl/t", b"mine", qos=0)
        self.assertEqual(c.expect_publish().payload, b"mine")

    def test_invalid_filter_v5_0x8f(self):
        sub = self.client("sub")
        self.assertEqual(sub.subscribe(("a/#/b", 1), ("ok/t", 1)), [0x8F, 1])

    def test_invalid_filter_plus_in_level_v5(self):
        sub = self.client("sub")
        self.assertEqual(sub.subscribe(("a/b+", 1)), [0x8F])

    def test_invalid_filter_v311_0x80(self):
        sub = self.client("sub", version=4)
        self.assertEqual(sub.subscribe(("a/#/b", 1)), [0x80])

    def test_subscribe_granted_qos_each(self):
        sub = self.client("sub")
        self.assertEqual(sub.subscribe(("a", 0), ("b", 1), ("c", 2)), [0, 1, 2])

    def test_subscribe_replaces_existing(self):
        sub = self.client("sub")
        sub.subscribe(("r/t", 2))
        sub.subscribe(("r/t", 0))
        self.client("pub").publish("r/t", b"m", qos=2)
        self.assertEqual(sub.expect_publish().qos, 0)

    def test_publish_to_wildcard_topic_refused(self):
        c = self.client("c")
        c.send(c.publish_bytes("a/+", b"x", qos=0))
        c.expect_closed(disconnect_rc=(0x81, 0x82, 0x90))
        self.assert_serves()


    def test_subscription_options_reserved_bits_malformed(self):
        # [MQTT-3.8.3-5] reserved bits 6-7 of the options byte
        self.assert_offender_closed(lambda p: p.subscribe_bytes([("x/t", 0xC1)], 3), (0x81,))

    def test_subscription_retain_handling_3_protocol_error(self):
        # 3.8.3.1: "It is a Protocol Error to send a Retain Handling value of 3"
        self.assert_offender_closed(lambda p: p.subscribe_bytes([("x/t", 0x31)], 3), (0x82,))

    def test_subscription_maximum_qos_3_protocol_error(self):
        # 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3"
        self.assert_offender_closed(lambda p: p.subscribe_bytes([("x/t", 0x03)], 3), (0x82,))

    def test_subscription_qos_3_v311_closes(self):
        # 3.1.1 [MQTT-3-8.3-4] (sic): malformed, the connection is closed
        self.assert_offender_closed(lambda p: p.subscribe_bytes([("x/t", 0x03)], 3), None,
                                    version=4)

    def test_subscribe_without_filters_protocol_error(self):
        # [MQTT-3.8.3-2] at least one Topic Filter
        self.assert_offender_closed(
            lambda p: mt.packet(mt.SUBSCRIBE, 2, mt.struct.pack("!H", 3) + mt.props_block(None)),
            (0x82,))

    def test_unsubscribe_without_filters_protocol_error(self):
        # [MQTT-3.10.3-2] at least one Topic Filter
        self.assert_offender_closed(
            lambda p: mt.packet(mt.UNSUBSCRIBE, 2, mt.struct.pack("!H", 3) +
                                mt.props_block(None)), (0x82,))

    def test_subscribe_reserved_header_flags_malformed(self):
        # [MQTT-3.8.1-1] SUBSCRIBE fixed-header flags are 0010
        self.assert_offender_closed(
            lambda p: mt.packet(mt.SUBSCRIBE, 0, mt.struct.pack("!H", 3) + mt.props_block(None) +
                                mt.s("a") + b"\x01"), (0x81,))

    def test_subscribe_packet_id_zero_refused(self):
        # [MQTT-2.2.1-3] SUBSCRIBE needs a non-zero Packet Identifier
        self.assert_offender_closed(lambda p: p.subscribe_bytes([("x/t", 1)], 0), (0x81, 0x82))


if __name__ == "__main__":
    mt.main()
