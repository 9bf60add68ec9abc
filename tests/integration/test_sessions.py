"""Clean start, persistent sessions, session expiry, queued messages while offline."""
import time

import moattest as mt


class TestSessions(mt.BrokerTest):

    def test_clean_start_discards_session(self):
        a = self.client("s", clean=False, props={"session_expiry": 60})
        a.subscribe("s/t", qos=1)
        a.disconnect()
        b = self.peer()
        ack = b.connect("s", clean=True)
        self.assertEqual(ack.session_present, 0)
        self.client("pub").publish("s/t", b"x", qos=1)
        b.expect_nothing(0.5)

    def test_persistent_session_present_and_queued(self):
        b, ack = self.queue_while_offline("s", "s/t", [b"q0", b"q1", b"q2"])
        self.assertEqual(ack.session_present, 1)
        got = [b.expect_publish().payload for _ in range(3)]
        self.assertEqual(got, [b"q0", b"q1", b"q2"])

    def test_v311_persistent_session(self):
        a = self.client("s311", version=4, clean=False)
        a.subscribe("s/t", qos=1)
        a.disconnect()
        self.client("pub").publish("s/t", b"off", qos=1)
        b = self.peer(4)
        self.assertEqual(b.connect("s311", clean=False).session_present, 1)
        self.assertEqual(b.expect_publish().payload, b"off")

    def test_qos0_not_queued_offline(self):
        """QoS 0 for an offline session is dropped (mosquitto's default): of a QoS 0
        and a later QoS 1 message, only the QoS 1 one waits for the reconnect."""
        a = self.client("s", clean=False, props={"session_expiry": 60})
        a.subscribe(("s/t", 0), ("s/m", 1))
        a.disconnect()
        pub = self.client("pub")
        pub.publish("s/t", b"q0", qos=0)
        pub.publish("s/m", b"marker", qos=1)
        b = self.client("s", clean=False, props={"session_expiry": 60})
        self.assertEqual([p.payload for p in b.drain_publishes()], [b"marker"])

    def test_session_expiry_zero_ends_at_disconnect(self):
        a = self.client("s", clean=False)
        a.subscribe("s/t", qos=1)
        a.disconnect()
        b = self.peer()
        self.assertEqual(b.connect("s", clean=False).session_present, 0)

    def test_session_expires_after_interval(self):
        a = self.client("s", clean=False, props={"session_expiry": 1})
        a.subscribe("s/t", qos=1)
        a.disconnect()
        time.sleep(2.5)
        b = self.peer()
        self.assertEqual(b.connect("s", clean=False).session_present, 0)

    def test_disconnect_may_shorten_session_expiry(self):
        a = self.client("s", clean=False, props={"session_expiry": 60})
        a.subscribe("s/t", qos=1)
        a.disconnect(rc=0, props={"session_expiry": 0})
        b = self.peer()
        self.assertEqual(b.connect("s", clean=False).session_present, 0)

    def test_disconnect_cannot_set_expiry_when_connect_had_zero(self):
        a = self.client("s", clean=True)
        a.send(mt.packet(mt.DISCONNECT, 0, bytes([0]) + mt.props_block({"session_expiry": 30})))
        a.expect_closed(disconnect_rc=0x82)

    def test_subscriptions_survive_reconnect(self):
        a = self.client("s", clean=False, props={"session_expiry": 60})
        a.subscribe("s/t", qos=1)
        a.disconnect()
        b = self.client("s", clean=False, props={"session_expiry": 60})
        self.client("pub").publish("s/t", b"live", qos=1)
        self.assertEqual(b.expect_publish().payload, b"live")

    def test_assigned_client_id_resumes_session(self):
        # 3.2.2.3.7: an Assigned Client Identifier names a session like any other
        a = self.peer()
        cid = a.connect("", clean=False, props={"session_expiry": 60}).props[
            "assigned_client_id"]
        a.subscribe("s/t", qos=1)
        a.disconnect()
        self.client("pub").publish("s/t", b"kept", qos=1)
        b = self.peer()
        self.assertEqual(b.connect(cid, clean=False, props={"session_expiry": 60})
                         .session_present, 1)
        self.assertEqual(b.expect_publish().payload, b"kept")


class TestPersistentClientExpiry(mt.BrokerTest):
    CONFIG = "persistent_client_expiry 1d\n"

    def test_persistent_client_expiry_accepted(self):
        a = self.client("p", version=4, clean=False)
        a.subscribe("p/t", qos=1)
        a.disconnect()
        b = self.peer(4)
        self.assertEqual(b.connect("p", clean=False).session_present, 1)



if __name__ == "__main__":
    mt.main()
