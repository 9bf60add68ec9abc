"""Topic aliases client->server and server->client."""
import moattest as mt


class TestTopicAlias(mt.BrokerTest):
    CONFIG = "max_topic_alias 7\n"

    def test_connack_announces_topic_alias_maximum(self):
        ack = self.peer().connect("c")
        self.assertEqual(ack.props.get("topic_alias_maximum"), 7)

    def test_client_to_server_alias(self):
        sub = self.client("sub")
        sub.subscribe("ta/t", qos=1)
        pub = self.client("pub")
        pub.publish("ta/t", b"one", qos=1, props={"topic_alias": 1})
        pub.publish("", b"two", qos=1, props={"topic_alias": 1})
        self.assertEqual(sub.expect_publish().topic, "ta/t")
        p = sub.expect_publish()
        self.assertEqual((p.topic, p.payload), ("ta/t", b"two"))

    def test_alias_remapped(self):
        sub = self.client("sub")
        sub.subscribe("ta/#", qos=1)
        pub = self.client("pub")
        pub.publish("ta/a", b"1", qos=1, props={"topic_alias": 1})
        pub.publish("ta/b", b"2", qos=1, props={"topic_alias": 1})
        pub.publish("", b"3", qos=1, props={"topic_alias": 1})
        self.assertEqual([sub.expect_publish().topic for _ in range(3)],
                         ["ta/a", "ta/b", "ta/b"])

    def test_unknown_alias_is_protocol_error(self):
        pub = self.client("pub")
        pub.send(pub.publish_bytes("", b"x", qos=1, pid=1, props={"topic_alias": 2}))
        pub.expect_closed(disconnect_rc=0x82)
        self.assert_serves()

    def test_alias_zero_or_over_max_invalid(self):
        pub = self.client("pub")
        pub.send(pub.publish_bytes("t", b"x", qos=0, props={"topic_alias": 0}))
        pub.expect_closed(disconnect_rc=(0x81, 0x82, 0x94))
        pub = self.client("pub2")
        pub.send(pub.publish_bytes("t", b"x", qos=0, props={"topic_alias": 8}))
        pub.expect_closed(disconnect_rc=(0x81, 0x82, 0x94))
        self.assert_serves()

    def test_server_to_client_alias(self):
        sub = self.client("sub", props={"topic_alias_maximum": 5})
        sub.subscribe("sa/long/topic/name", qos=1)
        pub = self.client("pub")
        for i in range(3):
            pub.publish("sa/long/topic/name", b"%d" % i, qos=1)
        pkts = [sub.expect_publish() for _ in range(3)]
        aliases = {p.props.get("topic_alias") for p in pkts}
        self.assertEqual(len(aliases), 1)
        alias = aliases.pop()
        self.assertTrue(1 <= alias <= 5, alias)
        self.assertEqual(pkts[0].topic, "sa/long/topic/name")
        self.assertEqual([p.topic for p in pkts[1:]], ["", ""])

    def test_no_server_alias_without_client_maximum(self):
        sub = self.client("sub")
        sub.subscribe("sa/t", qos=1)
        pub = self.client("pub")
        for _ in range(2):
            pub.publish("sa/t", b"m", qos=1)
        for _ in range(2):
            p = sub.expect_publish()
            self.assertNotIn("topic_alias", p.props)
            self.assertEqual(p.topic, "sa/t")


    def test_alias_not_carried_over_reconnect(self):
        # [MQTT-3.3.2-7] aliases belong to one Network Connection, not the session
        a = self.client("al", clean=False, props={"session_expiry": 60})
        a.publish("ta/t", b"1", qos=1, props={"topic_alias": 1})
        a.disconnect()
        a = self.client("al", clean=False, props={"session_expiry": 60})
        a.send(a.publish_bytes("", b"2", qos=1, pid=5, props={"topic_alias": 1}))
        a.expect_closed(disconnect_rc=0x82)
        self.assert_serves()


    def test_retained_through_alias_stored_under_topic(self):
        # 3.3.2.3.4: the alias stands for the topic; the retained store keeps the topic
        pub = self.client("pub")
        pub.publish("ta/r", b"one", qos=1, props={"topic_alias": 1})
        pub.publish("", b"two", qos=1, retain=True, props={"topic_alias": 1})
        sub = self.client("sub")
        sub.subscribe("ta/#", qos=1)
        p = sub.expect_publish()
        self.assertEqual((p.topic, p.payload, p.retain), ("ta/r", b"two", 1))
        self.assertNotIn("topic_alias", p.props)


if __name__ == "__main__":
    mt.main()
