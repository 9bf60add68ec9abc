"""CONNECT variants and refusals, keep-alive, assigned ids, takeover."""
import time

import moattest as mt
from moattest import CONNACK, DISCONNECT


class TestConnect(mt.BrokerTest):

    def test_v311_connect_accepted(self):
        p = self.peer(4)
        ack = p.connect("c311")
        self.assertEqual(ack.session_present, 0)
        p.ping()

    def test_v31_connect_accepted(self):
        p = self.peer(3)
        p.connect("c31")
        p.ping()

    def test_v5_connack_properties(self):
        """Receive Maximum (max_inflight_messages, 20) and Topic Alias Maximum (10) are
        announced as mosquitto does; nothing is announced that was not negotiated."""
        p = self.peer(5)
        ack = p.connect("c5")
        self.assertEqual((ack.rc, ack.session_present), (0, 0))
        self.assertEqual(ack.props.get("receive_maximum"), 20)
        self.assertEqual(ack.props.get("topic_alias_maximum"), 10)
        self.assertNotIn("assigned_client_id", ack.props)
        self.assertNotIn("server_keep_alive", ack.props)
        p.ping()

    def test_v5_assigned_client_id(self):
        p = self.peer(5)
        ack = p.connect("")
        self.assertIn("assigned_client_id", ack.props)
        self.assertGreater(len(ack.props["assigned_client_id"]), 0)

    def test_v311_empty_id_with_clean_session_accepted(self):
        self.peer(4).connect("", clean=True)

    def test_v311_empty_id_without_clean_session_refused(self):
        p = self.peer(4)
        ack = p.connect("", clean=False, expect_rc=None)
        self.assertEqual(ack.rc, 2)
        p.expect_closed()

    def test_unknown_protocol_version_refused(self):
        p = self.peer(4)
        p.send(p.connect_bytes("badver", version=4)[:0] + bytes.fromhex(
            "10 0f 00 04 4d 51 54 54 07 02 00 3c 00 03 61 62 63".replace(" ", "")))
        ack = p.expect(CONNACK)
        self.assertEqual(ack.rc, 1)
        p.expect_closed()

    def test_second_connect_is_protocol_error(self):
        p = self.client("twice")
        p.send(p.connect_bytes("twice"))
        p.expect_closed(disconnect_rc=0x82)
        self.assert_serves()

    def test_keepalive_expiry_at_one_and_a_half(self):
        """Keep Alive 4 s: closed after 6 s of silence [MQTT-3.1.2-22], not at 4 s (1x)
        nor 8 s (2x); the broker checks once a second, hence the upper margin.
        A v5 and a 3.1.1 client wait side by side."""
        peers = [self.client("ka%d" % v, version=v, keepalive=4) for v in (5, 4)]
        t0 = time.monotonic()
        for p in peers:
            seen = p.expect_closed(timeout=10)
            took = time.monotonic() - t0
            self.assertGreaterEqual(took, 5.9)
            self.assertLess(took, 7.8)
            if p.version == 5:
                self.assertEqual(seen.rc, 0x8D)   # DISCONNECT Keep Alive timeout first
            else:
                self.assertIsNone(seen)

    def test_keepalive_pings_keep_connection(self):
        p = self.client("kp", keepalive=1)
        for _ in range(5):
            time.sleep(0.9)
            p.ping()

    def test_session_takeover_sends_0x8e(self):
        a = self.client("same")
        b = self.client("same")
        a.expect_closed(disconnect_rc=0x8E)
        b.ping()

    def test_session_takeover_v311_closes_old(self):
        a = self.client("same311", version=4)
        b = self.client("same311", version=4)
        a.expect_closed()
        b.ping()

    def test_client_disconnect_then_reconnect(self):
        a = self.client("dc")
        a.disconnect()
        self.client("dc").ping()

    def test_unsupported_auth_method_0x8c(self):
        """No enhanced authentication yet: an Authentication Method in CONNECT is
        refused with CONNACK 0x8C [MQTT-4.12.0-1], as mosquitto does."""
        p = self.peer(5)
        ack = p.connect("am", props={"auth_method": "SCRAM-SHA-1"}, expect_rc=None)
        self.assertEqual(ack.rc, 0x8C)
        p.expect_closed()
        self.assert_serves()

    def test_auth_packet_without_auth_method_is_protocol_error(self):
        """AUTH from a client that did not name an Authentication Method in CONNECT
        breaks [MQTT-4.12.0-6]: a Protocol Error, DISCONNECT 0x82 then close."""
        p = self.client("auth")
        p.send(mt.packet(mt.AUTH, 0, b"\x19\x00"))   # Re-authenticate, no properties
        p.expect_closed(disconnect_rc=0x82)
        self.assert_serves()


class TestAnonymousRefused(mt.BrokerTest):
    ALLOW_ANONYMOUS = None   # broker default

    def test_anonymous_refused_by_default_v5(self):
        p = self.peer(5)
        ack = p.connect("anon", expect_rc=None)
        self.assertEqual(ack.rc, 0x87)
        p.expect_closed()

    def test_refusal_connack_fits_client_maximum_packet_size(self):
        """[MQTT-3.2.2-19]: no Reason String that would make the CONNACK larger than
        the Maximum Packet Size the client announced (16 here)."""
        p = self.peer(5)
        ack = p.connect("anon", props={"maximum_packet_size": 16}, expect_rc=None)
        self.assertEqual(ack.rc, 0x87)
        self.assertLessEqual(1 + len(mt.vbi(len(ack.body))) + len(ack.body), 16)
        p.expect_closed()

    def test_anonymous_refused_by_default_v311(self):
        p = self.peer(4)
        ack = p.connect("anon", expect_rc=None)
        self.assertEqual(ack.rc, 5)
        p.expect_closed()


class TestMaxKeepalive(mt.BrokerTest):
    CONFIG = "max_keepalive 10\n"

    def test_v5_server_keep_alive_caps_client(self):
        p = self.peer(5)
        ack = p.connect("ska", keepalive=100)
        self.assertEqual(ack.props.get("server_keep_alive"), 10)

    def test_cve_2020_13849_keepalive_65535_capped(self):
        p = self.peer(5)
        ack = p.connect("ska2", keepalive=65535)
        self.assertEqual(ack.props.get("server_keep_alive"), 10)

    def test_cve_2020_13849_v311_keepalive_over_max_refused(self):
        """3.1.1 cannot be told a Server Keep Alive, so (as mosquitto >= 2.0.12) a
        keep-alive above max_keepalive, or 0, is refused: CONNACK 0x02, closed."""
        for keepalive in (65535, 11, 0):
            p = self.peer(4)
            ack = p.connect("ka311", keepalive=keepalive, expect_rc=None)
            self.assertEqual(ack.rc, 2)
            p.expect_closed()
        p = self.peer(4)
        p.connect("ka311", keepalive=10)
        p.ping()

    def test_v5_keepalive_zero_gets_server_keep_alive(self):
        p = self.peer(5)
        ack = p.connect("ska0", keepalive=0)
        self.assertEqual(ack.props.get("server_keep_alive"), 10)


class TestServerKeepAliveEnforced(mt.BrokerTest):
    CONFIG = "max_keepalive 4\n"

    def test_server_keep_alive_is_the_one_enforced(self):
        """[MQTT-3.2.2-22]: the client must use the Server Keep Alive (4 s, asked 100),
        and the broker closes after 1.5 x 4 s of silence, not 150 s."""
        p = self.peer(5)
        self.assertEqual(p.connect("ska", keepalive=100).props.get("server_keep_alive"), 4)
        t0 = time.monotonic()
        self.assertEqual(p.expect_closed(timeout=10).rc, 0x8D)
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 5.9)
        self.assertLess(took, 7.8)


if __name__ == "__main__":
    mt.main()
