"""Shared subscriptions: round-robin, invalid forms refused with 0x8F, mixed with normal."""
import moattest as mt


class TestSharedSubs(mt.BrokerTest):

    def test_round_robin_between_two(self):
        a = self.client("a")
        b = self.client("b")
        a.subscribe("$share/g/rr/t", qos=1)
        b.subscribe("$share/g/rr/t", qos=1)
        pub = self.client("pub")
        for i in range(10):
            pub.publish("rr/t", b"%d" % i, qos=1)
        got_a = [p.payload for p in a.drain_publishes()]
        got_b = [p.payload for p in b.drain_publishes()]
        self.assertEqual(sorted(got_a + got_b, key=int), [b"%d" % i for i in range(10)])
        self.assertEqual(len(got_a), 5)
        self.assertEqual(len(got_b), 5)

    def test_shared_and_normal_both_get_copy(self):
        a = self.client("a")
        a.subscribe("$share/g/x", qos=1)
        n = self.client("n")
        n.subscribe("x", qos=1)
        self.client("pub").publish("x", b"m", qos=1)
        self.assertEqual(a.expect_publish().topic, "x")
        self.assertEqual(n.expect_publish().topic, "x")

    def test_two_groups_each_get_copy(self):
        a = self.client("a")
        a.subscribe("$share/g1/x", qos=1)
        b = self.client("b")
        b.subscribe("$share/g2/x", qos=1)
        self.client("pub").publish("x", b"m", qos=1)
        a.expect_publish()
        b.expect_publish()

    def test_shared_wildcard_filter(self):
        a = self.client("a")
        a.subscribe("$share/g/w/+", qos=1)
        self.client("pub").publish("w/1", b"m", qos=1)
        self.assertEqual(a.expect_publish().topic, "w/1")

    def test_shared_unsubscribe(self):
        a = self.client("a")
        a.subscribe("$share/g/x", qos=1)
        self.assertEqual(a.unsubscribe("$share/g/x"), [0])
        self.client("pub").publish("x", b"m", qos=1)
        a.expect_nothing(0.4)

    def test_shared_no_retained_on_subscribe(self):
        self.client("pub").publish("x", b"kept", qos=1, retain=True)
        a = self.client("a")
        a.subscribe("$share/g/x", qos=1)
        a.expect_nothing(0.5)

    def test_shared_no_local_is_protocol_error(self):
        a = self.client("a")
        pid = a.pid()
        a.send(a.subscribe_bytes([("$share/g/x", 0x05)], pid))
        a.expect_closed(disconnect_rc=0x82)
        self.assert_serves()

    def check_invalid(self, filt):
        a = self.client("a")
        self.assertEqual(a.subscribe((filt, 1)), [0x8F])
        self.client("pub").publish("t", b"m", qos=1)
        a.expect_nothing(0.3)
        self.assert_serves()

    def test_cve_2025_68699_share_empty(self):
        self.check_invalid("$share/")

    def test_cve_2025_68699_share_group_only(self):
        self.check_invalid("$share/g")

    def test_cve_2025_68699_share_empty_group(self):
        self.check_invalid("$share//t")

    def test_cve_2025_68699_share_empty_filter(self):
        self.check_invalid("$share/g/")

    def test_cve_2025_68699_share_wildcard_group(self):
        self.check_invalid("$share/+/t")

    def test_cve_2025_68699_share_hash_group(self):
        self.check_invalid("$share/#/t")

    def test_cve_2024_8376_shared_normal_interleave_then_publish(self):
        a = self.client("a")
        b = self.client("b")
        for _ in range(20):
            a.subscribe("$share/g/root/x", qos=1)
            a.subscribe("root/x", qos=1)
            b.subscribe("$share/g/root/#", qos=1)
            a.unsubscribe("$share/g/root/x")
            b.subscribe("root/+", qos=1)
            b.unsubscribe("$share/g/root/#")
            a.unsubscribe("root/x")
        a.subscribe("$share/g/root/x", qos=1)
        pub = self.client("pub")
        pub.publish("root/x", b"m", qos=1)
        self.assertEqual(a.expect_publish().payload, b"m")
        self.assertEqual(b.expect_publish().payload, b"m")
        a.unsubscribe("$share/g/root/x")
        b.unsubscribe("root/+")
        a.close()
        b.close()
        pub.publish("root/x", b"after", qos=1)
        self.assert_serves()


    def test_offline_member_loses_nothing(self):
        """A group member whose session is offline: each message goes either to the
        online member or to the offline session's queue, never nowhere and never
        twice (mosquitto queues for the offline one, skipping it is also allowed)."""
        off = self.client("off", clean=False, props={"session_expiry": 60})
        off.subscribe("$share/g/sh", qos=1)
        off.disconnect()
        on = self.client("on")
        on.subscribe("$share/g/sh", qos=1)
        pub = self.client("pub")
        for i in range(6):
            pub.publish("sh", b"%d" % i, qos=1)
        got = [p.payload for p in on.drain_publishes()]
        off = self.client("off", clean=False, props={"session_expiry": 60})
        got += [p.payload for p in off.drain_publishes()]
        self.assertEqual(sorted(got), [b"%d" % i for i in range(6)])


if __name__ == "__main__":
    mt.main()
