"""QoS 0/1/2 in both directions, downgrade to the subscription QoS, DUP on reconnect."""
import moattest as mt
from moattest import PUBREL, PUBREC, PUBCOMP


class TestPublishQos(mt.BrokerTest):

    def pair(self, version=5, sub_qos=2):
        sub = self.client("sub", version=version)
        self.assertEqual(sub.subscribe("q/t", qos=sub_qos), [sub_qos])
        pub = self.client("pub", version=version)
        return pub, sub

    def check_qos(self, qos, version):
        pub, sub = self.pair(version)
        pub.publish("q/t", b"m%d" % qos, qos=qos)
        p = sub.expect_publish()
        self.assertEqual((p.topic, p.payload, p.qos), ("q/t", b"m%d" % qos, qos))

    def test_qos0_v5(self):
        self.check_qos(0, 5)

    def test_qos1_v5(self):
        self.check_qos(1, 5)

    def test_qos2_v5(self):
        self.check_qos(2, 5)

    def test_qos0_v311(self):
        self.check_qos(0, 4)

    def test_qos1_v311(self):
        self.check_qos(1, 4)

    def test_qos2_v311(self):
        self.check_qos(2, 4)

    def test_qos_downgraded_to_subscription(self):
        pub, sub = self.pair(sub_qos=1)
        pub.publish("q/t", b"x", qos=2)
        self.assertEqual(sub.expect_publish().qos, 1)

    def test_order_kept_per_publisher(self):
        pub, sub = self.pair()
        for i in range(50):
            pub.publish("q/t", b"%d" % i, qos=1)
        got = [sub.expect_publish().payload for _ in range(50)]
        self.assertEqual(got, [b"%d" % i for i in range(50)])

    def test_qos2_duplicate_publish_before_pubrel_delivered_once(self):
        pub, sub = self.pair()
        pub.send(pub.publish_bytes("q/t", b"once", qos=2, pid=7))
        self.assertEqual(pub.expect(PUBREC).pid, 7)
        pub.send(pub.publish_bytes("q/t", b"once", qos=2, pid=7, dup=True))
        self.assertEqual(pub.expect(PUBREC).pid, 7)
        pub.send(pub.ack_bytes(PUBREL, 7))
        self.assertEqual(pub.expect(PUBCOMP).pid, 7)
        self.assertEqual(sub.expect_publish().payload, b"once")
        sub.expect_nothing(0.5)

    def test_qos1_redelivered_with_dup_after_reconnect(self):
        sub = self.client("rs", clean=False, props={"session_expiry": 60})
        sub.subscribe("q/t", qos=1)
        pub = self.client("pub")
        pub.publish("q/t", b"r1", qos=1)
        first = sub.expect_publish(ack=False)
        self.assertEqual(first.dup, 0)
        sub.close()
        sub2 = self.client("rs", clean=False, props={"session_expiry": 60})
        again = sub2.expect_publish()
        self.assertEqual((again.payload, again.dup, again.pid), (b"r1", 1, first.pid))

    def test_qos2_pubrel_resent_after_reconnect(self):
        sub = self.client("rs2", clean=False, props={"session_expiry": 60})
        sub.subscribe("q/t", qos=2)
        pub = self.client("pub")
        pub.publish("q/t", b"r2", qos=2)
        first = sub.expect_publish(ack=False)
        sub.send(sub.ack_bytes(PUBREC, first.pid))
        self.assertEqual(sub.expect(PUBREL).pid, first.pid)
        sub.close()
        sub2 = self.client("rs2", clean=False, props={"session_expiry": 60})
        rel = sub2.expect(PUBREL)
        self.assertEqual(rel.pid, first.pid)
        sub2.send(sub2.ack_bytes(PUBCOMP, rel.pid))
        sub2.expect_nothing(0.5)

    def test_inbound_qos2_completed_after_reconnect(self):
        sub = self.client("watch")
        sub.subscribe("q/t", qos=2)
        pub = self.client("pq2", clean=False, props={"session_expiry": 60})
        pub.send(pub.publish_bytes("q/t", b"in2", qos=2, pid=9))
        pub.expect(PUBREC)
        pub.close()
        pub2 = self.client("pq2", clean=False, props={"session_expiry": 60})
        pub2.send(pub2.ack_bytes(PUBREL, 9))
        self.assertEqual(pub2.expect(PUBCOMP).pid, 9)
        self.assertEqual(sub.expect_publish().payload, b"in2")


    def test_qos0_with_dup_malformed(self):
        # [MQTT-3.3.1-2] DUP MUST be 0 for QoS 0
        self.assert_offender_closed(lambda p: p.publish_bytes("q/t", b"x", qos=0, dup=True),
                                    (0x81,))

    def test_qos1_packet_id_zero_protocol_error(self):
        # [MQTT-2.2.1-3] QoS > 0 PUBLISH needs a non-zero Packet Identifier
        self.assert_offender_closed(lambda p: p.publish_bytes("q/t", b"x", qos=1, pid=0),
                                    (0x81, 0x82))

    def test_pubrel_reserved_header_flags_malformed(self):
        # [MQTT-3.6.1-1] PUBREL fixed-header flags are 0010
        self.assert_offender_closed(lambda p: mt.packet(PUBREL, 0, mt.struct.pack("!H", 3)),
                                    (0x81,))

    def test_pingreq_with_body_malformed(self):
        # PINGREQ has Remaining Length 0 (3.12)
        self.assert_offender_closed(lambda p: mt.packet(mt.PINGREQ, 0, b"\x00"), (0x81,))


    def test_inflight_resent_first_then_queue_in_order(self):
        """[MQTT-4.4.0-1], 4.6: after a reconnect the two unacknowledged messages come
        again (DUP 1) before the three that were queued behind Receive Maximum 2."""
        sub = self.client("ord", clean=False, props={"session_expiry": 60,
                                                     "receive_maximum": 2})
        sub.subscribe("q/t", qos=1)
        pub = self.client("pub")
        for i in range(5):
            pub.publish("q/t", b"%d" % i, qos=1)
        [sub.expect_publish(ack=False) for _ in range(2)]
        sub.close()
        sub = self.client("ord", clean=False, props={"session_expiry": 60})
        self.assertEqual([(p.payload, p.dup) for p in sub.drain_publishes()],
                         [(b"0", 1), (b"1", 1), (b"2", 0), (b"3", 0), (b"4", 0)])

    def test_mqtt_3_1_client_round_trip(self):
        """MQTT 3.1 ("MQIsdp", level 3): subscribe, receive QoS 2, publish QoS 2."""
        v31 = self.client("v31", version=3)
        self.assertEqual(v31.subscribe("q/t", qos=2), [2])
        other = self.client("other", version=4)
        other.subscribe("q/t", qos=2)
        self.client("pub").publish("q/t", b"to31", qos=2)
        p = v31.expect_publish()
        self.assertEqual((p.payload, p.qos), (b"to31", 2))
        other.expect_publish()
        v31.send(v31.publish_bytes("q/t", b"from31", qos=1, pid=9))
        got = {}
        while len(got) < 2:   # our own PUBLISH back (no no-local in 3.1) and the PUBACK
            q = v31.recv()
            got[q.type] = q
            if q.type == mt.PUBLISH:
                v31.send(v31.ack_bytes(PUBREC, q.pid) if q.qos == 2 else
                         v31.ack_bytes(mt.PUBACK, q.pid))
        self.assertEqual(got[mt.PUBACK].pid, 9)
        self.assertEqual(other.expect_publish().payload, b"from31")


if __name__ == "__main__":
    mt.main()
